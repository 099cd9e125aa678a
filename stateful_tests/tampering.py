"""Forgeries of a reachable ledger: what an auditor must catch (spec.md#invariants, spec.md#e6).

A checker that passes every honest ledger proves nothing by itself: `lambda *_: True` does too. So
the state machine also forges the books it reached, one small change at a time, and demands that
the invariant each forgery breaks says so. Every forgery is the smallest step past a boundary (an
amount one minor unit off, one entry repeated, one event added), so that a check which is weaker
than its rule by a single case lets one of them through.

Three kinds, by what they give to which form of the invariants:
- `account_forgeries`: the stored account or its stored payouts changed; the full forms named must
  fail over the honest ledger, and so must the one-account inductive form named.
- `ledger_forgeries`: entries changed, repeated, dropped or forged at the end; the full forms named
  must fail against the stored account and payouts.
- `step_forgeries`: one step (account before, entry, what was looked up for it, account after)
  changed; the one-step inductive form named must fail, and folding a forged entry must break one of
  `fold`'s contracts.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final, TypeVar, cast

import attrs

from ppk.kernel import contracts
from ppk.kernel.state import (
    AMOUNT_MINOR_MAX,
    BP_PER_WHOLE,
    NOTHING_RECORDED,
    Account,
    AccountOpened,
    Applied,
    BalanceRecorded,
    Code,
    Entry,
    Event,
    Funded,
    Lookup,
    LossOpened,
    LossWrittenOff,
    OpenAccount,
    Payout,
    PayoutConfirmed,
    PayoutStatus,
    ProfitWithdrawn,
    RecordBalance,
    Refused,
    Settled,
    payout_id,
)
from ppk.kernel.transitions import fold, payout_looked_up, payouts_written

FORGED_ID: Final = "forged"
"""The command id of an entry forged at the end of a ledger: no honest command uses it."""

AccountCheck = Callable[[Account], bool]
StepCheck = Callable[[Account | None, Entry, Lookup, Account], bool]
"""A one-step form, called as `check(before, entry, lookup, after)`."""
T = TypeVar("T")


@attrs.frozen(kw_only=True)
class AccountForgery:
    """The stored account or payouts, changed: `breaks` fail over the honest ledger; so does `inductive`."""

    name: str
    account: Account | None
    breaks: frozenset[str]
    inductive: AccountCheck | None = None
    payouts: tuple[Payout, ...] | None = None
    """The stored payouts, changed; None: as they were."""


@attrs.frozen(kw_only=True)
class LedgerForgery:
    """The ledger, changed, and the stored account with it if `account` is given: `breaks` all fail."""

    name: str
    entries: tuple[Entry, ...]
    breaks: frozenset[str]
    account: Account | None = None
    """The stored account made to agree with the forged ledger; None: the account as it was."""
    payouts: tuple[Payout, ...] | None = None
    """The stored payouts made to agree with the forged ledger; None: as they were."""


@attrs.frozen(kw_only=True)
class StepForgery:
    """One step, changed: `inductive(before, entry, lookup, after)` fails (if named); fold may refuse it."""

    name: str
    before: Account | None
    entry: Entry
    lookup: Lookup
    """What the store looked up for the entry's command before it."""
    after: Account | None
    """None for a forged entry whose honest result no one could compute: only fold judges it."""
    inductive: StepCheck | None
    foldable: bool = False
    """True when the forgery is in `before`, `entry` or `lookup` alone: `fold` must then refuse it."""
    refused_by: str | None = None
    """The description of the contract of `fold` that must refuse it, where a later one would too."""


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
    "payout_confirmed_minor",
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
    "payout_confirmed_minor": _ids("I7"),
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
    "payout_confirmed_minor": None,
}
"""The one-account form that relates each total to the others (none for the payout sums: one unit
more or less of profit keeps them within their counts)."""

ACCOUNT_COUNTS: Final = {
    "entry_count": _ids("I8"),
    "payout_count": _ids("I7"),
    "payout_confirmed_count": _ids("I7"),
}
"""Each stored count, and the full form that counts it again over the ledger."""
COUNT_INDUCTIVE: Final[dict[str, AccountCheck | None]] = {
    "entry_count": None,
    "payout_count": contracts.payouts_are_within_profit_withdrawn,
    "payout_confirmed_count": contracts.payouts_are_within_profit_withdrawn,
}
"""The one-account form that refuses each count below zero (none for the entries: only the ledger
says how many there are)."""


def account_forgeries(account: Account, payouts: Sequence[Payout]) -> Iterator[AccountForgery]:
    """Every stored figure, count or payout one unit off, past its range, or out of step with the ledger."""
    yield AccountForgery(
        name="no account for the ledger", account=None, breaks=_ids("I1", "I5", "I6", "I7", "I8")
    )
    for count, breaks in ACCOUNT_COUNTS.items():
        for shift in (1, -1):
            yield AccountForgery(
                name=f"{count} {shift:+d}",
                account=_with(account, count, getattr(account, count) + shift),
                breaks=breaks,
            )
        # Below zero whatever the sums: a payout count of -1 beside a profit withdrawn keeps every
        # count within its sum and 0 only with it, so only the count's own floor objects. At 0 beside
        # a sum that is not, only the rule that a count is 0 exactly when its sum is objects.
        for bad in (-1, 0):
            if getattr(account, count) != bad:
                yield AccountForgery(
                    name=f"{count} = {bad}",
                    account=_with(account, count, bad),
                    breaks=breaks,
                    inductive=COUNT_INDUCTIVE[count],
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
    yield from _payout_forgeries(account, tuple(payouts))
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


def _payout_forgeries(account: Account, payouts: tuple[Payout, ...]) -> Iterator[AccountForgery]:
    """The stored payouts: one more, one dropped, twice, one unit off, or confirmed when it is not."""
    forged = Payout(id=FORGED_ID, amount_minor=1, status=PayoutStatus.PENDING)
    yield AccountForgery(
        name="a payout no withdrawal made", account=account, breaks=_ids("I7"), payouts=(*payouts, forged)
    )
    for index, payout in enumerate(payouts[:1]):  # one payout is enough: the checks do not depend on which
        flipped = PayoutStatus.PENDING if payout.status is PayoutStatus.CONFIRMED else PayoutStatus.CONFIRMED
        changes = (
            ("dropped", ()),
            ("stored twice", (payout, payout)),
            ("amount + 1", (attrs.evolve(payout, amount_minor=payout.amount_minor + 1),)),
            ("amount - 1", (attrs.evolve(payout, amount_minor=payout.amount_minor - 1),)),
            (f"marked {flipped}", (attrs.evolve(payout, status=flipped),)),
        )
        for change, replacement in changes:
            yield AccountForgery(
                name=f"payout {payout.id} {change}",
                account=account,
                breaks=_ids("I7"),
                payouts=(*payouts[:index], *replacement, *payouts[index + 1 :]),
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


def ledger_forgeries(
    entries: Sequence[Entry], account: Account, payouts: Sequence[Payout]
) -> Iterator[LedgerForgery]:
    """Entries repeated, dropped, edited one unit off, or forged at the end of the ledger."""
    entries = tuple(entries)
    last = len(entries) - 1
    yield LedgerForgery(name="the last entry twice", entries=(*entries, entries[last]), breaks=_ids("I8"))
    # With the stored count made to agree, only the ids (and accounts) in the ledger can object.
    counted = attrs.evolve(account, entry_count=account.entry_count + 1)
    yield LedgerForgery(
        name="the last entry twice, counted",
        entries=(*entries, entries[last]),
        breaks=_ids("I8"),
        account=counted,
    )
    for other in ("", "\U0010ffff"):
        command = attrs.evolve(entries[last].command, id=FORGED_ID, account=other)
        yield LedgerForgery(
            name=f"an entry of the account {other!r}, counted",
            entries=(*entries, attrs.evolve(entries[last], command=command)),
            breaks=_ids("I8"),
            account=counted,
        )
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
    yield from _payout_ledger_forgeries(account, tuple(payouts), forge)
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
    account: Account, payouts: tuple[Payout, ...], forge: Callable[..., LedgerForgery]
) -> Iterator[LedgerForgery]:
    yield forge(
        "a confirmation of a payout never withdrawn",
        _ids("I7"),
        PayoutConfirmed(payout_id=FORGED_ID, amount_minor=1),
    )
    own_id = payout_id(account.id, FORGED_ID)
    yield forge("a withdrawal of nothing", _ids("I7"), ProfitWithdrawn(payout_id=own_id, amount_minor=0))

    def stored_as_such(name: str, withdrawn: ProfitWithdrawn) -> LedgerForgery:
        """The stored account and payouts agree with the forged withdrawal: only its own check objects."""
        payout = Payout(
            id=withdrawn.payout_id, amount_minor=withdrawn.amount_minor, status=PayoutStatus.PENDING
        )
        return attrs.evolve(
            forge(name, _ids("I7"), withdrawn),
            account=attrs.evolve(
                account,
                profit_withdrawn_minor=account.profit_withdrawn_minor + withdrawn.amount_minor,
                payout_count=account.payout_count + 1,
            ),
            payouts=(*payouts, payout),
        )

    for amount in (0, -1):
        yield stored_as_such(
            f"a withdrawal of {amount}, stored as such",
            ProfitWithdrawn(payout_id=own_id, amount_minor=amount),
        )
    for other, side in ((FORGED_ID[:-1], "before"), (FORGED_ID + "x", "after")):
        yield stored_as_such(
            f"a withdrawal under another command's payout id, sorting {side} its own, stored as such",
            ProfitWithdrawn(payout_id=payout_id(account.id, other), amount_minor=1),
        )
    for payout in payouts[:1]:
        yield forge(
            "a second withdrawal under a payout id",
            _ids("I7"),
            ProfitWithdrawn(payout_id=payout.id, amount_minor=payout.amount_minor),
        )
        confirmation = PayoutConfirmed(payout_id=payout.id, amount_minor=payout.amount_minor)
        yield forge(
            "a payout confirmed twice",
            _ids("I7"),
            *(confirmation, confirmation)[: 1 if payout.status is PayoutStatus.CONFIRMED else 2],
        )
        if payout.status is not PayoutStatus.PENDING:
            continue
        confirmed = tuple(
            attrs.evolve(stored, status=PayoutStatus.CONFIRMED) if stored.id == payout.id else stored
            for stored in payouts
        )
        # Confirmed for one unit more, with the stored books made to agree with the confirmation.
        more = PayoutConfirmed(payout_id=payout.id, amount_minor=payout.amount_minor + 1)
        yield attrs.evolve(
            forge("a payout confirmed for one unit more, stored as such", _ids("I7"), more),
            account=attrs.evolve(
                account,
                payout_confirmed_count=account.payout_confirmed_count + 1,
                payout_confirmed_minor=account.payout_confirmed_minor + payout.amount_minor + 1,
            ),
            payouts=confirmed,
        )
        for shift, change in ((1, "more"), (-1, "less")):
            # Confirmed for one unit off, the stored books right (as the payout says): only the
            # confirmation's own amount objects, which is what the ledger alone says was paid out.
            off = PayoutConfirmed(payout_id=payout.id, amount_minor=payout.amount_minor + shift)
            yield attrs.evolve(
                forge(f"a payout confirmed for one unit {change}, stored as it is", _ids("I7"), off),
                account=attrs.evolve(
                    account,
                    payout_confirmed_count=account.payout_confirmed_count + 1,
                    payout_confirmed_minor=account.payout_confirmed_minor + payout.amount_minor,
                ),
                payouts=confirmed,
            )


# --- One step ------------------------------------------------------------------------------------

Step = tuple[Account | None, Entry, Lookup, Account]
"""An honest step: the account before, the entry, what was looked up for it, the account after."""


def steps(entries: Sequence[Entry]) -> Iterator[Step]:
    """Each honest step of a ledger, with the lookup a store would have made for it."""
    account: Account | None = None
    payouts: dict[str, Payout] = {}
    for entry in entries:
        named = payout_looked_up(entry.command)
        lookup = NOTHING_RECORDED if named is None else Lookup(payout=payouts.get(named))
        after = fold(account, entry, lookup)
        yield account, entry, lookup, after
        for payout in payouts_written(entry):
            payouts[payout.id] = payout
        account = after


def _three(check: Callable[[Account | None, Entry, Account], bool]) -> StepCheck:
    """A one-step form that needs no lookup, called as every one-step form is."""
    return lambda before, entry, lookup, after: check(before, entry, after)


TOTAL_EVENTS: Final = (
    "funding_minor",
    "capital_closed_minor",
    "payments_minor",
    "my_share_minor",
    "company_share_minor",
    "profit_withdrawn_minor",
    "payout_confirmed_minor",
)


def step_forgeries(entries: Sequence[Entry]) -> Iterator[StepForgery]:
    """The latest honest step of each kind, changed so that its one-step form must fail."""
    latest: dict[str, Step] = {}
    for step in steps(entries):
        entry = step[1]
        kinds = {type(event).__name__ for event in (entry.events if isinstance(entry, Applied) else ())}
        for kind in kinds | {"any", type(entry).__name__}:
            latest[kind] = step
    before, entry, lookup, after = latest["any"]
    for total in TOTAL_EVENTS:
        for shift in (1, -1):
            yield StepForgery(
                name=f"{total} moved {shift:+d} unlike the events",
                before=before,
                entry=entry,
                lookup=lookup,
                after=_with(after, total, getattr(after, total) + shift),
                inductive=_three(contracts.totals_follow_events),
            )
    yield from _recording_forgeries(entries, latest["any"])
    if "Refused" in latest:
        before, entry, lookup, after = latest["Refused"]
        yield StepForgery(
            name="a refusal that moves CB",
            before=before,
            entry=entry,
            lookup=lookup,
            after=attrs.evolve(after, balance_minor=after.balance_minor + 1),
            inductive=_three(contracts.refusal_changes_nothing_else),
        )
    if before is not None:
        yield StepForgery(
            name="a refusal as the first entry",
            before=None,
            entry=Refused(command=entry.command, code=Code.NO_ACTIVE_LOSS, message="forged"),
            lookup=NOTHING_RECORDED,
            after=after,
            inductive=_three(contracts.refusal_changes_nothing_else),
        )
    yield from _loss_step_forgeries(latest)
    yield from _settlement_step_forgeries(latest)
    yield from _payout_step_forgeries(latest)
    yield from _lookup_forgeries(latest["any"])
    yield from _fold_only_forgeries(latest)


def _recording_forgeries(entries: Sequence[Entry], step: Step) -> Iterator[StepForgery]:
    """spec.md#i8, one step: an id already recorded, or a ledger that grows by other than one entry."""
    before, entry, lookup, after = step
    if before is not None:
        earlier = entries[0]
        reused = attrs.evolve(entry, command=attrs.evolve(entry.command, id=earlier.command.id))
        yield StepForgery(
            name="an id recorded before",
            before=before,
            entry=reused,
            # The store finds the earlier entry under the reused id: the id was not free.
            lookup=attrs.evolve(lookup, entry=earlier),
            after=after,
            inductive=contracts.command_id_is_recorded_once,
            foldable=True,
        )
    for shift in (0, 2):
        yield StepForgery(
            name=f"the ledger grown by {shift} entries, not 1",
            before=before,
            entry=entry,
            lookup=lookup,
            after=attrs.evolve(after, entry_count=after.entry_count - 1 + shift),
            inductive=contracts.command_id_is_recorded_once,
        )


def _loss_step_forgeries(latest: dict[str, Step]) -> Iterator[StepForgery]:
    """spec.md#i3, one step: a second loss in one entry, or a loss while one is active."""
    now = latest["any"][3]
    one_loss: StepCheck = lambda before, entry, lookup, after: contracts.loss_opens_only_when_none_is_active(  # noqa: E731
        before, entry
    )
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
            lookup=NOTHING_RECORDED,
            after=now,  # not looked at: the rule judges the entry against the account before it
            inductive=one_loss,
            foldable=True,
        )
        # The loss closed one unit past what remains, and CB recorded at the CAPITAL that leaves: a
        # fold that took the loss as closed would find the books in order (while CB stays >= 0).
        over = now.loss.remaining_minor + 1
        capital = now.capital_minor - over
        yield StepForgery(
            name="the loss closed one unit past what remains, CB recorded to match",
            before=now,
            entry=_forged(
                now,
                LossWrittenOff(loss=now.loss.opened_by, capital_closed_minor=over),
                BalanceRecorded(balance_minor=capital, capital_minor=capital, date=None),
            ),
            lookup=NOTHING_RECORDED,
            after=None,
            inductive=None,
            foldable=True,
        )
    for before, entry, lookup, after in (latest["any"], latest.get("LossOpened", latest["any"])):
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
            lookup=lookup,
            after=after,
            inductive=one_loss,
            foldable=True,
        )


def _settlement_step_forgeries(latest: dict[str, Step]) -> Iterator[StepForgery]:
    """spec.md#i6, one step: a settlement whose shares miss its payment, or go below zero."""
    if "Settled" not in latest:
        return
    before, entry, lookup, after = latest["Settled"]
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
                lookup=lookup,
                after=after,
                inductive=lambda before, entry, lookup, after: contracts.settlements_split_their_payment(
                    entry
                ),
                foldable=True,
            )


def _lookup_forgeries(step: Step) -> Iterator[StepForgery]:
    """spec.md#storage: what a store found under another key, handed to fold as this entry's: the entry
    of another id or account, or a payout the command does not name (ids that sort before and after
    any other). fold's precondition must refuse it, before I7 or I8 could."""
    before, entry, lookup, _ = step
    for other in ("", "\U0010ffff"):
        for name, forged in (
            *(
                (
                    f"the entry of {key} {other!r}",
                    attrs.evolve(lookup, entry=attrs.evolve(entry, command=_with(entry.command, key, other))),
                )
                for key in ("id", "account")
            ),
            (
                f"the payout {other!r}",
                attrs.evolve(lookup, payout=Payout(id=other, amount_minor=1, status=PayoutStatus.PENDING)),
            ),
        ):
            yield StepForgery(
                name=f"{name} looked up for {entry.command.id!r}",
                before=before,
                entry=entry,
                lookup=forged,
                after=None,
                inductive=None,
                foldable=True,
                refused_by="the lookup is this entry's",
            )


def _fold_only_forgeries(latest: dict[str, Step]) -> Iterator[StepForgery]:
    """Forged entries only fold judges: a CB that leaves its loss behind, an entry of another account,
    an account opened by another command or with a history, capital closed on a loss that is not the
    active one (ids that sort before and after the right one)."""
    _, first, _, _ = latest["AccountOpened"]
    yield StepForgery(
        name="a new account that recalls an entry under its first id",
        before=None,
        entry=first,
        lookup=Lookup(entry=first),
        after=None,
        inductive=None,
        foldable=True,
        # I8 refuses it too, after the fold: the precondition must refuse it first.
        refused_by="a new account has no history",
    )
    before, entry, lookup, _ = latest["any"]
    if before is not None and not isinstance(entry.command, OpenAccount):
        opening = AccountOpened(my_share_bp=before.my_share_bp, company_share_bp=before.company_share_bp)
        yield StepForgery(
            name=f"an account opened by a {type(entry.command).__name__} entry",
            before=None,
            entry=Applied(command=entry.command, events=(opening,)),
            lookup=NOTHING_RECORDED,
            after=None,
            inductive=None,
            foldable=True,
        )
    if before is not None:
        # Down under a loss (so that only I5 breaks, not I4 too), up without one.
        shift = -1 if before.loss is not None and before.balance_minor > 0 else 1
        balance = before.balance_minor + shift
        moved = BalanceRecorded(balance_minor=balance, capital_minor=before.capital_minor, date=None)
        yield StepForgery(
            name="CB moved with no loss opened or closed",
            before=before,
            entry=_forged(before, moved),
            lookup=NOTHING_RECORDED,
            after=None,
            inductive=None,
            foldable=True,
        )
    for other in ("", "\U0010ffff"):
        yield StepForgery(
            name=f"an entry of the account {other!r} folded into {entry.command.account!r}",
            before=before,
            entry=attrs.evolve(entry, command=attrs.evolve(entry.command, account=other)),
            lookup=NOTHING_RECORDED,
            after=None,
            inductive=None,
            foldable=before is not None,
        )
    if "Settled" not in latest:
        return
    before, entry, lookup, _ = latest["Settled"]
    assert isinstance(entry, Applied)
    for loss in ("", "\U0010ffff"):
        events = tuple(
            attrs.evolve(event, loss=loss) if isinstance(event, Settled) else event for event in entry.events
        )
        yield StepForgery(
            name=f"capital closed on the loss {loss!r}, not the active one",
            before=before,
            entry=attrs.evolve(entry, events=events),
            lookup=lookup,
            after=None,
            inductive=None,
            foldable=True,
        )


def _payout_step_forgeries(latest: dict[str, Step]) -> Iterator[StepForgery]:
    """spec.md#i7, one step: a withdrawal that is not one new payout; a confirmation of anything but
    the pending payout looked up, for its amount, counted once."""
    check = contracts.payouts_follow_withdrawals
    if "ProfitWithdrawn" in latest:
        before, entry, lookup, after = latest["ProfitWithdrawn"]
        assert isinstance(entry, Applied)
        withdrawal = entry  # an Applied, also inside `withdrawn` below
        (event,) = [event for event in entry.events if isinstance(event, ProfitWithdrawn)]
        for change, shift in (("with no payout counted", -1), ("with a second new payout counted", 1)):
            yield StepForgery(
                name=f"a withdrawal {change}",
                before=before,
                entry=entry,
                lookup=lookup,
                after=attrs.evolve(after, payout_count=after.payout_count + shift),
                inductive=check,
            )

        def withdrawn(*events: Event) -> Applied:
            """The entry with its withdrawal replaced by `events`."""
            position = withdrawal.events.index(event)
            kept = withdrawal.events
            return attrs.evolve(withdrawal, events=(*kept[:position], *events, *kept[position + 1 :]))

        for name, forged in (
            ("a withdrawal under another payout id", withdrawn(attrs.evolve(event, payout_id=FORGED_ID))),
            ("a withdrawal of 0", withdrawn(attrs.evolve(event, amount_minor=0))),
            ("a withdrawal of -1", withdrawn(attrs.evolve(event, amount_minor=-1))),
            ("two withdrawals in one entry", withdrawn(event, event)),
        ):
            yield StepForgery(
                name=name,
                before=before,
                entry=forged,
                lookup=lookup,
                after=after,
                inductive=check,
                foldable=True,
            )
        if event.amount_minor > 1:
            # The profit withdrawn in two parts under the one payout id, each counted: CB, the sum and
            # the count all agree, and the store would keep only the second part's payout.
            half = attrs.evolve(event, amount_minor=event.amount_minor // 2)
            rest = attrs.evolve(event, amount_minor=event.amount_minor - half.amount_minor)
            yield StepForgery(
                name="a withdrawal split in two under its payout id",
                before=before,
                entry=withdrawn(half, rest),
                lookup=lookup,
                after=attrs.evolve(after, payout_count=after.payout_count + 1),
                inductive=check,
                foldable=True,
            )
    before, entry, lookup, after = latest["any"]
    if before is not None and before.payout_count > 0:
        yield StepForgery(
            name="an earlier payout dropped",
            before=before,
            entry=entry,
            lookup=lookup,
            after=attrs.evolve(after, payout_count=after.payout_count - 1),
            inductive=check,
        )
    if "PayoutConfirmed" in latest:
        before, entry, lookup, after = latest["PayoutConfirmed"]
        assert before is not None and isinstance(entry, Applied) and lookup.payout is not None
        (confirmation,) = [event for event in entry.events if isinstance(event, PayoutConfirmed)]
        payout = lookup.payout
        for name, forged_lookup, forged_entry in (
            ("a confirmation of a payout the store does not have", attrs.evolve(lookup, payout=None), entry),
            (
                "a confirmation of a confirmed payout",
                attrs.evolve(lookup, payout=attrs.evolve(payout, status=PayoutStatus.CONFIRMED)),
                entry,
            ),
            *(
                (
                    f"a confirmation for one unit {change}",
                    lookup,
                    attrs.evolve(
                        entry, events=(attrs.evolve(confirmation, amount_minor=payout.amount_minor + shift),)
                    ),
                )
                for shift, change in ((1, "more"), (-1, "less"))
            ),
            (
                "a payout confirmed twice in one entry",
                lookup,
                attrs.evolve(entry, events=(confirmation, confirmation)),
            ),
            *(
                (
                    f"a confirmation of the payout {other!r}, not the one looked up",
                    lookup,
                    attrs.evolve(entry, events=(attrs.evolve(confirmation, payout_id=other),)),
                )
                for other in ("", "\U0010ffff")
            ),
        ):
            yield StepForgery(
                name=name,
                before=before,
                entry=forged_entry,
                lookup=forged_lookup,
                after=after,
                inductive=check,
                foldable=True,
            )
        # Confirmed twice in one entry and counted twice: the count agrees, only the one-confirmation
        # rule objects (and, with another payout pending, fold's I7 on the account would not).
        yield StepForgery(
            name="a payout confirmed twice in one entry, counted twice",
            before=before,
            entry=attrs.evolve(entry, events=(confirmation, confirmation)),
            lookup=lookup,
            after=attrs.evolve(after, payout_confirmed_count=after.payout_confirmed_count + 1),
            inductive=check,
            foldable=True,
        )
        for change, shift in (("leaves it uncounted", -1), ("counts it twice", 1)):
            yield StepForgery(
                name=f"a confirmation that {change}",
                before=before,
                entry=entry,
                lookup=lookup,
                after=attrs.evolve(after, payout_confirmed_count=after.payout_confirmed_count + shift),
                inductive=check,
            )
