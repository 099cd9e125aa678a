"""The store's crash points and the payout dispatcher: exactly one transfer whatever the crash."""

from __future__ import annotations

import pytest

from ppk.adapters.dispatcher import Dispatcher, DispatchError, confirm_id
from ppk.adapters.store import Crash, CrashPoint, MemoryStore
from ppk.kernel.state import (
    ID_CHARS_MAX,
    Applied,
    ConfirmPayout,
    Fund,
    OpenAccount,
    PayoutStatus,
    RecordBalance,
    Repeated,
)
from ppk.stateful_tests.machines import DedupGateway


def store_with_a_pending_payout() -> MemoryStore:
    store = MemoryStore()
    store.execute(OpenAccount(id="o", account="acme", my_share_bp=100, company_share_bp=900))
    store.execute(Fund(id="f", account="acme", amount_minor=100_000))
    store.execute(RecordBalance(id="b", account="acme", balance_minor=130_000))
    return store


def test_store__crash_after_decide_persists_nothing() -> None:
    store = store_with_a_pending_payout()
    before = store.account("acme")
    with pytest.raises(Crash):
        store.execute(Fund(id="f2", account="acme", amount_minor=5), crash=CrashPoint.AFTER_DECIDE)
    store.restart()
    assert store.account("acme") == before
    assert isinstance(store.execute(Fund(id="f2", account="acme", amount_minor=5)), Applied)


def test_store__crash_after_persist_keeps_the_entry_and_a_retry_is_duplicate() -> None:
    store = store_with_a_pending_payout()
    with pytest.raises(Crash):
        store.execute(Fund(id="f2", account="acme", amount_minor=5), crash=CrashPoint.AFTER_PERSIST)
    store.restart()
    retried = store.execute(Fund(id="f2", account="acme", amount_minor=5))
    assert isinstance(retried, Repeated)
    account = store.account("acme")
    assert account is not None and account.funding_minor == 100_005


def test_store__restart_rebuilds_every_account_from_its_ledger() -> None:
    store = store_with_a_pending_payout()
    before = {account_id: store.account(account_id) for account_id in store.account_ids()}
    store.restart()
    assert {account_id: store.account(account_id) for account_id in store.account_ids()} == before


def test_dispatcher__transfers_and_confirms_each_pending_payout() -> None:
    store, gateway = store_with_a_pending_payout(), DedupGateway()
    done = Dispatcher(store, gateway).dispatch()
    assert (done.transferred, done.confirmed) == (1, 1)
    assert gateway.moved == {"acme:b": 30_000}
    account = store.account("acme")
    assert account is not None and account.payouts["acme:b"].status is PayoutStatus.CONFIRMED
    assert list(store.pending_payouts()) == []


@pytest.mark.parametrize(
    "point", [CrashPoint.AFTER_TRANSFER, CrashPoint.AFTER_DECIDE, CrashPoint.AFTER_PERSIST]
)
def test_dispatcher__a_crash_at_any_point_still_gives_exactly_one_transfer(point: CrashPoint) -> None:
    store, gateway = store_with_a_pending_payout(), DedupGateway()
    with pytest.raises(Crash):
        Dispatcher(store, gateway).dispatch(crash=point)
    store.restart()
    Dispatcher(store, gateway).dispatch()
    assert gateway.moved == {"acme:b": 30_000}
    assert list(store.pending_payouts()) == []
    confirmations = [entry for entry in store.ledger("acme") if isinstance(entry.command, ConfirmPayout)]
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
