"""One suite for the `Store` protocol, run on `MemoryStore`, on `SqlStore` over SQLite and over PostgreSQL.

Every backend must give the same decisions and the same reads for the same commands (spec.md#storage):
the `backend` fixture runs each test on all three, and after each test checks that every stored
ledger replays to its stored account and payouts and breaks no invariant in its full form (for the
SQL stores, also that the raw rows agree: `seq` from 1, the canonical bytes, the loss snapshots).
A "reopen" is what a new process would find: `MemoryStore.reopened()`, or the SQL store closed and
opened again on the same database. `execute_many` is not part of the protocol (`MemoryStore` has
none), so its tests run on the SQL stores only.
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import attrs
import icontract
import pytest
from sqlalchemy import event, select

import ppk.adapters.sql
import ppk.adapters.store
from ppk.adapters import cli, jsonl, schema
from ppk.adapters.canonical import encode_entry
from ppk.adapters.sql import PAGE_ROWS, SqlStore, loss_row, open_store
from ppk.adapters.store import MemoryStore, PendingPayout, Store
from ppk.kernel.contracts import broken_invariants_over
from ppk.kernel.state import (
    ACCOUNT_CHARS_MAX,
    AMOUNT_MINOR_MAX,
    ID_CHARS_MAX,
    PAYOUT_CHARS_MAX,
    Account,
    Applied,
    Code,
    Command,
    ConfirmPayout,
    Decision,
    Entry,
    Fund,
    LossOpened,
    LossWrittenOff,
    OpenAccount,
    Payout,
    PayoutConfirmed,
    PayoutStatus,
    ProfitWithdrawn,
    RecordBalance,
    Refused,
    Rejected,
    Repeated,
    SetShares,
    Settle,
    Settled,
)
from ppk.kernel.transitions import replay_with_payouts

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


# --- Backends --------------------------------------------------------------------------------------


class Backend:
    """A store under test, and the store a new process would find on the same data."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        """The database's URL; None for the memory store."""
        self.store: Store = MemoryStore() if url is None else open_store(url)

    def reopen(self) -> Store:
        """Close the store and open what it persisted again, as a restarted process would."""
        if isinstance(self.store, MemoryStore):
            self.store = self.store.reopened()
        else:
            assert isinstance(self.store, SqlStore) and self.url is not None
            self.store.close()
            self.store = open_store(self.url)
        return self.store

    def close(self) -> None:
        if isinstance(self.store, SqlStore):
            self.store.close()


def database_for(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """A new empty database of the named backend: a SQLite file's path, a PostgreSQL URL, or None."""
    if name == "memory":
        return None
    if name == "sqlite":
        return str(tmp_path / "ppk.db")
    # Asked for only here, so that the memory and SQLite runs never start a cluster.
    url: str = request.getfixturevalue("postgres_url")
    return url


def opened_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    opened = Backend(database_for(request.param, request, tmp_path))
    try:
        yield opened
        assert_consistent(opened.store)
    finally:
        opened.close()


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Each backend in turn; after the test, everything it stored must be consistent."""
    yield from opened_backend(request, tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Each SQL backend in turn (for what only `SqlStore` has, `execute_many`)."""
    yield from opened_backend(request, tmp_path)


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.store


@pytest.fixture
def sql_store(sql_backend: Backend) -> SqlStore:
    assert isinstance(sql_backend.store, SqlStore)
    return sql_backend.store


# --- Helpers ---------------------------------------------------------------------------------------


def outcome(decision: Decision) -> str:
    """A decision in a word: `applied`, `refused:<code>` (recorded), `rejected:<code>` (not recorded),
    or `repeated:` and the outcome recorded under the id."""
    if isinstance(decision, Applied):
        return "applied"
    if isinstance(decision, Refused):
        return f"refused:{decision.code.value}"
    if isinstance(decision, Rejected):
        return f"rejected:{decision.code.value}"
    return f"repeated:{outcome(decision.entry)}"


def execute_all(store: Store, commands: Sequence[Command]) -> list[Decision]:
    """The commands executed in order: one group on a SQL store (fast), one by one in memory."""
    if isinstance(store, SqlStore):
        return store.execute_many(commands)
    return [store.execute(command) for command in commands]


def snapshot(
    store: Store,
) -> tuple[dict[str, tuple[Account | None, list[Entry], list[Payout]]], list[object]]:
    """Everything a store holds: by account, its value, ledger and payouts; and its pending payouts."""
    accounts = {
        account_id: (store.account(account_id), list(store.ledger(account_id)), store.payouts(account_id))
        for account_id in store.account_ids()
    }
    return accounts, list(store.pending_payouts())


def opened(
    account: str = "acme", id: str = "o", my_share_bp: int = 100, company_share_bp: int = 900
) -> OpenAccount:
    return OpenAccount(id=id, account=account, my_share_bp=my_share_bp, company_share_bp=company_share_bp)


def the_account(store: Store, account_id: str = "acme") -> Account:
    account = store.account(account_id)
    assert account is not None, account_id
    return account


def store_entry(store: Store, command_id: str, account_id: str = "acme") -> Entry:
    """The entry recorded under a used id."""
    entry = store.entry(account_id, command_id)
    assert entry is not None, command_id
    return entry


def assert_consistent(store: Store) -> None:
    """spec.md#replay: every ledger replays to its stored account and payouts and breaks no invariant;
    the store's other reads agree with its ledgers."""
    pending: list[PendingPayout] = []
    for account_id in store.account_ids():
        ledger = list(store.ledger(account_id))
        account, payouts = store.account(account_id), store.payouts(account_id)
        assert replay_with_payouts(ledger) == (account, {payout.id: payout for payout in payouts})
        assert broken_invariants_over(ledger, account, payouts) == []
        assert [store.entry(account_id, entry.command.id) for entry in ledger] == ledger
        assert [payout.id for payout in payouts] == sorted(payout.id for payout in payouts)
        pending += [
            PendingPayout(account=account_id, payout=payout)
            for payout in payouts
            if payout.status is PayoutStatus.PENDING
        ]
    assert list(store.pending_payouts()) == pending
    if isinstance(store, SqlStore):
        assert_rows_agree(store)


def assert_rows_agree(store: SqlStore) -> None:
    """The SQL store's raw rows: each ledger at seq 1, 2, … under its command ids in canonical bytes,
    and one loss row per loss the ledger opened, the active one as the account holds it."""
    ledger, losses = schema.ledger, schema.losses
    with store.engine.connect() as connection:
        for account_id in store.account_ids():
            entries = list(store.ledger(account_id))
            rows = connection.execute(
                select(ledger.c.seq, ledger.c.command_id, ledger.c.entry)
                .where(ledger.c.account == account_id)
                .order_by(ledger.c.seq)
            ).all()
            assert [row.seq for row in rows] == list(range(1, len(entries) + 1))
            assert [row.command_id for row in rows] == [entry.command.id for entry in entries]
            # Decoding and encoding again gives the stored bytes: the encoding is canonical.
            assert [bytes(row.entry) for row in rows] == [encode_entry(entry) for entry in entries]
            opened_by = [
                event.opened_by
                for entry in entries
                if isinstance(entry, Applied)
                for event in entry.events
                if isinstance(event, LossOpened)
            ]
            loss_rows = connection.execute(select(losses).where(losses.c.account == account_id)).all()
            assert sorted(row.opened_by for row in loss_rows) == sorted(opened_by)
            account = the_account(store, account_id)
            for row in loss_rows:
                if account.loss is not None and row.opened_by == account.loss.opened_by:
                    assert dict(row._mapping) == loss_row(account_id, account.loss)
                else:
                    assert not row.active
                    assert row.remaining_minor == 0
                    assert row.capital_closed_minor == row.original_minor


def with_a_pending_payout(store: Store, account: str = "acme") -> None:
    """The account opened, funded 1000.00, and a balance of 1300.00 recorded: payout `<account>:b`."""
    decisions = execute_all(
        store,
        [
            opened(account),
            Fund(id="f", account=account, amount_minor=100_000),
            RecordBalance(id="b", account=account, balance_minor=130_000),
        ],
    )
    assert [outcome(decision) for decision in decisions] == ["applied"] * 3


def break_the_kernel(
    monkeypatch: pytest.MonkeyPatch, store: Store, error: type[Exception], on_call: int
) -> None:
    """Make the kernel's `execute`, as the store's module imported it, raise on its `on_call`-th call."""
    module = ppk.adapters.sql if isinstance(store, SqlStore) else ppk.adapters.store
    real: Callable[..., object] = module.execute
    calls = itertools.count(1)

    def failing(*args: object) -> object:
        if next(calls) == on_call:
            raise error("a contract broke (injected)")
        return real(*args)

    monkeypatch.setattr(module, "execute", failing)


# --- execute ---------------------------------------------------------------------------------------


def test_execute__applied_writes_the_entry_the_account_and_its_payouts(store: Store) -> None:
    """An applied command persists its entry, the account it folds into and the payout it writes."""
    assert outcome(store.execute(opened())) == "applied"
    assert outcome(store.execute(Fund(id="f", account="acme", amount_minor=100_000))) == "applied"
    decision = store.execute(RecordBalance(id="b", account="acme", balance_minor=130_000))
    assert isinstance(decision, Applied)
    assert ProfitWithdrawn(payout_id="acme:b", amount_minor=30_000) in decision.events
    account = the_account(store)
    assert (account.capital_minor, account.balance_minor, account.funding_minor) == (
        100_000,
        100_000,
        100_000,
    )
    assert (account.profit_withdrawn_minor, account.payout_count, account.payout_confirmed_count) == (
        30_000,
        1,
        0,
    )
    assert account.entry_count == 3
    assert store.entry("acme", "b") == decision
    assert [entry.command.id for entry in store.ledger("acme")] == ["o", "f", "b"]
    assert list(store.ledger("acme"))[-1] == decision
    assert store.payouts("acme") == [Payout(id="acme:b", amount_minor=30_000, status=PayoutStatus.PENDING)]
    assert store.account_ids() == ["acme"]


def test_execute__a_retry_is_repeated_and_changes_nothing(store: Store) -> None:
    """The same command under a used id gets the recorded entry back, and nothing is written."""
    with_a_pending_payout(store)
    before = snapshot(store)
    for command in [
        opened(),
        Fund(id="f", account="acme", amount_minor=100_000),
        RecordBalance(id="b", account="acme", balance_minor=130_000),
    ]:
        assert store.execute(command) == Repeated(entry=store_entry(store, command.id))
    assert snapshot(store) == before


def test_execute__a_refusal_is_recorded_and_uses_up_its_id(store: Store) -> None:
    """A refusal by a state rule is recorded: its retry gets the same code, a changed command under
    its id is an idempotency_conflict, and nothing else changes."""
    with_a_pending_payout(store)
    before = the_account(store)
    refused = store.execute(Settle(id="s", account="acme", payment_minor=100))
    assert isinstance(refused, Refused)
    assert refused.code is Code.NO_ACTIVE_LOSS
    assert store.entry("acme", "s") == refused
    after = the_account(store)
    assert after == attrs.evolve(before, entry_count=before.entry_count + 1)
    recorded = snapshot(store)

    retried = store.execute(Settle(id="s", account="acme", payment_minor=100))
    assert retried == Repeated(entry=refused)
    assert isinstance(retried, Repeated) and isinstance(retried.entry, Refused)
    assert retried.entry.code is Code.NO_ACTIVE_LOSS
    for changed in [
        Settle(id="s", account="acme", payment_minor=200),
        Fund(id="s", account="acme", amount_minor=100),
    ]:
        assert outcome(store.execute(changed)) == "rejected:idempotency_conflict"
    assert snapshot(store) == recorded


def test_execute__a_rejection_is_not_recorded_and_leaves_the_id_free(store: Store) -> None:
    """A rejection before any state rule records nothing: its id can carry another command after."""
    with_a_pending_payout(store)
    before = snapshot(store)
    for command, code in [
        (Fund(id="f2", account="acme", amount_minor=0), "invalid_amount"),
        (SetShares(id="f2", account="acme", my_share_bp=6_000, company_share_bp=5_000), "invalid_shares"),
        (Fund(id="", account="acme", amount_minor=5), "malformed"),
        (Fund(id="f2", account="no such", amount_minor=5), "malformed"),
    ]:
        assert outcome(store.execute(command)) == f"rejected:{code}"
        assert store.entry("acme", "f2") is None
    assert snapshot(store) == before
    assert outcome(store.execute(Fund(id="f2", account="acme", amount_minor=5))) == "applied"
    assert the_account(store).funding_minor == 100_005


def test_execute__a_command_on_a_missing_account_is_unknown_account(store: Store) -> None:
    """unknown_account: nothing is recorded and no account comes to be."""
    for command in [
        Fund(id="f", account="ghost", amount_minor=5),
        RecordBalance(id="b", account="ghost", balance_minor=5),
        ConfirmPayout(id="c", account="ghost", payout="ghost:b"),
    ]:
        assert outcome(store.execute(command)) == "rejected:unknown_account"
    assert store.account("ghost") is None
    assert store.entry("ghost", "f") is None
    assert list(store.ledger("ghost")) == []
    assert store.account_ids() == []


def test_execute__opening_an_open_account_under_a_new_id_is_account_exists(store: Store) -> None:
    """account_exists is a rejection: the new id stays free and the account is as it was."""
    store.execute(opened())
    before = snapshot(store)
    assert (
        outcome(store.execute(opened(id="o2", my_share_bp=0, company_share_bp=0)))
        == "rejected:account_exists"
    )
    assert store.entry("acme", "o2") is None
    assert snapshot(store) == before


def test_execute__confirming_another_accounts_payout_is_unknown_payout(store: Store) -> None:
    """A payout is looked up under the confirming account only: another account's is unknown."""
    with_a_pending_payout(store, "acme")
    store.execute(opened("beta"))
    refused = store.execute(ConfirmPayout(id="c", account="beta", payout="acme:b"))
    assert outcome(refused) == "refused:unknown_payout"
    assert store.entry("beta", "c") == refused
    assert store.payouts("acme") == [Payout(id="acme:b", amount_minor=30_000, status=PayoutStatus.PENDING)]
    assert store.payouts("beta") == []
    assert (
        outcome(store.execute(ConfirmPayout(id="c2", account="beta", payout="beta:b")))
        == "refused:unknown_payout"
    )
    # The owner's confirmation still goes through.
    assert outcome(store.execute(ConfirmPayout(id="c", account="acme", payout="acme:b"))) == "applied"
    assert [payout.status for payout in store.payouts("acme")] == [PayoutStatus.CONFIRMED]


def test_execute__a_kernel_exception_persists_nothing_and_surfaces(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A contract violation is a bug: the command's transaction rolls back and the exception surfaces."""
    store = backend.store
    with_a_pending_payout(store)
    before = snapshot(store)
    break_the_kernel(monkeypatch, store, icontract.ViolationError, on_call=1)
    with pytest.raises(icontract.ViolationError):
        store.execute(Fund(id="f2", account="acme", amount_minor=5))
    assert snapshot(store) == before
    assert snapshot(backend.reopen()) == before


def test_execute__amounts_at_the_limit_are_kept_exactly(backend: Backend) -> None:
    """spec.md#limits: 10^17 minor units, the limit, is stored and read back to the unit (64-bit)."""
    store = backend.store
    execute_all(store, [opened(), Fund(id="f", account="acme", amount_minor=AMOUNT_MINOR_MAX)])
    assert outcome(store.execute(Fund(id="f2", account="acme", amount_minor=1))) == "refused:limit_exceeded"
    withdrawn = store.execute(RecordBalance(id="b", account="acme", balance_minor=AMOUNT_MINOR_MAX))
    assert outcome(withdrawn) == "applied"
    account = the_account(backend.reopen())
    assert (account.capital_minor, account.funding_minor, account.balance_minor) == (AMOUNT_MINOR_MAX,) * 3


def test_execute__the_longest_ids_fit(backend: Backend) -> None:
    """An account of 64 characters, command ids of 128 (4 bytes each in UTF-8), a payout id of 193."""
    store = backend.store
    account = "A" * ACCOUNT_CHARS_MAX
    record_id, confirm_id = "\U0001d538" * ID_CHARS_MAX, "é" * ID_CHARS_MAX
    payout_id = f"{account}:{record_id}"
    assert len(payout_id) == PAYOUT_CHARS_MAX
    decisions = execute_all(
        store,
        [
            opened(account),
            Fund(id="f", account=account, amount_minor=100),
            RecordBalance(id=record_id, account=account, balance_minor=150),
            ConfirmPayout(id=confirm_id, account=account, payout=payout_id),
        ],
    )
    assert [outcome(decision) for decision in decisions] == ["applied"] * 4
    reopened = backend.reopen()
    assert reopened.payouts(account) == [Payout(id=payout_id, amount_minor=50, status=PayoutStatus.CONFIRMED)]
    assert reopened.entry(account, record_id) == decisions[2]
    assert reopened.account_ids() == [account]


def test_execute__ids_are_compared_exactly(store: Store) -> None:
    """Ids that differ only in case, a trailing space or Unicode normalisation are different ids."""
    ids = ["x", "X", "x ", "é", "e\u0301"]
    commands: list[Command] = [opened()]
    commands += [Fund(id=command_id, account="acme", amount_minor=n + 1) for n, command_id in enumerate(ids)]
    assert [outcome(decision) for decision in execute_all(store, commands)] == ["applied"] * 6
    recorded = [store.entry("acme", command_id) for command_id in ids]
    assert [entry.command if entry is not None else None for entry in recorded] == commands[1:]
    assert store.entry("acme", "x  ") is None
    assert store.entry("acme", "É") is None


# --- The worked example (docs/spec.md §11) --------------------------------------------------------


def test_execute__the_worked_example_of_the_spec(store: Store) -> None:
    """spec.md#worked-examples, figure by figure, on each store."""
    execute_all(
        store,
        [
            opened(id="c1"),
            Fund(id="c2", account="acme", amount_minor=100_000),
            RecordBalance(id="c3", account="acme", balance_minor=90_000, date=datetime.date(2026, 1, 5)),
        ],
    )
    acme = the_account(store)
    assert acme.loss is not None
    assert (acme.capital_minor, acme.balance_minor, acme.loss.remaining_minor) == (100_000, 90_000, 10_000)

    paid = store.execute(Settle(id="c4", account="acme", payment_minor=400))
    assert isinstance(paid, Applied)
    assert paid.events == (
        Settled(
            loss="c3",
            payment_minor=400,
            capital_closed_minor=4_000,
            my_share_minor=40,
            company_share_minor=360,
        ),
    )
    acme = the_account(store)
    assert acme.loss is not None
    assert (acme.loss.remaining_minor, acme.capital_minor) == (6_000, 96_000)

    assert store.execute(Settle(id="c4", account="acme", payment_minor=400)) == Repeated(entry=paid)
    assert the_account(store) == acme

    refused = store.execute(Settle(id="c5", account="acme", payment_minor=700))
    assert isinstance(refused, Refused)
    assert (refused.code, refused.message) == (
        Code.PAYMENT_EXCEEDS_PAYABLE,
        "payment 7.00 is more than the payable 6.00 of the active loss (remaining 60.00)",
    )
    assert store.execute(Settle(id="c5", account="acme", payment_minor=700)) == Repeated(entry=refused)

    assert outcome(store.execute(Settle(id="c6", account="acme", payment_minor=600))) == "applied"
    acme = the_account(store)
    assert acme.loss is None
    assert (acme.capital_minor, acme.capital_closed_minor) == (90_000, 10_000)
    assert (acme.my_share_minor, acme.company_share_minor, acme.payments_minor) == (100, 900, 1_000)

    withdrawn = store.execute(RecordBalance(id="c7", account="acme", balance_minor=120_000))
    assert isinstance(withdrawn, Applied)
    assert withdrawn.events[1] == ProfitWithdrawn(payout_id="acme:c7", amount_minor=30_000)
    assert the_account(store).balance_minor == 90_000
    assert [payout.status for payout in store.payouts("acme")] == [PayoutStatus.PENDING]
    confirmed = store.execute(ConfirmPayout(id="c8", account="acme", payout="acme:c7"))
    assert isinstance(confirmed, Applied)
    assert confirmed.events == (PayoutConfirmed(payout_id="acme:c7", amount_minor=30_000),)
    assert store.payouts("acme") == [Payout(id="acme:c7", amount_minor=30_000, status=PayoutStatus.CONFIRMED)]

    ledger, acme, payouts = list(store.ledger("acme")), the_account(store), store.payouts("acme")
    assert replay_with_payouts(ledger) == (acme, {payout.id: payout for payout in payouts})
    assert (broken_invariants_over(ledger, acme, payouts), acme.entry_count, len(ledger)) == ([], 8, 8)
    assert store.entry("acme", "c4") == paid
    assert store.entry("acme", "c5") == refused


def test_execute__the_worked_example_file_gives_the_shipped_results_and_view(store: Store) -> None:
    """examples/worked.jsonl through the store gives examples/worked.out.jsonl, byte for byte."""
    with (EXAMPLES / "worked.jsonl").open("rb") as stream:
        lines = [jsonl.encode_line(result) for result in cli.replay_lines(stream, store)]
    lines += [jsonl.encode_line(view) for view in cli.account_views(store)]
    assert b"".join(lines) == (EXAMPLES / "worked.out.jsonl").read_bytes()


# --- Reads -----------------------------------------------------------------------------------------


def test_entry__of_used_and_free_ids(store: Store) -> None:
    """entry(account, id): the entry recorded under the id on that account, else None."""
    with_a_pending_payout(store)
    refused = store.execute(Settle(id="s", account="acme", payment_minor=1))
    store.execute(opened("beta"))
    assert isinstance(store.entry("acme", "f"), Applied)
    assert store.entry("acme", "s") == refused
    assert store.entry("acme", "free") is None
    # Ids are per account: beta's "f" is free although acme's is used.
    assert store.entry("beta", "f") is None
    assert store.entry("ghost", "o") is None


def test_ledger__in_the_order_the_commands_were_recorded(store: Store) -> None:
    """The ledger is in recording order, not id order; a refusal holds its place; no account, no ledger."""
    decisions = execute_all(
        store,
        [
            opened(id="z"),
            Fund(id="a", account="acme", amount_minor=5),
            Settle(id="m", account="acme", payment_minor=5),
            Fund(id="a", account="acme", amount_minor=5),
            Fund(id="b", account="acme", amount_minor=0),
            Fund(id="B", account="acme", amount_minor=7),
        ],
    )
    assert [outcome(decision) for decision in decisions] == [
        "applied",
        "applied",
        "refused:no_active_loss",
        "repeated:applied",
        "rejected:invalid_amount",
        "applied",
    ]
    assert list(store.ledger("acme")) == [decisions[0], decisions[1], decisions[2], decisions[5]]
    assert list(store.ledger("ghost")) == []


def test_ledger__longer_than_a_page_reads_whole_and_in_order(store: Store) -> None:
    """A ledger of exactly PAGE_ROWS entries, then of one more, reads whole and in order.

    Every other page boundary is tests/test_sql.py's, with small pages.
    """
    commands: list[Command] = [opened()]
    commands += [Fund(id=f"f{n}", account="acme", amount_minor=1) for n in range(PAGE_ROWS - 1)]
    decisions = execute_all(store, commands)
    assert list(store.ledger("acme")) == decisions
    last = store.execute(Fund(id="last", account="acme", amount_minor=1))
    ledger = list(store.ledger("acme"))
    assert len(ledger) == PAGE_ROWS + 1
    assert ledger == [*decisions, last]
    assert the_account(store).funding_minor == PAGE_ROWS


def test_payouts__sorted_by_id_code_point_by_code_point(store: Store) -> None:
    """payouts(account): pending and confirmed, sorted by payout id code point by code point."""
    ids = ["b", "B", "a10", "a9", "é", "\uff21", "\U0001d538", "a"]
    commands: list[Command] = [opened(), Fund(id="f", account="acme", amount_minor=100_000)]
    commands += [RecordBalance(id=command_id, account="acme", balance_minor=100_001) for command_id in ids]
    commands.append(ConfirmPayout(id="c", account="acme", payout="acme:a9"))
    assert {outcome(decision) for decision in execute_all(store, commands)} == {"applied"}
    payouts = store.payouts("acme")
    assert [payout.id for payout in payouts] == sorted(f"acme:{command_id}" for command_id in ids)
    # Code point order puts the astral U+1D538 after the fullwidth U+FF21 (UTF-16 order would not).
    assert [payout.id for payout in payouts][-2:] == ["acme:\uff21", "acme:\U0001d538"]
    assert {payout.amount_minor for payout in payouts} == {1}
    assert [payout.id for payout in payouts if payout.status is PayoutStatus.CONFIRMED] == ["acme:a9"]
    assert store.payouts("ghost") == []


def test_account_ids__sorted_code_point_by_code_point(store: Store) -> None:
    """account_ids(): `B` before `a`, `_` between `Z` and `a`, whatever the database's locale."""
    names = ["a", "B", "_x", "0", "a.b", "Z", "a-b", "A"]
    execute_all(store, [opened(name) for name in names])
    assert store.account_ids() == ["0", "A", "B", "Z", "_x", "a", "a-b", "a.b"]
    assert store.account_ids() == sorted(names)


def test_pending_payouts__across_accounts_by_account_then_payout_id(store: Store) -> None:
    """pending_payouts(): by account, then payout id; a confirmed one leaves the list."""
    # "a.b:…" sorts before "a:…" as a payout id, but account "a" comes before "a.b".
    commands: list[Command] = []
    for account in ["a.b", "a", "B"]:
        commands += [opened(account), Fund(id="f", account=account, amount_minor=1_000)]
        commands += [RecordBalance(id=i, account=account, balance_minor=1_001) for i in ["y", "x"]]
    execute_all(store, commands)
    expected = [
        (account, f"{account}:{command_id}") for account in ["B", "a", "a.b"] for command_id in ["x", "y"]
    ]
    assert [(pending.account, pending.payout.id) for pending in store.pending_payouts()] == expected
    assert {pending.payout.status for pending in store.pending_payouts()} == {PayoutStatus.PENDING}
    execute_all(
        store,
        [
            ConfirmPayout(id="c1", account="a", payout="a:x"),
            ConfirmPayout(id="c2", account="B", payout="B:y"),
        ],
    )
    assert [(pending.account, pending.payout.id) for pending in store.pending_payouts()] == [
        ("B", "B:x"),
        ("a", "a:y"),
        ("a.b", "a.b:x"),
        ("a.b", "a.b:y"),
    ]


def test_pending_payouts__longer_than_a_page_reads_whole_and_in_order(store: Store) -> None:
    """More pending payouts than PAGE_ROWS, a page boundary inside an account: each once, in order."""
    per_account = PAGE_ROWS // 2 + 1
    commands: list[Command] = []
    for account in ["a", "a.b"]:
        commands += [opened(account), Fund(id="f", account=account, amount_minor=1_000)]
        commands += [
            RecordBalance(id=f"b{n:04d}", account=account, balance_minor=1_001) for n in range(per_account)
        ]
    execute_all(store, commands)
    pending = [(pending.account, pending.payout.id) for pending in store.pending_payouts()]
    assert len(pending) == 2 * per_account > PAGE_ROWS
    assert pending == [
        (account, f"{account}:b{n:04d}") for account in ["a", "a.b"] for n in range(per_account)
    ]


# --- What survives a restart ----------------------------------------------------------------------


def test_reopen__everything_survives_and_retries_get_their_first_answer(backend: Backend) -> None:
    """What a new process finds: every account, ledger, payout and loss; a retried id, its outcome."""
    store = backend.store
    with_a_pending_payout(store, "acme")
    paid_commands: list[Command] = [
        opened("beta", my_share_bp=100, company_share_bp=900),
        Fund(id="f", account="beta", amount_minor=100_000),
        RecordBalance(id="b", account="beta", balance_minor=90_000, date=datetime.date(2026, 1, 5)),
        Settle(id="s1", account="beta", payment_minor=400),
        Settle(id="s2", account="beta", payment_minor=700),
        ConfirmPayout(id="c", account="acme", payout="acme:b"),
        RecordBalance(id="b2", account="acme", balance_minor=100_500),
    ]
    decisions = execute_all(store, paid_commands)
    assert [outcome(decision) for decision in decisions] == [
        "applied",
        "applied",
        "applied",
        "applied",
        "refused:payment_exceeds_payable",
        "applied",
        "applied",
    ]
    before = snapshot(store)
    reopened = backend.reopen()
    assert snapshot(reopened) == before
    assert reopened.account_ids() == ["acme", "beta"]
    for command, decision in zip(paid_commands, decisions, strict=True):
        assert reopened.execute(command) == Repeated(entry=decision)
    assert snapshot(reopened) == before
    # The loss survived with its frozen shares: paying its payable closes it.
    assert outcome(reopened.execute(Settle(id="s3", account="beta", payment_minor=600))) == "applied"
    assert the_account(reopened, "beta").loss is None


# --- execute_many (SQL stores) ---------------------------------------------------------------------


def test_execute_many__each_command_is_decided_against_what_the_earlier_ones_wrote(
    sql_store: SqlStore,
) -> None:
    """One group: open, fund, a withdrawal and its confirmation, each seeing the ones before it."""
    decisions = sql_store.execute_many(
        [
            opened(),
            Fund(id="f", account="acme", amount_minor=100_000),
            RecordBalance(id="b", account="acme", balance_minor=130_000),
            ConfirmPayout(id="c", account="acme", payout="acme:b"),
            RecordBalance(id="b2", account="acme", balance_minor=90_000),
            Settle(id="s", account="acme", payment_minor=1_000),
        ]
    )
    assert [outcome(decision) for decision in decisions] == ["applied"] * 6
    account = the_account(sql_store)
    assert (account.funding_minor, account.payout_confirmed_minor, account.loss) == (100_000, 30_000, None)
    assert sql_store.payouts("acme") == [
        Payout(id="acme:b", amount_minor=30_000, status=PayoutStatus.CONFIRMED)
    ]
    assert list(sql_store.ledger("acme")) == decisions


def test_execute_many__a_rejected_command_writes_nothing_and_the_rest_go_on(sql_store: SqlStore) -> None:
    """A rejection in the middle of a group writes nothing; a refusal is recorded; the rest apply."""
    decisions = sql_store.execute_many(
        [
            opened(),
            Fund(id="f1", account="acme", amount_minor=0),
            Fund(id="f2", account="ghost", amount_minor=5),
            Settle(id="s", account="acme", payment_minor=5),
            Fund(id="f1", account="acme", amount_minor=5),
            opened(id="o2"),
            opened("beta"),
        ]
    )
    assert [outcome(decision) for decision in decisions] == [
        "applied",
        "rejected:invalid_amount",
        "rejected:unknown_account",
        "refused:no_active_loss",
        "applied",
        "rejected:account_exists",
        "applied",
    ]
    assert [entry.command.id for entry in sql_store.ledger("acme")] == ["o", "s", "f1"]
    assert the_account(sql_store).funding_minor == 5
    assert sql_store.account_ids() == ["acme", "beta"]
    assert sql_store.entry("acme", "o2") is None


def test_execute_many__a_duplicate_within_one_group_is_repeated(sql_store: SqlStore) -> None:
    """An id used earlier in the same group is a duplicate (or a conflict) already."""
    decisions = sql_store.execute_many(
        [
            opened(),
            Fund(id="f", account="acme", amount_minor=5),
            Fund(id="f", account="acme", amount_minor=5),
            Fund(id="f", account="acme", amount_minor=6),
            opened(),
            Settle(id="s", account="acme", payment_minor=5),
            Settle(id="s", account="acme", payment_minor=5),
        ]
    )
    assert [outcome(decision) for decision in decisions] == [
        "applied",
        "applied",
        "repeated:applied",
        "rejected:idempotency_conflict",
        "repeated:applied",
        "refused:no_active_loss",
        "repeated:refused:no_active_loss",
    ]
    funded, refused = store_entry(sql_store, "f"), store_entry(sql_store, "s")
    assert (decisions[1], decisions[2]) == (funded, Repeated(entry=funded))
    assert (decisions[5], decisions[6]) == (refused, Repeated(entry=refused))
    account = the_account(sql_store)
    assert (account.funding_minor, account.entry_count) == (5, 3)


def test_execute_many__a_command_repeated_in_its_group_is_answered_from_the_group(
    sql_store: SqlStore,
) -> None:
    """On an account the group did not open: an id recorded earlier in the group is repeated (or a
    conflict) from what the group recorded, one recorded before the group from the database."""
    with_a_pending_payout(sql_store)
    decisions = sql_store.execute_many(
        [
            Fund(id="f2", account="acme", amount_minor=5),
            Fund(id="f2", account="acme", amount_minor=5),
            Fund(id="f2", account="acme", amount_minor=6),
            Fund(id="f", account="acme", amount_minor=100_000),
            Settle(id="s", account="acme", payment_minor=5),
            Settle(id="s", account="acme", payment_minor=5),
        ]
    )
    assert [outcome(decision) for decision in decisions] == [
        "applied",
        "repeated:applied",
        "rejected:idempotency_conflict",
        "repeated:applied",
        "refused:no_active_loss",
        "repeated:refused:no_active_loss",
    ]
    assert decisions[1] == Repeated(entry=store_entry(sql_store, "f2"))
    assert [entry.command.id for entry in sql_store.ledger("acme")] == ["o", "f", "b", "f2", "s"]
    assert the_account(sql_store).funding_minor == 100_005


def test_execute_many__a_payout_withdrawn_in_the_group_is_confirmed_in_it(sql_store: SqlStore) -> None:
    """A confirmation sees the payout withdrawn earlier in its group (stored confirmed at once) and
    the one pending from before it (confirmed); confirming either again in the group changes nothing."""
    with_a_pending_payout(sql_store)
    decisions = sql_store.execute_many(
        [
            RecordBalance(id="b2", account="acme", balance_minor=140_000),
            ConfirmPayout(id="c1", account="acme", payout="acme:b2"),
            ConfirmPayout(id="c2", account="acme", payout="acme:b2"),
            ConfirmPayout(id="c3", account="acme", payout="acme:b"),
            ConfirmPayout(id="c4", account="acme", payout="acme:b"),
            ConfirmPayout(id="c5", account="acme", payout="acme:b3"),
        ]
    )
    assert [outcome(decision) for decision in decisions] == ["applied"] * 5 + ["refused:unknown_payout"]
    confirmed = PayoutStatus.CONFIRMED
    assert sql_store.payouts("acme") == [
        Payout(id="acme:b", amount_minor=30_000, status=confirmed),
        Payout(id="acme:b2", amount_minor=40_000, status=confirmed),
    ]
    account = the_account(sql_store)
    assert (account.payout_confirmed_count, account.payout_confirmed_minor) == (2, 70_000)
    assert list(sql_store.pending_payouts()) == []


class Died(Exception):  # noqa: N818 (a death is an event, as faults.Crash)
    """The connection dying under a group, after one of its writes."""


@pytest.mark.parametrize(
    "write",
    [
        "INSERT INTO ledger",
        "UPDATE accounts",
        "UPDATE losses",
        "INSERT INTO losses",
        "INSERT INTO payouts",
        "UPDATE payouts",
    ],
)
def test_execute_many__a_group_that_dies_after_any_write_leaves_nothing(
    sql_backend: Backend, write: str
) -> None:
    """A group writes at its end, the ledger first; dying after any of its writes keeps none of them
    (the ids stay free), and the group sent again applies. The group closes a loss from before it and
    opens another (the one active loss per account holds at the end), withdraws a profit and
    confirms the payout pending from before it."""
    store = sql_backend.store
    assert isinstance(store, SqlStore)
    with_a_pending_payout(store)
    assert outcome(store.execute(RecordBalance(id="b1", account="acme", balance_minor=90_000))) == "applied"
    before = snapshot(store)
    group: list[Command] = [
        Settle(id="s", account="acme", payment_minor=1_000),
        RecordBalance(id="b2", account="acme", balance_minor=120_000),
        ConfirmPayout(id="c", account="acme", payout="acme:b"),
        RecordBalance(id="b3", account="acme", balance_minor=80_000),
        opened("beta"),
        Fund(id="f", account="beta", amount_minor=5),
    ]

    def die(_connection: object, _cursor: object, statement: str, *_rest: object) -> None:
        if statement.upper().startswith(write.upper()):
            raise Died(write)

    event.listen(store.engine, "after_cursor_execute", die)
    try:
        with pytest.raises(Died):
            store.execute_many(group)
    finally:
        event.remove(store.engine, "after_cursor_execute", die)
    assert snapshot(store) == before
    reopened = sql_backend.reopen()
    assert snapshot(reopened) == before
    assert isinstance(reopened, SqlStore)
    assert [outcome(decision) for decision in reopened.execute_many(group)] == ["applied"] * 6
    account = the_account(reopened)
    assert account.loss is not None and account.loss.opened_by == "b3"
    assert [payout.status for payout in reopened.payouts("acme")] == [
        PayoutStatus.CONFIRMED,
        PayoutStatus.PENDING,
    ]


def test_execute_many__reads_and_writes_in_statements_bounded_whatever_the_group_size(
    sql_store: SqlStore,
) -> None:
    """spec.md#database: a group reads its accounts, then the entries and payouts its commands name,
    by key, and writes each table once: as many statements for 120 commands as for 12."""
    accounts = [f"a{n}" for n in range(4)]
    sql_store.execute_many([opened(account) for account in accounts])
    counted: list[str] = []

    def count(_connection: object, _cursor: object, statement: str, *_rest: object) -> None:
        counted.append(statement.split(None, 1)[0].upper())

    def statements(prefix: str, size: int) -> list[str]:
        group: list[Command] = []
        for n in range(size):
            account = accounts[n % len(accounts)]
            if n % 4 == 3:  # a repeat of the command three before, on the same account
                group.append(
                    group[-3]
                    if n % 8 == 3
                    else ConfirmPayout(id=f"{prefix}c{n}", account=account, payout="x")
                )
            else:
                group.append(Fund(id=f"{prefix}{n}", account=account, amount_minor=1))
        counted.clear()
        event.listen(sql_store.engine, "before_cursor_execute", count)
        try:
            sql_store.execute_many(group)
        finally:
            event.remove(sql_store.engine, "before_cursor_execute", count)
        return sorted(counted)

    small, large = statements("s", 12), statements("l", 120)
    assert small == large
    assert len(large) <= 7, large


def test_execute_many__looks_up_more_keys_than_one_select_holds(sql_store: SqlStore) -> None:
    """A group's keys beyond one SELECT's `KEYS_PER_SELECT_MAX` are looked up too: every command of a
    large group sent again is repeated, and nothing is recorded twice."""
    size = 2 * ppk.adapters.sql.KEYS_PER_SELECT_MAX + 3
    accounts = [f"a{n}" for n in range(3)]
    group: list[Command] = [opened(account) for account in accounts]
    group += [Fund(id=f"f{n}", account=accounts[n % 3], amount_minor=1) for n in range(size)]
    assert {outcome(decision) for decision in sql_store.execute_many(group)} == {"applied"}
    again = sql_store.execute_many(group)
    assert {outcome(decision) for decision in again} == {"repeated:applied"}
    assert sum(the_account(sql_store, account).entry_count for account in accounts) == size + 3


def test_execute_many__results_come_in_the_order_of_the_commands(sql_store: SqlStore) -> None:
    """One decision per command, in order, across accounts; an empty group decides nothing."""
    assert sql_store.execute_many([]) == []
    commands: list[Command] = []
    for n in range(5):
        commands += [opened(f"a{n}"), Fund(id="f", account=f"a{n}", amount_minor=n + 1)]
    commands.reverse()
    decisions = sql_store.execute_many(commands)
    # Reversed, each fund comes before its account's opening: unknown, then opened.
    assert [outcome(decision) for decision in decisions] == ["rejected:unknown_account", "applied"] * 5
    for command, decision in zip(commands, decisions, strict=True):
        if isinstance(decision, Applied):
            assert decision.command == command
    assert [the_account(sql_store, f"a{n}").funding_minor for n in range(5)] == [0] * 5


@pytest.mark.parametrize("error", [icontract.ViolationError, AssertionError])
def test_execute_many__a_kernel_exception_rolls_the_whole_group_back_and_surfaces(
    sql_backend: Backend, monkeypatch: pytest.MonkeyPatch, error: type[Exception]
) -> None:
    """A bug in the third command undoes the group's first two as well, and the exception surfaces."""
    store = sql_backend.store
    assert isinstance(store, SqlStore)
    with_a_pending_payout(store)
    before = snapshot(store)
    group: list[Command] = [
        opened("beta"),
        Fund(id="f1", account="acme", amount_minor=5),
        Fund(id="f2", account="acme", amount_minor=5),
        Fund(id="f3", account="acme", amount_minor=5),
    ]
    break_the_kernel(monkeypatch, store, error, on_call=3)
    with pytest.raises(error, match="injected"):
        store.execute_many(group)
    assert snapshot(store) == before
    assert store.account("beta") is None
    assert store.entry("acme", "f1") is None
    monkeypatch.undo()
    reopened = sql_backend.reopen()
    assert snapshot(reopened) == before
    # Nothing of the group was kept, so every id in it is still free.
    assert isinstance(reopened, SqlStore)
    assert [outcome(decision) for decision in reopened.execute_many(group)] == ["applied"] * 4


# --- Every ledger replays --------------------------------------------------------------------------


def test_store__every_ledger_replays_to_its_account_and_payouts(store: Store) -> None:
    """A history with every command type, a write-off and refusals replays to what is stored."""
    day = datetime.date
    rows: list[tuple[Command, str]] = [
        (opened("acme"), "applied"),
        (opened("zero", my_share_bp=0, company_share_bp=0), "applied"),
        (Fund(id="f", account="acme", amount_minor=100_000), "applied"),
        (Fund(id="f", account="zero", amount_minor=50_000), "applied"),
        (RecordBalance(id="b1", account="acme", balance_minor=80_000, date=day(2026, 1, 5)), "applied"),
        # With no share to pay, zero's loss is written off as it opens (spec.md#e9).
        (RecordBalance(id="b1", account="zero", balance_minor=40_000), "applied"),
        (Settle(id="s1", account="acme", payment_minor=1_000), "applied"),
        (SetShares(id="sh", account="acme", my_share_bp=200, company_share_bp=800), "applied"),
        (Fund(id="f2", account="acme", amount_minor=1), "applied"),
        (
            RecordBalance(id="b0", account="acme", balance_minor=1, date=day(2026, 1, 1)),
            "refused:loss_active",
        ),
        (Settle(id="s2", account="acme", payment_minor=1_000), "applied"),
        (
            RecordBalance(id="b5", account="acme", balance_minor=90_001, date=day(2026, 1, 1)),
            "refused:stale_balance",
        ),
        (RecordBalance(id="b2", account="acme", balance_minor=95_000, date=day(2026, 1, 6)), "applied"),
        (RecordBalance(id="b3", account="acme", balance_minor=99_000, date=day(2026, 1, 7)), "applied"),
        (Settle(id="s3", account="acme", payment_minor=1), "refused:no_active_loss"),
        (ConfirmPayout(id="c", account="acme", payout="acme:b3"), "applied"),
        (ConfirmPayout(id="c2", account="acme", payout="acme:nope"), "refused:unknown_payout"),
        (RecordBalance(id="b4", account="zero", balance_minor=60_000), "applied"),
    ]
    decisions = execute_all(store, [command for command, _ in rows])
    assert [outcome(decision) for decision in decisions] == [expected for _, expected in rows]
    written_off = store.entry("zero", "b1")
    assert isinstance(written_off, Applied)
    assert any(isinstance(event, LossWrittenOff) for event in written_off.events)
    assert the_account(store, "zero").loss is None
    assert_consistent(store)
