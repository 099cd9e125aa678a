"""Forgeries of a reachable ledger: what an auditor must catch (spec.md#invariants, spec.md#e6).

A checker that passes every honest ledger proves nothing by itself: `lambda *_: True` does too. So
the state machine also forges the books it reached, one small change at a time, and demands that
the invariant each forgery breaks says so. Every forgery is the smallest step past a boundary (an
amount one minor unit off, one entry repeated, one event added), so that a check which is weaker
than its rule by a single case lets one of them through.

Three kinds, by what they give to which form of the invariants:
- `account_forgeries`: the stored account changed; the full forms named must fail over the honest
  ledger, and so must the one-account inductive form named.
- `ledger_forgeries`: entries changed, repeated, dropped or forged at the end; the full forms named
  must fail against the stored account.
- `step_forgeries`: one step (account before, entry, account after) changed; the one-step
  inductive form named must fail, and folding a forged entry must break one of `fold`'s contracts.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final, TypeVar, cast

import attrs
import immutables

from ppk.kernel import contracts
from ppk.kernel.state import (
    AMOUNT_MINOR_MAX,
    BP_PER_WHOLE,
    Account,
    Applied,
    BalanceRecorded,
    Code,
    Entry,
    Event,
    Funded,
    LossOpened,
    LossWrittenOff,
    Payout,
    PayoutConfirmed,
    PayoutStatus,
    ProfitWithdrawn,
    RecordBalance,
    Refused,
    Settled,
)
from ppk.kernel.transitions import fold

FORGED_ID: Final = "forged"
"""The command id of an entry forged at the end of a ledger: no honest command uses it."""

AccountCheck = Callable[[Account], bool]
StepCheck = Callable[[Account | None, Entry, Account], bool]
T = TypeVar("T")


@attrs.frozen(kw_only=True)
class AccountForgery:
    """The stored account, changed: `breaks` fail over the honest ledger, and so does `inductive`."""

    name: str
    account: Account | None
    breaks: frozenset[str]
    inductive: AccountCheck | None = None


@attrs.frozen(kw_only=True)
class LedgerForgery:
    """The ledger, changed, and the stored account with it if `account` is given: `breaks` all fail."""

    name: str
    entries: tuple[Entry, ...]
    breaks: frozenset[str]
    account: Account | None = None
    """The stored account made to agree with the forged ledger; None: the account as it was."""


@attrs.frozen(kw_only=True)
class StepForgery:
    """One step, changed: `inductive(before, entry, after)` fails (if named), and fold may refuse it."""

    name: str
    before: Account | None
    entry: Entry
    after: Account | None
    """None for a forged entry whose honest result no one could compute: only fold judges it."""
    inductive: StepCheck | None
    foldable: bool = False
    """True when the forgery is in `before` or `entry` alone: `fold(before, entry)` must then refuse."""


def _ids(*names: str) -> frozenset[str]:
    return frozenset(names)


def _with(value: T, field: str, new: object) -> T:
    """`value` with one field, named at run time, set to `new`."""
    evolved: T = attrs.evolve(cast(Any, value), **{field: new})
    return evolved


# --- The stored account --------------------------------------------------------------------------

ACCOUNT_TOTALS: Final = (
    "capital_minor",
    "balance_minor",
    "funding_minor",
    "capital_closed_minor",
    "profit_withdrawn_minor",
    "payments_minor",
    "my_share_minor",
    "company_share_minor",
)
LOSS_AMOUNTS: Final = (
    "capital_minor",
    "balance_minor",
    "original_minor",
    "remaining_minor",
    "capital_closed_minor",
)
TOTAL_BREAKS: Final = {
    "capital_minor": _ids("I1"),
    "balance_minor": _ids("I5"),
    "funding_minor": _ids("I1"),
    "capital_closed_minor": _ids("I1"),
    "profit_withdrawn_minor": _ids("I7"),
    "payments_minor": _ids("I6"),
    "my_share_minor": _ids("I6"),
    "company_share_minor": _ids("I6"),
}
"""The full form that compares each stored total with the ledger."""
TOTAL_INDUCTIVE: Final[dict[str, AccountCheck | None]] = {
    "capital_minor": contracts.capital_is_conserved,
    "balance_minor": contracts.balance_agrees_with_loss,
    "funding_minor": contracts.capital_is_conserved,
    "capital_closed_minor": contracts.capital_is_conserved,
    "profit_withdrawn_minor": None,
    "payments_minor": contracts.shares_add_up_to_payments,
    "my_share_minor": contracts.shares_add_up_to_payments,
    "company_share_minor": contracts.shares_add_up_to_payments,
}
"""The one-account form that relates each total to the others (none for profit withdrawn)."""


def account_forgeries(account: Account) -> Iterator[AccountForgery]:
    """Every stored figure one unit off, past its range, or out of step with the ledger."""
    yield AccountForgery(
        name="no account for the ledger", account=None, breaks=_ids("I1", "I5", "I6", "I7", "I8")
    )
    for total in ACCOUNT_TOTALS:
        value = getattr(account, total)
        for shift in (1, -1):
            yield AccountForgery(
                name=f"{total} {shift:+d}",
                account=_with(account, total, value + shift),
                breaks=TOTAL_BREAKS[total],
                inductive=TOTAL_INDUCTIVE[total],
            )
        for bad in (-1, AMOUNT_MINOR_MAX + 1):
            yield AccountForgery(
                name=f"{total} = {bad}",
                account=_with(account, total, bad),
                breaks=frozenset(),
                inductive=contracts.amounts_are_not_negative,
            )
    closed_past = account.funding_minor + 1
    yield AccountForgery(
        name="capital closed past funding",
        account=attrs.evolve(account, capital_closed_minor=closed_past, capital_minor=-1),
        breaks=_ids("I1"),
        inductive=contracts.capital_is_not_negative,
    )
    yield AccountForgery(
        name="capital closed past funding, CAPITAL kept",
        account=attrs.evolve(account, capital_closed_minor=closed_past),
        breaks=_ids("I1"),
        inductive=contracts.capital_is_not_negative,
    )
    yield from _share_forgeries(
        lambda my, company: attrs.evolve(account, my_share_bp=my, company_share_bp=company)
    )
    yield from _payout_forgeries(account)
    yield from _outcome_forgeries(account)
    loss = account.loss
    if loss is None:
        return
    yield AccountForgery(
        name="a loss with CB = CAPITAL",
        # All else kept consistent (I5 and I9 hold), so that only I4 is broken.
        account=attrs.evolve(
            account,
            balance_minor=account.capital_minor,
            loss=attrs.evolve(loss, remaining_minor=0, capital_closed_minor=loss.original_minor),
        ),
        breaks=_ids("I5"),
        inductive=contracts.loss_implies_capital_above_balance,
    )
    yield AccountForgery(
        name="a loss with CB = CAPITAL + 1",
        account=attrs.evolve(account, balance_minor=account.capital_minor + 1),
        breaks=_ids("I5"),
        inductive=contracts.loss_implies_capital_above_balance,
    )
    yield AccountForgery(
        name="the loss opened by another command",
        account=attrs.evolve(account, loss=attrs.evolve(loss, opened_by=FORGED_ID)),
        breaks=_ids("I5", "I9"),
    )
    for shift in (1, -1):
        yield AccountForgery(
            name=f"loss remaining {shift:+d}",
            account=attrs.evolve(
                account, loss=attrs.evolve(loss, remaining_minor=loss.remaining_minor + shift)
            ),
            breaks=_ids("I5", "I9"),
            inductive=contracts.balance_agrees_with_loss,
        )
        for field in ("original_minor", "capital_closed_minor"):
            yield AccountForgery(
                name=f"loss {field} {shift:+d}",
                account=attrs.evolve(account, loss=_with(loss, field, getattr(loss, field) + shift)),
                breaks=frozenset(),
                inductive=contracts.loss_is_accounted,
            )
    for field in LOSS_AMOUNTS:
        for bad in (-1, AMOUNT_MINOR_MAX + 1):
            yield AccountForgery(
                name=f"loss {field} = {bad}",
                account=attrs.evolve(account, loss=_with(loss, field, bad)),
                breaks=frozenset(),
                inductive=contracts.amounts_are_not_negative,
            )
    yield from _share_forgeries(
        lambda my, company: attrs.evolve(
            account, loss=attrs.evolve(loss, my_share_bp=my, company_share_bp=company)
        ),
    )


def _share_forgeries(with_shares: Callable[[int, int], Account]) -> Iterator[AccountForgery]:
    """Shares just outside [0, 100 %], or adding up to one basis point past 100 %."""
    for my, company in (
        (-1, 0),
        (0, -1),
        (BP_PER_WHOLE + 1, 0),
        (0, BP_PER_WHOLE + 1),
        (BP_PER_WHOLE - 1, 2),
    ):
        yield AccountForgery(
            name=f"shares {my} + {company} bp",
            account=with_shares(my, company),
            breaks=frozenset(),
            inductive=contracts.shares_are_percentages,
        )


def _payout_forgeries(account: Account) -> Iterator[AccountForgery]:
    forged = Payout(id=FORGED_ID, amount_minor=1, status=PayoutStatus.PENDING)
    yield AccountForgery(
        name="a payout no withdrawal made",
        account=attrs.evolve(account, payouts=account.payouts.set(FORGED_ID, forged)),
        breaks=_ids("I7"),
    )
    for payout in account.payouts.values():
        flipped = PayoutStatus.PENDING if payout.status is PayoutStatus.CONFIRMED else PayoutStatus.CONFIRMED
        changes: tuple[tuple[str, immutables.Map[str, Payout]], ...] = (
            ("dropped", account.payouts.delete(payout.id)),
            (
                "amount + 1",
                account.payouts.set(payout.id, attrs.evolve(payout, amount_minor=payout.amount_minor + 1)),
            ),
            (
                "amount - 1",
                account.payouts.set(payout.id, attrs.evolve(payout, amount_minor=payout.amount_minor - 1)),
            ),
            (f"marked {flipped}", account.payouts.set(payout.id, attrs.evolve(payout, status=flipped))),
        )
        for change, payouts in changes:
            yield AccountForgery(
                name=f"payout {payout.id} {change}",
                account=attrs.evolve(account, payouts=payouts),
                breaks=_ids("I7"),
            )
        return  # one payout is enough: the checks do not depend on which


def _outcome_forgeries(account: Account) -> Iterator[AccountForgery]:
    command_id, entry = next(iter(account.outcomes.items()))
    other = attrs.evolve(entry, command=attrs.evolve(entry.command, id=FORGED_ID))
    changes = (
        ("dropped", account.outcomes.delete(command_id)),
        ("recorded for an id not in the ledger", account.outcomes.set(FORGED_ID, other)),
        ("replaced", account.outcomes.set(command_id, other)),
    )
    for change, outcomes in changes:
        yield AccountForgery(
            name=f"outcome of {command_id} {change}",
            account=attrs.evolve(account, outcomes=outcomes),
            breaks=_ids("I8"),
        )


# --- The ledger ----------------------------------------------------------------------------------


def _forged(account: Account, *events: Event) -> Applied:
    """An applied entry at the end of the ledger that no command could produce."""
    command = RecordBalance(id=FORGED_ID, account=account.id, balance_minor=0)
    return Applied(command=command, events=events)


def _replaced(entries: Sequence[Entry], index: int, events: tuple[Event, ...]) -> tuple[Entry, ...]:
    entry = entries[index]
    assert isinstance(entry, Applied)
    return (*entries[:index], attrs.evolve(entry, events=events), *entries[index + 1 :])


def _with_event(entries: Sequence[Entry], kind: type[Event]) -> Iterator[tuple[int, int, Event]]:
    """Each (entry index, event index, event) of the given kind, latest first."""
    for index in range(len(entries) - 1, -1, -1):
        entry = entries[index]
        if isinstance(entry, Applied):
            for position, event in enumerate(entry.events):
                if isinstance(event, kind):
                    yield index, position, event


def _edited(entries: Sequence[Entry], index: int, position: int, event: Event) -> tuple[Entry, ...]:
    entry = entries[index]
    assert isinstance(entry, Applied)
    events = list(entry.events)
    events[position] = event
    return _replaced(entries, index, tuple(events))


def ledger_forgeries(entries: Sequence[Entry], account: Account) -> Iterator[LedgerForgery]:
    """Entries repeated, dropped, edited one unit off, or forged at the end of the ledger."""
    entries = tuple(entries)
    last = len(entries) - 1
    yield LedgerForgery(name="the last entry twice", entries=(*entries, entries[last]), breaks=_ids("I8"))
    yield LedgerForgery(name="the last entry dropped", entries=entries[:last], breaks=_ids("I8"))
    yield LedgerForgery(name="an empty ledger", entries=(), breaks=_ids("I8"))
    capital, balance = account.capital_minor, account.balance_minor
    loss = account.loss

    def forge(name: str, breaks: frozenset[str], *events: Event) -> LedgerForgery:
        return LedgerForgery(name=name, entries=(*entries, _forged(account, *events)), breaks=breaks)

    def put_back(name: str, breaks: frozenset[str], wrong: Event, right: Event) -> LedgerForgery:
        """Two forged entries: the books are wrong after the first only, as the stored account agrees."""
        forged = (_forged(account, wrong), _forged(account, right))
        return LedgerForgery(name=name, entries=(*entries, *forged), breaks=breaks)

    def recorded(balance_minor: int) -> BalanceRecorded:
        return BalanceRecorded(balance_minor=balance_minor, capital_minor=capital, date=None)

    def opened(original_minor: int) -> LossOpened:
        return LossOpened(
            opened_by=FORGED_ID,
            capital_minor=capital,
            balance_minor=capital - original_minor,
            original_minor=original_minor,
            my_share_bp=account.my_share_bp,
            company_share_bp=account.company_share_bp,
        )

    active = loss.opened_by if loss is not None else FORGED_ID
    written_off = LossWrittenOff(loss=active, capital_closed_minor=capital + 1)
    yield forge(
        "capital closed past funding", _ids("I2", "I10"), *((opened(1),) if loss is None else ()), written_off
    )
    yield forge("a fund of -1", _ids("I10"), Funded(amount_minor=-1))
    yield forge("a fund over the limit", _ids("I10"), Funded(amount_minor=AMOUNT_MINOR_MAX + 1))
    yield forge("CB = -1", _ids("I10"), recorded(-1))
    yield forge(
        "CB = -1 by a withdrawal", _ids("I10"), ProfitWithdrawn(payout_id=FORGED_ID, amount_minor=balance + 1)
    )
    yield forge("two losses opened at once", _ids("I3"), opened(1), opened(1))
    for shift in (0, 1):
        events = (recorded(capital + shift),) if loss is not None else (opened(1), recorded(capital + shift))
        yield forge(f"a loss with CB = CAPITAL + {shift}", _ids("I4"), *events)
    for shift in (-1, 1):
        # CB off by one for one entry, then put back: under a loss its remaining disagrees; with none
        # (CB = CAPITAL then), a profit kept or a loss never opened.
        yield put_back(
            f"CB {shift:+d} for one entry", _ids("I5"), recorded(balance + shift), recorded(balance)
        )
    if loss is not None:
        yield forge("a loss opened while one is active", _ids("I3"), opened(1))
        yield forge("a loss left unrecorded", _ids("I5"), recorded(balance - 1))
        over_closed = LossWrittenOff(loss=loss.opened_by, capital_closed_minor=loss.remaining_minor + 1)
        yield forge("a loss closed one unit past what remains", _ids("I4"), over_closed)
    else:
        yield forge(
            "capital closed with no loss", _ids("I3"), LossWrittenOff(loss=FORGED_ID, capital_closed_minor=0)
        )
        yield forge("a profit left in the balance", _ids("I5"), recorded(capital + 1))
        yield forge("a settlement of a loss never opened", _ids("I3", "I9"), _settled(FORGED_ID, 0, 0, 0))
    yield from _payout_ledger_forgeries(account, forge)
    for index, position, event in itertools.islice(_with_event(entries, Settled), 1):
        assert isinstance(event, Settled)
        for my, company, breaks in (
            (event.my_share_minor + 1, event.company_share_minor, _ids("I6")),
            (event.my_share_minor - 1, event.company_share_minor, _ids("I6")),
            (-1, event.payment_minor + 1, _ids("I6", "I10")),
            (event.payment_minor + 1, -1, _ids("I6", "I10")),
        ):
            yield LedgerForgery(
                name=f"settlement split {my} + {company} of {event.payment_minor}",
                entries=_edited(
                    entries,
                    index,
                    position,
                    attrs.evolve(event, my_share_minor=my, company_share_minor=company),
                ),
                breaks=breaks,
            )
        yield LedgerForgery(
            name="a settlement of a loss never opened",
            entries=_edited(entries, index, position, attrs.evolve(event, loss=FORGED_ID)),
            breaks=_ids("I9"),
        )
    for index, position, event in itertools.islice(_with_event(entries, LossOpened), 1):
        assert isinstance(event, LossOpened)
        for shift in (1, -1):
            yield LedgerForgery(
                name=f"a loss opened {shift:+d} off",
                entries=_edited(
                    entries, index, position, attrs.evolve(event, original_minor=event.original_minor + shift)
                ),
                breaks=_ids("I9"),
            )


def _settled(loss: str, payment: int, my: int, company: int) -> Settled:
    return Settled(
        loss=loss,
        payment_minor=payment,
        capital_closed_minor=payment,
        my_share_minor=my,
        company_share_minor=company,
    )


def _payout_ledger_forgeries(
    account: Account, forge: Callable[..., LedgerForgery]
) -> Iterator[LedgerForgery]:
    yield forge(
        "a confirmation of a payout never withdrawn", _ids("I7"), PayoutConfirmed(payout_id=FORGED_ID)
    )
    yield forge("a withdrawal of nothing", _ids("I7"), ProfitWithdrawn(payout_id=FORGED_ID, amount_minor=0))
    for amount in (0, -1):
        # The stored account agrees with the forged withdrawal: only the amount's own check can object.
        payout = Payout(id=FORGED_ID, amount_minor=amount, status=PayoutStatus.PENDING)
        withdrawn = ProfitWithdrawn(payout_id=FORGED_ID, amount_minor=amount)
        yield attrs.evolve(
            forge(f"a withdrawal of {amount}, stored as such", _ids("I7"), withdrawn),
            account=attrs.evolve(
                account,
                payouts=account.payouts.set(FORGED_ID, payout),
                profit_withdrawn_minor=account.profit_withdrawn_minor + amount,
            ),
        )
    for payout in itertools.islice(account.payouts.values(), 1):
        yield forge(
            "a second withdrawal under a payout id",
            _ids("I7"),
            ProfitWithdrawn(payout_id=payout.id, amount_minor=payout.amount_minor),
        )
        confirmations = PayoutConfirmed(payout_id=payout.id), PayoutConfirmed(payout_id=payout.id)
        yield forge(
            "a payout confirmed twice",
            _ids("I7"),
            *confirmations[: 1 if payout.status is PayoutStatus.CONFIRMED else 2],
        )


# --- One step ------------------------------------------------------------------------------------


def steps(entries: Sequence[Entry]) -> Iterator[tuple[Account | None, Entry, Account]]:
    """Each honest step of a ledger: the account before, the entry, the account after."""
    accounts: list[Account | None] = [None]
    for entry in entries:
        accounts.append(fold(accounts[-1], entry))
    for index, entry in enumerate(entries):
        after = accounts[index + 1]
        assert after is not None
        yield accounts[index], entry, after


TOTAL_EVENTS: Final = (
    "funding_minor",
    "capital_closed_minor",
    "payments_minor",
    "my_share_minor",
    "company_share_minor",
    "profit_withdrawn_minor",
)


def step_forgeries(entries: Sequence[Entry]) -> Iterator[StepForgery]:
    """The latest honest step of each kind, changed so that its one-step form must fail."""
    latest: dict[str, tuple[Account | None, Entry, Account]] = {}
    for before, entry, after in steps(entries):
        kinds = {type(event).__name__ for event in (entry.events if isinstance(entry, Applied) else ())}
        for kind in kinds | {"any", type(entry).__name__}:
            latest[kind] = (before, entry, after)
    before, entry, after = latest["any"]
    for total in TOTAL_EVENTS:
        for shift in (1, -1):
            yield StepForgery(
                name=f"{total} moved {shift:+d} unlike the events",
                before=before,
                entry=entry,
                after=_with(after, total, getattr(after, total) + shift),
                inductive=contracts.totals_follow_events,
            )
    yield from _recording_forgeries(before, entry, after)
    if "Refused" in latest:
        before, entry, after = latest["Refused"]
        yield StepForgery(
            name="a refusal that moves CB",
            before=before,
            entry=entry,
            after=attrs.evolve(after, balance_minor=after.balance_minor + 1),
            inductive=contracts.refusal_changes_nothing_else,
        )
    if before is not None:
        yield StepForgery(
            name="a refusal as the first entry",
            before=None,
            entry=Refused(command=entry.command, code=Code.NO_ACTIVE_LOSS, message="forged"),
            after=after,
            inductive=contracts.refusal_changes_nothing_else,
        )
    yield from _loss_step_forgeries(latest)
    yield from _settlement_step_forgeries(latest)
    yield from _payout_step_forgeries(latest)
    yield from _fold_only_forgeries(latest)


def _recording_forgeries(before: Account | None, entry: Entry, after: Account) -> Iterator[StepForgery]:
    """spec.md#i8, one step: an id already recorded, or recorded as another entry, or twice."""
    if before is not None:
        prior = next(iter(before.outcomes))
        reused = attrs.evolve(entry, command=attrs.evolve(entry.command, id=prior))
        yield StepForgery(
            name="an id recorded before",
            before=before,
            entry=reused,
            after=attrs.evolve(after, outcomes=after.outcomes.set(prior, reused)),
            inductive=contracts.command_id_is_recorded_once,
            foldable=True,
        )
    yield StepForgery(
        name="recorded as a copy of the entry",
        before=before,
        entry=entry,
        after=attrs.evolve(after, outcomes=after.outcomes.set(entry.command.id, attrs.evolve(entry))),
        inductive=contracts.command_id_is_recorded_once,
    )
    if before is not None:
        earlier = next(iter(before.outcomes))
        yield StepForgery(
            name="an earlier outcome dropped",
            before=before,
            entry=entry,
            after=attrs.evolve(after, outcomes=after.outcomes.delete(earlier)),
            inductive=contracts.command_id_is_recorded_once,
        )
    yield StepForgery(
        name="an extra outcome recorded",
        before=before,
        entry=entry,
        after=attrs.evolve(after, outcomes=after.outcomes.set(FORGED_ID, entry)),
        inductive=contracts.command_id_is_recorded_once,
    )


def _loss_step_forgeries(latest: dict[str, tuple[Account | None, Entry, Account]]) -> Iterator[StepForgery]:
    """spec.md#i3, one step: a second loss in one entry, or a loss while one is active."""
    now = latest["any"][2]
    if now.loss is not None:
        # The active loss opened again, as the books stand: only the one-loss rule can object.
        again = LossOpened(
            opened_by=FORGED_ID,
            capital_minor=now.capital_minor,
            balance_minor=now.balance_minor,
            original_minor=now.loss.remaining_minor,
            my_share_bp=now.loss.my_share_bp,
            company_share_bp=now.loss.company_share_bp,
        )
        yield StepForgery(
            name="the active loss opened again",
            before=now,
            entry=_forged(now, again),
            after=now,  # not looked at: the rule judges the entry against the account before it
            inductive=lambda before, entry, after: contracts.loss_opens_only_when_none_is_active(
                before, entry
            ),
            foldable=True,
        )
    for before, entry, after in (latest["any"], latest.get("LossOpened", latest["any"])):
        if before is None or not isinstance(entry, Applied):
            continue
        capital = before.capital_minor
        opened = LossOpened(
            opened_by=entry.command.id,
            capital_minor=capital,
            balance_minor=capital - 1,
            original_minor=1,
            my_share_bp=before.my_share_bp,
            company_share_bp=before.company_share_bp,
        )
        events = (*entry.events, opened) if before.loss is not None else (*entry.events, opened, opened)
        yield StepForgery(
            name="a loss opened while one is active"
            if before.loss is not None
            else "two losses in one entry",
            before=before,
            entry=attrs.evolve(entry, events=events),
            after=after,
            inductive=lambda before, entry, after: contracts.loss_opens_only_when_none_is_active(
                before, entry
            ),
            foldable=True,
        )


def _settlement_step_forgeries(
    latest: dict[str, tuple[Account | None, Entry, Account]],
) -> Iterator[StepForgery]:
    """spec.md#i6, one step: a settlement whose shares miss its payment, or go below zero."""
    if "Settled" not in latest:
        return
    before, entry, after = latest["Settled"]
    assert isinstance(entry, Applied)
    for position, event in enumerate(entry.events):
        if not isinstance(event, Settled):
            continue
        for my, company in (
            (event.my_share_minor + 1, event.company_share_minor),
            (event.my_share_minor, event.company_share_minor - 1),
            (-1, event.payment_minor + 1),
            (event.payment_minor + 1, -1),
        ):
            events = list(entry.events)
            events[position] = attrs.evolve(event, my_share_minor=my, company_share_minor=company)
            yield StepForgery(
                name=f"a settlement split {my} + {company} of {event.payment_minor}",
                before=before,
                entry=attrs.evolve(entry, events=tuple(events)),
                after=after,
                inductive=lambda before, entry, after: contracts.settlements_split_their_payment(entry),
                foldable=True,
            )


def _fold_only_forgeries(latest: dict[str, tuple[Account | None, Entry, Account]]) -> Iterator[StepForgery]:
    """Forged entries only fold judges: a CB that leaves its loss behind, an entry of another account,
    capital closed on a loss that is not the active one (ids that sort before and after the right one)."""
    before, entry, _ = latest["any"]
    if before is not None:
        # Down under a loss (so that only I5 breaks, not I4 too), up without one.
        shift = -1 if before.loss is not None and before.balance_minor > 0 else 1
        balance = before.balance_minor + shift
        moved = BalanceRecorded(balance_minor=balance, capital_minor=before.capital_minor, date=None)
        yield StepForgery(
            name="CB moved with no loss opened or closed",
            before=before,
            entry=_forged(before, moved),
            after=None,
            inductive=None,
            foldable=True,
        )
    for other in ("", "\U0010ffff"):
        yield StepForgery(
            name=f"an entry of the account {other!r} folded into {entry.command.account!r}",
            before=before,
            entry=attrs.evolve(entry, command=attrs.evolve(entry.command, account=other)),
            after=None,
            inductive=None,
            foldable=before is not None,
        )
    if "Settled" not in latest:
        return
    before, entry, _ = latest["Settled"]
    assert isinstance(entry, Applied)
    for loss in ("", "\U0010ffff"):
        events = tuple(
            attrs.evolve(event, loss=loss) if isinstance(event, Settled) else event for event in entry.events
        )
        yield StepForgery(
            name=f"capital closed on the loss {loss!r}, not the active one",
            before=before,
            entry=attrs.evolve(entry, events=events),
            after=None,
            inductive=None,
            foldable=True,
        )


def _payout_step_forgeries(latest: dict[str, tuple[Account | None, Entry, Account]]) -> Iterator[StepForgery]:
    """spec.md#i7, one step: a withdrawal without its payout, a payout twice, a confirmation twice."""
    check = contracts.payouts_follow_withdrawals
    if "ProfitWithdrawn" in latest:
        before, entry, after = latest["ProfitWithdrawn"]
        assert isinstance(entry, Applied)
        (event,) = [event for event in entry.events if isinstance(event, ProfitWithdrawn)]
        payout = after.payouts[event.payout_id]
        afters = {
            "with no payout": after.payouts.delete(payout.id),
            "with a payout 1 more": after.payouts.set(
                payout.id, attrs.evolve(payout, amount_minor=payout.amount_minor + 1)
            ),
            "with a payout 1 less": after.payouts.set(
                payout.id, attrs.evolve(payout, amount_minor=payout.amount_minor - 1)
            ),
            "with a second new payout": after.payouts.set(FORGED_ID, payout),
        }
        for change, payouts in afters.items():
            yield StepForgery(
                name=f"a withdrawal {change}",
                before=before,
                entry=entry,
                after=attrs.evolve(after, payouts=payouts),
                inductive=check,
            )
        if before is not None:
            yield StepForgery(
                name="a withdrawal under a payout id already used",
                before=attrs.evolve(before, payouts=before.payouts.set(payout.id, payout)),
                entry=entry,
                after=after,
                inductive=check,
                foldable=True,
            )
        for amount in (0, -1):
            nothing = attrs.evolve(event, amount_minor=amount)
            yield StepForgery(
                name=f"a withdrawal of {amount}",
                before=before,
                entry=attrs.evolve(entry, events=tuple(nothing if e is event else e for e in entry.events)),
                after=attrs.evolve(
                    after, payouts=after.payouts.set(payout.id, attrs.evolve(payout, amount_minor=amount))
                ),
                inductive=check,
            )
    before, entry, after = latest["any"]
    if before is not None and before.payouts:
        earlier = next(iter(before.payouts))
        yield StepForgery(
            name="an earlier payout dropped",
            before=before,
            entry=entry,
            after=attrs.evolve(after, payouts=after.payouts.delete(earlier)),
            inductive=check,
        )
    if "PayoutConfirmed" in latest:
        before, entry, after = latest["PayoutConfirmed"]
        assert before is not None and isinstance(entry, Applied)
        (confirmation,) = [event for event in entry.events if isinstance(event, PayoutConfirmed)]
        payout = before.payouts[confirmation.payout_id]
        confirmed = attrs.evolve(payout, status=PayoutStatus.CONFIRMED)
        for name, forged_before, forged_after in (
            (
                "a confirmation of a payout not there before",
                before.payouts.delete(payout.id),
                after.payouts,
            ),
            (
                "a confirmation of a confirmed payout",
                before.payouts.set(payout.id, confirmed),
                after.payouts,
            ),
            (
                "a confirmation that leaves it pending",
                before.payouts,
                after.payouts.set(payout.id, payout),
            ),
            ("a confirmation that drops it", before.payouts, after.payouts.delete(payout.id)),
        ):
            yield StepForgery(
                name=name,
                before=attrs.evolve(before, payouts=forged_before),
                entry=entry,
                after=attrs.evolve(after, payouts=forged_after),
                inductive=check,
                foldable=name == "a confirmation of a confirmed payout",
            )
