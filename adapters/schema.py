"""The database schema of the SQL store, in SQLAlchemy Core (spec.md#database).

Five tables, each keyed by the account first, so that the schema distributes by account over a
sharded PostgreSQL (Citus) unchanged: no primary key or unique constraint spans accounts.

- `ledger`: the append-only ledger, one row per entry in its canonical encoding
  (`adapters/canonical.py`), at its position `seq` (1, 2, ...), unique per command id (I8), with
  `hash`, the account's hash chain at that entry (docs/audit.md). Triggers refuse UPDATE and DELETE.
- `accounts`: the account projection, one row per account: its figures and counts, and its chain
  head. `entry_count` is its version: the ledger's length, so the next entry's `seq`.
- `losses`: every loss an account opened, as it stands (the seed's loss snapshots); a partial unique
  index allows one active loss per account (I3), and a CHECK holds each one accounted for (I9).
- `payouts`: the payout outbox, one row per withdrawn profit (I7), pending until confirmed.
- `checkpoints`: for each digest a clean audit printed, each account's ledger length then
  (docs/audit.md §3), so that `ppk audit --expect` can recompute that digest from today's ledger.

CHECK constraints repeat what the kernel's contracts check, so that a row no transition could write
is refused by the database too: every amount and count non-negative and within the limit, shares
percentages, CAPITAL = Σ FUNDING − Σ CAPITAL_CLOSED (I1), Σ shares = Σ payments (I6), a balance
at CAPITAL without a loss and below it with one (I4, I5). Amounts are 64-bit integers.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeEngine

from ppk.kernel.state import (
    ACCOUNT_CHARS_MAX,
    AMOUNT_MINOR_MAX,
    BP_PER_WHOLE,
    ID_CHARS_MAX,
    PAYOUT_CHARS_MAX,
    PayoutStatus,
)

NAMING: Final = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "pk": "pk_%(table_name)s",
}
"""Constraint names that migrations can name again (Alembic needs names to drop or alter)."""

metadata: Final = MetaData(naming_convention=NAMING)


def _text(chars_max: int) -> TypeEngine[str]:
    # PostgreSQL compares text by its collation; "C" compares code points, as the views sort
    # (spec.md#results), and never changes with the server's locale. SQLite compares bytes of UTF-8,
    # which is code-point order too.
    return String(chars_max).with_variant(String(chars_max, collation="C"), "postgresql")


ACCOUNT_ID: Final = _text(ACCOUNT_CHARS_MAX)
COMMAND_ID: Final = _text(ID_CHARS_MAX)
PAYOUT_ID: Final = _text(PAYOUT_CHARS_MAX)


def _within_limit(*columns: str) -> list[CheckConstraint]:
    """spec.md#i10: each amount or count is ≥ 0 and at most the limit."""
    return [
        CheckConstraint(f"{column} >= 0 AND {column} <= {AMOUNT_MINOR_MAX}", name=f"{column}_in_range")
        for column in columns
    ]


def _shares(my: str, company: str) -> CheckConstraint:
    """spec.md#actors: each share in [0, 100 %], their total at most 100 %."""
    return CheckConstraint(
        f"{my} >= 0 AND {company} >= 0 AND {my} + {company} <= {BP_PER_WHOLE}", name="shares_are_percentages"
    )


ledger: Final = Table(
    "ledger",
    metadata,
    Column("account", ACCOUNT_ID, primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("command_id", COMMAND_ID, nullable=False),
    Column("entry", LargeBinary, nullable=False),
    Column("hash", LargeBinary, nullable=False),
    UniqueConstraint("account", "command_id"),
    CheckConstraint("seq >= 1", name="seq_from_1"),
)
"""spec.md#ledger: each entry at its position in the account's ledger, in its canonical bytes."""

accounts: Final = Table(
    "accounts",
    metadata,
    Column("account", ACCOUNT_ID, primary_key=True),
    Column("entry_count", BigInteger, nullable=False),
    Column("my_share_bp", Integer, nullable=False),
    Column("company_share_bp", Integer, nullable=False),
    Column("capital_minor", BigInteger, nullable=False),
    Column("balance_minor", BigInteger, nullable=False),
    Column("funding_minor", BigInteger, nullable=False),
    Column("capital_closed_minor", BigInteger, nullable=False),
    Column("profit_withdrawn_minor", BigInteger, nullable=False),
    Column("payments_minor", BigInteger, nullable=False),
    Column("my_share_minor", BigInteger, nullable=False),
    Column("company_share_minor", BigInteger, nullable=False),
    Column("balance_date_latest", Date, nullable=True),
    Column("payout_count", BigInteger, nullable=False),
    Column("payout_confirmed_count", BigInteger, nullable=False),
    Column("payout_confirmed_minor", BigInteger, nullable=False),
    Column("loss_opened_by", COMMAND_ID, nullable=True),
    Column("chain_head", LargeBinary, nullable=False),
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
    CheckConstraint("entry_count >= 1", name="entry_count_from_1"),
    _shares("my_share_bp", "company_share_bp"),
    CheckConstraint("capital_minor = funding_minor - capital_closed_minor", name="i1_capital_is_conserved"),
    CheckConstraint("my_share_minor + company_share_minor = payments_minor", name="i6_shares_add_up"),
    CheckConstraint(
        "payout_confirmed_count <= payout_count AND payout_confirmed_minor <= profit_withdrawn_minor",
        name="i7_confirmed_within_withdrawn",
    ),
    CheckConstraint(
        "(loss_opened_by IS NULL AND balance_minor = capital_minor) "
        "OR (loss_opened_by IS NOT NULL AND balance_minor < capital_minor)",
        name="i4_i5_balance_agrees_with_loss",
    ),
)
"""spec.md#storage: one row per account, its value; `entry_count` is its version."""

losses: Final = Table(
    "losses",
    metadata,
    Column("account", ACCOUNT_ID, primary_key=True),
    Column("opened_by", COMMAND_ID, primary_key=True),
    Column("capital_minor", BigInteger, nullable=False),
    Column("balance_minor", BigInteger, nullable=False),
    Column("original_minor", BigInteger, nullable=False),
    Column("remaining_minor", BigInteger, nullable=False),
    Column("capital_closed_minor", BigInteger, nullable=False),
    Column("my_share_bp", Integer, nullable=False),
    Column("company_share_bp", Integer, nullable=False),
    Column("active", Boolean, nullable=False),
    *_within_limit(
        "capital_minor", "balance_minor", "original_minor", "remaining_minor", "capital_closed_minor"
    ),
    _shares("my_share_bp", "company_share_bp"),
    CheckConstraint("original_minor = capital_closed_minor + remaining_minor", name="i9_loss_is_accounted"),
    CheckConstraint("original_minor = capital_minor - balance_minor", name="loss_is_a_shortfall"),
    CheckConstraint(
        "(active AND remaining_minor > 0) OR (NOT active AND remaining_minor = 0)",
        name="active_while_remaining",
    ),
    # spec.md#i3: at most one active loss per account, held by the database itself.
    Index(
        "ix_losses_one_active_per_account",
        "account",
        unique=True,
        sqlite_where=text("active"),
        postgresql_where=text("active"),
    ),
)
"""spec.md#settle: every loss an account opened, as it stands now; one active at most."""

payouts: Final = Table(
    "payouts",
    metadata,
    Column("account", ACCOUNT_ID, primary_key=True),
    Column("payout_id", PAYOUT_ID, primary_key=True),
    Column("amount_minor", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    CheckConstraint(f"amount_minor > 0 AND amount_minor <= {AMOUNT_MINOR_MAX}", name="amount_in_range"),
    CheckConstraint(
        f"status IN ('{PayoutStatus.PENDING.value}', '{PayoutStatus.CONFIRMED.value}')", name="status_known"
    ),
    # The dispatcher reads the pending ones, across accounts, in this order.
    Index(
        "ix_payouts_pending",
        "account",
        "payout_id",
        sqlite_where=text(f"status = '{PayoutStatus.PENDING.value}'"),
        postgresql_where=text(f"status = '{PayoutStatus.PENDING.value}'"),
    ),
)
"""spec.md#e3: the payout outbox."""

DIGEST_CHARS: Final = 69
"""`ppk1-` and 64 hexadecimal digits."""

checkpoints: Final = Table(
    "checkpoints",
    metadata,
    Column("account", ACCOUNT_ID, primary_key=True),
    Column("digest", String(DIGEST_CHARS), primary_key=True),
    Column("length", BigInteger, nullable=False),
    CheckConstraint("length >= 1", name="length_from_1"),
)
"""docs/audit.md §3: each account's ledger length when a clean audit printed a digest."""

APPEND_ONLY_MESSAGE: Final = "the ledger is append-only: an entry is never changed or deleted"
"""What the ledger's triggers say when they refuse an UPDATE or DELETE (docs/audit.md §4)."""
