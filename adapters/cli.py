"""The `ppk` command line: a thin shell that reads JSON Lines, runs the pure kernel, prints results.

Functional core, imperative shell: `replay_lines` and `apply_lines` read one line at a time, ask the
codec what it says and hand each command to a store, the one execution path (`ppk replay` uses the
in-memory store, `ppk apply` the SQL store, in committed groups); the click commands only open the
input and the database, print each result as it comes and map failures to the exit statuses their
help states (spec.md#results, spec.md#database).
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import queue
import signal
import stat
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import IO, TYPE_CHECKING, Any, Final, NoReturn, TypeVar

import click
import icontract

from ppk.adapters import jsonl
from ppk.adapters.store import DATABASE_DEFAULT, DATABASE_ENV, DatabaseError, MemoryStore, Store
from ppk.kernel.state import Command, Payout, minor_text
from ppk.kernel.transitions import account_problem, shown

if TYPE_CHECKING:
    from ppk.adapters.audit import Report as AuditReport
    from ppk.adapters.bank import SqliteBank
    from ppk.adapters.sql import SqlStore

# The durable commands import the SQL store (SQLAlchemy), the audit and rich where they run:
# `ppk replay` needs none of them, and importing them took most of its start-up (docs/performance.md).

_T = TypeVar("_T")

EXIT_INPUT_UNREADABLE: Final = 2
"""The exit status when the input cannot be opened or read."""

EXIT_REJECTED: Final = 1
"""The exit status of `ppk apply` when some lines were rejected."""

EXIT_DATABASE_UNUSABLE: Final = 2
"""The exit status when the database cannot be opened, is of another schema version, or fails."""

GROUP_LINES_MAX: Final = 1_000
"""`ppk apply`: the most lines committed in one group (one transaction)."""

READ_AHEAD_LINES_MAX: Final = 2 * GROUP_LINES_MAX
"""`ppk apply`: the most lines read ahead of the group being committed; memory is bounded by it."""

BANK_DEFAULT: Final = "ppk-bank.db"
"""`ppk dispatch`: the bank's file when `--bank` names none."""


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


EXIT_INTERRUPTED: Final = 130
EXIT_PIPE_CLOSED: Final = 141


@click.group(epilog="Example: ppk apply commands.jsonl && ppk audit")
@click.version_option(package_name="ppk", message="%(prog)s %(version)s")
def main() -> None:
    """ppk: the partial-payment settlement kernel.

    \b
    Exit status, for every command:
      0    success
      1    the command found something (rejected lines, audit findings, a counterexample)
      2    the command line is wrong, or the input, output or database cannot be used
      130  interrupted (Ctrl-C)
      141  the reader of the output went away (quietly, as other Unix tools)
    """


def run() -> None:
    """The `ppk` executable: `main`, with the exit statuses of its help (and the README) whatever happens."""
    # A reader that goes away (`ppk replay … | head`) ends ppk quietly, as it ends `cat`.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    # Ctrl-C (SIGINT) interrupts, also when a shell started ppk in the background with SIGINT ignored.
    signal.signal(signal.SIGINT, _interrupt)
    sys.unraisablehook = _unraisable
    if sys.stderr is None:
        sys.exit(2)  # nowhere to say anything
    if sys.stdout is None:
        print("ppk: standard output is closed: there is nowhere to write the results", file=sys.stderr)
        sys.exit(2)
    try:
        main(standalone_mode=False)
    except click.exceptions.Abort:
        _interrupted()
    except KeyboardInterrupt:
        _interrupted()
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except OSError as error:
        # Writing the output failed: a full disk (/dev/full), a stream closed under us.
        print(f"ppk: cannot write the output: {error.strerror or error}", file=sys.stderr)
        sys.exit(2)


# Set by the first Ctrl-C: `ppk check` must not report what a batch interrupted midway raises.
_INTERRUPTS: Final = threading.Event()


def _interrupt(_signal: int, _frame: object) -> NoReturn:
    """SIGINT: remembered, then raised in the main thread as KeyboardInterrupt."""
    _INTERRUPTS.set()
    raise KeyboardInterrupt


def _unraisable(unraisable: Any) -> None:
    """Python drops an exception raised in a garbage collector's callback or a finalizer.

    Hypothesis registers such a callback, and the garbage collector runs often, so a Ctrl-C that
    lands there would be lost, and `ppk check` would run on, to its budget. It is sent again, to land
    elsewhere, and nothing is printed of the one lost.
    """
    if issubclass(unraisable.exc_type, KeyboardInterrupt):
        again = threading.Timer(0.01, os.kill, (os.getpid(), signal.SIGINT))
        again.daemon = True
        again.start()
        return
    sys.__unraisablehook__(unraisable)


def _interrupted() -> NoReturn:
    print("ppk: interrupted; what was committed stays committed", file=sys.stderr)
    sys.exit(EXIT_INTERRUPTED)


def _fail_input(name: str, error: OSError) -> NoReturn:
    reason = error.strerror or str(error)
    click.echo(f"ppk {_command_name()}: cannot read {name}: {reason}", err=True)
    sys.exit(EXIT_INPUT_UNREADABLE)


def _command_name() -> str:
    """The command as typed after `ppk`: `audit`, or `db upgrade` for a subgroup's command."""
    names: list[str] = []
    context = click.get_current_context(silent=True)
    while context is not None and context.parent is not None:
        names.append(context.info_name or "")
        context = context.parent
    return " ".join(reversed(names)) or "ppk"


def _fail_database(error: DatabaseError) -> NoReturn:
    click.echo(f"ppk {_command_name()}: {error}", err=True)
    sys.exit(EXIT_DATABASE_UNUSABLE)


def _open_store(db: str | None, *, create: bool = True) -> SqlStore:
    from ppk.adapters.sql import open_store

    try:
        return open_store(db, create=create)
    except DatabaseError as error:
        _fail_database(error)


def _output_gone(output: IO[bytes], status: int = EXIT_PIPE_CLOSED) -> NoReturn:
    """The reader went away: say nothing more, and keep Python from failing on its final flush."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), output.fileno())
    sys.exit(status)


def _open_input(file: str) -> IO[bytes]:
    if file == "-":
        if sys.stdin is None:
            raise OSError(errno.EBADF, "it is closed")
        # Standard input is read as bytes too: bad UTF-8 is one malformed line, never a crash. Through
        # a reader of its own: `ppk apply` reads in a thread, which may still wait on it when the
        # interpreter shuts down, and Python aborts if that thread holds `sys.stdin`'s lock then.
        try:
            descriptor = sys.stdin.fileno()
        except io.UnsupportedOperation:  # an in-memory stdin, as a test harness gives: read it as is
            return sys.stdin.buffer
        return open(os.dup(descriptor), "rb")
    return open(file, "rb")


def _results(name: str, results: Iterator[jsonl.JsonObject]) -> Iterator[jsonl.JsonObject]:
    """The results, with a failure to read the input or to use the database as one line and exit 2."""
    while True:
        try:
            result = next(results)
        except StopIteration:
            return
        except OSError as error:
            _fail_input(name, error)
        except DatabaseError as error:
            _fail_database(error)
        yield result


def _write(output: IO[bytes], value: jsonl.JsonObject) -> None:
    output.write(jsonl.encode_line(value))
    # Each result is flushed as it is made, so a caller feeding commands one by one sees each answer.
    output.flush()


@main.command(epilog="Example: ppk replay --show examples/worked.jsonl")
@click.option("--show", is_flag=True, help="After the results, print one view line per account.")
@click.argument("file", required=False, default="-", type=click.Path(dir_okay=False, allow_dash=True))
def replay(show: bool, file: str) -> None:
    """Replay JSON Lines commands from FILE (or standard input) through the kernel, in memory.

    Prints one result line per non-blank input line, in order; with --show, then one view line per
    account, sorted by account id.

    \b
    Exit status:
      0  every line was read, even if some were rejected
      2  the input cannot be opened or read, the output cannot be written, or the arguments are wrong
      130  interrupted (Ctrl-C)
      141  the reader of the output went away (quietly)
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
            for result in _results(name, replay_lines(stream, store)):
                _write(output, result)
        if show:
            for view in account_views(store):
                _write(output, view)
    except BrokenPipeError:
        _output_gone(output)


# --- The durable commands ----------------------------------------------------------------------------

_DB_HELP: Final = (
    f"The database: a SQLite file's path, sqlite:///PATH, or postgresql://USER@HOST:PORT/NAME. "
    f"Default: ${DATABASE_ENV}, else {DATABASE_DEFAULT} here."
)

_Read = tuple[int, Command | jsonl.Malformed]
"""One non-blank input line, read and decoded: its line number and its command, or why it is none."""


class _ReadAhead:
    """Reads and decodes lines in a thread, a bounded number ahead, so that a group holds what is ready."""

    _END: Final = None

    def __init__(self, stream: IO[bytes]) -> None:
        self.bytes_read = 0
        """Bytes of the non-blank lines read so far (for a progress bar; blank lines are not counted)."""
        self._queue: queue.Queue[_Read | OSError | None] = queue.Queue(READ_AHEAD_LINES_MAX)
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        try:
            for line in jsonl.read_lines(stream):
                self.bytes_read += line.size_bytes + 1
                self._queue.put((line.number, jsonl.decode(line)))
        except OSError as error:
            self._queue.put(error)
        finally:
            stream.close()
        self._queue.put(self._END)

    def groups(self) -> Iterator[list[_Read]]:
        """The lines in groups: each the lines ready now (waiting for one at least), at most a group's."""
        ended = False
        while not ended:
            group: list[_Read] = []
            item = self._queue.get()
            while True:
                if item is self._END:
                    ended = True
                    break
                if isinstance(item, OSError):
                    raise item
                group.append(item)
                if len(group) == GROUP_LINES_MAX:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if group:
                yield group


def apply_lines(
    stream: IO[bytes], store: SqlStore, progress: Callable[[int], None] | None = None
) -> Iterator[jsonl.JsonObject]:
    """Run each non-blank line of `stream` through the SQL store, in committed groups, and yield the
    results in order; a group's results come only once its transaction has committed. After each
    group, `progress` is told how many bytes of the input have been read."""
    reader = _ReadAhead(stream)
    for group in reader.groups():
        commands = [decoded for _, decoded in group if not isinstance(decoded, jsonl.Malformed)]
        decisions = iter(store.execute_many(commands))
        for number, decoded in group:
            if isinstance(decoded, jsonl.Malformed):
                yield jsonl.malformed_result(number, decoded)
            else:
                yield jsonl.decision_result(number, decoded, next(decisions))
        if progress is not None:
            progress(reader.bytes_read)


@main.command(epilog="Example: ppk apply --db ppk.db commands.jsonl")
@click.option("--db", metavar="URL", help=_DB_HELP)
@click.argument("file", required=False, default="-", type=click.Path(dir_okay=False, allow_dash=True))
def apply(db: str | None, file: str) -> None:
    """Apply JSON Lines commands from FILE (or standard input) to the database, each atomically.

    Prints one result line per non-blank input line, in order, as `ppk replay` does; commands are
    committed in groups, and each result is printed only once its group is durable. Killed at any
    moment and run again on the same input, it ends where one uninterrupted run ends: what was
    committed answers `duplicate` (or its recorded refusal) the second time.

    \b
    Exit status:
      0  every line was applied, or was a duplicate
      1  some lines were rejected
      2  the input or the database cannot be used, or the arguments are wrong
      130  interrupted (Ctrl-C)
      141  the reader of the output went away (quietly)
    """
    name = "standard input" if file == "-" else file
    output = sys.stdout.buffer
    store = _open_store(db)
    try:
        stream = _open_input(file)
    except OSError as error:
        _fail_input(name, error)
    tally = _Tally()
    try:
        with _progress_bar(stream) as progress:
            # The reading thread owns the stream and closes it at its end: closing it here, while that
            # thread may still wait on a read (after an interrupt), would wait with it.
            for result in _results(name, apply_lines(stream, store, progress)):
                tally.add(result)
                _write(output, result)
    except BrokenPipeError:
        _output_gone(output)
    finally:
        store.close()
    click.echo(f"ppk apply: {tally}", err=True)
    sys.exit(EXIT_REJECTED if tally.rejected else 0)


class _Tally:
    """`ppk apply`'s closing line: how many results of each status, the rejected by code."""

    def __init__(self) -> None:
        self.lines = self.applied = self.duplicate = self.rejected = 0
        self.codes: Counter[str] = Counter()

    def add(self, result: jsonl.JsonObject) -> None:
        self.lines += 1
        if result["status"] == "applied":
            self.applied += 1
        elif result["status"] == "duplicate":
            self.duplicate += 1
        else:
            self.rejected += 1
            self.codes[result["error"]["code"]] += 1

    def __str__(self) -> str:
        codes = ", ".join(f"{code} {count}" for code, count in sorted(self.codes.items()))
        rejected = f"{self.rejected} rejected" + (f" ({codes})" if codes else "")
        return f"{self.lines} lines: {self.applied} applied, {self.duplicate} duplicate, {rejected}"


@contextlib.contextmanager
def _progress_bar(stream: IO[bytes]) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on standard error when it is a terminal, by bytes of the input read (of its
    size, when it is a file); nothing otherwise."""
    import rich.console
    import rich.progress

    if sys.stderr is None or not sys.stderr.isatty():
        yield None
        return
    try:
        status = os.fstat(stream.fileno())
        total = status.st_size if stat.S_ISREG(status.st_mode) else None
    except (OSError, ValueError):
        total = None
    columns = (
        rich.progress.TextColumn("ppk apply"),
        rich.progress.BarColumn(),
        rich.progress.DownloadColumn(),
        rich.progress.TransferSpeedColumn(),
        rich.progress.TimeRemainingColumn(),
    )
    console = rich.console.Console(file=sys.stderr)
    with rich.progress.Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("apply", total=total)
        yield lambda done: bar.update(task, completed=done)


@main.command(epilog="Example: ppk show acme")
@click.option("--db", metavar="URL", help=_DB_HELP)
@click.option("--json", "as_json", is_flag=True, help="One JSON view per account, as `ppk replay --show`.")
@click.argument("accounts", nargs=-1)
def show(db: str | None, as_json: bool, accounts: tuple[str, ...]) -> None:
    """Show ACCOUNTS as the database holds them (every account when none is named), as a table.

    \b
    Exit status:
      0  every account named was shown
      2  an account named does not exist, the database cannot be used, or the arguments are wrong
      130  interrupted (Ctrl-C)
      141  the reader of the output went away (quietly)
    """
    from ppk.adapters import views

    store = _open_store(db, create=False)
    try:
        named = sorted(set(accounts)) if accounts else store.account_ids()
        if as_json:
            for account_id in named:
                _write(sys.stdout.buffer, _view(store, account_id))
            return
        # A table a page of accounts at a time: memory stays bounded however many there are.
        for page in _pages(named):
            views.console(sys.stdout).print(
                views.accounts_table([_view(store, account_id) for account_id in page])
            )
    except DatabaseError as error:
        _fail_database(error)
    finally:
        store.close()


TABLE_ROWS_MAX: Final = 1_000
"""`ppk show`, `ppk payouts`: the most rows in one printed table; more go on in another."""


def _pages(items: Iterable[_T]) -> Iterator[list[_T]]:
    page: list[_T] = []
    for item in items:
        page.append(item)
        if len(page) == TABLE_ROWS_MAX:
            yield page
            page = []
    if page:
        yield page


def _view(store: SqlStore, account_id: str) -> jsonl.JsonObject:
    account = store.account(account_id)
    if account is None:
        click.echo(f"ppk {_command_name()}: no account {account_id!r} in the database", err=True)
        sys.exit(EXIT_DATABASE_UNUSABLE)
    return jsonl.account_view(account, store.payouts(account_id))


@main.command(epilog="Example: ppk ledger acme")
@click.option("--db", metavar="URL", help=_DB_HELP)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='One JSON object per entry: "seq", "hash" (hex) and "entry", its stored form (spec.md#encoding).',
)
@click.argument("account")
def ledger(db: str | None, as_json: bool, account: str) -> None:
    """Print ACCOUNT's ledger: one line per entry, in order, each with its position in the account's
    hash chain, the chain's hash once the entry is on it (its first 16 hex digits; --json has all),
    its command id, its command and what it did (its events, or the code that refused it).

    \b
    Exit status:
      0  the ledger was printed
      2  the account does not exist, the database cannot be used, or the arguments are wrong
      130  interrupted (Ctrl-C)
      141  the reader of the output went away (quietly)
    """
    from ppk.adapters import views
    from ppk.adapters.canonical import encode_entry

    store = _open_store(db, create=False)
    output = sys.stdout.buffer
    try:
        _view(store, account)
        for chained in store.chained_ledger(account):
            if as_json:
                stored = json.loads(encode_entry(chained.entry))
                _write(output, {"seq": chained.seq, "hash": chained.hash.hex(), "entry": stored})
            else:
                output.write((views.ledger_line(chained.seq, chained.hash, chained.entry) + "\n").encode())
        output.flush()
    except DatabaseError as error:
        _fail_database(error)
    finally:
        store.close()


@main.command(epilog="Example: ppk payouts --pending")
@click.option("--db", metavar="URL", help=_DB_HELP)
@click.option(
    "--pending", is_flag=True, help="Only the payouts not yet confirmed (what `ppk dispatch` will send)."
)
@click.option(
    "--json", "as_json", is_flag=True, help='One JSON object per payout: "account", "id", "amount", "status".'
)
def payouts(db: str | None, pending: bool, as_json: bool) -> None:
    """Print every account's payouts (withdrawn profits), by account, then payout id, as a table.

    \b
    Exit status:
      0  the payouts were printed (none is no error)
      2  the database cannot be used, or the arguments are wrong
      130  interrupted (Ctrl-C)
      141  the reader of the output went away (quietly)
    """
    from ppk.adapters import views

    store = _open_store(db, create=False)
    try:
        rows = (
            {
                "account": account_id,
                "id": payout.id,
                "amount": minor_text(payout.amount_minor),
                "status": str(payout.status),
            }
            for account_id, payout in _payout_rows(store, pending)
        )
        if as_json:
            for row in rows:
                _write(sys.stdout.buffer, row)
            return
        out = views.console(sys.stdout)
        printed = False
        for page in _pages(rows):
            out.print(views.payouts_table((r["account"], r["id"], r["amount"], r["status"]) for r in page))
            printed = True
        if not printed:
            out.print("no pending payouts" if pending else "no payouts")
    except DatabaseError as error:
        _fail_database(error)
    finally:
        store.close()


def _payout_rows(store: SqlStore, pending: bool) -> Iterator[tuple[str, Payout]]:
    if pending:
        for waiting in store.pending_payouts():
            yield waiting.account, waiting.payout
        return
    for account_id in store.account_ids():
        for payout in store.payouts(account_id):
            yield account_id, payout


_BANK_OPTION: Final = click.option(
    "--bank",
    type=click.Path(dir_okay=False),
    default=BANK_DEFAULT,
    show_default=True,
    help="The bank's SQLite file, where each transfer is one row (a stand-in for a payment gateway).",
)


def _open_bank(bank: str, store: SqlStore) -> SqliteBank:
    from ppk.adapters.bank import SqliteBank

    try:
        return SqliteBank(bank)
    except OSError as error:
        store.close()
        click.echo(f"ppk {_command_name()}: cannot open the bank {bank!r}: {error}", err=True)
        sys.exit(EXIT_DATABASE_UNUSABLE)


@main.command(epilog="Example: ppk dispatch --bank ppk-bank.db")
@click.option("--db", metavar="URL", help=_DB_HELP)
@_BANK_OPTION
def dispatch(db: str | None, bank: str) -> None:
    """Send every pending payout to the bank under its payout id, then confirm it.

    Safe to kill and run again at any point: the bank takes each payout id once, and a confirmation
    is recorded under an id derived from the payout's, so each payout is transferred exactly once.

    \b
    Exit status:
      0  every pending payout was transferred and confirmed
      1  a payout could not be transferred or confirmed: the books need a person to look
      2  the database or the bank cannot be used, or the arguments are wrong
      130  interrupted (Ctrl-C)
      141  the reader of the output went away (quietly)
    """
    from ppk.adapters.bank import TransferRefusedError
    from ppk.adapters.dispatcher import Dispatcher, DispatchError

    store = _open_store(db)
    gateway = _open_bank(bank, store)
    try:
        done = Dispatcher(store, gateway).dispatch()
    except DatabaseError as error:
        _fail_database(error)
    except (DispatchError, TransferRefusedError) as error:
        click.echo(f"ppk dispatch: {error}", err=True)
        sys.exit(EXIT_REJECTED)
    finally:
        gateway.close()
        store.close()
    click.echo(f"ppk dispatch: {done.transferred} transferred, {done.confirmed} confirmed")


@main.command(
    name="audit",
    epilog="Example: ppk audit --proof acme",
)
@click.option("--db", metavar="URL", help=_DB_HELP)
@click.option(
    "--json", "as_json", is_flag=True, help='One JSON object, with the keys "digest" and "findings".'
)
@click.option(
    "--expect",
    metavar="DIGEST",
    help="Also check that the ledger at the time of DIGEST is a prefix of today's.",
)
@click.option(
    "--account",
    "accounts",
    metavar="ID",
    multiple=True,
    help="Audit only this account (repeatable; no digest).",
)
@click.option(
    "--proof", metavar="ACCOUNT", help="Print the evidence that ACCOUNT's history is in the digest."
)
def audit_command(
    db: str | None, as_json: bool, expect: str | None, accounts: tuple[str, ...], proof: str | None
) -> None:
    """Check the database's books from their ledger, and print the digest that proves them.

    For every account: the positions, the hash chain, each entry's encoding, each entry against the
    kernel's decision for its command, the ten invariants, and the stored account, losses and payouts
    against what the ledger replays to. Every finding is reported. A clean audit prints the digest
    of the database and records its checkpoint; keep the digest outside the database (docs/audit.md).

    \b
    Exit status:
      0  the books are clean (and the ledger of --expect's digest is a prefix of today's)
      1  something was found
      2  the database cannot be read, or the arguments are wrong
      130  interrupted (Ctrl-C)
      141  the reader of the output went away (quietly)
    """
    from sqlalchemy.exc import DBAPIError

    from ppk.adapters.audit import audit as audit_books
    from ppk.adapters.audit import record_checkpoint

    store = _open_store(db, create=False)
    if accounts and (expect is not None or proof is not None):
        store.close()
        raise click.UsageError(
            "--expect and --proof are about the digest of every account: not with --account"
        )
    output = sys.stdout.buffer
    try:
        report = audit_books(store.engine, accounts=accounts, expect=expect, proof=proof, record=False)
        if as_json:
            output.write(jsonl.encode_line(_report_json(record_checkpoint(store.engine, report))))
        else:
            # The report first, the digest's line once its checkpoint is recorded: on SQLite that
            # waits for another writer's lock, up to the busy timeout, and the report is ready now.
            output.write(_report_text(report).encode("utf-8"))
            output.flush()
            if report.digest is not None:
                output.write(_digest_line(record_checkpoint(store.engine, report)).encode("utf-8"))
        output.flush()
    except DatabaseError as error:
        _fail_database(error)
    except DBAPIError as error:
        _fail_database(
            DatabaseError(f"the database could not be read: {str(error.orig).strip().splitlines()[0]}")
        )
    except BrokenPipeError:
        _output_gone(output)
    finally:
        store.close()
    sys.exit(0 if report.clean else EXIT_REJECTED)


def _report_json(report: AuditReport) -> jsonl.JsonObject:
    return {
        "digest": report.digest,
        "findings": [finding.as_json() for finding in report.findings],
        "accounts": report.accounts,
        "entries": report.entries,
        "recorded": report.recorded,
        "write_error": report.write_error,
        "expect": report.expected,
        "proof": report.proof.as_json() if report.proof is not None else None,
    }


def _account_shown(account_id: str | None) -> str | None:
    """An account id as a finding's place: as it is when ppk could have written it, else quoted (an
    empty `--account`, or a stray row's id with a space, would otherwise read as no account or as
    another word of the line)."""
    if account_id is None or account_problem(account_id) is None:
        return account_id
    return shown(account_id)


def _report_text(report: AuditReport) -> str:
    """The audit's report as read, but for the digest's line (`_digest_line`)."""
    plural = "" if report.accounts == 1 else "s"
    verdict = (
        "clean"
        if report.clean
        else f"{len(report.findings)} finding" + ("" if len(report.findings) == 1 else "s")
    )
    lines = [f"ppk audit: {report.accounts} account{plural}, {report.entries} entries: {verdict}"]
    for found in report.findings:
        where = " ".join(
            part
            for part in (
                _account_shown(found.account),
                f"#{found.position}" if found.position is not None else None,
            )
            if part
        )
        lines.append(f"{where or '(database)'} {found.check}: expected {found.expected}; found {found.found}")
    if report.expected is not None and report.clean:
        lines.append(f"expect {report.expected}: holds: what it covered is a prefix of today's ledger")
    if report.proof is not None:
        proof = report.proof
        lines.append(
            f"proof {proof.account}: leaf {proof.index} of {proof.size}, length {proof.length}, "
            f"head {proof.head}, path [{', '.join(proof.path)}]"
        )
    return "\n".join(lines) + "\n"


def _digest_line(report: AuditReport) -> str:
    """The digest of a full audit, and whether its checkpoint is in the database."""
    state = (
        "recorded"
        if report.recorded
        else "not recorded: "
        + (
            "the audit found something"
            if report.findings
            else f"the database could not be written: {report.write_error}"
        )
    )
    return f"digest {report.digest} ({state})\n"


@main.command(epilog="Example: ppk demo && ppk ledger acme")
@click.option("--db", metavar="URL", help=_DB_HELP)
@_BANK_OPTION
def demo(db: str | None, bank: str) -> None:
    """Walk through the worked example of the spec on the database, step by step, and audit it.

    Funding, a loss with its shares frozen, partial payments, a retried payment answered as a
    duplicate, a refused overpayment and its retry, a profit withdrawn, dispatched to the bank and
    confirmed; each step prints what was sent, what each result says and the account as stored, and
    the demo ends with the audit and the database's digest. Run again, it doubles nothing: every
    command is answered from its record. It uses account `acme` and refuses a database that holds
    any other account.

    \b
    Exit status:
      0  the demo ran and the audit is clean
      1  the audit found something
      2  the database or the bank cannot be used, or it holds something other than the demo
      130  interrupted (Ctrl-C)
      141  the reader of the output went away (quietly)
    """
    from ppk.adapters import views
    from ppk.adapters.bank import TransferRefusedError
    from ppk.adapters.demo import DemoError, run_demo
    from ppk.adapters.dispatcher import DispatchError
    from ppk.adapters.sql import shown_url

    store = _open_store(db)
    out = views.console(sys.stdout)
    gateway = _open_bank(bank, store)
    try:
        out.print(f"ppk demo on {shown_url(store.engine.url)}, bank {bank}")
        outcome = run_demo(store, gateway, out)
    except DatabaseError as error:
        _fail_database(error)
    except (DemoError, DispatchError, TransferRefusedError) as error:
        click.echo(f"ppk demo: {error}", err=True)
        sys.exit(EXIT_DATABASE_UNUSABLE)
    finally:
        gateway.close()
        store.close()
    out.print(_report_text(outcome.report).rstrip())
    out.print(_digest_line(outcome.report).rstrip())
    if outcome.report.clean:
        where = "" if db is None else f" --db {db}"
        out.print(
            f"\nNext: ppk show{where} · ppk ledger{where} acme · ppk payouts{where} · "
            f"ppk audit{where} --expect {outcome.report.digest}"
        )
    sys.exit(0 if outcome.report.clean else EXIT_REJECTED)


@main.group(name="db", epilog="Example: ppk db upgrade --db ppk.db")
def db_group() -> None:
    """The database's schema."""


@db_group.command(epilog="Example: ppk db upgrade --db postgresql://ppk@localhost:5432/ppk")
@click.option("--db", metavar="URL", help=_DB_HELP)
def upgrade(db: str | None) -> None:
    """Bring the database to this ppk's schema version (create it in an empty database).

    \b
    Exit status:
      0  the database is at this ppk's schema version
      2  the database cannot be used, or is of a version this ppk does not know
      130  interrupted (Ctrl-C)
      141  the reader of the output went away (quietly)
    """
    from ppk.adapters.sql import upgrade_database

    try:
        before, after = upgrade_database(db)
    except DatabaseError as error:
        _fail_database(error)
    if before == after:
        click.echo(f"ppk db upgrade: already at schema version {after}")
    else:
        click.echo(f"ppk db upgrade: schema version {before or 'none'} -> {after}")


@main.command(epilog="Example: ppk check --store sqlite --budget 60")
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
@click.option(
    "--store",
    "store_name",
    metavar="memory|sqlite|URL",
    default="memory",
    show_default=True,
    help="The store the machines run on: in memory, a throwaway SQLite file per run, or the PostgreSQL "
    "database at URL, which must be empty (every run empties it).",
)
def check(budget: float, failing_commands: str, profile: str, store_name: str) -> None:
    """Model-check ppk for BUDGET seconds with the state machines' deep profile, on a chosen store.

    Runs the settlement machine (every command, in lockstep with the reference model, and forgeries
    of the books it reaches) and the crash-and-retry machine in turn, fresh examples each batch,
    printing what was explored: runs, steps, commands, their outcomes, forgeries caught and the
    crash points hit. On the SQL store the crashes also fall inside the transaction, restarts open a
    new store on the same database, and after every step `ppk audit` must find the books clean; a
    third machine races writers, rolls transactions back as the server would, holds the lock (SQLite)
    and opens databases of every kind (SQLite) and URLs with passwords. On
    a failure it prints the shrunk failing program as Hypothesis does and, when that program needs
    no crash or restart, writes its commands as JSON Lines that `ppk replay` reproduces. With
    ICONTRACT_SLOW=1 in the environment the kernel's exact contracts run too (slower); under
    python -O none of them do; the first line says which.

    \b
    Exit status:
      0  no counterexample within the budget
      1  a counterexample was found
      2  Hypothesis is not installed (pip install 'ppk[check]'), the store cannot be used, or the
         arguments are wrong
      130  interrupted (Ctrl-C)
      141  the reader of the output went away (quietly)
    """
    try:
        from hypothesis import settings  # an optional dependency
        from hypothesis.reporting import with_reporter
        from hypothesis.stateful import run_state_machine_as_test

        from ppk.stateful_tests import machines, sql_machines, sql_world
    except ImportError as error:
        click.echo(f"ppk check needs Hypothesis: pip install 'ppk[check]' ({error})", err=True)
        sys.exit(EXIT_NOT_INSTALLED)

    where, checked = _checked_machines(store_name, machines, sql_machines, sql_world)
    explored = machines.EXPLORED
    # One failure, shrunk: shrinking several distinct ones can take Hypothesis minutes each.
    batch = settings(
        settings.get_profile(profile),
        max_examples=CHECK_BATCH_EXAMPLES,
        database=None,
        report_multiple_bugs=False,
    )
    started = time.monotonic()
    click.echo(f"ppk check: exploring for {budget:g} s with the {profile} profile, {where}{_contracts_run()}")
    rounds = 0
    while time.monotonic() - started < budget:
        for machine in checked:
            if rounds and time.monotonic() - started >= budget:
                break  # each machine ran once at least; a batch of a SQL machine can take a minute
            try:
                # Hypothesis's own reports stay silent: a failure's program is in its exception's notes,
                # printed below, and an interrupt must not print advice to reproduce a failure.
                with with_reporter(lambda _value: None):
                    run_state_machine_as_test(machine, settings=batch)
            except Exception as error:
                if _INTERRUPTS.is_set():
                    # Ctrl-C landed inside Hypothesis's engine, which raised something else: not a
                    # counterexample.
                    _interrupted()
                _report_failure(machine, error, failing_commands)
                _print_explored(explored, time.monotonic() - started)
                sys.exit(EXIT_COUNTEREXAMPLE)
        rounds += 1
        _print_explored(explored, time.monotonic() - started)
    click.echo("ppk check: no counterexample found")


def _contracts_run() -> str:
    """Which of the kernel's contracts run, as icontract set them when the kernel was imported: all but
    the exact ones (the default); with them (`ICONTRACT_SLOW`); none but those (`python -O`)."""
    if __debug__:
        return ", under the kernel's exact contracts (ICONTRACT_SLOW)" if icontract.SLOW else ""
    if icontract.SLOW:
        return ", with the kernel's contracts off (python -O) but its exact preconditions (ICONTRACT_SLOW)"
    return ", with the kernel's contracts off (python -O)"


def _checked_machines(
    store_name: str, machines: Any, sql_machines: Any, sql_world: Any
) -> tuple[str, tuple[type, ...]]:
    """The machines to run for `--store`, and where they run, in words."""
    from ppk.adapters.sql import database_url, shown_url

    if store_name == "memory":
        return (
            "the settlement and crash-and-retry machines on the in-memory store",
            (machines.SettlementMachine, machines.CrashRetryMachine),
        )
    names = "the settlement, crash-and-retry and store-world machines"
    if store_name == "sqlite":
        return (
            f"{names} on the SQL store, throwaway SQLite files per run",
            (
                sql_machines.SqlSettlementMachine,
                sql_machines.SqlCrashRetryMachine,
                sql_world.StoreWorldMachine,
            ),
        )
    try:
        url = database_url(store_name)
    except DatabaseError as error:
        raise click.BadParameter(
            f"memory, sqlite, or a PostgreSQL URL: {error}", param_hint="--store"
        ) from None
    if url.get_backend_name() != "postgresql":
        raise click.BadParameter(
            "memory, sqlite, or a postgresql://USER@HOST:PORT/NAME URL", param_hint="--store"
        )
    store = _open_store(store_name)
    try:
        held = len(store.account_ids())
    finally:
        store.close()
    if held:
        click.echo(
            f"ppk check: {shown_url(url)} holds {held} accounts, and every run empties the database it "
            f"checks: give it a database of its own",
            err=True,
        )
        sys.exit(EXIT_DATABASE_UNUSABLE)
    attributes = {"postgres_url": store_name}
    return f"{names} on the SQL store, PostgreSQL at {shown_url(url)}", (
        type("SettlementMachineOnPostgreSQL", (sql_machines.SqlSettlementMachine,), attributes),
        type("CrashRetryMachineOnPostgreSQL", (sql_machines.SqlCrashRetryMachine,), attributes),
        type("StoreWorldMachineOnPostgreSQL", (sql_world.StoreWorldMachine,), attributes),
    )


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
