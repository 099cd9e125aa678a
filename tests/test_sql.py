"""What only the SQL store has: its schema, its versions, its URLs, and its behaviour under concurrency.

Most tests run on SQLite and on the throwaway PostgreSQL alike (`engine_name`); the SQLite file's
durability and locking, and PostgreSQL's row locks, have tests of their own. What every store must
do is tests/test_store.py's.
"""

from __future__ import annotations

import itertools
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, UniqueConstraint, create_engine, event, inspect, text
from sqlalchemy.exc import IntegrityError

import ppk.adapters.sql
from ppk.adapters import schema
from ppk.adapters.sql import (
    SCHEMA_HEAD,
    SqlStore,
    database_url,
    make_engine,
    open_store,
    schema_head,
    upgrade_database,
)
from ppk.adapters.store import DATABASE_ENV, DatabaseError
from ppk.kernel.contracts import broken_invariants_over
from ppk.kernel.state import (
    AMOUNT_MINOR_MAX,
    Applied,
    Command,
    Decision,
    Fund,
    OpenAccount,
    PayoutStatus,
    RecordBalance,
    Refused,
    Rejected,
    Repeated,
    Settle,
)
from ppk.kernel.transitions import replay_with_payouts
from ppk.stateful_tests.postgres import Cluster

T = TypeVar("T")

PPK_TABLES = ["accounts", "alembic_version", "checkpoints", "ledger", "losses", "payouts"]
MIGRATIONS = Path(ppk.adapters.sql.__file__).resolve().parent / "migrations"
WRITERS = 8
"""Concurrent writers in the race tests: as many as the issue's race test runs."""
RACE_TIMEOUT_S = 60.0
"""How long a race test waits for its writers; far beyond what a passing run takes."""
database_numbers = itertools.count(1)


# --- Databases -------------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def engine_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def new_database(
    engine_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], str]]:
    """A maker of new empty databases of the engine: a SQLite file's path, or a PostgreSQL URL."""
    cluster: Cluster | None = None
    if engine_name == "postgresql":
        cluster = request.getfixturevalue("postgres_cluster")
    created: list[str] = []

    def make() -> str:
        number = next(database_numbers)
        if cluster is None:
            return str(tmp_path / f"ppk{number}.db")
        name = f"test_sql_{number}"
        created.append(name)
        return cluster.create_database(name)

    yield make
    for name in created:
        assert cluster is not None
        cluster.drop_database(name)


@pytest.fixture
def url(new_database: Callable[[], str]) -> str:
    """A new empty database."""
    return new_database()


@pytest.fixture
def store(url: str) -> Iterator[SqlStore]:
    opened = open_store(url)
    yield opened
    opened.close()


def with_password(url: str) -> str:
    """The URL with a password in it, which no message may show (the throwaway cluster trusts anyone)."""
    return url.replace("://postgres@", "://postgres:SECRET@", 1)


def one_line(error: pytest.ExceptionInfo[DatabaseError]) -> str:
    """The error's message, which must be one line without the password."""
    message = str(error.value)
    assert "\n" not in message
    assert "SECRET" not in message
    return message


def version_of(url: str) -> list[str]:
    engine = make_engine(database_url(url))
    try:
        with engine.connect() as connection:
            return list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
    finally:
        engine.dispose()


def ppk_database_then(url: str, statement: str) -> str:
    """A new ppk database at `url`, then `statement` run on it: `url`."""
    open_store(url).close()
    engine = make_engine(database_url(url))
    try:
        with engine.begin() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()
    return url


def table_names(url: str) -> list[str]:
    engine = make_engine(database_url(url))
    try:
        return sorted(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def outcome(decision: Decision) -> str:
    """`applied`, `refused:<code>`, `rejected:<code>`, or `repeated:` and the recorded outcome."""
    if isinstance(decision, Applied):
        return "applied"
    if isinstance(decision, Refused):
        return f"refused:{decision.code.value}"
    if isinstance(decision, Rejected):
        return f"rejected:{decision.code.value}"
    return f"repeated:{outcome(decision.entry)}"


def opened(account: str = "acme", id: str = "o") -> OpenAccount:
    return OpenAccount(id=id, account=account, my_share_bp=100, company_share_bp=900)


def assert_consistent(store: SqlStore) -> None:
    """spec.md#replay: every ledger replays to its stored account and payouts and breaks no invariant."""
    for account_id in store.account_ids():
        ledger = list(store.ledger(account_id))
        account, payouts = store.account(account_id), store.payouts(account_id)
        assert replay_with_payouts(ledger) == (account, {payout.id: payout for payout in payouts})
        assert broken_invariants_over(ledger, account, payouts) == []


# --- The schema ------------------------------------------------------------------------------------


def test_schema__every_key_is_led_by_the_account_and_no_foreign_key_exists() -> None:
    """Citus-ready: every primary key, unique constraint and index starts with `account`; nothing
    refers across tables (spec.md#database)."""
    keys: dict[str, list[str]] = {}
    for table in schema.metadata.sorted_tables:
        keys[f"{table.name} primary key"] = [column.name for column in table.primary_key.columns]
        for constraint in table.constraints:
            if isinstance(constraint, UniqueConstraint):
                keys[f"{table.name} unique {constraint.name}"] = [
                    column.name for column in constraint.columns
                ]
        for index in table.indexes:
            keys[f"{table.name} index {index.name}"] = [column.name for column in index.columns]
        assert table.foreign_keys == set(), table.name
    not_led = {name: columns for name, columns in keys.items() if columns[0] != "account"}
    assert not_led == {}
    # Not vacuous: the keys that hold invariants 3 and 8 are among them.
    assert keys["ledger unique uq_ledger_account_command_id"] == ["account", "command_id"]
    assert keys["losses index ix_losses_one_active_per_account"] == ["account"]
    assert len(keys) == 8


def described(engine: Engine) -> dict[str, dict[str, Any]]:
    """A database's tables as its own catalogue describes them (names, types, keys, checks, indexes)."""
    inspector = inspect(engine)
    tables: dict[str, dict[str, Any]] = {}
    for table in sorted(inspector.get_table_names()):
        if table == "alembic_version":
            continue
        tables[table] = {
            "columns": [
                (
                    column["name"],
                    str(column["type"]),
                    column["nullable"],
                    getattr(column["type"], "collation", None),
                )
                for column in inspector.get_columns(table)
            ],
            "primary key": inspector.get_pk_constraint(table),
            "unique": sorted(
                (constraint["name"], tuple(constraint["column_names"]))
                for constraint in inspector.get_unique_constraints(table)
            ),
            "checks": sorted(
                (constraint["name"], " ".join(str(constraint["sqltext"]).split()))
                for constraint in inspector.get_check_constraints(table)
            ),
            "indexes": sorted(
                (
                    index["name"],
                    tuple(index["column_names"]),
                    bool(index["unique"]),
                    sorted((key, str(value)) for key, value in index.get("dialect_options", {}).items()),
                )
                for index in inspector.get_indexes(table)
            ),
            "foreign keys": inspector.get_foreign_keys(table),
        }
    return tables


def test_upgrade__an_empty_database_gets_exactly_the_tables_of_schema_py(
    new_database: Callable[[], str],
) -> None:
    """The migrations, written by hand, create what `schema.metadata` describes, to each constraint."""
    upgraded, twin = new_database(), new_database()
    assert upgrade_database(upgraded) == (None, schema_head())
    assert version_of(upgraded) == [schema_head()]
    upgraded_engine, twin_engine = make_engine(database_url(upgraded)), make_engine(database_url(twin))
    try:
        schema.metadata.create_all(twin_engine)
        with upgraded_engine.connect() as connection:
            # Alembic's own comparison: tables, columns and their types, indexes, unique constraints.
            assert compare_metadata(MigrationContext.configure(connection), schema.metadata) == []
        upgraded_tables = described(upgraded_engine)
        # The rest (CHECK constraints, partial indexes' conditions, collations) against the same
        # metadata created directly on the same engine.
        assert upgraded_tables == described(twin_engine)
        assert sorted(upgraded_tables) == sorted(schema.metadata.tables)
        for name, table in schema.metadata.tables.items():
            columns = upgraded_tables[name]["columns"]
            assert [column[0] for column in columns] == [column.name for column in table.columns]
        partial = upgraded_tables["losses"]["indexes"]
        assert [index[:3] for index in partial] == [("ix_losses_one_active_per_account", ("account",), True)]
    finally:
        upgraded_engine.dispose()
        twin_engine.dispose()
    # Upgrading again changes nothing.
    assert upgrade_database(upgraded) == (schema_head(), schema_head())


# --- The database guards itself --------------------------------------------------------------------

VALID_ROWS: dict[str, dict[str, Any]] = {
    "accounts": {
        "account": "x",
        "entry_count": 2,
        "my_share_bp": 100,
        "company_share_bp": 900,
        "capital_minor": 1_000,
        "balance_minor": 1_000,
        "funding_minor": 1_000,
        "capital_closed_minor": 0,
        "profit_withdrawn_minor": 0,
        "payments_minor": 0,
        "my_share_minor": 0,
        "company_share_minor": 0,
        "balance_date_latest": None,
        "payout_count": 0,
        "payout_confirmed_count": 0,
        "payout_confirmed_minor": 0,
        "loss_opened_by": None,
        "chain_head": b"\x00" * 32,
    },
    "losses": {
        "account": "x",
        "opened_by": "b",
        "capital_minor": 1_000,
        "balance_minor": 900,
        "original_minor": 100,
        "remaining_minor": 100,
        "capital_closed_minor": 0,
        "my_share_bp": 100,
        "company_share_bp": 900,
        "active": True,
    },
    "payouts": {
        "account": "x",
        "payout_id": "x:b",
        "amount_minor": 100,
        "status": PayoutStatus.PENDING.value,
    },
    "ledger": {"account": "x", "seq": 1, "command_id": "o", "entry": b"{}", "hash": b"\x00" * 32},
    "checkpoints": {"account": "x", "digest": "ppk1-" + "0" * 64, "length": 1},
}
"""A row each table accepts; each case below breaks one rule of it."""

BROKEN_ROWS: dict[str, tuple[str, dict[str, Any], str]] = {
    "a negative amount": (
        "accounts",
        {"my_share_minor": -5, "company_share_minor": 5},
        "my_share_minor_in_range",
    ),
    "an amount over the limit": (
        "accounts",
        {"profit_withdrawn_minor": AMOUNT_MINOR_MAX + 1},
        "profit_withdrawn_minor_in_range",
    ),
    "shares over 100 %": (
        "accounts",
        {"my_share_bp": 6_000, "company_share_bp": 5_000},
        "shares_are_percentages",
    ),
    "a negative share": ("accounts", {"my_share_bp": -1}, "shares_are_percentages"),
    "capital not funding less closed": (
        "accounts",
        {"capital_minor": 1_001, "balance_minor": 1_001},
        "i1_capital_is_conserved",
    ),
    "shares not adding up to payments": (
        "accounts",
        {"payments_minor": 10, "my_share_minor": 1, "company_share_minor": 8},
        "i6_shares_add_up",
    ),
    "more confirmed than withdrawn": (
        "accounts",
        {"payout_confirmed_minor": 1},
        "i7_confirmed_within_withdrawn",
    ),
    "a balance below capital without a loss": (
        "accounts",
        {"balance_minor": 999},
        "i4_i5_balance_agrees_with_loss",
    ),
    "no entry": ("accounts", {"entry_count": 0}, "entry_count_from_1"),
    "a payout of 0": ("payouts", {"amount_minor": 0}, "amount_in_range"),
    "a payout neither pending nor confirmed": ("payouts", {"status": "sent"}, "status_known"),
    "a loss whose parts do not add up": ("losses", {"capital_closed_minor": 1}, "i9_loss_is_accounted"),
    "a loss that is no shortfall": ("losses", {"balance_minor": 950}, "loss_is_a_shortfall"),
    "an active loss with nothing remaining": (
        "losses",
        {"remaining_minor": 0, "capital_closed_minor": 100},
        "active_while_remaining",
    ),
    "a ledger position 0": ("ledger", {"seq": 0}, "seq_from_1"),
}
"""What each broken row breaks: its table, what changes from the valid row, the CHECK that refuses it."""


def insert_row(engine: Engine, table: str, row: dict[str, Any]) -> None:
    """A raw INSERT, in its own transaction: nothing of the store's code runs."""
    columns = ", ".join(row)
    values = ", ".join(f":{column}" for column in row)
    with engine.begin() as connection:
        connection.execute(text(f"INSERT INTO {table} ({columns}) VALUES ({values})"), row)


def refusal(engine: Engine, table: str, row: dict[str, Any]) -> str:
    """The name of the CHECK constraint that refused the row, or "accepted"."""
    try:
        insert_row(engine, table, row)
    except IntegrityError as error:
        names = [
            check["name"]
            for check in inspect(engine).get_check_constraints(table)
            if check["name"] in str(error.orig)
        ]
        return " ".join(names) or f"refused by no CHECK: {error.orig}"
    return "accepted"


def test_database__refuses_each_row_that_breaks_a_check(store: SqlStore) -> None:
    """Raw rows no transition could write are refused by the database's own CHECK constraints."""
    for table, row in VALID_ROWS.items():
        assert refusal(store.engine, table, {**row, "account": "valid"}) == "accepted", table
    refusals = {
        case: refusal(store.engine, table, {**VALID_ROWS[table], **changes})
        for case, (table, changes, _) in BROKEN_ROWS.items()
    }
    assert refusals == {case: f"ck_{table}_{check}" for case, (table, _, check) in BROKEN_ROWS.items()}


def test_database__refuses_a_second_active_loss_but_not_a_second_inactive_one(store: SqlStore) -> None:
    """spec.md#i3 in the database: a partial unique index allows one active loss per account."""
    active = VALID_ROWS["losses"]
    inactive = {**active, "remaining_minor": 0, "capital_closed_minor": 100, "active": False}
    insert_row(store.engine, "losses", active)
    with pytest.raises(IntegrityError):
        insert_row(store.engine, "losses", {**active, "opened_by": "b2"})
    insert_row(store.engine, "losses", {**inactive, "opened_by": "b3"})
    insert_row(store.engine, "losses", {**inactive, "opened_by": "b4"})
    # Per account: another account's active loss is no second one.
    insert_row(store.engine, "losses", {**active, "account": "y"})


def test_database__refuses_a_second_ledger_row_under_one_command_id(store: SqlStore) -> None:
    """spec.md#i8 in the database: (account, command_id) is unique, and so is (account, seq)."""
    entry = VALID_ROWS["ledger"]
    insert_row(store.engine, "ledger", entry)
    with pytest.raises(IntegrityError):
        insert_row(store.engine, "ledger", {**entry, "seq": 2})
    with pytest.raises(IntegrityError):
        insert_row(store.engine, "ledger", {**entry, "command_id": "o2"})
    # Ids and positions are per account.
    insert_row(store.engine, "ledger", {**entry, "account": "y"})


# --- Schema versions -------------------------------------------------------------------------------


def test_open_store__at_the_head_opens_without_alembic(tmp_path: Path) -> None:
    """A database already at this ppk's schema version is opened without importing Alembic (a third
    of a durable command's start-up); one that is not goes through Alembic and is refused as before."""
    database = tmp_path / "at-head.db"
    open_store(str(database)).close()
    script = (
        "import sys\n"
        "from ppk.adapters.sql import open_store\n"
        f"open_store({str(database)!r}).close()\n"
        "print(sorted(m for m in sys.modules if m == 'alembic' or m.startswith('alembic.')))\n"
    )
    opened = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert opened.stdout.strip() == "[]"
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(DatabaseError, match="schema version 9999"):
        open_store(str(database))


def test_open_store__gives_an_empty_database_the_schema(url: str) -> None:
    """An empty database is brought to this ppk's schema version on first open."""
    assert table_names(url) == []
    open_store(url).close()
    assert table_names(url) == PPK_TABLES
    assert version_of(url) == [schema_head()] == [SCHEMA_HEAD] == ["0002"]
    # Opening again leaves it as it is.
    open_store(url).close()
    assert version_of(url) == ["0002"]


def newer_migrations(folder: Path) -> Path:
    """ppk's migrations and a version 9000 after today's head, as the next ppk would ship them."""
    copy = folder / "migrations"
    shutil.copytree(MIGRATIONS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "versions" / "v9000_next.py").write_text(
        '"""Version 9000: changes nothing, to stand for the next ppk\'s schema in the tests."""\n\n'
        f'revision = "9000"\ndown_revision = "{schema_head()}"\nbranch_labels = None\ndepends_on = None\n\n\n'
        "def upgrade() -> None:\n    pass\n\n\ndef downgrade() -> None:\n    pass\n",
        encoding="utf-8",
    )
    return copy


def test_open_store__refuses_an_older_schema_naming_ppk_db_upgrade(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database at an older version is refused with the command that upgrades it; after it, it opens.

    "Older" is today's version, seen by a ppk whose migrations have a version 9000 after it.
    """
    url = with_password(url)
    open_store(url).close()
    today = schema_head()
    monkeypatch.setattr(ppk.adapters.sql, "_MIGRATIONS", newer_migrations(tmp_path))
    monkeypatch.setattr(ppk.adapters.sql, "SCHEMA_HEAD", "9000")  # as that ppk's constant says
    assert schema_head() == "9000"
    with pytest.raises(DatabaseError) as refused:
        open_store(url)
    message = one_line(refused)
    assert f"schema version {today}" in message
    assert "needs 9000" in message
    assert "ppk db upgrade --db " in message
    assert version_of(url) == [today]
    assert upgrade_database(url) == (today, "9000")
    open_store(url).close()
    assert version_of(url) == ["9000"]
    # And the ppk of today, before that version, refuses what the newer one wrote.
    monkeypatch.undo()
    with pytest.raises(DatabaseError) as newer:
        open_store(url)
    assert "schema version 9000" in one_line(newer)
    assert "newer ppk" in one_line(newer)


def test_open_store__refuses_an_unknown_schema_version(url: str) -> None:
    """A version this ppk does not know (a newer ppk's) is refused by open and by upgrade alike."""
    url = ppk_database_then(with_password(url), "UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(DatabaseError) as refused:
        open_store(url)
    message = one_line(refused)
    assert "schema version 9999" in message
    assert "newer ppk" in message
    with pytest.raises(DatabaseError) as not_upgraded:
        upgrade_database(url)
    assert "schema version 9999" in one_line(not_upgraded)
    assert version_of(url) == ["9999"]


def test_open_store__refuses_a_database_of_two_schema_versions(url: str) -> None:
    """Two version rows (an older ppk's beside this one's): which schema the tables are at is not
    known, so opening, reading and upgrading refuse it in one line (Alembic's reader of the version
    raised its own error: a traceback), and leave both rows."""
    url = ppk_database_then(with_password(url), "INSERT INTO alembic_version VALUES ('0001')")
    for open_or_upgrade in (open_store, partial(open_store, create=False), upgrade_database):
        with pytest.raises(DatabaseError) as refused:
            open_or_upgrade(url)
        message = one_line(refused)
        assert "has 2 schema versions ('0001', '0002'), and a ppk database has one" in message
    assert sorted(version_of(url)) == ["0001", "0002"]


def test_open_store__names_five_of_a_databases_schema_versions(url: str) -> None:
    """Seven version rows: the refusal counts them all and names the first five in sorted order."""
    others = ", ".join(f"('{version}')" for version in ("c", "0004", "b", "0003", "a", "0001"))
    url = ppk_database_then(url, f"INSERT INTO alembic_version VALUES {others}")
    with pytest.raises(DatabaseError) as refused:
        open_store(url)
    assert "has 7 schema versions ('0001', '0002', '0003', '0004', 'a'), and" in one_line(refused)


def test_open_store__refuses_a_database_that_is_not_ppks(url: str) -> None:
    """A database with tables and no ppk version is someone else's: opening and upgrading refuse it,
    and leave it untouched."""
    url = with_password(url)
    engine = make_engine(database_url(url))
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE customers (name VARCHAR(10))"))
    engine.dispose()
    for open_or_upgrade in (open_store, upgrade_database):
        with pytest.raises(DatabaseError) as refused:
            open_or_upgrade(url)
        message = one_line(refused)
        assert "is not a ppk database" in message
        assert "customers" in message
        assert table_names(url) == ["customers"]


def test_open_store__names_five_of_a_foreign_databases_tables_in_order(url: str) -> None:
    """A foreign database may hold hundreds of tables: the refusal names the first five, sorted, so
    that it stays one line (mutation survivor adapters/sql.py:301)."""
    url = with_password(url)
    engine = make_engine(database_url(url))
    tables = ["zones", "orders", "customers", "invoices", "products", "audit_log", "suppliers"]
    with engine.begin() as connection:
        for table in tables:
            connection.execute(text(f"CREATE TABLE {table} (name VARCHAR(10))"))
    engine.dispose()
    with pytest.raises(DatabaseError) as refused:
        open_store(url)
    message = one_line(refused)
    assert "(audit_log, customers, invoices, orders, products)" in message
    assert "suppliers" not in message and "zones" not in message


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_open_store__an_unreachable_server_is_one_line_without_the_password() -> None:
    """No server on the port: a DatabaseError of one line that shows no password."""
    with pytest.raises(DatabaseError) as refused:
        open_store(f"postgresql://postgres:SECRET@127.0.0.1:{(port := free_port())}/ppk")
    assert "postgres:***@127.0.0.1" in one_line(refused)
    assert f"port {port} failed: Connection refused" in one_line(refused)  # the driver's first line


# --- database_url ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("named", "expected"),
    [
        pytest.param("ppk.db", "sqlite:///ppk.db", id="a bare file name"),
        pytest.param("data/ppk.sqlite", "sqlite:///data/ppk.sqlite", id="a relative path"),
        pytest.param("/var/ppk/ppk.db", "sqlite:////var/ppk/ppk.db", id="an absolute path"),
        pytest.param("sqlite:///ppk.db", "sqlite:///ppk.db", id="a sqlite URL"),
        pytest.param("postgresql://u@h:5/d", "postgresql+psycopg://u@h:5/d", id="postgresql"),
        pytest.param("postgres://u@h:5/d", "postgresql+psycopg://u@h:5/d", id="postgres"),
        pytest.param("postgresql+psycopg://u:p@h/d", "postgresql+psycopg://u:p@h/d", id="postgresql+psycopg"),
    ],
)
def test_database_url__reads_a_database_as_users_write_it(named: str, expected: str) -> None:
    """A path is a SQLite file; a PostgreSQL URL is driven by psycopg 3."""
    assert database_url(named).render_as_string(hide_password=False) == expected


@pytest.mark.parametrize(
    ("named", "reason"),
    [
        pytest.param("sqlite://", "in-memory SQLite database keeps nothing", id="sqlite memory"),
        pytest.param("sqlite:///:memory:", "in-memory SQLite database keeps nothing", id="sqlite :memory:"),
        pytest.param(":memory:", "in-memory SQLite database keeps nothing", id=":memory: as a path"),
        pytest.param("./:memory:", "in-memory SQLite database keeps nothing", id="./:memory: as a path"),
        pytest.param(
            "sqlite:///file:ppk.db?mode=memory&uri=true", "takes no options after '?'", id="an in-memory URI"
        ),
        pytest.param("sqlite:///ppk.db?nolock=1&uri=true", "takes no options after '?'", id="no locks"),
        pytest.param("sqlite:///ppk.db?x", "takes no options after '?'", id="an option SQLAlchemy drops"),
        pytest.param("mysql://u:SECRET@h/d", "not mysql", id="mysql"),
        pytest.param("postgresql+asyncpg://u:SECRET@h/d", "not postgresql+asyncpg", id="another driver"),
        pytest.param(
            "postgresql://u:SECRET@h:port/d", "is not a database URL", id="a port that is no number"
        ),
    ],
)
def test_database_url__refuses_what_cannot_keep_a_ledger(named: str, reason: str) -> None:
    """A database that keeps nothing or is not SQLite or PostgreSQL: one line, no password."""
    with pytest.raises(DatabaseError) as refused:
        database_url(named)
    assert reason in one_line(refused)


def test_database_url__without_a_name_uses_the_environment_then_ppk_db(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--db, else $PPK_DATABASE_URL, else ppk.db in the current folder."""
    monkeypatch.setenv(DATABASE_ENV, "postgresql://u@h:5/d")
    assert database_url(None).render_as_string() == "postgresql+psycopg://u@h:5/d"
    assert database_url("named.db").render_as_string() == "sqlite:///named.db"
    monkeypatch.delenv(DATABASE_ENV)
    assert database_url(None).render_as_string() == "sqlite:///ppk.db"


@pytest.mark.parametrize(
    ("url", "refusal"),
    [
        (
            "mysql+pymysql://u:SECRET@h/db",
            "'mysql://u:***@h/db': a mysql engine: ppk stores in SQLite or PostgreSQL",
        ),
        (
            "postgresql+pg8000://u:SECRET@h/db",
            "'postgresql://u:***@h/db': a PostgreSQL engine driven by pg8000: ppk drives PostgreSQL with "
            "psycopg 3, not async (postgresql+psycopg://)",
        ),
        (
            "postgresql+psycopg_async://u:SECRET@h/db",
            "'postgresql://u:***@h/db': a PostgreSQL engine driven by psycopg (async): ppk drives "
            "PostgreSQL with psycopg 3, not async (postgresql+psycopg://)",
        ),
    ],
)
def test_sql_store__refuses_an_engine_of_another_database_or_driver(url: str, refusal: str) -> None:
    """A backend that builds its own engine: one ppk cannot keep books on is refused in one line, with
    its password hidden (the DBAPI module is psycopg's, so that no driver need be installed to make it)."""
    engine = create_engine(url, module=psycopg)
    with pytest.raises(DatabaseError) as refused:
        SqlStore(engine)
    assert one_line(refused) == refusal


def test_sql_store__refuses_a_sqlite_engine_ppk_did_not_make_and_takes_one_it_did(tmp_path: Path) -> None:
    """A SQLite engine of plain `create_engine` would write without BEGIN IMMEDIATE, a write-ahead
    log or synchronous=FULL: refused, and the file is not created; `make_engine`'s is taken."""
    path = tmp_path / "ppk.db"
    with pytest.raises(DatabaseError) as refused:
        SqlStore(create_engine(f"sqlite:///{path}"))
    assert one_line(refused) == (
        f"{str(path)!r}: a SQLite engine ppk did not make: it would write without BEGIN IMMEDIATE, a "
        "write-ahead log or synchronous=FULL; make it with ppk.adapters.sql.make_engine, or use open_store"
    )
    assert not path.exists()
    SqlStore(make_engine(database_url(str(path)))).close()


def test_open_store__a_folder_that_does_not_exist_is_named(tmp_path: Path) -> None:
    """A SQLite file in a missing folder: refused naming the folder, and nothing is created."""
    missing = tmp_path / "missing"
    with pytest.raises(DatabaseError) as refused:
        open_store(str(missing / "ppk.db"))
    assert repr(str(missing)) in one_line(refused)
    assert not missing.exists()


def test_open_store__refuses_a_file_sqlite_will_not_keep_a_write_ahead_log_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where SQLite cannot share memory between connections (some network file systems), it answers
    `PRAGMA journal_mode=WAL` with the mode it kept. spec.md#database: the store refuses to run
    without WAL (readers never wait for the writer), in one line that names what SQLite kept, and
    leaves no file behind that was not there before; an empty file that was stays."""
    monkeypatch.setattr(ppk.adapters.sql, "_durability", lambda cursor, timeout_s: ("delete", 2))
    with pytest.raises(DatabaseError) as refused:
        open_store(str(tmp_path / "ppk.db"))
    message = one_line(refused)
    assert "would not keep a write-ahead log with synchronous=FULL" in message
    assert "(journal_mode=delete, synchronous=2)" in message
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "empty.db").touch()
    with pytest.raises(DatabaseError, match="would not keep a write-ahead log"):
        open_store(str(tmp_path / "empty.db"))
    assert [(path.name, path.stat().st_size) for path in tmp_path.iterdir()] == [("empty.db", 0)]


# --- Paging ----------------------------------------------------------------------------------------


def test_paging__ledger_and_pending_payouts_read_whole_across_every_page_boundary(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With pages of 3 rows, a ledger of 1 to 10 entries and the pending payouts across accounts
    read whole and in order, a page ending exactly at a ledger's or an account's end included."""
    monkeypatch.setattr(ppk.adapters.sql, "PAGE_ROWS", 3)
    decisions: list[Decision] = []
    for command in [opened(), *(Fund(id=f"f{n}", account="acme", amount_minor=1_000) for n in range(9))]:
        decisions.append(store.execute(command))
        assert list(store.ledger("acme")) == decisions
    expected: list[tuple[str, str]] = []
    for account, count in [("a", 3), ("a.b", 1), ("b", 2), ("c", 3)]:
        store.execute_many([opened(account), Fund(id="f", account=account, amount_minor=1_000)])
        for n in range(count):
            store.execute(RecordBalance(id=f"b{n}", account=account, balance_minor=1_001))
            expected.append((account, f"{account}:b{n}"))
            assert [(pending.account, pending.payout.id) for pending in store.pending_payouts()] == sorted(
                expected
            )


# --- SQLite: durable, and one writer at a time -----------------------------------------------------


def test_sqlite__every_connection_keeps_a_write_ahead_log_synced_in_full(tmp_path: Path) -> None:
    """spec.md#database: WAL and synchronous=FULL (2) on each of the store's connections."""
    store = open_store(str(tmp_path / "ppk.db"))
    try:
        with store.engine.connect() as first, store.engine.connect() as second:
            for connection in (first, second):
                assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2
    finally:
        store.close()


def hold_the_write_lock(path: Path, seconds: float, held: threading.Event) -> None:
    """Another process's writer: the write lock, for a while."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("UPDATE accounts SET entry_count = entry_count")
        held.set()
        time.sleep(seconds)
        connection.execute("COMMIT")
    finally:
        connection.close()


def test_sqlite__a_writer_waits_for_another_to_finish_and_readers_do_not(tmp_path: Path) -> None:
    """Concurrent writers queue (busy timeout) instead of failing; a reader needs no lock at all (WAL)."""
    path = tmp_path / "ppk.db"
    store = open_store(str(path))
    try:
        store.execute(opened())
        held = threading.Event()
        holder = threading.Thread(target=hold_the_write_lock, args=(path, 0.5, held))
        holder.start()
        assert held.wait(10)
        started = time.monotonic()
        assert store.account("acme") is not None
        assert time.monotonic() - started < 0.25
        decision = store.execute(Fund(id="f", account="acme", amount_minor=5))
        waited_s = time.monotonic() - started
        holder.join()
        assert outcome(decision) == "applied"
        assert waited_s >= 0.3, "the writer should have waited for the lock"
        account = store.account("acme")
        assert account is not None and account.funding_minor == 5
    finally:
        store.close()


def test_sqlite__a_lock_held_beyond_the_busy_timeout_is_one_line_saying_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer that waited the whole busy timeout gives up with one line naming the database."""
    monkeypatch.setattr(ppk.adapters.sql, "BUSY_TIMEOUT_S", 0.05)
    path = tmp_path / "ppk.db"
    store = open_store(str(path))
    store.execute(opened())
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(DatabaseError) as locked:
            store.execute(Fund(id="f", account="acme", amount_minor=5))
        message = one_line(locked)
        assert repr(str(path)) in message
        assert "locked" in message
        assert "0.05 s" in message
        with pytest.raises(DatabaseError) as not_opened:
            open_store(str(path))
        assert "locked" in one_line(not_opened)
        holder.execute("COMMIT")
        assert store.entry("acme", "f") is None
        assert outcome(store.execute(Fund(id="f", account="acme", amount_minor=5))) == "applied"
    finally:
        holder.close()
        store.close()


@pytest.fixture
def new_file_write_locked(tmp_path: Path) -> Iterator[tuple[Path, sqlite3.Connection]]:
    """A new SQLite file (not yet in WAL mode) whose write lock another connection holds. SQLite
    refuses the switch to WAL at once then, busy timeout or not (four `ppk apply` racing to open one
    new database hit it one run in twenty)."""
    path = tmp_path / "new.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield path, holder
    finally:
        holder.close()


def test_sqlite__a_new_file_locked_by_another_connection_opens_once_the_lock_is_released(
    new_file_write_locked: tuple[Path, sqlite3.Connection], monkeypatch: pytest.MonkeyPatch
) -> None:
    """ppk waits for that lock as for any."""
    path, holder = new_file_write_locked
    monkeypatch.setattr(ppk.adapters.sql, "BUSY_TIMEOUT_S", 5.0)
    release = threading.Timer(0.3, holder.execute, ("COMMIT",))
    release.start()
    try:
        store = open_store(str(path))
        assert store.account_ids() == []
        store.close()
    finally:
        release.join()


def test_sqlite__a_new_file_locked_by_another_connection_gives_up_after_the_busy_timeout(
    new_file_write_locked: tuple[Path, sqlite3.Connection], monkeypatch: pytest.MonkeyPatch
) -> None:
    """... and gives up with the usual line after the busy timeout."""
    path, _ = new_file_write_locked
    monkeypatch.setattr(ppk.adapters.sql, "BUSY_TIMEOUT_S", 0.2)
    with pytest.raises(DatabaseError) as locked:
        open_store(str(path))
    assert "locked" in one_line(locked) and "0.2 s" in one_line(locked)


# --- Concurrent writers ----------------------------------------------------------------------------


def race(url: str, work: Sequence[Callable[[SqlStore], T]]) -> list[T]:
    """Each piece of work in its own thread, with its own store, all released at once."""
    barrier = threading.Barrier(len(work))

    def one(piece: Callable[[SqlStore], T]) -> T:
        store = open_store(url)
        try:
            store.account("warm up")  # connected before the start, so that they race on the write
            barrier.wait(RACE_TIMEOUT_S)
            return piece(store)
        finally:
            store.close()

    with ThreadPoolExecutor(len(work)) as pool:
        return [future.result(RACE_TIMEOUT_S) for future in [pool.submit(one, piece) for piece in work]]


def executing(command: Command) -> Callable[[SqlStore], Decision]:
    return lambda store: store.execute(command)


def test_race__opening_one_account_under_one_id_applies_once(store: SqlStore, url: str) -> None:
    """Eight writers send the same open_account at once: one applies it, seven get it back as repeated."""
    decisions = race(url, [executing(opened())] * WRITERS)
    assert sorted(outcome(decision) for decision in decisions) == ["applied"] + ["repeated:applied"] * (
        WRITERS - 1
    )
    (entry,) = store.ledger("acme")
    assert all(decision in (entry, Repeated(entry=entry)) for decision in decisions)
    assert_consistent(store)


def test_race__opening_one_account_under_different_ids_applies_once(store: SqlStore, url: str) -> None:
    """Eight writers open the same account under eight ids: one applies, seven are account_exists."""
    decisions = race(url, [executing(opened(id=f"o{n}")) for n in range(WRITERS)])
    outcomes = sorted(outcome(decision) for decision in decisions)
    assert outcomes == ["applied"] + ["rejected:account_exists"] * (WRITERS - 1)
    (entry,) = store.ledger("acme")
    assert entry in decisions
    assert_consistent(store)


def test_race__settling_one_loss_at_once_pays_it_once(store: SqlStore, url: str) -> None:
    """Eight payments of the whole payable at once: one settles the loss, the others are refused."""
    store.execute_many(
        [
            opened(),
            Fund(id="f", account="acme", amount_minor=100_000),
            RecordBalance(id="b", account="acme", balance_minor=90_000),
        ]
    )
    payable_minor = 1_000  # 10 % of the 100.00 loss
    payments = [Settle(id=f"s{n}", account="acme", payment_minor=payable_minor) for n in range(WRITERS)]
    decisions = race(url, [executing(payment) for payment in payments])
    outcomes = sorted(outcome(decision) for decision in decisions)
    assert outcomes.count("applied") == 1
    assert set(outcomes) - {"applied"} <= {"refused:no_active_loss", "refused:payment_exceeds_payable"}
    account = store.account("acme")
    assert account is not None
    assert (account.loss, account.payments_minor, account.capital_closed_minor) == (None, 1_000, 10_000)
    assert account.entry_count == 3 + WRITERS
    assert_consistent(store)


def test_race__writers_on_distinct_accounts_all_apply(store: SqlStore, url: str) -> None:
    """Eight writers, eight accounts: nothing one does stops another."""

    def open_fund_and_record(account: str) -> Callable[[SqlStore], list[str]]:
        def work(writer: SqlStore) -> list[str]:
            return [
                outcome(writer.execute(command))
                for command in [
                    opened(account),
                    Fund(id="f", account=account, amount_minor=100_000),
                    RecordBalance(id="b", account=account, balance_minor=130_000),
                ]
            ]

        return work

    results = race(url, [open_fund_and_record(f"a{n}") for n in range(WRITERS)])
    assert results == [["applied"] * 3] * WRITERS
    assert store.account_ids() == [f"a{n}" for n in range(WRITERS)]
    assert len(list(store.pending_payouts())) == WRITERS
    assert_consistent(store)


def test_race__groups_over_the_same_accounts_in_any_order_all_apply(store: SqlStore, url: str) -> None:
    """Eight groups fund the same eight accounts in eight orders: no deadlock surfaces, all apply."""
    accounts = [f"a{n}" for n in range(WRITERS)]
    store.execute_many([opened(account) for account in accounts])

    def funding(writer_number: int) -> Callable[[SqlStore], list[str]]:
        order = accounts[writer_number:] + accounts[:writer_number]
        group = [Fund(id=f"f{writer_number}", account=account, amount_minor=1) for account in order]
        return lambda writer: [outcome(decision) for decision in writer.execute_many(group)]

    results = race(url, [funding(n) for n in range(WRITERS)])
    assert results == [["applied"] * WRITERS] * WRITERS
    for account in accounts:
        funded = store.account(account)
        assert funded is not None and funded.funding_minor == WRITERS
    assert_consistent(store)


def test_postgresql__a_writer_waits_only_for_its_own_account(postgres_url: str) -> None:
    """No global serialisation point: with account a's row locked, b's writer goes on and a's waits."""
    store = open_store(postgres_url)
    holder = psycopg.connect(postgres_url)
    try:
        store.execute_many([opened("a"), opened("b")])
        holder.execute("SELECT 1 FROM accounts WHERE account = 'a' FOR UPDATE")
        with ThreadPoolExecutor(2) as pool:
            other = pool.submit(store.execute, Fund(id="f", account="b", amount_minor=1))
            assert outcome(other.result(timeout=10)) == "applied"
            same = pool.submit(store.execute, Fund(id="f", account="a", amount_minor=1))
            time.sleep(0.3)
            assert not same.done(), "a's writer should wait for a's row"
            holder.rollback()
            assert outcome(same.result(timeout=10)) == "applied"
    finally:
        holder.close()
        store.close()


def test_postgresql__a_group_reads_afresh_an_account_another_writer_opened_under_it(
    postgres_url: str,
) -> None:
    """An account that did not exist when a group locked its accounts is opened, and a command
    recorded on it, by another writer before the group reaches it: the group's command under that id
    is a duplicate, read from the database, not decided again from what the group looked up first."""
    store, other = open_store(postgres_url), open_store(postgres_url)
    try:
        store.execute(opened("a"))
        interleaved: list[list[Decision]] = []

        def other_writer_commits(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
            # After the group's lookups by key, before its commands: the other writer opens b.
            if not interleaved and statement.startswith("SELECT ledger."):
                interleaved.append(
                    other.execute_many([opened("b"), Fund(id="f", account="b", amount_minor=7)])
                )

        event.listen(store.engine, "after_cursor_execute", other_writer_commits)
        try:
            decisions = store.execute_many(
                [Fund(id="f", account="a", amount_minor=1), Fund(id="f", account="b", amount_minor=7)]
            )
        finally:
            event.remove(store.engine, "after_cursor_execute", other_writer_commits)
        assert [[outcome(decision) for decision in group] for group in interleaved] == [["applied"] * 2]
        assert [outcome(decision) for decision in decisions] == ["applied", "repeated:applied"]
        funded = store.account("b")
        assert funded is not None and (funded.funding_minor, funded.entry_count) == (7, 2)
        assert_consistent(store)
    finally:
        other.close()
        store.close()


# --- Racing to create the schema ------------------------------------------------------------------

WRITERS_IN_THREADS = """
import os, sys, threading
from concurrent.futures import ThreadPoolExecutor, wait
from ppk.adapters.sql import open_store
from ppk.kernel.state import OpenAccount

hang_timeout_s, urls = float(sys.argv[1]), sys.argv[2:]
barrier = threading.Barrier(len(urls))

def writer(url):
    barrier.wait()
    store = open_store(url)
    try:
        command = OpenAccount(id="o", account="acme", my_share_bp=100, company_share_bp=900)
        return type(store.execute(command)).__name__
    finally:
        store.close()

pool = ThreadPoolExecutor(len(urls))
futures = [pool.submit(writer, url) for url in urls]
_, hung = wait(futures, timeout=hang_timeout_s)
if hung:
    print("hung", flush=True)
    os._exit(3)
for future in futures:
    print(future.result(), flush=True)
"""
"""Writers in threads of one process, each opening a store on its URL at once; a hang says so."""

WRITER_PROCESS = """
import pathlib, sys, time
from ppk.adapters.sql import open_store
from ppk.kernel.state import OpenAccount

ready, start, url = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
ready.touch()
deadline = time.monotonic() + 60
while not start.exists() and time.monotonic() < deadline:
    time.sleep(0.001)
store = open_store(url)
command = OpenAccount(id="o", account="acme", my_share_bp=100, company_share_bp=900)
print(type(store.execute(command)).__name__, flush=True)
"""
"""One writer process: it says it is ready, waits for the start file, then opens a store on the URL."""

WRITER_PROCESSES = 4
"""Enough processes to collide (each imports ppk first, which costs a CPU second on a small machine)."""

HANG_TIMEOUT_S = 15.0
"""When writers in threads count as hung; a passing race takes about two seconds."""


def race_in_threads(urls: list[str], folder: Path) -> list[str]:
    """What each writer thread got, in their order; run in a child process, which a crash cannot take
    the test session down with."""
    completed = subprocess.run(
        [sys.executable, "-c", WRITERS_IN_THREADS, str(HANG_TIMEOUT_S), *urls],
        capture_output=True,
        text=True,
        timeout=RACE_TIMEOUT_S,
        check=False,
        cwd=folder,
    )
    assert completed.returncode == 0, (completed.returncode, completed.stdout, completed.stderr[-2000:])
    return completed.stdout.split()


def race_in_processes(url: str, folder: Path) -> list[str]:
    """What each writer process got, released at once once all have started."""
    start = folder / "start"
    ready = [folder / f"ready{n}" for n in range(WRITER_PROCESSES)]
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER_PROCESS, str(path), str(start), url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=folder,
        )
        for path in ready
    ]
    try:
        deadline = time.monotonic() + RACE_TIMEOUT_S
        while not all(path.exists() for path in ready):
            assert time.monotonic() < deadline, "the writer processes did not start"
            time.sleep(0.01)
        start.touch()
        finished = [writer.communicate(timeout=RACE_TIMEOUT_S) for writer in writers]
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
                writer.wait()
    failures = [
        stderr.strip().splitlines()[-1:]
        for writer, (_, stderr) in zip(writers, finished, strict=True)
        if writer.returncode
    ]
    assert failures == []
    return [stdout.strip() for stdout, _ in finished]


@pytest.mark.parametrize(
    ("engine_name", "how"),
    [
        pytest.param("sqlite", "threads", id="sqlite-threads"),
        pytest.param("sqlite", "processes", id="sqlite-processes"),
        pytest.param("postgresql", "threads", id="postgresql-threads"),
        pytest.param("postgresql", "processes", id="postgresql-processes"),
    ],
    indirect=["engine_name"],
)
def test_open_store__writers_racing_to_open_one_new_database_all_get_a_store(
    url: str, how: str, tmp_path: Path
) -> None:
    """Writers open the same empty database at once, as concurrent `ppk apply` runs would: the schema
    is created once, every writer gets a store, and the account opens once."""
    if how == "threads":
        outcomes = race_in_threads([url] * WRITERS, tmp_path)
    else:
        outcomes = race_in_processes(url, tmp_path)
    assert sorted(outcomes) == ["Applied"] + ["Repeated"] * (len(outcomes) - 1)
    assert version_of(url) == [schema_head()]


def test_open_store__threads_opening_distinct_new_databases_each_get_their_schema(tmp_path: Path) -> None:
    """Threads each open a store on their own new SQLite file at once: each file gets the schema.

    SQLite alone: the cross-over is in the process, not the engine, and files cost nothing to make.
    """
    paths = [str(tmp_path / f"ppk{n}.db") for n in range(WRITERS)]
    assert race_in_threads(paths, tmp_path) == ["Applied"] * WRITERS
    for path in paths:
        assert table_names(path) == PPK_TABLES
