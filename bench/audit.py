"""Benchmark of `ppk audit`: events per second and peak memory at two ledger sizes, in one run.

Two SQLite databases are built, one with about 100 000 events and one with about 1 000 000 (an
event is one event inside an applied entry), on 200 and 2 000 accounts of the same size, so that
what the audit keeps per account is the same in both and any growth is the database's. The entries
are decided by the pure kernel (`execute`, as a store does) in children under `python -O`, and
written in bulk with the standard library's `sqlite3` into a database whose schema `ppk db upgrade`
made: the ledger rows with their hash chain (docs/audit.md §1), the account rows with their chain
heads, the loss snapshots and the payout outbox. Each database is then checked: `ppk audit --json`
must find it clean and `docs/verify_chain.py` must give the same digest.

Then, round after round, the two sizes alternating, `ppk audit --db PATH` runs as a child process,
as an auditor runs it (contracts on), with the wall time, the CPU time and the peak resident memory
of that child alone (`os.wait4`); beside it, the same for `ppk audit` of an empty database (the
fixed cost of starting) and `docs/verify_chain.py` (the chains and the digest alone, standard
library only). Last, one audit of the smaller database runs under cProfile, to tell where the time
goes. Medians over the rounds; each ratio (larger/smaller) is the median of the ratios measured
within each round.

Run `python bench/audit.py [--quick] [--keep] [--dir DIR]`; bench/README.md explains each figure.
Timings are never asserted by the tests.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime
import hashlib
import json
import multiprocessing
import os
import platform
import pstats
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Final

import attrs
import mix
from mix import (  # bench/mix.py: the command mix the benchmarks share
    DAY_FIRST,
    DAY_STALE,
    FUND_MINOR_MAX,
    FUND_MINOR_MIN,
    LOSS_CAPITAL_MIN,
    PROFIT_MINOR_MAX,
    REFUSAL_CODES,
    REFUSED_PAYMENT_MINOR_MAX,
    Kind,
    payable_minor_of,
    require,
    write_off_minor_max,
)
from report import print_table

import ppk.adapters.audit as audit_module
from ppk.adapters.canonical import encode_entry
from ppk.adapters.chain import chained, genesis
from ppk.adapters.sql import account_row, loss_row, open_store
from ppk.kernel.state import (
    NOTHING_RECORDED,
    Account,
    Applied,
    Command,
    ConfirmPayout,
    Fund,
    Lookup,
    Loss,
    OpenAccount,
    Payout,
    RecordBalance,
    Refused,
    SetShares,
    Settle,
    payout_id,
)
from ppk.kernel.transitions import (
    execute,
    losses_written,
    payout_looked_up,
    payouts_written,
)

# --- What is measured, and how much ---------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Plan:
    """How much a run measures."""

    accounts_per_block: int
    """Accounts decided together and written interleaved: a block's rows are shuffled among its
    accounts (each account's in order), as commands on many accounts arrive."""
    blocks: tuple[int, int]
    """How many blocks the smaller and the larger database hold."""
    events_per_account: int
    """Each account takes commands until its ledger holds at least this many events."""
    rounds: int
    """Rounds of timed runs: in each, every child once, the two sizes in alternating order."""


PLAN_FULL: Final = Plan(accounts_per_block=200, blocks=(1, 10), events_per_account=500, rounds=3)
PLAN_QUICK: Final = Plan(accounts_per_block=2, blocks=(1, 10), events_per_account=500, rounds=1)

SEED: Final = 20_250_101
PROFILE_ROWS: Final = 15
CHILD_TIMEOUT_S: Final = 3_600.0
ROOT: Final = Path(__file__).resolve().parent.parent
VERIFIER: Final = ROOT / "docs" / "verify_chain.py"

SHARES_BP: Final = ((100, 900), (4_782, 0), (250, 250), (0, 1_875), (0, 0))
"""Shares that opens and set_shares write; at 0 % every loss is written off until the next."""
WEIGHTS_WITHOUT_LOSS: Final = {
    kind: w for kind, w in mix.WEIGHTS_WITHOUT_LOSS.items() if kind is not Kind.DUPLICATE
}
WEIGHTS_WITH_LOSS: Final = {
    kind: w for kind, w in mix.WEIGHTS_WITH_LOSS.items() if kind is not Kind.DUPLICATE
}
"""bench/store.py's mix without its retries: a retry writes no ledger row, so an audit never sees one."""


# --- Building: each account decided by the kernel, as a store would ------------------------------


class _Builder:
    """One account's ledger, decided command by command by the kernel (`execute`), with what a store
    keeps beside it: the account's value, its payouts by id, its losses as they stand, and each
    entry's canonical bytes chained on the one before (docs/audit.md §1)."""

    def __init__(self, account_id: str, rng: random.Random) -> None:
        self.id = account_id
        self.rng = rng
        self.value: Account | None = None
        self.payouts: dict[str, Payout] = {}
        self.losses: dict[str, Loss] = {}
        self.pending: list[str] = []
        self.head = genesis(account_id)
        self.rows: list[tuple[str, int, str, bytes, bytes]] = []
        self.events = 0
        self.day = DAY_FIRST
        self.kinds: Counter[str] = Counter()

    def applicable(self, kind: Kind) -> bool:
        """Whether `kind` gets its intended outcome on the account now."""
        account = self.value
        require(account is not None, "the account is open")
        assert account is not None
        if kind in (Kind.SETTLE_PARTIAL, Kind.SETTLE_FULL, Kind.PAYMENT_EXCEEDS_PAYABLE, Kind.LOSS_ACTIVE):
            return account.loss is not None and (
                kind is not Kind.SETTLE_PARTIAL or payable_minor_of(account) >= 2
            )
        if kind is Kind.CONFIRM_PAYOUT:
            return bool(self.pending)
        if kind in (Kind.FUND, Kind.SET_SHARES, Kind.UNKNOWN_PAYOUT):
            return True
        if account.loss is not None:
            return False
        if kind is Kind.RECORD_BALANCE_LOSS:
            return account.capital_minor >= LOSS_CAPITAL_MIN and account.total_share_bp > 0
        if kind is Kind.RECORD_BALANCE_WRITE_OFF:
            return write_off_minor_max(account) >= 1
        if kind is Kind.STALE_BALANCE:
            return account.balance_date_latest is not None
        return True

    def choose(self) -> Kind:
        assert self.value is not None
        weights = WEIGHTS_WITH_LOSS if self.value.loss is not None else WEIGHTS_WITHOUT_LOSS
        kinds = [kind for kind in weights if self.applicable(kind)]
        return self.rng.choices(kinds, weights=[weights[kind] for kind in kinds])[0]

    def command(self, kind: Kind) -> Command:
        command_id = f"cmd-{len(self.rows) + 1:06d}"
        account_id, rng = self.id, self.rng
        if kind is Kind.OPEN:
            my_bp, company_bp = rng.choice(SHARES_BP[:-1])
            return OpenAccount(
                id=command_id, account=account_id, my_share_bp=my_bp, company_share_bp=company_bp
            )
        account = self.value
        assert account is not None
        if kind is Kind.FUND:
            amount_minor = rng.randint(FUND_MINOR_MIN, FUND_MINOR_MAX)
            return Fund(id=command_id, account=account_id, amount_minor=amount_minor)
        if kind is Kind.SET_SHARES:
            my_bp, company_bp = rng.choice(SHARES_BP)
            return SetShares(
                id=command_id, account=account_id, my_share_bp=my_bp, company_share_bp=company_bp
            )
        if kind is Kind.CONFIRM_PAYOUT:
            # Swap a random pending payout to the end and take it: O(1), whatever the backlog.
            index = rng.randrange(len(self.pending))
            self.pending[index], self.pending[-1] = self.pending[-1], self.pending[index]
            return ConfirmPayout(id=command_id, account=account_id, payout=self.pending.pop())
        if kind is Kind.UNKNOWN_PAYOUT:
            return ConfirmPayout(id=command_id, account=account_id, payout=f"{account_id}:none-{command_id}")
        if kind in (Kind.SETTLE_PARTIAL, Kind.SETTLE_FULL, Kind.PAYMENT_EXCEEDS_PAYABLE, Kind.NO_ACTIVE_LOSS):
            if kind is Kind.NO_ACTIVE_LOSS:
                payment_minor = rng.randint(1, REFUSED_PAYMENT_MINOR_MAX)
            elif kind is Kind.SETTLE_PARTIAL:
                payment_minor = rng.randint(1, payable_minor_of(account) - 1)
            elif kind is Kind.PAYMENT_EXCEEDS_PAYABLE:
                payment_minor = payable_minor_of(account) + rng.randint(1, REFUSED_PAYMENT_MINOR_MAX)
            else:
                payment_minor = payable_minor_of(account)
            return Settle(id=command_id, account=account_id, payment_minor=payment_minor)
        return self._record_balance(kind, account, command_id)

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

    def step(self, kind: Kind) -> None:
        """Decide a command of `kind` as a store does, check its outcome, and keep what a store writes."""
        command = self.command(kind)
        before = self.value
        named = payout_looked_up(command)
        # Every id is fresh, so the entry under it is none; a confirm_payout looks up its payout.
        lookup = (
            NOTHING_RECORDED
            if before is None or named is None or named not in self.payouts
            else Lookup(payout=self.payouts[named])
        )
        entry, after = execute(before, command, lookup)
        code = REFUSAL_CODES.get(kind)
        if code is not None:
            ok = isinstance(entry, Refused) and entry.code is code
        else:
            ok = isinstance(entry, Applied)
        require(ok, f"{kind} {command!r} got {entry!r}")
        assert isinstance(entry, Applied | Refused) and after is not None
        data = encode_entry(entry)
        self.head = chained(self.head, data)
        self.rows.append((self.id, after.entry_count, command.id, data, self.head))
        for loss in losses_written(before, entry, after):
            self.losses[loss.opened_by] = loss
        for payout in payouts_written(entry):
            self.payouts[payout.id] = payout
        if isinstance(entry, Applied):
            self.events += len(entry.events)
        if kind is Kind.RECORD_BALANCE_PROFIT:
            self.pending.append(payout_id(self.id, command.id))
        self.kinds[kind.value] += 1
        self.value = after


def build_block(job: tuple[int, int, int]) -> dict[str, Any]:
    """One block of accounts, decided and chained; its rows in the order they are written.

    Each account takes commands until its ledger holds `events_per_account` events; then the block's
    ledger rows are interleaved at random among its accounts, each account's in order, as a store
    that serves many accounts at once writes them.
    """
    block, accounts, events_per_account = job
    rng = random.Random(SEED * 1_000 + block)
    builders = [_Builder(f"acct-{block:03d}-{index:04d}", rng) for index in range(accounts)]
    for builder in builders:
        builder.step(Kind.OPEN)
        while builder.events < events_per_account:
            builder.step(builder.choose())
    order = [index for index, builder in enumerate(builders) for _ in builder.rows]
    rng.shuffle(order)
    streams = [iter(builder.rows) for builder in builders]
    ledger = [next(streams[index]) for index in order]
    account_rows: list[dict[str, Any]] = []
    loss_rows: list[dict[str, Any]] = []
    payout_rows: list[dict[str, Any]] = []
    kinds: Counter[str] = Counter()
    for builder in builders:
        assert builder.value is not None
        row = account_row(builder.value)
        date = row["balance_date_latest"]
        row.update(chain_head=builder.head, balance_date_latest=None if date is None else date.isoformat())
        account_rows.append(row)
        loss_rows.extend(loss_row(builder.id, loss) for loss in builder.losses.values())
        payout_rows.extend(
            {
                "account": builder.id,
                "payout_id": payout.id,
                "amount_minor": payout.amount_minor,
                "status": payout.status.value,
            }
            for payout in builder.payouts.values()
        )
        kinds.update(builder.kinds)
    return {
        "ledger": ledger,
        "accounts": account_rows,
        "losses": loss_rows,
        "payouts": payout_rows,
        "events": sum(builder.events for builder in builders),
        "kinds": kinds,
    }


def _insert(connection: sqlite3.Connection, table: str, rows: list[dict[str, Any]]) -> None:
    if rows:
        columns = list(rows[0])
        connection.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})", rows
        )


def build_database(
    path: Path, blocks: int, accounts_per_block: int, events_per_account: int
) -> dict[str, Any]:
    """The build child (`python -O`): decide every block in a pool of processes, one per core, and
    write the rows, block after block, into the database at `path` in one transaction."""
    start = time.perf_counter()
    connection = sqlite3.connect(path, isolation_level=None)
    require(
        connection.execute("SELECT count(*) FROM ledger").fetchone()[0] == 0,
        f"{path} already holds a ledger",
    )
    # The build is disposable: no rollback journal and no sync while writing; WAL again after, as
    # ppk keeps it (and sets it again whenever it opens the database).
    connection.execute("PRAGMA journal_mode=OFF")
    connection.execute("PRAGMA synchronous=OFF")
    connection.execute("PRAGMA cache_size=-262144")
    totals: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    jobs = [(block, accounts_per_block, events_per_account) for block in range(blocks)]
    processes = max(1, min(os.cpu_count() or 1, blocks))
    decide_s = 0.0
    connection.execute("BEGIN")
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        waited = time.perf_counter()
        for done in pool.imap(build_block, jobs):
            decide_s += time.perf_counter() - waited
            connection.executemany(
                "INSERT INTO ledger (account, seq, command_id, entry, hash) VALUES (?, ?, ?, ?, ?)",
                done["ledger"],
            )
            _insert(connection, "accounts", done["accounts"])
            _insert(connection, "losses", done["losses"])
            _insert(connection, "payouts", done["payouts"])
            totals.update(
                entries=len(done["ledger"]),
                events=done["events"],
                accounts=len(done["accounts"]),
                losses=len(done["losses"]),
                payouts=len(done["payouts"]),
                confirmed=sum(row["status"] == "confirmed" for row in done["payouts"]),
                encoded_bytes=sum(len(row[3]) for row in done["ledger"]),
            )
            kinds.update(done["kinds"])
            waited = time.perf_counter()
    connection.execute("COMMIT")
    mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    connection.close()
    require(str(mode).lower() == "wal", f"{path} would not go back to WAL (journal_mode={mode})")
    return {
        **totals,
        "kinds": dict(sorted(kinds.items())),
        "build_s": time.perf_counter() - start,
        "waited_s": decide_s,
        "processes": processes,
        "contracts": __debug__,
        "file_bytes": path.stat().st_size,
    }


# --- Running children, with the resources of each ------------------------------------------------


def _environment() -> dict[str, str]:
    """The children's environment: without PYTHONOPTIMIZE, which would turn ppk's contracts off."""
    return {name: value for name, value in os.environ.items() if name != "PYTHONOPTIMIZE"}


def ppk_command() -> list[str]:
    """`ppk` as the installed console script, run by this interpreter: what `ppk` on PATH runs,
    without the shell shims (pyenv's) that may stand in front of it."""
    beside = Path(sys.executable).parent / "ppk"
    if beside.is_file():
        return [sys.executable, str(beside)]
    found = shutil.which("ppk")
    require(found is not None, "ppk is not installed (pip install -e .)")
    assert found is not None
    return [found]


LAUNCHER: Final = """
import json, os, sys, time
report, argv = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall_s = time.perf_counter() - start
with open(report, "w") as out:
    json.dump({"status": os.waitstatus_to_exitcode(status), "wall_s": wall_s,
               "cpu_s": usage.ru_utime + usage.ru_stime, "maxrss_kib": usage.ru_maxrss}, out)
"""
"""Runs one child and reports that child's own rusage. A child's ru_maxrss starts from the resident
size of the process it was forked from (Linux carries the old image's peak over `exec`), so the
measured children are forked from this launcher (`python -S`, a few MiB), not from the benchmark,
whose own size would otherwise be the floor of every figure. `measure` reports that floor."""


@attrs.frozen(kw_only=True)
class Run:
    """One child process: its exit status, output, and resources."""

    status: int
    stdout: str
    stderr: str
    wall_s: float
    """From its fork to its end, as the launcher saw it."""
    cpu_s: float
    """User and system CPU time of the child."""
    peak_mib: float
    """The child's peak resident set size (ru_maxrss), in MiB."""


def run_child(arguments: Sequence[str]) -> Run:
    """Run a child to its end through the launcher, with its wall time, CPU time and peak memory (its
    own, by `os.wait4` in the launcher: `RUSAGE_CHILDREN` would give the largest of all children)."""
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile(suffix=".json") as report,
    ):
        launcher = [sys.executable, "-S", "-c", LAUNCHER, report.name, *arguments]
        launched = subprocess.run(launcher, stdout=out, stderr=err, env=_environment(), cwd=ROOT, check=False)
        out.seek(0)
        err.seek(0)
        stdout, stderr = (stream.read().decode("utf-8", "replace") for stream in (out, err))
        require(launched.returncode == 0, f"the launcher of {arguments} failed: {stderr[-3000:]}")
        usage = json.loads(Path(report.name).read_text())
    return Run(
        status=usage["status"],
        stdout=stdout,
        stderr=stderr,
        wall_s=usage["wall_s"],
        cpu_s=usage["cpu_s"],
        peak_mib=usage["maxrss_kib"] / 1024,
    )


def _checked(run: Run, what: str, statuses: tuple[int, ...] = (0,)) -> Run:
    require(
        run.status in statuses,
        f"{what} exited with {run.status}:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}",
    )
    return run


def _last_json(run: Run, what: str) -> Any:
    lines = run.stdout.strip().splitlines()
    require(bool(lines), f"{what} printed nothing:\n{run.stderr[-3000:]}")
    return json.loads(lines[-1])


# --- The databases ----------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Database:
    label: str
    path: Path
    built: dict[str, Any]
    digest: str
    verify_s: float
    """Wall time of the first `ppk audit --json`, which also recorded the digest's checkpoint."""


def _label(events: int) -> str:
    return f"{events / 1e6:g}M" if events >= 1_000_000 else f"{events / 1e3:g}k"


def make_database(folder: Path, label: str, blocks: int, plan: Plan) -> Database:
    """Build one database (schema by `ppk db upgrade`, rows by the build child) and check it."""
    path = folder / f"audit-{label}.db"
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    _checked(run_child([*ppk_command(), "db", "upgrade", "--db", str(path)]), f"ppk db upgrade --db {path}")
    sys.stderr.write(f"building {path.name}: {blocks * plan.accounts_per_block:,} accounts\n")
    build = _checked(
        run_child(
            [
                sys.executable,
                "-O",
                __file__,
                "--build",
                str(path),
                "--blocks",
                str(blocks),
                "--accounts-per-block",
                str(plan.accounts_per_block),
                "--events-per-account",
                str(plan.events_per_account),
            ]
        ),
        f"building {path}",
    )
    built = _last_json(build, f"building {path}")
    built.update(build_peak_mib=build.peak_mib, build_wall_s=build.wall_s)
    sys.stderr.write(
        f"  {built['events']:,} events in {built['entries']:,} entries, {built['build_s']:.0f} s; "
        "checking it\n"
    )
    audited = _checked(
        run_child([*ppk_command(), "audit", "--db", str(path), "--json"]), f"ppk audit {path}", (0, 1)
    )
    report = _last_json(audited, f"ppk audit {path}")
    if report["findings"] or audited.status != 0:
        shown = "\n".join(json.dumps(finding, sort_keys=True) for finding in report["findings"][:20])
        raise RuntimeError(
            f"ppk audit found {len(report['findings'])} finding(s) on {path}, built by the kernel "
            f"(exit {audited.status}); the first ones:\n{shown}"
        )
    require(
        (report["accounts"], report["entries"]) == (built["accounts"], built["entries"]),
        f"ppk audit read {report['accounts']} accounts and {report['entries']} entries of {path}; "
        f"{built['accounts']} and {built['entries']} were written",
    )
    require(report["recorded"], f"ppk audit did not record the checkpoint of {path}'s digest")
    verified = _checked(
        run_child([sys.executable, str(VERIFIER), str(path), "--json"]), f"verify_chain {path}"
    )
    independent = _last_json(verified, f"verify_chain {path}")
    require(
        not independent["findings"] and independent["digest"] == report["digest"],
        f"docs/verify_chain.py disagrees on {path}: digest {independent['digest']} (ppk audit: "
        f"{report['digest']}), findings {independent['findings'][:5]}",
    )
    return Database(
        label=label,
        path=path,
        built=built,
        digest=report["digest"],
        verify_s=audited.wall_s,
    )


def remove_database(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)


@contextlib.contextmanager
def work_folder(named: str | None, keep: bool) -> Iterator[Path]:
    """Where the databases go: `--dir`, or a temporary folder; deleted after unless `--keep`."""
    if named is not None:
        folder = Path(named)
        folder.mkdir(parents=True, exist_ok=True)
        yield folder
        return
    folder = Path(tempfile.mkdtemp(prefix="ppk-bench-audit-"))
    try:
        yield folder
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


# --- Timing ---------------------------------------------------------------------------------------


def _figures(runs: list[Run], startups: list[Run] | None, events: int, entries: int) -> dict[str, Any]:
    """Medians over the rounds. The `net` figures, for `ppk audit` only, leave out its start-up (the
    empty database's audit) measured in the same round; the verifier's start-up is not measured."""
    walls = [run.wall_s for run in runs]
    wall_s = statistics.median(walls)
    cpu_s = statistics.median(run.cpu_s for run in runs)
    net_s = None
    if startups is not None:
        net_s = statistics.median(
            run.wall_s - startup.wall_s for run, startup in zip(runs, startups, strict=True)
        )
    return {
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        "net_wall_s": net_s,
        "peak_mib": statistics.median(run.peak_mib for run in runs),
        "peak_mib_max": max(run.peak_mib for run in runs),
        "events_per_s": events / wall_s,
        "entries_per_s": entries / wall_s,
        "events_per_cpu_s": events / cpu_s,
        "events_per_s_net": events / net_s if net_s else None,
        "spread": (max(walls) - min(walls)) / wall_s,
        "rounds_s": walls,
        "rounds_cpu_s": [run.cpu_s for run in runs],
        "rounds_peak_mib": [run.peak_mib for run in runs],
    }


def _ratios(
    small: list[Run], large: list[Run], startups: list[Run] | None, events: tuple[int, int]
) -> dict[str, float | None]:
    """Larger over smaller, each the median of the ratios within each round."""
    pairs = list(zip(small, large, strict=True))
    net = None
    if startups is not None:
        net = statistics.median(
            (events[1] / (b.wall_s - s.wall_s)) / (events[0] / (a.wall_s - s.wall_s))
            for (a, b), s in zip(pairs, startups, strict=True)
        )
    return {
        "ratio_events_per_s": statistics.median(
            (events[1] / b.wall_s) / (events[0] / a.wall_s) for a, b in pairs
        ),
        "ratio_events_per_s_net": net,
        "ratio_events_per_cpu_s": statistics.median(
            (events[1] / b.cpu_s) / (events[0] / a.cpu_s) for a, b in pairs
        ),
        "ratio_peak_mib": statistics.median(b.peak_mib / a.peak_mib for a, b in pairs),
    }


def measure(plan: Plan, databases: tuple[Database, Database], empty: Path) -> dict[str, Any]:
    """Each round: `ppk audit` of the empty database, then of each size, then `verify_chain.py` of
    each, the sizes in alternating order; every child's wall time, CPU time and peak memory."""
    ppk = ppk_command()
    true = shutil.which("true")
    require(true is not None, "no `true` program to measure the launcher's floor with")
    assert true is not None
    floor = run_child([true])
    runs: dict[str, list[Run]] = {
        name: [] for name in ("startup", "audit_0", "audit_1", "verify_0", "verify_1")
    }
    for round_index in range(plan.rounds):
        order = (0, 1) if round_index % 2 == 0 else (1, 0)
        sys.stderr.write(f"round {round_index + 1}/{plan.rounds}\n")
        runs["startup"].append(_checked(run_child([*ppk, "audit", "--db", str(empty)]), "ppk audit (empty)"))
        for index in order:
            path = databases[index].path
            audited = _checked(run_child([*ppk, "audit", "--db", str(path)]), f"ppk audit {path}")
            require(
                f"entries: clean\ndigest {databases[index].digest} (recorded)" in audited.stdout,
                f"ppk audit {path} printed {audited.stdout[-500:]!r}",
            )
            runs[f"audit_{index}"].append(audited)
        for index in order:
            path = databases[index].path
            runs[f"verify_{index}"].append(
                _checked(run_child([sys.executable, str(VERIFIER), str(path)]), f"verify_chain {path}")
            )
        sys.stderr.write(
            "  "
            + ", ".join(
                f"{databases[index].label}: audit {last.wall_s:.1f} s ({last.cpu_s:.1f} s CPU), "
                f"{last.peak_mib:.1f} MiB"
                for index, last in ((0, runs["audit_0"][-1]), (1, runs["audit_1"][-1]))
            )
            + "\n"
        )
    startups = runs["startup"]
    result: dict[str, Any] = {
        "launcher_floor_mib": floor.peak_mib,
        "startup": _figures(startups, None, 0, 0),
    }
    events = (databases[0].built["events"], databases[1].built["events"])
    for what in ("audit", "verify"):
        own_startups = startups if what == "audit" else None
        by: dict[str, Any] = {
            database.label: _figures(
                runs[f"{what}_{index}"], own_startups, database.built["events"], database.built["entries"]
            )
            for index, database in enumerate(databases)
        }
        by.update(_ratios(runs[f"{what}_0"], runs[f"{what}_1"], own_startups, events))
        result[what] = by
    return result


# --- Profile --------------------------------------------------------------------------------------

_OWN: Final = ("decide + fold", "decide's own code", "fold's own code")

STAGES: Final = (
    # (label, (file, function) of the callee, (file, function) of its caller, or None: all its calls)
    ("ledger pages: SQL, fetch, rows (`_pages`)", ("adapters/audit.py", "_pages"), None),
    ("per entry (`_AccountAudit.row`)", ("adapters/audit.py", "row"), None),
    (
        "  chain: two SHA-256 per entry (`chained`)",
        ("adapters/chain.py", "chained"),
        ("adapters/audit.py", "row"),
    ),
    ("  decode the canonical bytes (`decode_entry`)", ("adapters/canonical.py", "decode_entry"), None),
    (
        "  the ten invariants (`LedgerCheck.add`)",
        ("kernel/contracts.py", "add"),
        ("adapters/audit.py", "row"),
    ),
    ("  replay (`_AccountAudit._replay`)", ("adapters/audit.py", "_replay"), None),
    (
        "    decide + fold, with their contracts",
        ("icontract/_checkers.py", "wrapper"),
        ("adapters/audit.py", "_replay"),
    ),
    (
        "      decide's own code (the contracts of what it calls included)",
        ("kernel/transitions.py", "decide"),
        None,
    ),
    ("      fold's own code (likewise)", ("kernel/transitions.py", "fold"), None),
    ("    `decision != entry` (attrs)", ("attr/_make.py", "__ne__"), ("adapters/audit.py", "_replay")),
    (
        "    losses_written, payouts_written",
        ("kernel/transitions.py", "losses_written", "payouts_written"),
        ("adapters/audit.py", "_replay"),
    ),
    (
        "per account: the row, losses, payouts (SQL)",
        ("sqlalchemy/engine/base.py", "execute"),
        ("adapters/audit.py", "audit"),
    ),
    ("per account: the books vs the replay (`finish`)", ("adapters/audit.py", "finish"), None),
)


def _origin(filename: str, name: str) -> str:
    path = filename.replace(os.sep, "/")
    if "sqlite3." in name:
        return "sqlite3 (C)"
    if "/sqlalchemy/" in path or "<sqlalchemy generated" in path or "<string>" in path:
        return "SQLAlchemy"
    if "/icontract/" in path or path.endswith(("/inspect.py", "/functools.py")):
        return "icontract (contracts' machinery)"
    if path.endswith("kernel/contracts.py"):
        return "kernel/contracts.py (invariants, LedgerCheck)"
    if "kernel/" in path:
        return "kernel/transitions.py, state.py (decide, fold)"
    if path.endswith("adapters/canonical.py"):
        return "adapters/canonical.py (decode)"
    if "adapters/" in path:
        return "adapters/audit.py, chain.py, sql.py"
    if "_hashlib" in name or "sha256" in name or "openssl" in name:
        return "hashlib (SHA-256)"
    if "/attr/" in path or "/attrs/" in path or "<attrs generated" in path:
        return "attrs"
    return "other (built-ins, enum, datetime, ...)"


def _matches(key: tuple[str, int, str], where: tuple[str, ...]) -> bool:
    """Whether a profile's function is one of `where`: a file (a part of its path), then names."""
    filename, _, name = key
    path, *functions = where
    return path in filename.replace(os.sep, "/") and name in functions


def _short(key: tuple[str, int, str]) -> str:
    filename, line, name = key
    path = filename.replace(os.sep, "/")
    if "/ppk/" in path:
        path = "ppk/" + path.rsplit("/ppk/", 1)[1]
    elif "/site-packages/" in path:
        path = path.rsplit("/site-packages/", 1)[1]
    else:
        path = re.sub(r"^.*/python3\.\d+/", "", path)
    return f"{path}:{line}({name})" if line else name


def profile_database(path: Path) -> dict[str, Any]:
    """The profile child: one `audit(engine)` of the database, in this process, under cProfile."""
    store = open_store(str(path), create=False)
    profiler = cProfile.Profile()
    try:
        start = time.perf_counter()
        profiler.enable()
        report = audit_module.audit(store.engine)
        profiler.disable()
        elapsed_s = time.perf_counter() - start
    finally:
        store.close()
    require(report.clean, f"the profiled audit found {len(report.findings)} finding(s)")
    stats = pstats.Stats(profiler)
    table = stats.stats  # type: ignore[attr-defined]
    audit_keys = [key for key in table if _matches(key, ("adapters/audit.py", "audit"))]
    require(len(audit_keys) == 1, "the profile holds one audit()")
    total_s = table[audit_keys[0]][3]
    stages = []
    for label, callee, caller in STAGES:
        seconds, calls = 0.0, 0
        for key, (_, primitive, _, cumulative, callers) in table.items():
            if not _matches(key, callee):
                continue
            if caller is None:
                seconds, calls = seconds + cumulative, calls + primitive
                continue
            for caller_key, edge in callers.items():
                if _matches(caller_key, caller):
                    seconds, calls = seconds + edge[3], calls + edge[1]
        stages.append({"stage": label, "s": seconds, "share": seconds / total_s, "calls": calls})
    # What decide's and fold's own pre- and postconditions cost: the wrapper less their bodies.
    wrapped, decide_s, fold_s = (stage["s"] for stage in stages if stage["stage"].strip().startswith(_OWN))
    contracts_s = wrapped - decide_s - fold_s
    at = next(index for index, stage in enumerate(stages) if "fold's own code" in stage["stage"]) + 1
    stages.insert(
        at,
        {
            "stage": "      decide's and fold's own contracts (the difference)",
            "s": contracts_s,
            "share": contracts_s / total_s,
            "calls": 0,
        },
    )
    origins: Counter[str] = Counter()
    for (filename, _, name), (_, _, own_s, _, _) in table.items():
        origins[_origin(filename, name)] += own_s
    own_total_s = sum(origins.values())
    top = sorted(table.items(), key=lambda item: -item[1][3])[: PROFILE_ROWS + 1]
    return {
        "entries": report.entries,
        "accounts": report.accounts,
        "profiled_s": elapsed_s,
        "contracts": __debug__,
        "stages": stages,
        "own_time_by_origin": [
            {"origin": origin, "s": own_s, "share": own_s / own_total_s}
            for origin, own_s in origins.most_common()
        ],
        "top_cumulative": [
            {
                "function": _short(key),
                "calls": primitive,
                "cumulative_s": cumulative,
                "own_s": own_s,
                "share": cumulative / total_s,
            }
            for key, (_, primitive, own_s, cumulative, _) in top
            if not _matches(key, ("bench/audit.py", "profile_database"))
        ][:PROFILE_ROWS],
    }


# --- The report -----------------------------------------------------------------------------------


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def _rounded(value: Any) -> Any:
    """`value` with every float to 4 significant decimals, short enough to read."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {str(key): _rounded(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(item) for item in value]
    return value


def print_report(s: dict[str, Any]) -> None:
    print(
        f"ppk audit benchmark: Python {s['python']}, SQLite {s['sqlite_version']}, "
        f"SQLAlchemy {s['sqlalchemy']}, icontract {s['icontract']}, {s['cpus']} CPUs; `ppk audit` "
        f"with contracts on; adapters/audit.py sha256 {s['audit_py_sha256'][:12]}; wall time "
        f"{s['wall_s']:.0f} s; load average (1 min) "
        f"{s['load_average']['start']:.2f} at the start, {s['load_average']['end']:.2f} at the end"
    )
    small, large = s["databases"]
    if s["audit_py_changed_during_run"]:
        print(
            f"WARNING: adapters/audit.py changed on disk during the run (sha256 "
            f"{s['audit_py_sha256_end'][:12]} at the end): the children started after the change ran it."
        )
    timing = s["timing"]
    print(
        f"{s['plan']['rounds']} round(s), the sizes alternating; every child is a whole process, start-up "
        f"included; figures are medians over the rounds, ratios the median of each round's "
        f"larger/smaller; spread = (max-min)/median of the wall times; peak = the child's own ru_maxrss "
        f"(it cannot read below the launcher's {timing['launcher_floor_mib']:.1f} MiB)."
    )
    print()
    header = (
        "figure",
        "events",
        "entries",
        "wall s",
        "CPU s",
        "events/s",
        "entries/s",
        "events/CPU s",
        "peak MiB",
    )
    rows: list[tuple[str, ...]] = []

    def row(label: str, figures: dict[str, Any], database: dict[str, Any] | None) -> None:
        built = database["built"] if database else {"events": 0, "entries": 0}
        rows.append(
            (
                label,
                f"{built['events']:,}",
                f"{built['entries']:,}",
                f"{figures['wall_s']:.2f} ±{figures['spread'] / 2:.0%}",
                f"{figures['cpu_s']:.2f}",
                f"{figures['events_per_s']:,.0f}" if database else "",
                f"{figures['entries_per_s']:,.0f}" if database else "",
                f"{figures['events_per_cpu_s']:,.0f}" if database else "",
                f"{figures['peak_mib']:.1f}",
            )
        )

    row("`ppk audit`, empty database (start-up)", timing["startup"], None)
    for what, label in (("audit", "`ppk audit`"), ("verify", "`docs/verify_chain.py`")):
        for database in (small, large):
            accounts = database["built"]["accounts"]
            row(
                f"{label}, {database['label']} ({accounts:,} accounts)",
                timing[what][database["label"]],
                database,
            )
    print_table(header, rows, (False, True, True, True, True, True, True, True, True))
    print()
    audit, verify = timing["audit"], timing["verify"]
    print(
        f"`ppk audit`, {large['label']}/{small['label']}: events/s "
        f"**{audit['ratio_events_per_s']:.2f}** (net of start-up {audit['ratio_events_per_s_net']:.2f}, "
        f"per CPU second "
        f"{audit['ratio_events_per_cpu_s']:.2f}); peak memory **{audit['ratio_peak_mib']:.2f}**. Net of "
        f"start-up ({timing['startup']['wall_s']:.2f} s): "
        + ", ".join(
            f"{database['label']} {audit[database['label']]['events_per_s_net'] or 0:,.0f} events/s"
            for database in (small, large)
        )
        + "."
    )
    print(
        f"`verify_chain.py`, {large['label']}/{small['label']}: events/s "
        f"{verify['ratio_events_per_s']:.2f} (per CPU second {verify['ratio_events_per_cpu_s']:.2f}); "
        f"peak memory {verify['ratio_peak_mib']:.2f}."
    )
    print()
    for database in (small, large):
        built = database["built"]
        print(
            f"{database['label']}: {built['accounts']:,} accounts, {built['entries']:,} entries "
            f"({built['events'] / built['entries']:.2f} events/entry), {built['losses']:,} losses, "
            f"{built['payouts']:,} payouts ({built['confirmed']:,} confirmed), "
            f"{built['encoded_bytes'] / built['entries']:.0f} encoded bytes/entry, a "
            f"{built['file_bytes'] / 1e6:.1f} MB file; built in {built['build_wall_s']:.1f} s "
            f"({built['processes']} process(es), contracts {'on' if built['contracts'] else 'off'}); "
            f"checked: `ppk audit --json` clean ({database['verify_s']:.1f} s, it also recorded the "
            f"checkpoint) and `verify_chain.py` agrees on {database['digest'][:17]}…"
        )
    kinds = large["built"]["kinds"]
    total = sum(kinds.values())
    print(
        f"Mix ({large['label']}): "
        + ", ".join(f"{kind} {count / total:.1%}" for kind, count in kinds.items())
    )
    print()
    p = s["profile"]
    print(
        f"Profile: one `audit(engine)` of the {small['label']} database in-process under cProfile, contracts "
        f"{'on' if p['contracts'] else 'off'}: {p['profiled_s']:.1f} s "
        f"({p['entries'] / p['profiled_s']:,.0f} entries/s; the profiler inflates Python calls, so read "
        f"shares and order, not seconds)"
    )
    print()
    print_table(
        ("where (cumulative)", "s", "share", "calls"),
        [
            (stage["stage"], f"{stage['s']:.2f}", f"{stage['share']:.1%}", f"{stage['calls']:,}")
            for stage in p["stages"]
        ],
        (False, True, True, True),
    )
    print()
    print_table(
        ("own time by origin", "s", "share"),
        [
            (origin["origin"], f"{origin['s']:.2f}", f"{origin['share']:.1%}")
            for origin in p["own_time_by_origin"]
        ],
        (False, True, True),
    )
    print()
    print_table(
        (f"top {PROFILE_ROWS} by cumulative time", "calls", "cumulative s", "share", "own s"),
        [
            (
                f"`{item['function']}`",
                f"{item['calls']:,}",
                f"{item['cumulative_s']:.2f}",
                f"{item['share']:.1%}",
                f"{item['own_s']:.2f}",
            )
            for item in p["top_cumulative"]
        ],
        (False, True, True, True, True),
    )
    print()
    print(f"Databases in {s['folder']}" + (" (kept)." if s["kept"] else " (deleted)."))


def audit_py_sha256() -> str:
    """The SHA-256 of the audit's source, `adapters/audit.py`, as it is on disk now: every `ppk audit`
    child imports it when it starts, so a change made during the run reaches the later children."""
    return hashlib.sha256(Path(audit_module.__file__).read_bytes()).hexdigest()


def run(plan: Plan, quick: bool, folder_name: str | None, keep: bool) -> int:
    start = time.perf_counter()
    load_start = os.getloadavg()[0]
    audit_sha = audit_py_sha256()
    kept = keep or folder_name is not None
    with work_folder(folder_name, keep) as folder:
        databases = tuple(
            make_database(
                folder, _label(blocks * plan.accounts_per_block * plan.events_per_account), blocks, plan
            )
            for blocks in plan.blocks
        )
        assert len(databases) == 2
        empty = folder / "audit-empty.db"
        remove_database(empty)
        _checked(run_child([*ppk_command(), "db", "upgrade", "--db", str(empty)]), "ppk db upgrade (empty)")
        timing = measure(plan, databases, empty)
        sys.stderr.write(f"profile: one audit of {databases[0].path.name} under cProfile\n")
        profiled = _checked(
            run_child([sys.executable, __file__, "--profile-db", str(databases[0].path)]), "the profile child"
        )
        profile = _last_json(profiled, "the profile child")
        if not kept:
            for path in (*(database.path for database in databases), empty):
                remove_database(path)
    audit_sha_end = audit_py_sha256()
    report = {
        "bench": "ppk audit",
        "quick": quick,
        "python": platform.python_version(),
        "sqlite_version": sqlite3.sqlite_version,
        "sqlalchemy": _version("sqlalchemy"),
        "icontract": _version("icontract"),
        "cpus": os.cpu_count(),
        "audit_py_sha256": audit_sha,
        "audit_py_sha256_end": audit_sha_end,
        "audit_py_changed_during_run": audit_sha_end != audit_sha,
        "load_average": {"start": load_start, "end": os.getloadavg()[0]},
        "plan": attrs.asdict(plan),
        "folder": str(folder),
        "kept": kept,
        "databases": [
            {
                "label": database.label,
                "built": database.built,
                "digest": database.digest,
                "verify_s": database.verify_s,
            }
            for database in databases
        ],
        "timing": timing,
        "profile": profile,
        "wall_s": time.perf_counter() - start,
    }
    print_report(report)
    print(json.dumps(_rounded(report), sort_keys=True))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run of a few seconds: 2 000 and 20 000 events"
    )
    parser.add_argument("--dir", help="where the databases go (kept); a temporary folder by default")
    parser.add_argument("--keep", action="store_true", help="keep the databases (and say where they are)")
    # The children: the build (under python -O) and the profile.
    parser.add_argument("--build", metavar="PATH", help=argparse.SUPPRESS)
    parser.add_argument("--blocks", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--accounts-per-block", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--events-per-account", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--profile-db", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.build is not None:
        built = build_database(
            Path(args.build), args.blocks, args.accounts_per_block, args.events_per_account
        )
        print(json.dumps(built, sort_keys=True))
        return 0
    if args.profile_db is not None:
        print(json.dumps(profile_database(Path(args.profile_db)), sort_keys=True))
        return 0
    return run(PLAN_QUICK if args.quick else PLAN_FULL, args.quick, args.dir, args.keep)


if __name__ == "__main__":
    sys.exit(main())
