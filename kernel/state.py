"""The values of the kernel: commands, events, ledger entries and the account they fold into.

Money is an integer number of minor units (1/100 of the currency unit) and percentages are integer
basis points (1 % = 100 bp): no float ever touches them (spec.md#units). Every value is frozen and
slotted. Nothing in an account grows with its history (spec.md#e6, spec.md#storage): the entry
recorded under a command id and the payouts live in the store, keyed, and a store hands the kernel
the few it needs for one command as a `Lookup`.
"""

from __future__ import annotations

import datetime
import enum
from typing import Final, TypeAlias

import attrs

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

PAYOUT_CHARS_MAX: Final = ACCOUNT_CHARS_MAX + 1 + ID_CHARS_MAX
"""spec.md#fields: a payout id is 1 to 193 characters, the longest `<account>:<command id>`."""


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


class FieldKind(enum.Enum):
    """spec.md#fields: what a command's field holds, which decides how it is read, checked and shown."""

    AMOUNT = "amount"
    """Money in minor units, written at the boundary as a decimal with at most two places."""
    SHARE = "share"
    """A percentage in basis points, written at the boundary as a decimal with at most two places."""
    PAYOUT = "payout"
    """A payout id: text under the id's character rule, 1 to `PAYOUT_CHARS_MAX` characters."""
    DATE = "date"
    """A Gregorian day, written `YYYY-MM-DD`; optional."""


@attrs.frozen(kw_only=True)
class CommandField:
    """One field of a command type besides `id` and `account`, as the boundary and the kernel name it."""

    name: str
    """Its key in an input line and in a result's message (`amount`)."""
    attribute: str
    """Its attribute in the kernel's command and its key in the stored entry (`amount_minor`)."""
    kind: FieldKind
    zero_allowed: bool = False
    """For an amount: whether 0 is valid (only a balance may be 0)."""

    @property
    def optional(self) -> bool:
        """Whether a line may leave the field out (only `date`, spec.md#fields)."""
        return self.kind is FieldKind.DATE


@attrs.frozen(kw_only=True)
class CommandType:
    """spec.md#commands: one command type, its kernel class and its fields, in the order they are shown."""

    name: str
    """Its `type` at the boundary and in the stored entry."""
    cls: type[Command]
    fields: tuple[CommandField, ...]


_MY_SHARE: Final = CommandField(name="my_share", attribute="my_share_bp", kind=FieldKind.SHARE)
_COMPANY_SHARE: Final = CommandField(name="company_share", attribute="company_share_bp", kind=FieldKind.SHARE)

COMMAND_TABLE: Final = (
    CommandType(name="open_account", cls=OpenAccount, fields=(_MY_SHARE, _COMPANY_SHARE)),
    CommandType(
        name="fund",
        cls=Fund,
        fields=(CommandField(name="amount", attribute="amount_minor", kind=FieldKind.AMOUNT),),
    ),
    CommandType(
        name="record_balance",
        cls=RecordBalance,
        fields=(
            CommandField(name="balance", attribute="balance_minor", kind=FieldKind.AMOUNT, zero_allowed=True),
            CommandField(name="date", attribute="date", kind=FieldKind.DATE),
        ),
    ),
    CommandType(
        name="settle",
        cls=Settle,
        fields=(CommandField(name="payment", attribute="payment_minor", kind=FieldKind.AMOUNT),),
    ),
    CommandType(name="set_shares", cls=SetShares, fields=(_MY_SHARE, _COMPANY_SHARE)),
    CommandType(
        name="confirm_payout",
        cls=ConfirmPayout,
        fields=(CommandField(name="payout", attribute="payout", kind=FieldKind.PAYOUT),),
    ),
)
"""spec.md#commands: every command type and its fields. The codec, the stored entry's encoding and
the messages all read this one table."""

COMMAND_TYPES: Final[dict[str, CommandType]] = {
    command_type.name: command_type for command_type in COMMAND_TABLE
}
"""Each command type by its `type` name."""

COMMAND_TYPE_OF: Final[dict[type[Command], CommandType]] = {
    command_type.cls: command_type for command_type in COMMAND_TABLE
}
"""Each command type by its kernel class."""


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
    amount_minor: int
    """The payout's amount, so that the ledger alone says how much was paid out."""


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
    """A ledger entry: a state rule refused the command; only its id's outcome is recorded.

    A refusal is its command and its code (spec.md#storage): the message is for the clerk who reads
    this decision, is neither stored nor compared, and rewording it changes no entry.
    """

    command: Command
    code: Code
    message: str = attrs.field(default="", eq=False, repr=False)
    """Which rule refused which value, with the figures of that moment; not part of the entry."""


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
    """One client's trading account at one exchange, as its ledger folds: its value, not its history.

    Every field is a figure or a count; none grows with the ledger (spec.md#storage), so a store reads
    one row to decide a command whatever the account's history.
    """

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
    """Σ PROFIT withdrawn: Σ of every payout's amount (spec.md#i7)."""
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
    entry_count: int
    """The entries of its ledger: one per command id recorded, applied or refused (spec.md#i8)."""
    payout_count: int
    """The payouts its withdrawals made, pending or confirmed (spec.md#i7)."""
    payout_confirmed_count: int
    """How many of them are confirmed."""
    payout_confirmed_minor: int
    """Σ the amounts of the confirmed payouts; what is pending is `profit_withdrawn_minor` less this."""

    @property
    def total_share_bp(self) -> int:
        """spec.md#units: the total share of losses opened from now on."""
        return self.my_share_bp + self.company_share_bp


@attrs.frozen(kw_only=True)
class Lookup:
    """spec.md#storage: what an account's history holds under the keys one command names.

    A store looks these up by key (the account and the command's id; the account and the payout a
    `confirm_payout` names) and hands them to `decide` and `fold`: a command needs no more of the
    history than this, however long the ledger.
    """

    entry: Entry | None = None
    """The entry recorded under the command's id on its account, if the id is used."""
    payout: Payout | None = None
    """For a `confirm_payout`: the account's payout of the id it names, if there is one."""


NOTHING_RECORDED: Final = Lookup()
"""The lookup of a command whose id is free and which names no payout, or of a new account."""


def payout_id(account_id: str, command_id: str) -> str:
    """spec.md#record_balance: a withdrawn profit's payout id is `<account>:<command id>`."""
    return f"{account_id}:{command_id}"


def minor_text(amount_minor: int) -> str:
    """A number of minor units (or basis points) as a decimal with exactly two places."""
    sign = "-" if amount_minor < 0 else ""
    whole, cents = divmod(abs(amount_minor), MINOR_PER_MAJOR)
    return f"{sign}{whole}.{cents:02d}"
