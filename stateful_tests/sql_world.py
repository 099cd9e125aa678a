"""The world a SQL store lives in, as a state machine: databases of every kind, the names and settings
a user gives, other writers, and a server that rolls transactions back.

The settlement and crash machines (`sql_machines.py`) drive one store on one database they made.
Around that store, ppk promises more, and this machine checks it against a model of the world after
every step:

- **Opening.** A database is ppk's (opened, its books as the model has them), older (refused with the
  `ppk db upgrade --db …` that upgrades it, which, followed, brings the same books to this ppk's
  schema), someone else's (refused, naming its first five tables, untouched), or in a folder that does
  not exist (refused, naming the folder, nothing created). It is named by a path or a `sqlite:///`
  URL, with `$PPK_BUSY_TIMEOUT` unset, valid or not (refused, naming the variable and the value).
- **Passwords.** A PostgreSQL URL with a password, parsed or not, connected to or not: no message and
  no shown URL holds the password, and each names the user and the host.
- **Another writer holds the lock** (SQLite): readers read on without waiting, a writer gives up after
  the busy timeout saying so and writes nothing, and once the lock is free the same command applies.
- **Writers race**: two to four stores on the same database each send a group of commands at the
  same moment. Every writer gets its answers, and they are the answers of *some* order of the groups,
  one after the other, in the in-memory store (the groups are linearizable); the database's books
  are then the books of that order, and the audit finds them clean.
- **The server rolls a transaction back** as a serialisation failure or a deadlock victim, up to
  `RETRIES_MAX` times in a row: the store runs it again and the command applies once; once more than
  that, the store says so and writes nothing.

On PostgreSQL (`postgres_url`) the machine races writers, injects rollbacks and shows URLs on the one
database it is given; the file rules are SQLite's.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import os
import re
import shutil
import sqlite3
import tempfile
import threading
import time
import unittest.mock
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Final

import psycopg
from alembic import command as alembic_command
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import create_engine, event, make_url
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.mysql.pymysql import MySQLDialect_pymysql
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import OperationalError

from ppk.adapters import sql as sql_module
from ppk.adapters.audit import audit
from ppk.adapters.sql import (
    BUSY_TIMEOUT_ENV,
    SqlStore,
    database_url,
    make_engine,
    open_store,
    shown_url,
    upgrade_database,
)
from ppk.adapters.store import DATABASE_ENV, DatabaseError, MemoryStore, Store
from ppk.kernel.state import (
    Account,
    Command,
    ConfirmPayout,
    Decision,
    Entry,
    Fund,
    OpenAccount,
    Payout,
    RecordBalance,
    Settle,
)
from ppk.stateful_tests.machines import EXPLORED, check
from ppk.stateful_tests.postgres import free_port
from ppk.stateful_tests.sql_machines import (
    SPEC_BUSY_TIMEOUT_MAX_S,
    SqlDatabases,
    busy_timeout_by_the_words,
    empty_database,
    waits_the_busy_timeout,
)

OLDER: Final = "0001"
"""The schema version an older database is at: the first of ppk's migrations."""
NEWER: Final = "0003"
"""A schema version past this ppk's head: what a newer ppk would write."""
OTHER_VERSIONS: Final = st.lists(
    st.sampled_from([OLDER, NEWER]) | st.text("0123456789abcdef", min_size=37, max_size=41),
    min_size=1,
    max_size=6,
    unique=True,
)
"""Schema versions written beside ppk's own (sql_module.schema_head(), which none of them is): an
older ppk's, a newer's, and texts about as long as a refusal quotes (40 characters, quotes
included), by the handful: a refusal names five."""
SPEC_RETRIES_MAX: Final = 10
"""spec.md#database: how many times a group the server rolled back is run again (the spec's number,
not sql.py's). The machine keeps the store's own: the back-off before them is counted, not slept."""
BUSY_TIMEOUT: Final = "0.05"
"""$PPK_BUSY_TIMEOUT while another writer holds the lock: how long a writer waits before it gives up."""
CLOCK_SLACK_S: Final = 0.001
"""How much less than the busy timeout a wait may measure: SQLite counts it in whole milliseconds."""
RACE_TIMEOUT_S: Final = 60.0
"""How long a race waits for its writers: far beyond what one takes."""
APART_WAIT_S: Final = 15.0
"""How long a writer on other accounts may take while a group holds its locks before it counts as
waiting for them (spec.md#database: they never wait for each other); it takes milliseconds."""
LOCK_WAIT_S: Final = 2.0
"""How long a group waits, inside its transaction, for another writer it set going: long enough for a
writer no lock holds back, while one that waits for the group's lock waits for its commit instead."""

# --- What the machine draws ------------------------------------------------------------------------

ACCOUNTS: Final = ("a", "b", "c")


def commands_on(account: str) -> st.SearchStrategy[Command]:
    """Commands on one account, under few ids, so that writers send the same id, the same command or
    another under one id, and open the same account."""
    return st.one_of(
        st.builds(
            OpenAccount,
            id=st.sampled_from(["o1", "o2"]),
            account=st.just(account),
            my_share_bp=st.sampled_from([100, 5_000]),
            company_share_bp=st.sampled_from([900, 0]),
        ),
        st.builds(
            Fund,
            id=st.sampled_from(["f1", "f2", "f3"]),
            account=st.just(account),
            amount_minor=st.integers(1, 100_000),
        ),
        st.builds(
            RecordBalance,
            id=st.sampled_from(["b1", "b2", "b3"]),
            account=st.just(account),
            balance_minor=st.integers(0, 200_000),
        ),
        st.builds(
            Settle,
            id=st.sampled_from(["s1", "s2"]),
            account=st.just(account),
            payment_minor=st.integers(1, 20_000),
        ),
    )


COMMANDS: Final = st.sampled_from(ACCOUNTS).flatmap(commands_on)
GROUPS: Final = st.lists(st.lists(COMMANDS, min_size=1, max_size=4), min_size=2, max_size=4)

# Table names no ppk table has (quoted: "if" is one), drawn in orders other than sorted.
FOREIGN_TABLES: Final = st.lists(
    st.text("abcdefghij_", min_size=1, max_size=6).filter(lambda name: name[0] != "_"),
    min_size=1,
    max_size=8,
    unique=True,
).filter(lambda names: not {"accounts", "ledger", "losses", "payouts", "checkpoints"} & set(names))

IN_MEMORY: Final = ":memory:"
KEEPS_NOTHING: Final = "an in-memory SQLite database keeps nothing: name a file, like sqlite:///ppk.db"

TAKES_NO_OPTIONS: Final = (
    "a SQLite URL takes no options after '?' (ppk sets WAL, synchronous=FULL and the busy timeout "
    "itself); write sqlite:///PATH"
)
URL_OPTIONS: Final = (
    *("?uri=true&mode=memory", "?nolock=1&uri=true", "?immutable=1&uri=true", "?mode=ro&uri=true"),
    *("?timeout=0", "?cache=shared", "?", "?uri", "?#x"),
)
"""What may follow a sqlite:/// URL's path: SQLite's and pysqlite's options, and a `?` they drop."""

NO_WRITE_AHEAD_LOG: Final = "SQLite would not keep a write-ahead log with synchronous=FULL here"
NOT_DURABLE: Final = st.tuples(
    st.sampled_from(["delete", "truncate", "persist", "memory", "off", "wal"]), st.sampled_from([0, 1, 2, 3])
).filter(lambda answer: answer != ("wal", 2))
"""What SQLite could answer, asked for a write-ahead log and synchronous=FULL, where it cannot keep
them: the journal mode the file keeps (each sorts before "wal") and a synchronous level (OFF, NORMAL,
FULL, EXTRA), any pair but WAL with FULL."""

NOT_DATABASES: Final = (b"hello", b"PK\x03\x04" + bytes(1_000), b"SQLite format 2\x00" + bytes(100))
"""Files that are no database: a text, a zip's first bytes, a header one version off."""

OPENINGS: Final = st.sampled_from(["to write", "to read", "to upgrade"])
"""How a database is opened (`refusal_opening`): by `ppk apply`, by `ppk show` or `ppk audit`, by
`ppk db upgrade`."""

# How many times in a row the server rolls a transaction back: any, and often both sides of the bound.
ROLLBACKS: Final = st.one_of(
    st.sampled_from([SPEC_RETRIES_MAX, SPEC_RETRIES_MAX + 1]), st.integers(0, SPEC_RETRIES_MAX + 1)
)

# $PPK_BUSY_TIMEOUT: None for unset, then texts valid and not, at and past the bounds.
TIMEOUT_TEXTS: Final = st.one_of(
    st.none(),
    st.sampled_from(["", " ", "0", "0.0", "0.5", "5", " 2 ", "86400", "86400.0", "1e3"]),
    st.sampled_from(["-1", "-0.001", "86400.001", "1e9", "nan", "inf", "-inf", "five", "0x10", "1,5"]),
    st.floats(-10.0, SPEC_BUSY_TIMEOUT_MAX_S + 10.0, allow_nan=False).map(repr),
    # Longer than the 40 characters a refusal quotes, and as long (the seed-79 sample's sql.py 189
    # quoted 41: every text drawn was shorter).
    st.sampled_from(["1" * 41, "5 seconds, as the runbook of the operator says", " " + "9" * 39 + "0 "]),
)

# URL parts: a password of capitals (no vowels: no word of a message) and digits, which no other part
# (lower case) can contain.
USERS: Final = st.text("abcdefgh", min_size=1, max_size=6)
PASSWORDS: Final = st.text("BCDFGHJKMNPQRSTVWXZ23456789", min_size=6, max_size=12)
HOSTS: Final = st.sampled_from(["127.0.0.1", "db.example", "localhost"])
SCHEMES: Final = st.sampled_from(["postgresql", "postgres", "postgresql+psycopg"])

OWN_SQLITE: Final = "SQLite's, not make_engine's,"


class PackagesDialect(MySQLDialect_pymysql):
    """The dialect of a database SQLAlchemy does not ship, which a package registers under its name
    (sqlalchemy-cockroachdb's, sqlalchemy-redshift's, trino's). None is installed here: MySQL's
    dialect stands in under each name. (The seed-101 sample's sql.py 261, `>=` for `==` on "sqlite",
    called a trino engine a SQLite engine ppk did not make.)"""

    supports_statement_cache = True


class CockroachDialect(PackagesDialect):
    name = "cockroachdb"  # sorts before "postgresql"


class RedshiftDialect(PackagesDialect):
    name = "redshift"  # between "postgresql" and "sqlite"


class TrinoDialect(PackagesDialect):
    name = "trino"  # after "sqlite"


class Psycopg2Dialect(PGDialect_psycopg):
    """PostgreSQL through psycopg2, the driver of many a Django back office. ppk does not depend on
    psycopg2, and SQLAlchemy's dialect of it needs it installed: psycopg 3's dialect stands in under
    its driver's name, which sorts after "psycopg". (The seed-103 sample's sql.py 280, `>=` for `==`
    on "psycopg", took a psycopg2 engine for one ppk can drive.)"""

    driver = "psycopg2"
    supports_statement_cache = True


STOOD_IN: Final[dict[str, type[Dialect]]] = {
    "cockroachdb": CockroachDialect,
    "redshift": RedshiftDialect,
    "trino": TrinoDialect,
    "postgresql+psycopg2": Psycopg2Dialect,
}
"""Dialects not installed here, by the scheme that names them, and what stands in for each."""

FOREIGN_ENGINES: Final = {
    "MySQL's": ("mysql+pymysql", "a mysql engine: ppk stores in SQLite or PostgreSQL"),
    "pg8000's": ("postgresql+pg8000", "driven by pg8000: ppk drives PostgreSQL with psycopg 3, not async"),
    "psycopg2's": (
        "postgresql+psycopg2",
        "driven by psycopg2: ppk drives PostgreSQL with psycopg 3, not async",
    ),
    "psycopg's async": (
        "postgresql+psycopg_async",
        "driven by psycopg (async): ppk drives PostgreSQL with psycopg 3, not async",
    ),
    OWN_SQLITE: ("sqlite", "a SQLite engine ppk did not make"),
    **{
        f"{name}'s, a package's dialect": (name, f"a {name} engine: ppk stores in SQLite or PostgreSQL")
        for name, dialect in STOOD_IN.items()
        if issubclass(dialect, PackagesDialect)
    },
}
"""Engines a backend could make that ppk cannot keep books on: their scheme, and what the refusal says."""


@contextlib.contextmanager
def stood_in(scheme: str) -> Iterator[None]:
    """While inside, `scheme://` names the dialect that stands in for it (`STOOD_IN`), as the
    package's entry point would."""
    if scheme not in STOOD_IN:
        yield
        return
    name = scheme.replace("+", ".")  # how SQLAlchemy's registry names a dialect and its driver
    registry.register(name, __name__, STOOD_IN[scheme].__name__)
    try:
        yield
    finally:
        registry.deregister(name)


RETRIED_UNDER_A_GROUP: Final[dict[str, Callable[[list[Command]], Command]]] = {
    "the opening again": lambda opening: opening[0],
    "the funding again": lambda opening: opening[1],
    "the balance record again": lambda opening: opening[2],
    "the funding's id, another amount": lambda opening: Fund(
        id=opening[1].id, account=opening[1].account, amount_minor=7
    ),
}
"""What a group sends first on an account another writer opened under it (its opening, funding and
balance record): a command of the opening's again (repeated), or its id reused (refused as reused);
"" (drawn too) sends none."""


class _BoundedWaits:
    """What sql.py calls `time` while `the_store_waits_at_most` runs: time's, but sleeping past a
    bound in all fails."""

    def __init__(self, bound_s: float, why: str, *, sleeping: bool) -> None:
        self.bound_s, self.why, self.slept_s, self.sleeping = bound_s, why, 0.0, sleeping

    @staticmethod
    def monotonic() -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        self.slept_s += seconds
        if self.slept_s > self.bound_s:
            raise AssertionError(f"the store waited {self.slept_s:.3f} s, past {self.bound_s} s, {self.why}")
        if self.sleeping:
            time.sleep(seconds)


@contextlib.contextmanager
def the_store_waits_at_most(bound_s: float, why: str, *, sleeping: bool = True) -> Iterator[_BoundedWaits]:
    """Inside, the SQL store's sleeps (for a lock, or before a retry) fail once they add up to more
    than `bound_s`, saying `why` it must not wait longer: a wait past its bound would otherwise pass,
    only slower, or never end. Yields the waits, which add up what was slept. On this thread only, as
    no other thread runs then."""
    waits = _BoundedWaits(bound_s, why, sleeping=sleeping)
    vars(sql_module)["time"] = waits  # the module's name for time, for the machine
    try:
        yield waits
    finally:
        vars(sql_module)["time"] = time


def the_store_waits_its_busy_timeout(store: SqlStore, timeout: str | None, named: str) -> None:
    """A SQLite store opened under $PPK_BUSY_TIMEOUT=`timeout` (None when unset) had to be opened, and
    waits what it says. (The seed-47 sample's sql.py 86, a default of 59 s, passed every machine.)"""
    if busy_timeout_by_the_words(timeout) is None:
        raise AssertionError(f"{named} opened under ${BUSY_TIMEOUT_ENV}={timeout!r}, which it must refuse")
    with store.engine.connect() as connection:
        waits_ms = connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one()
    waits_the_busy_timeout(waits_ms, timeout, named)


def waited_long_enough(waited_s: float, what: str) -> None:
    """A writer that gave up on a held lock waited the whole busy timeout first: it queues behind the
    other writer, rather than failing at once. (The seed-47 sample's sql.py 203 took `monotonic() *
    timeout` for the new file's deadline: a deadline passed long ago, given up at the first try.)"""
    check(
        waited_s >= float(BUSY_TIMEOUT) - CLOCK_SLACK_S,
        f"{what} gave up on the lock after {waited_s:.4f} s, inside the busy timeout of {BUSY_TIMEOUT} s",
    )


def the_store_never_waits(why: str) -> contextlib.AbstractContextManager[_BoundedWaits]:
    """Inside, the SQL store's first sleep fails: no other connection holds a lock."""
    return the_store_waits_at_most(0.0, why)


@contextlib.contextmanager
def environment(name: str, value: str | None) -> Iterator[None]:
    """The variable set to `value` (None: unset) inside, and as it was after."""
    before = os.environ.get(name)
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


class RollbackError(Exception):
    """What psycopg's error carries for a transaction the server rolled back: its SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"the server rolled the transaction back (SQLSTATE {sqlstate})")
        self.sqlstate = sqlstate


@contextlib.contextmanager
def rolled_back(store: SqlStore, times: int, sqlstate: str) -> Iterator[list[int]]:
    """The store's next `times` transactions fail at their first statement as the server fails one it
    rolls back; yields the list of transactions begun, one item each."""
    begun: list[int] = []
    failed: set[int] = set()

    def on_begin(_connection: Any) -> None:
        begun.append(len(begun))

    def on_statement(_connection: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
        # SQLite's BEGIN IMMEDIATE runs before this transaction's on_begin: the first statement after.
        if begun and begun[-1] < times and begun[-1] not in failed:
            failed.add(begun[-1])
            raise OperationalError(statement, parameters, RollbackError(sqlstate))

    event.listen(store.engine, "begin", on_begin)
    event.listen(store.engine, "before_cursor_execute", on_statement)
    try:
        yield begun
    finally:
        event.remove(store.engine, "before_cursor_execute", on_statement)
        event.remove(store.engine, "begin", on_begin)


# --- The machine -----------------------------------------------------------------------------------


class StoreWorldMachine(RuleBasedStateMachine):
    """Databases of every kind, opened, upgraded, locked, raced and rolled back (see the module)."""

    postgres_url: ClassVar[str | None] = None
    """The PostgreSQL database to race on; None: SQLite files in a folder of the run."""
    OLDER_MAX: ClassVar[int] = 2
    """Older databases a run makes at most: each costs a migration down and one up (about 0.15 s)."""
    KIND_MAX: ClassVar[int] = 3
    """Databases of someone else's, and in missing folders, a run makes at most: more would only take
    the steps of the rules that use them."""

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="world-", dir=SqlDatabases.folder()))
        self.numbers = itertools.count()
        self.books: dict[str, MemoryStore] = {}
        """ppk's databases (as a command line names them), each with the books the model says it has."""
        self.older: dict[str, MemoryStore] = {}
        """Databases at schema OLDER, with their books."""
        self.foreign: dict[str, list[str]] = {}
        """Databases that are not ppk's, with their tables."""
        self.missing: dict[str, Path] = {}
        """Databases in a folder that does not exist, with the folder."""
        self.newer: dict[str, MemoryStore] = {}
        """ppk's databases at schema NEWER, with their books (which no store of this ppk may touch)."""
        self.versions: dict[str, list[str]] = {}
        """ppk's databases with a second schema version row, with their versions."""
        self.garbage: dict[str, bytes] = {}
        """Files that are no database at all, with their bytes."""
        self.absent: set[str] = set()
        """Paths in the run's folder where nothing is: opened to write, they become ppk's databases."""
        self.made_older = 0
        self.changed: set[str] = set()
        """ppk's databases written to or upgraded since the books were last checked."""
        self.readers: dict[str, SqlStore] = {}
        """A store on each ppk database, open from its first check on."""
        self.advice: dict[str, str] = {}
        """An older database's refusal: the `--db` it says to upgrade."""
        EXPLORED.runs += 1

    def teardown(self) -> None:
        for reader in self.readers.values():
            reader.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def new_path(self) -> str:
        return str(self.folder / f"db{next(self.numbers)}.db")

    def new_ppk_database(self) -> str:
        """A new, empty ppk database: a copy of one made once, as creating the schema (Alembic's
        migrations) costs more than a whole step."""
        empty = SqlDatabases.folder() / "world-empty.db"
        if not empty.exists():
            open_store(str(empty)).close()
        path = self.new_path()
        shutil.copyfile(empty, path)
        return path

    @initialize()
    def a_first_database(self) -> None:
        url = type(self).postgres_url
        if url is not None:
            store = empty_database(open_store(url))
            store.close()
            self.books[url] = MemoryStore()
            self.changed.add(url)
        else:
            path = self.new_ppk_database()
            self.books[path] = MemoryStore()
            self.changed.add(path)

    # --- Books ------------------------------------------------------------------------------------

    def same_books(self, store: Store, model: Store, where: str) -> None:
        """The store holds the model's books: its accounts, every ledger and every payout."""
        held, meant = books_of(store), books_of(model)
        check(list(held) == list(meant), f"{where}: accounts {list(held)}, not {list(meant)}")
        for account_id, books in meant.items():
            check(
                held[account_id] == books, f"{where}: account {account_id!r}: {held[account_id]}, not {books}"
            )

    @invariant()
    def count_step(self) -> None:
        EXPLORED.steps += 1

    @invariant()
    def a_ppk_database_holds_its_books_and_the_audit_finds_them_clean(self) -> None:
        """After each step that wrote to or upgraded a ppk database, read by a store that was open all
        along (as a reader in another process is)."""
        for database in sorted(self.changed):
            if database not in self.readers:
                self.readers[database] = open_store(database)
            reader = self.readers[database]
            self.same_books(reader, self.books[database], database)
            findings = audit(reader.engine, record=False).findings
            check(not findings, f"{database}: the audit found {list(findings)}")
        self.changed.clear()

    # --- Making databases -------------------------------------------------------------------------

    def ppk_database_with(self, commands: list[Command]) -> tuple[str, MemoryStore]:
        """A new ppk database that `commands` were applied to, each decided as the model decides it;
        the model."""
        path = self.new_ppk_database()
        model = MemoryStore()
        with contextlib.closing(open_store(path)) as store:
            for command in commands:
                check(
                    store.execute(command) == model.execute(command),
                    f"{command} decided apart from the model",
                )
        return path, model

    @precondition(lambda self: self.postgres_url is None and self.made_older < self.OLDER_MAX)
    @rule(data=st.data(), commands=st.lists(COMMANDS, max_size=6))
    def an_older_database(self, data: st.DataObject, commands: list[Command]) -> None:
        """A database a ppk of schema OLDER wrote: made here, given books, and taken back to OLDER."""
        self.made_older += 1
        path, model = self.ppk_database_with(commands)
        with (
            contextlib.closing(open_store(path)) as store,
            store.engine.execution_options(ppk_write=True).begin() as connection,
        ):
            config, _ = sql_module._alembic(connection)
            alembic_command.downgrade(config, OLDER)
        self.older[path] = model
        self.open_and_judge(data, path)

    @precondition(lambda self: self.postgres_url is None and len(self.foreign) < self.KIND_MAX)
    @rule(data=st.data(), tables=FOREIGN_TABLES)
    def someone_elses_database(self, data: st.DataObject, tables: list[str]) -> None:
        path = self.new_path()
        connection = sqlite3.connect(path)
        try:
            for table in tables:
                connection.execute(f'CREATE TABLE "{table}" (x)')
            connection.commit()
        finally:
            connection.close()
        self.foreign[path] = tables
        self.open_and_judge(data, path)

    @precondition(lambda self: self.postgres_url is None and len(self.missing) < self.KIND_MAX)
    @rule(data=st.data())
    def a_database_in_a_missing_folder(self, data: st.DataObject) -> None:
        folder = self.folder / f"missing{next(self.numbers)}"
        self.missing[str(folder / "ppk.db")] = folder
        self.open_and_judge(data, str(folder / "ppk.db"))

    @precondition(lambda self: self.postgres_url is None and len(self.newer) < self.KIND_MAX)
    @rule(data=st.data(), commands=st.lists(COMMANDS, max_size=3))
    def a_newer_ppks_database(self, data: st.DataObject, commands: list[Command]) -> None:
        """A database a newer ppk wrote: this ppk's books, its schema version past this ppk's head."""
        path, model = self.ppk_database_with(commands)
        connection = sqlite3.connect(path)
        try:
            connection.execute("UPDATE alembic_version SET version_num = ?", (NEWER,))
            connection.commit()
        finally:
            connection.close()
        self.newer[path] = model
        self.open_and_judge(data, path)

    @precondition(lambda self: self.postgres_url is None and len(self.versions) < self.KIND_MAX)
    @rule(data=st.data(), commands=st.lists(COMMANDS, max_size=3), others=st.none() | OTHER_VERSIONS)
    def a_database_whose_versions_were_changed(
        self, data: st.DataObject, commands: list[Command], others: list[str] | None
    ) -> None:
        """A ppk database whose schema version row was deleted (`others` None), or which got more
        (an older ppk's, a newer's, or up to six texts an insider wrote): which schema its tables are
        at is not known, so it is refused to read, to write and to upgrade, and nothing is changed.
        (Alembic's own reader of the version raised on two, a traceback in front of the user.)"""
        path, _model = self.ppk_database_with(commands)
        connection = sqlite3.connect(path)
        try:
            if others is None:
                connection.execute("DELETE FROM alembic_version")
            else:
                rows = [(other,) for other in others]
                connection.executemany("INSERT INTO alembic_version VALUES (?)", rows)
            connection.commit()
        finally:
            connection.close()
        if others is None:  # no version, and ppk's tables: not known as ppk's
            self.foreign[path] = self.tables(path)
        else:
            self.versions[path] = self.schema_versions(path)
        self.open_and_judge(data, path)

    @precondition(lambda self: self.postgres_url is None and len(self.garbage) < self.KIND_MAX)
    @rule(data=st.data(), content=st.sampled_from(NOT_DATABASES))
    def a_file_that_is_no_database(self, data: st.DataObject, content: bytes) -> None:
        """A file that is not a database, one of NOT_DATABASES."""
        path = self.new_path()
        Path(path).write_bytes(content)
        self.garbage[path] = content
        self.open_and_judge(data, path)

    @precondition(lambda self: self.postgres_url is None and len(self.absent) < self.KIND_MAX)
    @rule(data=st.data())
    def a_path_where_nothing_is(self, data: st.DataObject) -> None:
        path = self.new_path()
        self.absent.add(path)
        self.open_and_judge(data, path)

    def schema_versions(self, path: str) -> list[str]:
        connection = sqlite3.connect(path)
        try:
            return sorted(row[0] for row in connection.execute("SELECT version_num FROM alembic_version"))
        finally:
            connection.close()

    # --- Opening ----------------------------------------------------------------------------------

    def any_database(self, data: st.DataObject) -> str:
        every = sorted(
            itertools.chain(
                self.books,
                self.older,
                self.foreign,
                self.missing,
                self.newer,
                self.absent,
                self.garbage,
                self.versions,
            )
        )
        return data.draw(st.sampled_from(every), label="database")

    @precondition(lambda self: self.postgres_url is None)
    @rule(data=st.data())
    def open_a_database(self, data: st.DataObject) -> None:
        """Open any database this world holds again (each is opened once as it is made)."""
        self.open_and_judge(data, self.any_database(data))

    def open_and_judge(self, data: st.DataObject, path: str) -> None:
        """Open `path`, by itself or as a sqlite:/// URL, under any $PPK_BUSY_TIMEOUT, to write (it may
        create the database) or only to read (`ppk show`, `ppk audit`: it must not), and judge it.
        (Each kind of database is opened as it is made: drawn among all of them, the rarer kinds' were
        opened in none of a mutation run's 40 runs, and their refusals went unchecked.)"""
        as_url = data.draw(st.booleans(), label="as a URL")
        timeout = data.draw(TIMEOUT_TEXTS, label=f"${BUSY_TIMEOUT_ENV}")
        reading = data.draw(st.booleans(), label="only to read")
        named = f"sqlite:///{path}" if as_url else path
        # Named by `--db`, with $PPK_DATABASE_URL naming another database that must go untouched, or
        # by $PPK_DATABASE_URL alone (the seed-83 sample's sql.py 110, `and` for the second `or`,
        # opened ppk.db where the variable named a database: no machine named one so).
        by_environment = data.draw(st.booleans(), label=f"named by ${DATABASE_ENV}")
        other = str(self.folder / "named-by-the-environment-not-opened.db")
        # No other connection holds a lock here (the seed-41 sample's sql.py:199 `and` waited out
        # the busy timeout on any error, a file that is no database's too).
        with (
            environment(BUSY_TIMEOUT_ENV, timeout),
            environment(DATABASE_ENV, named if by_environment else other),
            the_store_never_waits(f"opening {named}, no lock held"),
        ):
            try:
                store: SqlStore | None = open_store(None if by_environment else named, create=not reading)
                refusal = ""
            except DatabaseError as error:
                store, refusal = None, str(error)
        check(not Path(other).exists(), f"{named}: ${DATABASE_ENV}'s database was opened, not --db's")
        if store is not None:
            try:
                the_store_waits_its_busy_timeout(store, timeout, named)
            finally:
                store.close()
        check("\n" not in refusal, f"{named}: a refusal of more than one line: {refusal!r}")
        self.judge_the_opening(path, named, timeout, reading, refusal)

    def judge_the_opening(
        self, path: str, named: str, timeout: str | None, reading: bool, refusal: str
    ) -> None:
        """What opening `path` (as `named`) must have done, by what the world holds there (`refusal`
        is empty if it opened)."""
        if reading and (path in self.missing or path in self.absent):
            check(refusal == f"{path!r}: no such database file", f"{named}, to read: {refusal or 'opened'}")
            check(not Path(path).exists(), f"{named}: opened to read, a database was made")
            EXPLORED.outcomes["world: no database to read"] += 1
        elif path in self.missing:
            folder = self.missing[path]
            check(repr(str(folder)) in refusal, f"{named}: the refusal does not name the folder: {refusal!r}")
            check(not folder.exists(), f"{named}: the missing folder was made")
            EXPLORED.outcomes["world: a missing folder named"] += 1
        elif busy_timeout_by_the_words(timeout) is None:
            check(
                f"${BUSY_TIMEOUT_ENV}" in refusal and repr(str(timeout).strip()[:40]) in refusal,
                f"{named} with ${BUSY_TIMEOUT_ENV}={timeout!r}: {refusal or 'opened'}",
            )
            EXPLORED.outcomes["world: a busy timeout refused"] += 1
        elif path in self.garbage:
            check(refusal == f"{path!r}: file is not a database", f"{named}: {refusal or 'opened'}")
            check(
                Path(path).read_bytes() == self.garbage[path],
                f"{named}: a file that is no database was changed",
            )
            EXPLORED.outcomes["world: a file that is no database refused"] += 1
        elif path in self.versions:
            self.judge_versions(path, named, refusal)
        elif path in self.newer:
            check(
                f"schema version {NEWER}, which this ppk (schema {sql_module.schema_head()}) does not know"
                in refusal,
                f"{named}: a newer ppk's database: {refusal or 'opened'}",
            )
            check(self.schema_versions(path) == [NEWER], f"{named}: a newer ppk's schema version was changed")
            EXPLORED.outcomes["world: a newer ppk's database refused"] += 1
        elif path in self.foreign and reading:
            check(
                refusal == f"{path!r} holds no ppk database: it has no ppk schema version",
                f"{named}, to read: someone else's database: {refusal or 'opened'}",
            )
            check(
                self.tables(path) == sorted(self.foreign[path]),
                f"{named}: someone else's database was changed",
            )
            EXPLORED.outcomes["world: someone else's database refused"] += 1
        elif path in self.foreign:
            named_tables = ", ".join(sorted(self.foreign[path])[:5])
            check(
                f"({named_tables})" in refusal,
                f"{named}: the refusal does not name ({named_tables}): {refusal!r}",
            )
            check(
                self.tables(path) == sorted(self.foreign[path]),
                f"{named}: someone else's database was changed",
            )
            EXPLORED.outcomes["world: someone else's database refused"] += 1
        elif path in self.older:
            advice = re.search(r"`ppk db upgrade --db (.+)`", refusal)
            check(advice is not None, f"{named}: an older database without the upgrade advice: {refusal!r}")
            assert advice is not None
            check(database_url(advice[1]) == database_url(named), f"{named}: the advice names {advice[1]!r}")
            self.advice[path] = advice[1]
            EXPLORED.outcomes["world: an older database refused with advice"] += 1
        else:
            check(not refusal, f"{named} with ${BUSY_TIMEOUT_ENV}={timeout!r} refused: {refusal!r}")
            EXPLORED.outcomes["world: a ppk database opened"] += 1
            if path in self.absent:  # opened to write: a new ppk database, its books empty
                self.absent.remove(path)
                self.books[path] = MemoryStore()
                self.changed.add(path)
                EXPLORED.outcomes["world: a new database made"] += 1

    def judge_versions(self, path: str, named: str, refusal: str) -> None:
        versions = self.versions[path]
        # spec.md#database: the first five in sorted order, each quoted, cut to 40 characters.
        shown = ", ".join(repr(version)[:40] for version in versions[:5])
        check(
            refusal == f"{path!r} has {len(versions)} schema versions ({shown}), and a ppk database has "
            "one: it is not a database this ppk can open",
            f"{named}: a database of more schema versions than one: {refusal or 'opened'}",
        )
        check(self.schema_versions(path) == versions, f"{named}: the schema versions were changed")
        EXPLORED.outcomes["world: a database of more schema versions than one refused"] += 1

    def tables(self, path: str) -> list[str]:
        connection = sqlite3.connect(path)
        try:
            return sorted(
                row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            )
        finally:
            connection.close()

    @precondition(lambda self: self.advice)
    @rule(data=st.data())
    def follow_the_advice(self, data: st.DataObject) -> None:
        """`ppk db upgrade --db` what the refusal said: the database is this ppk's, its books as they were."""
        path = data.draw(st.sampled_from(sorted(self.advice)), label="older database")
        versions = upgrade_database(self.advice.pop(path))
        check(versions == (OLDER, sql_module.schema_head()), f"{path}: upgraded from and to {versions}")
        self.books[path] = self.older.pop(path)
        self.changed.add(path)
        EXPLORED.outcomes["world: an older database upgraded"] += 1

    @precondition(lambda self: self.postgres_url is None)
    @rule(data=st.data())
    def upgrade_a_database(self, data: st.DataObject) -> None:
        """`ppk db upgrade --db` any database, unasked: an older one is upgraded, its books as they
        were; this ppk's is left as it is, and a path where nothing is becomes a new one; anything else
        is refused as opening it to write is, in one line, changing nothing."""
        path = self.any_database(data)
        try:
            with the_store_never_waits(f"upgrading {path}, no lock held"):
                versions: tuple[str | None, str] | None = upgrade_database(path)
            refusal = ""
        except DatabaseError as error:
            versions, refusal = None, str(error)
        check("\n" not in refusal, f"{path}: a refusal of more than one line: {refusal!r}")
        head = sql_module.schema_head()
        if path in self.older:
            check(versions == (OLDER, head), f"{path}: an older database upgraded from and to {versions}")
            self.books[path] = self.older.pop(path)
            self.advice.pop(path, None)
            self.changed.add(path)
            EXPLORED.outcomes["world: an older database upgraded"] += 1
            return
        if path in self.books or path in self.absent:
            before = head if path in self.books else None
            check(versions == (before, head), f"{path}: upgraded from and to {versions}, not {before}")
        self.judge_the_opening(path, path, None, False, refusal)

    @rule(
        name=st.sampled_from(
            [":memory:", "./:memory:", "sqlite://", "sqlite:///:memory:", "sqlite+pysqlite:///:memory:"]
        ),
        how=OPENINGS,
    )
    def an_in_memory_database(self, name: str, how: str) -> None:
        """SQLite's in-memory database, by any of its names, keeps nothing: refused in one line however
        it is opened, and no file is made under its name."""
        refusal = refusal_opening(name, how)
        check(refusal == KEEPS_NOTHING, f"{name}, {how}: {refusal!r}")
        check(not Path(IN_MEMORY).exists(), f"{name}, {how}: a file {IN_MEMORY!r} was made")
        EXPLORED.outcomes["world: an in-memory database refused"] += 1

    @precondition(lambda self: self.postgres_url is None)
    @rule(
        data=st.data(),
        options=st.sampled_from(URL_OPTIONS),
        how=OPENINGS,
    )
    def a_sqlite_url_with_options(self, data: st.DataObject, options: str, how: str) -> None:
        """A sqlite:/// URL with anything after `?` is refused in one line naming it, before anything
        is opened: SQLite's URL options could keep the database in memory, drop its locks or its busy
        timeout, or name a file other than the one written. Nothing in the world changes."""
        named = f"sqlite:///{self.any_database(data)}{options}"
        before = self.files()
        with the_store_never_waits(f"opening {named}, no lock held"):
            refusal = refusal_opening(named, how)
        check(refusal == f"{named!r}: {TAKES_NO_OPTIONS}", f"{named}, {how}: {refusal!r}")
        check(self.files() == before, f"{named}, {how}: files changed: {before} -> {self.files()}")
        EXPLORED.outcomes["world: a SQLite URL with options refused"] += 1

    @precondition(lambda self: self.postgres_url is None and bool(self.books))
    @rule(
        data=st.data(),
        kept=NOT_DURABLE,
        how=OPENINGS,
    )
    def a_file_system_without_a_write_ahead_log(
        self, data: st.DataObject, kept: tuple[str, int], how: str
    ) -> None:
        """spec.md#database: SQLite keeps a write-ahead log only where its connections can share
        memory; elsewhere (some network file systems) it answers `PRAGMA journal_mode=WAL` with the
        mode the file keeps. Without that log, or without synchronous=FULL, the store refuses to run:
        one line naming both, however the database is opened, and nothing written, not even the file
        of a database that was not there. Every file system here shares memory, so SQLite's answers
        are stood in for. (The seed-61 sample's sql.py 232, `>` for `!=`, ran on every mode but
        WAL.) An empty file someone left there, which SQLite opens as an empty database, stays as it
        was: the store removes only the file its own connection made (the seed-131 sample's sql.py
        249, `or` for `and`, removed any empty file it was refused on)."""
        there, empty = sorted(self.books), self.new_path()
        database = data.draw(st.sampled_from([*there, self.new_path(), empty]), label="database")
        if database == empty:
            Path(empty).write_bytes(b"")
        before = self.files()
        mode, synchronous = kept

        def answer(_cursor: Any, _timeout_s: float) -> tuple[str, int]:
            return kept

        with unittest.mock.patch.object(sql_module, "_durability", answer):
            refusal = refusal_opening(database, how)
        expected = f"{database!r}: {NO_WRITE_AHEAD_LOG} (journal_mode={mode}, synchronous={synchronous}); "
        if database not in (*there, empty) and how == "to read":
            expected = f"{database!r}: no such database file"
        check(refusal.startswith(expected), f"{database} keeping {kept}, {how}: {refusal!r}")
        check(self.files() == before, f"{database}, {how}: files changed: {before} -> {self.files()}")
        if database == empty:
            Path(empty).unlink()  # not a kind of database the world keeps
        EXPLORED.outcomes["world: a file system without a write-ahead log"] += 1

    def files(self) -> dict[str, tuple[int, int]]:
        """Every file under the run's folder, with its size and last change."""
        return {
            str(path): (path.stat().st_size, path.stat().st_mtime_ns)
            for path in self.folder.rglob("*")
            if path.is_file()
        }

    # --- Passwords --------------------------------------------------------------------------------

    @rule(scheme=SCHEMES, user=USERS, password=PASSWORDS, host=HOSTS, name=USERS, parsed=st.booleans())
    def a_server_url_with_a_password(
        self, *, scheme: str, user: str, password: str, host: str, name: str, parsed: bool
    ) -> None:
        """Shown, refused as no URL, or refused by a server that is not there: never the password."""
        port = str(free_port()) if parsed else "5x"  # 5x: no number, SQLAlchemy cannot parse it
        text = f"{scheme}://{user}:{password}@{host}:{port}/{name}"
        shown: list[str] = []
        if parsed:
            shown.append(shown_url(database_url(text)))
        if not parsed or host == "127.0.0.1":  # a server that is not there: the connection is refused
            try:
                open_store(text).close()
            except DatabaseError as error:
                shown.append(str(error))
                # What the driver said first, its cause (its later lines ask whether a server runs
                # there: the seed-43 sample's sql.py 658 showed that line alone, `[-1]` for `[0]`).
                cause = f"port {port} failed: Connection refused" if parsed else "is not a database URL"
                check(cause in shown[-1], f"{text}: the refusal does not say {cause!r}: {shown[-1]!r}")
            else:
                check(False, f"{text}: opened, with no server there")
        for message in shown:
            check(password not in message, f"{text}: the password is shown: {message!r}")
            check(
                f"{user}:***@{host}" in message,
                f"{text}: the message does not name {user}@{host}: {message!r}",
            )
        EXPLORED.outcomes["world: a password hidden"] += 1

    @precondition(lambda self: self.postgres_url is not None)
    @rule(name=st.sampled_from(["books", "locked", "books_unlocked"]), how=OPENINGS)
    def a_database_the_server_does_not_have(self, name: str, how: str) -> None:
        """PostgreSQL: a database the running server does not have is refused in one line that says so
        and names it, to read, to write and to upgrade; one whose name says "locked", never as locked
        by another writer (the seed-113 sample's sql.py 710, `<=` for `==` on "sqlite", read the
        server's words as SQLite's busy lock)."""
        assert self.postgres_url is not None
        # A name no server has (`ppk check --store URL` runs this on a user's server, so not a name a
        # database there might have): were it there, the store could write its schema into it.
        missing = make_url(self.postgres_url).set(database=f"ppk_absent_{uuid.uuid4().hex}_{name}")
        text = missing.render_as_string(hide_password=False)
        said = refusal_opening(text, how)
        check(said != "opened", f"{text}, {how}: opened, and the server has no such database")
        check(
            f'database "{missing.database}" does not exist' in said and "another writer" not in said,
            f"{text}, {how}: refused as {said!r}",
        )
        check("\n" not in said, f"{text}, {how}: the refusal is more than one line: {said!r}")
        EXPLORED.outcomes["world: a database the server does not have"] += 1

    # --- A backend's own engine -------------------------------------------------------------------

    @rule(data=st.data(), kind=st.sampled_from(sorted(FOREIGN_ENGINES)), user=USERS, password=PASSWORDS)
    def a_backends_own_engine(self, data: st.DataObject, kind: str, user: str, password: str) -> None:
        """spec.md#database: `SqlStore(engine)` refuses an engine ppk cannot keep books on, in one line
        that names it and never its password, before anything is read or written (a SQLite engine's
        file is not made); it takes `make_engine`'s engine, and a psycopg 3 engine a backend made
        itself, and reads the books there."""
        scheme, says = FOREIGN_ENGINES[kind]
        path = self.new_path()
        url = f"sqlite:///{path}" if kind == OWN_SQLITE else f"{scheme}://{user}:{password}@db.example/{user}"
        with stood_in(scheme):
            engine = create_engine(url, module=None if kind == OWN_SQLITE else psycopg)
        try:
            SqlStore(engine).close()
        except DatabaseError as error:
            message = str(error)
        else:
            message = ""
        finally:
            engine.dispose()
        check(says in message and "\n" not in message, f"{kind}: {message!r} does not say {says!r}")
        check(password not in message, f"{kind}: the password is shown: {message!r}")
        check(kind == OWN_SQLITE or f"{user}:***@db.example" in message, f"{kind}: {message!r}")
        check(not Path(path).exists(), f"{kind}: the refused store made {path}")
        database = data.draw(st.sampled_from(sorted(self.books)), label="database")
        named = database_url(database)
        own = create_engine(named) if type(self).postgres_url else make_engine(named)
        store = SqlStore(own)
        try:
            self.same_books(store, self.books[database], f"{database} on a backend's own engine")
        finally:
            store.close()
        EXPLORED.outcomes[f"world: {kind} engine refused"] += 1

    # --- Another writer ---------------------------------------------------------------------------

    @precondition(lambda self: self.postgres_url is None)
    @rule(data=st.data(), command=COMMANDS)
    def another_writer_holds_the_lock(self, data: st.DataObject, command: Command) -> None:
        """Readers read on; a writer gives up after the busy timeout, writing nothing; then it applies."""
        path = data.draw(st.sampled_from(sorted(self.books)), label="database")
        model = self.books[path]
        self.changed.add(path)
        EXPLORED.commands += 2
        with environment(BUSY_TIMEOUT_ENV, BUSY_TIMEOUT), contextlib.closing(open_store(path)) as store:
            holder = sqlite3.connect(path, isolation_level=None)
            try:
                holder.execute("BEGIN IMMEDIATE")
                self.same_books(store, model, f"{path}, read while another writer holds the lock")
                started = time.monotonic()
                try:
                    store.execute(command)
                    check(False, f"{path}: {command} written while another writer held the lock")
                except DatabaseError as error:
                    check("locked" in str(error) and f"{BUSY_TIMEOUT} s" in str(error), f"{path}: {error}")
                waited_long_enough(time.monotonic() - started, f"{path}: {command}")
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            self.same_books(store, model, f"{path}, after a write that gave up")
            check(
                store.execute(command) == model.execute(command),
                f"{path}: {command} decided apart from the model",
            )
        EXPLORED.outcomes["world: a writer gave up on a held lock"] += 1

    @precondition(lambda self: self.postgres_url is None)
    @rule(released=st.booleans())
    def another_connection_holds_a_new_files_lock(self, released: bool) -> None:
        """A new file another connection holds the write lock of: not yet in WAL mode, whose switch
        SQLite refuses at once, busy timeout or not (sql.py 199, which no machine reached). ppk waits
        for that lock as for any: it opens the database once the lock is released, or gives up in
        one line after the busy timeout, having made nothing."""
        path = self.new_path()
        timeout = "5" if released else BUSY_TIMEOUT
        # The busy timeout, and one more sleep of the loop that waits for a new file's lock.
        with (
            another_connection_holding_the_lock(path, released=released),
            environment(BUSY_TIMEOUT_ENV, timeout),
            the_store_waits_at_most(float(timeout) + 0.01, f"for a lock held, a busy timeout of {timeout} s"),
        ):
            started = time.monotonic()
            try:
                open_store(path).close()
                refusal = ""
            except DatabaseError as error:
                refusal = str(error)
            waited = time.monotonic() - started
        if released:
            check(not refusal, f"{path}: a new file whose lock was released within 0.02 s: {refusal}")
            self.books[path] = MemoryStore()
            self.changed.add(path)
            EXPLORED.outcomes["world: a new file's lock waited for"] += 1
        else:
            check(
                refusal
                == f"{path!r} is locked by another writer beyond the busy timeout of {BUSY_TIMEOUT} s "
                f"(${BUSY_TIMEOUT_ENV}); try again when it is done",
                f"{path}: a new file whose lock was held: {refusal or 'opened'}",
            )
            check(not self.tables(path), f"{path}: tables made while another connection held the lock")
            waited_long_enough(waited, f"{path}: opening a new file whose lock was held")
            Path(path).unlink()
            EXPLORED.outcomes["world: a new file's lock given up on"] += 1

    @precondition(lambda self: self.postgres_url is None and bool(self.books))
    @rule(data=st.data(), how=OPENINGS, released=st.booleans())
    def another_connection_holds_its_lock(self, data: st.DataObject, how: str, released: bool) -> None:
        """spec.md#storage: opening a ppk database to write or to upgrade is a write transaction, which
        creates or upgrades the schema if it must, so that two processes never both do: it begins with
        `BEGIN IMMEDIATE` and waits for another connection's write lock as any writer does, opening
        once the lock is released, or giving up in one line after the busy timeout, having changed
        nothing. Opened to read, it opens at once (WAL). (The seed-131 sample's sql.py 354 began that
        transaction as a reader's, and opened at once past a held lock.)"""
        path = data.draw(st.sampled_from(sorted(self.books)), label="database")
        timeout = "5" if released else BUSY_TIMEOUT
        with (
            another_connection_holding_the_lock(path, released=released),
            environment(BUSY_TIMEOUT_ENV, timeout),
        ):
            started = time.monotonic()
            opened = refusal_opening(path, how)
            waited = time.monotonic() - started
        if how == "to read" or released:
            check(opened == "opened", f"{path}, {how}, a lock held (released: {released}): {opened}")
        else:
            check(
                opened == f"{path!r} is locked by another writer beyond the busy timeout of {BUSY_TIMEOUT} s "
                f"(${BUSY_TIMEOUT_ENV}); try again when it is done",
                f"{path}, {how}, while another connection held its lock: {opened}",
            )
            waited_long_enough(waited, f"{path}: opening {how} while another connection held its lock")
        if how == "to read":
            check(waited < float(timeout), f"{path}: a reader waited {waited:.3f} s for a writer's lock")
        with contextlib.closing(open_store(path, create=False)) as store:
            self.same_books(store, self.books[path], f"{path}, after opening {how} past a held lock")
        EXPLORED.outcomes[f"world: opened {how} past a held lock"] += 1

    @rule(data=st.data(), groups=GROUPS)
    def writers_race(self, data: st.DataObject, groups: list[list[Command]]) -> None:
        """Each group from its own store at once: on SQLite, the answers and books of some order of
        the groups; on PostgreSQL, of some interleaving of the writers' commands on each account."""
        database = data.draw(st.sampled_from(sorted(self.books)), label="database")
        EXPLORED.commands += sum(map(len, groups))
        stores = [open_store(database) for _ in groups]
        try:
            answers = race(stores, groups)
        finally:
            for store in stores:
                store.close()
        for number, answer in enumerate(answers):
            check(not isinstance(answer, BaseException), f"writer {number} of {groups} failed: {answer!r}")
        decided = [
            list(zip(group, answer, strict=True))
            for group, answer in zip(groups, answers, strict=True)
            if not isinstance(answer, BaseException)
        ]
        with contextlib.closing(open_store(database)) as store:
            held = books_of(store)
        model = self.books[database]
        after = (
            serially(model, decided, held) if self.postgres_url is None else by_account(model, decided, held)
        )
        check(
            after is not None,
            f"{database}: the answers {answers} to {groups} and the books {held} are those of no "
            + ("order of the groups" if self.postgres_url is None else "interleaving of the writers"),
        )
        assert after is not None
        self.books[database] = after
        self.changed.add(database)
        EXPLORED.outcomes[f"world: {len(groups)} writers raced"] += 1

    @precondition(lambda self: self.postgres_url is not None)
    @rule(
        data=st.data(),
        others=st.lists(COMMANDS, max_size=3),
        named=st.sampled_from(["b0", "b1", "b2"]),
        between=st.booleans(),
        retried=st.sampled_from(["", *sorted(RETRIED_UNDER_A_GROUP)]),
    )
    def an_account_opened_under_a_group(
        self, data: st.DataObject, others: list[Command], named: str, between: bool, retried: str
    ) -> None:
        """PostgreSQL: a group locks the accounts it names that exist; one it names that does not is
        opened by another writer (and a profit withdrawn on it) while the group runs, before the
        group's first command on it. Either right after that first lock: the group must then read
        that account's keys command by command, its payout among them (sql.py 796, which no machine
        reached; the seed-37 sample's survivor sql.py 447 looked the payout up by `>=`), and its
        answers are those of the other writer's commands first. The payout confirmed is the one
        made, or one that sorts before or after it and does not exist; before it the group may send
        one of the other writer's commands again, or its id with another amount, whose entry it must
        read there (the seed-101 sample's sql.py 842, `is not None` for `is None`, decided it anew).

        Or (`between`) after the group's own lock of that account found no row, and before anything
        else the group asks: then the other writer funds it again. The group's first command on it
        is then always the opening again: decided against no account, its insert meets the other
        writer's unique key, and the group must read that account and decide it again (the seed-107
        sample's sql.py 883, `<=` for `==` on the last attempt, gave up at the first violation; the
        opening was only one draw in five, and the smaller PostgreSQL run drew none). Whatever the
        group made of the account, its answers and the books must be those of some interleaving of
        the two writers' commands on it. (Before 65a0092 the group read the new row without its lock
        and appended the same seq as the second funding: a duplicate key, found once by a CI race.)"""
        database = data.draw(st.sampled_from(sorted(self.books)), label="database")
        account = f"n{next(self.numbers)}"
        opening: list[Command] = [
            OpenAccount(id="o1", account=account, my_share_bp=100, company_share_bp=900),
            Fund(id="f1", account=account, amount_minor=100_000),
            RecordBalance(id="b1", account=account, balance_minor=100_000 + 2_500),
        ]
        again: list[Command] = [Fund(id="f2", account=account, amount_minor=1)] if between else []
        resent = (["the opening again"] if between else []) + ([retried] if retried else [])
        retry = [RETRIED_UNDER_A_GROUP[name](opening) for name in dict.fromkeys(resent)]
        confirm = ConfirmPayout(id="c1", account=account, payout=f"{account}:{named}")
        group = [*others, *retry, confirm, *others[:1]]
        EXPLORED.commands += len(opening) + len(again) + len(group)
        with (
            contextlib.closing(open_store(database)) as writer,
            contextlib.closing(open_store(database)) as other,
        ):
            answers, opened, funded = under_a_group(writer, group, other, opening, again, between=between)
        model = self.books[database]
        check(
            not isinstance(opened, BaseException),
            f"{database}: the other writer's opening under the group failed: {opened!r}",
        )
        assert not isinstance(opened, BaseException)
        check(bool(opened), f"{database}: no lock of the group came {'alone' if between else 'first'}")
        if between:
            check(
                not isinstance(funded, BaseException),
                f"{database}: the other writer's {again} under the group failed: {funded!r}",
            )
            assert not isinstance(funded, BaseException)
            with contextlib.closing(open_store(database)) as reader:
                held = books_of(reader)
            writers: list[Decided] = [
                list(zip(group, answers, strict=True)),
                list(zip(opening + again, opened + funded, strict=True)),
            ]
            after = by_account(model, writers, held)
            check(
                after is not None,
                f"{database}: {group} (answered {answers}), with {opening + again} (answered "
                f"{opened + funded}) written under it, left books {held} of no interleaving of the two",
            )
            assert after is not None
            self.books[database] = after
        else:
            expected = [model.execute(command) for command in opening]
            check(
                opened == expected, f"{database}: the other writer's {opening} got {opened}, not {expected}"
            )
            expected = [model.execute(command) for command in group]
            check(
                answers == expected,
                f"{database}: {group} after {account!r} was opened got {answers}, not {expected}",
            )
        self.changed.add(database)
        EXPLORED.outcomes[
            "world: an account opened under a group" + (" between its lock and read" if between else "")
        ] += 1

    @rule(data=st.data(), table=st.sampled_from(["accounts", "payouts"]))
    def a_row_changed_under_its_lock(self, data: st.DataObject, table: str) -> None:
        """No writer changes a row a group holds locked, so a group's compare-and-set updates find
        each row as it read it. Were one changed anyway (a bug of the locking; made here on the
        group's own connection, just before its update of `table`), the group must fail naming it
        and commit nothing: neither its command nor the change. (The seed-43 sample's sql.py 904,
        `>` for `!=`, committed over it.)"""
        database = data.draw(st.sampled_from(sorted(self.books)), label="database")
        account = f"n{next(self.numbers)}"
        model = self.books[database]
        opening: list[Command] = [
            OpenAccount(id="o1", account=account, my_share_bp=100, company_share_bp=900),
            Fund(id="f1", account=account, amount_minor=100_000),
            RecordBalance(id="b1", account=account, balance_minor=100_000 + 2_500),  # a payout
        ]
        confirm = ConfirmPayout(id="c1", account=account, payout=f"{account}:b1")
        change = {
            "accounts": f"UPDATE accounts SET entry_count = entry_count + 1 WHERE account = '{account}'",
            "payouts": f"UPDATE payouts SET status = 'confirmed' WHERE account = '{account}'",
        }[table]
        changed: list[str] = []

        def before_the_update(_connection: Any, cursor: Any, statement: str, *_: Any) -> None:
            if statement.startswith(f"UPDATE {table} ") and not changed:
                changed.append(statement)
                cursor.connection.cursor().execute(change)

        with contextlib.closing(open_store(database)) as store:
            opened = store.execute_many(opening)
            check(opened == [model.execute(command) for command in opening], f"{database}: {opened}")
            event.listen(store.engine, "before_cursor_execute", before_the_update)
            try:
                store.execute_many([confirm])
            except AssertionError as error:
                failed = str(error)
            else:
                failed = "committed"
            finally:
                event.remove(store.engine, "before_cursor_execute", before_the_update)
        check(bool(changed), f"{database}: the group never updated {table}")
        words = {"accounts": "an account changed under its lock", "payouts": "a payout was not pending under"}
        check(words[table] in failed, f"{database}: {confirm} over a changed {table} row: {failed}")
        self.changed.add(database)  # the books must be the model's: the opening, and nothing of the group
        EXPLORED.commands += len(opening) + 1
        EXPLORED.outcomes[f"world: a group failed over a changed row of {table}"] += 1

    # --- The server rolls back --------------------------------------------------------------------

    @rule(data=st.data(), command=COMMANDS, times=ROLLBACKS, deadlock=st.booleans())
    def the_server_rolls_back(
        self, data: st.DataObject, command: Command, times: int, deadlock: bool
    ) -> None:
        """The command's transaction fails `times` times as the server's victim: run again up to
        RETRIES_MAX times, it applies once; past that, a one-line error and nothing written."""
        database = data.draw(st.sampled_from(sorted(self.books)), label="database")
        model = self.books[database]
        self.changed.add(database)
        EXPLORED.commands += 1
        # spec.md#database: before its n-th retry the store waits 2^(n-1) ms (the seed-43 sample's
        # survivor sql.py 571 waited 3^(n-1): 29.5 s in all instead of 1 s, at ten retries).
        backoff_s = 0.001 * (2 ** min(times, SPEC_RETRIES_MAX) - 1)
        with contextlib.closing(open_store(database)) as store:
            with (
                rolled_back(store, times, "40P01" if deadlock else "40001") as begun,
                # Counted, not slept: no other writer is there to wait for (1,023 ms at the last retry).
                the_store_waits_at_most(
                    backoff_s + 1e-9, "in back-off: 1, 2, 4, ... ms", sleeping=False
                ) as waits,
            ):
                try:
                    decision: Decision | None = store.execute(command)
                    failed = ""
                except DatabaseError as error:
                    decision, failed = None, str(error)
            check(
                abs(waits.slept_s - backoff_s) < 1e-9,
                f"{times} rollbacks: {waits.slept_s} s, not {backoff_s}",
            )
            if times <= SPEC_RETRIES_MAX:
                check(
                    decision == model.execute(command),
                    f"{command} after {times} rollbacks: {decision} {failed}",
                )
                check(len(begun) == times + 1, f"{times} rollbacks, {len(begun)} transactions")
            else:
                check(decision is None and "SQLSTATE" in failed, f"{times} rollbacks in a row: {decision}")
                check(len(begun) == SPEC_RETRIES_MAX + 1, f"{times} rollbacks, {len(begun)} transactions")
            self.same_books(store, model, f"{database}, after {times} rollbacks")
        EXPLORED.outcomes["world: rolled back, then run again"] += 1

    @precondition(lambda self: self.postgres_url is not None and bool(self.readers))
    @rule(command=COMMANDS)
    def the_server_ends_a_stores_connection(self, command: Command) -> None:
        """spec.md#database: the server ends the connection a store holds idle (a restart, an
        administrator's `pg_terminate_backend`, a proxy's idle timeout): the store goes on at its next
        call, on a new connection, its answer and the books as the model's (the seed-89 sweep: with
        `pool_pre_ping` off, it failed on the dead one). Only the store's own connection is ended:
        `ppk check --store URL` may run beside someone's session on that database."""
        database = type(self).postgres_url
        assert database is not None
        reader = self.readers[database]
        with reader.engine.connect() as connection:  # the connection its pool lends next
            pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        # pg_terminate_backend waits up to 10 s for the backend to exit (PostgreSQL 14 and later).
        engine = make_engine(database_url(database))
        try:
            with engine.connect() as connection:
                ended = connection.exec_driver_sql(
                    f"SELECT pg_terminate_backend({int(pid)}, 10000)"
                ).scalar_one()
        finally:
            engine.dispose()
        check(ended, f"the server did not end the store's connection {pid}")
        model = self.books[database]
        self.changed.add(database)
        EXPLORED.commands += 1
        try:
            decision: Decision | str = reader.execute(command)
        except DatabaseError as error:
            decision = str(error)
        check(decision == model.execute(command), f"{command} on a new connection: {decision}")
        EXPLORED.outcomes["world: a store's connection ended by the server, the store went on"] += 1


Decided = list[tuple[Command, Decision]]
"""A writer's commands, each with the answer it got, in the order it sent them."""


@contextlib.contextmanager
def another_connection_holding_the_lock(path: str, *, released: bool) -> Iterator[None]:
    """Inside, another connection holds the SQLite write lock of `path` (making the file if it is not
    there): until the end, or, if `released`, for 0.02 s."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.02, holder.execute, ("ROLLBACK",))
    try:
        if released:
            release.start()
        yield
    finally:
        if released:
            release.join()
        else:
            holder.execute("ROLLBACK")
        holder.close()


def refusal_opening(named: str, how: str) -> str:
    """Open `named` `how` ("to write", "to read", "to upgrade") and close it: the refusal's text, or
    "opened"."""
    try:
        if how == "to upgrade":
            upgrade_database(named)
        else:
            open_store(named, create=how == "to write").close()
    except DatabaseError as error:
        return str(error)
    return "opened"


def serially(model: MemoryStore, writers: Sequence[Decided], held: Books) -> MemoryStore | None:
    """The model after the writers' groups one after the other, in the order that gives each command
    its answer and the database's books (answers alone may fit several orders: two fundings of one
    account under two ids); None if no order does."""
    for order in itertools.permutations(writers):
        trial = copy.deepcopy(model)
        answered = all(trial.execute(command) == answer for group in order for command, answer in group)
        if answered and books_of(trial) == held:
            return trial
    return None


def by_account(model: MemoryStore, writers: Sequence[Decided], held: Books) -> MemoryStore | None:
    """The model after the writers' commands, account by account, interleaved in an order that keeps
    each writer's order, gives each command its answer, and puts what is recorded in the order of the
    database's ledger; None if there is none. (Commands on different accounts never meet.)"""
    after: MemoryStore | None = model
    for account_id in sorted({command.account for writer in writers for command, _ in writer}):
        lanes = [
            [(command, answer) for command, answer in writer if command.account == account_id]
            for writer in writers
        ]
        ledger = held[account_id][1] if account_id in held else []
        assert after is not None
        after = _interleaved(after, lanes, account_id, ledger)
        if after is None:
            return None
    return after if after is not None and books_of(after) == held else None


def _interleaved(
    model: MemoryStore, lanes: list[Decided], account_id: str, ledger: list[Entry]
) -> MemoryStore | None:
    # The state at a choice of positions in the lanes is the same whatever the path: the same
    # commands got the same answers, and the recorded ones went into the ledger in its order.
    seen: set[tuple[int, ...]] = set()

    def walk(store: MemoryStore, positions: tuple[int, ...]) -> MemoryStore | None:
        if positions in seen:
            return None
        seen.add(positions)
        if all(position == len(lane) for position, lane in zip(positions, lanes, strict=True)):
            return store
        for number, lane in enumerate(lanes):
            if positions[number] < len(lane):
                command, answer = lane[positions[number]]
                trial = copy.deepcopy(store)
                written = list(trial.ledger(account_id))
                if trial.execute(command) != answer or written != ledger[: len(written)]:
                    continue
                found = walk(trial, (*positions[:number], positions[number] + 1, *positions[number + 1 :]))
                if found is not None:
                    return found
        return None

    return walk(model, (0,) * len(lanes))


Books = dict[str, tuple[Account | None, list[Entry], list[Payout]]]
"""A store's books: each account (by id, in order) with its ledger and its payouts."""


def books_of(store: Store) -> Books:
    return {
        account_id: (store.account(account_id), list(store.ledger(account_id)), store.payouts(account_id))
        for account_id in store.account_ids()
    }


class Answering(threading.Thread):
    """`commands` through `store`'s execute_many in a thread of its own (once all the `barrier`'s
    parties are there, if given); `answer` is its answers, or what it raised, or a RuntimeError while
    it has neither."""

    def __init__(
        self, store: SqlStore, commands: list[Command], barrier: threading.Barrier | None = None
    ) -> None:
        super().__init__()
        self.store, self.commands, self.barrier = store, commands, barrier
        self.answer: list[Decision] | BaseException = RuntimeError(f"no answer in {RACE_TIMEOUT_S:g} s")

    def run(self) -> None:
        try:
            if self.barrier is not None:
                self.barrier.wait(RACE_TIMEOUT_S)
            self.answer = self.store.execute_many(self.commands)
        except BaseException as error:
            self.answer = error


def under_a_group(
    writer: SqlStore,
    group: list[Command],
    other: SqlStore,
    opening: list[Command],
    again: list[Command],
    *,
    between: bool,
) -> tuple[list[Decision], list[Decision] | BaseException, list[Decision] | BaseException]:
    """`group` through `writer`, with `opening` through `other` inside the group's transaction: after
    its first lock, or (`between`) after its lock of the opened account alone; then `again` through
    `other`, after the group's next statement (or after the group, if it had none). The answers; the
    opening's is an error if it waited for the group (spec.md#database: writers on different accounts
    never wait for each other), and [] if it never ran.

    The opening runs in a thread of its own and is waited for: run in this thread, an opening that
    waited for the group's locks would wait forever (the seed-59 sample's sql.py 447, `!=` in the
    lock of one account, locked every other account and hung the suite until its timeout)."""
    (account,) = {command.account for command in opening}
    opening_ran: list[Answering] = []
    waited: list[bool] = []
    funding: list[Answering] = []

    def set_going() -> Answering:
        funding.append(Answering(other, again))
        funding[0].start()
        return funding[0]

    def under_the_group(_connection: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if not opening_ran:
            # The group's first lock (of them all), or its lock of this account alone.
            alone = isinstance(parameters, dict) and parameters.get("account") == account
            if "FOR UPDATE" in statement and alone == between:
                opening_ran.append(Answering(other, opening))
                opening_ran[0].start()
                opening_ran[0].join(APART_WAIT_S)
                waited.append(opening_ran[0].is_alive())
        elif again and not funding:
            # The group's next statement. Should the group hold the account's lock by now, the
            # funding waits for its commit; so it runs beside the group, not in it.
            set_going().join(LOCK_WAIT_S)

    event.listen(writer.engine, "after_cursor_execute", under_the_group)
    try:
        answers = writer.execute_many(group)
    finally:
        event.remove(writer.engine, "after_cursor_execute", under_the_group)
    if again and not funding:  # the group asked nothing more
        set_going()
    for thread in [*opening_ran, *funding]:
        thread.join(RACE_TIMEOUT_S)
    opened: list[Decision] | BaseException = opening_ran[0].answer if opening_ran else []
    if waited and waited[0]:
        opened = RuntimeError(
            f"{opening} waited more than {APART_WAIT_S:g} s under {group}, which held locks on other "
            f"accounts only (answered {opened!r} once the group committed)"
        )
    return answers, opened, funding[0].answer if funding else []


def race(stores: Sequence[SqlStore], groups: Sequence[list[Command]]) -> list[list[Decision] | BaseException]:
    """Each group through its store's execute_many in its own thread, all released at once."""
    barrier = threading.Barrier(len(groups))
    threads = [Answering(store, group, barrier) for store, group in zip(stores, groups, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(RACE_TIMEOUT_S)
    return [thread.answer for thread in threads]
