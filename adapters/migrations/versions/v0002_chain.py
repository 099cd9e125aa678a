"""Version 2: the hash chain (docs/audit.md): `ledger.hash`, `accounts.chain_head`, `checkpoints`, and
triggers that refuse UPDATE and DELETE on the ledger.

The chain of every account already in the database is computed here, entry by entry, from the
stored bytes, so that a database of version 1 upgrades to one whose chains verify.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ppk.adapters.chain import chained, genesis
from ppk.adapters.schema import ACCOUNT_ID, APPEND_ONLY_MESSAGE

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

PAGE_ROWS = 1_000


def _backfill(connection: sa.Connection) -> None:
    accounts = connection.execute(sa.text("SELECT account FROM accounts ORDER BY account")).scalars().all()
    for account in accounts:
        head, seq = genesis(account), 0
        while True:
            rows = connection.execute(
                sa.text(
                    "SELECT seq, entry FROM ledger WHERE account = :a AND seq > :s ORDER BY seq LIMIT :n"
                ),
                {"a": account, "s": seq, "n": PAGE_ROWS},
            ).all()
            for row in rows:
                head = chained(head, row.entry)
                connection.execute(
                    sa.text("UPDATE ledger SET hash = :h WHERE account = :a AND seq = :s"),
                    {"h": head, "a": account, "s": row.seq},
                )
            if len(rows) < PAGE_ROWS:
                break
            seq = rows[-1].seq
        connection.execute(
            sa.text("UPDATE accounts SET chain_head = :h WHERE account = :a"), {"h": head, "a": account}
        )


def upgrade() -> None:
    op.add_column("ledger", sa.Column("hash", sa.LargeBinary, nullable=True))
    op.add_column("accounts", sa.Column("chain_head", sa.LargeBinary, nullable=True))
    _backfill(op.get_bind())
    # SQLite alters a column by copying its table (batch mode): before the triggers, which it would drop.
    with op.batch_alter_table("ledger") as ledger:
        ledger.alter_column("hash", existing_type=sa.LargeBinary, nullable=False)
    with op.batch_alter_table("accounts") as accounts:
        accounts.alter_column("chain_head", existing_type=sa.LargeBinary, nullable=False)
    op.create_table(
        "checkpoints",
        sa.Column("account", ACCOUNT_ID, primary_key=True),
        sa.Column("digest", sa.String(69), primary_key=True),
        sa.Column("length", sa.BigInteger, nullable=False),
        sa.CheckConstraint("length >= 1", name="length_from_1"),
    )
    if op.get_bind().dialect.name == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER ledger_is_append_only_{action.lower()} BEFORE {action} ON ledger "
                f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
            )
    else:
        op.execute(
            "CREATE FUNCTION ppk_ledger_is_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{APPEND_ONLY_MESSAGE} (% refused)', TG_OP; END $$"
        )
        op.execute(
            "CREATE TRIGGER ledger_is_append_only BEFORE UPDATE OR DELETE ON ledger "
            "FOR EACH ROW EXECUTE FUNCTION ppk_ledger_is_append_only()"
        )
        op.execute(
            "CREATE TRIGGER ledger_is_not_truncated BEFORE TRUNCATE ON ledger "
            "FOR EACH STATEMENT EXECUTE FUNCTION ppk_ledger_is_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER ledger_is_append_only_update")
        op.execute("DROP TRIGGER ledger_is_append_only_delete")
    else:
        op.execute("DROP TRIGGER ledger_is_not_truncated ON ledger")
        op.execute("DROP TRIGGER ledger_is_append_only ON ledger")
        op.execute("DROP FUNCTION ppk_ledger_is_append_only()")
    op.drop_table("checkpoints")
    with op.batch_alter_table("accounts") as accounts:
        accounts.drop_column("chain_head")
    with op.batch_alter_table("ledger") as ledger:
        ledger.drop_column("hash")
