"""The SQL store: every command one atomic transition in SQLite or PostgreSQL (spec.md#database).

`SqlStore` implements the `Store` protocol on the tables of `adapters/schema.py`, with SQLAlchemy
Core. Each command reads its account's row (and its active loss), looks up by key what the command
names (the entry under its id, the payout it confirms), asks the pure kernel to decide and fold, and
writes the entry, the account, and the losses and payouts it touched in the same transaction, or
nothing. `execute_many` is group commit: many commands in one transaction, each still decided on its
own against what the ones before it decided, every decision returned only after the whole group
committed. A group reads its accounts and looks up its keys in a few statements, not a few per
command, and writes each table once at its end (`_Group`): SQLAlchemy's cost per statement, not the
database, was most of a command's time.

Concurrency, by engine:
- SQLite has one writer at a time: a write transaction starts with `BEGIN IMMEDIATE`, and a writer
  that finds another waits up to the busy timeout, so concurrent processes queue.
- PostgreSQL has no global point of serialisation: a command locks its own account's row
  (`SELECT … FOR UPDATE`) and only then reads the account and its loss, so writers on different
  accounts never wait for each other, and a writer always decides on what the last one committed. Two writers
  opening the same new account, which has no row to lock yet, are told apart by the unique keys:
  the loser's savepoint rolls back and it decides again against the account the winner committed.
  A group locks the accounts it names in one order, and a deadlock or serialisation failure between
  groups retries the group, a bounded number of times.

Durability: SQLite in WAL mode with `synchronous=FULL`, checked when the store opens (a commit is on
disk before `execute` returns); PostgreSQL with the server's settings. A URL's password is never
shown: every message names the database through `shown_url`.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs
from sqlalchemy import (
    Connection,
    Engine,
    Row,
    Select,
    Table,
    bindparam,
    create_engine,
    event,
    insert,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, OperationalError

from ppk.adapters import schema
from ppk.adapters.canonical import decode_entry, encode_entry
from ppk.adapters.chain import chained, genesis
from ppk.adapters.store import DATABASE_DEFAULT, DATABASE_ENV, DatabaseError, PendingPayout
from ppk.kernel.state import (
    NOTHING_RECORDED,
    Account,
    Applied,
    Command,
    Decision,
    Entry,
    Lookup,
    Loss,
    LossOpened,
    Payout,
    PayoutStatus,
    Refused,
)
from ppk.kernel.transitions import (
    command_rejection,
    execute,
    losses_written,
    payout_looked_up,
    payouts_written,
)

BUSY_TIMEOUT_S: Final = 60.0
"""How long a SQLite writer waits for another to finish before it gives up."""

RETRIES_MAX: Final = 10
"""How many times a group is retried after a deadlock or serialisation failure (PostgreSQL), and a
command after losing the race to open its account."""

PAGE_ROWS: Final = 1_000
"""Rows read at a time from the ledger or the outbox: memory never grows with a ledger."""

_POSTGRES_SCHEMES: Final = ("postgresql", "postgres")
_RETRYABLE_SQLSTATES: Final = frozenset({"40001", "40P01"})
"""Serialisation failure and deadlock: PostgreSQL rolled the transaction back; it can run again."""
_UNIQUE_VIOLATION: Final = "23505"
_IN_MEMORY: Final = ":memory:"
_KEEPS_NOTHING: Final = "an in-memory SQLite database keeps nothing: name a file, like sqlite:///ppk.db"


def database_url(named: str | None) -> URL:
    """The database a command line names: `--db`, else `PPK_DATABASE_URL`, else `ppk.db` here.

    A text without `://` is a SQLite file's path. `postgresql://user@host:port/db` (or
    `postgres://`) is read as users write it and driven by psycopg 3.
    """
    given = named or os.environ.get(DATABASE_ENV) or DATABASE_DEFAULT
    if "://" not in given:
        path = str(Path(given))
        if path == _IN_MEMORY:  # SQLite's name for a database in memory (./:memory: included)
            raise DatabaseError(_KEEPS_NOTHING)
        return URL.create("sqlite", database=path)
    try:
        url = make_url(given)
    except (ArgumentError, ValueError):  # ValueError: a port that is no number
        raise DatabaseError(
            f"{_shown_text(given)} is not a database URL; write postgresql://USER@HOST:PORT/NAME "
            "or a SQLite file's path"
        ) from None
    if url.drivername in _POSTGRES_SCHEMES or url.drivername == "postgresql+psycopg":
        return url.set(drivername="postgresql+psycopg")
    if url.drivername in ("sqlite", "sqlite+pysqlite"):
        if not url.database or url.database == _IN_MEMORY:
            raise DatabaseError(_KEEPS_NOTHING)
        # Not url.query, which drops a `?name` with no value: the file would be another than written.
        if "?" in given:  # uri=true&mode=memory, nolock=1, timeout=0: each would undo what ppk sets
            raise DatabaseError(
                f"{_shown_text(given)}: a SQLite URL takes no options after '?' (ppk sets WAL, "
                "synchronous=FULL and the busy timeout itself); write sqlite:///PATH"
            )
        return url.set(drivername="sqlite")
    raise DatabaseError(
        f"{shown_url(url)}: ppk stores in SQLite (a file path or sqlite:///PATH) or PostgreSQL "
        f"(postgresql://USER@HOST:PORT/NAME), not {url.drivername}"
    )


def _shown_text(text: str) -> str:
    """A URL as the user wrote it, with any password hidden, even if SQLAlchemy cannot parse it."""
    scheme, _, rest = text.partition("://")
    credentials, at, host = rest.rpartition("@")
    if at and ":" in credentials:
        credentials = credentials.split(":", 1)[0] + ":***"
    return repr(f"{scheme}://{credentials}{at}{host}")


def shown_url(url: URL) -> str:
    """A database as messages name it: its URL with the password hidden, or a SQLite file's path."""
    if url.get_backend_name() == "sqlite":
        return repr(url.database)
    return repr(url.set(drivername=url.get_backend_name()).render_as_string(hide_password=True))


def is_postgresql(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


# --- Engines ---------------------------------------------------------------------------------------


def make_engine(url: URL) -> Engine:
    """An engine on the database, set up for durable, serialised writes (and checked, for SQLite)."""
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    # READ COMMITTED, the server's default: each command locks its account's row and reads after it.
    return create_engine(url, pool_pre_ping=True)


BUSY_TIMEOUT_ENV: Final = "PPK_BUSY_TIMEOUT"
"""The environment variable that sets SQLite's busy timeout, in seconds, instead of BUSY_TIMEOUT_S."""

BUSY_TIMEOUT_MAX_S: Final = 86_400.0


def busy_timeout_s() -> float:
    """How long a SQLite writer waits for another's lock: $PPK_BUSY_TIMEOUT, else BUSY_TIMEOUT_S."""
    text = os.environ.get(BUSY_TIMEOUT_ENV, "").strip()
    if not text:
        return BUSY_TIMEOUT_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= BUSY_TIMEOUT_MAX_S:  # also refuses nan
        raise DatabaseError(
            f"${BUSY_TIMEOUT_ENV} is {text[:40]!r}: it must be a number of seconds from 0 to "
            f"{BUSY_TIMEOUT_MAX_S:g}"
        )
    return seconds


def _journal_mode_wal(cursor: Any, timeout_s: float) -> str:
    """`PRAGMA journal_mode=WAL`, waiting as long as the busy timeout for another connection's lock.

    A new file is not yet in WAL mode, and switching it takes an exclusive lock. When another
    connection holds the file's write lock meanwhile (two `ppk apply` opening one new database at
    once), SQLite answers "database is locked" at once, without its busy handler (waiting could
    deadlock). The other's switch is over within milliseconds, so ppk waits and asks again.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return str(cursor.execute("PRAGMA journal_mode=WAL").fetchone()[0])
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


def _durability(cursor: Any, timeout_s: float) -> tuple[str, int]:
    """What SQLite keeps on this connection, asked for a write-ahead log and synchronous=FULL: the
    journal mode it answers with (the one the file keeps, where it cannot keep a write-ahead log) and
    the synchronous level."""
    mode = _journal_mode_wal(cursor, timeout_s)
    cursor.execute("PRAGMA synchronous=FULL")
    return mode, cursor.execute("PRAGMA synchronous").fetchone()[0]


_NEW_FILE: Final = "ppk_new_file"
"""A SQLite connection's note that its file was not there before it connected."""


def _sqlite_engine(url: URL) -> Engine:
    path = Path(url.database or "")
    if not path.parent.is_dir():
        raise DatabaseError(f"{shown_url(url)}: the folder {str(path.parent)!r} does not exist")
    timeout_s = busy_timeout_s()
    engine = create_engine(url, connect_args={"timeout": timeout_s})

    @event.listens_for(engine, "do_connect")
    def _before_connect(_dialect: Any, record: Any, _cargs: Any, _cparams: Any) -> None:
        record.info[_NEW_FILE] = not path.exists()  # SQLite makes the file as it connects

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        # pysqlite would BEGIN on its own, deferred, before the first write; ppk says when and how.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            mode, synchronous = _durability(cursor, timeout_s)
        finally:
            cursor.close()
        # FULL (2): a commit is synced to disk before it returns; WAL lets readers run beside the writer.
        if str(mode).lower() != "wal" or synchronous != 2:
            dbapi_connection.close()
            if record.info.get(_NEW_FILE) and path.stat().st_size == 0:
                path.unlink()  # refused, the command leaves no database behind it did not find
            raise DatabaseError(
                f"{shown_url(url)}: SQLite would not keep a write-ahead log with synchronous=FULL here "
                f"(journal_mode={mode}, synchronous={synchronous}); put the database on a local disk"
            )

    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_begin(connection: Connection) -> None:
    # A writer takes the write lock at once, so that it queues (busy timeout) before it reads
    # anything it will write from; a reader takes no lock at all (WAL).
    writes = connection.get_execution_options().get("ppk_write", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


def engine_problem(engine: Engine) -> str | None:
    """Why a store may not run on this engine, or None: ppk runs on SQLite set up by `make_engine`
    (a write-ahead log, synchronous=FULL, its busy timeout, a writer's BEGIN IMMEDIATE) and on
    PostgreSQL driven by psycopg 3, whose errors it reads, in calls that wait for their answer."""
    dialect = engine.dialect
    if dialect.name == "sqlite":
        if event.contains(engine, "begin", _sqlite_begin):
            return None
        return (
            "a SQLite engine ppk did not make: it would write without BEGIN IMMEDIATE, a write-ahead "
            "log or synchronous=FULL; make it with ppk.adapters.sql.make_engine, or use open_store"
        )
    if is_postgresql(engine):
        if dialect.driver == "psycopg" and not dialect.is_async:
            return None
        driver = f"{dialect.driver} (async)" if dialect.is_async else dialect.driver
        return (
            f"a PostgreSQL engine driven by {driver}: ppk drives PostgreSQL with psycopg 3, not async "
            "(postgresql+psycopg://)"
        )
    return f"a {dialect.name} engine: ppk stores in SQLite or PostgreSQL"


# --- Schema versions -------------------------------------------------------------------------------

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

SCHEMA_HEAD: Final = "0002"
"""The schema version this ppk writes, the head of its migrations (a test holds it to Alembic's): a
database already at it is opened without importing Alembic, a third of a durable command's start-up."""

_MIGRATIONS: Final = Path(__file__).resolve().parent / "migrations"


def _config(location: Path) -> Config:
    from alembic.config import Config  # noqa: PLC0415 (only to create, upgrade or refuse a schema)

    config = Config()
    config.set_main_option("script_location", str(location))
    return config


@functools.cache
def _scripts(location: Path) -> ScriptDirectory:
    """The migrations, read once per process: a store reopened many times reads them once."""
    from alembic.script import ScriptDirectory  # noqa: PLC0415

    return ScriptDirectory.from_config(_config(location))


def _alembic(connection: Connection) -> tuple[Config, ScriptDirectory]:
    config = _config(_MIGRATIONS)
    config.attributes["connection"] = connection
    return config, _scripts(_MIGRATIONS)


def schema_head() -> str:
    """The schema version this ppk writes: the head of its migrations."""
    head = _scripts(_MIGRATIONS).get_current_head()
    assert head is not None
    return head


_SCHEMA_LOCK: Final = threading.Lock()
"""Alembic keeps its migration context in module globals: one schema check or upgrade at a time."""

_SCHEMA_LOCK_KEY: Final = 0x70706B  # "ppk"
"""The PostgreSQL advisory lock that serialises schema checks and upgrades across processes."""


def _stored_versions(connection: Connection) -> list[str]:
    """The schema versions Alembic recorded in the database, read without Alembic (whose reader
    raises its own error when there are several): none without an `alembic_version` table; one in
    a database ppk made."""
    if not inspect(connection).has_table("alembic_version"):
        return []
    return list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())


def _schema_version(
    url: URL, engine: Engine, *, upgrade: bool, create: bool = True
) -> tuple[str | None, str]:
    """The database's schema version and this ppk's, after creating the schema in an empty database
    (and, with `upgrade`, after upgrading an older one); refused in one line if it is not ppk's, of
    a version this ppk does not know, or (without `upgrade`) older."""
    # Only a transaction that may write the schema takes SQLite's write lock; a reader's (`ppk show`,
    # `ppk audit`) would otherwise wait for another writer, which WAL lets readers never do.
    writes = create or upgrade
    with _SCHEMA_LOCK, engine.execution_options(ppk_write=writes).begin() as connection:
        if is_postgresql(engine):
            # Two processes opening one new database: the second waits, then finds the schema there.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
        versions = _stored_versions(connection)
        if versions == [SCHEMA_HEAD]:
            return SCHEMA_HEAD, SCHEMA_HEAD
        from alembic import command  # noqa: PLC0415 (the rare path: create, upgrade or refuse)

        config, scripts = _alembic(connection)
        head = scripts.get_current_head()
        assert head is not None
        if len(versions) > 1:  # a ppk database records one; which of these holds is not known
            shown = ", ".join(repr(version)[:40] for version in sorted(versions, key=str)[:5])
            raise DatabaseError(
                f"{shown_url(url)} has {len(versions)} schema versions ({shown}), and a ppk database "
                "has one: it is not a database this ppk can open"
            )
        revision = versions[0] if versions else None
        if revision is None and not create:
            raise DatabaseError(f"{shown_url(url)} holds no ppk database: it has no ppk schema version")
        if revision is None:
            tables = inspect(connection).get_table_names()
            if tables:
                named = ", ".join(sorted(tables)[:5])
                raise DatabaseError(
                    f"{shown_url(url)} is not a ppk database: it has tables ({named}) and no ppk "
                    f"schema version"
                )
        elif revision not in {script.revision for script in scripts.walk_revisions()}:
            raise DatabaseError(
                f"{shown_url(url)} has schema version {revision}, which this ppk (schema {head}) does not "
                f"know: a newer ppk wrote it; use that ppk"
            )
        elif revision != head and not upgrade:
            raise DatabaseError(
                f"{shown_url(url)} has schema version {revision} and this ppk needs {head}: "
                f"upgrade it with `ppk db upgrade --db {shown_url(url)[1:-1]}`"
            )
        if revision != head:
            command.upgrade(config, "head")
        return revision, head


def open_store(named: str | None = None, *, create: bool = True) -> SqlStore:
    """The SQL store on the database a command line names (see `database_url`), at this ppk's schema.

    An empty database gets the schema (with `create`; without it, an empty or missing database is
    refused: an auditor's typo must not make one); one at an older version is refused with the
    command that upgrades it, one at a version this ppk does not know (a newer ppk's) or one that is
    not ppk's is refused too: a store never writes into a schema it does not know.
    """
    url = database_url(named)
    if not create and url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        raise DatabaseError(f"{shown_url(url)}: no such database file")
    engine = make_engine(url)
    try:
        _schema_version(url, engine, upgrade=False, create=create)
    except DatabaseError:
        engine.dispose()
        raise
    except DBAPIError as error:
        engine.dispose()
        raise database_error(engine, error) from error
    return SqlStore(engine)


def upgrade_database(named: str | None = None) -> tuple[str | None, str]:
    """`ppk db upgrade`: bring the database to this ppk's schema; its versions before and after."""
    url = database_url(named)
    engine = make_engine(url)
    try:
        return _schema_version(url, engine, upgrade=True)
    except DBAPIError as error:
        raise database_error(engine, error) from error
    finally:
        engine.dispose()


# --- Rows and values -------------------------------------------------------------------------------

_ACCOUNT_FIGURES: Final = tuple(
    field.name for field in attrs.fields(Account) if field.name not in ("id", "loss")
)
"""The account's fields that are columns of `accounts` under the same name."""

_LOSS_FIGURES: Final = tuple(field.name for field in attrs.fields(Loss) if field.name != "opened_by")


def account_row(account: Account) -> dict[str, Any]:
    """The `accounts` row of an account."""
    row = {name: getattr(account, name) for name in _ACCOUNT_FIGURES}
    row["account"] = account.id
    row["loss_opened_by"] = account.loss.opened_by if account.loss is not None else None
    return row


def loss_row(account_id: str, loss: Loss) -> dict[str, Any]:
    """The `losses` row of a loss, active while something of it remains."""
    row = {name: getattr(loss, name) for name in _LOSS_FIGURES}
    row.update(account=account_id, opened_by=loss.opened_by, active=loss.remaining_minor > 0)
    return row


def payout_row(account_id: str, payout: Payout) -> dict[str, Any]:
    """The `payouts` row of a payout."""
    return {
        "account": account_id,
        "payout_id": payout.id,
        "amount_minor": payout.amount_minor,
        "status": payout.status.value,
    }


_LOSS_COLUMNS: Final = [schema.losses.c[name].label(f"loss_{name}") for name in _LOSS_FIGURES]


_ACCOUNT_WITH_LOSS: Final = select(schema.accounts, *_LOSS_COLUMNS).outerjoin(
    schema.losses,
    (schema.losses.c.account == schema.accounts.c.account)
    & (schema.losses.c.opened_by == schema.accounts.c.loss_opened_by),
)
"""An account's row joined with its active loss's columns."""


# Every statement of the hot path is built once, with bound parameters, so that SQLAlchemy compiles it
# once and each execution only binds values (building a statement per call cost more than the SQL).
_ACCOUNT: Final = _ACCOUNT_WITH_LOSS.where(schema.accounts.c.account == bindparam("account"))
_ACCOUNTS: Final = _ACCOUNT_WITH_LOSS.where(
    schema.accounts.c.account.in_(bindparam("accounts", expanding=True))
)
# PostgreSQL locks first and reads after, in separate statements: a statement that waits for a lock
# sees the locked row's newest version but the joined rows (the loss) as they were when it started.
_LOCK_ACCOUNT: Final = (
    select(schema.accounts.c.account)
    .where(schema.accounts.c.account == bindparam("account"))
    .with_for_update()
)
_LOCK_ACCOUNTS: Final = (
    select(schema.accounts.c.account)
    .where(schema.accounts.c.account.in_(bindparam("accounts", expanding=True)))
    .order_by(schema.accounts.c.account)
    .with_for_update()
)
_ENTRY: Final = select(schema.ledger.c.entry).where(
    (schema.ledger.c.account == bindparam("account"))
    & (schema.ledger.c.command_id == bindparam("command_id"))
)
_PAYOUT: Final = select(schema.payouts).where(
    (schema.payouts.c.account == bindparam("account"))
    & (schema.payouts.c.payout_id == bindparam("payout_id"))
)

KEYS_PER_SELECT_MAX: Final = 128
"""The most keys a group looks up (or accounts it reads) in one SELECT: a power of two, and few
enough OR terms for SQLite's expression depth (1 000)."""


@functools.cache
def _by_keys(table: Table, key: str, keys: int) -> Select[Any]:
    """The rows of `table` under `keys` (account, `key`) pairs, bound as `a0`, `k0`, `a1`, ….

    An OR of equalities on the unique key, not a row-value IN: SQLite searches its index for each
    term of an OR, but scans the whole table for `(account, key) IN (VALUES …)`, which is what
    SQLAlchemy's `tuple_(…).in_(…)` sends it. One statement per size (a power of two; a group pads
    its last chunk with its last key), so each size is compiled once.
    """
    assert keys > 0 and keys & (keys - 1) == 0, keys
    account, named = table.c.account, table.c[key]
    return select(table).where(
        or_(*((account == bindparam(f"a{n}")) & (named == bindparam(f"k{n}")) for n in range(keys)))
    )


_LEDGER_PAGE: Final = (
    select(schema.ledger.c.seq, schema.ledger.c.entry, schema.ledger.c.hash)
    .where((schema.ledger.c.account == bindparam("account")) & (schema.ledger.c.seq > bindparam("seq")))
    .order_by(schema.ledger.c.seq)
    .limit(bindparam("rows"))
)
_PAYOUTS: Final = (
    select(schema.payouts)
    .where(schema.payouts.c.account == bindparam("account"))
    .order_by(schema.payouts.c.payout_id)
)
_INSERT_ENTRY: Final = insert(schema.ledger)
_INSERT_ACCOUNT: Final = insert(schema.accounts)
_UPDATE_ACCOUNT: Final = (
    update(schema.accounts)
    .where(
        (schema.accounts.c.account == bindparam("b_account"))
        & (schema.accounts.c.entry_count == bindparam("b_entry_count"))
    )
    .values({name: bindparam(name) for name in (*_ACCOUNT_FIGURES, "loss_opened_by", "chain_head")})
)
"""Compare and set: the account's row at the version that was read, to the account after the entry."""
_INSERT_LOSS: Final = insert(schema.losses)
_UPDATE_LOSS: Final = (
    update(schema.losses)
    .where(
        (schema.losses.c.account == bindparam("b_account"))
        & (schema.losses.c.opened_by == bindparam("b_opened_by"))
    )
    .values({name: bindparam(name) for name in (*_LOSS_FIGURES, "active")})
)
_INSERT_PAYOUT: Final = insert(schema.payouts)
_CONFIRM_PAYOUT: Final = (
    update(schema.payouts)
    .where(
        (schema.payouts.c.account == bindparam("b_account"))
        & (schema.payouts.c.payout_id == bindparam("b_payout_id"))
        & (schema.payouts.c.status == PayoutStatus.PENDING.value)
    )
    .values(status=PayoutStatus.CONFIRMED.value)
)


def account_from_row(row: Row[Any]) -> Account:
    """The account of an `accounts` row joined with its active loss's columns (`loss_…`)."""
    return account_from_mapping(row._mapping)


def account_from_mapping(mapping: Mapping[Any, Any]) -> Account:
    """The account of an `accounts` row's columns, with its active loss's as `loss_…`."""
    loss = None
    if mapping["loss_opened_by"] is not None:
        loss = Loss(
            opened_by=mapping["loss_opened_by"],
            **{name: mapping[f"loss_{name}"] for name in _LOSS_FIGURES},
        )
    return Account(id=mapping["account"], loss=loss, **{name: mapping[name] for name in _ACCOUNT_FIGURES})


def payout_from_row(row: Row[Any]) -> Payout:
    return Payout(id=row.payout_id, amount_minor=row.amount_minor, status=PayoutStatus(row.status))


# --- The store -------------------------------------------------------------------------------------


class SqlStore:
    """The `Store` protocol on a SQL database; `execute_many` commits a group of commands at once."""

    def __init__(self, engine: Engine) -> None:
        problem = engine_problem(engine)
        if problem is not None:
            raise DatabaseError(f"{shown_url(engine.url)}: {problem}")
        self.engine = engine
        self._writer = engine.execution_options(ppk_write=True)
        self._postgresql = is_postgresql(engine)

    def close(self) -> None:
        """Give back every connection; the store is not used after."""
        self.engine.dispose()

    # Writing ---------------------------------------------------------------------------------------

    def execute(self, command: Command) -> Decision:
        (decision,) = self.execute_many([command])
        return decision

    def execute_many(self, commands: Sequence[Command]) -> list[Decision]:
        """Decide and write each command in order, in one transaction; the decisions once it committed.

        Each command is all-or-nothing on its own: a rejected one writes nothing, and the next one is
        decided against what the ones before it wrote. A kernel exception (a contract violation) is a
        bug: the whole group rolls back, and it surfaces.
        """
        for attempt in range(RETRIES_MAX + 1):
            try:
                with self._writer.begin() as connection:
                    return _Group(connection, self._postgresql).run(commands)
            except OperationalError as error:
                if _sqlstate(error) in _RETRYABLE_SQLSTATES and attempt < RETRIES_MAX:
                    time.sleep(0.001 * 2**attempt)
                    continue
                raise database_error(self.engine, error) from error
        raise AssertionError("unreachable: the last attempt returns or raises")

    # Reading ---------------------------------------------------------------------------------------

    def account(self, account_id: str) -> Account | None:
        with self.engine.connect() as connection:
            row = connection.execute(_ACCOUNT, {"account": account_id}).first()
        return None if row is None else account_from_row(row)

    def entry(self, account_id: str, command_id: str) -> Entry | None:
        with self.engine.connect() as connection:
            return _recorded(connection, account_id, command_id)

    def ledger(self, account_id: str) -> Iterator[Entry]:
        """The account's entries in order, read a page at a time."""
        return (chained.entry for chained in self.chained_ledger(account_id))

    def chained_ledger(self, account_id: str) -> Iterator[ChainedEntry]:
        """The account's entries in order with their places in its hash chain, a page at a time."""
        seq = 0
        while True:
            with self.engine.connect() as connection:
                rows = connection.execute(
                    _LEDGER_PAGE, {"account": account_id, "seq": seq, "rows": PAGE_ROWS}
                ).all()
            for row in rows:
                yield ChainedEntry(seq=row.seq, hash=bytes(row.hash), entry=decode_entry(row.entry))
            if len(rows) < PAGE_ROWS:
                return
            seq = rows[-1].seq

    def payouts(self, account_id: str) -> list[Payout]:
        with self.engine.connect() as connection:
            return [payout_from_row(row) for row in connection.execute(_PAYOUTS, {"account": account_id})]

    def account_ids(self) -> list[str]:
        query = select(schema.accounts.c.account).order_by(schema.accounts.c.account)
        with self.engine.connect() as connection:
            return list(connection.execute(query).scalars())

    def pending_payouts(self) -> Iterator[PendingPayout]:
        """Every pending payout by account, then payout id, a page at a time (keyset paging)."""
        after = ("", "")
        pending = schema.payouts.c.status == PayoutStatus.PENDING.value
        key = schema.payouts.c.account, schema.payouts.c.payout_id
        while True:
            query = (
                select(schema.payouts)
                .where(pending & ((key[0] > after[0]) | ((key[0] == after[0]) & (key[1] > after[1]))))
                .order_by(*key)
                .limit(PAGE_ROWS)
            )
            with self.engine.connect() as connection:
                rows = connection.execute(query).all()
            for row in rows:
                yield PendingPayout(account=row.account, payout=payout_from_row(row))
            if len(rows) < PAGE_ROWS:
                return
            after = (rows[-1].account, rows[-1].payout_id)


@attrs.frozen(kw_only=True)
class ChainedEntry:
    """A stored ledger entry and its place in the account's hash chain (docs/audit.md)."""

    seq: int
    """Its position in the account's ledger, from 1."""
    hash: bytes
    """The chain's hash once this entry is on it: SHA-256 of the previous hash and the entry's bytes."""
    entry: Entry


def _sqlstate(error: DBAPIError) -> str | None:
    return getattr(error.orig, "sqlstate", None)


def database_error(engine: Engine, error: DBAPIError) -> DatabaseError:
    """An operating error of the database as one line for a person."""
    where = shown_url(engine.url)
    if engine.dialect.name == "sqlite" and "locked" in str(error.orig):
        return DatabaseError(
            f"{where} is locked by another writer beyond the busy timeout of {busy_timeout_s():g} s "
            f"(${BUSY_TIMEOUT_ENV}); try again when it is done"
        )
    return DatabaseError(f"{where}: {str(error.orig).strip().splitlines()[0]}")


def _recorded(connection: Connection, account_id: str, command_id: str) -> Entry | None:
    """spec.md#storage: the entry recorded under a command id on an account, if the id is used."""
    data = connection.execute(_ENTRY, {"account": account_id, "command_id": command_id}).scalar()
    return None if data is None else decode_entry(data)


Key = tuple[str, str]
"""An account and an id under it: a command id (the ledger) or a payout id (the outbox)."""


class _Group:
    """One transaction's commands: decided in order, each against what the ones before it wrote.

    A group reads in a few statements, whatever its size: its accounts, then every entry and payout
    its commands name, by key. It keeps what it read and what it decided in memory, so a command sees
    the ones before it in the group; and it writes once, at the end: the ledger's new entries, then
    each touched account, loss and payout in its final state, one statement per table and kind.
    """

    def __init__(self, connection: Connection, postgresql: bool) -> None:
        self._connection = connection
        self._postgresql = postgresql
        self._accounts: dict[str, tuple[Account, bytes] | None] = {}
        """The accounts this transaction has read (and, on PostgreSQL, locked) or written, as they are
        now, each with its chain head; None for an account that does not exist."""
        self._stored: dict[str, int] = {}
        """Each existing account's `entry_count` in its database row: the version its update compares."""
        self._known_whole: set[str] = set()
        """The accounts for which `_entries` and `_payouts` hold every key of this group that is used:
        read once no other writer could write them (SQLite's write lock, or the account's row lock),
        or opened by this group. Any other account's keys are read when needed."""
        self._entries: dict[Key, Entry] = {}
        """The entries under the group's (account, command id) keys: read, or recorded by the group."""
        self._payouts: dict[Key, Payout] = {}
        """The payouts under the group's (account, payout id) keys: read, or written by the group."""
        self._new_entries: list[dict[str, Any]] = []
        """The ledger rows the group recorded (but for accounts it opened), in the order recorded."""
        self._losses: dict[Key, dict[str, Any]] = {}
        """Each loss the group touched, by (account, opened_by): its row as it stands now."""
        self._new_losses: set[Key] = set()
        self._new_payouts: set[Key] = set()
        self._confirmed_payouts: set[Key] = set()
        """The payouts that were pending before the group and that it confirmed."""

    def run(self, commands: Sequence[Command]) -> list[Decision]:
        # An id or account outside the rules is refused before it is looked for (no SQL meets it).
        rejections = [command_rejection(command) for command in commands]
        pairs = list(zip(commands, rejections, strict=True))
        formed = [command for command, rejection in pairs if rejection is None]
        self._read_accounts(sorted({command.account for command in formed}))
        self._look_up(formed)
        decisions = [
            rejection if rejection is not None else self._one(command) for command, rejection in pairs
        ]
        self._flush()
        return decisions

    # Reading -------------------------------------------------------------------------------------

    def _read_accounts(self, account_ids: list[str]) -> None:
        """Read the group's accounts (on PostgreSQL, lock those that exist, in one order, first)."""
        if self._postgresql:
            self._lock(account_ids)
            return
        # SQLite: the write lock is held (BEGIN IMMEDIATE), so nothing read here can change under us.
        for start in range(0, len(account_ids), KEYS_PER_SELECT_MAX):
            chunk = account_ids[start : start + KEYS_PER_SELECT_MAX]
            if len(chunk) == 1:
                rows = self._connection.execute(_ACCOUNT, {"account": chunk[0]})
            else:
                rows = self._connection.execute(_ACCOUNTS, {"accounts": chunk})
            for row in rows:
                self._known(row)
            for account_id in chunk:
                self._accounts.setdefault(account_id, None)
            self._known_whole.update(chunk)

    def _lock(self, account_ids: list[str]) -> None:
        """Lock the group's existing accounts in one order (no two groups deadlock on them); read them.
        An account not there yet is read when its first command comes (`_read`): another writer may
        open it meanwhile."""
        locked = list(self._connection.execute(_LOCK_ACCOUNTS, {"accounts": account_ids}).scalars())
        if locked:
            for row in self._connection.execute(_ACCOUNTS, {"accounts": locked}):
                self._known(row)
        self._known_whole.update(locked)

    def _read(self, account_id: str) -> tuple[Account, bytes] | None:
        """PostgreSQL: an account the group did not lock at its start, once locked; None if it does
        not exist. Its keys are not known whole: another writer may have written them."""
        if self._connection.execute(_LOCK_ACCOUNT, {"account": account_id}).first() is None:
            # Not there when the lock looked. A row another writer commits before the read below
            # would be read unlocked (READ COMMITTED: each statement sees the latest commit), and
            # both would append the same seq: the account does not exist for this group.
            return None
        row = self._connection.execute(_ACCOUNT, {"account": account_id}).first()
        return None if row is None else self._known(row)

    def _known(self, row: Row[Any]) -> tuple[Account, bytes]:
        known = self._accounts[row.account] = account_from_row(row), row.chain_head
        self._stored[row.account] = row.entry_count
        return known

    def _look_up(self, commands: Sequence[Command]) -> None:
        """spec.md#storage: the entries and payouts the commands on existing accounts name, by key,
        in a few statements (not one per command)."""
        entries: dict[Key, None] = {}
        payouts: dict[Key, None] = {}
        for named_by in commands:
            account_id = named_by.account
            if account_id not in self._known_whole or self._accounts[account_id] is None:
                continue
            entries[account_id, named_by.id] = None
            payout_id = payout_looked_up(named_by)
            if payout_id is not None:
                payouts[account_id, payout_id] = None
        for row in self._rows_by_keys(schema.ledger, "command_id", list(entries)):
            self._entries[row.account, row.command_id] = decode_entry(row.entry)
        for row in self._rows_by_keys(schema.payouts, "payout_id", list(payouts)):
            self._payouts[row.account, row.payout_id] = payout_from_row(row)

    def _rows_by_keys(self, table: Table, key: str, keys: list[Key]) -> Iterator[Row[Any]]:
        for start in range(0, len(keys), KEYS_PER_SELECT_MAX):
            chunk = keys[start : start + KEYS_PER_SELECT_MAX]
            size = 1 << (len(chunk) - 1).bit_length()
            chunk += [chunk[-1]] * (size - len(chunk))
            values = {}
            for n, (account_id, named) in enumerate(chunk):
                values[f"a{n}"], values[f"k{n}"] = account_id, named
            yield from self._connection.execute(_by_keys(table, key, size), values)

    def _lookup(self, command: Command) -> Lookup:
        """spec.md#storage: by key, what the account's history holds for this command."""
        account_id, whole = command.account, command.account in self._known_whole
        entry = self._entries.get((account_id, command.id))
        if entry is None and not whole:
            entry = _recorded(self._connection, account_id, command.id)
        named = payout_looked_up(command)
        payout = None
        if named is not None:
            payout = self._payouts.get((account_id, named))
            if payout is None and not whole:
                row = self._connection.execute(_PAYOUT, {"account": account_id, "payout_id": named}).first()
                payout = None if row is None else payout_from_row(row)
        if entry is None and payout is None:
            return NOTHING_RECORDED
        return Lookup(entry=entry, payout=payout)

    # Deciding ------------------------------------------------------------------------------------

    def _one(self, command: Command) -> Decision:
        account_id = command.account
        if account_id not in self._accounts:
            self._accounts[account_id] = self._read(account_id)
        known = self._accounts[account_id]
        if known is not None or not self._postgresql:
            return self._decide(known, command)
        # A new account has no row to lock: another writer may open it first. Its unique keys tell,
        # and this command is then decided again, against the account that writer committed.
        for attempt in range(RETRIES_MAX + 1):
            savepoint = self._connection.begin_nested()
            try:
                decision = self._decide(None, command)
            except IntegrityError as error:
                savepoint.rollback()
                if _sqlstate(error) != _UNIQUE_VIOLATION or attempt == RETRIES_MAX:
                    raise
                known = self._accounts[account_id] = self._read(account_id)
                if known is not None:
                    return self._decide(known, command)
                continue
            savepoint.commit()
            return decision
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _decide(self, known: tuple[Account, bytes] | None, command: Command) -> Decision:
        before, head = known if known is not None else (None, genesis(command.account))
        lookup = NOTHING_RECORDED if before is None else self._lookup(command)
        decision, after = execute(before, command, lookup)
        if isinstance(decision, (Applied, Refused)):
            assert after is not None
            self._accounts[command.account] = after, self._record(before, head, decision, after)
        return decision

    # Writing -------------------------------------------------------------------------------------

    def _record(self, before: Account | None, head: bytes, entry: Entry, after: Account) -> bytes:
        """Keep the entry chained on `head`, and what it wrote, for `_flush`; the account's new chain
        head (docs/audit.md §1). An account's first entry is written at once, with its row: on
        PostgreSQL its unique keys are what tells two writers opening it apart (`_one`)."""
        account_id = after.id
        data = encode_entry(entry)
        head = chained(head, data)
        row = {
            "account": account_id,
            "seq": after.entry_count,
            "command_id": entry.command.id,
            "entry": data,
            "hash": head,
        }
        losses = losses_written(before, entry, after)
        payouts = payouts_written(entry)
        if before is None:
            # Only open_account applies to no account, and it touches no loss or payout.
            assert not losses and not payouts, entry
            self._connection.execute(_INSERT_ENTRY, row)
            self._connection.execute(_INSERT_ACCOUNT, {**account_row(after), "chain_head": head})
            self._stored[account_id] = after.entry_count
            self._known_whole.add(account_id)
        else:
            self._new_entries.append(row)
        self._entries[account_id, entry.command.id] = entry
        events = entry.events if isinstance(entry, Applied) else ()
        for loss in losses:
            key = account_id, loss.opened_by
            self._losses[key] = loss_row(account_id, loss)
            if any(isinstance(event, LossOpened) and event.opened_by == loss.opened_by for event in events):
                self._new_losses.add(key)
        for payout in payouts:
            key = account_id, payout.id
            self._payouts[key] = payout
            if payout.status is PayoutStatus.PENDING:
                self._new_payouts.add(key)
            elif key not in self._new_payouts:
                self._confirmed_payouts.add(key)
        return head

    def _flush(self) -> None:
        """Write what the group recorded, each row in its final state: the ledger first, in (account,
        seq) order, then each account, loss and payout it touched, one statement per table and kind."""
        connection = self._connection
        if self._new_entries:
            self._new_entries.sort(key=lambda row: (row["account"], row["seq"]))
            connection.execute(_INSERT_ENTRY, self._new_entries)
        updates = []
        for account_id, entry_count in sorted(self._stored.items()):
            known = self._accounts[account_id]
            assert known is not None
            after, head = known
            if after.entry_count == entry_count:
                continue
            values = account_row(after)
            del values["account"]
            values.update(b_account=account_id, b_entry_count=entry_count, chain_head=head)
            updates.append(values)
        # Compare and set: each row is locked, so its version can only be the one that was read. Each
        # update matches at most its account's row, so the sum of rows matched tells every one did.
        if updates and connection.execute(_UPDATE_ACCOUNT, updates).rowcount != len(updates):
            raise AssertionError("an account changed under its lock")
        new_losses, old_losses = [], []
        for key, row in sorted(self._losses.items()):
            if key in self._new_losses:
                new_losses.append(row)
            else:
                values = dict(row)
                values.update(b_account=values.pop("account"), b_opened_by=values.pop("opened_by"))
                old_losses.append(values)
        # Updates first: a loss closed here frees the account's one active loss for a loss opened here.
        if old_losses:
            connection.execute(_UPDATE_LOSS, old_losses)
        if new_losses:
            connection.execute(_INSERT_LOSS, new_losses)
        if self._new_payouts:
            connection.execute(
                _INSERT_PAYOUT,
                [
                    payout_row(account_id, self._payouts[account_id, named])
                    for account_id, named in sorted(self._new_payouts)
                ],
            )
        if self._confirmed_payouts:
            confirmed = [
                {"b_account": account_id, "b_payout_id": payout_id}
                for account_id, payout_id in sorted(self._confirmed_payouts)
            ]
            if connection.execute(_CONFIRM_PAYOUT, confirmed).rowcount != len(confirmed):
                raise AssertionError("a payout was not pending under its account's lock")
