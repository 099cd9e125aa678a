"""The store's crash points and the payout dispatcher: exactly one transfer whatever the crash.

Crashes are injected from outside, as the state machines do: `FaultyStore` wraps the store and
`FaultyGateway` the gateway (ppk.stateful_tests.faults); a restart is the store a new process
rebuilds from the ledgers alone (`MemoryStore.reopened`).
"""

from __future__ import annotations

import inspect

import pytest

from ppk.adapters.dispatcher import Dispatcher, DispatchError, confirm_id
from ppk.adapters.store import MemoryStore
from ppk.kernel.state import (
    ID_CHARS_MAX,
    Applied,
    ConfirmPayout,
    Fund,
    OpenAccount,
    Payout,
    PayoutStatus,
    RecordBalance,
    Repeated,
)
from ppk.stateful_tests.faults import Crash, CrashPoint, FaultyGateway, FaultyStore
from ppk.stateful_tests.machines import DedupGateway


def store_with_a_pending_payout() -> MemoryStore:
    store = MemoryStore()
    store.execute(OpenAccount(id="o", account="acme", my_share_bp=100, company_share_bp=900))
    store.execute(Fund(id="f", account="acme", amount_minor=100_000))
    store.execute(RecordBalance(id="b", account="acme", balance_minor=130_000))
    return store


def snapshot(store: MemoryStore) -> dict[str, object]:
    """Everything a store holds, by account: its value, its ledger and its payouts."""
    return {
        account_id: (store.account(account_id), list(store.ledger(account_id)), store.payouts(account_id))
        for account_id in store.account_ids()
    }


def test_store__crash_before_commit_persists_nothing() -> None:
    store = FaultyStore(store_with_a_pending_payout())
    before = snapshot(store.inner)
    store.arm(CrashPoint.BEFORE_COMMIT)
    with pytest.raises(Crash) as crash:
        store.execute(Fund(id="f2", account="acme", amount_minor=5))
    assert crash.value.point is CrashPoint.BEFORE_COMMIT
    reopened = store.inner.reopened()
    assert snapshot(reopened) == before
    assert reopened.entry("acme", "f2") is None
    assert isinstance(reopened.execute(Fund(id="f2", account="acme", amount_minor=5)), Applied)


def test_store__crash_after_commit_keeps_the_entry_and_a_retry_is_duplicate() -> None:
    store = FaultyStore(store_with_a_pending_payout())
    store.arm(CrashPoint.AFTER_COMMIT)
    with pytest.raises(Crash) as crash:
        store.execute(Fund(id="f2", account="acme", amount_minor=5))
    assert crash.value.point is CrashPoint.AFTER_COMMIT
    reopened = store.inner.reopened()
    recorded = reopened.entry("acme", "f2")
    assert isinstance(recorded, Applied)
    retried = reopened.execute(Fund(id="f2", account="acme", amount_minor=5))
    assert retried == Repeated(entry=recorded)
    account = reopened.account("acme")
    assert account is not None and account.funding_minor == 100_005
    assert account.entry_count == 4


def test_store__an_armed_crash_fires_once() -> None:
    store = FaultyStore(store_with_a_pending_payout())
    store.arm(CrashPoint.BEFORE_COMMIT)
    with pytest.raises(Crash):
        store.execute(Fund(id="f2", account="acme", amount_minor=5))
    assert isinstance(store.execute(Fund(id="f2", account="acme", amount_minor=5)), Applied)
    store.arm(CrashPoint.AFTER_COMMIT)
    store.arm(None)
    assert isinstance(store.execute(Fund(id="f3", account="acme", amount_minor=5)), Applied)


def test_store__reopened_rebuilds_every_account_and_payout_from_its_ledger() -> None:
    store = store_with_a_pending_payout()
    store.execute(OpenAccount(id="o", account="beta", my_share_bp=0, company_share_bp=0))
    store.execute(ConfirmPayout(id="c", account="acme", payout="acme:b"))
    before = snapshot(store)
    reopened = store.reopened()
    assert reopened is not store
    assert snapshot(reopened) == before
    assert reopened.account_ids() == ["acme", "beta"]
    assert reopened.payouts("acme") == [
        Payout(id="acme:b", amount_minor=30_000, status=PayoutStatus.CONFIRMED)
    ]


def test_store__production_signatures_take_no_crash() -> None:
    # Faults are injected by wrapping (FaultyStore, FaultyGateway), not through a parameter.
    assert list(inspect.signature(MemoryStore.execute).parameters) == ["self", "command"]
    assert list(inspect.signature(Dispatcher.dispatch).parameters) == ["self"]
    assert not hasattr(Dispatcher, "transfer_key")


def test_dispatcher__transfers_and_confirms_each_pending_payout() -> None:
    store, gateway = store_with_a_pending_payout(), DedupGateway()
    done = Dispatcher(store, gateway).dispatch()
    assert (done.transferred, done.confirmed) == (1, 1)
    assert gateway.moved == {"acme:b": 30_000}
    assert store.payouts("acme") == [Payout(id="acme:b", amount_minor=30_000, status=PayoutStatus.CONFIRMED)]
    assert list(store.pending_payouts()) == []
    account = store.account("acme")
    assert account is not None
    assert (account.payout_confirmed_count, account.payout_confirmed_minor) == (1, 30_000)


@pytest.mark.parametrize(
    ("point", "transferred_after_restart"),
    [
        pytest.param(CrashPoint.AFTER_TRANSFER, 1, id="after_transfer"),
        pytest.param(CrashPoint.BEFORE_COMMIT, 1, id="before_commit"),
        pytest.param(CrashPoint.AFTER_COMMIT, 0, id="after_commit"),
    ],
)
def test_dispatcher__a_crash_at_any_point_still_gives_exactly_one_transfer(
    point: CrashPoint, transferred_after_restart: int
) -> None:
    gateway = DedupGateway()
    store, faulty_gateway = FaultyStore(store_with_a_pending_payout()), FaultyGateway(gateway)
    if point is CrashPoint.AFTER_TRANSFER:
        faulty_gateway.arm(point)
    else:
        store.arm(point)  # the confirmation's transaction dies
    with pytest.raises(Crash) as crash:
        Dispatcher(store, faulty_gateway).dispatch()
    assert crash.value.point is point
    assert gateway.moved == {"acme:b": 30_000}
    restarted = store.inner.reopened()
    done = Dispatcher(restarted, gateway).dispatch()
    # A confirmation that committed before the crash leaves nothing pending to send again.
    assert (done.transferred, done.confirmed) == (transferred_after_restart, transferred_after_restart)
    assert gateway.moved == {"acme:b": 30_000}
    assert gateway.requests == 1 + transferred_after_restart
    assert list(restarted.pending_payouts()) == []
    confirmations = [entry for entry in restarted.ledger("acme") if isinstance(entry.command, ConfirmPayout)]
    assert len(confirmations) == 1


def test_dispatcher__confirm_id_is_deterministic_and_within_the_id_limit() -> None:
    longest_payout_id = "a" * 64 + ":" + "c" * 128
    assert confirm_id(longest_payout_id) == confirm_id(longest_payout_id)
    assert len(confirm_id(longest_payout_id)) <= ID_CHARS_MAX
    assert confirm_id("acme:b") != confirm_id("acme:c")


def test_dispatcher__a_confirmation_id_taken_by_another_command_stops_with_an_error() -> None:
    store, gateway = store_with_a_pending_payout(), DedupGateway()
    store.execute(Fund(id=confirm_id("acme:b"), account="acme", amount_minor=1))
    with pytest.raises(DispatchError, match="acme:b"):
        Dispatcher(store, gateway).dispatch()
    assert gateway.moved == {"acme:b": 30_000}
