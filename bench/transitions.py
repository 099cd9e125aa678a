"""Benchmarks of the kernel's transitions, reported as ratios measured side by side in one run.

icontract decides at import time whether contracts run (`enabled=__debug__`), so this process runs
the same workload in two children, `python` (contracts on) and `python -O` (contracts off). Each
child builds one account's history by driving `execute` as a store would, keeping beside the
account what a store keeps by key (the entries by command id, the payouts by id); then, round after
round, the parent has the two time the same batch of further transitions on that account at several
ages, one child after the other in alternating order, and reports medians and the ratios measured
within each round. spec.md#e6 says the cost of a transition must not grow with the ledger, and
spec.md#storage that the account's value does not either: the storage view sets the bytes of the
value beside those of what a store looks up by key and of the whole history it keeps.

Run `python bench/transitions.py [--quick]`; `--profile` prints where a contracts-on run spends its
time instead. bench/README.md explains each figure. Timings are never asserted by the tests.
"""

from __future__ import annotations

import argparse
import array
import cProfile
import datetime
import enum
import gc
import hashlib
import json
import os
import platform
import pstats
import random
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Sequence
from importlib import metadata
from typing import Any, Final, TypeAlias, TypedDict, TypeVar

import attrs
import icontract

from ppk.adapters.canonical import encode_entry
from ppk.kernel import transitions as kernel_transitions
from ppk.kernel.state import (
    ACCOUNT_CHARS_MAX,
    AMOUNT_MINOR_MAX,
    BP_PER_WHOLE,
    ID_CHARS_MAX,
    NOTHING_RECORDED,
    Account,
    Applied,
    Code,
    Command,
    ConfirmPayout,
    Decision,
    Entry,
    Fund,
    Lookup,
    Loss,
    OpenAccount,
    Payout,
    PayoutStatus,
    RecordBalance,
    Refused,
    Repeated,
    SetShares,
    Settle,
    Settled,
    payout_id,
)
from ppk.kernel.transitions import (
    decide,
    execute,
    fold,
    payable_minor,
    payout_looked_up,
    payouts_written,
)

# --- What is measured, and how long ---------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Plan:
    """How much a run measures."""

    history_entries: tuple[int, ...]
    """The ages at which a transition is timed, in ledger entries (commands recorded)."""
    overhead_history_entries: int
    """The age at which the contract overhead is broken down by kind of command."""
    batch_cycles: int
    """How many times the timed batch runs through `BATCH_CYCLE`."""
    repeats: int
    """Timed replays of each batch per child and round; the median is kept."""
    rounds: int
    """Rounds in which both children time every batch, one after the other, in alternating order."""

    @property
    def batch_transitions(self) -> int:
        """Transitions in one batch: one to leave any active loss, then the cycles."""
        return 1 + self.batch_cycles * len(BATCH_CYCLE)


PLAN_DEFAULT: Final = Plan(
    history_entries=(10**2, 10**3, 10**4, 10**5),
    overhead_history_entries=10**3,
    batch_cycles=30,
    repeats=3,
    rounds=40,
)
PLAN_QUICK: Final = Plan(
    history_entries=(10**2, 10**3, 10**4),
    overhead_history_entries=10**3,
    batch_cycles=8,
    repeats=3,
    rounds=8,
)

T = TypeVar("T")

MODES: Final = ("on", "off")
"""Contracts on (`python`) and off (`python -O`)."""

CHILD_TIMEOUT_S: Final = 600
TIMER_PAIRS: Final = 10_001
PROFILE_ROWS: Final = 20
PROFILE_REPLAYS: Final = 7

ACCOUNT_ID: Final = "bench"
HISTORY_SEED: Final = 20_240_601
BATCH_SEED: Final = 7
DAY_FIRST: Final = datetime.date(2020, 1, 1)
DAY_STALE: Final = datetime.date(2000, 1, 1)
"""Earlier than every date the drivers write, so a balance recorded with it is `stale_balance`."""
FUND_MINOR_MIN: Final = 10_000
FUND_MINOR_MAX: Final = 1_000_000
PROFIT_MINOR_MAX: Final = 100_000
REFUSED_PAYMENT_MINOR_MAX: Final = 1_000
HISTORY_SHARES_BP: Final = ((100, 900), (4_782, 0), (0, 1_875), (250, 250), (0, 0))
"""The shares a history sets; (0, 0) writes every loss off until the next set_shares (E9)."""
BATCH_SHARES_BP: Final = ((100, 900), (4_782, 0), (250, 250))
"""The shares the batch sets: all leave a loss to settle, all can write off a small one."""


# --- Commands of every kind, driven through `execute` ---------------------------------------------


class Kind(enum.StrEnum):
    """What a benchmark command does; a refused kind names the rule that refuses it."""

    FUND = "fund"
    RECORD_BALANCE_PROFIT = "record_balance, profit"
    RECORD_BALANCE_EQUAL = "record_balance, equal"
    RECORD_BALANCE_LOSS = "record_balance, loss"
    RECORD_BALANCE_WRITE_OFF = "record_balance, written off"
    SETTLE_PARTIAL = "settle, partial"
    SETTLE_FULL = "settle, full"
    SET_SHARES = "set_shares"
    CONFIRM_PAYOUT = "confirm_payout"
    LOSS_ACTIVE = "refused: loss_active"
    STALE_BALANCE = "refused: stale_balance"
    NO_ACTIVE_LOSS = "refused: no_active_loss"
    PAYMENT_EXCEEDS_PAYABLE = "refused: payment_exceeds_payable"
    UNKNOWN_PAYOUT = "refused: unknown_payout"


REFUSAL_CODES: Final[dict[Kind, Code]] = {
    Kind.LOSS_ACTIVE: Code.LOSS_ACTIVE,
    Kind.STALE_BALANCE: Code.STALE_BALANCE,
    Kind.NO_ACTIVE_LOSS: Code.NO_ACTIVE_LOSS,
    Kind.PAYMENT_EXCEEDS_PAYABLE: Code.PAYMENT_EXCEEDS_PAYABLE,
    Kind.UNKNOWN_PAYOUT: Code.UNKNOWN_PAYOUT,
}
"""The code each refused kind must get; every other kind must be applied."""

# A history's mix, as weights: roughly a busy account's, with a loss settled over a few payments.
HISTORY_WEIGHTS_WITHOUT_LOSS: Final[dict[Kind, int]] = {
    Kind.FUND: 20,
    Kind.RECORD_BALANCE_PROFIT: 20,
    Kind.RECORD_BALANCE_EQUAL: 5,
    Kind.RECORD_BALANCE_LOSS: 15,
    Kind.RECORD_BALANCE_WRITE_OFF: 2,
    Kind.CONFIRM_PAYOUT: 15,
    Kind.SET_SHARES: 4,
    Kind.STALE_BALANCE: 3,
    Kind.NO_ACTIVE_LOSS: 3,
    Kind.UNKNOWN_PAYOUT: 3,
}
HISTORY_WEIGHTS_WITH_LOSS: Final[dict[Kind, int]] = {
    Kind.SETTLE_PARTIAL: 40,
    Kind.SETTLE_FULL: 25,
    Kind.PAYMENT_EXCEEDS_PAYABLE: 5,
    Kind.FUND: 10,
    Kind.LOSS_ACTIVE: 5,
    Kind.SET_SHARES: 3,
    Kind.CONFIRM_PAYOUT: 10,
    Kind.UNKNOWN_PAYOUT: 2,
}

BATCH_CYCLE: Final = (
    Kind.SET_SHARES,
    Kind.FUND,
    Kind.RECORD_BALANCE_PROFIT,
    Kind.CONFIRM_PAYOUT,
    Kind.UNKNOWN_PAYOUT,
    Kind.NO_ACTIVE_LOSS,
    Kind.RECORD_BALANCE_LOSS,
    Kind.LOSS_ACTIVE,
    Kind.SETTLE_PARTIAL,
    Kind.PAYMENT_EXCEEDS_PAYABLE,
    Kind.FUND,
    Kind.SETTLE_FULL,
    Kind.STALE_BALANCE,
    Kind.RECORD_BALANCE_EQUAL,
    Kind.RECORD_BALANCE_WRITE_OFF,
)
"""The timed batch, in order: every kind once (fund twice), 9 applied and 5 refused."""


def _require(condition: bool, message: str) -> None:
    """A check of the benchmark's own setup that, unlike `assert`, survives `python -O`."""
    if not condition:
        raise RuntimeError(message)


def _present(value: T | None, message: str) -> T:
    """`value`, which the benchmark's setup promises is there; narrowed for the type checker."""
    if value is None:
        raise RuntimeError(message)
    return value


def _recorded(decision: Decision) -> Entry:
    """`decision`, which the benchmark's setup promises is a ledger entry; narrowed for the type checker."""
    if not isinstance(decision, (Applied, Refused)):
        raise RuntimeError(f"every benchmark command is recorded, not {decision!r}")
    return decision


def _active_payable_minor(account: Account) -> int:
    loss = _present(account.loss, "a settlement needs an active loss")
    return payable_minor(loss.remaining_minor, loss.my_share_bp + loss.company_share_bp)


def _write_off_minor_max(account: Account) -> int:
    """The largest loss whose payable is 0 at the account's shares (0: none is)."""
    if account.total_share_bp == 0:
        return account.capital_minor
    return min((BP_PER_WHOLE - 1) // account.total_share_bp, account.capital_minor)


def applicable(kind: Kind, account: Account, payouts_pending: int) -> bool:
    """Whether `kind` gets its intended outcome against `account`."""
    if kind in (Kind.SETTLE_PARTIAL, Kind.SETTLE_FULL, Kind.PAYMENT_EXCEEDS_PAYABLE, Kind.LOSS_ACTIVE):
        if account.loss is None:
            return False
        return kind is not Kind.SETTLE_PARTIAL or _active_payable_minor(account) >= 2
    if kind is Kind.CONFIRM_PAYOUT:
        return payouts_pending > 0
    if kind in (Kind.FUND, Kind.SET_SHARES, Kind.UNKNOWN_PAYOUT):
        return True
    if account.loss is not None:
        return False
    if kind is Kind.RECORD_BALANCE_LOSS:
        return account.capital_minor >= 2
    if kind is Kind.RECORD_BALANCE_WRITE_OFF:
        return _write_off_minor_max(account) >= 1
    if kind is Kind.STALE_BALANCE:
        return account.balance_date_latest is not None
    return True


@attrs.define
class KeyedHistory:
    """What a store keeps of one account's history, by key: its entries by command id, its payouts by id.

    It does what `ppk.adapters.store.MemoryStore` does for one account, with two differences the
    benchmark needs: a copy of it at one age stays what it was at that age (`snapshot`), and a layer
    over one age (`base`) records a batch's entries and payouts without changing that age.
    """

    entries: dict[str, Entry] = attrs.Factory(dict)
    """The recorded entries by command id, in ledger order."""
    payouts: dict[str, Payout] = attrs.Factory(dict)
    """The payouts by payout id, as the latest entry that wrote each left it."""
    base: KeyedHistory | None = None
    """The history this one is a layer over, read where this one holds nothing under a key."""

    def lookup(self, account: Account | None, command: Command) -> Lookup:
        """spec.md#storage: what is recorded under the keys `command` names, as a store hands it over."""
        if account is None:
            return NOTHING_RECORDED
        entry = self._entry(command.id)
        named = payout_looked_up(command)
        payout = None if named is None else self._payout(named)
        if entry is None and payout is None:
            return NOTHING_RECORDED
        return Lookup(entry=entry, payout=payout)

    def _entry(self, command_id: str) -> Entry | None:
        entry = self.entries.get(command_id)
        if entry is None and self.base is not None:
            return self.base._entry(command_id)
        return entry

    def _payout(self, payout_id_: str) -> Payout | None:
        payout = self.payouts.get(payout_id_)
        if payout is None and self.base is not None:
            return self.base._payout(payout_id_)
        return payout

    def record(self, entry: Entry) -> None:
        """Keep an entry and the payouts it writes, as a store does in the entry's transaction."""
        self.entries[entry.command.id] = entry
        for payout in payouts_written(entry):
            self.payouts[payout.id] = payout

    def snapshot(self) -> KeyedHistory:
        """This history as it is now, unchanged by what is recorded later (its values are immutable)."""
        _require(self.base is None, "only a whole history is copied")
        return KeyedHistory(entries=dict(self.entries), payouts=dict(self.payouts))


@attrs.define
class Driver:
    """Writes commands of a chosen kind against the current account and drives them through `execute`."""

    rng: random.Random
    id_prefix: str
    shares_bp: tuple[tuple[int, int], ...]
    day: datetime.date
    """The date of the next recorded balance; it only moves forward."""
    history: KeyedHistory
    """Where the entries are recorded and the lookups are made, as by a store."""
    payouts_pending: list[str] = attrs.Factory(list)
    """Payouts this driver created and has not confirmed yet."""
    commands_written: int = 0

    def command(self, kind: Kind, account: Account) -> Command:
        """A new command of `kind`, with a fresh id, meant for `account`."""
        self.commands_written += 1
        command_id = f"{self.id_prefix}{self.commands_written}"
        if kind in (Kind.SETTLE_PARTIAL, Kind.SETTLE_FULL, Kind.PAYMENT_EXCEEDS_PAYABLE, Kind.NO_ACTIVE_LOSS):
            return Settle(id=command_id, account=ACCOUNT_ID, payment_minor=self._payment_minor(kind, account))
        if kind is Kind.FUND:
            amount_minor = self.rng.randint(FUND_MINOR_MIN, FUND_MINOR_MAX)
            return Fund(id=command_id, account=ACCOUNT_ID, amount_minor=amount_minor)
        if kind is Kind.SET_SHARES:
            my_share_bp, company_share_bp = self.rng.choice(self.shares_bp)
            return SetShares(
                id=command_id, account=ACCOUNT_ID, my_share_bp=my_share_bp, company_share_bp=company_share_bp
            )
        if kind is Kind.CONFIRM_PAYOUT:
            # Swap a random pending payout to the end and take it: O(1), whatever the backlog.
            index = self.rng.randrange(len(self.payouts_pending))
            pending = self.payouts_pending
            pending[index], pending[-1] = pending[-1], pending[index]
            return ConfirmPayout(id=command_id, account=ACCOUNT_ID, payout=pending.pop())
        if kind is Kind.UNKNOWN_PAYOUT:
            return ConfirmPayout(id=command_id, account=ACCOUNT_ID, payout=f"{ACCOUNT_ID}:none-{command_id}")
        return self._record_balance(kind, account, command_id)

    def _payment_minor(self, kind: Kind, account: Account) -> int:
        if kind is Kind.NO_ACTIVE_LOSS:
            return self.rng.randint(1, REFUSED_PAYMENT_MINOR_MAX)
        payable = _active_payable_minor(account)
        if kind is Kind.SETTLE_PARTIAL:
            return self.rng.randint(1, payable - 1)
        if kind is Kind.PAYMENT_EXCEEDS_PAYABLE:
            return payable + self.rng.randint(1, REFUSED_PAYMENT_MINOR_MAX)
        return payable

    def _record_balance(self, kind: Kind, account: Account, command_id: str) -> RecordBalance:
        capital_minor = account.capital_minor
        if kind is Kind.LOSS_ACTIVE:
            return RecordBalance(id=command_id, account=ACCOUNT_ID, balance_minor=account.balance_minor)
        if kind is Kind.STALE_BALANCE:
            return RecordBalance(
                id=command_id, account=ACCOUNT_ID, balance_minor=capital_minor, date=DAY_STALE
            )
        if kind is Kind.RECORD_BALANCE_PROFIT:
            balance_minor = capital_minor + self.rng.randint(1, PROFIT_MINOR_MAX)
        elif kind is Kind.RECORD_BALANCE_LOSS:
            balance_minor = capital_minor - self.rng.randint(max(1, capital_minor // 20), capital_minor // 2)
        elif kind is Kind.RECORD_BALANCE_WRITE_OFF:
            balance_minor = capital_minor - self.rng.randint(1, _write_off_minor_max(account))
        else:
            _require(kind is Kind.RECORD_BALANCE_EQUAL, f"no command is written for {kind}")
            balance_minor = capital_minor
        date = self.day
        self.day += datetime.timedelta(days=1)
        return RecordBalance(id=command_id, account=ACCOUNT_ID, balance_minor=balance_minor, date=date)

    def step(self, kind: Kind, account: Account) -> tuple[Command, Lookup, Account]:
        """Write a command of `kind`, look up its keys, execute it, record its entry, and check that it
        got the outcome its kind names."""
        command = self.command(kind, account)
        lookup = self.history.lookup(account, command)
        if lookup.entry is not None:
            raise RuntimeError(f"{command!r} reuses a recorded id")
        decision, account_after = execute(account, command, lookup)
        # The messages are written only on failure: a repr per step would weigh on the build.
        code = REFUSAL_CODES.get(kind)
        if code is None and not isinstance(decision, Applied):
            raise RuntimeError(f"{kind} {command!r} was not applied: {decision!r}")
        if code is not None and not (isinstance(decision, Refused) and decision.code is code):
            raise RuntimeError(f"{kind} {command!r} was not refused with {code}: {decision!r}")
        self.history.record(_recorded(decision))
        after = _present(account_after, "an account never disappears")
        if kind is Kind.RECORD_BALANCE_PROFIT:
            self.payouts_pending.append(payout_id(ACCOUNT_ID, command.id))
        return command, lookup, after


@attrs.frozen(kw_only=True)
class Aged:
    """The account at one age, and the history a store keeps for it at that age."""

    account: Account
    history: KeyedHistory


def build_histories(history_entries: Sequence[int]) -> tuple[dict[int, Aged], Counter[Kind]]:
    """One account, aged by `execute` to the largest size; the account and its keyed history at every
    size on the way."""
    rng = random.Random(HISTORY_SEED)
    history = KeyedHistory()
    driver = Driver(rng=rng, id_prefix="h", shares_bp=HISTORY_SHARES_BP, day=DAY_FIRST, history=history)
    opening = OpenAccount(id="h0", account=ACCOUNT_ID, my_share_bp=100, company_share_bp=900)
    decision, opened = execute(None, opening, history.lookup(None, opening))
    history.record(_recorded(decision))
    account = _present(opened, "open_account opens the account")
    aged: dict[int, Aged] = {}
    kinds: Counter[Kind] = Counter()
    wanted = set(history_entries)
    largest = max(history_entries)
    # Every command the driver writes is recorded, so each step adds exactly one ledger entry.
    for _ in range(largest - 1):
        weights = HISTORY_WEIGHTS_WITH_LOSS if account.loss is not None else HISTORY_WEIGHTS_WITHOUT_LOSS
        (kind,) = rng.choices(list(weights), weights=list(weights.values()))
        if not applicable(kind, account, len(driver.payouts_pending)):
            kind = Kind.FUND
        _, _, account = driver.step(kind, account)
        kinds[kind] += 1
        if account.entry_count in wanted:
            # The largest age keeps the history itself: nothing is recorded after it.
            kept = history if account.entry_count == largest else history.snapshot()
            aged[account.entry_count] = Aged(account=account, history=kept)
    _require(sorted(aged) == sorted(wanted), f"history sizes {sorted(aged)} != {sorted(wanted)}")
    for size, at in aged.items():
        _require(
            len(at.history.entries) == size
            and len(at.history.payouts) == at.account.payout_count
            and sum(p.status is PayoutStatus.CONFIRMED for p in at.history.payouts.values())
            == at.account.payout_confirmed_count,
            f"the keyed history of {size} entries does not agree with its account's counters",
        )
    return aged, kinds


@attrs.frozen(kw_only=True)
class Batch:
    """A fixed run of commands, each with a fresh id, that replays from `base` to the same result.

    `lookups` are what a store would hand the kernel for each command, looked up by key while the
    batch was planned against the history of its age and the batch's own earlier entries: the
    batch adds only fresh ids and its own payouts, so they are the same on every replay. Timing
    `execute(account, command, lookup)` leaves the lookup out: it is the store's work, not the
    transition's.
    """

    base: Account
    kinds: tuple[Kind, ...]
    commands: tuple[Command, ...]
    lookups: tuple[Lookup, ...]


def plan_batch(aged: Aged, cycles: int) -> Batch:
    """Settle any active loss, then run `BATCH_CYCLE` `cycles` times; every outcome checked."""
    base = aged.account
    day = base.balance_date_latest or DAY_FIRST
    driver = Driver(
        rng=random.Random(BATCH_SEED),
        id_prefix="b",
        shares_bp=BATCH_SHARES_BP,
        day=day,
        history=KeyedHistory(base=aged.history),
    )
    kinds = [Kind.SETTLE_FULL if base.loss is not None else Kind.FUND]
    kinds += list(BATCH_CYCLE) * cycles
    commands: list[Command] = []
    lookups: list[Lookup] = []
    account = base
    for kind in kinds:
        command, lookup, account = driver.step(kind, account)
        commands.append(command)
        lookups.append(lookup)
    return Batch(base=base, kinds=tuple(kinds), commands=tuple(commands), lookups=tuple(lookups))


# --- The storage view: what the account's value takes, and what a store keeps by key ----------------


def deep_bytes(*roots: object) -> int:
    """`sys.getsizeof` summed over the values reachable from `roots` through attrs fields, tuples and
    dicts (keys and values), each object counted once; None, which a store keeps as nothing, is not
    counted."""
    seen: set[int] = set()
    total = 0
    stack = list(roots)
    while stack:
        value = stack.pop()
        if value is None or id(value) in seen:
            continue
        seen.add(id(value))
        total += sys.getsizeof(value)
        cls = type(value)
        if attrs.has(cls):
            stack.extend(getattr(value, field.name) for field in attrs.fields(cls))
        elif isinstance(value, (tuple, list)):
            stack.extend(value)
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
    return total


class StorageView(TypedDict):
    """At one age: the bytes of the account's value beside those of what a store keeps by key."""

    account_bytes: int
    """Deep size of the account's value (`Account`, its `Loss` if one is active, strings, ints, date)."""
    loss_active: bool
    """Whether the account holds an active loss at that age: the one part of it that comes and goes."""
    account_bytes_batch_max: int
    """The largest deep size of the account over the batch from that age, whose transitions open,
    settle and write off losses: the same states at every age, so the figure compares across ages."""
    lookup_bytes: int
    """Deep size of the largest lookup one command can need: a retry of the latest confirm_payout,
    with its recorded entry and the payout it names."""
    history_bytes: int
    """Deep size of the whole keyed history: the entries by command id and the payouts by id."""
    payouts: int
    """Payouts in that history."""
    encoded_bytes_total: int
    """Σ over the ledger's entries of the bytes of `encode_entry`: what the ledger table holds."""
    encoded_bytes_mean: float
    """The same, per entry."""


def largest_account() -> Account:
    """An account as large as any can be: the longest ids in the widest characters, an active loss,
    every figure distinct and near the limit of 10^17 minor units, which fits in a 32-byte int (so do
    counters below 2^60), and the latest date."""
    figures = iter(range(AMOUNT_MINOR_MAX, 0, -1))
    loss = Loss(
        opened_by="\U0001f4b0" * ID_CHARS_MAX,
        capital_minor=next(figures),
        balance_minor=next(figures),
        original_minor=next(figures),
        remaining_minor=next(figures),
        capital_closed_minor=next(figures),
        my_share_bp=BP_PER_WHOLE - 1,
        company_share_bp=BP_PER_WHOLE - 2,
    )
    return Account(
        id="a" * ACCOUNT_CHARS_MAX,
        my_share_bp=BP_PER_WHOLE - 3,
        company_share_bp=BP_PER_WHOLE - 4,
        capital_minor=next(figures),
        balance_minor=next(figures),
        funding_minor=next(figures),
        capital_closed_minor=next(figures),
        profit_withdrawn_minor=next(figures),
        payments_minor=next(figures),
        my_share_minor=next(figures),
        company_share_minor=next(figures),
        loss=loss,
        balance_date_latest=datetime.date.max,
        entry_count=next(figures),
        payout_count=next(figures),
        payout_confirmed_count=next(figures),
        payout_confirmed_minor=next(figures),
    )


def storage_view(aged: Aged, batch: Batch) -> StorageView:
    """The storage figures of the account and its keyed history at one age."""
    account, history = aged.account, aged.history
    batch_account: Account | None = batch.base
    batch_account_bytes = []
    for command, lookup_ in zip(batch.commands, batch.lookups, strict=True):
        _, batch_account = execute(batch_account, command, lookup_)
        batch_account_bytes.append(deep_bytes(batch_account))
    entries = list(history.entries.values())
    confirmation = next(
        entry
        for entry in reversed(entries)
        if isinstance(entry, Applied) and isinstance(entry.command, ConfirmPayout)
    )
    assert isinstance(confirmation.command, ConfirmPayout)
    lookup = Lookup(entry=confirmation, payout=history.payouts[confirmation.command.payout])
    # It is what a store hands the kernel for that command sent again: decided as a retry.
    _require(
        decide(account, confirmation.command, lookup) == Repeated(entry=confirmation),
        "the lookup of a confirm_payout's retry is decided as a repetition",
    )
    encoded_bytes_total = sum(len(encode_entry(entry)) for entry in entries)
    return StorageView(
        account_bytes=deep_bytes(account),
        loss_active=account.loss is not None,
        account_bytes_batch_max=max(batch_account_bytes),
        lookup_bytes=deep_bytes(lookup),
        history_bytes=deep_bytes(history.entries, history.payouts),
        payouts=len(history.payouts),
        encoded_bytes_total=encoded_bytes_total,
        encoded_bytes_mean=encoded_bytes_total / len(entries),
    )


# --- One child: contracts as the interpreter's -O says; it answers the parent line by line -------


class Probe(TypedDict):
    debug: bool
    """`__debug__` in the child."""
    violation_raised: bool
    """Whether folding a bogus settlement raised icontract.ViolationError."""
    violation: str
    """The violated contract's description line, or ""."""


class Ready(TypedDict):
    """The child's first line: its contracts, and the histories it built."""

    mode: str
    probe: Probe
    build_s: float
    """Seconds to build the largest history through `execute` (both children build at once)."""
    history_kinds: dict[str, int]
    history_digest: str
    """SHA-256 of the repr of the largest history's account: the same in both children."""
    timer_ns: float
    """Median cost of one `perf_counter_ns` pair: included in every transition's time."""
    storage: dict[str, StorageView] | None
    """By history size, the storage view; measured by the contracts-off child only, as its build
    finishes first (the values are the same in both)."""
    account_bytes_bound: int
    """Deep size of `largest_account()`: no account takes more, whatever its history."""


class Timing(TypedDict):
    transition_ns: float
    """Median over a round's replays of the batch's mean time per transition."""
    kind_transition_ns: dict[str, float]
    """The same, for the transitions of each kind in the batch."""


class Memory(TypedDict):
    peak_bytes_median: float
    """Median over the batch of the bytes allocated above the start of one transition, at its peak."""
    peak_bytes_max: int
    retained_bytes_per_transition: float
    """Growth of traced memory over the batch, holding only the last account, per transition."""


MemoryReport: TypeAlias = dict[str, Memory]
"""By history size: the smallest and the largest."""


RoundTiming: TypeAlias = dict[str, Timing]
"""One round's timings, by history size (ledger entries)."""

REQUEST_TIME: Final = "time"
REQUEST_MEMORY: Final = "memory"


def contract_probe() -> Probe:
    """Fold a settlement whose shares miss its payment by 1: only live contracts refuse it."""
    opened: Account | None = None
    for command in (
        OpenAccount(id="p0", account=ACCOUNT_ID, my_share_bp=100, company_share_bp=900),
        Fund(id="p1", account=ACCOUNT_ID, amount_minor=100_000),
        RecordBalance(id="p2", account=ACCOUNT_ID, balance_minor=50_000),
    ):
        _, opened = execute(opened, command, NOTHING_RECORDED)
    account = _present(opened, "the probe's account exists")
    loss = _present(account.loss, "the probe's account has a loss")
    # Consistent in every figure but one: my + company is the payment less 1 (spec.md#i6).
    bogus = Settled(
        loss=loss.opened_by,
        payment_minor=1_000,
        capital_closed_minor=10_000,
        my_share_minor=100,
        company_share_minor=899,
    )
    entry = Applied(command=Settle(id="p3", account=ACCOUNT_ID, payment_minor=1_000), events=(bogus,))
    try:
        fold(account, entry, NOTHING_RECORDED)
    except icontract.ViolationError as error:
        # The first line is the contract's location, the second its description and condition.
        description = next(line for line in str(error).splitlines() if not line.startswith("File "))
        return Probe(debug=__debug__, violation_raised=True, violation=description)
    return Probe(debug=__debug__, violation_raised=False, violation="")


def probe_problem(mode: str, probe: Probe) -> str | None:
    """Why a child's contracts are not in the state its mode promises, if they are not."""
    on = mode == "on"
    if probe["debug"] is not on:
        return f"the contracts-{mode} child has __debug__ = {probe['debug']}"
    if probe["violation_raised"] is not on:
        raised = "raised" if probe["violation_raised"] else "did not raise"
        return f"the contracts-{mode} child {raised} ViolationError on a bogus settlement"
    return None


def replay(batch: Batch) -> None:
    """Run the batch once, untimed."""
    account: Account | None = batch.base
    for command, lookup in zip(batch.commands, batch.lookups, strict=True):
        _, account = execute(account, command, lookup)


def replay_timed(batch: Batch) -> array.array[int]:
    """Run the batch once; the nanoseconds each transition took."""
    transition_ns = array.array("q", bytes(8 * len(batch.commands)))
    clock = time.perf_counter_ns
    account: Account | None = batch.base
    lookups = batch.lookups
    for index, command in enumerate(batch.commands):
        lookup = lookups[index]
        start_ns = clock()
        _, account = execute(account, command, lookup)
        transition_ns[index] = clock() - start_ns
    return transition_ns


def time_round(batches: dict[int, Batch], repeats: int, round_index: int) -> RoundTiming:
    """Replay every batch `repeats` times, interleaved, with gc off (as timeit does); the medians."""
    sizes = list(batches)
    samples: dict[int, list[array.array[int]]] = {size: [] for size in sizes}
    gc.collect()
    gc.disable()
    try:
        for repeat in range(repeats):
            # Rotate the order so that no history is always timed first.
            shift = (round_index * repeats + repeat) % len(sizes)
            for size in sizes[shift:] + sizes[:shift]:
                samples[size].append(replay_timed(batches[size]))
    finally:
        gc.enable()
    return {str(size): summarize_timing(batches[size], samples[size]) for size in sizes}


def summarize_timing(batch: Batch, samples: list[array.array[int]]) -> Timing:
    """Medians over the repeats, for the whole batch and for each kind of command in it."""
    positions: dict[Kind, list[int]] = {}
    for index, kind in enumerate(batch.kinds):
        positions.setdefault(kind, []).append(index)
    return Timing(
        transition_ns=statistics.median(sum(sample) / len(sample) for sample in samples),
        kind_transition_ns={
            kind.value: statistics.median(
                sum(sample[index] for index in indexes) / len(indexes) for sample in samples
            )
            for kind, indexes in positions.items()
        },
    )


def measure_memory(batch: Batch) -> Memory:
    """Trace the allocations of one replay; commands and lookups are built beforehand, so they are
    not counted."""
    peak_bytes = array.array("q", bytes(8 * len(batch.commands)))
    gc.collect()
    gc.disable()
    # A full collection empties the interpreter's free lists; an untraced replay refills them, so the
    # traced one shows the steady state rather than the free lists' first refill.
    replay(batch)
    tracemalloc.start()
    try:
        account: Account | None = batch.base
        lookups = batch.lookups
        start_bytes, _ = tracemalloc.get_traced_memory()
        for index, command in enumerate(batch.commands):
            lookup = lookups[index]
            before_bytes, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            _, account = execute(account, command, lookup)
            peak_bytes[index] = tracemalloc.get_traced_memory()[1] - before_bytes
        gc.collect()
        end_bytes, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        gc.enable()
    return Memory(
        peak_bytes_median=statistics.median(peak_bytes),
        peak_bytes_max=max(peak_bytes),
        retained_bytes_per_transition=(end_bytes - start_bytes) / len(batch.commands),
    )


def timer_ns() -> float:
    """The median cost of the two clock reads around each timed transition."""
    clock = time.perf_counter_ns
    pair_ns = array.array("q", bytes(8 * TIMER_PAIRS))
    for index in range(TIMER_PAIRS):
        start_ns = clock()
        pair_ns[index] = clock() - start_ns
    return statistics.median(pair_ns)


def _respond(answer: Ready | RoundTiming | MemoryReport) -> None:
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()


def serve(mode: str, plan: Plan) -> None:
    """Probe the contracts, build the histories, then time or trace on each request from the parent."""
    probe = contract_probe()
    problem = probe_problem(mode, probe)
    _require(problem is None, f"{problem}: the figures would not mean what they say")
    # The build makes no reference cycles, and a collection would only walk the growing history again.
    gc.disable()
    try:
        build_start_ns = time.perf_counter_ns()
        histories, kinds = build_histories(plan.history_entries)
        build_s = (time.perf_counter_ns() - build_start_ns) / 1e9
    finally:
        gc.enable()
    # The histories live to the end: keep every later collection from walking them again.
    gc.collect()
    gc.freeze()
    batches = {size: plan_batch(histories[size], plan.batch_cycles) for size in plan.history_entries}
    storage = None
    if mode == "off":
        storage = {str(size): storage_view(histories[size], batches[size]) for size in plan.history_entries}
    for batch in batches.values():
        replay(batch)
    largest = histories[max(plan.history_entries)].account
    _respond(
        Ready(
            mode=mode,
            probe=probe,
            build_s=build_s,
            history_kinds={kind.value: count for kind, count in sorted(kinds.items())},
            history_digest=hashlib.sha256(repr(largest).encode()).hexdigest(),
            timer_ns=timer_ns(),
            storage=storage,
            account_bytes_bound=deep_bytes(largest_account()),
        )
    )
    rounds_timed = 0
    # The parent asks for each round, then for memory, then closes the pipe.
    for _ in range(plan.rounds + 2):
        request = sys.stdin.readline().strip()
        if request == REQUEST_TIME:
            _respond(time_round(batches, plan.repeats, rounds_timed))
            rounds_timed += 1
        elif request == REQUEST_MEMORY:
            smallest, largest_size = min(plan.history_entries), max(plan.history_entries)
            _respond({str(size): measure_memory(batches[size]) for size in (smallest, largest_size)})
        else:
            _require(request == "", f"unknown request {request!r}")
            return


def profile_child(plan: Plan, top: int) -> None:
    """Profile the overhead batch's replays with cProfile; print the time by origin and the top costs."""
    histories, _ = build_histories((plan.overhead_history_entries,))
    batch = plan_batch(histories[plan.overhead_history_entries], plan.batch_cycles)
    replay(batch)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(PROFILE_REPLAYS):
        replay(batch)
    profiler.disable()
    stats = pstats.Stats(profiler)
    origins: Counter[str] = Counter()
    conditions = 0
    for (filename, _, name), (_, calls, own_s, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        origins[_origin(filename, name)] += own_s
        # icontract selects the arguments of every condition it evaluates, pre or post, once.
        if name == "select_condition_kwargs":
            conditions += calls
    total_s = sum(origins.values())
    transitions = PROFILE_REPLAYS * len(batch.commands)
    print(
        f"contracts {'on' if __debug__ else 'off'}: {transitions} transitions under cProfile, "
        f"{conditions / transitions:.1f} contract conditions evaluated per transition"
    )
    print(f"{'own time by origin':<44} {'share':>6} {'µs/transition':>14}")
    for origin, own_s in origins.most_common():
        print(f"{origin:<44} {own_s / total_s:>6.1%} {own_s / transitions * 1e6:>14.2f}")
    print()
    names = _contract_names()
    conditions_by_cost = sorted(
        (
            (cumulative_s, calls, names[(filename, line, name)])
            for (filename, line, name), (_, calls, _, cumulative_s, _) in stats.stats.items()  # type: ignore[attr-defined]
            if (filename, line, name) in names
        ),
        reverse=True,
    )
    print(f"{'contract condition, with what it calls':<60} {'calls/transition':>16} {'µs/transition':>14}")
    for cumulative_s, calls, contract in conditions_by_cost[:top]:
        print(f"{contract:<60} {calls / transitions:>16.2f} {cumulative_s / transitions * 1e6:>14.2f}")
    print()
    stats.sort_stats(pstats.SortKey.TIME).print_stats(top)


def _contract_names() -> dict[tuple[str, int, str], str]:
    """Each contract condition of the kernel's transitions, by its profiler key, named for a reader."""
    names: dict[tuple[str, int, str], str] = {}
    for function_name, function in vars(kernel_transitions).items():
        contracts = [
            ("require", contract)
            for group in getattr(function, "__preconditions__", None) or []
            for contract in group
        ]
        contracts += [
            ("ensure", contract) for contract in getattr(function, "__postconditions__", None) or []
        ]
        for verb, contract in contracts:
            code = contract.condition.__code__
            description = contract.description or f"at transitions.py:{code.co_firstlineno}"
            names[(code.co_filename, code.co_firstlineno, code.co_name)] = (
                f"{function_name} {verb} {description}"
            )
    return names


def _origin(filename: str, name: str) -> str:
    path = filename.replace(os.sep, "/")
    if "/icontract/" in path:
        return "icontract machinery"
    if path.endswith(("/inspect.py", "/functools.py")):
        return "inspect, functools (icontract's checks)"
    if path.endswith("kernel/contracts.py"):
        return "invariant predicates (kernel/contracts.py)"
    if path.endswith("kernel/transitions.py") and name == "<lambda>":
        return "contract conditions (lambdas)"
    if "/kernel/" in path:
        return "kernel (state, transitions)"
    if "/attrs/" in path or "/attr/" in path or "<attrs generated" in path:
        return "attrs (evolve, __init__, __eq__)"
    if path == "~":
        return "built-ins (isinstance, getattr, ...)"
    return "other"


# --- The parent: children side by side, and the report ---------------------------------------------


@attrs.define
class Child:
    """A child interpreter, `python` for contracts on or `python -O` for off, answering line by line."""

    mode: str
    process: subprocess.Popen[str]

    @classmethod
    def start(cls, mode: str, quick: bool) -> Child:
        flags = [] if mode == "on" else ["-O"]
        command = [sys.executable, *flags, os.path.abspath(__file__), "--child", mode]
        if quick:
            command.append("--quick")
        # PYTHONOPTIMIZE would turn the contracts-on child's contracts off.
        environment = {name: value for name, value in os.environ.items() if name != "PYTHONOPTIMIZE"}
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=environment
        )
        return cls(mode=mode, process=process)

    def ask(self, request: str | None) -> Any:
        """Send `request` (None: nothing, wait for the first line) and read the child's answer."""
        assert self.process.stdin is not None and self.process.stdout is not None
        if request is not None:
            self.process.stdin.write(request + "\n")
            self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            status = self.process.wait(timeout=CHILD_TIMEOUT_S)
            raise SystemExit(f"the contracts-{self.mode} child stopped with status {status}")
        return json.loads(line)

    def close(self) -> None:
        """Close the pipe, which ends the child, and wait for it."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=CHILD_TIMEOUT_S)


def _rounded(value: Any) -> Any:
    """`value` with every float to 4 decimals, enough for µs and ratios, short enough to read."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    return value


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


def _spread(values: Sequence[float]) -> float:
    """The interquartile range as a fraction of the median."""
    first, median, third = statistics.quantiles(values, n=4)
    return _ratio(third - first, median)


def summarize(
    *,
    ready: dict[str, Ready],
    rounds: dict[str, list[RoundTiming]],
    memory: dict[str, MemoryReport],
    plan: Plan,
    quick: bool,
    wall_s: float,
) -> dict[str, Any]:
    """Medians over the rounds; each ratio is the median of the ratios measured in one round."""
    sizes = [str(size) for size in plan.history_entries]
    overhead = str(plan.overhead_history_entries)
    first, last = sizes[0], sizes[-1]

    def us(mode: str, size: str) -> list[float]:
        return [timing[size]["transition_ns"] / 1e3 for timing in rounds[mode]]

    def kind_us(mode: str, kind: str) -> list[float]:
        return [timing[overhead]["kind_transition_ns"][kind] / 1e3 for timing in rounds[mode]]

    def paired(numerators: list[float], denominators: list[float]) -> float:
        return statistics.median(_ratio(n, d) for n, d in zip(numerators, denominators, strict=True))

    kinds = list(rounds["on"][0][overhead]["kind_transition_ns"])
    storage = _present(ready["off"]["storage"], "the contracts-off child measures the storage view")
    return {
        "bench": "ppk.kernel.transitions",
        "quick": quick,
        "python": platform.python_version(),
        "icontract": metadata.version("icontract"),
        "attrs": metadata.version("attrs"),
        "cpus": os.cpu_count(),
        "rounds": plan.rounds,
        "repeats": plan.repeats,
        "batch_transitions": plan.batch_transitions,
        "wall_s": round(wall_s, 1),
        "probe": {mode: ready[mode]["probe"] for mode in MODES},
        "build_s": {mode: ready[mode]["build_s"] for mode in MODES},
        "timer_ns": {mode: ready[mode]["timer_ns"] for mode in MODES},
        "history_kinds": ready["on"]["history_kinds"],
        "overhead": {
            "history_entries": plan.overhead_history_entries,
            "on_us": statistics.median(us("on", overhead)),
            "off_us": statistics.median(us("off", overhead)),
            "ratio_on_off": paired(us("on", overhead), us("off", overhead)),
            "spread": {mode: _spread(us(mode, overhead)) for mode in MODES},
            "by_kind": {
                kind: {
                    "on_us": statistics.median(kind_us("on", kind)),
                    "off_us": statistics.median(kind_us("off", kind)),
                    "ratio_on_off": paired(kind_us("on", kind), kind_us("off", kind)),
                }
                for kind in kinds
            },
        },
        "history": {
            "entries": [int(size) for size in sizes],
            "on_us": {size: statistics.median(us("on", size)) for size in sizes},
            "off_us": {size: statistics.median(us("off", size)) for size in sizes},
            "ratio_on_off": {size: paired(us("on", size), us("off", size)) for size in sizes},
            "ratio_largest_smallest": {mode: paired(us(mode, last), us(mode, first)) for mode in MODES},
            "rounds_us": {mode: {size: us(mode, size) for size in sizes} for mode in MODES},
        },
        "memory": memory,
        "storage": {
            "by_history": storage,
            "ratio_largest_smallest": {
                figure: _ratio(storage[last][figure], storage[first][figure])
                for figure in (
                    "account_bytes",
                    "account_bytes_batch_max",
                    "lookup_bytes",
                    "history_bytes",
                    "encoded_bytes_total",
                )
            },
            "account_bytes_bound": ready["off"]["account_bytes_bound"],
        },
    }


def print_report(s: dict[str, Any]) -> None:
    """The summary as plain-text tables."""
    print(
        f"ppk transition benchmark: Python {s['python']}, icontract {s['icontract']}, "
        f"attrs {s['attrs']}, {s['cpus']} CPUs; wall time {s['wall_s']} s"
    )
    spread = s["overhead"]["spread"]
    print(
        f"{s['rounds']} rounds; in each, the python and python -O children (order alternating) replay a "
        f"{s['batch_transitions']}-transition batch {s['repeats']} times per history, gc off. µs are medians "
        f"over rounds (round-to-round IQR/median at {s['overhead']['history_entries']:,} entries: "
        f"on {spread['on']:.1%}, off {spread['off']:.1%}); ratios are medians of each round's ratio."
    )
    print()
    print("Contracts in each child (fold of a Settled whose my + company = payment - 1):")
    for mode, flag in (("on", "python   "), ("off", "python -O")):
        probe = s["probe"][mode]
        outcome = f"ViolationError, {probe['violation'][:60]}" if probe["violation_raised"] else "no error"
        print(f"  contracts {mode:<3} {flag}  __debug__={probe['debug']!s:<5}  {outcome}")
    print()
    overhead = s["overhead"]
    print(f"1. Contract overhead per transition, account with {overhead['history_entries']:,} ledger entries")
    print(f"  {'command':<34} {'on µs':>9} {'off µs':>9} {'on-off µs':>10} {'on/off':>7}")
    rows = [
        (kind.value, overhead["by_kind"][kind.value]) for kind in Kind if kind.value in overhead["by_kind"]
    ]
    for label, row in [*rows, ("all (the batch)", overhead)]:
        print(
            f"  {label:<34} {row['on_us']:>9.2f} {row['off_us']:>9.2f} "
            f"{row['on_us'] - row['off_us']:>10.2f} {row['ratio_on_off']:>7.2f}"
        )
    print()
    history = s["history"]
    print("2. Cost of a transition vs ledger length")
    print(f"  {'ledger entries':>16} {'on µs':>9} {'off µs':>9} {'on/off':>7}")
    for size in history["on_us"]:
        print(
            f"  {int(size):>16,} {history['on_us'][size]:>9.2f} {history['off_us'][size]:>9.2f} "
            f"{history['ratio_on_off'][size]:>7.2f}"
        )
    growth = history["ratio_largest_smallest"]
    print(f"  {'largest/smallest':>16} {growth['on']:>9.2f} {growth['off']:>9.2f}")
    print()
    print("   Memory per transition (tracemalloc), bytes")
    memory = s["memory"]
    sizes = list(memory["on"])
    header = "".join(f" {mode + ' ' + f'{int(size):,}':>14}" for mode in MODES for size in sizes)
    print(f"  {'':<34}{header}")
    for figure, label in (
        ("peak_bytes_median", "allocated at peak, median"),
        ("peak_bytes_max", "allocated at peak, max"),
        ("retained_bytes_per_transition", "retained by the last account"),
    ):
        cells = "".join(f" {memory[mode][size][figure]:>14,.0f}" for mode in MODES for size in sizes)
        print(f"  {label:<34}{cells}")
    print()
    print_storage(s["storage"])
    print()
    print(
        f"History built through execute, {max(history['entries']):,} entries, both children at once: "
        f"{s['build_s']['on']:.1f} s on, {s['build_s']['off']:.1f} s off. "
        f"Clock pair: {s['timer_ns']['on']:.0f} ns per transition."
    )


def print_storage(storage: dict[str, Any]) -> None:
    """Section 3: the account's value beside what a store keeps by key, at each age."""
    print("3. Storage view: the account's value beside what a store keeps by key, bytes (deep getsizeof;")
    print("   encoded: the entries in their canonical encoding, what the ledger table holds)")
    print(
        f"  {'':>16} {'account':>8} {'':>5} {'in batch':>8} {'':>7} {'history':>12} {'':>16} {'encoded':>11}"
    )
    print(
        f"  {'ledger entries':>16} {'value':>8} {'loss':>5} {'at most':>8} {'lookup':>7} {'by key':>12} "
        f"{'/entry':>7} {'payouts':>8} {'entries':>11} {'/entry':>7}"
    )
    for size, view in storage["by_history"].items():
        entries = int(size)
        print(
            f"  {entries:>16,} {view['account_bytes']:>8,} {'yes' if view['loss_active'] else 'no':>5} "
            f"{view['account_bytes_batch_max']:>8,} {view['lookup_bytes']:>7,} {view['history_bytes']:>12,} "
            f"{view['history_bytes'] / entries:>7.0f} {view['payouts']:>8,} "
            f"{view['encoded_bytes_total']:>11,} {view['encoded_bytes_mean']:>7.0f}"
        )
    growth = storage["ratio_largest_smallest"]
    print(
        f"  {'largest/smallest':>16} {growth['account_bytes']:>8.2f} {'':>5} "
        f"{growth['account_bytes_batch_max']:>8.2f} {growth['lookup_bytes']:>7.2f} "
        f"{growth['history_bytes']:>12.1f} {'':>7} {'':>8} {growth['encoded_bytes_total']:>11.1f}"
    )
    print(
        f"  No account value takes more than {storage['account_bytes_bound']:,} bytes, whatever its history "
        f"(longest ids, a loss, figures at the limit)."
    )


def run_parent(plan: Plan, quick: bool) -> int:
    """Start both children, alternate them over the rounds, print the report and the JSON line."""
    start_ns = time.perf_counter_ns()
    sys.stderr.write(f"building histories of up to {max(plan.history_entries):,} entries, on and off\n")
    children = {mode: Child.start(mode, quick) for mode in MODES}
    try:
        ready: dict[str, Ready] = {mode: children[mode].ask(None) for mode in MODES}
        for mode in MODES:
            problem = probe_problem(mode, ready[mode]["probe"])
            if problem is not None:
                sys.stderr.write(f"{problem}\n")
                return 1
        on, off = ready["on"], ready["off"]
        if (on["history_digest"], on["history_kinds"]) != (off["history_digest"], off["history_kinds"]):
            sys.stderr.write("the two children built different histories\n")
            return 1
        sys.stderr.write(f"timing {plan.rounds} rounds\n")
        rounds: dict[str, list[RoundTiming]] = {mode: [] for mode in MODES}
        for round_index in range(plan.rounds):
            for mode in MODES if round_index % 2 == 0 else MODES[::-1]:
                rounds[mode].append(children[mode].ask(REQUEST_TIME))
        sys.stderr.write("tracing memory\n")
        memory: dict[str, MemoryReport] = {mode: children[mode].ask(REQUEST_MEMORY) for mode in MODES}
    finally:
        for child in children.values():
            child.close()
    wall_s = (time.perf_counter_ns() - start_ns) / 1e9
    summary = summarize(ready=ready, rounds=rounds, memory=memory, plan=plan, quick=quick, wall_s=wall_s)
    print_report(summary)
    print(json.dumps(_rounded(summary), sort_keys=True))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a smoke run, in a few seconds")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile a contracts-on child and print its top costs"
    )
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    plan = PLAN_QUICK if args.quick else PLAN_DEFAULT
    if args.child is not None and args.profile:
        profile_child(plan, top=PROFILE_ROWS)
        return 0
    if args.child is not None:
        serve(args.child, plan)
        return 0
    if args.profile:
        command = [sys.executable, os.path.abspath(__file__), "--child", "on", "--profile"]
        if args.quick:
            command.append("--quick")
        environment = {name: value for name, value in os.environ.items() if name != "PYTHONOPTIMIZE"}
        return subprocess.run(command, env=environment, timeout=CHILD_TIMEOUT_S, check=False).returncode
    return run_parent(plan, args.quick)


if __name__ == "__main__":
    sys.exit(main())
