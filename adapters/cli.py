"""The `ppk` command line: a thin shell that reads JSON Lines, runs the pure kernel, prints results.

Functional core, imperative shell: `replay_lines` reads one line at a time, asks the codec what it
says and the kernel what to do with it, and keeps the accounts in memory; the click commands only
open the input, print each result as it comes and map failures to the exit statuses their help
states (spec.md#results).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import IO, Final, NoReturn

import click

from ppk.adapters import jsonl
from ppk.kernel.state import Account
from ppk.kernel.transitions import execute

EXIT_INPUT_UNREADABLE: Final = 2
"""The exit status when the input cannot be opened or read."""

EXIT_OUTPUT_UNWRITABLE: Final = 1
"""The exit status when the results cannot be written (say, the reader of a pipe went away)."""


def replay_lines(stream: IO[bytes], accounts: dict[str, Account]) -> Iterator[jsonl.JsonObject]:
    """Run each non-blank line of `stream` through the kernel, in order, and yield its result.

    `accounts` (account id -> Account) is read and updated as each command is executed, so that
    after the iterator ends it holds every account the stream opened, as the stream left it.
    """
    for line in jsonl.read_lines(stream):
        decoded = jsonl.decode(line)
        if isinstance(decoded, jsonl.Malformed):
            yield jsonl.malformed_result(line.number, decoded)
            continue
        decision, account = execute(accounts.get(decoded.account), decoded)
        if account is not None:
            accounts[decoded.account] = account
        yield jsonl.decision_result(line.number, decoded, decision)


def account_views(accounts: dict[str, Account]) -> Iterator[jsonl.JsonObject]:
    """spec.md#results: the view of every account, sorted by account id code point by code point."""
    for account_id in sorted(accounts):
        yield jsonl.account_view(accounts[account_id])


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
    accounts: dict[str, Account] = {}
    try:
        opened = _open_input(file)
    except OSError as error:
        _fail_input(name, error)
    try:
        with opened as stream:
            results = replay_lines(stream, accounts)
            while True:
                try:
                    result = next(results)
                except StopIteration:
                    break
                except OSError as error:
                    _fail_input(name, error)
                _write(output, result)
        if show:
            for view in account_views(accounts):
                _write(output, view)
    except BrokenPipeError:
        # The reader went away: say nothing more, and keep Python from failing on its final flush.
        os.dup2(os.open(os.devnull, os.O_WRONLY), output.fileno())
        sys.exit(EXIT_OUTPUT_UNWRITABLE)
