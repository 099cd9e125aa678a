"""One regression test per erratum of spec.md#errata, on its own numeric counterexample."""

from __future__ import annotations

import ast
import datetime
import importlib.util
import inspect
import typing
from pathlib import Path

import attrs
import icontract
import pytest

from ppk.kernel import contracts
from ppk.kernel.contracts import FULL_INVARIANTS, broken_invariants_over, capital_is_conserved
from ppk.kernel.state import (
    Account,
    Applied,
    BalanceRecorded,
    Code,
    Entry,
    Lookup,
    Loss,
    LossWrittenOff,
    Payout,
    PayoutStatus,
    ProfitWithdrawn,
    Refused,
    Repeated,
    Settled,
)
from ppk.kernel.transitions import capital_closed_minor, decide, fold, payable_minor

SEED_RULES = Path(__file__).resolve().parent.parent / "stateful_tests" / "seed_rules.py"


def seed_rules():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("seed_rules", SEED_RULES)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def settled_event(decision) -> Settled:  # type: ignore[no-untyped-def]
    assert isinstance(decision, Applied), decision
    (event,) = decision.events
    assert isinstance(event, Settled)
    return event


def test_e1__shares_add_up_to_the_payment_not_to_capital_closed(book) -> None:
    # 1 % + 9 %, a ₹100 loss paid in full with ₹10: capital closed ₹100, shares ₹1 + ₹9 = ₹10.
    book.open_account("o1", 100, 900)
    book.fund("f1", 100_000)
    book.record_balance("b1", 90_000)
    event = settled_event(book.settle("s1", 1_000))
    assert event.capital_closed_minor == 10_000
    assert (event.my_share_minor, event.company_share_minor) == (100, 900)
    assert event.my_share_minor + event.company_share_minor == event.payment_minor == 1_000
    # The seed's rule takes the shares of capital closed: ₹1 + ₹9 of ₹100 — they do not add up to it.
    with pytest.raises(icontract.ViolationError, match="E1"):
        seed_rules().shares_of_capital_closed_minor(10_000, 100, 900)


def test_e2__a_retry_under_the_callers_id_pays_once(book) -> None:
    book.open_account("o1", 100, 900)
    book.fund("f1", 100_000)
    book.record_balance("b1", 90_000)
    first = book.settle("s1", 400)
    assert book.settle("s1", 400) == Repeated(entry=first)
    assert book.settle("s1", 400) == Repeated(entry=first)
    account = book.account()
    assert account.payments_minor == 400
    assert account.capital_closed_minor == 4_000
    assert sum(isinstance(entry.command, type(first.command)) for entry in book.ledger()) == 1


def test_e3__profit_is_a_pending_payout_with_a_deterministic_id(book) -> None:
    book.open_account("o1", 100, 900)
    book.fund("f1", 100_000)
    first = book.record_balance("r7", 130_000)
    assert isinstance(first, Applied)
    assert ProfitWithdrawn(payout_id="acme:r7", amount_minor=30_000) in first.events
    # The crash-and-retry of the same record: the same outcome, no second payout.
    assert book.record_balance("r7", 130_000) == Repeated(entry=first)
    account = book.account()
    assert book.payouts() == [Payout(id="acme:r7", amount_minor=30_000, status=PayoutStatus.PENDING)]
    assert account.profit_withdrawn_minor == 30_000
    assert account.payout_count == 1
    # The dispatcher confirms it under its own id, as often as it retries.
    book.confirm_payout("d1", "acme:r7")
    book.confirm_payout("d1", "acme:r7")
    book.confirm_payout("d2", "acme:r7")
    assert book.payouts() == [Payout(id="acme:r7", amount_minor=30_000, status=PayoutStatus.CONFIRMED)]
    account = book.account()
    assert (account.payout_count, account.payout_confirmed_count, account.payout_confirmed_minor) == (
        1,
        1,
        30_000,
    )


def test_e4__rounding_capital_closed_down_leaves_no_stuck_loss(book) -> None:
    # L = 16, t = 1875 bp, p = 2: payable(16) = 3; rounding down closes ⌊10.67⌋ = 10, leaving 6,
    # whose payable is ⌊1.125⌋ = 1. Round-half-up would close 11 and leave 5, payable ⌊0.9375⌋ = 0.
    assert payable_minor(16, 1_875) == 3
    assert capital_closed_minor(2, 16, 1_875) == 10
    assert payable_minor(6, 1_875) == 1
    assert payable_minor(5, 1_875) == 0
    with pytest.raises(icontract.ViolationError, match="E4: no stuck loss"):
        seed_rules().capital_closed_half_up_minor(2, 16, 1_875)
    book.open_account("o1", 375, 1_500)
    book.fund("f1", 100)
    book.record_balance("b1", 84)
    assert settled_event(book.settle("s1", 2)).capital_closed_minor == 10
    loss = book.account().loss
    assert loss is not None and loss.remaining_minor == 6
    assert settled_event(book.settle("s2", 1)).capital_closed_minor == 6
    assert book.account().loss is None


def test_e4__the_seeds_47_82_percent_case_settles_to_zero(book) -> None:
    # Shares 47.82 %, remaining ₹0.20: payable ⌊9.564⌋ = 9 minor units, never ₹0.09564.
    book.open_account("o1", 482, 4_300)
    book.fund("f1", 100)
    book.record_balance("b1", 80)
    assert payable_minor(20, 4_782) == 9
    # A partial ₹0.08 closes ⌊16.73⌋ = 16 and leaves 4, still payable: ⌊1.9128⌋ = 1.
    assert settled_event(book.settle("s1", 8)).capital_closed_minor == 16
    loss = book.account().loss
    assert loss is not None and loss.remaining_minor == 4
    assert refusal_code(book.settle("s2", 2)) == Code.PAYMENT_EXCEEDS_PAYABLE
    assert settled_event(book.settle("s3", 1)).capital_closed_minor == 4
    assert book.account().loss is None


def test_e4__the_seeds_47_82_percent_case_paid_in_full(book) -> None:
    # The seed's ₹0.09 left ₹0.01 that nobody could pay; here ₹0.09 is the payable and closes it all.
    book.open_account("o1", 482, 4_300)
    book.fund("f1", 100)
    book.record_balance("b1", 80)
    assert settled_event(book.settle("s1", 9)).capital_closed_minor == 20
    assert book.account().loss is None


def refusal_code(decision) -> Code:  # type: ignore[no-untyped-def]
    assert isinstance(decision, Refused), decision
    return decision.code


def test_e5__the_balance_event_keeps_the_observed_balance(book) -> None:
    book.open_account("o1", 100, 900)
    book.fund("f1", 100_000)
    decision = book.record_balance("b1", 120_000)
    assert isinstance(decision, Applied)
    assert decision.events[0] == BalanceRecorded(balance_minor=120_000, capital_minor=100_000, date=None)
    assert decision.events[1] == ProfitWithdrawn(payout_id="acme:b1", amount_minor=20_000)
    assert book.account().balance_minor == book.account().capital_minor == 100_000


INDUCTIVE = [
    contracts.capital_is_conserved,
    contracts.capital_is_not_negative,
    contracts.loss_implies_capital_above_balance,
    contracts.balance_agrees_with_loss,
    contracts.shares_add_up_to_payments,
    contracts.loss_is_accounted,
    contracts.amounts_are_not_negative,
    contracts.shares_are_percentages,
    contracts.totals_follow_events,
    contracts.loss_opens_only_when_none_is_active,
    contracts.settlements_split_their_payment,
    contracts.payouts_follow_withdrawals,
    contracts.command_id_is_recorded_once,
    contracts.refusal_changes_nothing_else,
    contracts.payouts_are_within_profit_withdrawn,
    contracts.payouts_follow_withdrawals,
    contracts.command_id_is_recorded_once,
    contracts.lookup_is_of,
]


def test_e6__inductive_contracts_take_no_ledger() -> None:
    # Each inductive predicate sees one account, or one step: before, entry, what was looked up, after.
    for predicate in INDUCTIVE:
        annotations = {parameter.annotation for parameter in inspect.signature(predicate).parameters.values()}
        assert annotations <= {"Account", "Account | None", "Entry", "Lookup", "Command"}, predicate.__name__
    # fold's contracts call only those, on the account before, the entry, its lookup and the account
    # after: one icontract condition runs the whole table (contracts.FOLD_ENSURES).
    inductive_names = {predicate.__name__ for predicate in INDUCTIVE}
    (postcondition,) = fold.__postconditions__
    assert set(postcondition.condition_args) == {"account", "entry", "lookup", "result"}
    assert set(postcondition.condition.__code__.co_names) == {"contracts", "guarantee_broken"}
    assert contracts.FOLD_ENSURES
    for name, holds in contracts.FOLD_ENSURES:
        assert list(inspect.signature(holds).parameters) == ["before", "entry", "lookup", "after"], name
        called = set(holds.__code__.co_names)
        assert called and called <= inductive_names, name
    # Their preconditions too: the account, the command or entry, and what its keys recalled.
    for function, arguments, table in [
        (fold, {"account", "entry", "lookup"}, contracts.FOLD_REQUIRES),
        (decide, {"account", "command", "lookup"}, contracts.DECIDE_REQUIRES),
    ]:
        (preconditions,) = function.__preconditions__
        assert preconditions
        for contract in preconditions:
            assert set(contract.condition_args) <= arguments, contract.description
        for name, holds in table:
            assert list(inspect.signature(holds).parameters) == ["account", "command", "lookup"], name


def test_e6__nothing_in_the_account_grows_with_history(book) -> None:
    # Only figures, counts, ids, a date and the active loss: no Map, list, tuple, dict or set.
    scalar = {int, str, datetime.date | None, Loss | None}
    account_fields = typing.get_type_hints(Account)
    assert set(account_fields) == {field.name for field in attrs.fields(Account)}
    assert {name: kind for name, kind in account_fields.items() if kind not in scalar} == {}
    assert {name: kind for name, kind in typing.get_type_hints(Loss).items() if kind not in {int, str}} == {}
    # What a command needs of the history is one entry and one payout, looked up by key.
    assert typing.get_type_hints(Lookup) == {"entry": Entry | None, "payout": Payout | None}
    # A long history leaves only scalars in the value, and the value no bigger than a short one's.
    book.open_account("o1")
    book.fund("f1", 100)
    book.record_balance("b1", 150)
    short = book.account()
    for number in range(2, 300):
        book.fund(f"f{number}", 1)
        book.record_balance(f"b{number}", book.account().capital_minor + 1)
        book.confirm_payout(f"c{number}", f"acme:b{number}")
    long = book.account()
    assert long.entry_count == 3 + 3 * 298
    for value in attrs.asdict(long, recurse=False).values():
        assert isinstance(value, (int, str, datetime.date, Loss, type(None))), value
    assert len(repr(long)) <= len(repr(short)) + 10 * len(attrs.fields(Account))


def test_e6__the_kernel_calls_no_full_form() -> None:
    source = Path(fold.__code__.co_filename).read_text(encoding="utf-8")
    names = {node.attr for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Attribute)}
    assert not {name for name in names if name.endswith("_over")}


def test_e7__tampering_with_stored_capital_alone_is_caught(book) -> None:
    book.open_account("o1", 100, 900)
    book.fund("f1", 100_000)
    book.record_balance("b1", 90_000)
    book.settle("s1", 400)
    ledger, account = book.ledger(), book.account()
    tampered = attrs.evolve(account, capital_minor=account.capital_minor + 1)
    assert not FULL_INVARIANTS["I1"](ledger, tampered, [])
    assert not capital_is_conserved(tampered)
    assert broken_invariants_over(ledger, tampered, book.payouts()) == ["I1"]


def test_e8__payable_is_rounded_down_and_paying_it_closes_the_whole_loss(book) -> None:
    # 10 % of ₹100.09 is ₹10.009: the client is asked for ₹10.00, which closes all ₹100.09.
    book.open_account("o1", 100, 900)
    book.fund("f1", 100_000)
    book.record_balance("b1", 89_991)
    assert payable_minor(10_009, 1_000) == 1_000
    assert refusal_code(book.settle("s1", 1_001)) == Code.PAYMENT_EXCEEDS_PAYABLE
    event = settled_event(book.settle("s2", 1_000))
    assert event.capital_closed_minor == 10_009
    assert book.account().loss is None


@pytest.mark.parametrize(
    ("my_share_bp", "company_share_bp", "balance_minor", "loss_minor"),
    [
        pytest.param(0, 0, 90_000, 10_000, id="zero_total_share"),
        pytest.param(100, 900, 99_991, 9, id="payable_under_one_minor_unit"),
        pytest.param(1, 0, 90_001, 9_999, id="one_basis_point_of_a_loss_under_10000"),
    ],
)
def test_e9__a_loss_nobody_can_pay_is_written_off_at_once(
    book, my_share_bp, company_share_bp, balance_minor, loss_minor
) -> None:
    book.open_account("o1", my_share_bp, company_share_bp)
    book.fund("f1", 100_000)
    decision = book.record_balance("b1", balance_minor)
    assert isinstance(decision, Applied)
    assert decision.events[-1] == LossWrittenOff(loss="b1", capital_closed_minor=loss_minor)
    account = book.account()
    assert account.loss is None
    assert account.capital_minor == account.balance_minor == balance_minor
    assert account.payments_minor == 0
    # The account is not blocked: the next balance is recorded.
    assert isinstance(book.record_balance("b2", balance_minor), Applied)


def test_e10__a_statement_older_than_the_latest_is_stale(book) -> None:
    book.open_account("o1", 100, 900)
    book.fund("f1", 100_000)
    book.record_balance("b1", 100_000, datetime.date(2026, 1, 12))
    assert refusal_code(book.record_balance("b2", 50_000, datetime.date(2026, 1, 11))) == Code.STALE_BALANCE
    account = book.account()
    assert account.balance_minor == 100_000
    assert account.loss is None
    assert account.balance_date_latest == datetime.date(2026, 1, 12)
    # The same day again is fine.
    assert isinstance(book.record_balance("b3", 50_000, datetime.date(2026, 1, 12)), Applied)
