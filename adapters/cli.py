"""The `ppk` command line: a thin shell that reads JSON Lines, runs the pure kernel, prints results.

Functional core, imperative shell: `replay_lines` reads one line at a time, asks the codec what it
says and hands each command to a store, the one execution path (`ppk replay` uses the in-memory
store); the click commands only open the input, print each result as it comes and map failures to
the exit statuses their help states (spec.md#results).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
from collections.abc import Iterator
from typing import IO, Any, Final, NoReturn

import click

from ppk.adapters import jsonl
from ppk.adapters.store import MemoryStore, Store

EXIT_INPUT_UNREADABLE: Final = 2
"""The exit status when the input cannot be opened or read."""

EXIT_OUTPUT_UNWRITABLE: Final = 1
"""The exit status when the results cannot be written (say, the reader of a pipe went away)."""

EXIT_COUNTEREXAMPLE: Final = 1
"""The exit status of `ppk check` when the state machines found a counterexample."""

EXIT_NOT_INSTALLED: Final = 2
"""The exit status of `ppk check` when Hypothesis is not installed."""

CHECK_BATCH_EXAMPLES: Final = 4
"""Examples per machine between two progress lines of `ppk check` (and two looks at the clock)."""


def replay_lines(stream: IO[bytes], store: Store) -> Iterator[jsonl.JsonObject]:
    """Run each non-blank line of `stream` through the store, in order, and yield its result."""
    for line in jsonl.read_lines(stream):
        decoded = jsonl.decode(line)
        if isinstance(decoded, jsonl.Malformed):
            yield jsonl.malformed_result(line.number, decoded)
            continue
        yield jsonl.decision_result(line.number, decoded, store.execute(decoded))


def account_views(store: Store) -> Iterator[jsonl.JsonObject]:
    """spec.md#results: the view of every account, sorted by account id code point by code point."""
    for account_id in store.account_ids():
        account = store.account(account_id)
        assert account is not None, "a store lists only the accounts it has"
        yield jsonl.account_view(account, store.payouts(account_id))


@click.group()
def main() -> None:
    """ppk: the partial-payment settlement kernel.

    \b
    Exit status: that of the command run; 2 when the command line is wrong.
    """


def _fail_input(name: str, error: OSError) -> NoReturn:
    reason = error.strerror or str(error)
    click.echo(f"ppk replay: cannot read {name}: {reason}", err=True)
    sys.exit(EXIT_INPUT_UNREADABLE)


def _open_input(file: str) -> contextlib.AbstractContextManager[IO[bytes]]:
    if file == "-":
        # Standard input is read as bytes too: bad UTF-8 is one malformed line, never a crash.
        return contextlib.nullcontext(sys.stdin.buffer)
    return open(file, "rb")


def _write(output: IO[bytes], value: jsonl.JsonObject) -> None:
    output.write(jsonl.encode_line(value))
    # Each result is flushed as it is made, so a caller feeding commands one by one sees each answer.
    output.flush()


@main.command()
@click.option("--show", is_flag=True, help="After the results, print one view line per account.")
@click.argument("file", required=False, default="-", type=click.Path(dir_okay=False, allow_dash=True))
def replay(show: bool, file: str) -> None:
    """Replay JSON Lines commands from FILE (or standard input) through the kernel, in memory.

    Prints one result line per non-blank input line, in order; with --show, then one view line per
    account, sorted by account id.

    \b
    Exit status:
      0  every line was read, even if some were rejected
      1  the results could not be written (the reader of the output went away)
      2  the input cannot be opened or read, or the arguments are wrong
    """
    name = "standard input" if file == "-" else file
    output = sys.stdout.buffer
    # In memory: every recorded id and payout stays until the end (the durable store keeps them on disk).
    store = MemoryStore()
    try:
        opened = _open_input(file)
    except OSError as error:
        _fail_input(name, error)
    try:
        with opened as stream:
            results = replay_lines(stream, store)
            while True:
                try:
                    result = next(results)
                except StopIteration:
                    break
                except OSError as error:
                    _fail_input(name, error)
                _write(output, result)
        if show:
            for view in account_views(store):
                _write(output, view)
    except BrokenPipeError:
        # The reader went away: say nothing more, and keep Python from failing on its final flush.
        os.dup2(os.open(os.devnull, os.O_WRONLY), output.fileno())
        sys.exit(EXIT_OUTPUT_UNWRITABLE)


@main.command()
@click.option(
    "--budget",
    type=click.FloatRange(min=1),
    default=60,
    show_default=True,
    help="Seconds to explore for; the batch running when it ends is finished.",
)
@click.option(
    "--failing-commands",
    type=click.Path(dir_okay=False),
    default="ppk-check-failure.jsonl",
    show_default=True,
    help="Where to write a failing program's commands as JSON Lines, for ppk replay.",
)
@click.option(
    "--profile",
    type=click.Choice(["deep", "ci"]),
    default="deep",
    show_default=True,
    help="The Hypothesis profile: deep (fresh examples, long programs) or ci (derandomized, short).",
)
def check(budget: float, failing_commands: str, profile: str) -> None:
    """Model-check the kernel for BUDGET seconds with the state machines' deep profile.

    Runs the settlement machine (every command, in lockstep with the reference model, and forgeries
    of the books it reaches) and the crash-and-retry machine in turn, fresh examples each batch,
    printing what was explored: runs, steps, commands, their outcomes, forgeries caught and the
    crash points hit. On a failure it prints the shrunk failing program as Hypothesis does and, when
    that program needs no crash or restart, writes its commands as JSON Lines that `ppk replay`
    reproduces.

    \b
    Exit status:
      0  no counterexample within the budget
      1  a counterexample was found
      2  Hypothesis is not installed (pip install 'ppk[check]'), or the arguments are wrong
    """
    try:
        from hypothesis import settings  # noqa: PLC0415 (an optional dependency, only for this command)
        from hypothesis.stateful import run_state_machine_as_test  # noqa: PLC0415

        from ppk.stateful_tests import machines  # noqa: PLC0415
    except ImportError as error:
        click.echo(f"ppk check needs Hypothesis: pip install 'ppk[check]' ({error})", err=True)
        sys.exit(EXIT_NOT_INSTALLED)

    explored = machines.EXPLORED
    # One failure, shrunk: shrinking several distinct ones can take Hypothesis minutes each.
    batch = settings(
        settings.get_profile(profile),
        max_examples=CHECK_BATCH_EXAMPLES,
        database=None,
        report_multiple_bugs=False,
    )
    started = time.monotonic()
    click.echo(f"ppk check: exploring for {budget:g} s with the {profile} profile")
    while time.monotonic() - started < budget:
        for machine in (machines.SettlementMachine, machines.CrashRetryMachine):
            try:
                run_state_machine_as_test(machine, settings=batch)
            except Exception as error:
                _report_failure(machine, error, failing_commands)
                _print_explored(explored, time.monotonic() - started)
                sys.exit(EXIT_COUNTEREXAMPLE)
        _print_explored(explored, time.monotonic() - started)
    click.echo("ppk check: no counterexample found")


def _print_explored(explored: Any, elapsed_s: float) -> None:
    crash_points = ", ".join(f"{point} {count}" for point, count in sorted(explored.crash_points.items()))
    outcomes = len(explored.outcomes)
    click.echo(
        f"{elapsed_s:7.1f} s  runs {explored.runs}  steps {explored.steps}  commands {explored.commands}  "
        f"distinct outcomes {outcomes}  forgeries caught {explored.forgeries}  "
        f"crash points hit: {crash_points or 'none'}"
    )


def _report_failure(machine: type, error: Exception, failing_commands: str) -> None:
    click.echo(f"\nppk check: {machine.__name__} found a counterexample:\n", err=True)
    failures = error.exceptions if isinstance(error, BaseExceptionGroup) else (error,)
    for failure in failures:
        # Hypothesis puts the shrunk failing program in the exception's notes.
        click.echo("".join(traceback.format_exception_only(failure)), err=True)
    lines = machine.last_lines  # type: ignore[attr-defined]
    if lines is None:
        click.echo("(the failing program needs a crash or a restart: no JSON Lines written)", err=True)
        return
    with open(failing_commands, "wb") as output:
        for line in lines:
            output.write(line + b"\n")
    click.echo(f"its commands are in {failing_commands}: ppk replay --show {failing_commands}", err=True)
