"""Benchmarks of the SQL store (`ppk.adapters.sql`), reported side by side in one run.

Four figures, each measured against its baseline in the same run, round after round, and reported as
medians over the rounds (ratios: the median of each round's ratio):

1. SQLite, one command per transaction: `SqlStore.execute` over a mix of commands on many accounts,
   next to a raw `sqlite3` loop that runs the same INSERT and UPDATE statements, with the same
   parameters, on a database with the same tables and the same durability (WAL, synchronous=FULL,
   `BEGIN IMMEDIATE`, one transaction per command). The statements are captured once from the
   store itself (an untimed pass), so the raw loop does only the database's work.
2. Group commit: `SqlStore.execute_many` over the same stream in groups, next to the raw loop with
   the same groups, and its ratio to one command per transaction.
3. The per-command cost against an account's history: one account aged to 100 and to 100 000
   ledger entries (through `execute_many`), then the same kinds of commands timed on it one per
   transaction and in groups; spec.md#e6 says the cost must not grow with the ledger.
4. PostgreSQL, 1 writer and 8 writers (processes) on distinct accounts, on a throwaway cluster at
   the server's default durability: writers on different accounts must not serialise.

Run `python bench/store.py [--quick]`; `--profile` prints where one command per transaction spends
its time instead. bench/README.md explains each figure. Timings are never asserted by the tests.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime
import gc
import hashlib
import json
import multiprocessing
import os
import platform
import pstats
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Iterator, Sequence
from importlib import metadata
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any, Final

import attrs
import sqlalchemy
from mix import (  # bench/mix.py: the command mix the benchmarks share
    DAY_FIRST,
    DAY_STALE,
    FUND_MINOR_MAX,
    FUND_MINOR_MIN,
    LOSS_CAPITAL_MIN,
    PROFIT_MINOR_MAX,
    REFUSAL_CODES,
    REFUSED_PAYMENT_MINOR_MAX,
    WEIGHTS_WITH_LOSS,
    WEIGHTS_WITHOUT_LOSS,
    Kind,
    payable_minor_of,
    require,
    write_off_minor_max,
)
from report import print_table
from sqlalchemy import event, text

import ppk.adapters.sql as sql_module
from ppk.adapters.sql import SqlStore, open_store
from ppk.adapters.store import MemoryStore, Store
from ppk.kernel.state import (
    Account,
    Applied,
    Command,
    ConfirmPayout,
    Decision,
    Fund,
    OpenAccount,
    RecordBalance,
    Refused,
    Repeated,
    SetShares,
    Settle,
    payout_id,
)
from ppk.stateful_tests import postgres

# --- What is measured, and how much ---------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Plan:
    """How much a run measures."""

    mix_commands: int
    """Commands in the stream of sections 1 and 2."""
    mix_accounts: int
    """Accounts the stream opens and drives."""
    groups: tuple[int, ...]
    """The group sizes of `execute_many` in section 2."""
    rounds: int
    """Rounds of sections 1 and 2: in each, every way of running the stream once, in a rotated order."""
    ages: tuple[int, int]
    """The ledger lengths of section 3: the youngest and the oldest account."""
    build_group: int
    """Commands per `execute_many` while an account is aged."""
    age_cycles: int
    """How many times section 3's batch runs through `AGE_CYCLE`."""
    age_group: int
    """The group size of section 3's batch in groups."""
    age_rounds: int
    pg_writers: int
    pg_commands_per_writer: int
    """Each writer's share of a run; a single writer runs all the shares, interleaved."""
    pg_accounts_per_writer: int
    pg_group: int
    pg_rounds: int


PLAN_FULL: Final = Plan(
    mix_commands=1_000,
    mix_accounts=50,
    groups=(100, 1_000),
    rounds=3,
    ages=(100, 100_000),
    build_group=5_000,
    age_cycles=6,
    age_group=50,
    age_rounds=5,
    pg_writers=8,
    pg_commands_per_writer=100,
    pg_accounts_per_writer=5,
    pg_group=100,
    pg_rounds=3,
)
PLAN_QUICK: Final = Plan(
    mix_commands=200,
    mix_accounts=10,
    groups=(20, 100),
    rounds=2,
    ages=(100, 1_000),
    build_group=500,
    age_cycles=1,
    age_group=17,
    age_rounds=2,
    pg_writers=8,
    pg_commands_per_writer=10,
    pg_accounts_per_writer=2,
    pg_group=10,
    pg_rounds=1,
)

MIX_SEED: Final = 20_240_901
AGE_SEED: Final = 11
PG_SEED: Final = 5_000
PROFILE_ROWS: Final = 25
WORKER_TIMEOUT_S: Final = 600.0
PG_DATABASE: Final = "ppk_bench"

SHARES_BP: Final = ((100, 900), (4_782, 0), (250, 250), (0, 1_875))
"""Shares that opens and set_shares write: each at least 5 %, so a loss of 500 has a payable."""


# --- Commands of every kind, decided one at a time against a store --------------------------------


AGE_CYCLE: Final = (
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
    Kind.DUPLICATE,
)
"""Section 3's batch, in order: every kind but open once (fund twice): 11 applied, 4 refused, 1 repeated."""


@attrs.define
class Driver:
    """Writes commands of a chosen kind for an account, decides each one at once against `store`, and
    checks that it got the outcome its kind names.

    `store` is the reference that tells the account's state: a `MemoryStore` for a stream that a SQL
    store later runs (its decisions are what the SQL store must answer), or a scratch SQL store.
    """

    rng: random.Random
    store: Store
    id_prefix: str
    day: datetime.date = DAY_FIRST
    """The date of the next recorded balance: it only moves forward."""
    pending: dict[str, list[str]] = attrs.Factory(dict)
    """Per account, the payouts this driver created and has not confirmed yet."""
    sent: dict[str, list[Command]] = attrs.Factory(dict)
    """Per account, the commands sent so far: what a duplicate resends."""
    written: int = 0
    kinds: Counter[Kind] = attrs.Factory(Counter)

    def applicable(self, kind: Kind, account_id: str) -> bool:
        """Whether `kind` gets its intended outcome on the account now."""
        account = self.store.account(account_id)
        if kind is Kind.OPEN or account is None:
            return kind is Kind.OPEN and account is None
        if kind in (Kind.SETTLE_PARTIAL, Kind.SETTLE_FULL, Kind.PAYMENT_EXCEEDS_PAYABLE, Kind.LOSS_ACTIVE):
            return account.loss is not None and (
                kind is not Kind.SETTLE_PARTIAL or payable_minor_of(account) >= 2
            )
        if kind is Kind.CONFIRM_PAYOUT:
            return bool(self.pending.get(account_id))
        if kind is Kind.DUPLICATE:
            return bool(self.sent.get(account_id))
        if kind in (Kind.FUND, Kind.SET_SHARES, Kind.UNKNOWN_PAYOUT):
            return True
        if account.loss is not None:
            return False
        if kind is Kind.RECORD_BALANCE_LOSS:
            return account.capital_minor >= LOSS_CAPITAL_MIN
        if kind is Kind.RECORD_BALANCE_WRITE_OFF:
            return write_off_minor_max(account) >= 1
        if kind is Kind.STALE_BALANCE:
            return account.balance_date_latest is not None
        return True

    def choose(self, account_id: str) -> Kind:
        """A kind drawn from the mix's weights, among those applicable to the account now."""
        account = self.store.account(account_id)
        require(account is not None, f"account {account_id!r} is not open")
        assert account is not None
        weights = WEIGHTS_WITH_LOSS if account.loss is not None else WEIGHTS_WITHOUT_LOSS
        kinds = [kind for kind in weights if self.applicable(kind, account_id)]
        return self.rng.choices(kinds, weights=[weights[kind] for kind in kinds])[0]

    def command(self, kind: Kind, account_id: str) -> Command:
        """A new command of `kind` for the account (a duplicate: one sent before, again)."""
        if kind is Kind.DUPLICATE:
            return self.rng.choice(self.sent[account_id])
        self.written += 1
        command_id = f"{self.id_prefix}{self.written}"
        if kind is Kind.OPEN:
            my_share_bp, company_share_bp = self.rng.choice(SHARES_BP)
            return OpenAccount(
                id=command_id, account=account_id, my_share_bp=my_share_bp, company_share_bp=company_share_bp
            )
        account = self.store.account(account_id)
        assert account is not None
        if kind in (Kind.SETTLE_PARTIAL, Kind.SETTLE_FULL, Kind.PAYMENT_EXCEEDS_PAYABLE, Kind.NO_ACTIVE_LOSS):
            return Settle(id=command_id, account=account_id, payment_minor=self._payment_minor(kind, account))
        if kind is Kind.FUND:
            amount_minor = self.rng.randint(FUND_MINOR_MIN, FUND_MINOR_MAX)
            return Fund(id=command_id, account=account_id, amount_minor=amount_minor)
        if kind is Kind.SET_SHARES:
            my_share_bp, company_share_bp = self.rng.choice(SHARES_BP)
            return SetShares(
                id=command_id, account=account_id, my_share_bp=my_share_bp, company_share_bp=company_share_bp
            )
        if kind is Kind.CONFIRM_PAYOUT:
            # Swap a random pending payout to the end and take it: O(1), whatever the backlog.
            pending = self.pending[account_id]
            index = self.rng.randrange(len(pending))
            pending[index], pending[-1] = pending[-1], pending[index]
            return ConfirmPayout(id=command_id, account=account_id, payout=pending.pop())
        if kind is Kind.UNKNOWN_PAYOUT:
            return ConfirmPayout(id=command_id, account=account_id, payout=f"{account_id}:none-{command_id}")
        return self._record_balance(kind, account, command_id)

    def _payment_minor(self, kind: Kind, account: Account) -> int:
        if kind is Kind.NO_ACTIVE_LOSS:
            return self.rng.randint(1, REFUSED_PAYMENT_MINOR_MAX)
        payable = payable_minor_of(account)
        if kind is Kind.SETTLE_PARTIAL:
            return self.rng.randint(1, payable - 1)
        if kind is Kind.PAYMENT_EXCEEDS_PAYABLE:
            return payable + self.rng.randint(1, REFUSED_PAYMENT_MINOR_MAX)
        return payable

    def _record_balance(self, kind: Kind, account: Account, command_id: str) -> RecordBalance:
        capital_minor = account.capital_minor
        if kind is Kind.LOSS_ACTIVE:
            return RecordBalance(id=command_id, account=account.id, balance_minor=account.balance_minor)
        if kind is Kind.STALE_BALANCE:
            return RecordBalance(
                id=command_id, account=account.id, balance_minor=capital_minor, date=DAY_STALE
            )
        if kind is Kind.RECORD_BALANCE_PROFIT:
            balance_minor = capital_minor + self.rng.randint(1, PROFIT_MINOR_MAX)
        elif kind is Kind.RECORD_BALANCE_LOSS:
            balance_minor = capital_minor - self.rng.randint(capital_minor // 20, capital_minor // 2)
        elif kind is Kind.RECORD_BALANCE_WRITE_OFF:
            balance_minor = capital_minor - self.rng.randint(1, write_off_minor_max(account))
        else:
            require(kind is Kind.RECORD_BALANCE_EQUAL, f"no command is written for {kind}")
            balance_minor = capital_minor
        date = self.day
        self.day += datetime.timedelta(days=1)
        return RecordBalance(id=command_id, account=account.id, balance_minor=balance_minor, date=date)

    def step(self, kind: Kind, account_id: str) -> tuple[Command, Decision]:
        """Write a command of `kind`, decide it against the store, and check its outcome."""
        require(self.applicable(kind, account_id), f"{kind} does not apply to account {account_id!r} now")
        command = self.command(kind, account_id)
        decision = self.store.execute(command)
        code = REFUSAL_CODES.get(kind)
        if kind is Kind.DUPLICATE:
            ok = isinstance(decision, Repeated)
        elif code is not None:
            ok = isinstance(decision, Refused) and decision.code is code
        else:
            ok = isinstance(decision, Applied)
        require(ok, f"{kind} {command!r} got {decision!r}")
        if kind is not Kind.DUPLICATE:
            self.sent.setdefault(account_id, []).append(command)
        if kind is Kind.RECORD_BALANCE_PROFIT:
            self.pending.setdefault(account_id, []).append(payout_id(account_id, command.id))
        self.kinds[kind] += 1
        return command, decision


@attrs.frozen(kw_only=True)
class Stream:
    """Commands in order, what kind each is, and the decision the reference store gave each."""

    commands: list[Command]
    kinds: list[Kind]
    decisions: list[Decision]


def mix_stream(seed: int, prefix: str, accounts: int, commands: int) -> Stream:
    """A realistic mix on many accounts, decided by a `MemoryStore`: every account is opened within
    about the first half of the stream, then the kinds are drawn with weights that depend on its state."""
    rng = random.Random(seed)
    driver = Driver(rng=rng, store=MemoryStore(), id_prefix="c")
    opened: list[str] = []
    stream = Stream(commands=[], kinds=[], decisions=[])
    open_chance = min(1.0, 2 * accounts / commands)
    while len(stream.commands) < commands:
        if len(opened) < accounts and (not opened or rng.random() < open_chance):
            account_id, kind = f"{prefix}{len(opened)}", Kind.OPEN
            opened.append(account_id)
        else:
            account_id = rng.choice(opened)
            kind = driver.choose(account_id)
        command, decision = driver.step(kind, account_id)
        stream.commands.append(command)
        stream.kinds.append(kind)
        stream.decisions.append(decision)
    return stream


def interleaved(streams: Sequence[Stream]) -> Stream:
    """The streams' commands taken in turn: on distinct accounts, each keeps its decisions."""
    merged = Stream(commands=[], kinds=[], decisions=[])
    for parts in zip(*(zip(s.commands, s.kinds, s.decisions, strict=True) for s in streams), strict=True):
        for command, kind, decision in parts:
            merged.commands.append(command)
            merged.kinds.append(kind)
            merged.decisions.append(decision)
    return merged


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def run_store(store: SqlStore, commands: Sequence[Command], group: int) -> list[Decision]:
    """The commands through the store: one per transaction (`execute`) or in groups (`execute_many`)."""
    if group == 1:
        return [store.execute(command) for command in commands]
    decisions: list[Decision] = []
    for part in chunks(commands, group):
        decisions += store.execute_many(part)
    return decisions


def _check_decisions(got: Sequence[Decision], expected: Sequence[Decision], what: str) -> None:
    if len(got) != len(expected):
        raise RuntimeError(f"{what}: {len(got)} decisions for {len(expected)} commands")
    if list(got) != list(expected):
        index = next(i for i, (g, e) in enumerate(zip(got, expected, strict=True)) if g != e)
        raise RuntimeError(f"{what}: decision {index} is {got[index]!r}, the reference's {expected[index]!r}")


# --- SQLite files ---------------------------------------------------------------------------------

SIDE_FILES: Final = ("-wal", "-shm", "-journal")


def remove_database(path: Path) -> None:
    for suffix in ("", *SIDE_FILES):
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{path}{suffix}")


def copy_database(source: Path, target: Path) -> None:
    """A closed database's file (and its log, if one is left) copied to `target`, replacing it, and
    written out, so that the next run's first fsyncs do not pay for the copy."""
    remove_database(target)
    shutil.copyfile(source, target)
    for suffix in SIDE_FILES:
        if os.path.exists(f"{source}{suffix}"):
            shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")
    os.sync()


def table_digest(path: Path) -> str:
    """A digest of every row of the store's four tables, to check two databases hold the same rows."""
    digest = hashlib.sha256()
    with contextlib.closing(sqlite3.connect(path)) as connection:
        for table in ("ledger", "accounts", "losses", "payouts"):
            for row in connection.execute(f"SELECT * FROM {table} ORDER BY 1, 2"):
                digest.update(repr(row).encode())
    return digest.hexdigest()


def sqlite_settings(path: Path) -> tuple[str, int]:
    """The journal mode and synchronous level a new connection to the file gets after the raw setup."""
    with contextlib.closing(raw_connection(path)) as connection:
        mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
        level = connection.execute("PRAGMA synchronous").fetchone()[0]
    return str(mode), int(level)


def raw_connection(path: Path) -> sqlite3.Connection:
    """A raw connection with the store's durability: WAL, synchronous=FULL, transactions by hand."""
    connection = sqlite3.connect(path, isolation_level=None)
    mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    connection.execute("PRAGMA synchronous=FULL")
    level = connection.execute("PRAGMA synchronous").fetchone()[0]
    require(
        str(mode).lower() == "wal" and level == 2, f"raw sqlite3: journal_mode={mode}, synchronous={level}"
    )
    return connection


# --- Section 1 and 2: the store next to a raw sqlite3 loop ----------------------------------------

Statement = tuple[str, Any]
"""SQL and its parameters: a tuple, or for an executemany a list of tuples."""


@attrs.define
class Capture:
    """The SQL a store sends, transaction by transaction, from SQLAlchemy's `before_cursor_execute`."""

    transactions: list[list[Statement]] = attrs.Factory(list)

    def start(self) -> None:
        self.transactions.append([])

    def on_execute(
        self, _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool
    ) -> None:
        verb = statement.split(None, 1)[0].upper()
        if verb == "BEGIN":
            return
        require(verb in ("INSERT", "UPDATE", "SELECT"), f"the store sent {statement[:40]!r}")
        # A group writes each table in one executemany: a list of rows, which the raw loop sends so too.
        rows = [tuple(row) for row in parameters] if many else tuple(parameters)
        self.transactions[-1].append((statement, rows))


def _verb(statement: Statement) -> str:
    return statement[0].split(None, 1)[0].upper()


def capture(path: Path, stream: Stream, group: int) -> list[list[Statement]]:
    """Run the stream through a store on `path` and keep the SQL of each transaction (untimed)."""
    store = open_store(str(path))
    captured = Capture()
    event.listen(store.engine, "before_cursor_execute", captured.on_execute)
    decisions: list[Decision] = []
    try:
        for part in chunks(stream.commands, group):
            captured.start()
            decisions += store.execute_many(part)
    finally:
        event.remove(store.engine, "before_cursor_execute", captured.on_execute)
        store.close()
    _check_decisions(decisions, stream.decisions, f"the store, groups of {group}")
    return captured.transactions


RawTransaction = list[tuple[str, Any, bool]]


def raw_transactions(captured: list[list[Statement]], reads: bool) -> list[RawTransaction]:
    """The raw loop's work: each transaction's writes, and its reads too when `reads` (fetched)."""
    transactions: list[RawTransaction] = []
    for statements in captured:
        kept: RawTransaction = []
        for statement in statements:
            is_read = _verb(statement) == "SELECT"
            if reads or not is_read:
                kept.append((statement[0], statement[1], is_read))
        transactions.append(kept)
    return transactions


@attrs.frozen
class Timing:
    """One timed run: its wall-clock seconds and this process's CPU seconds."""

    wall_s: float
    cpu_s: float


def time_store(path: Path, stream: Stream, group: int) -> Timing:
    """Time the stream through a store opened on `path` (opening it is not timed)."""
    store = open_store(str(path))
    try:
        gc.collect()
        cpu_start = time.process_time()
        start = time.perf_counter()
        decisions = run_store(store, stream.commands, group)
        timing = Timing(time.perf_counter() - start, time.process_time() - cpu_start)
    finally:
        store.close()
    _check_decisions(decisions, stream.decisions, f"the store, groups of {group}")
    return timing


def time_raw(path: Path, transactions: Sequence[RawTransaction]) -> Timing:
    """Time the captured statements with `sqlite3`, each transaction `BEGIN IMMEDIATE` to
    `COMMIT`, with the store's durability; the rows are computed beforehand."""
    with contextlib.closing(raw_connection(path)) as connection:
        execute, executemany = connection.execute, connection.executemany
        gc.collect()
        cpu_start = time.process_time()
        start = time.perf_counter()
        for transaction in transactions:
            execute("BEGIN IMMEDIATE")
            for sql, parameters, fetch in transaction:
                send = executemany if type(parameters) is list else execute
                cursor = send(sql, parameters)
                if fetch:
                    cursor.fetchall()
            execute("COMMIT")
        return Timing(time.perf_counter() - start, time.process_time() - cpu_start)


WAYS: Final = ("store", "raw", "raw_reads")
"""How section 1 and 2 run the stream: the store, the raw loop of its writes, and of its reads and writes."""


def statement_counts(stream: Stream, captured: list[list[Statement]]) -> dict[str, dict[str, list[int]]]:
    """Per kind of command, the INSERTs, UPDATEs and SELECTs the store sent, smallest and largest."""
    counts: dict[str, dict[str, list[int]]] = {}
    for kind, statements in zip(stream.kinds, captured, strict=True):
        verbs = Counter(_verb(statement) for statement in statements)
        row = counts.setdefault(kind.value, {})
        for verb in ("INSERT", "UPDATE", "SELECT"):
            low, high = row.get(verb.lower(), [verbs[verb], verbs[verb]])
            row[verb.lower()] = [min(low, verbs[verb]), max(high, verbs[verb])]
    return counts


def measure_sqlite(plan: Plan, folder: Path, template: Path) -> dict[str, Any]:
    """Sections 1 and 2: the stream through the store and through the raw loops, one per transaction
    and in groups, each way on a fresh copy of an empty database, round after round."""
    stream = mix_stream(MIX_SEED, "acct-", plan.mix_accounts, plan.mix_commands)
    groups = (1, *plan.groups)
    path = folder / "run.db"
    # The capture pass, which also warms up: the statements of each transaction, and the rows all
    # ways must leave.
    captured: dict[int, list[list[Statement]]] = {}
    digests = set()
    for group in groups:
        copy_database(template, path)
        captured[group] = capture(path, stream, group)
        digests.add(table_digest(path))
    require(len(digests) == 1, "the store left different rows in different group sizes")
    (digest,) = digests
    raw = {
        (way, group): raw_transactions(captured[group], reads=way == "raw_reads")
        for group in groups
        for way in WAYS[1:]
    }
    ways = [(way, group) for group in groups for way in WAYS]
    seconds: dict[tuple[str, int], list[Timing]] = {way: [] for way in ways}
    for round_index in range(plan.rounds):
        shift = round_index * len(ways) // plan.rounds
        for way, group in ways[shift:] + ways[:shift]:
            sys.stderr.write(f"  round {round_index + 1}: {way}, groups of {group}\n")
            copy_database(template, path)
            elapsed = time_store(path, stream, group) if way == "store" else time_raw(path, raw[(way, group)])
            require(table_digest(path) == digest, f"{way}, groups of {group}, left other rows than the store")
            seconds[(way, group)].append(elapsed)
    remove_database(path)
    count = len(stream.commands)

    def figures(way: str, group: int) -> dict[str, Any]:
        return _figures(count, seconds[(way, group)])

    def ratio(numerator: tuple[str, int], denominator: tuple[str, int]) -> float:
        """Throughput of `numerator` over that of `denominator`, the median of each round's ratio."""
        return statistics.median(
            d.wall_s / n.wall_s for n, d in zip(seconds[numerator], seconds[denominator], strict=True)
        )

    return {
        "commands": count,
        "accounts": plan.mix_accounts,
        "kinds": dict(sorted(Counter(kind.value for kind in stream.kinds).items())),
        "transactions": {str(group): len(captured[group]) for group in groups},
        "statements_per_command": statement_counts(stream, captured[1]),
        "by_group": {
            str(group): {
                **{way: figures(way, group) for way in WAYS},
                "ratio_store_raw": ratio(("store", group), ("raw", group)),
                "ratio_store_raw_reads": ratio(("store", group), ("raw_reads", group)),
                "ratio_to_one_per_transaction": ratio(("store", group), ("store", 1)),
            }
            for group in groups
        },
    }


def _figures(count: int, timings: Sequence[Timing]) -> dict[str, Any]:
    """Commands per second, wall and CPU µs per command (medians over the rounds), the rounds' spread."""
    per_second = [count / t.wall_s for t in timings]
    median = statistics.median(per_second)
    return {
        "commands_per_s": median,
        "us_per_command": statistics.median(t.wall_s / count * 1e6 for t in timings),
        "cpu_us_per_command": statistics.median(t.cpu_s / count * 1e6 for t in timings),
        "spread": (max(per_second) - min(per_second)) / median,
        "rounds_s": [t.wall_s for t in timings],
    }


# --- Section 3: the per-command cost against an account's history ---------------------------------

AGED_ACCOUNT: Final = "aged"


def build_aged(path: Path, template: Path, entries: int, group: int) -> dict[str, Any]:
    """An account aged to `entries` ledger entries through `execute_many` in groups of `group`, the
    commands drawn from the mix and decided first by a `MemoryStore` (its decisions are checked)."""
    copy_database(template, path)
    store = open_store(str(path))
    reference = MemoryStore()
    driver = Driver(rng=random.Random(AGE_SEED + entries), store=reference, id_prefix="h")
    commands: list[Command] = []
    expected: list[Decision] = []
    group_us: list[float] = []
    start = time.perf_counter()

    def flush() -> None:
        if not commands:
            return
        begin = time.perf_counter()
        decisions = store.execute_many(commands)
        group_us.append((time.perf_counter() - begin) / len(commands) * 1e6)
        _check_decisions(decisions, expected, "building the history")
        commands.clear()
        expected.clear()

    try:
        kind = Kind.OPEN
        while True:
            command, decision = driver.step(kind, AGED_ACCOUNT)
            commands.append(command)
            expected.append(decision)
            if len(commands) == group:
                flush()
            account = reference.account(AGED_ACCOUNT)
            assert account is not None
            if account.entry_count == entries:
                break
            kind = driver.choose(AGED_ACCOUNT)
        flush()
        built = store.account(AGED_ACCOUNT)
    finally:
        store.close()
    require(built == reference.account(AGED_ACCOUNT), "the stored account is not the reference's")
    return {
        "entries": entries,
        "build_s": time.perf_counter() - start,
        "group_us_first": group_us[0],
        "group_us_last": group_us[-1],
        "group_us": group_us,
        "groups": len(group_us),
        "kinds": dict(sorted((kind.value, count) for kind, count in driver.kinds.items())),
        "payouts": built.payout_count if built is not None else 0,
    }


def plan_aged_batch(aged: Path, scratch: Path, cycles: int) -> Stream:
    """Section 3's batch for the aged account, decided one at a time on a scratch copy of it: one
    command to leave any active loss (a full settle, else a fund), then `AGE_CYCLE` `cycles` times."""
    copy_database(aged, scratch)
    store = open_store(str(scratch))
    try:
        account = store.account(AGED_ACCOUNT)
        assert account is not None
        day = DAY_FIRST
        if account.balance_date_latest is not None:
            day = account.balance_date_latest + datetime.timedelta(days=1)
        driver = Driver(rng=random.Random(AGE_SEED), store=store, id_prefix="b", day=day)
        first = Kind.SETTLE_FULL if account.loss is not None else Kind.FUND
        batch = Stream(commands=[], kinds=[], decisions=[])
        for kind in (first, *AGE_CYCLE * cycles):
            command, decision = driver.step(kind, AGED_ACCOUNT)
            batch.commands.append(command)
            batch.kinds.append(kind)
            batch.decisions.append(decision)
    finally:
        store.close()
        remove_database(scratch)
    return batch


def measure_history(plan: Plan, folder: Path, template: Path) -> dict[str, Any]:
    """Section 3: age one account to each age, then time the same kinds of commands on it, one per
    transaction and in groups, each run on a fresh copy of the aged database, round after round."""
    aged: dict[int, Path] = {}
    builds: dict[str, Any] = {}
    batches: dict[int, Stream] = {}
    for entries in plan.ages:
        sys.stderr.write(f"  aging an account to {entries:,} entries\n")
        aged[entries] = folder / f"aged-{entries}.db"
        builds[str(entries)] = build_aged(aged[entries], template, entries, plan.build_group)
        builds[str(entries)]["file_bytes"] = os.path.getsize(aged[entries])
        batches[entries] = plan_aged_batch(aged[entries], folder / "scratch.db", plan.age_cycles)
    kinds = {tuple(batch.kinds[1:]) for batch in batches.values()}
    require(len(kinds) == 1, "the batches differ in kind")
    groups = (1, plan.age_group)
    ways = [(entries, group) for group in groups for entries in plan.ages]
    seconds: dict[tuple[int, int], list[Timing]] = {way: [] for way in ways}
    path = folder / "run.db"
    for round_index in range(plan.age_rounds):
        order = ways if round_index % 2 == 0 else ways[::-1]
        for entries, group in order:
            sys.stderr.write(f"  round {round_index + 1}: {entries:,} entries, groups of {group}\n")
            copy_database(aged[entries], path)
            seconds[(entries, group)].append(time_store(path, batches[entries], group))
    remove_database(path)
    for entries in plan.ages:
        remove_database(aged[entries])
    count = len(batches[plan.ages[0]].commands)
    young, old = plan.ages

    def growth(group: int) -> float:
        """The oldest account's cost per command over the youngest's, the median of each round's ratio."""
        return statistics.median(
            o.wall_s / y.wall_s for o, y in zip(seconds[(old, group)], seconds[(young, group)], strict=True)
        )

    return {
        "batch_commands": count,
        "batch_kinds": dict(sorted(Counter(kind.value for kind in batches[young].kinds).items())),
        "builds": builds,
        "by_group": {
            str(group): {
                **{str(entries): _figures(count, seconds[(entries, group)]) for entries in plan.ages},
                "ratio_largest_smallest": growth(group),
            }
            for group in groups
        },
    }


# --- Section 4: PostgreSQL, 1 writer and 8 writers on distinct accounts ----------------------------


def _pg_worker(url: str, pipe: Pipe) -> None:
    """A writer process: its own store on the database; runs each task it is sent when told to go."""
    try:
        store = open_store(url)
    except BaseException:
        pipe.send(("error", traceback.format_exc()))
        return
    raw_connection_pg: Any = None
    try:
        pipe.send(("open", os.getpid()))
        while True:
            task = pipe.recv()
            if task is None:
                return
            commands, expected, group = task
            raw = isinstance(commands, RawPgTask)
            if raw and raw_connection_pg is None:
                import psycopg  # noqa: PLC0415 (only when PostgreSQL is measured)

                raw_connection_pg = psycopg.connect(commands.url)
            pipe.send(("ready", None))
            require(pipe.recv() == "go", "a writer was sent something other than go")
            cpu_start = time.process_time()
            start = time.perf_counter()
            if raw:
                run_raw_pg(raw_connection_pg, commands.transactions)
            else:
                decisions = run_store(store, commands, group)
            end = time.perf_counter()
            cpu_s = time.process_time() - cpu_start
            problem = None
            try:
                if not raw:
                    _check_decisions(decisions, expected, f"writer {os.getpid()}, groups of {group}")
            except RuntimeError as error:
                problem = str(error)
            pipe.send(("done", (start, end, cpu_s, problem)))
    except BaseException:
        with contextlib.suppress(OSError):
            pipe.send(("error", traceback.format_exc()))
    finally:
        store.close()
        if raw_connection_pg is not None:
            raw_connection_pg.close()


@attrs.frozen
class RawPgTask:
    """A raw psycopg writer's task: captured transactions, each a list of INSERTs and UPDATEs."""

    url: str
    transactions: list[list[Statement]]


def run_raw_pg(connection: Any, transactions: Sequence[list[Statement]]) -> None:
    """The captured writes with psycopg, one transaction each (`BEGIN` to `COMMIT`), at the server's
    durability: what the store's writes cost without the store (no locks or reads, no kernel)."""
    for transaction in transactions:
        with connection.transaction():
            for sql, parameters in transaction:
                connection.execute(sql, parameters)


def capture_pg(url: str, stream: Stream) -> list[list[Statement]]:
    """The INSERTs and UPDATEs a store on `url` sends for each command of `stream`, one transaction per
    command (untimed; on a database of its own, so the writes can run again elsewhere)."""
    store = open_store(url)
    transactions: list[list[Statement]] = []

    def on_execute(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
        if statement.split(None, 1)[0].upper() in ("INSERT", "UPDATE"):
            transactions[-1].append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", on_execute)
    decisions = []
    try:
        for command in stream.commands:
            transactions.append([])
            decisions.append(store.execute(command))
    finally:
        event.remove(store.engine, "before_cursor_execute", on_execute)
        store.close()
    _check_decisions(decisions, stream.decisions, "the capture on PostgreSQL")
    return transactions


@attrs.define
class Writers:
    """Writer processes (spawned), each with its own store on the same database."""

    processes: list[Any]
    pipes: list[Pipe]

    @classmethod
    def start(cls, url: str, count: int) -> Writers:
        context = multiprocessing.get_context("spawn")
        processes, pipes = [], []
        for _ in range(count):
            parent_end, child_end = context.Pipe()
            process = context.Process(target=_pg_worker, args=(url, child_end), daemon=True)
            process.start()
            child_end.close()
            processes.append(process)
            pipes.append(parent_end)
        writers = cls(processes=processes, pipes=pipes)
        for pipe in pipes:
            writers.answer(pipe, "open")
        return writers

    def answer(self, pipe: Pipe, expected: str) -> Any:
        if not pipe.poll(WORKER_TIMEOUT_S):
            raise RuntimeError(f"a writer did not answer within {WORKER_TIMEOUT_S:g} s")
        kind, value = pipe.recv()
        if kind == "error":
            raise RuntimeError(f"a writer failed:\n{value}")
        require(kind == expected, f"a writer answered {kind}, not {expected}")
        return value

    def run(
        self, tasks: Sequence[Stream | RawPgTask], group: int, sampler: WaitSampler | None = None
    ) -> dict[str, Any]:
        """Each task to its own writer at once; the span from the first start to the last end, and
        what the writers' server processes were doing meanwhile (sampled)."""
        pipes = self.pipes[: len(tasks)]
        for pipe, task in zip(pipes, tasks, strict=True):
            if isinstance(task, RawPgTask):
                pipe.send((task, None, group))
            else:
                pipe.send((task.commands, task.decisions, group))
        for pipe in pipes:
            self.answer(pipe, "ready")
        samples: Counter[str] = Counter()
        for pipe in pipes:
            pipe.send("go")
        results = []
        for pipe in pipes:
            deadline = time.monotonic() + WORKER_TIMEOUT_S
            while sampler is not None and not pipe.poll(SAMPLE_INTERVAL_S) and time.monotonic() < deadline:
                samples.update(sampler.sample())
            results.append(self.answer(pipe, "done"))
        for _, _, _, problem in results:
            require(problem is None, str(problem))
        span_s = max(end for _, end, _, _ in results) - min(start for start, _, _, _ in results)
        return {"span_s": span_s, "client_cpu_s": sum(cpu for _, _, cpu, _ in results), "waits": samples}

    def stop(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(None)
        for process in self.processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
                process.join(timeout=10)


SAMPLE_INTERVAL_S: Final = 0.02
WAIT_CLASSES: Final = (
    ("Lock", "waiting for a lock (serialisation)"),
    ("IO:WAL", "writing or syncing the WAL"),
    ("LWLock:WAL", "waiting for another WAL flush"),
    ("running", "running (on a CPU, or ready for one)"),
    ("client", "waiting for its client"),
    ("other", "other waits"),
)
"""How the sampled states of the writers' server processes are grouped: prefix, meaning."""


class WaitSampler:
    """Samples what the server processes of this database's other sessions are doing (pg_stat_activity)."""

    QUERY: Final = (
        "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
    )

    def __init__(self, url: str) -> None:
        import psycopg  # noqa: PLC0415 (only when PostgreSQL is measured)

        self.connection = psycopg.connect(url, autocommit=True)

    def sample(self) -> Counter[str]:
        states: Counter[str] = Counter()
        for state, wait_type, wait_event in self.connection.execute(self.QUERY).fetchall():
            if state != "active":
                states["client"] += 1  # idle, or idle in a transaction: the writer's own work
            elif wait_type is None:
                states["running"] += 1
            else:
                name = f"{wait_type}:{wait_event}"
                prefix = next((p for p, _ in WAIT_CLASSES if name.startswith(p)), "other")
                states[prefix] += 1
        return states

    def close(self) -> None:
        self.connection.close()


def postgres_unavailable() -> str | None:
    """Why section 4 cannot run here, or None."""
    reason = postgres.unavailable_reason()
    if reason is not None:
        return reason
    try:
        import psycopg  # noqa: F401, PLC0415
    except ImportError:
        return "psycopg 3 is not installed (pip install 'ppk[postgres]')"
    return None


def writer_shares(plan: Plan, tag: str) -> list[Stream]:
    """Each writer's share of a PostgreSQL run, on accounts of its own named after `tag`."""
    return [
        mix_stream(PG_SEED + w, f"{tag}w{w}-", plan.pg_accounts_per_writer, plan.pg_commands_per_writer)
        for w in range(plan.pg_writers)
    ]


def run_raw_pg_writers(
    writers: Writers,
    url: str,
    capture_url: str,
    shares: list[Stream],
    *,
    one: bool,
    sampler: WaitSampler | None,
) -> dict[str, Any]:
    """The raw psycopg loop over the writes a store sends for `shares` (captured on `capture_url`): by
    one writer, the shares interleaved, or by a writer per share."""
    captured = [capture_pg(capture_url, share) for share in shares]
    if one:
        merged = [transaction for parts in zip(*captured, strict=True) for transaction in parts]
        return writers.run([RawPgTask(url, merged)], 1, sampler)
    return writers.run([RawPgTask(url, transactions) for transactions in captured], 1, sampler)


def measure_postgresql(plan: Plan) -> dict[str, Any]:
    """Section 4: the same total work by 1 writer (all shares, interleaved) and by 8 writers (a share
    each, on its own accounts), one command per transaction and in groups, round after round."""
    reason = postgres_unavailable()
    if reason is not None:
        return {"skipped": reason}
    writers_max = plan.pg_writers
    with postgres.throwaway_cluster() as cluster:
        url = cluster.create_database(PG_DATABASE)
        capture_url = cluster.create_database(f"{PG_DATABASE}_capture")
        store = open_store(url)
        try:
            with store.engine.connect() as connection:
                settings = {
                    name: connection.execute(text(f"SHOW {name}")).scalar()
                    for name in ("server_version", "fsync", "synchronous_commit", "wal_sync_method")
                }
        finally:
            store.close()
        sys.stderr.write(f"  starting {writers_max} writers (spawn)\n")
        writers = Writers.start(url, writers_max)
        sampler: WaitSampler | None = None
        try:
            sampler = WaitSampler(url)
            warm = [
                mix_stream(PG_SEED + w, f"warm{w}-", 1, plan.pg_commands_per_writer)
                for w in range(writers_max)
            ]
            writers.run(warm, 1)
            configurations = [(1, 1), (writers_max, 1), (1, plan.pg_group), (writers_max, plan.pg_group)]
            runs: dict[tuple[int, int], list[dict[str, Any]]] = {c: [] for c in configurations}
            raw_runs: dict[int, list[dict[str, Any]]] = {1: [], writers_max: []}

            for round_index in range(plan.pg_rounds):
                order = configurations if round_index % 2 == 0 else configurations[::-1]
                for count, group in order:
                    sys.stderr.write(f"  round {round_index + 1}: {count} writer(s), groups of {group}\n")
                    shares = writer_shares(plan, f"r{round_index}n{count}g{group}")
                    tasks = [interleaved(shares)] if count == 1 else shares
                    runs[(count, group)].append(writers.run(tasks, group, sampler))
                for count in (1, writers_max) if round_index % 2 == 0 else (writers_max, 1):
                    sys.stderr.write(f"  round {round_index + 1}: {count} raw psycopg writer(s)\n")
                    shares = writer_shares(plan, f"r{round_index}n{count}raw")
                    raw_runs[count].append(
                        run_raw_pg_writers(writers, url, capture_url, shares, one=count == 1, sampler=sampler)
                    )
        finally:
            if sampler is not None:
                sampler.close()
            writers.stop()
    total = writers_max * plan.pg_commands_per_writer
    cpus = os.cpu_count() or 1

    def figures(count: int, group: int) -> dict[str, Any]:
        timings = [Timing(run["span_s"], run["client_cpu_s"]) for run in runs[(count, group)]]
        waits: Counter[str] = sum((run["waits"] for run in runs[(count, group)]), Counter())
        sampled = sum(waits.values())
        return {
            **_figures(total, timings),
            "client_cpu_share": statistics.median(
                run["client_cpu_s"] / (run["span_s"] * cpus) for run in runs[(count, group)]
            ),
            "server_states": {
                prefix: waits[prefix] / sampled if sampled else 0.0 for prefix, _ in WAIT_CLASSES
            },
            "server_samples": sampled,
        }

    def scaling(group: int) -> float:
        return statistics.median(
            float(one["span_s"] / many["span_s"])
            for one, many in zip(runs[(1, group)], runs[(writers_max, group)], strict=True)
        )

    return {
        "settings": settings,
        "writers": writers_max,
        "commands_per_run": total,
        "accounts_per_writer": plan.pg_accounts_per_writer,
        "by_group": {
            str(group): {
                "1": figures(1, group),
                str(writers_max): figures(writers_max, group),
                "ratio_many_one": scaling(group),
            }
            for group in (1, plan.pg_group)
        },
        "raw_psycopg": {
            **{
                str(count): _figures(
                    total, [Timing(run["span_s"], run["client_cpu_s"]) for run in raw_runs[count]]
                )
                for count in raw_runs
            },
            "ratio_many_one": statistics.median(
                one["span_s"] / many["span_s"]
                for one, many in zip(raw_runs[1], raw_runs[writers_max], strict=True)
            ),
            "ratio_store_raw": {
                str(count): statistics.median(
                    raw["span_s"] / run["span_s"]
                    for run, raw in zip(runs[(count, 1)], raw_runs[count], strict=True)
                )
                for count in raw_runs
            },
        },
    }


# --- The report -----------------------------------------------------------------------------------


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _rounded(value: Any) -> Any:
    """`value` with every float to 4 significant decimals, short enough to read."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {str(key): _rounded(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(item) for item in value]
    return value


def table_rows(s: dict[str, Any]) -> list[tuple[str, ...]]:
    """The report's one table: figure, commands/s, µs/command, spread over rounds, ratio."""
    rows: list[tuple[str, ...]] = []

    def row(label: str, figures: dict[str, Any], ratio: str = "") -> None:
        rows.append(
            (
                label,
                f"{figures['commands_per_s']:,.0f}",
                f"{figures['us_per_command']:,.0f}",
                f"{figures['cpu_us_per_command']:,.0f}",
                f"{figures['spread']:.0%}",
                ratio,
            )
        )

    def heading(label: str) -> None:
        rows.append((f"**{label}**", "", "", "", "", ""))

    sqlite = s["sqlite"]
    one = sqlite["by_group"]["1"]
    heading(f"SQLite {s['sqlite_version']}, WAL + synchronous=FULL, one command per transaction")
    row("`SqlStore.execute`", one["store"])
    row("raw sqlite3, the same writes", one["raw"], f"store/raw **{one['ratio_store_raw']:.2f}**")
    row(
        "raw sqlite3, the same reads and writes",
        one["raw_reads"],
        f"store/raw {one['ratio_store_raw_reads']:.2f}",
    )
    heading("SQLite, group commit (`SqlStore.execute_many`)")
    for group in s["plan"]["groups"]:
        by = sqlite["by_group"][str(group)]
        row(
            f"`execute_many`, groups of {group:,}",
            by["store"],
            f"× one per tx **{by['ratio_to_one_per_transaction']:.2f}**",
        )
        row(
            f"raw sqlite3, the same writes, groups of {group:,}",
            by["raw"],
            f"store/raw {by['ratio_store_raw']:.2f}",
        )
        row(
            f"raw sqlite3, reads and writes, groups of {group:,}",
            by["raw_reads"],
            f"store/raw {by['ratio_store_raw_reads']:.2f}",
        )
    history = s["history"]
    young, old = s["plan"]["ages"]
    heading(
        f"SQLite, per-command cost vs history: one account, batch of {history['batch_commands']} commands"
    )
    for group in history["by_group"]:
        by = history["by_group"][group]
        how = "one per transaction" if group == "1" else f"groups of {int(group)}"
        row(f"{how}, at {young:,} entries", by[str(young)])
        row(
            f"{how}, at {old:,} entries",
            by[str(old)],
            f"largest/smallest **{by['ratio_largest_smallest']:.2f}**",
        )
    pg = s["postgresql"]
    if "skipped" not in pg:
        many = pg["writers"]
        settings = pg["settings"]
        version = str(settings["server_version"]).split()[0]
        heading(
            f"PostgreSQL {version} (fsync={settings['fsync']}, "
            f"synchronous_commit={settings['synchronous_commit']}), distinct accounts, "
            f"{pg['commands_per_run']:,} commands per run"
        )
        for group in pg["by_group"]:
            by = pg["by_group"][group]
            how = "one per transaction" if group == "1" else f"groups of {int(group)}"
            row(f"1 writer, {how}", by["1"])
            row(
                f"{many} writers, {how}",
                by[str(many)],
                f"{many}/1 **{by['ratio_many_one']:.2f}** ({s['cpus']} cores)",
            )
        raw = pg["raw_psycopg"]
        row(
            "raw psycopg, the same writes, 1 writer", raw["1"], f"store/raw {raw['ratio_store_raw']['1']:.2f}"
        )
        row(
            f"raw psycopg, the same writes, {many} writers",
            raw[str(many)],
            f"{many}/1 {raw['ratio_many_one']:.2f}; store/raw {raw['ratio_store_raw'][str(many)]:.2f}",
        )
    return rows


def print_store_table(rows: list[tuple[str, ...]]) -> None:
    print_table(
        ("figure", "commands/s", "µs/command", "CPU µs/command", "spread", "ratio"),
        rows,
        (False, True, True, True, True, False),
    )


def print_report(s: dict[str, Any]) -> None:
    print(
        f"ppk SQL store benchmark: Python {s['python']}, SQLite {s['sqlite_version']}, SQLAlchemy "
        f"{s['sqlalchemy']}, psycopg {s['psycopg']}, {s['cpus']} CPUs, contracts "
        f"{'on' if s['contracts'] else 'off'}; adapters/sql.py sha256 {s['sql_py_sha256'][:12]}; "
        f"wall time {s['wall_s']:.0f} s"
    )
    if s["sql_py_changed_during_run"]:
        print(
            "WARNING: adapters/sql.py changed on disk during the run; the PostgreSQL writers may have run it."
        )
    before, after = s["load_average"]["start"], s["load_average"]["end"]
    print(
        f"Load average (1 min) {before:.2f} at the start, {after:.2f} at the end: other work on the machine "
        f"slows the CPU-bound figures (groups) more than the fsync-bound ones (one per transaction)."
    )
    sqlite, history = s["sqlite"], s["history"]
    print(
        f"Sections 1-2: {sqlite['commands']:,} commands on {sqlite['accounts']} accounts, "
        f"{s['plan']['rounds']} rounds, every way on a fresh copy of an empty database; section 3: "
        f"{s['plan']['age_rounds']} rounds; figures are medians over rounds, ratios medians of each "
        f"round's ratio, spread = (max-min)/median."
    )
    print()
    print_store_table(table_rows(s))
    print()
    pg = s["postgresql"]
    if "skipped" in pg:
        print(f"PostgreSQL: skipped: {pg['skipped']}")
    else:
        many = pg["writers"]
        one_tx = pg["by_group"]["1"]
        print(
            f"PostgreSQL, one per transaction: the writers' own CPU time was "
            f"{one_tx[str(many)]['client_cpu_share']:.0%} of the {s['cpus']} cores' time with {many} "
            f"writers, {one_tx['1']['client_cpu_share']:.0%} with 1 (the server's CPU comes on top). Each "
            f"writer is a process with its own store and connection, on a throwaway cluster at the "
            f"server's defaults."
        )
        print(f"PostgreSQL, the writers' server processes, sampled every {SAMPLE_INTERVAL_S * 1e3:.0f} ms:")
        for group, by in pg["by_group"].items():
            how = "one per transaction" if group == "1" else f"groups of {int(group)}"
            for count in ("1", str(many)):
                states = by[count]["server_states"]
                shares = ", ".join(f"{meaning} {states[prefix]:.0%}" for prefix, meaning in WAIT_CLASSES)
                print(f"  {count} writer(s), {how} ({by[count]['server_samples']:,} samples): {shares}")
    counts = sqlite["statements_per_command"]

    def span(low_high: list[int]) -> str:
        low, high = low_high
        return f"{low}" if low == high else f"{low}-{high}"

    print(
        "Statements per command, one per transaction (captured from the store; the raw loop runs the same): "
        + "; ".join(
            f"{kind} {span(c['insert'])} INSERT + {span(c['update'])} UPDATE, {span(c['select'])} SELECT"
            for kind, c in counts.items()
        )
        + "."
    )
    builds = history["builds"]
    old = builds[str(s["plan"]["ages"][1])]
    print(
        f"History built through execute_many in groups of {s['plan']['build_group']:,}: {old['entries']:,} "
        f"entries in {old['build_s']:.0f} s ({old['payouts']:,} payouts, a {old['file_bytes'] / 1e6:.0f} MB "
        f"file); first group {old['group_us_first']:,.0f} µs/command, last {old['group_us_last']:,.0f}."
    )
    print(f"SQLite files in {s['folder']}.")


def summary(plan: Plan, quick: bool, folder: Path, wall_s: float, parts: dict[str, Any]) -> dict[str, Any]:
    return {
        "load_average": {"start": parts.pop("load_start"), "end": os.getloadavg()[0]},
        "bench": "ppk.adapters.sql",
        "quick": quick,
        "python": platform.python_version(),
        "sqlite_version": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
        "psycopg": _version("psycopg"),
        "cpus": os.cpu_count(),
        "contracts": __debug__,
        "sql_py_sha256": parts.pop("sql_py_sha256"),
        "sql_py_changed_during_run": parts.pop("sql_py_changed"),
        "folder": str(folder),
        "wall_s": wall_s,
        "plan": attrs.asdict(plan),
        **parts,
    }


def sql_py_sha256() -> str:
    """The SHA-256 of the store's source, `adapters/sql.py`, as it is on disk now.

    The writer processes import it when they start, so a change made meanwhile would reach them.
    """
    return hashlib.sha256(Path(sql_module.__file__).read_bytes()).hexdigest()


@contextlib.contextmanager
def work_folder(named: str | None) -> Iterator[Path]:
    """Where the SQLite files go: `--dir`, kept, or a temporary folder, deleted after."""
    if named is not None:
        folder = Path(named)
        folder.mkdir(parents=True, exist_ok=True)
        yield folder
        return
    with tempfile.TemporaryDirectory(prefix="ppk-bench-store-") as temporary:
        yield Path(temporary)


def empty_database(folder: Path) -> Path:
    """An empty database at this ppk's schema, closed: each run starts from a copy of it."""
    template = folder / "empty.db"
    remove_database(template)
    open_store(str(template)).close()
    require(sqlite_settings(template)[0].lower() == "wal", "the store left its database out of WAL mode")
    return template


def run(plan: Plan, quick: bool, folder_name: str | None) -> int:
    start = time.perf_counter()
    load_start = os.getloadavg()[0]
    sql_sha = sql_py_sha256()
    with work_folder(folder_name) as folder:
        template = empty_database(folder)
        sys.stderr.write("sections 1-2: SQLite, one per transaction and in groups, next to raw sqlite3\n")
        sqlite = measure_sqlite(plan, folder, template)
        sys.stderr.write("section 3: per-command cost vs history\n")
        history = measure_history(plan, folder, template)
        remove_database(template)
    sys.stderr.write("section 4: PostgreSQL, 1 and 8 writers\n")
    pg = measure_postgresql(plan)
    wall_s = time.perf_counter() - start
    report = summary(
        plan,
        quick,
        folder,
        wall_s,
        {
            "sqlite": sqlite,
            "history": history,
            "postgresql": pg,
            "load_start": load_start,
            "sql_py_sha256": sql_sha,
            "sql_py_changed": sql_py_sha256() != sql_sha,
        },
    )
    print_report(report)
    print(json.dumps(_rounded(report), sort_keys=True))
    return 0


# --- --profile ------------------------------------------------------------------------------------


def _origin(filename: str, name: str) -> str:
    path = filename.replace(os.sep, "/")
    if "sqlite3.Connection" in name and "commit" in name:
        return "sqlite3 commit (the fsync)"
    if "sqlite3." in name:
        return "sqlite3 statements (C)"
    if "/sqlalchemy/" in path or "<sqlalchemy generated" in path or "<string>" in path:
        return "SQLAlchemy"
    if "/icontract/" in path or path.endswith(("/inspect.py", "/functools.py")):
        return "icontract (kernel contracts)"
    if "/ppk/kernel/" in path or "/kernel/" in path:
        return "kernel (decide, fold)"
    if "/ppk/adapters/" in path or "/adapters/" in path:
        return "ppk.adapters (sql.py, canonical.py)"
    if "/attr/" in path or "/attrs/" in path or "<attrs generated" in path:
        return "attrs"
    return "other (built-ins, enum, datetime, ...)"


def profile(plan: Plan, group: int, rows: int) -> int:
    """cProfile the stream of sections 1-2 through the store, on a fresh database."""
    stream = mix_stream(MIX_SEED, "acct-", plan.mix_accounts, plan.mix_commands)
    with work_folder(None) as folder:
        template = empty_database(folder)
        warm = folder / "warm.db"
        copy_database(template, warm)
        time_store(warm, stream, group)
        path = folder / "run.db"
        copy_database(template, path)
        store = open_store(str(path))
        profiler = cProfile.Profile()
        try:
            start = time.perf_counter()
            profiler.enable()
            decisions = run_store(store, stream.commands, group)
            profiler.disable()
            elapsed = time.perf_counter() - start
        finally:
            store.close()
        _check_decisions(decisions, stream.decisions, "the profiled run")
    count = len(stream.commands)
    stats = pstats.Stats(profiler)
    origins: Counter[str] = Counter()
    for (filename, _, name), (_, _, own_s, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        origins[_origin(filename, name)] += own_s
    total_s = sum(origins.values())
    how = "one command per transaction" if group == 1 else f"groups of {group}"
    print(
        f"{count} commands, {how}, contracts {'on' if __debug__ else 'off'}: {elapsed:.2f} s under cProfile "
        f"({elapsed / count * 1e6:,.0f} µs/command; the profiler inflates Python code, not the fsync)"
    )
    print(f"{'own time by origin':<40} {'share':>6} {'µs/command':>11}")
    for origin, own_s in origins.most_common():
        print(f"{origin:<40} {own_s / total_s:>6.1%} {own_s / count * 1e6:>11,.0f}")
    print()
    stats.sort_stats("cumulative").print_stats(rows)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds, small sizes")
    parser.add_argument(
        "--profile",
        type=int,
        nargs="?",
        const=1,
        metavar="GROUP",
        help="cProfile the stream through the store, one command per transaction (or in groups of GROUP)",
    )
    parser.add_argument("--dir", help="where the SQLite files go (kept); a temporary folder by default")
    parser.add_argument(
        "--oldest", type=int, metavar="ENTRIES", help="age the older account to this many entries instead"
    )
    args = parser.parse_args(argv)
    plan = PLAN_QUICK if args.quick else PLAN_FULL
    if args.oldest is not None:
        if args.oldest <= plan.ages[0]:
            parser.error(f"--oldest must be more than {plan.ages[0]}")
        plan = attrs.evolve(plan, ages=(plan.ages[0], args.oldest))
    if args.profile is not None:
        return profile(plan, args.profile, PROFILE_ROWS)
    return run(plan, args.quick, args.dir)


if __name__ == "__main__":
    sys.exit(main())
