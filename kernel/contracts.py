"""The ten invariants of spec.md#invariants, each as a named predicate in two forms.

The **inductive** form looks at one account, or at one step (the account before, the ledger entry,
what the store looked up for it, the account after), never at the history: it costs O(1) and
`transitions.fold` runs it as an icontract postcondition on every transition (spec.md#e6). The
**full** form (`*_over`) walks a whole ledger, checks the claim after every entry and against the
stored account and its stored payouts at the end; the tests and the audit call it, no transition
does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Final

import attrs
import icontract

from ppk.kernel.state import (
    AMOUNT_MINOR_MAX,
    BP_PER_WHOLE,
    NOTHING_RECORDED,
    Account,
    Applied,
    BalanceRecorded,
    Command,
    ConfirmPayout,
    Decision,
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
    Refused,
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
    amounts: tuple[int, ...] = (
        account.capital_minor,
        account.balance_minor,
        account.funding_minor,
        account.capital_closed_minor,
        account.profit_withdrawn_minor,
        account.payments_minor,
        account.my_share_minor,
        account.company_share_minor,
        account.payout_confirmed_minor,
    )
    loss = account.loss
    if loss is not None:
        amounts += (
            loss.capital_minor,
            loss.balance_minor,
            loss.original_minor,
            loss.remaining_minor,
            loss.capital_closed_minor,
        )
    return min(amounts) >= 0 and max(amounts) <= AMOUNT_MINOR_MAX


def payouts_are_within_profit_withdrawn(account: Account) -> bool:
    """spec.md#i7: every payout is at least one minor unit of profit withdrawn, and so is every confirmed one.

    The counts and sums of payouts, pending and confirmed, agree with each other: none is negative,
    each count is 0 exactly when its sum is, and a sum covers at least one minor unit per payout.
    """
    return (
        _counted_within(account.payout_count, account.profit_withdrawn_minor)
        and _counted_within(account.payout_confirmed_count, account.payout_confirmed_minor)
        and _counted_within(
            account.payout_count - account.payout_confirmed_count,
            account.profit_withdrawn_minor - account.payout_confirmed_minor,
        )
    )


def _counted_within(count: int, amount_minor: int) -> bool:
    """A count of payouts and their sum: neither negative, at least one minor unit each, 0 together."""
    return 0 <= count <= amount_minor and (count == 0) == (amount_minor == 0)


def shares_are_percentages(account: Account) -> bool:
    """spec.md#actors: each share is in [0, 100 %] and their total is at most 100 %."""
    loss = account.loss
    return _are_percentages(account.my_share_bp, account.company_share_bp) and (
        loss is None or _are_percentages(loss.my_share_bp, loss.company_share_bp)
    )


def _are_percentages(my_share_bp: int, company_share_bp: int) -> bool:
    return my_share_bp >= 0 and company_share_bp >= 0 and my_share_bp + company_share_bp <= BP_PER_WHOLE


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


# --- decide's and fold's contracts, each one table -----------------------------------------------

Requirement = Callable[[Account | None, Command, Lookup], bool]
"""A precondition on (the account or None, the command, what its keys recalled)."""
Guarantee = Callable[[Account | None, Entry, Lookup, Account], bool]
"""A postcondition on one step: (the account before or None, the entry, its lookup, the account after)."""


def _is_the_commands(account: Account | None, command: Command, lookup: Lookup) -> bool:
    return account is None or account.id == command.account


def _has_no_history_if_new(account: Account | None, command: Command, lookup: Lookup) -> bool:
    return account is not None or lookup == NOTHING_RECORDED


def _is_opened_by_open_account(account: Account | None, command: Command, lookup: Lookup) -> bool:
    return account is not None or isinstance(command, OpenAccount)


def _recalls_this_command(account: Account | None, command: Command, lookup: Lookup) -> bool:
    return lookup_is_of(command, lookup)


DECIDE_REQUIRES: Final[tuple[tuple[str, Requirement], ...]] = (
    ("a new account has no history", _has_no_history_if_new),
    ("the lookup is this command's", _recalls_this_command),
    ("the account is the command's", _is_the_commands),
)
"""spec.md#storage: what `decide` requires of its caller, in the order checked; the first that fails
names the refusal."""

FOLD_REQUIRES: Final[tuple[tuple[str, Requirement], ...]] = (
    ("the account is the entry's", _is_the_commands),
    ("only open_account starts an account", _is_opened_by_open_account),
    ("the lookup is this entry's", _recalls_this_command),
    ("a new account has no history", _has_no_history_if_new),
)
"""spec.md#storage: what `fold` requires of its caller (called with the entry's command), in the order
checked; the first that fails names the refusal."""

FOLD_ENSURES: Final[tuple[tuple[str, Guarantee], ...]] = (
    ("shares are percentages", lambda before, entry, lookup, after: shares_are_percentages(after)),
    ("I10", lambda before, entry, lookup, after: amounts_are_not_negative(after)),
    ("I9", lambda before, entry, lookup, after: loss_is_accounted(after)),
    (
        "I8: a refusal records only its id",
        lambda before, entry, lookup, after: refusal_changes_nothing_else(before, entry, after),
    ),
    (
        "I8, step",
        lambda before, entry, lookup, after: command_id_is_recorded_once(before, entry, lookup, after),
    ),
    (
        "I7, step",
        lambda before, entry, lookup, after: payouts_follow_withdrawals(before, entry, lookup, after),
    ),
    ("I7", lambda before, entry, lookup, after: payouts_are_within_profit_withdrawn(after)),
    ("I6, step", lambda before, entry, lookup, after: settlements_split_their_payment(entry)),
    ("I6", lambda before, entry, lookup, after: shares_add_up_to_payments(after)),
    ("I5", lambda before, entry, lookup, after: balance_agrees_with_loss(after)),
    ("I4", lambda before, entry, lookup, after: loss_implies_capital_above_balance(after)),
    ("I3", lambda before, entry, lookup, after: loss_opens_only_when_none_is_active(before, entry)),
    ("I2", lambda before, entry, lookup, after: capital_is_not_negative(after)),
    ("I1, step", lambda before, entry, lookup, after: totals_follow_events(before, entry, after)),
    ("I1", lambda before, entry, lookup, after: capital_is_conserved(after)),
)
"""spec.md#e6: every inductive form `fold` guarantees of each step, in the order checked; the first
that fails names the refusal. One icontract condition runs the whole table: a condition costs
icontract far more than its predicate does (docs/performance.md)."""


def requirement_broken(
    table: Sequence[tuple[str, Requirement]], account: Account | None, command: Command, lookup: Lookup
) -> str | None:
    """The name of the table's first precondition the call breaks, or None."""
    for name, holds in table:
        if not holds(account, command, lookup):
            return name
    return None


def guarantee_broken(before: Account | None, entry: Entry, lookup: Lookup, after: Account) -> str | None:
    """The name of the first of `FOLD_ENSURES` that the step breaks, or None."""
    for name, holds in FOLD_ENSURES:
        if not holds(before, entry, lookup, after):
            return name
    return None


class ContractBroken(icontract.ViolationError):
    """A call or a step that breaks one of the kernel's contracts; `contract` names the first one.

    Its message reads as icontract's own: the contract's name, what it belongs to, then the values.
    """

    def __init__(self, contract: str, of: str, values: dict[str, object]) -> None:
        lines = [f"{contract}: {of}", *(f"{name} was {value!r}" for name, value in values.items())]
        super().__init__("\n".join(lines))
        self.contract = contract


def is_reachable(account: Account | None) -> bool:
    """An account some ledger folds into, as far as one account shows: every one-account inductive form."""
    return account is None or account_is_consistent(account)


def decide_may_run(account: Account | None, command: Command, lookup: Lookup) -> bool:
    """What decide (and execute) require of their callers: every one of `DECIDE_REQUIRES`."""
    return requirement_broken(DECIDE_REQUIRES, account, command, lookup) is None


def _broken(name: str | None, of: str, values: dict[str, object]) -> ContractBroken:
    assert name is not None, f"{of} failed, but its table names no broken contract"
    return ContractBroken(name, of, values)


def decide_refusal(account: Account | None, command: Command, lookup: Lookup) -> ContractBroken:
    """The error for a call of `decide` that breaks `DECIDE_REQUIRES`."""
    return _broken(
        requirement_broken(DECIDE_REQUIRES, account, command, lookup),
        "a precondition of decide",
        {"account": account, "command": command, "lookup": lookup},
    )


def fold_refusal(account: Account | None, entry: Entry, lookup: Lookup) -> ContractBroken:
    """The error for a call of `fold` that breaks `FOLD_REQUIRES`."""
    return _broken(
        requirement_broken(FOLD_REQUIRES, account, entry.command, lookup),
        "a precondition of fold",
        {"account": account, "entry": entry, "lookup": lookup},
    )


def fold_violation(account: Account | None, entry: Entry, lookup: Lookup, result: Account) -> ContractBroken:
    """The error for a step of `fold` that breaks `FOLD_ENSURES`."""
    return _broken(
        guarantee_broken(account, entry, lookup, result),
        "a postcondition of fold",
        {"account": account, "entry": entry, "lookup": lookup, "result": result},
    )


def records_its_command(command: Command, decision: Decision) -> bool:
    """An entry records the very command it was decided for (decide's postcondition)."""
    return not isinstance(decision, (Applied, Refused)) or decision.command is command


def step_broken(
    account: Account | None, command: Command, lookup: Lookup, result: tuple[Decision, Account | None]
) -> str | None:
    """The first contract of decide's and fold's that a whole step breaks (`transitions.execute`):
    decide's postcondition; for an entry, `FOLD_REQUIRES` and then `FOLD_ENSURES`; for a decision that
    records nothing, that the account is unchanged. None if the step keeps them all."""
    decision, after = result
    if not records_its_command(command, decision):
        return "the entry records this command"
    if not isinstance(decision, (Applied, Refused)):
        return None if after is account else "a decision that records nothing changes nothing"
    assert after is not None, "an entry folds into an account"
    return requirement_broken(FOLD_REQUIRES, account, command, lookup) or guarantee_broken(
        account, decision, lookup, after
    )


def step_violation(
    account: Account | None, command: Command, lookup: Lookup, result: tuple[Decision, Account | None]
) -> ContractBroken:
    """The error for a step of `transitions.execute` that breaks a contract of decide's or fold's."""
    return _broken(
        step_broken(account, command, lookup, result),
        "a postcondition of execute (decide, then fold)",
        {"account": account, "command": command, "lookup": lookup, "result": result},
    )


# --- Full forms: a whole ledger, in one pass ----------------------------------------------------

INVARIANT_RULES: Final = {
    "I1": "stored CAPITAL = Σ FUNDING − Σ CAPITAL_CLOSED over the ledger",
    "I2": "Σ CAPITAL_CLOSED ≤ Σ FUNDING after every entry",
    "I3": "at most one active loss, and capital closes only an active loss",
    "I4": "an active loss implies CAPITAL > CB",
    "I5": "remaining loss = CAPITAL − CB with a loss, CB = CAPITAL without one, as stored",
    "I6": "my + company share = payment, for each settlement and in the stored totals",
    "I7": "each withdrawn profit is exactly one payout, confirmed at most once, as stored",
    "I8": "each command id once in its account's ledger, which the stored count counts",
    "I9": "each loss's original = capital closed by its settlements or write-off + remaining",
    "I10": "every amount ≥ 0 and within the limit, and CB ≥ 0",
}
"""spec.md#invariants: each invariant in one line, for reports."""

INVARIANT_IDS: Final = tuple(INVARIANT_RULES)
"""spec.md#invariants: the ids of the ten invariants, in spec order."""


@attrs.frozen(kw_only=True)
class Break:
    """A full form that fails: which invariant, at which entry (1-based; None: against the stored
    books at the end), and what the ledger says against what was found."""

    invariant: str
    position: int | None
    detail: str


class LedgerCheck:
    """spec.md#invariants: all ten full forms over one account's ledger, entry by entry, in one pass.

    Everything it derives it derives from the events alone, never from the kernel's fold: CAPITAL,
    CB and the active loss after each entry, the running totals, the payouts withdrawn and confirmed,
    the losses opened and what closed them. `add` each entry in ledger order, then `finish` against
    the stored account and its stored payouts; `breaks` lists every failure, never only the first.
    Its memory is the account's figures plus its command ids, payouts and losses: one account's,
    never a whole database's.
    """

    def __init__(self, account_id: str | None = None) -> None:
        self.account_id = account_id
        """The account the ledger is of, when known: an entry of another account breaks I8."""
        self.breaks: list[Break] = []
        self.position = 0
        self.funding_minor = self.capital_closed_minor = self.balance_minor = 0
        self.loss_opened_by: str | None = None
        self.loss_original_minor = self.loss_closed_minor = 0
        self.payments_minor = self.my_share_minor = self.company_share_minor = 0
        self.withdrawn: dict[str, int] = {}
        self.confirmed: set[str] = set()
        self.seen: set[str] = set()
        self.losses_original: dict[str, int] = {}
        self.losses_closed: dict[str, int] = {}

    @property
    def capital_minor(self) -> int:
        return self.funding_minor - self.capital_closed_minor

    def _break(self, invariant: str, detail: str, *, at_end: bool = False) -> None:
        self.breaks.append(
            Break(invariant=invariant, position=None if at_end else self.position, detail=detail)
        )

    def add(self, entry: Entry) -> None:
        """One more entry of the ledger, in order."""
        self.position += 1
        command = entry.command
        if command.id in self.seen:
            self._break("I8", f"command id {command.id!r} is recorded a second time")
        self.seen.add(command.id)
        if self.account_id is not None and command.account != self.account_id:
            self._break("I8", f"an entry of account {command.account!r} in the ledger of {self.account_id!r}")
        events = _events(entry)
        opened = sum(isinstance(event, LossOpened) for event in events)
        if opened > 1 or (opened == 1 and self.loss_opened_by is not None):
            self._break(
                "I3", "a loss opened while one is active" if opened == 1 else f"{opened} losses opened"
            )
        closes = any(isinstance(event, (Settled, LossWrittenOff)) for event in events)
        if closes and opened == 0 and self.loss_opened_by is None:
            self._break("I3", "capital closed with no active loss")
        for event in events:
            self._event(entry, event)
        if self.loss_opened_by is not None and self.loss_original_minor - self.loss_closed_minor == 0:
            self.loss_opened_by, self.loss_original_minor, self.loss_closed_minor = None, 0, 0
        self._after_entry()

    def _event(self, entry: Entry, event: Event) -> None:
        for field in attrs.fields(type(event)):
            value = getattr(event, field.name)
            if field.name.endswith("_minor") and not 0 <= value <= AMOUNT_MINOR_MAX:
                self._break(
                    "I10", f"{type(event).__name__}.{field.name} = {value} is outside 0 … {AMOUNT_MINOR_MAX}"
                )
        if isinstance(event, Funded):
            self.funding_minor += event.amount_minor
            self.balance_minor += event.amount_minor
        elif isinstance(event, BalanceRecorded):
            self.balance_minor = event.balance_minor
        elif isinstance(event, ProfitWithdrawn):
            self.balance_minor -= event.amount_minor
            self._withdrawn(entry, event)
        elif isinstance(event, PayoutConfirmed):
            self._confirmed(event)
        elif isinstance(event, LossOpened):
            self.loss_opened_by = event.opened_by
            self.loss_original_minor, self.loss_closed_minor = event.original_minor, 0
            self.losses_original[event.opened_by] = event.original_minor
            self.losses_closed[event.opened_by] = 0
        elif isinstance(event, (Settled, LossWrittenOff)):
            self.capital_closed_minor += event.capital_closed_minor
            self.loss_closed_minor += event.capital_closed_minor
            if event.loss not in self.losses_closed:
                self._break("I9", f"capital closed on {event.loss!r}, a loss never opened")
            else:
                self.losses_closed[event.loss] += event.capital_closed_minor
            if isinstance(event, Settled):
                if event.my_share_minor + event.company_share_minor != event.payment_minor:
                    self._break(
                        "I6",
                        f"shares {event.my_share_minor} + {event.company_share_minor} of a payment of "
                        f"{event.payment_minor}",
                    )
                self.payments_minor += event.payment_minor
                self.my_share_minor += event.my_share_minor
                self.company_share_minor += event.company_share_minor

    def _withdrawn(self, entry: Entry, event: ProfitWithdrawn) -> None:
        own = payout_id(entry.command.account, entry.command.id)
        if event.payout_id in self.withdrawn:
            self._break("I7", f"payout {event.payout_id!r} withdrawn a second time")
        if event.amount_minor <= 0:
            self._break("I7", f"payout {event.payout_id!r} withdraws {event.amount_minor}, not a profit")
        if event.payout_id != own:
            self._break(
                "I7", f"payout {event.payout_id!r} withdrawn by command {entry.command.id!r}, not {own!r}"
            )
        self.withdrawn.setdefault(event.payout_id, event.amount_minor)

    def _confirmed(self, event: PayoutConfirmed) -> None:
        if event.payout_id not in self.withdrawn:
            self._break("I7", f"payout {event.payout_id!r} confirmed, never withdrawn")
            return
        if event.payout_id in self.confirmed:
            self._break("I7", f"payout {event.payout_id!r} confirmed a second time")
        if event.amount_minor != self.withdrawn[event.payout_id]:
            self._break(
                "I7",
                f"payout {event.payout_id!r} confirmed for {event.amount_minor}, "
                f"withdrawn for {self.withdrawn[event.payout_id]}",
            )
        self.confirmed.add(event.payout_id)

    def _after_entry(self) -> None:
        """The figures the ledger gives after an entry: I2, I4, I5 and CB's part of I10."""
        capital, balance = self.capital_minor, self.balance_minor
        if self.capital_closed_minor > self.funding_minor:
            self._break(
                "I2", f"Σ CAPITAL_CLOSED {self.capital_closed_minor} > Σ FUNDING {self.funding_minor}"
            )
        if self.loss_opened_by is not None and not capital > balance:
            self._break("I4", f"a loss is active with CAPITAL {capital} and CB {balance}")
        if self.loss_opened_by is None and balance != capital:
            self._break("I5", f"no loss is active, yet CB {balance} ≠ CAPITAL {capital}")
        remaining = self.loss_original_minor - self.loss_closed_minor
        if self.loss_opened_by is not None and remaining != capital - balance:
            self._break("I5", f"the loss's remaining {remaining} ≠ CAPITAL − CB = {capital - balance}")
        if balance < 0 or capital < 0:
            self._break("I10", f"CB {balance}, CAPITAL {capital}: below 0")

    def finish(self, account: Account | None, payouts: Sequence[Payout]) -> list[Break]:
        """The ledger against the stored account and payouts; every break found, in spec order."""
        if account is None:
            if self.position:
                for invariant in ("I1", "I5", "I6", "I7", "I8"):
                    self._break(invariant, "a ledger with no stored account", at_end=True)
            elif payouts:
                self._break("I7", "payouts stored for no account", at_end=True)
        else:
            self._against(account, payouts)
        self._losses_against(account)
        return sorted(self.breaks, key=lambda found: INVARIANT_IDS.index(found.invariant))

    def _against(self, account: Account, payouts: Sequence[Payout]) -> None:
        def differs(invariant: str, what: str, stored: object, ledger: object) -> None:
            if stored != ledger:
                self._break(invariant, f"stored {what} {stored}, the ledger says {ledger}", at_end=True)

        differs("I1", "CAPITAL", account.capital_minor, self.capital_minor)
        differs("I1", "Σ FUNDING", account.funding_minor, self.funding_minor)
        differs("I1", "Σ CAPITAL_CLOSED", account.capital_closed_minor, self.capital_closed_minor)
        differs("I5", "CB", account.balance_minor, self.balance_minor)
        loss = account.loss
        differs("I5", "active loss", loss.opened_by if loss else None, self.loss_opened_by)
        differs(
            "I5",
            "remaining loss",
            loss.remaining_minor if loss else 0,
            self.loss_original_minor - self.loss_closed_minor,
        )
        differs("I6", "Σ payments", account.payments_minor, self.payments_minor)
        differs("I6", "Σ my shares", account.my_share_minor, self.my_share_minor)
        differs("I6", "Σ company shares", account.company_share_minor, self.company_share_minor)
        differs("I8", "entry count", account.entry_count, self.position)
        stored = {payout.id: payout for payout in payouts}
        if len(stored) != len(payouts):
            self._break("I7", "a payout id stored twice", at_end=True)
        differs("I7", "payout ids", sorted(stored), sorted(self.withdrawn))
        for payout_id_, amount_minor in self.withdrawn.items():
            payout = stored.get(payout_id_)
            if payout is None:
                continue
            differs("I7", f"amount of payout {payout_id_!r}", payout.amount_minor, amount_minor)
            status = PayoutStatus.CONFIRMED if payout_id_ in self.confirmed else PayoutStatus.PENDING
            differs("I7", f"status of payout {payout_id_!r}", payout.status.value, status.value)
        differs("I7", "Σ PROFIT withdrawn", account.profit_withdrawn_minor, sum(self.withdrawn.values()))
        differs("I7", "payout count", account.payout_count, len(self.withdrawn))
        differs("I7", "confirmed payout count", account.payout_confirmed_count, len(self.confirmed))
        confirmed_minor = sum(self.withdrawn[payout_id_] for payout_id_ in self.confirmed)
        differs("I7", "Σ confirmed payouts", account.payout_confirmed_minor, confirmed_minor)

    def _losses_against(self, account: Account | None) -> None:
        """spec.md#i9: each loss's original = what closed it + what remains of it."""
        active = account.loss if account is not None else None
        for opened_by, original_minor in self.losses_original.items():
            remaining_minor = active.remaining_minor if active and active.opened_by == opened_by else 0
            if original_minor != self.losses_closed[opened_by] + remaining_minor:
                self._break(
                    "I9",
                    f"loss {opened_by!r}: original {original_minor} ≠ closed {self.losses_closed[opened_by]} "
                    f"+ remaining {remaining_minor}",
                    at_end=True,
                )
        if active is not None and active.opened_by not in self.losses_original:
            self._break("I9", f"the stored active loss {active.opened_by!r} was never opened", at_end=True)


def ledger_breaks(
    entries: Iterable[Entry], account: Account | None, payouts: Sequence[Payout]
) -> list[Break]:
    """Every break of the ten full forms over a ledger, its stored account and payouts, in one pass."""
    check = LedgerCheck(account.id if account is not None else None)
    for entry in entries:
        check.add(entry)
    return check.finish(account, payouts)


def broken_invariants_over(
    entries: Sequence[Entry], account: Account | None, payouts: Sequence[Payout]
) -> list[str]:
    """The ids of the invariants that a ledger, its stored account and payouts break, in spec order."""
    broken = {found.invariant for found in ledger_breaks(entries, account, payouts)}
    return [invariant for invariant in INVARIANT_IDS if invariant in broken]


FullInvariant = Callable[[Sequence[Entry], Account | None, Sequence[Payout]], bool]


def _holds(invariant: str) -> FullInvariant:
    def check(entries: Sequence[Entry], account: Account | None, payouts: Sequence[Payout]) -> bool:
        return invariant not in broken_invariants_over(entries, account, payouts)

    check.__name__ = f"{invariant}_holds_over"
    return check


FULL_INVARIANTS: Final[dict[str, FullInvariant]] = {
    invariant: _holds(invariant) for invariant in INVARIANT_IDS
}
"""spec.md#invariants: every full form by its id, called as `check(entries, account, payouts)`: an
account's ledger, its stored value and its stored payouts."""
