"""Pure transitions: decide a command against an account, fold a ledger entry into the next account.

No I/O, no clock, no randomness: the same account, command and lookup always give the same decision,
and replaying a ledger from empty gives the same account (spec.md#replay). What a command needs of
its account's history (the entry under its id, the payout it names) comes in a `Lookup` that the
store fills by key (spec.md#storage). Each command has a
`<command>_rejection`, which returns its first state-rule refusal in spec order or `None`, and a
`<command>_applied`, which builds the events and cannot fail. `decide` puts the checks every
command shares in front of them, in the precedence of spec.md#precedence.
"""

from __future__ import annotations

import datetime
import unicodedata
from collections.abc import Iterable
from typing import Final

import attrs
import icontract

from ppk.kernel import contracts
from ppk.kernel.state import (
    ACCOUNT_CHARS_MAX,
    AMOUNT_MINOR_MAX,
    BP_PER_WHOLE,
    COMMAND_TYPE_OF,
    ID_CHARS_MAX,
    NOTHING_RECORDED,
    PAYOUT_CHARS_MAX,
    Account,
    AccountOpened,
    Applied,
    BalanceRecorded,
    Code,
    Command,
    CommandField,
    ConfirmPayout,
    Decision,
    Entry,
    Event,
    FieldKind,
    Fund,
    Funded,
    InvalidAmount,
    Lookup,
    Loss,
    LossOpened,
    LossWrittenOff,
    OpenAccount,
    Payout,
    PayoutConfirmed,
    PayoutStatus,
    ProfitWithdrawn,
    Quantity,
    RecordBalance,
    Refused,
    Rejected,
    Repeated,
    SetShares,
    Settle,
    Settled,
    SharesSet,
    minor_text,
    payout_id,
)

# --- The arithmetic, as lemmas CrossHair proves (spec.md#rounding) -------------------------------


# Each lemma's conditions are one precondition and one postcondition: CrossHair proves the whole
# postcondition as it proved its parts, and icontract pays per condition (docs/performance.md). They
# write payable(L) = ⌊L · t / 10 000⌋ out, as the spec defines it, rather than call payable_minor:
# a contracted call inside a condition costs icontract a whole call's checks again.
@icontract.require(
    lambda remaining_minor, total_share_bp: (
        0 <= remaining_minor <= AMOUNT_MINOR_MAX and 0 <= total_share_bp <= BP_PER_WHOLE
    )
)
@icontract.ensure(
    lambda result, remaining_minor: 0 <= result <= remaining_minor,
    "nothing is negative, and never more than the loss",
)
def payable_minor(remaining_minor: int, total_share_bp: int) -> int:
    """spec.md#rounding: payable(L) = ⌊L · t / 10 000⌋."""
    return remaining_minor * total_share_bp // BP_PER_WHOLE


@icontract.require(
    lambda payment_minor, remaining_minor, total_share_bp: (
        0 < total_share_bp <= BP_PER_WHOLE
        and 0 < remaining_minor <= AMOUNT_MINOR_MAX
        and 0 < payment_minor < remaining_minor * total_share_bp // BP_PER_WHOLE
    )
)
@icontract.ensure(
    lambda result, remaining_minor, total_share_bp: (
        0 < result < remaining_minor and (remaining_minor - result) * total_share_bp // BP_PER_WHOLE > 0
    ),
    "E4: a payment closes some capital, never over-closes, and leaves no stuck loss",
)
def capital_closed_minor(payment_minor: int, remaining_minor: int, total_share_bp: int) -> int:
    """spec.md#rounding: a partial payment p < payable(L) closes ⌊p · 10 000 / t⌋."""
    return payment_minor * BP_PER_WHOLE // total_share_bp


@icontract.require(
    lambda payment_minor, my_share_bp, company_share_bp: (
        0 < payment_minor <= AMOUNT_MINOR_MAX
        and my_share_bp >= 0
        and company_share_bp >= 0
        and 0 < my_share_bp + company_share_bp <= BP_PER_WHOLE
    )
)
@icontract.ensure(
    lambda result, payment_minor: 0 <= result <= payment_minor,
    "nothing is negative, and my share is part of the payment",
)
def my_share_minor(payment_minor: int, my_share_bp: int, company_share_bp: int) -> int:
    """spec.md#split: my = ⌊p · my_bp / t⌋; the company's share is the rest, p − my."""
    return payment_minor * my_share_bp // (my_share_bp + company_share_bp)


# --- Rejection messages -------------------------------------------------------------------------

SHOWN_CHARS_MAX = 80
"""How much of a value a message quotes before it cuts the value short: a result stays a line."""


def shown(text: str) -> str:
    """A value quoted for a message, cut short past `SHOWN_CHARS_MAX` characters."""
    if len(text) > SHOWN_CHARS_MAX:
        return repr(text[:SHOWN_CHARS_MAX]) + f"… ({len(text)} characters)"
    return repr(text)


def quantity_text(quantity: Quantity) -> str:
    """A quantity as a clerk reads it: as written if it was not a number, else with two decimals."""
    if isinstance(quantity, InvalidAmount):
        return shown(quantity.text)
    return minor_text(quantity)


def _text_problem(name: str, text: object, chars_max: int) -> str | None:
    """spec.md#fields: why an id-like text breaks the rules (1 to `chars_max` characters, no control
    character, no lone surrogate)."""
    if not isinstance(text, str):
        return f"{name} must be a string"
    if not 1 <= len(text) <= chars_max:
        return f"{name} {shown(text)} must be 1 to {chars_max} characters long, not {len(text)}"
    if text.isprintable():  # no character of the categories Cc or Cs: the common case, without a loop
        return None
    for char in text:
        category = unicodedata.category(char)
        if category == "Cc":
            return f"{name} must not contain the control character U+{ord(char):04X}"
        if category == "Cs":
            return f"{name} must not contain the lone surrogate U+{ord(char):04X}"
    return None


def id_problem(command_id: object) -> str | None:
    """spec.md#fields: why an id breaks the rules (1–128 characters, no control, no lone surrogate)."""
    return _text_problem("id", command_id, ID_CHARS_MAX)


def payout_problem(payout: object) -> str | None:
    """spec.md#fields: why a payout id breaks the rules (1–193 characters, as an id's)."""
    return _text_problem("payout", payout, PAYOUT_CHARS_MAX)


_ACCOUNT_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")


def account_problem(account_id: object) -> str | None:
    """spec.md#fields: why an account id breaks the rules (1–64 of A–Z a–z 0–9 _ . -)."""
    if not isinstance(account_id, str):
        return "account must be a string"
    if not 1 <= len(account_id) <= ACCOUNT_CHARS_MAX:
        return (
            f"account {shown(account_id)} must be 1 to {ACCOUNT_CHARS_MAX} characters long, "
            f"not {len(account_id)}"
        )
    if _ACCOUNT_CHARS.issuperset(account_id):
        return None
    bad = next(char for char in account_id if char not in _ACCOUNT_CHARS)
    return f"account {shown(account_id)} may use only A-Z a-z 0-9 _ . - but has {bad!r}"


def _amount_rejection(field: CommandField, quantity: Quantity) -> Rejected | None:
    """spec.md#amount-grammar: an amount is digits with at most 2 decimals, > 0 (or ≥ 0), ≤ limit."""
    name = field.name
    if isinstance(quantity, InvalidAmount):
        if quantity.over_limit:
            message = f"{name} {shown(quantity.text)} is over the limit of {minor_text(AMOUNT_MINOR_MAX)}"
        else:
            message = (
                f"{name} {shown(quantity.text)} is not an amount: write ASCII digits with at most "
                f"two decimals, like 1500 or 1500.25"
            )
        return Rejected(code=Code.INVALID_AMOUNT, message=message)
    if quantity < 0 or (quantity == 0 and not field.zero_allowed):
        allowed = "0 or more" if field.zero_allowed else "more than 0"
        return Rejected(code=Code.INVALID_AMOUNT, message=f"{name} {minor_text(quantity)} must be {allowed}")
    if quantity > AMOUNT_MINOR_MAX:
        return Rejected(
            code=Code.INVALID_AMOUNT,
            message=f"{name} {minor_text(quantity)} is over the limit of {minor_text(AMOUNT_MINOR_MAX)}",
        )
    return None


def _shares_rejection(shares: list[tuple[CommandField, Quantity]]) -> Rejected | None:
    """spec.md#amount-grammar: each share is a percentage in [0, 100], and they total at most 100."""
    for field, quantity in shares:
        name = field.name
        if isinstance(quantity, InvalidAmount) and quantity.over_limit:
            return Rejected(
                code=Code.INVALID_SHARES,
                message=f"{name} {shown(quantity.text)} % must be from 0 to 100 %",
            )
        if isinstance(quantity, InvalidAmount):
            return Rejected(
                code=Code.INVALID_SHARES,
                message=(
                    f"{name} {shown(quantity.text)} is not a percentage: write ASCII digits with at "
                    f"most two decimals, from 0 to 100, like 9 or 47.82"
                ),
            )
        if not 0 <= quantity <= BP_PER_WHOLE:
            return Rejected(
                code=Code.INVALID_SHARES,
                message=f"{name} {minor_text(quantity)} % must be from 0 to 100 %",
            )
    shares_bp = [(field, quantity) for field, quantity in shares if isinstance(quantity, int)]
    assert len(shares_bp) == len(shares), "every share passed its own check"
    total_bp = sum(share_bp for _, share_bp in shares_bp)
    if total_bp > BP_PER_WHOLE:
        parts = " and ".join(f"{field.name} {minor_text(share_bp)} %" for field, share_bp in shares_bp)
        return Rejected(
            code=Code.INVALID_SHARES,
            message=f"{parts} add up to {minor_text(total_bp)} %, more than 100 %",
        )
    return None


def _refused(command: Command, code: Code, message: str) -> Refused:
    return Refused(command=command, code=code, message=message)


# --- open_account --------------------------------------------------------------------------------


def open_account_applied(command: OpenAccount) -> Applied:
    """spec.md#open_account: the account exists with these shares."""
    assert isinstance(command.my_share_bp, int) and isinstance(command.company_share_bp, int)
    event = AccountOpened(my_share_bp=command.my_share_bp, company_share_bp=command.company_share_bp)
    return Applied(command=command, events=(event,))


# --- fund ----------------------------------------------------------------------------------------


def fund_rejection(account: Account, command: Fund) -> Refused | None:
    """spec.md#fund: `limit_exceeded` if Σ FUNDING would pass the limit."""
    assert isinstance(command.amount_minor, int)
    if account.funding_minor + command.amount_minor > AMOUNT_MINOR_MAX:
        return _refused(
            command,
            Code.LIMIT_EXCEEDED,
            f"amount {minor_text(command.amount_minor)} would take the account's total funding "
            f"({minor_text(account.funding_minor)}) past the limit of {minor_text(AMOUNT_MINOR_MAX)}",
        )
    return None


def fund_applied(account: Account, command: Fund) -> Applied:
    """spec.md#fund: FUNDING, CAPITAL and CB grow by the amount, loss or no loss."""
    assert isinstance(command.amount_minor, int)
    return Applied(command=command, events=(Funded(amount_minor=command.amount_minor),))


# --- record_balance ------------------------------------------------------------------------------


def record_balance_rejection(account: Account, command: RecordBalance) -> Refused | None:
    """spec.md#record_balance: `loss_active`, `stale_balance`, `limit_exceeded`, in that order."""
    assert isinstance(command.balance_minor, int)
    if account.loss is not None:
        return _refused(
            command,
            Code.LOSS_ACTIVE,
            f"a loss of {minor_text(account.loss.remaining_minor)} is active (payable "
            f"{minor_text(loss_payable_minor(account.loss))}): settle it before recording a balance",
        )
    latest = account.balance_date_latest
    if command.date is not None and latest is not None and command.date < latest:
        return _refused(
            command,
            Code.STALE_BALANCE,
            f"date {command.date.isoformat()} is earlier than the latest recorded balance's "
            f"date {latest.isoformat()}",
        )
    profit_minor = command.balance_minor - account.capital_minor
    if profit_minor > 0 and account.profit_withdrawn_minor + profit_minor > AMOUNT_MINOR_MAX:
        return _refused(
            command,
            Code.LIMIT_EXCEEDED,
            f"balance {minor_text(command.balance_minor)} means a profit of {minor_text(profit_minor)}, "
            f"which would take the account's total profit withdrawn "
            f"({minor_text(account.profit_withdrawn_minor)}) past the limit of "
            f"{minor_text(AMOUNT_MINOR_MAX)}",
        )
    return None


def record_balance_applied(account: Account, command: RecordBalance) -> Applied:
    """spec.md#record_balance: profit is withdrawn at once; a loss opens, written off if payable 0."""
    balance_minor = command.balance_minor
    assert isinstance(balance_minor, int)
    capital_minor = account.capital_minor
    events: list[Event] = [
        BalanceRecorded(balance_minor=balance_minor, capital_minor=capital_minor, date=command.date)
    ]
    if balance_minor > capital_minor:
        events.append(
            ProfitWithdrawn(
                payout_id=payout_id(account.id, command.id), amount_minor=balance_minor - capital_minor
            )
        )
    elif balance_minor < capital_minor:
        loss_minor = capital_minor - balance_minor
        events.append(
            LossOpened(
                opened_by=command.id,
                capital_minor=capital_minor,
                balance_minor=balance_minor,
                original_minor=loss_minor,
                my_share_bp=account.my_share_bp,
                company_share_bp=account.company_share_bp,
            )
        )
        # E9: a loss that owes no minor unit would block the account forever; close it now.
        if payable_minor(loss_minor, account.total_share_bp) == 0:
            events.append(LossWrittenOff(loss=command.id, capital_closed_minor=loss_minor))
    return Applied(command=command, events=tuple(events))


# --- settle --------------------------------------------------------------------------------------


def loss_payable_minor(loss: Loss) -> int:
    """spec.md#settle: what a loss's remaining owes now, at the shares frozen into it."""
    return payable_minor(loss.remaining_minor, loss.my_share_bp + loss.company_share_bp)


def settle_rejection(account: Account, command: Settle) -> Refused | None:
    """spec.md#settle: `no_active_loss`, then `payment_exceeds_payable`."""
    assert isinstance(command.payment_minor, int)
    if account.loss is None:
        return _refused(command, Code.NO_ACTIVE_LOSS, "there is no active loss to settle on this account")
    payable = loss_payable_minor(account.loss)
    if command.payment_minor > payable:
        return _refused(
            command,
            Code.PAYMENT_EXCEEDS_PAYABLE,
            f"payment {minor_text(command.payment_minor)} is more than the payable "
            f"{minor_text(payable)} of the active loss "
            f"(remaining {minor_text(account.loss.remaining_minor)})",
        )
    return None


def settle_applied(account: Account, command: Settle) -> Applied:
    """spec.md#settle: close capital by the rounding rule and split the payment into the shares."""
    loss = account.loss
    payment = command.payment_minor
    assert loss is not None and isinstance(payment, int)
    if payment == loss_payable_minor(loss):
        closed_minor = loss.remaining_minor
    else:
        closed_minor = capital_closed_minor(
            payment, loss.remaining_minor, loss.my_share_bp + loss.company_share_bp
        )
    my_minor = my_share_minor(payment, loss.my_share_bp, loss.company_share_bp)
    event = Settled(
        loss=loss.opened_by,
        payment_minor=payment,
        capital_closed_minor=closed_minor,
        my_share_minor=my_minor,
        company_share_minor=payment - my_minor,
    )
    return Applied(command=command, events=(event,))


# --- set_shares ----------------------------------------------------------------------------------


def set_shares_applied(account: Account, command: SetShares) -> Applied:
    """spec.md#set_shares: the shares of later losses; the active loss keeps its frozen shares."""
    assert isinstance(command.my_share_bp, int) and isinstance(command.company_share_bp, int)
    event = SharesSet(my_share_bp=command.my_share_bp, company_share_bp=command.company_share_bp)
    return Applied(command=command, events=(event,))


# --- confirm_payout ------------------------------------------------------------------------------


def confirm_payout_rejection(account: Account, command: ConfirmPayout, lookup: Lookup) -> Refused | None:
    """spec.md#confirm_payout: `unknown_payout` if the account has no payout of that id."""
    if lookup.payout is None:
        return _refused(
            command,
            Code.UNKNOWN_PAYOUT,
            f"payout {shown(command.payout)} is not a payout of account {account.id!r}",
        )
    return None


def confirm_payout_applied(account: Account, command: ConfirmPayout, lookup: Lookup) -> Applied:
    """spec.md#confirm_payout: a pending payout is paid; a confirmed one stays as it is."""
    payout = lookup.payout
    assert payout is not None and payout.id == command.payout
    if payout.status is PayoutStatus.CONFIRMED:
        return Applied(command=command, events=())
    return Applied(
        command=command, events=(PayoutConfirmed(payout_id=payout.id, amount_minor=payout.amount_minor),)
    )


# --- decide: the checks every command shares, in the precedence of spec.md#precedence ------------


def command_rejection(command: Command) -> Rejected | None:
    """spec.md#fields: `malformed` for an id, account or payout outside the rules (the codec checks first)."""
    problem = id_problem(command.id) or account_problem(command.account)
    if problem is None and isinstance(command, ConfirmPayout):
        problem = payout_problem(command.payout)
    if problem is not None:
        return Rejected(code=Code.MALFORMED, message=problem)
    return None


def quantity_rejection(command: Command) -> Rejected | None:
    """spec.md#amount-grammar: `invalid_amount` or `invalid_shares`, field by field in the table's order."""
    shares: list[tuple[CommandField, Quantity]] = []
    for field in COMMAND_TYPE_OF[type(command)].fields:
        if field.kind is FieldKind.AMOUNT:
            rejection = _amount_rejection(field, getattr(command, field.attribute))
            if rejection is not None:
                return rejection
        elif field.kind is FieldKind.SHARE:
            shares.append((field, getattr(command, field.attribute)))
    return _shares_rejection(shares) if shares else None


def repetition(account: Account, command: Command, lookup: Lookup) -> Repeated | Rejected | None:
    """spec.md#idempotency: a used id gives its recorded outcome if the command is the same."""
    entry = lookup.entry
    if entry is None:
        return None
    # attrs equality is the spec's sameness: same class, every field equal; quantities compare as
    # numbers, and an InvalidAmount equals nothing (a refused or applied command never holds one).
    if entry.command == command:
        return Repeated(entry=entry)
    return Rejected(
        code=Code.IDEMPOTENCY_CONFLICT,
        message=(
            f"id {shown(command.id)} was already used on account {account.id!r} by a different command "
            f"({command_text(entry.command)}); use a new id for a new command"
        ),
    )


def command_text(command: Command) -> str:
    """A command as a clerk reads it: its type, then each field as the boundary names it."""
    command_type = COMMAND_TYPE_OF[type(command)]
    parts = []
    for field in command_type.fields:
        value = getattr(command, field.attribute)
        if field.kind in (FieldKind.AMOUNT, FieldKind.SHARE):
            parts.append(f"{field.name}={quantity_text(value)}")
        elif isinstance(value, datetime.date):
            parts.append(f"{field.name}={value.isoformat()}")
        elif value is not None:
            parts.append(f"{field.name}={shown(value)}")
    return " ".join([command_type.name, ", ".join(parts)])


REFUSAL_RULES: Final[dict[Code, str]] = {
    Code.LOSS_ACTIVE: "a balance cannot be recorded while a loss is active",
    Code.STALE_BALANCE: "its date was earlier than the latest recorded balance's",
    Code.LIMIT_EXCEEDED: (
        f"it would have taken a running total past the limit of {minor_text(AMOUNT_MINOR_MAX)}"
    ),
    Code.NO_ACTIVE_LOSS: "there was no active loss to settle",
    Code.PAYMENT_EXCEEDS_PAYABLE: "the payment was more than the payable of the active loss",
    Code.UNKNOWN_PAYOUT: "the account had no payout of that id",
}
"""spec.md#idempotency: each state rule in words, for the answer to a retried refusal."""


def recorded_refusal_message(entry: Refused) -> str:
    """spec.md#idempotency: the answer to a retried refusal, from what is stored: its command and code.

    The first answer's message, with the figures of that moment, is not stored (a refusal is its
    code), so a retry is told which rule refused it and that the same command will be refused again.
    """
    return (
        f"id {shown(entry.command.id)} was refused when first sent: {REFUSAL_RULES[entry.code]}; the "
        f"same command gets the same answer, so send a new command under a new id"
    )


def state_rejection(account: Account, command: Command, lookup: Lookup) -> Refused | None:
    """spec.md#precedence: the command's state rules, in spec order; refusals are recorded."""
    if isinstance(command, Fund):
        return fund_rejection(account, command)
    if isinstance(command, RecordBalance):
        return record_balance_rejection(account, command)
    if isinstance(command, Settle):
        return settle_rejection(account, command)
    if isinstance(command, ConfirmPayout):
        return confirm_payout_rejection(account, command, lookup)
    return None


def applied(account: Account, command: Command, lookup: Lookup) -> Applied:
    """The events of a command that passed every rule."""
    if isinstance(command, Fund):
        return fund_applied(account, command)
    if isinstance(command, RecordBalance):
        return record_balance_applied(account, command)
    if isinstance(command, Settle):
        return settle_applied(account, command)
    if isinstance(command, SetShares):
        return set_shares_applied(account, command)
    if isinstance(command, ConfirmPayout):
        return confirm_payout_applied(account, command, lookup)
    raise AssertionError(f"open_account is decided without an account, not {command!r}")


def payout_looked_up(command: Command) -> str | None:
    """spec.md#storage: the payout id a store must look up for this command, if any."""
    return command.payout if isinstance(command, ConfirmPayout) else None


@icontract.require(contracts.is_reachable, "a reachable account", enabled=icontract.SLOW)
@icontract.require(contracts.decide_may_run, "contracts.DECIDE_REQUIRES", error=contracts.decide_refusal)
@icontract.ensure(
    lambda command, result: contracts.records_its_command(command, result), "the entry records this command"
)
def decide(account: Account | None, command: Command, lookup: Lookup) -> Decision:
    """Decide a command against its account (None if it does not exist) and what its keys recall."""
    rejection = command_rejection(command)
    if rejection is not None:
        return rejection
    if account is not None:
        repeated = repetition(account, command, lookup)
        if repeated is not None:
            return repeated
    if account is None and not isinstance(command, OpenAccount):
        return Rejected(code=Code.UNKNOWN_ACCOUNT, message=f"account {command.account!r} does not exist")
    if account is not None and isinstance(command, OpenAccount):
        return Rejected(code=Code.ACCOUNT_EXISTS, message=f"account {command.account!r} already exists")
    rejection = quantity_rejection(command)
    if rejection is not None:
        return rejection
    if account is None:
        assert isinstance(command, OpenAccount)
        return open_account_applied(command)
    refusal = state_rejection(account, command, lookup)
    if refusal is not None:
        return refusal
    # From here the command cannot fail: every rule has passed.
    return applied(account, command, lookup)


# --- fold: the only way a new account comes to be ------------------------------------------------


def _kinds(entry: Entry) -> str:
    """An entry's events by kind, for a message: `[AccountOpened, Funded]`, `[]`, or `a refusal`."""
    if not isinstance(entry, Applied):
        return "a refusal"
    return "[" + ", ".join(type(event).__name__ for event in entry.events) + "]"


def _opened(entry: Entry) -> Account:
    # Raised, not asserted: an audit folds what it reads, and `python -O` drops assertions.
    if not (
        isinstance(entry, Applied) and len(entry.events) == 1 and isinstance(entry.events[0], AccountOpened)
    ):
        raise AssertionError(f"an account opens with one account_opened event, not {_kinds(entry)}")
    command, event = entry.command, entry.events[0]
    return Account(
        id=command.account,
        my_share_bp=event.my_share_bp,
        company_share_bp=event.company_share_bp,
        capital_minor=0,
        balance_minor=0,
        funding_minor=0,
        capital_closed_minor=0,
        profit_withdrawn_minor=0,
        payments_minor=0,
        my_share_minor=0,
        company_share_minor=0,
        loss=None,
        balance_date_latest=None,
        entry_count=1,
        payout_count=0,
        payout_confirmed_count=0,
        payout_confirmed_minor=0,
    )


def opened_loss(event: LossOpened) -> Loss:
    """The loss an event opens, as it stands when opened: nothing of it closed yet."""
    return Loss(
        opened_by=event.opened_by,
        capital_minor=event.capital_minor,
        balance_minor=event.balance_minor,
        original_minor=event.original_minor,
        remaining_minor=event.original_minor,
        capital_closed_minor=0,
        my_share_bp=event.my_share_bp,
        company_share_bp=event.company_share_bp,
    )


def _after(account: Account, events: tuple[Event, ...]) -> Account:
    """The account after one more ledger entry with these events (none for a refusal): each event's
    effect on the figures, then the account built once (`attrs.evolve` per event cost more than the
    arithmetic, docs/performance.md)."""
    my_share_bp, company_share_bp = account.my_share_bp, account.company_share_bp
    capital_minor, balance_minor = account.capital_minor, account.balance_minor
    funding_minor, capital_closed_minor = account.funding_minor, account.capital_closed_minor
    profit_withdrawn_minor, payments_minor = account.profit_withdrawn_minor, account.payments_minor
    my_share_total_minor, company_share_total_minor = account.my_share_minor, account.company_share_minor
    loss, latest = account.loss, account.balance_date_latest
    payout_count, payout_confirmed_count = account.payout_count, account.payout_confirmed_count
    payout_confirmed_minor = account.payout_confirmed_minor
    for event in events:
        if isinstance(event, Funded):
            funding_minor += event.amount_minor
            capital_minor += event.amount_minor
            balance_minor += event.amount_minor
        elif isinstance(event, BalanceRecorded):
            balance_minor = event.balance_minor
            if event.date is not None and (latest is None or event.date > latest):
                latest = event.date
        elif isinstance(event, ProfitWithdrawn):
            balance_minor -= event.amount_minor
            profit_withdrawn_minor += event.amount_minor
            payout_count += 1
        elif isinstance(event, LossOpened):
            loss = opened_loss(event)
        elif isinstance(event, (Settled, LossWrittenOff)):
            if loss is None or loss.opened_by != event.loss:  # raised: `python -O` drops assertions
                raise AssertionError(f"capital closes only the active loss, not {event.loss!r}")
            capital_minor -= event.capital_closed_minor
            capital_closed_minor += event.capital_closed_minor
            remaining_minor = loss.remaining_minor - event.capital_closed_minor
            loss = (
                None
                if remaining_minor == 0
                else Loss(
                    opened_by=loss.opened_by,
                    capital_minor=loss.capital_minor,
                    balance_minor=loss.balance_minor,
                    original_minor=loss.original_minor,
                    remaining_minor=remaining_minor,
                    capital_closed_minor=loss.capital_closed_minor + event.capital_closed_minor,
                    my_share_bp=loss.my_share_bp,
                    company_share_bp=loss.company_share_bp,
                )
            )
            if isinstance(event, Settled):
                payments_minor += event.payment_minor
                my_share_total_minor += event.my_share_minor
                company_share_total_minor += event.company_share_minor
        elif isinstance(event, SharesSet):
            my_share_bp, company_share_bp = event.my_share_bp, event.company_share_bp
        elif isinstance(event, PayoutConfirmed):
            payout_confirmed_count += 1
            payout_confirmed_minor += event.amount_minor
        else:
            raise AssertionError(f"an account has no rule for {event!r}")
    return Account(
        id=account.id,
        my_share_bp=my_share_bp,
        company_share_bp=company_share_bp,
        capital_minor=capital_minor,
        balance_minor=balance_minor,
        funding_minor=funding_minor,
        capital_closed_minor=capital_closed_minor,
        profit_withdrawn_minor=profit_withdrawn_minor,
        payments_minor=payments_minor,
        my_share_minor=my_share_total_minor,
        company_share_minor=company_share_total_minor,
        loss=loss,
        balance_date_latest=latest,
        entry_count=account.entry_count + 1,
        payout_count=payout_count,
        payout_confirmed_count=payout_confirmed_count,
        payout_confirmed_minor=payout_confirmed_minor,
    )


# icontract checks preconditions from the bottom one up: the cheap shape checks come first, so that
# under ICONTRACT_SLOW (the CrossHair run) the exact ones above them see only well-formed calls.
# There fold takes only a reachable account and the entry decide gives for it; at run time both hold
# by induction, since the last fold's postconditions checked the account. Each table of contracts is
# one icontract condition: what a condition costs icontract is many times what its predicate does.
@icontract.require(
    lambda account, entry, lookup: decide(account, entry.command, lookup) == entry,
    "the entry is the decision of its command",
    enabled=icontract.SLOW,
)
@icontract.require(contracts.is_reachable, "a reachable account", enabled=icontract.SLOW)
@icontract.require(
    lambda account, entry, lookup: (
        contracts.requirement_broken(contracts.FOLD_REQUIRES, account, entry.command, lookup) is None
    ),
    "fold's preconditions (contracts.FOLD_REQUIRES)",
    error=contracts.fold_refusal,
)
@icontract.ensure(
    lambda account, entry, lookup, result: contracts.guarantee_broken(account, entry, lookup, result) is None,
    "the invariants after the step (contracts.FOLD_ENSURES)",
    error=contracts.fold_violation,
)
def fold(account: Account | None, entry: Entry, lookup: Lookup) -> Account:
    """The account after one ledger entry, given what its keys recalled before it: its events, counted."""
    if account is None:
        return _opened(entry)
    return _after(account, entry.events if isinstance(entry, Applied) else ())


def payouts_written(entry: Entry) -> tuple[Payout, ...]:
    """spec.md#e3: the payouts an entry writes to the outbox: each withdrawal new and pending, each
    confirmation confirmed; a store writes these beside the entry, in the same transaction."""
    written: list[Payout] = []
    for event in entry.events if isinstance(entry, Applied) else ():
        if isinstance(event, ProfitWithdrawn):
            written.append(
                Payout(id=event.payout_id, amount_minor=event.amount_minor, status=PayoutStatus.PENDING)
            )
        elif isinstance(event, PayoutConfirmed):
            written.append(
                Payout(id=event.payout_id, amount_minor=event.amount_minor, status=PayoutStatus.CONFIRMED)
            )
    return tuple(written)


def losses_written(before: Account | None, entry: Entry, after: Account) -> tuple[Loss, ...]:
    """spec.md#settle: each loss an entry opened or paid, as it stands after it (closed: nothing
    remains); a store writes these beside the entry, in the same transaction."""
    written: dict[str, Loss] = {}
    for event in entry.events if isinstance(entry, Applied) else ():
        if isinstance(event, LossOpened):
            written[event.opened_by] = opened_loss(event)
        elif isinstance(event, (Settled, LossWrittenOff)) and event.loss not in written:
            assert before is not None and before.loss is not None and before.loss.opened_by == event.loss
            written[event.loss] = before.loss
    return tuple(
        after.loss
        if after.loss is not None and after.loss.opened_by == opened_by
        else attrs.evolve(loss, remaining_minor=0, capital_closed_minor=loss.original_minor)
        for opened_by, loss in written.items()
    )


def replay_with_payouts(entries: Iterable[Entry]) -> tuple[Account | None, dict[str, Payout]]:
    """spec.md#replay: the account and the payouts a ledger folds into from empty.

    The payouts written so far are the only history a later entry's lookup needs; ids are looked up
    as free, so a ledger that repeats one breaks fold's I8 contract.
    """
    account: Account | None = None
    payouts: dict[str, Payout] = {}
    for entry in entries:
        named = payout_looked_up(entry.command)
        lookup = NOTHING_RECORDED if named is None else Lookup(payout=payouts.get(named))
        account = fold(account, entry, lookup)
        for payout in payouts_written(entry):
            payouts[payout.id] = payout
    return account, payouts


def replay(entries: Iterable[Entry]) -> Account | None:
    """spec.md#replay: the account a ledger folds into from empty (None for an empty ledger)."""
    account, _ = replay_with_payouts(entries)
    return account


# decide and fold without their own contracts (as they are under `python -O`, which leaves them unwrapped).
_decide: Final = getattr(decide, "__wrapped__", decide)
_fold: Final = getattr(fold, "__wrapped__", fold)


# execute checks every contract of decide's and fold's once, in one icontract call of its own rather
# than in two: what icontract costs a call is several times what these conditions cost
# (docs/performance.md). decide and fold keep their own contracts for those who call them alone.
@icontract.require(contracts.is_reachable, "a reachable account", enabled=icontract.SLOW)
@icontract.require(contracts.decide_may_run, "contracts.DECIDE_REQUIRES", error=contracts.decide_refusal)
@icontract.ensure(
    lambda account, command, lookup, result: contracts.step_broken(account, command, lookup, result) is None,
    "decide's and fold's postconditions on the step (contracts.step_broken)",
    error=contracts.step_violation,
)
def execute(account: Account | None, command: Command, lookup: Lookup) -> tuple[Decision, Account | None]:
    """Decide a command and fold it if it is recorded: the decision and the account after it."""
    decision: Decision = _decide(account, command, lookup)
    if isinstance(decision, (Applied, Refused)):
        return decision, _fold(account, decision, lookup)
    return decision, account
