"""The state machines of `machines.py` on the SQL store: SQLite files and a PostgreSQL database.

Each run gets an empty database: a new SQLite file in a folder of the session, or the PostgreSQL
database of the session with its tables emptied; after every step, `ppk audit` must find it clean.
The crash machine's restarts close the store, as a dead process would lose its connections, and open
a new one on the same database; its crashes come before the command's transaction, inside it (after
the ledger's insert) and after it (`faults.py`).
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path
from typing import ClassVar

from hypothesis.stateful import invariant
from sqlalchemy import text, update
from sqlalchemy.exc import IntegrityError

from ppk.adapters import schema
from ppk.adapters.audit import audit
from ppk.adapters.sql import SqlStore, account_row, is_postgresql, open_store
from ppk.adapters.store import Store
from ppk.stateful_tests import tampering
from ppk.stateful_tests.faults import FaultyStore
from ppk.stateful_tests.machines import CrashRetryMachine, SettlementMachine, check


def empty_database(store: SqlStore) -> SqlStore:
    """Every table emptied, as the next test run needs it: past the ledger's append-only triggers, as
    only a test (or an insider) would go (on PostgreSQL by the superuser's replication role; on
    SQLite by dropping the triggers and making them again as they were)."""
    with store.engine.begin() as connection:
        triggers: list[str] = []
        if is_postgresql(store.engine):
            connection.execute(text("SET LOCAL session_replication_role = replica"))
        else:
            rows = connection.execute(
                text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
            ).all()
            for name, sql in rows:
                connection.execute(text(f'DROP TRIGGER "{name}"'))
                triggers.append(sql)
        for table in reversed(schema.metadata.sorted_tables):
            connection.execute(table.delete())
        for sql in triggers:
            connection.execute(text(sql))
    return store


class SqlDatabases:
    """Where the machines' stores live: a new SQLite file per run, or one PostgreSQL database emptied."""

    postgres_url: ClassVar[str | None] = None
    """The PostgreSQL database to run on; None: SQLite files."""
    _folder: ClassVar[tempfile.TemporaryDirectory[str] | None] = None
    _runs: ClassVar[itertools.count[int]] = itertools.count()

    def fresh_store(self) -> SqlStore:
        """A store on an empty database."""
        url = type(self).postgres_url
        if url is None:
            if SqlDatabases._folder is None:
                SqlDatabases._folder = tempfile.TemporaryDirectory(prefix="ppk-machines-")
            path = Path(SqlDatabases._folder.name) / f"run{next(SqlDatabases._runs)}.db"
            self.database = str(path)
            return open_store(self.database)
        self.database = url
        return empty_database(open_store(url))

    def reopened(self, store: Store) -> Store:
        """The store a new process opens on the same database, the old one's connections gone."""
        assert isinstance(store, SqlStore)
        store.close()
        return open_store(self.database)

    def forget(self, store: Store) -> None:
        """The run is over: close its store, and delete its SQLite file."""
        assert isinstance(store, SqlStore)
        store.close()
        if type(self).postgres_url is None:
            for suffix in ("", "-wal", "-shm"):
                Path(self.database + suffix).unlink(missing_ok=True)


class _Audited:
    """After every step, `ppk audit` finds the store's books clean: every chain, projection, loss
    snapshot and payout of the outbox what its ledger says, every entry the kernel's decision."""

    store: Store

    @invariant()
    def the_audit_finds_the_books_clean(self) -> None:
        inner = self.store.inner if isinstance(self.store, FaultyStore) else self.store
        assert isinstance(inner, SqlStore)
        findings = audit(inner.engine, record=False).findings
        if findings:
            raise AssertionError(f"the audit found {list(findings)}")


class SqlSettlementMachine(_Audited, SqlDatabases, SettlementMachine):
    """The settlement machine, in lockstep with the reference, on the SQL store."""

    FORGERIES = False
    """The forgeries test the checkers on the books' values, which a store does not change: the
    in-memory machine runs them, and here they would only double the time."""

    forgery_turn: int = 0

    def make_store(self) -> Store:
        return self.fresh_store()

    def teardown(self) -> None:
        self.forget(self.store)

    @invariant()
    def the_audit_names_what_a_forged_account_row_breaks(self) -> None:
        """spec.md#e6 on the SQL books: the first account's row, forged (the next of `tampering`'s
        account forgeries at each step, those the database's own constraints let in), is found by the
        audit under the invariants the forgery breaks; the honest row is put back after."""
        assert isinstance(self.store, SqlStore)
        engine, ids = self.store.engine, sorted(self.store.account_ids())
        account = self.store.account(ids[0]) if ids else None
        if account is None:
            return
        forgeries = [
            forged
            for forged in tampering.account_forgeries(account, self.store.payouts(account.id))
            if forged.account is not None and forged.payouts is None
        ]
        self.forgery_turn += 1
        forged = forgeries[self.forgery_turn % len(forgeries)]
        assert forged.account is not None
        row = schema.accounts.c.account == account.id
        try:
            with engine.begin() as connection:
                connection.execute(update(schema.accounts).where(row).values(account_row(forged.account)))
        except IntegrityError:
            return
        try:
            findings = audit(engine, record=False).findings
        finally:
            with engine.begin() as connection:
                connection.execute(update(schema.accounts).where(row).values(account_row(account)))
        found = {finding.check for finding in findings if finding.account == account.id}
        check(
            bool(found) and forged.breaks <= found,
            f"the audit found {sorted(found)} of {forged.name}, which breaks {sorted(forged.breaks)}",
        )
        # A stored figure is against the whole ledger, not one of its entries.
        at = {finding.position for finding in findings if finding.check in forged.breaks}
        check(at <= {None}, f"the audit placed {forged.name} at entries {sorted(map(str, at))}")


class SqlCrashRetryMachine(_Audited, SqlDatabases, CrashRetryMachine):
    """The crash machine on the SQL store: crashes before, inside and after the transaction."""

    def make_store(self) -> Store:
        return self.fresh_store()

    def reopen_store(self, store: Store) -> Store:
        return self.reopened(store)

    def teardown(self) -> None:
        self.forget(self.store.inner)
