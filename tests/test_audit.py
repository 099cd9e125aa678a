"""`ppk audit` (issue 10): every raw edit an insider can make is found, named, and never passes `--expect`.

Realistic books are written by the store on a real database (a SQLite file, and a fresh PostgreSQL
database): five accounts with funding, a loss settled in parts, a loss written off, refusals, a
profit withdrawn and confirmed, another still pending, retries. Then they are changed by raw SQL, past
ppk, as an insider would: the ledger's triggers dropped first, and a CHECK or the partial unique index
too where one stands in the way. Each test says which findings (account, position, check) the audit
must report: the exact set where the books leave no doubt, never a clean report, never a crash.

Also: the digest agrees with docs/verify_chain.py, `--expect` holds across appends and fails on any
rewrite (down to the whole database rebuilt by ppk from an altered history), `--proof` verifies with
the verifier's own code, the real executable's exit statuses, books killed mid-`ppk apply` audit
clean, and on forged books the audit names every invariant stateful_tests/tampering.py says is broken.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.util
import io
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import IO, Any, Final

import attrs
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import Row, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from ppk.adapters import cli
from ppk.adapters.audit import Report, _finding, audit
from ppk.adapters.canonical import decode_entry, encode_entry
from ppk.adapters.chain import chained, digest_root, genesis
from ppk.adapters.schema import APPEND_ONLY_MESSAGE
from ppk.adapters.sql import SqlStore, account_row, database_url, loss_row, open_store
from ppk.adapters.store import MemoryStore
from ppk.kernel.contracts import INVARIANT_IDS
from ppk.kernel.state import (
    Account,
    Applied,
    Command,
    ConfirmPayout,
    Entry,
    Fund,
    Funded,
    OpenAccount,
    Payout,
    RecordBalance,
    Refused,
    Rejected,
    Repeated,
    SetShares,
    Settle,
)
from ppk.stateful_tests import tampering
from ppk.stateful_tests.entry_strategies import ENTRIES

ROOT = Path(__file__).resolve().parent.parent
PPK: Final = [str(Path(sys.executable).with_name("ppk"))]
"""The real executable, installed beside this Python."""
VERIFIER: Final = ROOT / "docs" / "verify_chain.py"


def _verifier() -> ModuleType:
    """docs/verify_chain.py, imported from its file: the auditor's code, not ppk's."""
    spec = importlib.util.spec_from_file_location("verify_chain", VERIFIER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


vc = _verifier()

# --- The books ------------------------------------------------------------------------------------

D = datetime.date
BOOKS: Final[tuple[Command, ...]] = (
    # acme: a loss of 100.00 settled in two parts, a payment refused (and retried), then a profit
    # withdrawn as payout acme:b2 and confirmed.
    OpenAccount(id="o", account="acme", my_share_bp=100, company_share_bp=900),
    Fund(id="f1", account="acme", amount_minor=100_000),
    RecordBalance(id="b1", account="acme", balance_minor=90_000, date=D(2026, 1, 5)),
    Settle(id="s1", account="acme", payment_minor=400),
    Settle(id="s1", account="acme", payment_minor=400),  # a retry: answered, not recorded
    Settle(id="s2", account="acme", payment_minor=700),  # refused: more than the payable 6.00
    Settle(id="s2", account="acme", payment_minor=700),  # the refusal retried
    Settle(id="s3", account="acme", payment_minor=600),  # the rest: the loss is closed
    RecordBalance(id="b2", account="acme", balance_minor=120_000, date=D(2026, 1, 12)),
    ConfirmPayout(id="p1", account="acme", payout="acme:b2"),
    ConfirmPayout(id="p1", account="acme", payout="acme:b2"),
    # beta: a loss that owes nothing (shares 0.01 %) written off at once; refusals; a profit pending.
    OpenAccount(id="o", account="beta", my_share_bp=0, company_share_bp=1),
    Fund(id="f1", account="beta", amount_minor=50_000),
    RecordBalance(id="b1", account="beta", balance_minor=49_000),
    Settle(id="s1", account="beta", payment_minor=1),  # refused: no active loss
    RecordBalance(id="b2", account="beta", balance_minor=60_000),
    ConfirmPayout(id="p1", account="beta", payout="beta:nope"),  # refused: unknown payout
    Fund(id="f1", account="beta", amount_minor=7),  # rejected: the id is taken by another command
    # gamma: a loss settled in part, still active; a balance refused while it is.
    OpenAccount(id="o", account="gamma", my_share_bp=2_000, company_share_bp=3_000),
    Fund(id="f1", account="gamma", amount_minor=10_000),
    RecordBalance(id="b1", account="gamma", balance_minor=6_000),
    Settle(id="s1", account="gamma", payment_minor=500),
    RecordBalance(id="b2", account="gamma", balance_minor=1),  # refused: a loss is active
    Fund(id="f2", account="gamma", amount_minor=-5),  # rejected: not an amount
    # delta: shares changed; a balance equal to CAPITAL, then a stale one refused.
    OpenAccount(id="o", account="delta", my_share_bp=5_000, company_share_bp=5_000),
    Fund(id="f1", account="delta", amount_minor=2_500),
    SetShares(id="sh", account="delta", my_share_bp=1_000, company_share_bp=1_000),
    RecordBalance(id="b1", account="delta", balance_minor=2_500, date=D(2026, 2, 1)),
    RecordBalance(id="b2", account="delta", balance_minor=2_500, date=D(2026, 1, 1)),
    # Zed-9.x: sorts first (upper case before lower case, byte order).
    OpenAccount(id="o", account="Zed-9.x", my_share_bp=0, company_share_bp=0),
    Fund(id="f1", account="Zed-9.x", amount_minor=1),
)
OUTCOMES: Final = (
    ["applied"] * 4 + ["repeated", "payment_exceeds_payable", "repeated"] + ["applied"] * 3 + ["repeated"]
    + ["applied"] * 3 + ["no_active_loss", "applied", "unknown_payout", "rejected"]
    + ["applied"] * 4 + ["loss_active", "rejected"]
    + ["applied"] * 4 + ["stale_balance"]
    + ["applied"] * 2
)  # fmt: skip
LENGTHS: Final = {"acme": 8, "beta": 6, "gamma": 5, "delta": 5, "Zed-9.x": 2}
"""Each account's ledger: its applied and refused commands, once each."""
UNFOLDABLE: Final = "an entry the kernel can fold"
"""What the audit expected where the kernel could not fold a stored entry."""


def outcome(decision: Any) -> str:
    if isinstance(decision, Applied):
        return "applied"
    if isinstance(decision, Repeated):
        return "repeated"
    if isinstance(decision, Rejected):
        return "rejected"
    assert isinstance(decision, Refused)
    return decision.code.value


def written(database: str, commands: Sequence[Command] = BOOKS) -> SqlStore:
    """The store on `database` after the commands, each executed as a backend would, retries too."""
    store = open_store(database)
    outcomes = [outcome(store.execute(command)) for command in commands]
    if commands is BOOKS:
        assert outcomes == OUTCOMES
    return store


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A `--db` value naming an empty database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "ppk.db")
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def another_database(database: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A second empty database on the same engine as `database`."""
    if "://" not in database:
        yield str(tmp_path / "rebuilt.db")
        return
    cluster = request.getfixturevalue("postgres_cluster")
    name = f"rebuilt_{uuid.uuid4().hex[:16]}"
    yield cluster.create_database(name)
    cluster.drop_database(name)


@pytest.fixture
def books(database: str) -> Iterator[SqlStore]:
    """The store on `database`, holding BOOKS."""
    store = written(database)
    yield store
    store.close()


# --- Reading a report ----------------------------------------------------------------------------

Where = tuple[str | None, int | None, str]


def found(report: Report) -> set[Where]:
    """Each finding as (account, position, check)."""
    return {(finding.account, finding.position, finding.check) for finding in report.findings}


def checks(report: Report, account: str | None = None) -> set[str]:
    return {finding.check for finding in report.findings if account is None or finding.account == account}


def clean_digest(store: SqlStore) -> str:
    """A clean audit's digest, its checkpoint recorded."""
    report = audit(store.engine)
    assert (report.findings, report.recorded) == ((), True)
    assert report.digest is not None
    return report.digest


# --- The insider ---------------------------------------------------------------------------------


class Insider:
    """Raw SQL on the database, past ppk, as someone holding its password would write it."""

    def __init__(self, database: str) -> None:
        self.engine = create_engine(database_url(database), poolclass=NullPool)
        self.postgresql = self.engine.dialect.name == "postgresql"

    def run(self, *statements: str | tuple[str, dict[str, Any]]) -> None:
        """The statements, in one transaction."""
        with self.engine.begin() as connection:
            for statement in statements:
                sql, parameters = (statement, {}) if isinstance(statement, str) else statement
                connection.execute(text(sql), parameters)

    def rows(self, sql: str, **parameters: Any) -> list[Row[Any]]:
        with self.engine.connect() as connection:
            return list(connection.execute(text(sql), parameters))

    def drop_triggers(self) -> None:
        """What an insider does first: the ledger's append-only triggers go."""
        if self.postgresql:
            self.run(
                "DROP TRIGGER ledger_is_append_only ON ledger",
                "DROP TRIGGER ledger_is_not_truncated ON ledger",
            )
        else:
            self.run("DROP TRIGGER ledger_is_append_only_update", "DROP TRIGGER ledger_is_append_only_delete")

    def entry(self, account: str, seq: int) -> bytes:
        (row,) = self.rows("SELECT entry FROM ledger WHERE account = :a AND seq = :s", a=account, s=seq)
        return bytes(row.entry)

    def set_entry(self, account: str, seq: int, data: bytes) -> None:
        self.run(
            (
                "UPDATE ledger SET entry = :e WHERE account = :a AND seq = :s",
                {"e": data, "a": account, "s": seq},
            )
        )

    def rehash(self, account: str) -> None:
        """The cover-up: every hash, the chain head and the count recomputed from the entries as they are."""
        rows = self.rows("SELECT seq, entry FROM ledger WHERE account = :a ORDER BY seq", a=account)
        head = genesis(account)
        statements: list[str | tuple[str, dict[str, Any]]] = []
        for row in rows:
            head = chained(head, bytes(row.entry))
            update = "UPDATE ledger SET hash = :h WHERE account = :a AND seq = :s"
            statements.append((update, {"h": head, "a": account, "s": row.seq}))
        update = "UPDATE accounts SET chain_head = :h, entry_count = :n WHERE account = :a"
        statements.append((update, {"h": head, "n": len(rows), "a": account}))
        self.run(*statements)

    def digest(self) -> str:
        """The digest of the ledger as stored, computed with docs/verify_chain.py's functions alone."""
        ledgers: dict[str, list[bytes]] = {}
        for row in self.rows("SELECT account, entry FROM ledger ORDER BY account, seq"):
            ledgers.setdefault(row.account, []).append(bytes(row.entry))
        return verifier_digest(ledgers)


def chain_head(entries: Sequence[bytes], account: str) -> bytes:
    head = vc.chain_genesis(account)
    for data in entries:
        head = vc.chain_step(head, data)
    return head


def verifier_digest(ledgers: dict[str, list[bytes]]) -> str:
    accounts = sorted(ledgers, key=lambda account: account.encode("ascii"))
    leaves = [
        vc.leaf(account, len(ledgers[account]), chain_head(ledgers[account], account)) for account in accounts
    ]
    return str(vc.digest_text(vc.merkle_root(leaves)))


def verify_chain(path: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(VERIFIER), path, *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


# --- A clean database ----------------------------------------------------------------------------


def test_clean__audits_clean_records_its_checkpoint_and_its_digest_is_the_verifiers(
    books: SqlStore, database: str
) -> None:
    report = audit(books.engine)
    assert (report.findings, report.clean, report.recorded) == ((), True, True)
    assert (report.accounts, report.entries) == (5, sum(LENGTHS.values()))
    insider = Insider(database)
    assert report.digest == insider.digest()
    checkpoint = {row.account: row.length for row in insider.rows("SELECT account, length FROM checkpoints")}
    assert checkpoint == LENGTHS
    again = audit(books.engine)
    assert (again.findings, again.digest, again.recorded) == ((), report.digest, True)
    assert len(insider.rows("SELECT * FROM checkpoints")) == len(LENGTHS), "recorded once"
    if not insider.postgresql:
        verified = verify_chain(database)
        assert (verified.returncode, verified.stderr) == (0, "")
        assert verified.stdout.splitlines() == [f"digest {report.digest}"]


def test_clean__the_same_books_have_the_same_digest_on_both_engines(
    postgres_url: str, tmp_path: Path
) -> None:
    digests = []
    for database in (str(tmp_path / "ppk.db"), postgres_url):
        store = written(database)
        try:
            digests.append(clean_digest(store))
        finally:
            store.close()
    assert digests[0] == digests[1]


def test_expect__holds_after_more_commands_and_a_new_account(books: SqlStore, database: str) -> None:
    digest = clean_digest(books)
    assert audit(books.engine, expect=digest).findings == ()
    for command in (
        Fund(id="f9", account="acme", amount_minor=5),
        Settle(id="s9", account="gamma", payment_minor=1_000),
        OpenAccount(id="o", account="newco", my_share_bp=1, company_share_bp=1),
        Fund(id="f1", account="newco", amount_minor=9),
    ):
        assert isinstance(books.execute(command), Applied)
    report = audit(books.engine, expect=digest)
    assert (report.findings, report.expected, report.recorded) == ((), digest, True)
    assert report.digest not in (None, digest)
    assert audit(books.engine, expect=report.digest).findings == ()
    assert audit(books.engine, expect=digest).findings == (), "the older digest still holds"
    if "://" not in database:
        verified = verify_chain(database, "--expect", digest)
        assert verified.returncode == 0, verified.stdout
        assert verified.stdout.splitlines()[-1] == f"digest {report.digest}"


MALFORMED: Final = (
    "ppk1-xyz",
    "ppk1-" + "0" * 63,
    "ppk1-" + "0" * 65,
    "ppk2-" + "0" * 64,
    "sha256:" + "0" * 64,
    "",
    " ppk1-" + "0" * 64,
)


def test_expect__fails_for_a_digest_unknown_malformed_or_whose_checkpoint_is_gone(
    books: SqlStore, database: str
) -> None:
    digest = clean_digest(books)
    unknown = "ppk1-" + hashlib.sha256(b"another database").hexdigest()
    for expect in (unknown, *MALFORMED, digest[:-1], digest + "0"):
        report = audit(books.engine, expect=expect)
        assert found(report) == {(None, None, "expect")}, expect
        assert report.recorded is False
    insider = Insider(database)
    # A checkpoint edited (one length shorter), one account's row dropped, then every row deleted.
    insider.run(
        ("UPDATE checkpoints SET length = length - 1 WHERE account = 'acme' AND digest = :d", {"d": digest})
    )
    assert found(audit(books.engine, expect=digest)) == {(None, None, "expect")}
    insider.run(
        ("UPDATE checkpoints SET length = length + 1 WHERE account = 'acme' AND digest = :d", {"d": digest})
    )
    assert audit(books.engine, expect=digest).findings == (), "put back, it holds again"
    insider.run(("DELETE FROM checkpoints WHERE account = 'beta' AND digest = :d", {"d": digest}))
    assert found(audit(books.engine, expect=digest)) == {(None, None, "expect")}
    insider.run("DELETE FROM checkpoints")
    report = audit(books.engine, expect=digest)
    assert found(report) == {(None, None, "expect")}
    assert "no checkpoint" in report.findings[0].found


def test_expect__a_digest_is_64_hexadecimal_digits_not_bytes_fromhex_s_reading_of_them(
    books: SqlStore,
) -> None:
    """bytes.fromhex skips spaces between bytes: 31 bytes in 64 characters were taken for a digest, and
    reported as one never recorded rather than as no digest."""
    spaced = "ppk1-" + "00" * 15 + "  " + "00" * 16
    assert digest_root(spaced) is None
    report = audit(books.engine, expect=spaced)
    assert [finding.expected for finding in report.findings] == [
        "a digest: ppk1- and 64 lower-case hexadecimal digits"
    ]


# --- Tampering by raw SQL, the triggers dropped first --------------------------------------------

SETTLED_400: Final = b'"payment_minor":400,"type":"settled"'
SETTLED_401: Final = b'"payment_minor":401,"type":"settled"'


AMOUNT_FINDINGS: Final[set[Where]] = {
    ("acme", 4, "chain"),
    ("acme", None, "chain"),
    ("acme", 4, "decision"),
    ("acme", 4, "I6"),
    ("acme", None, "I6"),
}
"""acme's 4th entry, a settlement, claims a payment of 4.01: the chain breaks there and at the head,
the kernel would not have decided it (nor can it fold it: its shares are of 4.00), and I6 fails for
the settlement and for the stored Σ payments."""


def test_tamper__an_amount_changed_inside_an_entry(books: SqlStore, database: str) -> None:
    """acme's first settlement says it was paid 4.01, not 4.00: its shares no longer add up to it."""
    insider = Insider(database)
    insider.drop_triggers()
    before = insider.entry("acme", 4)
    assert before.count(SETTLED_400) == 1
    insider.set_entry("acme", 4, before.replace(SETTLED_400, SETTLED_401))
    report = audit(books.engine)
    assert found(report) == AMOUNT_FINDINGS
    assert report.recorded is False


@pytest.mark.parametrize("database", ["sqlite", "postgresql"], indirect=True)
def test_tamper__an_amount_changed_by_sql_replace(books: SqlStore, database: str) -> None:
    """The same edit as an insider types it, in SQL; SQLite's replace() leaves a TEXT value behind."""
    insider = Insider(database)
    insider.drop_triggers()
    old, new = SETTLED_400.decode(), SETTLED_401.decode()
    edited = (
        "convert_to(replace(convert_from(entry, 'UTF8'), :old, :new), 'UTF8')"
        if insider.postgresql
        else "replace(entry, :old, :new)"
    )
    insider.run(
        (f"UPDATE ledger SET entry = {edited} WHERE account = 'acme' AND seq = 4", {"old": old, "new": new})
    )
    if not insider.postgresql:
        stored = insider.rows("SELECT typeof(entry) AS type FROM ledger WHERE account = 'acme' AND seq = 4")
        assert stored[0].type == "text", "SQLite's replace() gives text, not a blob"
    # On SQLite the entry is text now: chained as its UTF-8, and named as not stored as bytes.
    text_too = set() if insider.postgresql else {("acme", 4, "encoding")}
    assert found(audit(books.engine)) == AMOUNT_FINDINGS | text_too


def test_tamper__an_entry_deleted(books: SqlStore, database: str) -> None:
    """acme's refusal (its 5th entry) deleted: the positions skip, the chain breaks, the count is off."""
    insider = Insider(database)
    insider.drop_triggers()
    insider.run("DELETE FROM ledger WHERE account = 'acme' AND seq = 5")
    assert found(audit(books.engine)) == {
        ("acme", 6, "sequence"),
        ("acme", 7, "sequence"),
        ("acme", 8, "sequence"),
        ("acme", 6, "chain"),
        ("acme", None, "sequence"),
        ("acme", None, "chain"),
        ("acme", None, "I8"),
        ("acme", None, "projection"),
    }


@pytest.mark.parametrize(
    ("swapped", "expected", "names"),
    [
        # The two settlements of acme's loss: the kernel decides them the same in either order (4.00
        # then 6.00 of a payable 10.00 closes 40.00 then 60.00), so only the chain can tell.
        pytest.param(
            (4, 6),
            {("acme", seq, "chain") for seq in (4, 5, 6, 7)},
            {"chain"},
            id="a-reordering-the-kernel-accepts",
        ),
        # The first settlement before the loss it settles: the kernel would have refused it.
        pytest.param(
            (3, 4),
            {("acme", seq, "chain") for seq in (3, 4, 5)} | {("acme", 3, "decision"), ("acme", 3, "I3")},
            # and the books replayed from there: I4, I5 and I9 fail at the entries after it.
            {"chain", "decision", "I3", "I4", "I5", "I9"},
            id="a-settlement-before-its-loss",
        ),
    ],
)
def test_tamper__two_entries_swapped(
    books: SqlStore, database: str, swapped: tuple[int, int], expected: set[Where], names: set[str]
) -> None:
    """Two rows of acme's ledger swapped whole (entry bytes, hash, command id), by their positions."""
    insider = Insider(database)
    insider.drop_triggers()
    first, second = swapped
    move = "UPDATE ledger SET seq = :to WHERE account = 'acme' AND seq = :at"
    insider.run(
        (move, {"to": 1_000, "at": first}),
        (move, {"to": first, "at": second}),
        (move, {"to": second, "at": 1_000}),
    )
    report = audit(books.engine)
    assert expected | {("acme", None, "chain")} <= found(report)
    assert {where[0] for where in found(report)} == {"acme"}
    assert checks(report) == names
    if names == {"chain"}:
        assert found(report) == expected | {("acme", None, "chain")}
    else:
        # Folding the settlement breaks a contract of fold: the finding quotes the contract's words,
        # not the exception's repr (mutation survivor audit.py:237).
        (unfoldable,) = (one for one in report.findings if one.expected == UNFOLDABLE)
        assert unfoldable.position == 3
        assert not unfoldable.found.startswith(("ViolationError(", "AssertionError(")), unfoldable.found


def test_tamper__an_entrys_payload_swapped_with_another_accounts(books: SqlStore, database: str) -> None:
    """acme's refusal s2 and beta's refusal s1 trade places: each is an entry of the other account."""
    insider = Insider(database)
    insider.drop_triggers()
    acme, beta = insider.entry("acme", 5), insider.entry("beta", 4)
    insider.set_entry("acme", 5, beta)
    insider.set_entry("beta", 4, acme)
    assert found(audit(books.engine)) == {
        ("acme", 5, "chain"),
        ("acme", None, "chain"),
        ("acme", 5, "encoding"),
        ("acme", 5, "decision"),
        ("acme", 5, "I8"),
        ("beta", 4, "chain"),
        ("beta", None, "chain"),
        ("beta", 4, "encoding"),
        ("beta", 4, "decision"),
        ("beta", 4, "I8"),
    }


def test_tamper__a_projection_total_changed(books: SqlStore, database: str) -> None:
    """gamma's funding and CAPITAL both one unit up: every CHECK still holds (CAPITAL = FUNDING − CLOSED)."""
    Insider(database).run(
        "UPDATE accounts SET funding_minor = funding_minor + 1, capital_minor = capital_minor + 1 "
        "WHERE account = 'gamma'"
    )
    report = audit(books.engine)
    assert found(report) == {("gamma", None, "projection"), ("gamma", None, "I1")}
    assert {finding.expected for finding in report.findings if finding.check == "projection"} == {
        "capital_minor 9000",
        "funding_minor 10000",
    }


def test_tamper__a_second_active_loss_inserted(books: SqlStore, database: str) -> None:
    """gamma gets another active loss, consistent in itself; the one-active index is dropped first."""
    insider = Insider(database)
    insider.run(
        "DROP INDEX ix_losses_one_active_per_account",
        "INSERT INTO losses (account, opened_by, capital_minor, balance_minor, original_minor, "
        "remaining_minor, capital_closed_minor, my_share_bp, company_share_bp, active) "
        "VALUES ('gamma', 'x', 10000, 6000, 4000, 4000, 0, 2000, 3000, TRUE)",
    )
    report = audit(books.engine)
    assert found(report) == {("gamma", None, "losses")}
    assert any("2 active" in finding.found for finding in report.findings)


def test_tamper__a_stray_loss_does_not_end_the_check_of_the_losses_after_it(
    books: SqlStore, database: str
) -> None:
    """A loss row the ledger never opened ('a', sorting first) is found, and so is gamma's real loss
    ('b1') forged after it: each loss is checked (mutation survivor audit.py:310, continue → break)."""
    Insider(database).run(
        "INSERT INTO losses (account, opened_by, capital_minor, balance_minor, original_minor, "
        "remaining_minor, capital_closed_minor, my_share_bp, company_share_bp, active) "
        "VALUES ('gamma', 'a', 10000, 6000, 4000, 0, 4000, 2000, 3000, FALSE)",
        "UPDATE losses SET my_share_bp = my_share_bp + 1 WHERE account = 'gamma' AND opened_by = 'b1'",
    )
    report = audit(books.engine)
    assert ("gamma", None, "losses") in found(report)
    assert any("'a'" in finding.found for finding in report.findings)
    assert any("'b1' my_share_bp" in finding.found for finding in report.findings)


@pytest.mark.parametrize(
    ("statement", "account"),
    [
        pytest.param(
            "UPDATE payouts SET status = 'confirmed' WHERE payout_id = 'beta:b2'",
            "beta",
            id="pending-confirmed",
        ),
        pytest.param(
            "UPDATE payouts SET amount_minor = amount_minor + 1 WHERE payout_id = 'acme:b2'",
            "acme",
            id="amount+1",
        ),
        pytest.param(
            "UPDATE payouts SET amount_minor = amount_minor - 1 WHERE payout_id = 'beta:b2'",
            "beta",
            id="amount-1",
        ),
    ],
)
def test_tamper__a_payout_confirmed_or_its_amount_changed(
    books: SqlStore, database: str, statement: str, account: str
) -> None:
    Insider(database).run(statement)
    assert found(audit(books.engine)) == {(account, None, "payouts"), (account, None, "I7")}


def test_tamper__a_chain_rehashed_after_an_edit_is_caught_by_expect(books: SqlStore, database: str) -> None:
    """acme's refused payment of 7.00 made 8.00 (refused all the same), every later hash and the head
    recomputed: every check of the books passes, only the digest kept outside can tell."""
    digest = clean_digest(books)
    insider = Insider(database)
    insider.drop_triggers()
    before = insider.entry("acme", 5)
    assert before.count(b'"payment_minor":700') == 1
    insider.set_entry("acme", 5, before.replace(b'"payment_minor":700', b'"payment_minor":800'))
    insider.rehash("acme")
    assert audit(books.engine, record=False).findings == (), "the forgery is consistent in itself"
    report = audit(books.engine, expect=digest)
    assert found(report) == {(None, None, "expect")}
    assert report.recorded is False
    if not insider.postgresql:
        assert verify_chain(database).returncode == 0, "the chain alone cannot tell"
        assert verify_chain(database, "--expect", digest).returncode == 1


def test_tamper__the_last_entry_deleted_and_the_books_made_to_agree_is_caught_by_expect(
    books: SqlStore, database: str
) -> None:
    """gamma's last entry (a refusal) deleted, its count and chain head made to agree: clean on its own."""
    digest = clean_digest(books)
    insider = Insider(database)
    insider.drop_triggers()
    insider.run("DELETE FROM ledger WHERE account = 'gamma' AND seq = 5")
    insider.rehash("gamma")
    assert audit(books.engine, record=False).findings == ()
    assert found(audit(books.engine, expect=digest)) == {("gamma", None, "expect")}


def test_tamper__the_database_rebuilt_by_ppk_from_an_altered_history_is_caught_by_expect(
    books: SqlStore, database: str, another_database: str
) -> None:
    """Every command again, through ppk's own store on a fresh database, gamma funded 100.01 instead of
    100.00; the original's checkpoint rows copied in. Every chain and projection agrees with itself."""
    digest = clean_digest(books)
    altered = [
        Fund(id="f1", account="gamma", amount_minor=10_001)
        if command.account == "gamma" and command.id == "f1"
        else command
        for command in BOOKS
    ]
    assert altered != list(BOOKS)
    rebuilt = written(another_database, altered)
    try:
        copier = Insider(another_database)
        for row in Insider(database).rows("SELECT account, digest, length FROM checkpoints"):
            copier.run(
                (
                    "INSERT INTO checkpoints (account, digest, length) VALUES (:account, :digest, :length)",
                    dict(row._mapping),
                )
            )
        own = audit(rebuilt.engine)
        assert (own.findings, own.recorded) == ((), True), "the rebuilt books audit clean on their own"
        assert own.digest != digest
        report = audit(rebuilt.engine, expect=digest)
        assert found(report) == {(None, None, "expect")}
        assert audit(books.engine, expect=digest).findings == (), "the original still holds"
        if "://" not in another_database:
            assert verify_chain(another_database).returncode == 0
            assert verify_chain(another_database, "--expect", digest).returncode == 1
    finally:
        rebuilt.close()


def test_triggers__refuse_update_delete_and_truncate_on_the_ledger(books: SqlStore, database: str) -> None:
    digest = clean_digest(books)
    insider = Insider(database)
    statements = [
        "UPDATE ledger SET entry = entry WHERE account = 'acme' AND seq = 4",
        "UPDATE ledger SET seq = seq + 100 WHERE account = 'beta'",
        "DELETE FROM ledger WHERE account = 'gamma' AND seq = 5",
        "DELETE FROM ledger",
    ]
    if insider.postgresql:
        statements += ["TRUNCATE ledger", "TRUNCATE ledger CASCADE"]
    for statement in statements:
        with pytest.raises(DBAPIError) as refused:
            insider.run(statement)
        assert APPEND_ONLY_MESSAGE in str(refused.value.orig), statement
    report = audit(books.engine, expect=digest)
    assert (report.findings, report.digest) == ((), digest), "nothing was changed"


# --- What no ppk writes, written by an insider: findings, never a crash ---------------------------


def test_tamper__a_pending_payout_for_an_account_with_no_ledger(books: SqlStore, database: str) -> None:
    Insider(database).run("INSERT INTO payouts VALUES ('mallory', 'mallory:c1', 100000, 'pending')")
    assert [pending.account for pending in books.pending_payouts()] == ["beta", "mallory"]
    report = audit(books.engine)
    assert checks(report, "mallory") & {"payouts", "I7"}


def test_tamper__a_payout_status_no_ppk_writes_past_a_dropped_check(books: SqlStore, database: str) -> None:
    insider = Insider(database)
    if insider.postgresql:
        insider.run("ALTER TABLE payouts DROP CONSTRAINT ck_payouts_status_known")
        insider.run("UPDATE payouts SET status = 'paid' WHERE payout_id = 'beta:b2'")
    else:
        with insider.engine.begin() as connection:
            connection.exec_driver_sql("PRAGMA ignore_check_constraints = ON")
            connection.exec_driver_sql("UPDATE payouts SET status = 'paid' WHERE payout_id = 'beta:b2'")
    assert ("beta", None, "payouts") in found(audit(books.engine))


def test_tamper__a_row_below_seq_1_past_a_dropped_check_is_read_and_named(
    books: SqlStore, database: str
) -> None:
    """A copy of acme's first entry at seq 0, under an id of its own: the audit paged from `seq > 0`
    and said clean, while the store's lookup by id found the row (a retried `ghost` answered from it).
    Read from the first row, it is an entry before the opening one: every position after it is off."""
    insider = Insider(database)
    copy = (
        "INSERT INTO ledger SELECT account, 0, 'ghost', entry, hash FROM ledger "
        "WHERE account = 'acme' AND seq = 1"
    )
    if insider.postgresql:
        insider.run("ALTER TABLE ledger DROP CONSTRAINT ck_ledger_seq_from_1")
        insider.run(copy)
    else:
        with insider.engine.begin() as connection:
            connection.exec_driver_sql("PRAGMA ignore_check_constraints = ON")
            connection.exec_driver_sql(copy)
    acme = {where for where in found(audit(books.engine)) if where[0] == "acme"}
    assert {("acme", seq, "sequence") for seq in range(LENGTHS["acme"] + 1)} <= acme
    assert {("acme", 0, "encoding"), ("acme", 1, "chain"), ("acme", None, "sequence")} <= acme
    # Printed at its position, 0, not as a finding about the whole ledger.
    shown = ppk("audit", "--db", database).stdout.decode().splitlines()
    assert "acme #0 sequence: expected position 1; found position 0" in shown


def test_tamper__an_account_id_ppk_never_writes(books: SqlStore, database: str) -> None:
    Insider(database).run(
        "INSERT INTO accounts SELECT 'zoë', entry_count, my_share_bp, company_share_bp, capital_minor, "
        "balance_minor, funding_minor, capital_closed_minor, profit_withdrawn_minor, payments_minor, "
        "my_share_minor, company_share_minor, balance_date_latest, payout_count, payout_confirmed_count, "
        "payout_confirmed_minor, loss_opened_by, chain_head FROM accounts WHERE account = 'delta'"
    )
    report = audit(books.engine)
    assert any(finding.account == "zoë" for finding in report.findings)


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param(
            "UPDATE ledger SET hash = hex(hash) WHERE account = 'acme' AND seq = 3", id="hash-as-text"
        ),
        pytest.param(
            "UPDATE accounts SET balance_date_latest = 'yesterday' WHERE account = 'acme'", id="date-as-text"
        ),
    ],
)
def test_tamper__sqlite_a_value_of_another_type(tmp_path: Path, statement: str) -> None:
    database = str(tmp_path / "ppk.db")
    store = written(database)
    try:
        insider = Insider(database)
        insider.drop_triggers()
        insider.run(statement)
        assert "acme" in {finding.account for finding in audit(store.engine).findings}
    finally:
        store.close()


def test_finding__two_long_sides_are_cut_where_they_differ_not_where_they_agree() -> None:
    """docs/audit.md §4: cut at their first 300 characters, two sides that agree there would read
    alike (a stored decision with a long id and a loss forged a unit off, found by the settlement
    machine's check that no finding has two like sides)."""
    agreed, tail = "x" * 400, "y" * 500
    finding = _finding("decision", agreed + "A" + tail, agreed + "B" + tail, "acme", 7)
    assert (finding.account, finding.position) == ("acme", 7)
    assert finding.expected == "…" + "x" * 60 + "A" + "y" * 239 + "…"
    assert finding.found == "…" + "x" * 60 + "B" + "y" * 239 + "…"
    # Differing within the first 300, both are cut as one alone would be: at 300, and only if longer.
    finding = _finding("decision", "x" * 299 + "A" + tail, "x" * 299 + "B")
    assert (finding.expected, finding.found) == ("x" * 299 + "A…", "x" * 299 + "B")
    # One side the other's first 300 characters and more: shown from 60 before the first's end.
    finding = _finding("decision", "x" * 300, "x" * 300 + "z")
    assert (finding.expected, finding.found) == ("…" + "x" * 60, "…" + "x" * 60 + "z")


def test_expect__with_some_accounts_does_not_claim_the_others_were_shortened(books: SqlStore) -> None:
    digest = clean_digest(books)
    try:
        report = audit(books.engine, accounts=["acme"], expect=digest)
    except ValueError:
        return  # refusing the combination would do too
    assert not [finding for finding in report.findings if finding.account not in (None, "acme")]


def test_expect__the_digest_of_an_empty_database_holds_later(database: str) -> None:
    store = open_store(database)
    try:
        empty = audit(store.engine)
        assert (empty.findings, empty.recorded) == ((), True)
        assert empty.digest == "ppk1-" + hashlib.sha256(b"").hexdigest()
        for command in BOOKS:
            store.execute(command)
        assert audit(store.engine, expect=empty.digest).findings == ()
    finally:
        store.close()


# --- --proof -------------------------------------------------------------------------------------


def test_proof__each_of_five_accounts_verifies_with_the_verifiers_own_code(
    books: SqlStore, database: str
) -> None:
    insider = Insider(database)
    ledgers: dict[str, list[bytes]] = {}
    for row in insider.rows("SELECT account, entry FROM ledger ORDER BY account, seq"):
        ledgers.setdefault(row.account, []).append(bytes(row.entry))
    order = sorted(ledgers, key=lambda account: account.encode("ascii"))
    assert order == ["Zed-9.x", "acme", "beta", "delta", "gamma"]
    stored = {
        row.account: bytes(row.chain_head) for row in insider.rows("SELECT account, chain_head FROM accounts")
    }
    for account in order:
        report = audit(books.engine, proof=account, record=False)
        proof = report.proof
        assert report.findings == () and proof is not None and report.digest is not None
        head = chain_head(ledgers[account], account)
        assert head == stored[account]
        assert (proof.digest, proof.account, proof.length, proof.head) == (
            report.digest,
            account,
            len(ledgers[account]),
            head.hex(),
        )
        assert (proof.index, proof.size) == (order.index(account), 5)
        root = bytes.fromhex(report.digest.removeprefix("ppk1-"))
        path = [bytes.fromhex(sibling) for sibling in proof.path]
        leaf = vc.leaf(account, proof.length, head)
        assert vc.verify_path(leaf, proof.index, proof.size, path, root)
        assert not vc.verify_path(
            vc.leaf(account, proof.length - 1, head), proof.index, proof.size, path, root
        )
        if path:
            forged = [hashlib.sha256(path[0]).digest(), *path[1:]]
            assert not vc.verify_path(leaf, proof.index, proof.size, forged, root)


# --- The real executable (SQLite) ----------------------------------------------------------------


def ppk(*arguments: str, setting: str | None = None) -> subprocess.CompletedProcess[bytes]:
    """`ppk` in a process of its own; with `setting`=1 in its environment, if given (icontract reads
    ICONTRACT_SLOW, and Python PYTHONOPTIMIZE, when the kernel is imported)."""
    env = None if setting is None else {**os.environ, setting: "1"}
    return subprocess.run([*PPK, *arguments], capture_output=True, timeout=300, check=False, env=env)


@pytest.fixture
def sqlite_books(tmp_path: Path) -> Iterator[tuple[str, SqlStore]]:
    database = str(tmp_path / "ppk.db")
    store = written(database)
    yield database, store
    store.close()


def test_cli__under_icontract_slow_a_forged_decision_is_unfoldable_in_its_contracts_words(
    sqlite_books: tuple[str, SqlStore],
) -> None:
    """ICONTRACT_SLOW=1 (the CrossHair run's setting) gives `fold` its exact precondition, that an entry
    is the decision of its command. The audit then cannot fold a forged decision: it says so at that
    entry, in the contract's words and not icontract's `File …, line …` before them (the seed-79
    sample's audit.py 242, `or` in that filter, quoted the location), and replays no further. Without
    it the audit folds the forged entry and goes on to the projection it disagrees with."""
    database, _store = sqlite_books
    insider = Insider(database)
    insider.drop_triggers()
    forged = Applied(
        command=Fund(id="f1", account="delta", amount_minor=2_500), events=(Funded(amount_minor=2_501),)
    )
    insider.run(
        ("UPDATE ledger SET entry = :e WHERE account = 'delta' AND seq = 2", {"e": encode_entry(forged)})
    )
    slow = ppk("audit", "--db", database, "--json", setting="ICONTRACT_SLOW")
    fast = ppk("audit", "--db", database, "--json")
    for done in (slow, fast):
        assert (done.returncode, done.stderr) == (1, b"")
    slow_findings, fast_findings = (json.loads(done.stdout)["findings"] for done in (slow, fast))
    (unfoldable,) = (one for one in slow_findings if one["expected"] == UNFOLDABLE)
    assert (unfoldable["account"], unfoldable["position"], unfoldable["check"]) == ("delta", 2, "decision")
    assert unfoldable["found"].startswith("the entry is the decision of its command: "), unfoldable["found"]
    # Where the replay stands: with ICONTRACT_SLOW, at the forged entry, no decision judged after it;
    # without it, the forged entry folded (the kernel's decision expected there), and later ones judged.
    slow_at = {one["position"] for one in slow_findings if one["check"] == "decision"}
    fast_at = [(one["position"], one["expected"]) for one in fast_findings if one["check"] == "decision"]
    assert slow_at == {2}, slow_at
    assert any(at == 2 and expected.startswith("Applied(") for at, expected in fast_at), fast_at
    assert any(at > 2 for at, _expected in fast_at), fast_at


def test_cli__under_python_dash_o_the_report_is_the_same(sqlite_books: tuple[str, SqlStore]) -> None:
    """`python -O` (PYTHONOPTIMIZE in a deployment's environment, say) turns off every icontract
    contract and the kernel's assertions. The audit checks fold's contracts itself on an entry the
    kernel decides otherwise, and fold raises what it refuses, so the report is the same: gamma's
    opening entry with its event twice (a ValueError of fold's before, with or without -O), acme's
    settlement of 4.01 (its shares are of 4.00: folded blind under -O, the replay went on from an
    account no ledger reaches), delta's funding of 25.01 (folded under both, until delta's fourth
    entry would break I5 from it), beta's second entry made acme's (decided and folded as beta's
    under -O, before the audit checked what decide requires) and Zed-9.x's opening made a funding
    that opens the account (opened so under -O, before the audit checked what fold requires)."""
    database, _store = sqlite_books
    insider = Insider(database)
    insider.drop_triggers()
    opening = decode_entry(insider.entry("gamma", 1))
    assert isinstance(opening, Applied)
    insider.set_entry("gamma", 1, encode_entry(attrs.evolve(opening, events=opening.events * 2)))
    insider.set_entry("acme", 4, insider.entry("acme", 4).replace(SETTLED_400, SETTLED_401))
    funding = Applied(
        command=Fund(id="f1", account="delta", amount_minor=2_500), events=(Funded(amount_minor=2_501),)
    )
    insider.set_entry("delta", 2, encode_entry(funding))
    theirs = decode_entry(insider.entry("beta", 2))
    theirs = attrs.evolve(theirs, command=attrs.evolve(theirs.command, account="acme"))
    insider.set_entry("beta", 2, encode_entry(theirs))
    zeds = decode_entry(insider.entry("Zed-9.x", 1))
    funds = Fund(id=zeds.command.id, account="Zed-9.x", amount_minor=1)
    insider.set_entry("Zed-9.x", 1, encode_entry(attrs.evolve(zeds, command=funds)))
    optimized = ppk("audit", "--db", database, "--json", setting="PYTHONOPTIMIZE")
    plain = ppk("audit", "--db", database, "--json")
    for done in (optimized, plain):
        assert (done.returncode, done.stderr) == (1, b""), done.stderr[-3000:]
    assert json.loads(optimized.stdout) == json.loads(plain.stdout)
    unfoldable = {
        (one["account"], one["position"], one["found"].split(":")[0])
        for one in json.loads(plain.stdout)["findings"]
        if one["expected"] == UNFOLDABLE
    }
    assert unfoldable == {
        ("gamma", 1, "an account opens with one account_opened event, not [AccountOpened, AccountOpened]"),
        ("acme", 4, "I6, step"),
        ("delta", 4, "I5"),
        ("beta", 2, "the account is the command's"),
        ("Zed-9.x", 1, "only open_account starts an account"),
    }, unfoldable


STORED_AT: Final = [(account, seq) for account, length in LENGTHS.items() for seq in range(1, length + 1)]
"""Every row of the books' ledgers, by account and position."""


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(where=st.sampled_from(STORED_AT), entry=ENTRIES, own=st.booleans())
def test_audit__no_entry_the_codec_reads_makes_it_fail(
    sqlite_books: tuple[str, SqlStore], where: tuple[str, int], entry: Entry, own: bool
) -> None:
    """An insider may store any entry the codec reads in place of one, any command with any events or
    a refusal by any code: the audit reports it and never fails (fold refuses what it cannot fold
    with a contract's or a rule's words, and nothing else may escape it; an opening entry with two
    events made it fail with a ValueError), and the books are not clean. With `own`, the entry's
    command is made the row's own (its account and id), so that it gets past the checks of whose it
    is, to fold. `tests/test_audit.py::test_audit__under_python_dash_o_no_entry_...` runs this under
    `python -O`."""
    database, store = sqlite_books
    account, seq = where
    insider = Insider(database)
    if insider.rows("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
        insider.drop_triggers()
    honest = insider.entry(account, seq)
    if own:
        mine = attrs.evolve(entry.command, account=account, id=decode_entry(honest).command.id)
        entry = attrs.evolve(entry, command=mine)
    forged = encode_entry(entry)
    assume(forged != honest)
    insider.set_entry(account, seq, forged)
    try:
        report = audit(store.engine, record=False)
    finally:
        insider.set_entry(account, seq, honest)
    assert report.findings, f"the audit found nothing of {forged!r} at {account} #{seq}"


def test_audit__under_python_dash_o_no_entry_the_codec_reads_makes_it_fail() -> None:
    """The property above in a process under `python -O`, where neither icontract's contracts nor the
    kernel's assertions run: what fold refuses must not depend on them (pytest rewrites the test's
    own assertions into raises, so they hold under -O)."""
    completed = subprocess.run(
        [
            sys.executable,
            "-O",
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"{__file__}::test_audit__no_entry_the_codec_reads_makes_it_fail",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=ROOT,
    )
    assert completed.returncode == 0, completed.stdout[-8000:] + completed.stderr[-3000:]
    assert "1 passed" in completed.stdout, completed.stdout[-3000:]


def test_cli__clean_is_exit_0_with_the_readable_report_and_the_proof_in_json(
    sqlite_books: tuple[str, SqlStore],
) -> None:
    database, store = sqlite_books
    expected = audit(store.engine, proof="gamma", record=False)
    assert expected.proof is not None
    done = ppk("audit", "--db", database)
    assert (done.returncode, done.stderr) == (0, b"")
    assert done.stdout.decode().splitlines() == [
        f"ppk audit: 5 accounts, {sum(LENGTHS.values())} entries: clean",
        f"digest {expected.digest} (recorded)",
    ]
    done = ppk("audit", "--db", database, "--json", "--proof", "gamma", "--expect", str(expected.digest))
    assert (done.returncode, done.stderr) == (0, b"")
    assert len(done.stdout.splitlines()) == 1
    report = json.loads(done.stdout)
    assert report == {  # docs/audit.md §4: these keys, no others
        "digest": expected.digest,
        "findings": [],
        "accounts": 5,
        "entries": sum(LENGTHS.values()),
        "recorded": True,
        "write_error": None,
        "expect": expected.digest,
        "proof": expected.proof.as_json(),
    }


def test_cli__tampered_is_exit_1_with_the_findings_listed_and_json_is_one_object(
    sqlite_books: tuple[str, SqlStore],
) -> None:
    database, store = sqlite_books
    insider = Insider(database)
    insider.drop_triggers()
    insider.set_entry("acme", 4, insider.entry("acme", 4).replace(SETTLED_400, SETTLED_401))
    insider.run("UPDATE payouts SET status = 'confirmed' WHERE payout_id = 'beta:b2'")
    expected = audit(store.engine, record=False)
    done = ppk("audit", "--db", database)
    assert (done.returncode, done.stderr) == (1, b"")
    lines = done.stdout.decode().splitlines()
    assert (
        lines[0]
        == f"ppk audit: 5 accounts, {sum(LENGTHS.values())} entries: {len(expected.findings)} findings"
    )
    assert lines[-1] == f"digest {expected.digest} (not recorded: the audit found something)"
    assert len(lines) == len(expected.findings) + 2
    for line in (
        "acme #4 chain: expected ",
        "acme chain: expected ",
        "acme #4 I6: expected ",
        "beta payouts: expected ",
    ):
        assert any(shown.startswith(line) for shown in lines), line
    done = ppk("audit", "--db", database, "--json")
    assert (done.returncode, done.stderr) == (1, b"")
    assert len(done.stdout.splitlines()) == 1
    report = json.loads(done.stdout)
    assert {"digest", "findings"} <= report.keys()
    assert report["digest"] == expected.digest
    assert report["findings"] == [finding.as_json() for finding in expected.findings]
    assert {(item["account"], item["position"], item["check"]) for item in report["findings"]} == found(
        expected
    )


def test_cli__a_missing_database_is_one_line_and_exit_2_and_is_not_created(tmp_path: Path) -> None:
    for missing in (tmp_path / "x" / "nope.db", tmp_path / "nope.db"):
        done = ppk("audit", "--db", str(missing))
        assert (done.returncode, done.stdout) == (2, b"")
        assert len(done.stderr.splitlines()) == 1, done.stderr
        assert done.stderr.startswith(b"ppk audit: ")
        assert not missing.exists()


def test_cli__account_restricts_the_audit_and_gives_no_digest(sqlite_books: tuple[str, SqlStore]) -> None:
    database, _ = sqlite_books
    Insider(database).run("UPDATE payouts SET status = 'confirmed' WHERE payout_id = 'beta:b2'")
    done = ppk("audit", "--db", database, "--json", "--account", "acme", "--account", "gamma")
    assert (done.returncode, done.stderr) == (0, b"")
    report = json.loads(done.stdout)
    assert (report["digest"], report["findings"], report["accounts"]) == (None, [], 2)
    assert report["entries"] == LENGTHS["acme"] + LENGTHS["gamma"]
    done = ppk("audit", "--db", database, "--account", "beta")
    assert done.returncode == 1
    assert (
        done.stdout.decode().splitlines()[0] == f"ppk audit: 1 account, {LENGTHS['beta']} entries: 2 findings"
    )
    assert b"digest" not in done.stdout


def test_cli__an_account_id_ppk_could_not_have_written_is_quoted_in_its_findings(
    sqlite_books: tuple[str, SqlStore],
) -> None:
    """An empty `--account` read as a finding about the whole database, and a space as another word."""
    database, _ = sqlite_books
    done = ppk("audit", "--db", database, "--account", "", "--account", " ", "--account", "nosuch")
    assert (done.returncode, done.stderr) == (1, b"")
    assert done.stdout.decode().splitlines()[1:] == [
        f"{shown} projection: expected an account of this database; found none"
        for shown in ("''", "' '", "nosuch")
    ]


def test_cli__an_entry_edited_by_sql_replace_is_reported_not_a_traceback(
    sqlite_books: tuple[str, SqlStore],
) -> None:
    database, _ = sqlite_books
    insider = Insider(database)
    insider.drop_triggers()
    insider.run(
        (
            "UPDATE ledger SET entry = replace(entry, :old, :new) WHERE account = 'acme' AND seq = 4",
            {"old": SETTLED_400.decode(), "new": SETTLED_401.decode()},
        )
    )
    done = ppk("audit", "--db", database)
    assert b"Traceback" not in done.stderr
    assert done.returncode == 1
    assert b"acme #4 chain: expected " in done.stdout


# --- Killed mid-`ppk apply`, run again: audits clean ---------------------------------------------


def story(seed: int, lines: int) -> bytes:
    """Several accounts: losses settled, profits withdrawn and confirmed, retries, refusals, rejections."""
    rng = random.Random(seed)
    accounts = [f"acct{index}" for index in range(5)]
    out: list[dict[str, Any]] = []
    for account in accounts:
        out.append(
            {"id": "open", "account": account, "type": "open_account", "my_share": "1", "company_share": "9"}
        )
        out.append({"id": "fund", "account": account, "type": "fund", "amount": "10000"})
    serial = 0
    while len(out) < lines:
        serial += 1
        account = rng.choice(accounts)
        kind = rng.choices(
            ["fund", "record_balance", "settle", "confirm_payout", "retry", "bad"], [2, 4, 4, 2, 2, 1]
        )[0]
        command: dict[str, Any] = {"id": f"c{serial}", "account": account, "type": kind}
        if kind == "fund":
            command["amount"] = str(rng.randint(1, 50))
        elif kind == "record_balance":
            command["balance"] = str(rng.randint(9_000, 11_000))
        elif kind == "settle":
            command["payment"] = str(rng.choice([1, 5, 50, 500]))
        elif kind == "confirm_payout":
            command["payout"] = f"{account}:c{rng.randint(max(1, serial - 20), serial)}"
        elif kind == "retry":
            command = rng.choice(out)
        else:
            command = {"id": f"c{serial}", "account": account, "type": "fund", "amount": "-1"}
        out.append(command)
    return b"".join(json.dumps(command).encode() + b"\n" for command in out)


def one_run_digest(data: bytes) -> str:
    """The digest of the ledgers one uninterrupted run writes, from `ppk replay`'s store and the verifier."""
    store = MemoryStore()
    for _ in cli.replay_lines(io.BytesIO(data), store):
        pass
    return verifier_digest(
        {account: [encode_entry(entry) for entry in store.ledger(account)] for account in store.account_ids()}
    )


CHUNK_LINES: Final = 40


def killed_run(database: str, chunks: Sequence[bytes], cut: int, rng: random.Random) -> None:
    """`ppk apply` fed the story on its standard input a chunk at a time (each chunk one committed
    group, or a few), SIGKILLed once at least one group has committed, just after chunk `cut` was
    sent: in the middle of a group's transaction, or between two."""
    process = subprocess.Popen(
        [*PPK, "apply", "--db", database],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    committed = threading.Event()

    def drain(stdout: IO[bytes]) -> None:
        for _ in stdout:
            committed.set()

    reader = threading.Thread(target=drain, args=(process.stdout,), daemon=True)
    reader.start()
    try:
        for index, chunk in enumerate(chunks[: cut + 1]):
            process.stdin.write(chunk)
            process.stdin.flush()
            if index == 0:
                assert committed.wait(timeout=120), "ppk apply committed nothing"
        time.sleep(rng.uniform(0, 0.05))
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        reader.join(timeout=60)
    assert process.returncode == -signal.SIGKILL, process.stderr.read() if process.stderr else None


def test_crash__killed_mid_apply_and_run_again_audits_clean(database: str, tmp_path: Path) -> None:
    data = story(seed=10, lines=1_200)
    source = tmp_path / "story.jsonl"
    source.write_bytes(data)
    lines = data.splitlines(keepends=True)
    chunks = [b"".join(lines[at : at + CHUNK_LINES]) for at in range(0, len(lines), CHUNK_LINES)]
    rng = random.Random(12)
    for _ in range(4):
        killed_run(database, chunks, rng.randrange(len(chunks) - 1), rng)
    final = subprocess.run(
        [*PPK, "apply", "--db", database, str(source)], capture_output=True, timeout=600, check=False
    )
    # The story has rejected lines, nothing worse: on stderr, only the closing line of counts.
    assert final.returncode == 1 and final.stderr.startswith(b"ppk apply: ")
    assert final.stderr.count(b"\n") == 1
    statuses = {json.loads(line)["status"] for line in final.stdout.splitlines()}
    assert {"duplicate", "applied"} <= statuses, "the killed runs committed some of the story, not all"
    store = open_store(database)
    try:
        report = audit(store.engine)
    finally:
        store.close()
    assert (report.findings, report.recorded) == ((), True)
    assert report.digest == one_run_digest(data), "the same ledgers, byte for byte, as one run writes"
    if "://" not in database:
        verified = verify_chain(database)
        assert (verified.returncode, verified.stdout.splitlines()) == (0, [f"digest {report.digest}"])


# --- The forgeries of stateful_tests/tampering.py, written raw: the audit names what each breaks -


UNWRITABLE: Final = "stored twice"
"""A payout stored twice: the payouts' primary key (account, payout_id) is the table's shape, not a
constraint an insider drops, so these forgeries cannot be written at all (IntegrityError)."""


class ForgedBooks:
    """One SQLite database, its CHECKs ignored, the one-active-loss index and the ledger's
    UNIQUE(account, command_id) dropped (the ledger rebuilt without it, as SQLite drops a constraint);
    each forgery's books written into it alone, every chain hash computed consistently."""

    def __init__(self, path: Path, loss_rows: list[dict[str, Any]]) -> None:
        self.loss_rows = loss_rows
        self.connection = sqlite3.connect(path, isolation_level=None)
        self.connection.execute("PRAGMA ignore_check_constraints = ON")
        self.connection.executescript(
            """
            BEGIN;
            DROP TRIGGER ledger_is_append_only_update;
            DROP TRIGGER ledger_is_append_only_delete;
            DROP INDEX ix_losses_one_active_per_account;
            CREATE TABLE ledger_forged (account VARCHAR(64) NOT NULL, seq BIGINT NOT NULL,
                command_id VARCHAR(128) NOT NULL, entry BLOB NOT NULL, hash BLOB NOT NULL,
                PRIMARY KEY (account, seq));
            INSERT INTO ledger_forged SELECT account, seq, command_id, entry, hash FROM ledger;
            DROP TABLE ledger;
            ALTER TABLE ledger_forged RENAME TO ledger;
            COMMIT;
            """
        )

    def insert(self, table: str, row: dict[str, Any]) -> None:
        names = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        values = [value.isoformat() if isinstance(value, datetime.date) else value for value in row.values()]
        self.connection.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", values)

    def write(
        self,
        account_id: str,
        entries: Sequence[Entry],
        account: Account | None,
        payouts: Sequence[Payout],
        honest_loss: str | None,
    ) -> None:
        """These books alone in the database: the entries chained, the account as its row (none if
        None), its losses (the honest closed ones and the account's own), the payouts."""
        self.connection.execute("BEGIN")
        try:
            for table in ("ledger", "accounts", "losses", "payouts", "checkpoints"):
                self.connection.execute(f"DELETE FROM {table}")
            head = genesis(account_id)
            for seq, entry in enumerate(entries, start=1):
                data = encode_entry(entry)
                head = chained(head, data)
                self.insert(
                    "ledger",
                    {
                        "account": account_id,
                        "seq": seq,
                        "command_id": entry.command.id,
                        "entry": data,
                        "hash": head,
                    },
                )
            if account is not None:
                self.insert("accounts", account_row(account) | {"chain_head": head})
            for row in self.loss_rows:
                if row["account"] == account_id and row["opened_by"] != honest_loss:
                    self.insert("losses", row)
            if account is not None and account.loss is not None:
                self.insert("losses", loss_row(account_id, account.loss))
            for payout in payouts:
                self.insert(
                    "payouts",
                    {
                        "account": account_id,
                        "payout_id": payout.id,
                        "amount_minor": payout.amount_minor,
                        "status": payout.status.value,
                    },
                )
        except sqlite3.IntegrityError:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")


def test_forgeries__the_audit_names_every_invariant_each_forgery_of_tampering_breaks(tmp_path: Path) -> None:
    path = tmp_path / "forged.db"
    store = written(str(path))
    try:
        honest = {
            account_id: (list(store.ledger(account_id)), store.account(account_id), store.payouts(account_id))
            for account_id in store.account_ids()
        }
        with store.engine.connect() as connection:
            loss_rows = [dict(row._mapping) for row in connection.execute(text("SELECT * FROM losses"))]
        forged = ForgedBooks(path, loss_rows)
        tried, unwritable, wrong = 0, [], []
        for account_id, (entries, account, payouts) in sorted(honest.items()):
            assert account is not None
            honest_loss = account.loss.opened_by if account.loss is not None else None
            forged.write(account_id, entries, account, payouts, honest_loss)
            assert audit(store.engine, record=False).findings == (), (
                f"{account_id}: written back honest, clean"
            )
            forgeries: list[tuple[str, Sequence[Entry], Account | None, Sequence[Payout], frozenset[str]]] = [
                (
                    f"ledger: {forgery.name}",
                    forgery.entries,
                    forgery.account if forgery.account is not None else account,
                    forgery.payouts if forgery.payouts is not None else payouts,
                    forgery.breaks,
                )
                for forgery in tampering.ledger_forgeries(entries, account, payouts)
            ]
            forgeries += [
                (
                    f"account: {forgery.name}",
                    entries,
                    forgery.account,
                    forgery.payouts if forgery.payouts is not None else payouts,
                    forgery.breaks,
                )
                for forgery in tampering.account_forgeries(account, payouts)
            ]
            for name, forged_entries, forged_account, forged_payouts, breaks in forgeries:
                tried += 1
                try:
                    forged.write(account_id, forged_entries, forged_account, forged_payouts, honest_loss)
                except sqlite3.IntegrityError:
                    unwritable.append(f"{account_id}: {name}")
                    continue
                report = audit(store.engine, record=False)
                named = checks(report) & set(INVARIANT_IDS)
                if report.clean or not breaks <= named or "chain" in checks(report):
                    wrong.append(
                        f"{account_id}: {name}: breaks {sorted(breaks)}, found {sorted(checks(report))}"
                    )
        forged.connection.close()
    finally:
        store.close()
    assert wrong == []
    assert unwritable and all(name.endswith(UNWRITABLE) for name in unwritable), unwritable
    assert sorted(unwritable) == [
        "acme: account: payout acme:b2 stored twice",
        "beta: account: payout beta:b2 stored twice",
    ]
    assert tried > 300
