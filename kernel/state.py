"""The values of the kernel: commands, events, ledger entries and the account they fold into.

Money is an integer number of minor units (1/100 of the currency unit) and percentages are integer
basis points (1 % = 100 bp): no float ever touches them (spec.md#units). Every value is frozen and
slotted; what grows with an account's history (its payouts and the outcome of every command id it
has seen) lives in persistent maps, so a transition never copies it (spec.md#e6).
"""

from __future__ import annotations

import datetime
import enum
from typing import Final, TypeAlias

import attrs
import immutables

BP_PER_WHOLE: Final = 10_000
"""Basis points in 100 %."""

MINOR_PER_MAJOR: Final = 100
"""Minor units in one currency unit."""

AMOUNT_MINOR_MAX: Final = 10**17
"""spec.md#limits: every amount and every running total is at most 10^15 currency units."""

ID_CHARS_MAX: Final = 128
"""spec.md#fields: a command id is 1 to 128 characters."""

ACCOUNT_CHARS_MAX: Final = 64
"""spec.md#fields: an account id is 1 to 64 characters."""


class Code(enum.StrEnum):
    """spec.md#precedence: every rejection and refusal code, in the order of precedence."""

    MALFORMED = "malformed"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    UNKNOWN_ACCOUNT = "unknown_account"
    ACCOUNT_EXISTS = "account_exists"
    INVALID_AMOUNT = "invalid_amount"
    INVALID_SHARES = "invalid_shares"
    LOSS_ACTIVE = "loss_active"
    STALE_BALANCE = "stale_balance"
    LIMIT_EXCEEDED = "limit_exceeded"
    NO_ACTIVE_LOSS = "no_active_loss"
    PAYMENT_EXCEEDS_PAYABLE = "payment_exceeds_payable"
    UNKNOWN_PAYOUT = "unknown_payout"


REFUSAL_CODES: Final = frozenset(
    {
        Code.LOSS_ACTIVE,
        Code.STALE_BALANCE,
        Code.LIMIT_EXCEEDED,
        Code.NO_ACTIVE_LOSS,
        Code.PAYMENT_EXCEEDS_PAYABLE,
        Code.UNKNOWN_PAYOUT,
    }
)
"""spec.md#commands: the codes of state rules, whose refusals are recorded under the command id."""


# --- Commands -------------------------------------------------------------------------------------


@attrs.frozen(eq=False)
class InvalidAmount:
    """spec.md#amount-grammar: an amount or percentage that is not one; it equals nothing."""

    text: str
    """The text as written: a string's decoded value, or a JSON number's literal."""
    over_limit: bool = False
    """True when the text has the amount grammar but far too many digits to be within a limit."""


Quantity: TypeAlias = int | InvalidAmount
"""An amount in minor units or a percentage in basis points, or the text that was neither."""


@attrs.frozen(kw_only=True)
class OpenAccount:
    """spec.md#open_account: create the account with these shares."""

    id: str
    """The caller's idempotency key, unique per account."""
    account: str
    """The account id."""
    my_share_bp: Quantity
    """The operator's share of a loss, in basis points."""
    company_share_bp: Quantity
    """The company's share of a loss, in basis points."""


@attrs.frozen(kw_only=True)
class Fund:
    """spec.md#fund: money lands on the exchange."""

    id: str
    account: str
    amount_minor: Quantity
    """The funded amount, in minor units; more than 0."""


@attrs.frozen(kw_only=True)
class RecordBalance:
    """spec.md#record_balance: the exchange balance, as observed."""

    id: str
    account: str
    balance_minor: Quantity
    """The observed exchange balance, in minor units; 0 or more."""
    date: datetime.date | None = None
    """The statement's day, optional; never earlier than the latest dated record (spec.md#e10)."""


@attrs.frozen(kw_only=True)
class Settle:
    """spec.md#settle: a partial or full payment against the active loss."""

    id: str
    account: str
    payment_minor: Quantity
    """The client's payment, in minor units; more than 0 and at most the payable."""


@attrs.frozen(kw_only=True)
class SetShares:
    """spec.md#set_shares: the shares of losses opened from now on."""

    id: str
    account: str
    my_share_bp: Quantity
    company_share_bp: Quantity


@attrs.frozen(kw_only=True)
class ConfirmPayout:
    """spec.md#confirm_payout: the transfer of a payout is confirmed."""

    id: str
    account: str
    payout: str
    """The payout id, `<account>:<command id>` of the record_balance that withdrew the profit."""


Command: TypeAlias = OpenAccount | Fund | RecordBalance | Settle | SetShares | ConfirmPayout

COMMAND_TYPES: Final[dict[str, type[Command]]] = {
    "open_account": OpenAccount,
    "fund": Fund,
    "record_balance": RecordBalance,
    "settle": Settle,
    "set_shares": SetShares,
    "confirm_payout": ConfirmPayout,
}
"""spec.md#commands: each command's `type` at the boundary."""

COMMAND_TYPE_NAMES: Final[dict[type[Command], str]] = {cls: name for name, cls in COMMAND_TYPES.items()}


# --- Events ---------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class AccountOpened:
    """spec.md#open_account: the account exists, with these shares."""

    my_share_bp: int
    company_share_bp: int


@attrs.frozen(kw_only=True)
class Funded:
    """spec.md#fund: FUNDING, CAPITAL and the balance each grow by the amount."""

    amount_minor: int


@attrs.frozen(kw_only=True)
class BalanceRecorded:
    """spec.md#record_balance: what the exchange showed, kept as observed (spec.md#e5)."""

    balance_minor: int
    """The observed balance, before any profit is withdrawn."""
    capital_minor: int
    """CAPITAL at the moment of the record."""
    date: datetime.date | None


@attrs.frozen(kw_only=True)
class ProfitWithdrawn:
    """spec.md#record_balance: the profit leaves the exchange as a pending payout (spec.md#e3)."""

    payout_id: str
    amount_minor: int


@attrs.frozen(kw_only=True)
class LossOpened:
    """spec.md#record_balance: a loss opens with the shares of that moment frozen into it."""

    opened_by: str
    """The id of the record_balance that opened it."""
    capital_minor: int
    """CAPITAL at balance time (the seed's `capital_at_balance_time`)."""
    balance_minor: int
    """The recorded balance that opened it."""
    original_minor: int
    """The loss at balance time (the seed's `loss_at_balance_time`): capital − balance."""
    my_share_bp: int
    company_share_bp: int


@attrs.frozen(kw_only=True)
class LossWrittenOff:
    """spec.md#e9: a loss whose payable is 0 is closed by its whole remaining, nothing paid."""

    loss: str
    """The id of the record_balance that opened the loss."""
    capital_closed_minor: int


@attrs.frozen(kw_only=True)
class Settled:
    """spec.md#settle: a payment closes capital and is split between the two shares."""

    loss: str
    """The id of the record_balance that opened the loss this settlement paid."""
    payment_minor: int
    capital_closed_minor: int
    my_share_minor: int
    company_share_minor: int


@attrs.frozen(kw_only=True)
class SharesSet:
    """spec.md#set_shares: the shares of losses opened from now on."""

    my_share_bp: int
    company_share_bp: int


@attrs.frozen(kw_only=True)
class PayoutConfirmed:
    """spec.md#confirm_payout: a pending payout is paid."""

    payout_id: str


Event: TypeAlias = (
    AccountOpened
    | Funded
    | BalanceRecorded
    | ProfitWithdrawn
    | LossOpened
    | LossWrittenOff
    | Settled
    | SharesSet
    | PayoutConfirmed
)


# --- Decisions and the ledger ---------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Applied:
    """A ledger entry: the command passed every rule and its events are appended, all at once."""

    command: Command
    events: tuple[Event, ...]


@attrs.frozen(kw_only=True)
class Refused:
    """A ledger entry: a state rule refused the command; only its id's outcome is recorded."""

    command: Command
    code: Code
    message: str


Entry: TypeAlias = Applied | Refused
"""What an account's ledger holds, one entry per command id it has seen."""


@attrs.frozen(kw_only=True)
class Rejected:
    """Refused before any state rule: nothing changes and nothing is recorded."""

    code: Code
    message: str
    """Which field and value were wrong and what is allowed, in a clerk's words."""


@attrs.frozen(kw_only=True)
class Repeated:
    """The same command again under a used id: its recorded outcome, and nothing changes."""

    entry: Entry


Decision: TypeAlias = Applied | Refused | Rejected | Repeated


# --- The account ----------------------------------------------------------------------------------


class PayoutStatus(enum.StrEnum):
    """spec.md#e3: a payout is pending until its transfer is confirmed."""

    PENDING = "pending"
    CONFIRMED = "confirmed"


@attrs.frozen(kw_only=True)
class Payout:
    """spec.md#i7: one withdrawn profit, paid out by one transfer."""

    id: str
    """`<account>:<command id>` of the record_balance that withdrew it."""
    amount_minor: int
    status: PayoutStatus


@attrs.frozen(kw_only=True)
class Loss:
    """spec.md#settle: the active loss of an account, with the shares frozen when it opened."""

    opened_by: str
    """The id of the record_balance that opened it."""
    capital_minor: int
    """CAPITAL at balance time."""
    balance_minor: int
    """The recorded balance that opened it."""
    original_minor: int
    """The loss when it opened."""
    remaining_minor: int
    """The part of it not yet closed."""
    capital_closed_minor: int
    """Capital closed by its settlements so far (spec.md#i9)."""
    my_share_bp: int
    company_share_bp: int


@attrs.frozen(kw_only=True)
class Account:
    """One client's trading account at one exchange, as its ledger folds."""

    id: str
    my_share_bp: int
    """The operator's share of losses opened from now on, in basis points."""
    company_share_bp: int
    """The company's share of losses opened from now on, in basis points."""
    capital_minor: int
    """CAPITAL, stored: Σ FUNDING − Σ CAPITAL_CLOSED (spec.md#i1)."""
    balance_minor: int
    """CB: the exchange balance as last recorded, less withdrawn profit."""
    funding_minor: int
    """Σ FUNDING."""
    capital_closed_minor: int
    """Σ CAPITAL_CLOSED, by settlements and write-offs."""
    profit_withdrawn_minor: int
    """Σ PROFIT withdrawn."""
    payments_minor: int
    """Σ settlement payments."""
    my_share_minor: int
    """Σ the operator's shares of settlement payments."""
    company_share_minor: int
    """Σ the company's shares of settlement payments."""
    loss: Loss | None
    """The active loss, if any (spec.md#i3: at most one)."""
    balance_date_latest: datetime.date | None
    """The latest date of an applied record_balance (spec.md#e10)."""
    payouts: immutables.Map[str, Payout]
    """Every payout by id; persistent, never copied."""
    outcomes: immutables.Map[str, Entry]
    """The ledger entry of every command id seen (spec.md#i8); persistent, never copied."""

    @property
    def total_share_bp(self) -> int:
        """spec.md#units: the total share of losses opened from now on."""
        return self.my_share_bp + self.company_share_bp


def minor_text(amount_minor: int) -> str:
    """A number of minor units (or basis points) as a decimal with exactly two places."""
    sign = "-" if amount_minor < 0 else ""
    whole, cents = divmod(abs(amount_minor), MINOR_PER_MAJOR)
    return f"{sign}{whole}.{cents:02d}"
