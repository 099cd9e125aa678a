"""Issue 13's goals, every one in one Markdown table: each figure beside its baseline, measured in the
same run, the ratio, the goal and whether it is met; the last line is one JSON object with every figure.

Run `python bench/perf.py` (the full sizes; tens of minutes on 2 shared cores) or `--quick` (a smoke run
of small sizes, under 2 minutes: CI runs it to see that everything runs, not how fast). Rows:

1. `ppk replay --show`, contracts on (`python`) and off (`python -O`), and the reference model
   (`stateful_tests/reference.py`, plain dicts and ints, no checks) over the same bytes (bench/stream.py:
   fund / record_balance / settle on 50 accounts): whole processes, CPU seconds, median of the rounds.
2. Contracts on vs off per transition: bench/transitions.py's batch on the 1 000-entry account.
3. `ppk apply` (SQLite, WAL, synchronous=FULL, group commit) vs `ppk replay` on the same file (wall
   time: durability is spent waiting, not computing); the store one command per transaction vs a raw
   sqlite3 loop doing the same row writes (bench/store.py, section 1).
4. Per-command cost against one account's history through the SQL store (bench/store.py, section 3),
   and the seed's full rescan as the baseline (bench/rescan.py), at the youngest and oldest ages.
5. PostgreSQL, 8 writers on distinct accounts vs 1, and a raw psycopg loop doing the same writes
   (bench/store.py, section 4).
6. `ppk audit` events/s and peak memory at two ledger sizes (bench/audit.py).
7. `ppk apply`'s peak memory (ru_maxrss) at two file lengths.
8. The state machines (stateful_tests) in the `ci` Hypothesis profile: steps per second.

The benches of rows 2-6 run as child processes and are read from their JSON last line (one after
another; with --quick at the same time, to fit CI's time). Timed processes run through bench/audit.py's
launcher, which reports each child's own CPU time and peak memory. bench/README.md explains more.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Final

import attrs
import rescan
from audit import ROOT, Run, _checked, _environment, _last_json, _rounded, ppk_command, run_child
from mix import require
from report import print_table

BENCH: Final = Path(__file__).resolve().parent


@attrs.frozen(kw_only=True)
class Plan:
    commands: int
    """Lines of row 1's and row 3's stream."""
    accounts: int
    rounds: int
    """Rounds of rows 1 and 3: in each, every process once, in a rotated order."""
    apply_lines: tuple[int, int]
    """Row 7's file lengths: one copy of the stream, and `ratio` copies on distinct accounts."""
    apply_accounts: int
    rescan_ages: tuple[int, int]
    rescan_cycles: int
    rescan_rounds: int
    machine_examples: int | None
    """Examples per state machine (None: the `ci` profile's own)."""


PLAN_FULL: Final = Plan(
    commands=20_000,
    accounts=50,
    rounds=3,
    apply_lines=(100_000, 1_000_000),
    apply_accounts=50,
    rescan_ages=(100, 100_000),
    rescan_cycles=3,
    rescan_rounds=3,
    machine_examples=None,
)
PLAN_QUICK: Final = Plan(
    commands=1_000,
    accounts=50,
    rounds=1,
    apply_lines=(1_000, 10_000),
    apply_accounts=50,
    rescan_ages=(100, 1_000),
    rescan_cycles=1,
    rescan_rounds=1,
    machine_examples=2,
)
FLAT_MAX: Final = 1.25
"""A cost or a peak "the same" at two sizes: their ratio at most this (the rounds' noise is about 10 %)."""
QUICK_NOTE: Final = "--quick (smoke sizes, the benches at the same time: no figure means anything)"
AUDIT_EVENTS_PER_S_GOAL: Final = 100_000
CHILD_TIMEOUT_S: Final = 4 * 3_600


# --- Child processes ------------------------------------------------------------------------------


def ppk_off() -> list[str]:
    """`ppk` under `python -O`: every contract off (icontract reads `__debug__` at import)."""
    return [sys.executable, "-O", ppk_command()[-1]]


def reference_command(path: Path) -> list[str]:
    """The reference model over the file, as a process of its own (bench/reference_replay.py)."""
    return [sys.executable, str(BENCH / "reference_replay.py"), str(path)]


@attrs.define
class Bench:
    """One of the other benches, run as a child process: its figures are its JSON last line."""

    name: str
    process: subprocess.Popen[bytes]
    out: IO[bytes]
    err: IO[bytes]
    started_at: float

    @classmethod
    def start(cls, name: str, quick: bool) -> Bench:
        out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()  # noqa: SIM115 (closed in result)
        command = [sys.executable, str(BENCH / f"{name}.py"), *(["--quick"] if quick else [])]
        sys.stderr.write(f"bench/{name}.py{' --quick' if quick else ''}: started\n")
        process = subprocess.Popen(command, stdout=out, stderr=err, env=_environment(), cwd=ROOT)
        return cls(name=name, process=process, out=out, err=err, started_at=time.perf_counter())

    def result(self) -> dict[str, Any]:
        status = self.process.wait(timeout=CHILD_TIMEOUT_S)
        self.out.seek(0)
        self.err.seek(0)
        stdout = self.out.read().decode("utf-8", "replace")
        stderr = self.err.read().decode("utf-8", "replace")
        self.out.close()
        self.err.close()
        require(status == 0, f"bench/{self.name}.py exited with {status}:\n{stderr[-3000:]}")
        sys.stderr.write(f"bench/{self.name}.py: done in {time.perf_counter() - self.started_at:.0f} s\n")
        figures: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
        return figures


def write_stream(path: Path, commands: int, accounts: int, copies: int = 1) -> None:
    """bench/stream.py under `python -O` (its own checks are `require`, which -O keeps)."""
    command = [sys.executable, "-O", str(BENCH / "stream.py"), str(path)]
    command += ["--commands", str(commands), "--accounts", str(accounts), "--copies", str(copies)]
    subprocess.run(command, env=_environment(), check=True, timeout=CHILD_TIMEOUT_S)


def median_of(runs: list[Run], figure: str) -> float:
    return statistics.median(getattr(run, figure) for run in runs)


# --- Row 1: replay on and off vs the reference; row 3: apply vs replay -----------------------------


def measure_processes(plan: Plan, folder: Path, stream: Path) -> dict[str, Any]:
    """Rows 1 and 3a: every process once a round, in a rotated order; their outputs checked."""
    database = folder / "apply.db"
    ways: dict[str, list[str]] = {
        "replay_show_on": [*ppk_command(), "replay", "--show", str(stream)],
        "replay_show_off": [*ppk_off(), "replay", "--show", str(stream)],
        "reference": reference_command(stream),
        "replay_on": [*ppk_command(), "replay", str(stream)],
        "apply_on": [*ppk_command(), "apply", "--db", str(database), str(stream)],
    }
    names = list(ways)
    runs: dict[str, list[Run]] = {name: [] for name in names}
    outputs: dict[str, str] = {}
    for name in names:  # untimed: the bytecode caches written, the files in the page cache
        sys.stderr.write(f"  warm-up: {name}\n")
        rescan.remove_database(database)
        _checked(run_child(ways[name]), name, (0, 1) if name == "apply_on" else (0,))
    for round_index in range(plan.rounds):
        shift = round_index * len(names) // max(plan.rounds, 1)
        for name in names[shift:] + names[:shift]:
            sys.stderr.write(f"  round {round_index + 1}: {name}\n")
            if name == "apply_on":
                rescan.remove_database(database)
            # ppk apply exits with 1 when some lines were rejected, as the stream's refusals are.
            run = _checked(run_child(ways[name]), name, (0, 1) if name == "apply_on" else (0,))
            outputs.setdefault(name, run.stdout)
            runs[name].append(attrs.evolve(run, stdout="", stderr=""))
    rescan.remove_database(database)
    lines = len(outputs["replay_on"].splitlines())
    require(lines == plan.commands, f"ppk replay printed {lines} results for {plan.commands} lines")
    require(outputs["replay_show_on"] == outputs["replay_show_off"], "replay printed otherwise under -O")
    require(outputs["apply_on"] == outputs["replay_on"], "ppk apply's results are not ppk replay's")
    agree = outputs["reference"] == outputs["replay_show_on"]
    if not agree:
        # The reference words its messages in its own way; the rest must be the same.
        def shape(text: str) -> list[Any]:
            values = [json.loads(line) for line in text.splitlines()]
            for value in values:
                if isinstance(value.get("error"), dict):
                    value["error"].pop("message", None)
            return values

        require(shape(outputs["reference"]) == shape(outputs["replay_show_on"]), "the reference disagrees")
    statuses = Counter(json.loads(line)["status"] for line in outputs["replay_on"].splitlines())

    def figures(name: str) -> dict[str, Any]:
        return {
            "cpu_s": median_of(runs[name], "cpu_s"),
            "wall_s": median_of(runs[name], "wall_s"),
            "peak_mib": median_of(runs[name], "peak_mib"),
            "rounds_cpu_s": [run.cpu_s for run in runs[name]],
            "rounds_wall_s": [run.wall_s for run in runs[name]],
        }

    def paired(numerator: str, denominator: str, figure: str) -> float:
        """`denominator`'s time over `numerator`'s (a throughput ratio), the median of each round's."""
        return statistics.median(
            getattr(d, figure) / getattr(n, figure)
            for n, d in zip(runs[numerator], runs[denominator], strict=True)
        )

    return {
        "lines": plan.commands,
        "statuses": dict(statuses),
        "reference_output_identical": agree,
        **{name: figures(name) for name in names},
        "ratio_on_reference": paired("replay_show_on", "reference", "cpu_s"),
        "ratio_off_reference": paired("replay_show_off", "reference", "cpu_s"),
        "ratio_on_off": paired("replay_show_on", "replay_show_off", "cpu_s"),
        "ratio_apply_replay": paired("apply_on", "replay_on", "wall_s"),
        "ratio_apply_replay_cpu": paired("apply_on", "replay_on", "cpu_s"),
    }


# --- Row 7: ppk apply's peak memory against the file's length --------------------------------------


def measure_apply_memory(plan: Plan, folder: Path) -> dict[str, Any]:
    short, long = plan.apply_lines
    require(long % short == 0, "the long file is copies of the short one")
    files = {}
    for lines in (short, long):
        files[lines] = folder / f"apply-{lines}.jsonl"
        sys.stderr.write(f"  writing {lines:,} lines\n")
        write_stream(files[lines], short, plan.apply_accounts, lines // short)
    database = folder / "apply-memory.db"
    figures: dict[str, Any] = {}
    for lines in (short, long):
        sys.stderr.write(f"  ppk apply of {lines:,} lines\n")
        rescan.remove_database(database)
        run = _checked(
            run_child([*ppk_command(), "apply", "--db", str(database), str(files[lines])]),
            f"ppk apply of {lines} lines",
            (0, 1),
        )
        results = run.stdout.count("\n")
        require(results == lines, f"ppk apply printed {results} results for {lines} lines")
        figures[str(lines)] = {
            "peak_mib": run.peak_mib,
            "wall_s": run.wall_s,
            "cpu_s": run.cpu_s,
            "lines_per_s": lines / run.wall_s,
        }
        rescan.remove_database(database)
        files[lines].unlink()
    figures["ratio_peak_mib"] = figures[str(long)]["peak_mib"] / figures[str(short)]["peak_mib"]
    return figures


# --- Row 8: the state machines' steps per second ---------------------------------------------------


def machines_child(examples: int | None) -> None:
    """Each state machine of stateful_tests in the `ci` profile (fewer examples if asked), counting its
    steps: Hypothesis checks the invariants once when a machine starts and once after every step."""
    from hypothesis import settings  # noqa: PLC0415
    from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test  # noqa: PLC0415

    from ppk.stateful_tests.machines import CrashRetryMachine, SettlementMachine  # noqa: PLC0415
    from ppk.stateful_tests.sql_machines import SqlCrashRetryMachine, SqlSettlementMachine  # noqa: PLC0415

    checks: Counter[str] = Counter()
    starts: Counter[str] = Counter()
    original = RuleBasedStateMachine.check_invariants

    def counting(self: Any, *arguments: Any, **keywords: Any) -> Any:
        name = type(self).__name__
        checks[name] += 1
        if not self.__dict__.get("_perf_started"):
            self.__dict__["_perf_started"] = True
            starts[name] += 1
        return original(self, *arguments, **keywords)

    RuleBasedStateMachine.check_invariants = counting  # type: ignore[method-assign]
    profile = settings.get_profile("ci")
    chosen = profile if examples is None else settings(profile, max_examples=examples)
    report = {}
    for machine in (SettlementMachine, CrashRetryMachine, SqlSettlementMachine, SqlCrashRetryMachine):
        start = time.perf_counter()
        run_state_machine_as_test(machine, settings=chosen)
        seconds = time.perf_counter() - start
        name = machine.__name__
        steps = checks[name] - starts[name]
        report[name] = {"runs": starts[name], "steps": steps, "s": seconds, "steps_per_s": steps / seconds}
    print(json.dumps({"profile": "ci", "max_examples": chosen.max_examples, "machines": report}))


def measure_machines(plan: Plan) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--machines"]
    if plan.machine_examples is not None:
        command += ["--examples", str(plan.machine_examples)]
    run = _checked(run_child(command), "the state machines")
    figures: dict[str, Any] = _last_json(run, "the state machines")
    machines = figures["machines"].values()
    figures["steps"] = sum(m["steps"] for m in machines)
    figures["s"] = sum(m["s"] for m in machines)
    figures["steps_per_s"] = figures["steps"] / figures["s"]
    return figures


# --- The table ------------------------------------------------------------------------------------


def _met(ok: bool | None) -> str:
    return "—" if ok is None else ("**yes**" if ok else "**no**")


def table(s: dict[str, Any]) -> list[tuple[str, ...]]:
    """Goal, figure, baseline, ratio, goal, met: one row per figure of issue 13's goals."""
    rows: list[tuple[str, ...]] = []

    def row(  # noqa: PLR0917 (the table's six columns)
        label: str, figure: str, baseline: str, ratio: float | None, goal: str, ok: bool | None
    ) -> None:
        rows.append((label, figure, baseline, "" if ratio is None else f"{ratio:.2f}×", goal, _met(ok)))

    p = s["processes"]
    lines = f"{p['lines']:,} lines"
    reference = f"{p['reference']['cpu_s']:.2f} CPU s (reference model)"
    on, off = p["ratio_on_reference"], p["ratio_off_reference"]
    row(
        f"1. `ppk replay --show`, contracts on, {lines}",
        f"{p['replay_show_on']['cpu_s']:.2f} CPU s",
        reference,
        on,
        "≥ 0.5× (throughput)",
        on >= 0.5,
    )
    row(
        f"1. `ppk replay --show` under `python -O`, {lines}",
        f"{p['replay_show_off']['cpu_s']:.2f} CPU s",
        reference,
        off,
        "≥ 1.0×",
        off >= 1.0,
    )
    t = s["transitions"]["overhead"]
    row(
        f"2. per transition, {t['history_entries']:,}-entry account (transitions.py), on/off",
        f"{t['on_us']:.1f} µs on",
        f"{t['off_us']:.1f} µs off",
        t["ratio_on_off"],
        "≤ 2×",
        t["ratio_on_off"] <= 2,
    )
    ratio = p["ratio_apply_replay"]
    row(
        f"3. `ppk apply` (SQLite durable) vs `ppk replay`, {lines}",
        f"{p['lines'] / p['apply_on']['wall_s']:,.0f} lines/s",
        f"{p['lines'] / p['replay_on']['wall_s']:,.0f} lines/s",
        ratio,
        "≥ 0.5×",
        ratio >= 0.5,
    )
    one = s["store"]["sqlite"]["by_group"]["1"]
    row(
        "3. store one command per transaction vs raw sqlite3 (store.py §1)",
        f"{one['store']['commands_per_s']:,.0f} cmd/s",
        f"{one['raw']['commands_per_s']:,.0f} cmd/s",
        one["ratio_store_raw"],
        "≥ 0.5×",
        one["ratio_store_raw"] >= 0.5,
    )
    history = s["store"]["history"]["by_group"]
    young, old = s["store"]["plan"]["ages"]
    for group, by in history.items():
        how = "one per transaction" if group == "1" else f"groups of {int(group)}"
        row(
            f"4. ppk SQL store, µs/command at {old:,} vs {young:,} entries, {how}",
            f"{by[str(old)]['us_per_command']:,.0f} µs",
            f"{by[str(young)]['us_per_command']:,.0f} µs",
            by["ratio_largest_smallest"],
            f"flat (≤ {FLAT_MAX}×)",
            by["ratio_largest_smallest"] <= FLAT_MAX,
        )
    r = s["rescan"]
    seed_young, seed_old = (str(age) for age in s["plan"]["rescan_ages"])
    row(
        f"4. baseline: the seed's rescan, µs/command at {int(seed_old):,} vs {int(seed_young):,} entries",
        f"{r['us_per_command'][seed_old]:,.0f} µs",
        f"{r['us_per_command'][seed_young]:,.0f} µs",
        r["ratio_largest_smallest"],
        "(grows: the baseline)",
        None,
    )
    pg = s["store"]["postgresql"]
    if "skipped" in pg:
        row("5. PostgreSQL", f"skipped: {pg['skipped']}", "", None, "≥ 2.5×", None)
    else:
        many = pg["writers"]
        by, raw = pg["by_group"]["1"], pg["raw_psycopg"]
        row(
            f"5. PostgreSQL, {many} writers vs 1, one command per transaction",
            f"{by[str(many)]['commands_per_s']:,.0f} cmd/s",
            f"{by['1']['commands_per_s']:,.0f} cmd/s",
            by["ratio_many_one"],
            "≥ 2.5×",
            by["ratio_many_one"] >= 2.5,
        )
        row(
            f"5. raw psycopg loop, the same writes, {many} writers vs 1",
            f"{raw[str(many)]['commands_per_s']:,.0f} cmd/s",
            f"{raw['1']['commands_per_s']:,.0f} cmd/s",
            raw["ratio_many_one"],
            "(the server's own scaling)",
            None,
        )
        row(
            f"5. PostgreSQL store vs raw psycopg, {many} writers",
            f"{by[str(many)]['commands_per_s']:,.0f} cmd/s",
            f"{raw[str(many)]['commands_per_s']:,.0f} cmd/s",
            raw["ratio_store_raw"][str(many)],
            "(reported)",
            None,
        )
    a = s["audit"]
    small, large = (database["label"] for database in a["databases"])
    audit = a["timing"]["audit"]
    events_per_s = audit[large]["events_per_s"]
    row(
        f"6. `ppk audit` events/s, {large} events",
        f"{events_per_s:,.0f} events/s",
        f"{AUDIT_EVENTS_PER_S_GOAL:,} (the goal)",
        events_per_s / AUDIT_EVENTS_PER_S_GOAL,
        "≥ 1× (100,000 events/s)",
        events_per_s >= AUDIT_EVENTS_PER_S_GOAL,
    )
    row(
        f"6. `ppk audit` peak memory, {large} vs {small} events",
        f"{audit[large]['peak_mib']:.0f} MiB",
        f"{audit[small]['peak_mib']:.0f} MiB",
        audit["ratio_peak_mib"],
        f"the same (≤ {FLAT_MAX}×)",
        audit["ratio_peak_mib"] <= FLAT_MAX,
    )
    m = s["apply_memory"]
    short, long = s["plan"]["apply_lines"]
    row(
        f"7. `ppk apply` peak memory, {long:,} vs {short:,} lines",
        f"{m[str(long)]['peak_mib']:.0f} MiB",
        f"{m[str(short)]['peak_mib']:.0f} MiB",
        m["ratio_peak_mib"],
        f"independent of length (≤ {FLAT_MAX}×)",
        m["ratio_peak_mib"] <= FLAT_MAX,
    )
    machines = s["machines"]
    row(
        f"8. state machines, `ci` profile ({machines['max_examples']} examples each), steps/s",
        f"{machines['steps_per_s']:,.0f} steps/s",
        f"{machines['steps']:,} steps in {machines['s']:.0f} s",
        None,
        "(no goal: CI's cost)",
        None,
    )
    return rows


def print_report(s: dict[str, Any]) -> None:
    load = s["load_average"]
    print(
        f"ppk performance (issue 13): Python {s['python']}, {s['cpus']} CPUs, {s['cpu_model']}; "
        f"{QUICK_NOTE if s['quick'] else 'full sizes'}; "
        f"wall time {s['wall_s']:.0f} s; load average (1 min) {load['start']:.2f} at the start, "
        f"{load['end']:.2f} at the end, {load['max']:.2f} at most"
    )
    print()
    print_table(
        ("goal", "figure", "baseline", "ratio", "goal", "met"),
        table(s),
        (False, True, True, True, False, False),
    )


# --- The run --------------------------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


@contextlib.contextmanager
def work_folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="ppk-bench-perf-") as folder:
        yield Path(folder)


def run(plan: Plan, quick: bool) -> int:
    start = time.perf_counter()
    # Every process measured here runs from compiled bytecode, as an installed ppk does: a child that
    # may not write its bytecode compiles every module it imports at each start (under -O, whose
    # caches pip does not write, SQLAlchemy's too: 1.3 CPU s more per process).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    loads = [os.getloadavg()[0]]
    names = ("transitions", "store", "audit")
    results: dict[str, Any] = {}
    started: dict[str, Bench] = {}
    if quick:  # at the same time: a smoke run, to fit CI's time
        started = {name: Bench.start(name, quick) for name in names}
    try:
        own = measure_own(plan)
        for name, bench in started.items():
            results[name] = bench.result()
        for name in names if not quick else ():  # one after another, after this file's own rows
            results[name] = Bench.start(name, quick).result()
            sys.stderr.write(f"partial {name} {json.dumps(_rounded(results[name]), sort_keys=True)}\n")
            loads.append(os.getloadavg()[0])
    finally:
        for bench in started.values():
            if bench.process.poll() is None:  # this run failed before it: end the benches it started
                bench.process.kill()
                bench.process.wait()
    loads += own.pop("loads")
    report = {
        "bench": "ppk performance (issue 13)",
        "quick": quick,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "plan": attrs.asdict(plan),
        "load_average": {"start": loads[0], "end": os.getloadavg()[0], "max": max(loads)},
        **own,
        **results,
        "wall_s": time.perf_counter() - start,
    }
    print_report(report)
    print(json.dumps(_rounded(report), sort_keys=True))
    return 0


def measure_own(plan: Plan) -> dict[str, Any]:
    """Rows 1, 3a, 4's baseline, 7 and 8, with the load average after each."""
    loads = []
    with work_folder() as folder:
        stream = folder / "stream.jsonl"
        sys.stderr.write(f"rows 1 and 3: {plan.commands:,} lines on {plan.accounts} accounts\n")
        write_stream(stream, plan.commands, plan.accounts)
        processes = measure_processes(plan, folder, stream)
        loads.append(os.getloadavg()[0])
        sys.stderr.write(f"row 4: the seed's rescan at {plan.rescan_ages} entries\n")
        seed = rescan.measure(folder, plan.rescan_ages, plan.rescan_cycles, plan.rescan_rounds)
        loads.append(os.getloadavg()[0])
        sys.stderr.write(f"row 7: ppk apply's peak memory at {plan.apply_lines} lines\n")
        apply_memory = measure_apply_memory(plan, folder)
        loads.append(os.getloadavg()[0])
    sys.stderr.write("row 8: the state machines\n")
    machines = measure_machines(plan)
    loads.append(os.getloadavg()[0])
    own = {"processes": processes, "rescan": seed, "apply_memory": apply_memory, "machines": machines}
    sys.stderr.write(f"partial own {json.dumps(_rounded(own), sort_keys=True)}\n")
    return {**own, "loads": loads}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a smoke run of small sizes, under 2 minutes")
    parser.add_argument(
        "--report",
        metavar="JSON",
        type=Path,
        help="print the table again from a run's JSON last line (a file)",
    )
    parser.add_argument("--machines", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--examples", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.report is not None:
        print_report(json.loads(args.report.read_text().strip().splitlines()[-1]))
        return 0
    if args.machines:
        machines_child(args.examples)
        return 0
    return run(PLAN_QUICK if args.quick else PLAN_FULL, args.quick)


if __name__ == "__main__":
    sys.exit(main())
