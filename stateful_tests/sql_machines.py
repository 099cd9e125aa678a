"""The state machines of `machines.py` on the SQL store: SQLite files and a PostgreSQL database.

Each run gets an empty database: a new SQLite file in a folder of the session, or the PostgreSQL
database of the session with its tables emptied; after every step, `ppk audit` must find it clean.
The crash machine's restarts close the store, as a dead process would lose its connections, and open
a new one on the same database; its crashes come before the command's transaction, inside it (after
the ledger's insert) and after it (`faults.py`).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import math
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Final
from unittest import mock

from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule
from sqlalchemy import Engine, bindparam, delete, event, insert, select, text
from sqlalchemy.exc import IntegrityError

from ppk.adapters import audit as audit_module
from ppk.adapters import schema
from ppk.adapters import sql as sql_module
from ppk.adapters.audit import CHECKS, EMPTY_DIGEST, Finding, Report, audit
from ppk.adapters.bank import SqliteBank, TransferRefusedError
from ppk.adapters.canonical import decode_entry
from ppk.adapters.chain import DIGEST_PREFIX, audit_path, digest_root, root_from_path
from ppk.adapters.sql import BUSY_TIMEOUT_ENV, SqlStore, is_postgresql, open_store
from ppk.adapters.store import Store
from ppk.kernel.contracts import DECIDE_REQUIRES, FOLD_ENSURES, FOLD_REQUIRES
from ppk.kernel.state import ACCOUNT_CHARS_MAX, Command, Decision
from ppk.kernel.transitions import account_problem, command_rejection
from ppk.stateful_tests import sql_tampering, tampering
from ppk.stateful_tests.faults import FaultyStore
from ppk.stateful_tests.machines import (
    DECIDED,
    EXPLORED,
    REACHABLE,
    CrashRetryMachine,
    SettlementMachine,
    check,
)
from ppk.stateful_tests.sql_tampering import SqlForgery, past_the_triggers, read_rows, write_rows

ATTEMPTS_MAX: Final = 8
"""Forgeries tried at one step until the database's constraints let one in (a refused one is cheap)."""
UNFOLDABLE: Final = "an entry the kernel can fold"
"""What the audit expected where the kernel could not fold a stored entry (adapters/audit.py)."""
KERNEL_REFUSALS: Final = (
    *(f"{name}:" for name, _ in (*DECIDE_REQUIRES, *FOLD_REQUIRES, *FOLD_ENSURES)),
    f"{REACHABLE}:",
    f"{DECIDED}:",
    "an account opens with one account_opened event, not ",
    "capital closes only the active loss, not ",
    "an account has no rule for ",
)
"""How the kernel's refusals of a stored entry begin, one of which an unfoldable entry's finding
quotes: a contract of its tables (contracts.py), under ICONTRACT_SLOW fold's two exact preconditions,
and what fold's body raises (transitions.py)."""
UNDECODABLE: Final = "an entry in the canonical encoding"
"""What the audit expected where a stored entry did not decode (adapters/audit.py)."""
REPLAYED: Final = frozenset({"projection", "losses", "payouts"})
"""The checks of the stored books against the replay, which docs/audit.md §4 says stops at an entry
that does not decode or that the kernel cannot fold."""
PAGE_ROWS: Final = (2, 3)
"""The machines' stores and audits read in pages of 2 or 3 rows (drawn each run), not 1,000, and
a group's reads by key take 2 or 3 keys a SELECT, not 128, so that every paged read (a ledger, the
pending payouts, the audit's ledgers) and every group's lookups cross their boundaries in a short
run. 2 ends a read on a full page most often; 3 tells a page's second row from its last, which 2
cannot (the keyset of the next page taken from `rows[1]`, not `rows[-1]`, went unseen in pages of 2:
survivor sql.py 609 of the seed-31 sample). Nothing else depends on these sizes."""
STORE_PAGE_ROWS: Final = sql_module.PAGE_ROWS
"""The store's own page size, put back after each run."""
STORE_KEYS_PER_SELECT: Final = sql_module.KEYS_PER_SELECT_MAX
"""The store's own number of keys a SELECT, put back after each run."""


QUOTED_CHARS_MAX: Final = 300
"""docs/audit.md §4: the most characters a finding quotes of what was expected or found."""
NOT_DIGESTS: Final = {
    "a digest one digit short": DIGEST_PREFIX + "0" * 63,
    "a digest one digit long": DIGEST_PREFIX + "0" * 65,
    "a digest of another version": "ppk2-" + "0" * 64,
    "a digest with a letter past f": DIGEST_PREFIX + "0" * 63 + "g",
    # bytes.fromhex skips spaces between bytes: 31 bytes, written in 64 characters.
    "a digest with spaces between its bytes": DIGEST_PREFIX + "00" * 15 + "  " + "00" * 16,
}
"""Texts that are not digests (docs/audit.md §2: `ppk1-` and 64 lower-case hexadecimal digits)."""
STRAY_ACCOUNTS: Final = {"an account id ppk never writes": " ", "a loss row of an account with no books": "-"}
"""Cases of an account only a stray loss row names, and the first character of its id: a space, which
no id ppk writes holds, or `-`, which sorts before every letter and digit."""
UNVOUCHED: Final = (
    "account and digest",
    "digest in capitals",
    "no such account",
    *STRAY_ACCOUNTS,
    "proof of no such account",
    "digest never recorded, sorting before EMPTY_DIGEST",
    "digest never recorded, sorting after EMPTY_DIGEST",
    *NOT_DIGESTS,
    "texts of 301 and 300 characters",
)
"""What the audit is asked and cannot vouch for (or, in capitals, can)."""
ACCOUNT_AND_DIGEST: Final = "--expect and --proof are about the digest of every account: not with --account"
NOT_A_DIGEST: Final = "a digest: ppk1- and 64 lower-case hexadecimal digits"
"""What the audit expected of `--expect`'s text (docs/audit.md §2)."""
NO_CHECKPOINT: Final = "no checkpoint: it was deleted, or the digest is not of this database"


def read_in_pages_of(rows: int, keys: int | None = None) -> None:
    """Set the page size of the SQL store's and the audit's paged reads, and the keys a SELECT of the
    store's reads by key (as many as `rows` unless said)."""
    # Final constants, changed for the machines only; the audit's is the name it imported.
    sql_module.PAGE_ROWS = rows  # type: ignore[misc]
    audit_module.PAGE_ROWS = rows  # type: ignore[attr-defined]
    sql_module.KEYS_PER_SELECT_MAX = rows if keys is None else keys  # type: ignore[misc]


CHECKPOINT_OF: Final = select(schema.checkpoints).where(schema.checkpoints.c.digest == bindparam("digest"))
DELETE_CHECKPOINT: Final = delete(schema.checkpoints).where(
    schema.checkpoints.c.digest == bindparam("digest")
)
AUDITOR: Final = "ppk_auditor"
"""The PostgreSQL role of an auditor who may read ppk's tables and write none."""


def in_the_order_of_audit_md(finding: Finding) -> tuple[bool, str, bool, int, int]:
    """docs/audit.md §4's order of a report's findings: those about no one account first, then by
    account id; within an account, its whole ledger's before its entries', by position; at one
    place, by check in the order of the table (CHECKS, which tests/test_docs.py holds to it)."""
    at = finding.position
    return (
        finding.account is not None,
        finding.account or "",
        at is not None,
        at or 0,
        CHECKS.index(finding.check),
    )


def checkpoints(engine: Engine) -> set[tuple[Any, ...]]:
    with engine.connect() as connection:
        return {tuple(row) for row in connection.execute(select(schema.checkpoints))}


def read_only_engine(engine: Engine) -> Engine:
    """An engine on the store's database for an auditor who may read it and not write it: on
    PostgreSQL as a role granted SELECT only, on SQLite with every connection `query_only`."""
    if is_postgresql(engine):
        with engine.begin() as connection:
            roles = connection.execute(
                text("SELECT 1 FROM pg_roles WHERE rolname = :name"), {"name": AUDITOR}
            )
            if roles.first() is None:
                connection.execute(text(f"CREATE ROLE {AUDITOR} LOGIN"))
            connection.execute(text(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {AUDITOR}"))
        return sql_module.make_engine(engine.url.set(username=AUDITOR, password=None))
    reader = sql_module.make_engine(engine.url)

    @event.listens_for(reader, "connect")
    def _query_only(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA query_only = ON")

    return reader


def empty_database(store: SqlStore) -> SqlStore:
    """Every table emptied, as the next test run needs it: past the ledger's append-only triggers, as
    only a test (or an insider) would go."""
    with past_the_triggers(store.engine) as connection:
        for table in reversed(schema.metadata.sorted_tables):
            connection.execute(table.delete())
    return store


class SqlDatabases:
    """Where the machines' stores live: a new SQLite file per run, or one PostgreSQL database emptied."""

    postgres_url: ClassVar[str | None] = None
    """The PostgreSQL database to run on; None: SQLite files."""
    _folder: ClassVar[tempfile.TemporaryDirectory[str] | None] = None
    _runs: ClassVar[itertools.count[int]] = itertools.count()

    @staticmethod
    def folder() -> Path:
        """The session's folder for SQLite files, made on first use and deleted at exit."""
        if SqlDatabases._folder is None:
            SqlDatabases._folder = tempfile.TemporaryDirectory(prefix="ppk-machines-")
        return Path(SqlDatabases._folder.name)

    def fresh_store(self) -> SqlStore:
        """A store on an empty database, read in pages of `PAGE_ROWS` (the first, until the run draws
        one) until `forget`."""
        read_in_pages_of(PAGE_ROWS[0])
        url = type(self).postgres_url
        if url is None:
            path = SqlDatabases.folder() / f"run{next(SqlDatabases._runs)}.db"
            self.database = str(path)
            return open_store(self.database)
        self.database = url
        return empty_database(open_store(url))

    @initialize(rows=st.sampled_from(PAGE_ROWS))
    def read_in_pages(self, rows: int) -> None:
        """This run's page size (see PAGE_ROWS)."""
        read_in_pages_of(rows)

    def reopened(self, store: Store) -> Store:
        """The store a new process opens on the same database, the old one's connections gone."""
        assert isinstance(store, SqlStore)
        store.close()
        return open_store(self.database)

    def forget(self, store: Store) -> None:
        """The run is over: close its store, delete its SQLite file, and read in the store's pages again."""
        read_in_pages_of(STORE_PAGE_ROWS, STORE_KEYS_PER_SELECT)
        assert isinstance(store, SqlStore)
        store.close()
        if type(self).postgres_url is None:
            for suffix in ("", "-wal", "-shm"):
                Path(self.database + suffix).unlink(missing_ok=True)


class _Audited:
    """After every step, `ppk audit` finds the store's books clean: every chain, projection, loss
    snapshot and payout of the outbox what its ledger says, every entry the kernel's decision."""

    store: Any
    """The settlement machine's Store, or the crash machine's FaultyStore around one."""

    @invariant()
    def the_audit_finds_the_books_clean(self) -> None:
        inner = self.store.inner if isinstance(self.store, FaultyStore) else self.store
        assert isinstance(inner, SqlStore)
        findings = audit(inner.engine, record=False).findings
        if findings:
            raise AssertionError(f"the audit found {list(findings)}")

    @invariant()
    def the_outbox_reads_alike_in_pages_of_every_size(self) -> None:
        """The pending payouts read in pages of every size from 1 to their number are those read in
        one page: each page goes on after the last row of the one before, by account, then payout id.
        The run's page size crosses few of their boundaries: the seed-61 sample's sql.py 644, the next
        page's account taken from a page's second row (`rows[+1]`), differs only after a page whose
        second and last rows are of two accounts, and passed every machine."""
        inner = self.store.inner if isinstance(self.store, FaultyStore) else self.store
        assert isinstance(inner, SqlStore)
        runs_rows = sql_module.PAGE_ROWS
        try:
            sql_module.PAGE_ROWS = STORE_PAGE_ROWS  # type: ignore[misc]
            whole = [(one.account, one.payout.id) for one in inner.pending_payouts()]
            for rows in range(1, len(whole) + 1):
                sql_module.PAGE_ROWS = rows  # type: ignore[misc]
                paged = [
                    (one.account, one.payout.id)
                    for one in itertools.islice(inner.pending_payouts(), len(whole) + 1)
                ]
                check(paged == whole, f"the outbox in pages of {rows} lists {paged}, in one page {whole}")
        finally:
            sql_module.PAGE_ROWS = runs_rows  # type: ignore[misc]


class SqlSettlementMachine(_Audited, SqlDatabases, SettlementMachine):
    """The settlement machine, in lockstep with the reference, on the SQL store."""

    FORGERIES = False
    """The forgeries test the checkers on the books' values, which a store does not change: the
    in-memory machine runs them, and here they would only double the time."""

    def make_store(self) -> Store:
        return self.fresh_store()

    def teardown(self) -> None:
        self.forget(self.store)

    def __init__(self) -> None:
        super().__init__()
        self.digest: str | None = None
        """The digest of the latest clean audit, its checkpoint recorded: the auditor keeps it elsewhere."""
        self.covered: dict[str, int] = {}
        """Each account's ledger length when `digest` was recorded."""
        self.sql_forgery_turn = 0
        self.sql_forgery_offset = 0

    @initialize(offset=st.integers(0, 2**16))
    def where_the_forgeries_start(self, offset: int) -> None:
        """Each run starts the forgeries of each kind at a drawn place in their list: a short run
        reaches a few of them, and the runs together all (in steps alone, the first of a long list
        went unreached: the model-checking suite's coverage)."""
        self.sql_forgery_offset = offset

    @invariant()
    def the_audit_finds_the_books_clean(self) -> None:
        """docs/audit.md §3, §4: the books audit clean, what the last digest covered was only appended
        to (`expect`), and the last account's proof verifies against the digest with the chain head
        recomputed here, and at no other index."""
        assert isinstance(self.store, SqlStore)
        ids = sorted(self.store.account_ids())
        proved = ids[-1] if ids else None
        report = audit(self.store.engine, expect=self.digest, proof=proved)
        check(report.findings == (), f"the audit found {list(report.findings)} (expecting {self.digest})")
        check(report.clean, "an audit that found nothing is not clean: `ppk audit` would exit 1")
        check(report.recorded, "a clean audit did not record its checkpoint")
        stored = {account_id: self.stored_entries(account_id) for account_id in ids}
        if proved is not None:
            entries = stored[proved]
            check(self.proof_verifies(report, proved, entries), f"the proof of {proved!r} does not verify")
            assert report.proof is not None and report.digest is not None
            root, path = digest_root(report.digest), [bytes.fromhex(one) for one in report.proof.path]
            hashed = self.leaf(proved, len(entries), self.head(proved, entries))
            for wrong in range(-1, report.proof.size + 1):  # and -1 (the seed-73 sample's chain.py 75)
                check(
                    wrong == report.proof.index
                    or root_from_path(hashed, wrong, report.proof.size, path) != root,
                    f"the proof of {proved!r} verifies at index {wrong} of {report.proof.size} too",
                )
            # adapters/chain.py, as a backend calls it on the same books: the proof's path for its leaf,
            # and an IndexError for one outside the tree, as its docstring says (the seed-71 sample's
            # chain.py 63, `<=`, gave a path for the leaf one past the last).
            leaves = [
                self.leaf(one, len(its), self.head(one, its)) for one, its in sorted(stored.items()) if its
            ]
            check(
                audit_path(leaves, report.proof.index) == path, f"audit_path of {proved!r} is not the proof's"
            )
            for outside in (-1, len(leaves)):
                try:
                    audit_path(leaves, outside)
                except IndexError as error:
                    # Naming the leaf asked for and the ones there are (the seed-79 sample's chain.py 64
                    # said "from 0 to" one leaf short).
                    allowed = (
                        f"leaf {outside} of {len(leaves)}: a path is for a leaf from 0 to {len(leaves) - 1}"
                    )
                    check(str(error) == allowed, f"audit_path of leaf {outside}: {error}")
                    continue
                raise AssertionError(f"audit_path gave a path for leaf {outside} of {len(leaves)}")
        self.digest = report.digest
        self.covered = {account_id: len(entries) for account_id, entries in stored.items()}
        # What `ppk audit` says it read (survivor audit.py:370 counted one entry less).
        books = (len(ids), sum(self.covered.values()))
        check(
            (report.accounts, report.entries) == books,
            f"the audit read {report.accounts} accounts and {report.entries} entries, the books have "
            f"{books[0]} and {books[1]}",
        )

    @rule(recorded_before=st.booleans())
    def an_auditor_who_may_only_read(self, recorded_before: bool) -> None:
        """docs/audit.md §3: an auditor with read rights only (a PostgreSQL role granted SELECT, SQLite
        opened `query_only`) gets the clean report and the digest a writer's audit gets; its
        checkpoint is "recorded" exactly when it is in the database (the last step's audit recorded
        it, or, here taken away first, it is not), else it says why, and the audit changes no
        checkpoint."""
        assert isinstance(self.store, SqlStore)
        engine = self.store.engine
        digest = audit(engine, record=False).digest
        taken: list[dict[str, Any]] = []
        if not recorded_before:
            with engine.begin() as connection:
                taken = [dict(row._mapping) for row in connection.execute(CHECKPOINT_OF, {"digest": digest})]
                connection.execute(DELETE_CHECKPOINT, {"digest": digest})
        try:
            before = checkpoints(engine)
            reader = read_only_engine(engine)
            try:
                report = audit(reader)
            finally:
                reader.dispose()
            check(checkpoints(engine) == before, "an audit that may not write changed the checkpoints")
        finally:
            if taken:
                with engine.begin() as connection:
                    connection.execute(insert(schema.checkpoints), taken)
        check(report.findings == () and report.digest == digest, f"a reader's audit: {report}")
        # An empty database's digest has no rows to record: it is as recorded as it can be.
        there = any(row[1] == digest for row in before) or not self.store.account_ids()
        check(report.recorded == there, f"recorded {report.recorded}, and the checkpoint is there: {there}")
        # Why not, in one line: the database's refusal to write, never a lock no one held.
        refusal = report.write_error or ""
        check(
            (refusal == "") == there and "locked" not in refusal and "\n" not in refusal,
            f"the checkpoint is there: {there}; the audit's write error: {report.write_error!r}",
        )
        EXPLORED.outcomes[f"audit: a reader's, its checkpoint there: {there}"] += 1

    @rule(inserting=st.booleans())
    def two_audits_record_at_once(self, inserting: bool) -> None:
        """docs/audit.md §3: two audits of the same books record their checkpoint at once; each says
        it is recorded, and it is there once, as the books are. The other audit runs whole, and
        commits, when this one is about to write: before its write transaction reads for the
        checkpoint again (on SQLite, before its BEGIN IMMEDIATE: after it, the other would wait for
        the lock), or, on PostgreSQL, after that read and before its insert, which then breaks the
        key (the seed-73 sample's audit.py 509, `return False` there, said "not recorded" of the
        checkpoint the other audit had recorded: no machine raced two audits)."""
        assert isinstance(self.store, SqlStore)
        engine = self.store.engine
        inserting = inserting and is_postgresql(engine)
        digest = audit(engine, record=False).digest
        with engine.begin() as connection:
            connection.execute(DELETE_CHECKPOINT, {"digest": digest})
        started: list[bool] = []
        other: list[Report] = []

        def the_other_audit_first(connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if started or not connection.get_execution_options().get("ppk_write", False):
                return
            if inserting and not statement.lstrip().upper().startswith("INSERT INTO CHECKPOINTS"):
                return
            started.append(True)  # the other audit's own statements pass by
            other.append(audit(engine))

        event.listen(engine, "before_cursor_execute", the_other_audit_first)
        try:
            report = audit(engine)
        finally:
            event.remove(engine, "before_cursor_execute", the_other_audit_first)
        books = {account_id: len(self.stored_entries(account_id)) for account_id in self.store.account_ids()}
        check(
            bool(other) == bool(books),
            f"the other audit ran: {bool(other)}; the books have {len(books)} accounts",
        )
        for which, one in (("this", [report]), ("the other", other)):
            for each in one:
                check(each.findings == () and each.digest == digest, f"{which} audit: {each}")
                check(each.recorded, f"{which} audit says its checkpoint, there, is not recorded")
        with engine.connect() as connection:
            rows = sorted(tuple(row) for row in connection.execute(CHECKPOINT_OF, {"digest": digest}))
        recorded = sorted((account_id, digest, length) for account_id, length in books.items())
        check(rows == recorded, f"the checkpoint of two audits at once is {rows}, not {recorded}")
        when = "its insert" if inserting else "its write transaction"
        EXPLORED.outcomes[f"audit: two at once, the other before {when}"] += bool(books)

    @rule(case=st.sampled_from(UNVOUCHED))
    def the_audit_says_what_it_cannot_vouch_for(self, case: str) -> None:
        """docs/audit.md §3, §4: asked of a digest that is not one, of one this database never recorded,
        of an account it does not hold, or of `--account` with a digest, or reading an account id ppk
        never writes or an account with a loss row and nothing else (an insider's rows), the audit says
        so, naming what it asked or read, and finds nothing else; a digest written in capitals between
        spaces is the digest.
        (The audit's paths no machine reached, found by the model-checking suite's coverage.)"""
        assert isinstance(self.store, SqlStore)
        engine, ids = self.store.engine, sorted(self.store.account_ids())
        stranger = "~" + (ids[-1] if ids else "")  # an account id sorting after every other
        if case == "account and digest":
            try:
                audit(
                    engine, record=False, accounts=ids[:1] or [stranger], expect=self.digest or EMPTY_DIGEST
                )
            except ValueError as error:
                check(str(error) == ACCOUNT_AND_DIGEST, f"the audit refused {case} saying {error}")
            else:
                raise AssertionError(f"the audit of {case} did not refuse it")
            return
        findings: list[Finding] = []

        def finds(check: str, expected: str, found: str, account: str | None = None) -> None:
            findings.append(
                Finding(account=account, position=None, check=check, expected=expected, found=found)
            )

        if case == "digest in capitals":
            expect = self.digest or EMPTY_DIGEST
            report = audit(engine, record=False, expect=f"  {expect.upper()} ")
            check(report.expected == expect, f"the audit read {expect.upper()!r} as {report.expected!r}")
        elif case == "no such account":
            # One sorting before every account and one after: the audit goes on past the first (the
            # seed-47 sample's audit.py 385 stopped there, `break` for `continue`, unseen after the last).
            strangers = ["!" + (ids[0] if ids else ""), stranger]
            report = audit(engine, record=False, accounts=[*ids, *strangers])
            for one in strangers:
                finds("projection", "an account of this database", "none", one)
        elif case in STRAY_ACCOUNTS:
            report, findings = self.audit_with_a_stray_loss(case, ids)
        elif case == "proof of no such account":
            report = audit(engine, record=False, proof=stranger)
            finds("projection", "an account with a ledger, for --proof", "none", stranger)
        elif case.startswith("digest never recorded"):
            # On either side of EMPTY_DIGEST, which needs no checkpoint (the seed-41 sample's survivor
            # audit.py:437 asked for one only of digests sorting before it).
            never = hashlib.sha256(b"books this database never held").hexdigest()[1:]
            expect = DIGEST_PREFIX + ("0" if "before" in case else "f") + never
            report = audit(engine, record=False, expect=expect)
            finds("expect", f"the checkpoint of {expect}", NO_CHECKPOINT)
        elif case.startswith("texts of"):
            # docs/audit.md §4: a finding quotes at most 300 characters. One longer is cut to them and
            # "…" (the seed-89 sample's audit.py 62 quoted 301 whole); one as long is said as it is (a
            # `<` for `<=` in audit.py's _shown would cut it).
            longer = DIGEST_PREFIX + "x" * (QUOTED_CHARS_MAX + 1 - len(DIGEST_PREFIX))
            quoted = [finding.found for finding in audit(engine, record=False, expect=longer).findings]
            check(quoted == [longer[:QUOTED_CHARS_MAX] + "…"], f"{case}: the audit quoted {quoted}")
            expect = longer[:QUOTED_CHARS_MAX]
            report = audit(engine, record=False, expect=expect)
            finds("expect", NOT_A_DIGEST, expect)
        else:
            expect = NOT_DIGESTS[case]
            report = audit(engine, record=False, expect=expect)
            finds("expect", NOT_A_DIGEST, expect)
        check(
            list(report.findings) == findings,
            f"{case}: the audit found {list(report.findings)}, not {findings}",
        )
        check(
            report.accounts == len(ids) + 2 * (case == "no such account") + (case in STRAY_ACCOUNTS),
            f"{case}: the audit read {report.accounts} accounts",
        )

    def audit_with_a_stray_loss(self, case: str, ids: list[str]) -> tuple[Report, list[Finding]]:
        """The audit of the books with a loss row an insider wrote under an account that has nothing
        else (its id STRAY_ACCOUNTS[case] and the first id's), and the findings it must make. The id
        sorts before every other: the audit must go on to them, and leave it out of the digest."""
        assert isinstance(self.store, SqlStore)
        engine = self.store.engine
        stranger = STRAY_ACCOUNTS[case] + (ids[0] if ids else "")[: ACCOUNT_CHARS_MAX - 1]
        digest = audit(engine, record=False).digest
        with engine.begin() as connection:
            connection.execute(insert(schema.losses), sql_tampering.stray_loss(stranger))
        try:
            report = audit(engine, record=False)
        finally:
            with engine.begin() as connection:
                connection.execute(schema.losses.delete().where(schema.losses.c.account == stranger))
        check(report.digest == digest, f"{case}: the digest {digest} became {report.digest}")
        problem = account_problem(stranger)
        if problem is not None:
            expected, found = "an account id ppk writes", problem
            return report, [
                Finding(account=stranger, position=None, check="projection", expected=expected, found=found)
            ]
        # A loss no entry opened, of an account with no row and no ledger; the row as the audit shows it.
        named = f"loss {sql_tampering.STRAY_LOSS!r}: "
        shown = [finding.found for finding in report.findings if finding.found.startswith(named + "(")]
        found = shown[0] if shown else f"{named}(the row)"
        return report, [
            Finding(account=stranger, position=None, check="losses", expected=named + "None", found=found)
        ]

    def execute_group(self, commands: list[Command]) -> list[Decision]:
        """spec.md#storage: a group reads its accounts, then the entries and payouts its commands name,
        by key, a few keys a statement, never one statement a command: on SQLite (where no account
        can change under the group's write lock), at most ⌈accounts / K⌉ + 2⌈commands / K⌉ SELECTs,
        K the keys a SELECT takes (the seed-37 sample's survivor sql.py 724 read the first slice of
        accounts one by one, with their keys: the same books, more statements, which only a test of
        `tests/` counted). And what grows with history is looked up one row a key (spec.md E6): it
        reads at most one recorded entry and one payout a command, not the rows after them (the
        seed-89 sample's sql.py 513, `>=` for `==` on the key, read each account's later entries).
        A SELECT by key binds its keys padded to the fewest that are a power of two, so that each
        size is one statement, compiled once, and a full one K rounded up to a power of two (the
        seed-139 sample's sql.py 845, `2 <<` for `1 <<`, bound twice as many: the same rows)."""
        assert isinstance(self.store, SqlStore)
        if is_postgresql(self.store.engine):
            return super().execute_group(commands)
        selects: list[str] = []
        read = {"entries": 0, "payouts": 0}
        keys = sql_module.KEYS_PER_SELECT_MAX
        widest = 1 << (keys - 1).bit_length()

        def count(_connection: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            if statement.lstrip()[:6].upper() != "SELECT":
                return
            selects.append(statement)
            if "_id = ?" in statement:  # by key: (account, command or payout id) pairs, in order
                pairs = list(zip(parameters[0::2], parameters[1::2], strict=True))
                distinct = len(set(pairs))
                padded = 1 << (distinct - 1).bit_length()
                check(
                    len(pairs) == padded <= widest,
                    f"a SELECT by key bound {len(pairs)} keys for {distinct}, not {padded} (the "
                    f"fewest, a power of two, so that each size is one statement) of at most {widest}",
                )

        def counted(kind: str, reader: Callable[[Any], Any]) -> Callable[[Any], Any]:
            def reading(stored: Any) -> Any:
                read[kind] += 1
                return reader(stored)

            return reading

        event.listen(self.store.engine, "before_cursor_execute", count)
        try:
            with (
                mock.patch.object(sql_module, "decode_entry", counted("entries", decode_entry)),
                mock.patch.object(
                    sql_module, "payout_from_row", counted("payouts", sql_module.payout_from_row)
                ),
            ):
                decisions = super().execute_group(commands)
        finally:
            event.remove(self.store.engine, "before_cursor_execute", count)
        formed = [command for command in commands if command_rejection(command) is None]
        check(
            max(read.values()) <= len(formed),
            f"a group of {len(formed)} commands read {read} of the history: more than one a command",
        )
        bound = -(-len({command.account for command in formed}) // keys) + 2 * -(-len(formed) // keys)
        check(
            len(selects) <= bound,
            f"a group of {len(formed)} commands read in {len(selects)} SELECTs, more than {bound}: "
            f"{[statement.splitlines()[-1][:80] for statement in selects]}",
        )
        return decisions

    def stored_entries(self, account_id: str) -> tuple[bytes, ...]:
        """The account's entries as stored, in order: what its client keeps a copy of."""
        assert isinstance(self.store, SqlStore)
        query = select(schema.ledger.c.entry).where(schema.ledger.c.account == account_id)
        with self.store.engine.connect() as connection:
            return tuple(
                bytes(data) for data in connection.execute(query.order_by(schema.ledger.c.seq)).scalars()
            )

    @staticmethod
    def head(account_id: str, entries: tuple[bytes, ...]) -> bytes:
        """docs/audit.md §1, as a client computes it from the document (not with adapters/chain.py)."""
        head = hashlib.sha256(b"ppk-chain-v1\x00" + account_id.encode("ascii")).digest()
        for data in entries:
            head = hashlib.sha256(head + data).digest()
        return head

    @staticmethod
    def leaf(account_id: str, length: int, head: bytes) -> bytes:
        """docs/audit.md §2, from the document: 0x00, the id's length and bytes, the ledger's length in
        8 bytes big-endian, the head (survivor chain.py:35 of the seed-29 sample, 7 bytes, agreed with
        itself)."""
        name = account_id.encode("ascii")
        length_bytes = length.to_bytes(8, "big")
        return hashlib.sha256(b"\x00" + bytes([len(name)]) + name + length_bytes + head).digest()

    def proof_verifies(self, report: Report, account_id: str, entries: tuple[bytes, ...]) -> bool:
        """docs/audit.md §3, the client's side: its own entries, hashed, lead by the path to the digest."""
        proof = report.proof
        if proof is None or report.digest is None or proof.account != account_id:
            return False
        hashed = self.leaf(account_id, len(entries), self.head(account_id, entries))
        path = [bytes.fromhex(sibling) for sibling in proof.path]
        root = digest_root(report.digest)
        return root is not None and root_from_path(hashed, proof.index, proof.size, path) == root

    def sql_forgeries(self, honest: sql_tampering.Rows, account_id: str) -> list[SqlForgery]:
        """This step's forgeries to try, in order: the next kind of `sql_tampering`'s in turn, and of it
        the next ones (from the run's drawn offset and the ledger's length, so that short runs reach
        them all)."""
        account = self.store.account(account_id)
        assert account is not None
        payouts = self.store.payouts(account_id)
        self.sql_forgery_turn += 1
        kind = self.sql_forgery_turn % 5
        turn = self.sql_forgery_turn // 5 + len(honest.ledger)
        if kind == 0:
            entries = tuple(self.store.ledger(account_id))
            ledgers = list(tampering.ledger_forgeries(entries, account, payouts))
            at = (self.sql_forgery_offset + turn) % len(ledgers)
            tried = [*ledgers[at:], *ledgers[:at]][:ATTEMPTS_MAX]
            return [sql_tampering.rewritten(honest, forged, account) for forged in tried]
        forgeries = list(
            (
                sql_tampering.account_row_forgeries(honest, account, payouts),
                sql_tampering.ledger_row_forgeries(honest),
                itertools.chain(
                    sql_tampering.loss_row_forgeries(honest),
                    sql_tampering.payout_row_forgeries(honest, account, payouts),
                ),
                itertools.chain(
                    sql_tampering.entry_bytes_forgeries(honest),
                    () if is_postgresql(self.store.engine) else sql_tampering.stored_as_other_types(honest),
                ),
            )[kind - 1]
        )
        at = (self.sql_forgery_offset + turn) % len(forgeries)
        return [*forgeries[at:], *forgeries[:at]][:ATTEMPTS_MAX]

    @invariant()
    def the_audit_names_what_a_forged_sql_row_breaks(self) -> None:
        """docs/audit.md §4 against raw SQL: the first account's rows forged, one way at each step (its
        row, spec.md#e6; an entry's bytes or hash; an entry deleted, stored again or moved; a loss or
        payout row; a forged ledger rehashed whole; an entry's bytes made not an entry, in each way the
        decoder names, which the audit must say word for word), are named by the audit at the entries
        where they are; the last digest's `expect` fails exactly when what it covered was changed, and
        the account's proof verifies exactly when its entries are its client's. The honest rows are put
        back."""
        assert isinstance(self.store, SqlStore)
        engine, ids = self.store.engine, sorted(self.store.account_ids())
        if not ids:
            return
        account_id = ids[0]
        with engine.connect() as connection:
            honest = read_rows(connection, account_id)
        for forged in self.sql_forgeries(honest, account_id):
            try:
                with (
                    past_the_triggers(engine) as connection,
                    sql_tampering.past_the_checks(connection)
                    if forged.unchecked
                    else contextlib.nullcontext(),
                ):
                    if forged.unindexed:
                        sql_tampering.ONE_ACTIVE_LOSS.drop(connection)
                    write_rows(connection, account_id, forged.rows)
                    for statement in forged.sql:
                        connection.execute(text(statement), {"account": account_id})
            except IntegrityError:
                continue  # a forgery the database's own constraints refuse: the next one
            try:
                report = audit(engine, record=False, expect=self.digest, proof=account_id)
            finally:
                with past_the_triggers(engine) as connection:
                    write_rows(connection, account_id, honest)
                    if forged.unindexed:
                        sql_tampering.ONE_ACTIVE_LOSS.create(connection)
                    if forged.unchecked:
                        sql_tampering.checked_again(connection)
            self.check_sql_forgery(report, forged, honest, account_id)
            EXPLORED.forgeries += 1
            break
        with engine.connect() as connection:
            check(
                read_rows(connection, account_id) == honest, f"the books of {account_id!r} were not put back"
            )

    def check_sql_forgery(
        self, report: Report, forged: SqlForgery, honest: sql_tampering.Rows, account_id: str
    ) -> None:
        name = f"{forged.name} of {account_id!r}"
        check(not report.clean, f"{name}: the audit says the books are clean: `ppk audit` would exit 0")
        check(
            list(report.findings) == sorted(report.findings, key=in_the_order_of_audit_md),
            f"{name}: the findings are not in docs/audit.md §4's order: {report.findings}",
        )
        check(
            {finding.account for finding in report.findings} <= {account_id, None},
            f"{name}: {report.findings}",
        )
        for finding in report.findings:
            # A finding whose two sides read alike tells its reader nothing (the seed-109 sample's
            # audit.py 322, `>=` for `>`, expected a closed loss made active again to be active).
            check(finding.expected != finding.found, f"{name}: a finding with two like sides: {finding}")
        found = {(finding.position, finding.check) for finding in report.findings}
        checks = {check for _, check in found}
        expected = set(forged.found)
        before, after = honest.entries(), forged.rows.entries()
        covered = self.covered.get(account_id) if self.digest is not None else None
        if covered is not None and (len(after) < covered or after[:covered] != before[:covered]):
            expected.add((None, "expect"))
        else:
            check(
                "expect" not in checks, f"{name}: the digest's expect failed on an append: {report.findings}"
            )
        if forged.exact:
            check(
                found == expected,
                f"{name}: the audit found {sorted(found, key=str)}, not {sorted(expected, key=str)}",
            )
        check(
            expected <= found,
            f"{name}: the audit found {sorted(found, key=str)}, missing {sorted(expected - found, key=str)}",
        )
        check(
            forged.breaks <= checks,
            f"{name} breaks {sorted(forged.breaks)}: the audit found {sorted(checks)}",
        )
        if forged.whole:
            check(
                {at for at, _ in found} == {None}, f"{name}: the audit placed it at {sorted(found, key=str)}"
            )
        if forged.chained:
            check("chain" not in checks, f"{name}: rehashed whole, the chain cannot tell: {sorted(checks)}")
        for words in forged.says:
            check(
                any(words in finding.found for finding in report.findings),
                f"{name}: no finding says {words!r}: {report.findings}",
            )
        if forged.reads is not None:
            check(
                forged.reads in [finding.found for finding in report.findings if finding.check == "encoding"],
                f"{name}: no encoding finding reads {forged.reads!r}: {report.findings}",
            )
        unfoldable = [finding for finding in report.findings if finding.expected == UNFOLDABLE]
        if forged.unfoldable is not None:
            check(
                [finding.position for finding in unfoldable] == [forged.unfoldable],
                f"{name}: no unfoldable entry at {forged.unfoldable}: {report.findings}",
            )
        for finding in unfoldable:
            # The contract's own words, not an exception's repr (a bare `assert` has no words), nor the
            # line of code it stands on (survivor audit.py:239 quoted only that).
            check(
                not finding.found.startswith(("ViolationError(", "ContractBroken(", "File ")),
                f"{name}: the audit quoted {finding.found}",
            )
            # Nor one of the values icontract lists after the words, `NAME was VALUE` (the seed-41
            # sample's audit.py:240 quoted the last line of the violation, not the first).
            check(re.match(r"\S+ was ", finding.found) is None, f"{name}: the audit quoted {finding.found}")
            # And a refusal the kernel has: the seed-157 sample's audit.py 188, `not` before fold's
            # postconditions in the audit's own check of them, called an entry that folds unfoldable,
            # in the words of a kernel failing with no contract broken, and stopped the replay there.
            check(
                finding.found.startswith(KERNEL_REFUSALS),
                f"{name}: the audit quoted no refusal of the kernel's: {finding.found}",
            )
        # docs/audit.md §4: the replay stops at the first entry it cannot go on from, so nothing is
        # compared with it after (the seed-89 sample's audit.py 215 replayed on past an undecodable
        # entry, and found rows "wrong" that were right but for it).
        stops = [f.position for f in report.findings if f.expected in {UNFOLDABLE, UNDECODABLE}]
        if stops:
            stop = min(p for p in stops if p is not None)
            past = [
                finding
                for finding in report.findings
                if (finding.check == "decision" and (finding.position or 0) > stop)
                or (finding.check in REPLAYED and finding.expected != "the account's row")
            ]
            check(not past, f"{name}: the replay went on past entry {stop}: {past}")
        verifies = self.proof_verifies(report, account_id, before)
        check(
            verifies == (after == before),
            f"{name}: the proof verifies {verifies}, the entries changed {after != before}",
        )


SPEC_BUSY_TIMEOUT_S: Final = 60.0
"""spec.md#database: how long a writer waits for another's lock when $PPK_BUSY_TIMEOUT is unset."""
SPEC_BUSY_TIMEOUT_MAX_S: Final = 86_400.0
"""spec.md#database: the most $PPK_BUSY_TIMEOUT may say, a day (the spec's number, not sql.py's)."""


def busy_timeout_by_the_words(text: str | None) -> float | None:
    """spec.md#database: the seconds $PPK_BUSY_TIMEOUT says (`text`; None when unset), or None if
    it must be refused: unset or blank, the default of 60; else a decimal number (as Python reads one)
    from 0 to a day. Written from the rule, not from sql.py's code."""
    if text is None or not text.strip():
        return SPEC_BUSY_TIMEOUT_S
    try:
        seconds = float(text)
    except ValueError:
        return None
    return seconds if not math.isnan(seconds) and 0.0 <= seconds <= SPEC_BUSY_TIMEOUT_MAX_S else None


def waits_the_busy_timeout(waits_ms: int, timeout: str | None, named: str) -> None:
    """spec.md#database: a SQLite connection, the store's or the demo bank's, waits for another
    writer's lock $PPK_BUSY_TIMEOUT seconds (`timeout`; None when unset), or 60 when it is unset or
    blank. `waits_ms` is what the connection answers to `PRAGMA busy_timeout`: SQLite holds it in
    whole milliseconds, as Python's sqlite3 gives it, the seconds times 1,000 truncated. No machine
    can wait a minute, so the machines ask the connection."""
    seconds = busy_timeout_by_the_words(timeout)
    check(
        seconds is not None and waits_ms == int(seconds * 1000),
        f"{named} under ${BUSY_TIMEOUT_ENV}={timeout!r} waits {waits_ms} ms for a lock, not {seconds} s",
    )


class SqliteBankGateway:
    """The demo's bank, `ppk dispatch`'s default (adapters/bank.py): a SQLite file with one row per
    payout id transferred, which moves a repeated transfer once and refuses another amount under an
    id it holds. The dispatcher's crash after a transfer makes it send the same transfer again."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.bank = SqliteBank(path)
        self.the_bank_waits_the_busy_timeout()

    def the_bank_waits_the_busy_timeout(self) -> None:
        """spec.md#database: two `ppk dispatch` at once queue at the bank's file as at the store's.
        (The seed-61 sample's bank.py 15, a wait of 61 s, passed every machine.)"""
        waits_ms = self.bank._connection.execute("PRAGMA busy_timeout").fetchone()[0]
        waits_the_busy_timeout(waits_ms, os.environ.get(BUSY_TIMEOUT_ENV), "the bank")

    def send(self, payout_id: str, amount_minor: int) -> None:
        self.bank.send(payout_id, amount_minor)

    @property
    def moved(self) -> dict[str, int]:
        return self.bank.transfers()

    def close(self) -> None:
        self.bank.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)


class SqlCrashRetryMachine(_Audited, SqlDatabases, CrashRetryMachine):
    """The crash machine on the SQL store, paying through the demo's SQLite bank: crashes before,
    inside and after the transaction."""

    _banks: ClassVar[itertools.count[int]] = itertools.count()

    def make_store(self) -> Store:
        return self.fresh_store()

    def make_gateway(self) -> SqliteBankGateway:
        return SqliteBankGateway(SqlDatabases.folder() / f"bank{next(self._banks)}.db")

    def reopen_store(self, store: Store) -> Store:
        return self.reopened(store)

    @precondition(lambda self: bool(self.gateway.moved))
    @rule(data=st.data(), more=st.booleans())
    def the_bank_refuses_another_amount_under_a_payout_id(self, data: st.DataObject, more: bool) -> None:
        """A payout id the bank holds, sent with another amount (a client's bug, not the dispatcher's):
        refused, naming both amounts, and nothing moves (survivor bank.py:52 of the seed-23 sample,
        `<`, refused only a larger one)."""
        assert isinstance(self.gateway, SqliteBankGateway)
        moved = self.gateway.moved
        payout_id = data.draw(st.sampled_from(sorted(moved)), label="payout_id")
        other = moved[payout_id] + (1 if more or moved[payout_id] == 1 else -1)
        try:
            self.gateway.send(payout_id, other)
            refused = ""
        except TransferRefusedError as error:
            refused = str(error)
        check(
            f"for {moved[payout_id]} minor units, not {other}" in refused,
            f"{payout_id!r} sent for {other} after {moved[payout_id]}: {refused or 'accepted'}",
        )
        check(self.gateway.moved == moved, f"{payout_id!r} sent for {other}: the bank's transfers changed")

    def teardown(self) -> None:
        assert isinstance(self.gateway, SqliteBankGateway)
        self.gateway.close()
        self.forget(self.store.inner)
