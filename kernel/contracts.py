"""The ten invariants of spec.md#invariants, each as a named predicate in two forms.

The **inductive** form looks at one account, or at one step (the account before, the ledger entry,
what the store looked up for it, the account after), never at the history: it costs O(1) and
`transitions.fold` runs it as an icontract postcondition on every transition (spec.md#e6). The
**full** form (`*_over`) walks a whole ledger, checks the claim after every entry and against the
stored account and its stored payouts at the end; the tests and the audit call it, no transition
does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Final

import attrs

from ppk.kernel.state import (
    AMOUNT_MINOR_MAX,
    BP_PER_WHOLE,
    Account,
    Applied,
    BalanceRecorded,
    Command,
    ConfirmPayout,
    Entry,
    Event,
    Funded,
    Lookup,
    LossOpened,
    LossWrittenOff,
    Payout,
    PayoutConfirmed,
    PayoutStatus,
    ProfitWithdrawn,
    Settled,
    payout_id,
)

# --- Inductive forms: one account ----------------------------------------------------------------


def capital_is_conserved(account: Account) -> bool:
    """spec.md#i1: stored CAPITAL = Σ FUNDING − Σ CAPITAL_CLOSED."""
    return account.capital_minor == account.funding_minor - account.capital_closed_minor


def capital_is_not_negative(account: Account) -> bool:
    """spec.md#i2: Σ CAPITAL_CLOSED ≤ Σ FUNDING."""
    return account.capital_closed_minor <= account.funding_minor


def loss_implies_capital_above_balance(account: Account) -> bool:
    """spec.md#i4: an active loss implies CAPITAL > CB."""
    return account.loss is None or account.capital_minor > account.balance_minor


def balance_agrees_with_loss(account: Account) -> bool:
    """spec.md#i5: with a loss, remaining = CAPITAL − CB; without one, CB = CAPITAL."""
    if account.loss is None:
        return account.balance_minor == account.capital_minor
    return account.loss.remaining_minor == account.capital_minor - account.balance_minor


def shares_add_up_to_payments(account: Account) -> bool:
    """spec.md#i6: Σ my + Σ company = Σ payments."""
    return account.my_share_minor + account.company_share_minor == account.payments_minor


def loss_is_accounted(account: Account) -> bool:
    """spec.md#i9: original = capital closed by its settlements or write-off + remaining."""
    loss = account.loss
    return loss is None or loss.original_minor == loss.capital_closed_minor + loss.remaining_minor


def amounts_are_not_negative(account: Account) -> bool:
    """spec.md#i10: every stored amount is ≥ 0, CB among them, and within the limit."""
    amounts = [
        account.capital_minor,
        account.balance_minor,
        account.funding_minor,
        account.capital_closed_minor,
        account.profit_withdrawn_minor,
        account.payments_minor,
        account.my_share_minor,
        account.company_share_minor,
        account.payout_confirmed_minor,
    ]
    if account.loss is not None:
        amounts += [
            account.loss.capital_minor,
            account.loss.balance_minor,
            account.loss.original_minor,
            account.loss.remaining_minor,
            account.loss.capital_closed_minor,
        ]
    return all(0 <= amount_minor <= AMOUNT_MINOR_MAX for amount_minor in amounts)


def payouts_are_within_profit_withdrawn(account: Account) -> bool:
    """spec.md#i7: every payout is at least one minor unit of profit withdrawn, and so is every confirmed one.

    The counts and sums of payouts, pending and confirmed, agree with each other: none is negative,
    each count is 0 exactly when its sum is, and a sum covers at least one minor unit per payout.
    """
    pending_count = account.payout_count - account.payout_confirmed_count
    pending_minor = account.profit_withdrawn_minor - account.payout_confirmed_minor
    return all(
        0 <= count <= amount_minor and (count == 0) == (amount_minor == 0)
        for count, amount_minor in (
            (account.payout_count, account.profit_withdrawn_minor),
            (account.payout_confirmed_count, account.payout_confirmed_minor),
            (pending_count, pending_minor),
        )
    )


def shares_are_percentages(account: Account) -> bool:
    """spec.md#actors: each share is in [0, 100 %] and their total is at most 100 %."""
    share_pairs = [(account.my_share_bp, account.company_share_bp)]
    if account.loss is not None:
        share_pairs.append((account.loss.my_share_bp, account.loss.company_share_bp))
    return all(
        my_share_bp >= 0 and company_share_bp >= 0 and my_share_bp + company_share_bp <= BP_PER_WHOLE
        for my_share_bp, company_share_bp in share_pairs
    )


def account_is_consistent(account: Account) -> bool:
    """Every one-account inductive form at once: what any reachable account satisfies."""
    return (
        capital_is_conserved(account)
        and capital_is_not_negative(account)
        and loss_implies_capital_above_balance(account)
        and balance_agrees_with_loss(account)
        and shares_add_up_to_payments(account)
        and loss_is_accounted(account)
        and amounts_are_not_negative(account)
        and payouts_are_within_profit_withdrawn(account)
        and shares_are_percentages(account)
    )


# --- Inductive forms: one step -------------------------------------------------------------------


def _events(entry: Entry) -> tuple[Event, ...]:
    return entry.events if isinstance(entry, Applied) else ()


def totals_follow_events(before: Account | None, entry: Entry, after: Account) -> bool:
    """spec.md#i1, one step: each running total moves by exactly what the entry's events say."""
    funded_minor = closed_minor = payments_minor = my_minor = company_minor = withdrawn_minor = 0
    confirmed_minor = 0
    for event in _events(entry):
        if isinstance(event, Funded):
            funded_minor += event.amount_minor
        elif isinstance(event, Settled):
            closed_minor += event.capital_closed_minor
            payments_minor += event.payment_minor
            my_minor += event.my_share_minor
            company_minor += event.company_share_minor
        elif isinstance(event, LossWrittenOff):
            closed_minor += event.capital_closed_minor
        elif isinstance(event, ProfitWithdrawn):
            withdrawn_minor += event.amount_minor
        elif isinstance(event, PayoutConfirmed):
            confirmed_minor += event.amount_minor
    b = before
    return (
        after.funding_minor - (b.funding_minor if b else 0) == funded_minor
        and after.capital_closed_minor - (b.capital_closed_minor if b else 0) == closed_minor
        and after.payments_minor - (b.payments_minor if b else 0) == payments_minor
        and after.my_share_minor - (b.my_share_minor if b else 0) == my_minor
        and after.company_share_minor - (b.company_share_minor if b else 0) == company_minor
        and after.profit_withdrawn_minor - (b.profit_withdrawn_minor if b else 0) == withdrawn_minor
        and after.payout_confirmed_minor - (b.payout_confirmed_minor if b else 0) == confirmed_minor
    )


def loss_opens_only_when_none_is_active(before: Account | None, entry: Entry) -> bool:
    """spec.md#i3, one step: a loss opens at most once per entry, and only with none active."""
    opened = sum(isinstance(event, LossOpened) for event in _events(entry))
    return opened == 0 or (opened == 1 and (before is None or before.loss is None))


def settlements_split_their_payment(entry: Entry) -> bool:
    """spec.md#i6, one step: for every settlement, my + company = payment."""
    return all(
        event.my_share_minor + event.company_share_minor == event.payment_minor
        and event.my_share_minor >= 0
        and event.company_share_minor >= 0
        for event in _events(entry)
        if isinstance(event, Settled)
    )


def lookup_is_of(command: Command, lookup: Lookup) -> bool:
    """spec.md#storage: the lookup holds only what is recorded under the keys this command names."""
    recorded = lookup.entry
    if recorded is not None and (
        recorded.command.id != command.id or recorded.command.account != command.account
    ):
        return False
    payout = lookup.payout
    return payout is None or (isinstance(command, ConfirmPayout) and payout.id == command.payout)


def payouts_follow_withdrawals(before: Account | None, entry: Entry, lookup: Lookup, after: Account) -> bool:
    """spec.md#i7, one step: a withdrawal is one new payout; a confirmation pays the pending one looked up."""
    withdrawn = confirmed = 0
    for event in _events(entry):
        if isinstance(event, ProfitWithdrawn):
            withdrawn += 1
            # The payout id is the entry's own: free because the command id was (I8), so never reused.
            if (
                event.payout_id != payout_id(entry.command.account, entry.command.id)
                or event.amount_minor <= 0
            ):
                return False
        elif isinstance(event, PayoutConfirmed):
            confirmed += 1
            payout = lookup.payout
            if payout is None or payout.id != event.payout_id or payout.status is not PayoutStatus.PENDING:
                return False
            if payout.amount_minor != event.amount_minor:
                return False
    payouts_before = before.payout_count if before is not None else 0
    confirmed_before = before.payout_confirmed_count if before is not None else 0
    return (
        withdrawn <= 1
        and confirmed <= 1
        and after.payout_count == payouts_before + withdrawn
        and after.payout_confirmed_count == confirmed_before + confirmed
    )


def command_id_is_recorded_once(before: Account | None, entry: Entry, lookup: Lookup, after: Account) -> bool:
    """spec.md#i8, one step: the entry's id was free, and the ledger grew by exactly this entry."""
    entries_before = before.entry_count if before is not None else 0
    return lookup.entry is None and after.entry_count == entries_before + 1


def refusal_changes_nothing_else(before: Account | None, entry: Entry, after: Account) -> bool:
    """spec.md#commands: a refusal adds only the record of its id's outcome."""
    if isinstance(entry, Applied):
        return True
    return before is not None and attrs.evolve(after, entry_count=before.entry_count) == before


# --- Full forms: a whole ledger ------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class LedgerPoint:
    """What the ledger alone says after one entry, derived without the kernel's fold."""

    funding_minor: int
    capital_closed_minor: int
    balance_minor: int
    """CB: the last observed balance, plus funding since, less withdrawn profit."""
    loss_opened_by: str | None
    """The id of the record_balance that opened the active loss, if one is active."""
    loss_original_minor: int
    loss_closed_minor: int

    @property
    def capital_minor(self) -> int:
        return self.funding_minor - self.capital_closed_minor

    @property
    def loss_remaining_minor(self) -> int:
        return self.loss_original_minor - self.loss_closed_minor


EMPTY_LEDGER_POINT = LedgerPoint(
    funding_minor=0,
    capital_closed_minor=0,
    balance_minor=0,
    loss_opened_by=None,
    loss_original_minor=0,
    loss_closed_minor=0,
)


def ledger_points(entries: Iterable[Entry]) -> Iterator[tuple[Entry, LedgerPoint, LedgerPoint]]:
    """Walk a ledger; yield each entry with the figures the ledger gives before and after it."""
    point = EMPTY_LEDGER_POINT
    for entry in entries:
        before = point
        for event in _events(entry):
            point = _point_after(point, event)
        if point.loss_opened_by is not None and point.loss_remaining_minor == 0:
            point = attrs.evolve(point, loss_opened_by=None, loss_original_minor=0, loss_closed_minor=0)
        yield entry, before, point


def _point_after(point: LedgerPoint, event: Event) -> LedgerPoint:
    if isinstance(event, Funded):
        return attrs.evolve(
            point,
            funding_minor=point.funding_minor + event.amount_minor,
            balance_minor=point.balance_minor + event.amount_minor,
        )
    if isinstance(event, BalanceRecorded):
        return attrs.evolve(point, balance_minor=event.balance_minor)
    if isinstance(event, ProfitWithdrawn):
        return attrs.evolve(point, balance_minor=point.balance_minor - event.amount_minor)
    if isinstance(event, LossOpened):
        return attrs.evolve(
            point,
            loss_opened_by=event.opened_by,
            loss_original_minor=event.original_minor,
            loss_closed_minor=0,
        )
    if isinstance(event, (Settled, LossWrittenOff)):
        return attrs.evolve(
            point,
            capital_closed_minor=point.capital_closed_minor + event.capital_closed_minor,
            loss_closed_minor=point.loss_closed_minor + event.capital_closed_minor,
        )
    return point


def _last_point(entries: Iterable[Entry]) -> LedgerPoint:
    last = EMPTY_LEDGER_POINT
    for _, _, after in ledger_points(entries):
        last = after
    return last


def capital_is_conserved_over(entries: Sequence[Entry], account: Account | None) -> bool:
    """spec.md#i1, full: stored CAPITAL = Σ FUNDING − Σ CAPITAL_CLOSED over the ledger."""
    if account is None:
        return not entries
    point = _last_point(entries)
    return (
        account.capital_minor == point.capital_minor
        and account.funding_minor == point.funding_minor
        and account.capital_closed_minor == point.capital_closed_minor
    )


def capital_is_never_negative_over(entries: Sequence[Entry]) -> bool:
    """spec.md#i2, full: Σ CAPITAL_CLOSED ≤ Σ FUNDING after every entry."""
    return all(after.capital_closed_minor <= after.funding_minor for _, _, after in ledger_points(entries))


def one_loss_at_a_time_over(entries: Sequence[Entry]) -> bool:
    """spec.md#i3, full: a loss opens only when none is active, and capital closes only a loss."""
    for entry, before, _ in ledger_points(entries):
        events = _events(entry)
        opened = sum(isinstance(event, LossOpened) for event in events)
        if opened > 1 or (opened == 1 and before.loss_opened_by is not None):
            return False
        closes = [event for event in events if isinstance(event, (Settled, LossWrittenOff))]
        if closes and opened == 0 and before.loss_opened_by is None:
            return False
    return True


def loss_implies_capital_above_balance_over(entries: Sequence[Entry]) -> bool:
    """spec.md#i4, full: after every entry with a loss active, CAPITAL > CB."""
    return all(
        after.loss_opened_by is None or after.capital_minor > after.balance_minor
        for _, _, after in ledger_points(entries)
    )


def balance_agrees_with_loss_over(entries: Sequence[Entry], account: Account | None) -> bool:
    """spec.md#i5, full: after every entry, remaining = CAPITAL − CB, or CB = CAPITAL; as stored."""
    point = EMPTY_LEDGER_POINT
    for _, _, point in ledger_points(entries):
        if point.loss_opened_by is None and point.balance_minor != point.capital_minor:
            return False
        if point.loss_opened_by is not None and (
            point.loss_remaining_minor != point.capital_minor - point.balance_minor
        ):
            return False
    if account is None:
        return not entries
    loss = account.loss
    return (
        account.balance_minor == point.balance_minor
        and (loss.opened_by if loss else None) == point.loss_opened_by
        and (loss.remaining_minor if loss else 0) == point.loss_remaining_minor
    )


def shares_add_up_to_payments_over(entries: Sequence[Entry], account: Account | None) -> bool:
    """spec.md#i6, full: each settlement's my + company = payment; so do the stored totals."""
    payments_minor = my_minor = company_minor = 0
    for entry in entries:
        for event in _events(entry):
            if isinstance(event, Settled):
                if event.my_share_minor + event.company_share_minor != event.payment_minor:
                    return False
                payments_minor += event.payment_minor
                my_minor += event.my_share_minor
                company_minor += event.company_share_minor
    if account is None:
        return not entries
    return (
        my_minor + company_minor == payments_minor
        and account.payments_minor == payments_minor
        and account.my_share_minor == my_minor
        and account.company_share_minor == company_minor
    )


def each_profit_is_one_payout_over(
    entries: Sequence[Entry], account: Account | None, payouts: Sequence[Payout]
) -> bool:
    """spec.md#i7, full: one payout per withdrawal, confirmed at most once; Σ payouts = Σ PROFIT."""
    withdrawn: dict[str, int] = {}
    confirmed: set[str] = set()
    for entry in entries:
        for event in _events(entry):
            if isinstance(event, ProfitWithdrawn):
                if event.payout_id in withdrawn or event.amount_minor <= 0:
                    return False
                if event.payout_id != payout_id(entry.command.account, entry.command.id):
                    return False
                withdrawn[event.payout_id] = event.amount_minor
            elif isinstance(event, PayoutConfirmed):
                if event.payout_id not in withdrawn or event.payout_id in confirmed:
                    return False
                if event.amount_minor != withdrawn[event.payout_id]:
                    return False
                confirmed.add(event.payout_id)
    if account is None:
        return not entries and not payouts
    stored = {payout.id: payout for payout in payouts}
    return (
        len(stored) == len(payouts)
        and stored.keys() == withdrawn.keys()
        and all(stored[payout_id].amount_minor == amount for payout_id, amount in withdrawn.items())
        and all(
            (stored[payout_id].status is PayoutStatus.CONFIRMED) == (payout_id in confirmed)
            for payout_id in withdrawn
        )
        and sum(withdrawn.values()) == account.profit_withdrawn_minor
        and len(withdrawn) == account.payout_count
        and len(confirmed) == account.payout_confirmed_count
        and sum(withdrawn[payout_id] for payout_id in confirmed) == account.payout_confirmed_minor
    )


def commands_are_recorded_once_over(entries: Sequence[Entry], account: Account | None) -> bool:
    """spec.md#i8, full: each id appears once in the account's ledger, and the account counts them all."""
    seen: set[str] = set()
    for entry in entries:
        if entry.command.id in seen:
            return False
        if account is not None and entry.command.account != account.id:
            return False
        seen.add(entry.command.id)
    if account is None:
        return not entries
    return account.entry_count == len(entries)


def losses_are_accounted_over(entries: Sequence[Entry], account: Account | None) -> bool:
    """spec.md#i9, full: for each loss, original = Σ capital closed by its settlements + remaining."""
    original: dict[str, int] = {}
    closed: dict[str, int] = {}
    for entry in entries:
        for event in _events(entry):
            if isinstance(event, LossOpened):
                original[event.opened_by] = event.original_minor
                closed[event.opened_by] = 0
            elif isinstance(event, (Settled, LossWrittenOff)):
                if event.loss not in closed:
                    return False
                closed[event.loss] += event.capital_closed_minor
    active = account.loss if account is not None else None
    for opened_by, original_minor in original.items():
        remaining_minor = active.remaining_minor if active and active.opened_by == opened_by else 0
        if original_minor != closed[opened_by] + remaining_minor:
            return False
    return active is None or active.opened_by in original


def amounts_are_not_negative_over(entries: Sequence[Entry]) -> bool:
    """spec.md#i10, full: every amount in every event is ≥ 0, and CB ≥ 0 after every entry."""
    for entry, _, after in ledger_points(entries):
        if after.balance_minor < 0 or after.capital_minor < 0:
            return False
        for event in _events(entry):
            for field in attrs.fields(type(event)):
                value = getattr(event, field.name)
                if field.name.endswith("_minor") and not 0 <= value <= AMOUNT_MINOR_MAX:
                    return False
    return True


FullInvariant = Callable[[Sequence[Entry], Account | None, Sequence[Payout]], bool]

FULL_INVARIANTS: Final[dict[str, FullInvariant]] = {
    "I1": lambda entries, account, payouts: capital_is_conserved_over(entries, account),
    "I2": lambda entries, account, payouts: capital_is_never_negative_over(entries),
    "I3": lambda entries, account, payouts: one_loss_at_a_time_over(entries),
    "I4": lambda entries, account, payouts: loss_implies_capital_above_balance_over(entries),
    "I5": lambda entries, account, payouts: balance_agrees_with_loss_over(entries, account),
    "I6": lambda entries, account, payouts: shares_add_up_to_payments_over(entries, account),
    "I7": each_profit_is_one_payout_over,
    "I8": lambda entries, account, payouts: commands_are_recorded_once_over(entries, account),
    "I9": lambda entries, account, payouts: losses_are_accounted_over(entries, account),
    "I10": lambda entries, account, payouts: amounts_are_not_negative_over(entries),
}
"""spec.md#invariants: every full form by its id, called as `check(entries, account, payouts)`: an
account's ledger, its stored value and its stored payouts."""


def broken_invariants_over(
    entries: Sequence[Entry], account: Account | None, payouts: Sequence[Payout]
) -> list[str]:
    """The ids of the invariants that a ledger, its stored account and payouts break, in spec order."""
    return [name for name, check in FULL_INVARIANTS.items() if not check(entries, account, payouts)]
