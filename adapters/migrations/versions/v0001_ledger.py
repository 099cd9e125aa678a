"""Version 1: the ledger, the account projection, the loss snapshots and the payout outbox.

Written out here, not read from `adapters/schema.py`, so that this version stays what it was when
later ones change the schema. tests/test_sql.py checks that upgrading an empty database to the head
gives exactly the tables of `schema.py`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ppk.adapters.schema import ACCOUNT_ID, COMMAND_ID, PAYOUT_ID

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

LIMIT = 10**17
SHARES = "{my} >= 0 AND {company} >= 0 AND {my} + {company} <= 10000"


def _within_limit(*columns: str) -> list[sa.CheckConstraint]:
    return [sa.CheckConstraint(f"{c} >= 0 AND {c} <= {LIMIT}", name=f"{c}_in_range") for c in columns]


def upgrade() -> None:
    op.create_table(
        "ledger",
        sa.Column("account", ACCOUNT_ID, primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("command_id", COMMAND_ID, nullable=False),
        sa.Column("entry", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("account", "command_id"),
        sa.CheckConstraint("seq >= 1", name="seq_from_1"),
    )
    op.create_table(
        "accounts",
        sa.Column("account", ACCOUNT_ID, primary_key=True),
        sa.Column("entry_count", sa.BigInteger, nullable=False),
        sa.Column("my_share_bp", sa.Integer, nullable=False),
        sa.Column("company_share_bp", sa.Integer, nullable=False),
        *(
            sa.Column(name, sa.BigInteger, nullable=False)
            for name in (
                "capital_minor",
                "balance_minor",
                "funding_minor",
                "capital_closed_minor",
                "profit_withdrawn_minor",
                "payments_minor",
                "my_share_minor",
                "company_share_minor",
            )
        ),
        sa.Column("balance_date_latest", sa.Date, nullable=True),
        sa.Column("payout_count", sa.BigInteger, nullable=False),
        sa.Column("payout_confirmed_count", sa.BigInteger, nullable=False),
        sa.Column("payout_confirmed_minor", sa.BigInteger, nullable=False),
        sa.Column("loss_opened_by", COMMAND_ID, nullable=True),
        *_within_limit(
            "capital_minor",
            "balance_minor",
            "funding_minor",
            "capital_closed_minor",
            "profit_withdrawn_minor",
            "payments_minor",
            "my_share_minor",
            "company_share_minor",
            "payout_confirmed_minor",
            "payout_count",
            "payout_confirmed_count",
        ),
        sa.CheckConstraint("entry_count >= 1", name="entry_count_from_1"),
        sa.CheckConstraint(
            SHARES.format(my="my_share_bp", company="company_share_bp"), name="shares_are_percentages"
        ),
        sa.CheckConstraint(
            "capital_minor = funding_minor - capital_closed_minor", name="i1_capital_is_conserved"
        ),
        sa.CheckConstraint("my_share_minor + company_share_minor = payments_minor", name="i6_shares_add_up"),
        sa.CheckConstraint(
            "payout_confirmed_count <= payout_count AND payout_confirmed_minor <= profit_withdrawn_minor",
            name="i7_confirmed_within_withdrawn",
        ),
        sa.CheckConstraint(
            "(loss_opened_by IS NULL AND balance_minor = capital_minor) "
            "OR (loss_opened_by IS NOT NULL AND balance_minor < capital_minor)",
            name="i4_i5_balance_agrees_with_loss",
        ),
    )
    op.create_table(
        "losses",
        sa.Column("account", ACCOUNT_ID, primary_key=True),
        sa.Column("opened_by", COMMAND_ID, primary_key=True),
        *(
            sa.Column(name, sa.BigInteger, nullable=False)
            for name in (
                "capital_minor",
                "balance_minor",
                "original_minor",
                "remaining_minor",
                "capital_closed_minor",
            )
        ),
        sa.Column("my_share_bp", sa.Integer, nullable=False),
        sa.Column("company_share_bp", sa.Integer, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        *_within_limit(
            "capital_minor", "balance_minor", "original_minor", "remaining_minor", "capital_closed_minor"
        ),
        sa.CheckConstraint(
            SHARES.format(my="my_share_bp", company="company_share_bp"), name="shares_are_percentages"
        ),
        sa.CheckConstraint(
            "original_minor = capital_closed_minor + remaining_minor", name="i9_loss_is_accounted"
        ),
        sa.CheckConstraint("original_minor = capital_minor - balance_minor", name="loss_is_a_shortfall"),
        sa.CheckConstraint(
            "(active AND remaining_minor > 0) OR (NOT active AND remaining_minor = 0)",
            name="active_while_remaining",
        ),
    )
    op.create_index(
        "ix_losses_one_active_per_account",
        "losses",
        ["account"],
        unique=True,
        sqlite_where=sa.text("active"),
        postgresql_where=sa.text("active"),
    )
    op.create_table(
        "payouts",
        sa.Column("account", ACCOUNT_ID, primary_key=True),
        sa.Column("payout_id", PAYOUT_ID, primary_key=True),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.CheckConstraint(f"amount_minor > 0 AND amount_minor <= {LIMIT}", name="amount_in_range"),
        sa.CheckConstraint("status IN ('pending', 'confirmed')", name="status_known"),
    )
    op.create_index(
        "ix_payouts_pending",
        "payouts",
        ["account", "payout_id"],
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    for table in ("payouts", "losses", "accounts", "ledger"):
        op.drop_table(table)
