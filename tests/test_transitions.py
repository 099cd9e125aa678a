"""Every rule and every rejection code of spec.md#commands, at the kernel, with commands built directly.

Each test drives a `book` (tests/conftest.py) through the `Store` protocol, as a backend does: after
every command it checks that a rejection or a repeat changed nothing and a refusal only recorded its
entry under its id, and after the test that every ledger replays to its stored account and payouts
and breaks no invariant in its full form.
"""

from __future__ import annotations

import datetime

import attrs
import pytest

from ppk.kernel.state import (
    AMOUNT_MINOR_MAX,
    ID_CHARS_MAX,
    PAYOUT_CHARS_MAX,
    Account,
    AccountOpened,
    Applied,
    BalanceRecorded,
    Code,
    Command,
    ConfirmPayout,
    Entry,
    Fund,
    Funded,
    InvalidAmount,
    Loss,
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
    SharesSet,
)
from ppk.kernel.transitions import execute, payable_minor, replay, replay_with_payouts

JAN_1 = datetime.date(2026, 1, 1)
JAN_5 = datetime.date(2026, 1, 5)
JAN_10 = datetime.date(2026, 1, 10)


def opened_with_loss(book, loss_minor=10_000, my_share_bp=100, company_share_bp=900) -> Account:
    """acme: funded ₹1000, then a balance `loss_minor` lower, recorded by `b1`."""
    book.open_account("o1", my_share_bp, company_share_bp)
    book.fund("f1", 100_000)
    book.record_balance("b1", 100_000 - loss_minor)
    return book.account()


def rejection(decision) -> Code:
    assert isinstance(decision, Rejected), decision
    return decision.code


def refusal(decision) -> Code:
    assert isinstance(decision, Refused), decision
    return decision.code


# --- open_account --------------------------------------------------------------------------------


def test_open_account__creates_the_account_with_its_shares(book) -> None:
    decision = book.open_account("o1", 100, 900)
    assert isinstance(decision, Applied)
    assert decision.events == (AccountOpened(my_share_bp=100, company_share_bp=900),)
    account = book.account()
    assert (account.id, account.my_share_bp, account.company_share_bp) == ("acme", 100, 900)
    assert (account.capital_minor, account.balance_minor, account.funding_minor) == (0, 0, 0)
    assert account.loss is None
    assert book.payouts() == []
    assert (account.payout_count, account.payout_confirmed_count, account.payout_confirmed_minor) == (0, 0, 0)
    assert account.entry_count == 1
    assert book.ledger() == [decision]
    assert book.store.entry("acme", "o1") == decision


def test_open_account__existing_account_is_account_exists(book) -> None:
    book.open_account("o1")
    before = book.account()
    assert rejection(book.open_account("o2", 100, 900)) == Code.ACCOUNT_EXISTS
    assert book.account() is before
    assert book.store.entry("acme", "o2") is None
    # A rejection is not recorded: the id is still free.
    assert book.run(Fund(id="o2", account="acme", amount_minor=1)) == ["applied"]


def test_open_account__retry_is_duplicate(book) -> None:
    first = book.open_account("o1", 100, 900)
    before = book.account()
    decision = book.open_account("o1", 100, 900)
    assert decision == Repeated(entry=first)
    assert book.account() is before


def test_open_account__same_id_different_shares_is_idempotency_conflict(book) -> None:
    book.open_account("o1", 100, 900)
    assert rejection(book.open_account("o1", 200, 900)) == Code.IDEMPOTENCY_CONFLICT
    assert book.account().my_share_bp == 100


def test_open_account__rejected_open_leaves_no_account_and_its_id_free(book) -> None:
    assert rejection(book.open_account("o1", 10_001, 0)) == Code.INVALID_SHARES
    assert book.store.account_ids() == []
    assert book.store.entry("acme", "o1") is None
    assert book.run(OpenAccount(id="o1", account="acme", my_share_bp=100, company_share_bp=900)) == [
        "applied"
    ]


def test_open_account__same_id_on_two_accounts_names_two_commands(book) -> None:
    assert book.run(
        OpenAccount(id="o1", account="acme", my_share_bp=100, company_share_bp=900),
        OpenAccount(id="o1", account="beta", my_share_bp=200, company_share_bp=300),
    ) == ["applied", "applied"]
    assert book.account("beta").my_share_bp == 200


# --- invalid_shares (open_account, set_shares) ----------------------------------------------------

INVALID_SHARES = [
    pytest.param(10_001, 0, id="my_share_over_100_percent"),
    pytest.param(0, 10_001, id="company_share_over_100_percent"),
    pytest.param(5_000, 5_001, id="sum_over_100_percent"),
    pytest.param(-1, 900, id="negative_my_share"),
    pytest.param(100, -1, id="negative_company_share"),
    pytest.param(InvalidAmount(text="1.234"), 900, id="my_share_not_an_amount"),
    pytest.param(100, InvalidAmount(text="9%"), id="company_share_not_an_amount"),
    pytest.param(InvalidAmount(text="9" * 40, over_limit=True), 0, id="share_over_limit"),
]


@pytest.mark.parametrize(("my_share_bp", "company_share_bp"), INVALID_SHARES)
def test_open_account__invalid_shares(book, my_share_bp, company_share_bp) -> None:
    assert rejection(book.open_account("o1", my_share_bp, company_share_bp)) == Code.INVALID_SHARES
    assert book.store.account_ids() == []


@pytest.mark.parametrize(("my_share_bp", "company_share_bp"), INVALID_SHARES)
def test_set_shares__invalid_shares(book, my_share_bp, company_share_bp) -> None:
    book.open_account("o1")
    before = book.account()
    assert rejection(book.set_shares("s1", my_share_bp, company_share_bp)) == Code.INVALID_SHARES
    assert book.account() is before


@pytest.mark.parametrize(
    ("my_share_bp", "company_share_bp"),
    [(0, 0), (10_000, 0), (0, 10_000), (5_000, 5_000), (4_782, 0)],
)
def test_open_account__shares_from_0_to_100_percent_are_valid(book, my_share_bp, company_share_bp) -> None:
    assert book.run(
        OpenAccount(id="o1", account="acme", my_share_bp=my_share_bp, company_share_bp=company_share_bp)
    ) == ["applied"]


# --- fund ----------------------------------------------------------------------------------------


def test_fund__adds_to_funding_capital_and_balance(book) -> None:
    book.open_account("o1")
    decision = book.fund("f1", 100_000)
    assert isinstance(decision, Applied)
    assert decision.events == (Funded(amount_minor=100_000),)
    account = book.account()
    assert (account.funding_minor, account.capital_minor, account.balance_minor) == (
        100_000,
        100_000,
        100_000,
    )


def test_fund__applied_while_a_loss_is_active(book) -> None:
    before = opened_with_loss(book, loss_minor=10_000)
    assert book.run(Fund(id="f2", account="acme", amount_minor=5_000)) == ["applied"]
    account = book.account()
    assert account.capital_minor == before.capital_minor + 5_000
    assert account.balance_minor == before.balance_minor + 5_000
    assert account.loss == before.loss
    assert account.loss is not None and account.loss.remaining_minor == 10_000


def test_fund__total_funding_may_reach_the_limit_exactly(book) -> None:
    book.open_account("o1")
    book.fund("f1", AMOUNT_MINOR_MAX - 5)
    assert book.run(Fund(id="f2", account="acme", amount_minor=5)) == ["applied"]
    assert book.account().funding_minor == AMOUNT_MINOR_MAX


def test_fund__limit_exceeded_past_the_limit(book) -> None:
    book.open_account("o1")
    book.fund("f1", AMOUNT_MINOR_MAX - 5)
    assert refusal(book.fund("f2", 6)) == Code.LIMIT_EXCEEDED
    assert book.account().funding_minor == AMOUNT_MINOR_MAX - 5


@pytest.mark.parametrize(
    "amount_minor",
    [
        pytest.param(0, id="zero"),
        pytest.param(-1, id="negative"),
        pytest.param(AMOUNT_MINOR_MAX + 1, id="over_limit"),
        pytest.param(InvalidAmount(text="1e3"), id="not_an_amount"),
        pytest.param(InvalidAmount(text="9" * 30, over_limit=True), id="text_over_limit"),
    ],
)
def test_fund__invalid_amount(book, amount_minor) -> None:
    book.open_account("o1")
    assert rejection(book.fund("f1", amount_minor)) == Code.INVALID_AMOUNT


def test_fund__amount_at_the_limit_is_valid(book) -> None:
    book.open_account("o1")
    assert book.run(Fund(id="f1", account="acme", amount_minor=AMOUNT_MINOR_MAX)) == ["applied"]


# --- record_balance ------------------------------------------------------------------------------


def test_record_balance__profit_is_withdrawn_as_a_pending_payout(book) -> None:
    book.open_account("o1")
    book.fund("f1", 100_000)
    decision = book.record_balance("b1", 120_000, JAN_5)
    assert isinstance(decision, Applied)
    assert decision.events == (
        BalanceRecorded(balance_minor=120_000, capital_minor=100_000, date=JAN_5),
        ProfitWithdrawn(payout_id="acme:b1", amount_minor=20_000),
    )
    account = book.account()
    assert account.balance_minor == account.capital_minor == 100_000
    assert account.profit_withdrawn_minor == 20_000
    assert account.loss is None
    assert book.payouts() == [Payout(id="acme:b1", amount_minor=20_000, status=PayoutStatus.PENDING)]
    assert (account.payout_count, account.payout_confirmed_count, account.payout_confirmed_minor) == (1, 0, 0)


def test_record_balance__loss_opens_with_the_shares_frozen(book) -> None:
    book.open_account("o1", 100, 900)
    book.fund("f1", 100_000)
    decision = book.record_balance("b1", 90_000)
    assert isinstance(decision, Applied)
    assert decision.events == (
        BalanceRecorded(balance_minor=90_000, capital_minor=100_000, date=None),
        LossOpened(
            opened_by="b1",
            capital_minor=100_000,
            balance_minor=90_000,
            original_minor=10_000,
            my_share_bp=100,
            company_share_bp=900,
        ),
    )
    account = book.account()
    assert account.balance_minor == 90_000
    assert account.capital_minor == 100_000
    assert account.loss == Loss(
        opened_by="b1",
        capital_minor=100_000,
        balance_minor=90_000,
        original_minor=10_000,
        remaining_minor=10_000,
        capital_closed_minor=0,
        my_share_bp=100,
        company_share_bp=900,
    )


def test_record_balance__loss_with_zero_total_share_is_written_off(book) -> None:
    book.open_account("o1", 0, 0)
    book.fund("f1", 100_000)
    decision = book.record_balance("b1", 90_000)
    assert isinstance(decision, Applied)
    assert decision.events[1:] == (
        LossOpened(
            opened_by="b1",
            capital_minor=100_000,
            balance_minor=90_000,
            original_minor=10_000,
            my_share_bp=0,
            company_share_bp=0,
        ),
        LossWrittenOff(loss="b1", capital_closed_minor=10_000),
    )
    account = book.account()
    assert account.loss is None
    assert account.capital_minor == account.balance_minor == 90_000
    assert account.capital_closed_minor == 10_000
    assert account.payments_minor == 0


def test_record_balance__loss_too_small_to_owe_a_minor_unit_is_written_off(book) -> None:
    # 10 %: a loss of 9 minor units owes ⌊0.9⌋ = 0.
    book.open_account("o1", 100, 900)
    book.fund("f1", 100_000)
    decision = book.record_balance("b1", 99_991)
    assert isinstance(decision, Applied)
    assert decision.events[-1] == LossWrittenOff(loss="b1", capital_closed_minor=9)
    assert book.account().loss is None
    assert book.account().capital_minor == 99_991


def test_record_balance__loss_owing_one_minor_unit_stays_open(book) -> None:
    account = opened_with_loss(book, loss_minor=10)
    assert account.loss is not None
    assert payable_minor(account.loss.remaining_minor, 1_000) == 1


def test_record_balance__equal_balance_sets_balance_only(book) -> None:
    book.open_account("o1")
    book.fund("f1", 100_000)
    before = book.account()
    decision = book.record_balance("b1", 100_000, JAN_5)
    assert isinstance(decision, Applied)
    assert decision.events == (BalanceRecorded(balance_minor=100_000, capital_minor=100_000, date=JAN_5),)
    after = book.account()
    assert attrs.evolve(after, entry_count=before.entry_count, balance_date_latest=None) == before
    assert after.entry_count == before.entry_count + 1
    assert after.balance_date_latest == JAN_5


def test_record_balance__zero_balance_is_valid(book) -> None:
    book.open_account("o1", 0, 0)
    book.fund("f1", 100_000)
    assert book.run(RecordBalance(id="b1", account="acme", balance_minor=0)) == ["applied"]
    assert book.account().balance_minor == book.account().capital_minor == 0


def test_record_balance__loss_active_is_refused(book) -> None:
    opened_with_loss(book)
    assert refusal(book.record_balance("b2", 100_000)) == Code.LOSS_ACTIVE


def test_record_balance__stale_date_is_refused(book) -> None:
    book.open_account("o1")
    book.record_balance("b1", 0, JAN_5)
    assert refusal(book.record_balance("b2", 0, JAN_1)) == Code.STALE_BALANCE
    assert book.account().balance_date_latest == JAN_5


def test_record_balance__equal_date_is_applied(book) -> None:
    book.open_account("o1")
    book.record_balance("b1", 0, JAN_5)
    assert book.run(RecordBalance(id="b2", account="acme", balance_minor=0, date=JAN_5)) == ["applied"]


def test_record_balance__undated_record_is_not_compared(book) -> None:
    book.open_account("o1")
    book.record_balance("b1", 0, JAN_5)
    assert book.run(RecordBalance(id="b2", account="acme", balance_minor=0)) == ["applied"]
    # An undated record does not clear the latest date either.
    assert book.account().balance_date_latest == JAN_5
    assert refusal(book.record_balance("b3", 0, JAN_1)) == Code.STALE_BALANCE


def test_record_balance__refused_record_does_not_move_the_latest_date(book) -> None:
    book.open_account("o1")
    book.fund("f1", 100_000)
    book.record_balance("b1", 90_000, JAN_1)
    assert refusal(book.record_balance("b2", 100_000, JAN_10)) == Code.LOSS_ACTIVE
    assert book.account().balance_date_latest == JAN_1
    book.settle("s1", 1_000)
    # JAN_5 is after the applied JAN_1; the refused JAN_10 never counted.
    assert book.run(RecordBalance(id="b3", account="acme", balance_minor=90_000, date=JAN_5)) == ["applied"]
    assert book.account().balance_date_latest == JAN_5


def test_record_balance__profit_withdrawn_may_reach_the_limit_exactly(book) -> None:
    book.open_account("o1")
    book.record_balance("b1", AMOUNT_MINOR_MAX - 1)
    assert book.run(RecordBalance(id="b2", account="acme", balance_minor=1)) == ["applied"]
    assert book.account().profit_withdrawn_minor == AMOUNT_MINOR_MAX


def test_record_balance__limit_exceeded_on_profit_withdrawn(book) -> None:
    book.open_account("o1")
    book.record_balance("b1", AMOUNT_MINOR_MAX)
    assert refusal(book.record_balance("b2", 1)) == Code.LIMIT_EXCEEDED
    account = book.account()
    assert account.profit_withdrawn_minor == AMOUNT_MINOR_MAX
    assert [payout.id for payout in book.payouts()] == ["acme:b1"]
    assert account.payout_count == 1
    # A balance that is no profit is not limited by it.
    assert book.run(RecordBalance(id="b3", account="acme", balance_minor=0)) == ["applied"]


@pytest.mark.parametrize(
    "balance_minor",
    [
        pytest.param(-1, id="negative"),
        pytest.param(AMOUNT_MINOR_MAX + 1, id="over_limit"),
        pytest.param(InvalidAmount(text="-0"), id="not_an_amount"),
    ],
)
def test_record_balance__invalid_amount(book, balance_minor) -> None:
    book.open_account("o1")
    assert rejection(book.record_balance("b1", balance_minor)) == Code.INVALID_AMOUNT


# --- settle --------------------------------------------------------------------------------------


def test_settle__no_active_loss(book) -> None:
    book.open_account("o1")
    book.fund("f1", 100_000)
    assert refusal(book.settle("s1", 100)) == Code.NO_ACTIVE_LOSS


def test_settle__payment_exceeds_payable_at_payable_plus_one(book) -> None:
    opened_with_loss(book, loss_minor=10_000)  # payable ⌊10 000 · 1000 / 10 000⌋ = 1000
    assert refusal(book.settle("s1", 1_001)) == Code.PAYMENT_EXCEEDS_PAYABLE
    assert book.account().loss is not None and book.account().loss.remaining_minor == 10_000


def test_settle__full_payment_closes_loss(book) -> None:
    opened_with_loss(book, loss_minor=10_000)
    decision = book.settle("s1", 1_000)
    assert isinstance(decision, Applied)
    assert decision.events == (
        Settled(
            loss="b1",
            payment_minor=1_000,
            capital_closed_minor=10_000,
            my_share_minor=100,
            company_share_minor=900,
        ),
    )
    account = book.account()
    assert account.loss is None
    assert account.capital_minor == account.balance_minor == 90_000
    assert account.capital_closed_minor == 10_000


def test_settle__payment_of_a_rounded_down_payable_closes_the_whole_loss(book) -> None:
    # 10 % of 10 009 is 1000.9: the payable is 1000, and paying it closes all 10 009.
    opened_with_loss(book, loss_minor=10_009)
    decision = book.settle("s1", 1_000)
    assert isinstance(decision, Applied)
    (event,) = decision.events
    assert isinstance(event, Settled)
    assert event.capital_closed_minor == 10_009
    assert book.account().loss is None


def test_settle__partial_payment_closes_capital_rounded_down(book) -> None:
    # 3.75 % + 15 % = 1875 bp; payable(1000) = 187; paying 7 closes ⌊70 000 / 1875⌋ = ⌊37.33⌋ = 37.
    opened_with_loss(book, loss_minor=1_000, my_share_bp=375, company_share_bp=1_500)
    decision = book.settle("s1", 7)
    assert isinstance(decision, Applied)
    (event,) = decision.events
    assert isinstance(event, Settled)
    assert event.capital_closed_minor == 37
    loss = book.account().loss
    assert loss is not None
    assert (loss.remaining_minor, loss.capital_closed_minor, loss.original_minor) == (963, 37, 1_000)
    assert book.account().capital_minor == 100_000 - 37


def test_settle__shares_split_my_rounded_down_and_company_the_rest(book) -> None:
    # my = ⌊7 · 375 / 1875⌋ = ⌊1.4⌋ = 1; company = 7 − 1 = 6.
    opened_with_loss(book, loss_minor=1_000, my_share_bp=375, company_share_bp=1_500)
    decision = book.settle("s1", 7)
    assert isinstance(decision, Applied)
    (event,) = decision.events
    assert isinstance(event, Settled)
    assert (event.payment_minor, event.my_share_minor, event.company_share_minor) == (7, 1, 6)
    account = book.account()
    assert (account.payments_minor, account.my_share_minor, account.company_share_minor) == (7, 1, 6)


def test_settle__shares_are_split_from_the_payment_not_from_capital_closed(book) -> None:
    # 20 % + 10 % of a loss of 6: payable ⌊1.8⌋ = 1, which closes all 6. The payment splits
    # my = ⌊1 · 2000 / 3000⌋ = 0 and company = 1; shares of capital closed would be ⌊1.2⌋ = 1 and 0.
    opened_with_loss(book, loss_minor=6, my_share_bp=2_000, company_share_bp=1_000)
    decision = book.settle("s1", 1)
    assert isinstance(decision, Applied)
    (event,) = decision.events
    assert isinstance(event, Settled)
    assert (event.capital_closed_minor, event.my_share_minor, event.company_share_minor) == (6, 0, 1)


def test_settle__my_share_alone_takes_the_whole_payment(book) -> None:
    opened_with_loss(book, loss_minor=10_000, my_share_bp=1_000, company_share_bp=0)
    decision = book.settle("s1", 333)
    assert isinstance(decision, Applied)
    (event,) = decision.events
    assert isinstance(event, Settled)
    assert (event.my_share_minor, event.company_share_minor) == (333, 0)


def test_settle__each_settlement_records_the_loss_it_paid(book) -> None:
    opened_with_loss(book, loss_minor=10_000)
    book.settle("s1", 1_000)
    book.record_balance("b2", 80_000)
    decision = book.settle("s2", 100)
    assert isinstance(decision, Applied)
    (event,) = decision.events
    assert isinstance(event, Settled)
    assert event.loss == "b2"
    first = book.ledger()[3]
    assert isinstance(first, Applied)
    assert first.events == (
        Settled(
            loss="b1",
            payment_minor=1_000,
            capital_closed_minor=10_000,
            my_share_minor=100,
            company_share_minor=900,
        ),
    )


def test_settle__loss_records_opened_by_capital_and_balance_at_that_moment(book) -> None:
    book.open_account("o1")
    book.fund("f1", 100_000)
    book.record_balance("b1", 90_000)
    book.settle("s1", 1_000)
    book.fund("f2", 50_000)
    book.record_balance("b2", 130_000)
    loss = book.account().loss
    assert loss is not None
    assert (loss.opened_by, loss.capital_minor, loss.balance_minor, loss.original_minor) == (
        "b2",
        140_000,
        130_000,
        10_000,
    )


def test_settle__payments_then_payable_close_the_loss(book) -> None:
    opened_with_loss(book, loss_minor=10_000)
    assert book.run(
        Settle(id="s1", account="acme", payment_minor=400),
        Settle(id="s2", account="acme", payment_minor=350),
        Settle(id="s3", account="acme", payment_minor=251),
        Settle(id="s4", account="acme", payment_minor=250),
    ) == ["applied", "applied", "payment_exceeds_payable", "applied"]
    account = book.account()
    assert account.loss is None
    assert account.capital_closed_minor == 10_000
    assert (account.payments_minor, account.my_share_minor, account.company_share_minor) == (1_000, 100, 900)


@pytest.mark.parametrize(
    "payment_minor",
    [
        pytest.param(0, id="zero"),
        pytest.param(-1, id="negative"),
        pytest.param(AMOUNT_MINOR_MAX + 1, id="over_limit"),
        pytest.param(InvalidAmount(text="5."), id="not_an_amount"),
    ],
)
def test_settle__invalid_amount(book, payment_minor) -> None:
    opened_with_loss(book)
    assert rejection(book.settle("s1", payment_minor)) == Code.INVALID_AMOUNT


# --- set_shares ----------------------------------------------------------------------------------


def test_set_shares__active_loss_keeps_its_frozen_shares(book) -> None:
    opened_with_loss(book, loss_minor=10_000)
    decision = book.set_shares("s1", 5_000, 5_000)
    assert isinstance(decision, Applied)
    assert decision.events == (SharesSet(my_share_bp=5_000, company_share_bp=5_000),)
    account = book.account()
    assert (account.my_share_bp, account.company_share_bp) == (5_000, 5_000)
    assert account.loss is not None
    assert (account.loss.my_share_bp, account.loss.company_share_bp) == (100, 900)
    # Still 10 %: the payable of the frozen loss is 1000, not 10 000.
    assert refusal(book.settle("p1", 1_001)) == Code.PAYMENT_EXCEEDS_PAYABLE
    settled = book.settle("p2", 1_000)
    assert isinstance(settled, Applied)
    assert settled.events[0] == Settled(
        loss="b1",
        payment_minor=1_000,
        capital_closed_minor=10_000,
        my_share_minor=100,
        company_share_minor=900,
    )


def test_set_shares__later_losses_use_the_new_shares(book) -> None:
    book.open_account("o1", 100, 900)
    book.fund("f1", 100_000)
    book.set_shares("s1", 2_000, 3_000)
    book.record_balance("b1", 90_000)
    loss = book.account().loss
    assert loss is not None
    assert (loss.my_share_bp, loss.company_share_bp) == (2_000, 3_000)
    assert refusal(book.settle("p1", 5_001)) == Code.PAYMENT_EXCEEDS_PAYABLE
    assert book.run(Settle(id="p2", account="acme", payment_minor=5_000)) == ["applied"]


def test_set_shares__zero_shares_write_off_later_losses(book) -> None:
    book.open_account("o1", 100, 900)
    book.fund("f1", 100_000)
    book.set_shares("s1", 0, 0)
    book.record_balance("b1", 90_000)
    assert book.account().loss is None
    assert book.account().capital_minor == 90_000


# --- confirm_payout ------------------------------------------------------------------------------


def profit_withdrawn(book) -> Account:
    """acme: funded ₹1000, then ₹1200 shown by `b1`: payout `acme:b1` of ₹200 pending."""
    book.open_account("o1")
    book.fund("f1", 100_000)
    book.record_balance("b1", 120_000)
    return book.account()


def test_confirm_payout__marks_the_payout_confirmed(book) -> None:
    profit_withdrawn(book)
    decision = book.confirm_payout("c1", "acme:b1")
    assert isinstance(decision, Applied)
    assert decision.events == (PayoutConfirmed(payout_id="acme:b1", amount_minor=20_000),)
    assert book.payouts() == [Payout(id="acme:b1", amount_minor=20_000, status=PayoutStatus.CONFIRMED)]
    account = book.account()
    assert (account.payout_count, account.payout_confirmed_count, account.payout_confirmed_minor) == (
        1,
        1,
        20_000,
    )


def test_confirm_payout__unknown_payout(book) -> None:
    profit_withdrawn(book)
    assert refusal(book.confirm_payout("c1", "acme:b2")) == Code.UNKNOWN_PAYOUT


def test_confirm_payout__confirming_twice_under_different_ids_is_applied_and_changes_nothing(book) -> None:
    profit_withdrawn(book)
    book.confirm_payout("c1", "acme:b1")
    before = book.account()
    decision = book.confirm_payout("c2", "acme:b1")
    assert isinstance(decision, Applied)
    assert decision.events == ()
    after = book.account()
    assert attrs.evolve(after, entry_count=before.entry_count) == before
    assert after.entry_count == before.entry_count + 1
    assert book.store.entry("acme", "c2") == decision
    assert book.payout("acme:b1").status is PayoutStatus.CONFIRMED


def test_confirm_payout__payout_of_another_account_is_unknown(book) -> None:
    profit_withdrawn(book)
    book.open_account("o1", account="beta")
    assert refusal(book.confirm_payout("c1", "acme:b1", account="beta")) == Code.UNKNOWN_PAYOUT
    assert book.payout("acme:b1").status is PayoutStatus.PENDING
    assert book.payouts("beta") == []


# --- confirm_payout: the payout rule (spec.md#fields), for commands a backend builds -------------


def real_payout_of(book, payout_chars: int) -> str:
    """A pending payout whose id is `payout_chars` long: `<account>:<command id>` of a withdrawal made
    on an account named to fit, with a command id of the longest allowed length, 128."""
    account_id = "a" * (payout_chars - 1 - ID_CHARS_MAX)
    command_id = "b" * ID_CHARS_MAX
    book.open_account("o1", account=account_id)
    book.fund("f1", 100_000, account=account_id)
    assert isinstance(book.record_balance(command_id, 120_000, account=account_id), Applied)
    (payout,) = book.payouts(account_id)
    assert len(payout.id) == payout_chars
    return payout.id


@pytest.mark.parametrize("payout_chars", [192, PAYOUT_CHARS_MAX])
def test_confirm_payout__payout_of_192_or_193_characters_reaches_the_state_rules(book, payout_chars) -> None:
    payout = real_payout_of(book, payout_chars)
    account_id = payout.split(":")[0]
    assert book.run(ConfirmPayout(id="c1", account=account_id, payout=payout)) == ["applied"]
    assert book.payout(payout, account_id).status is PayoutStatus.CONFIRMED
    # A payout id of that length that names no payout is unknown: it passed the payout rule.
    made_up = "z" * payout_chars
    assert refusal(book.confirm_payout("c2", made_up, account=account_id)) == Code.UNKNOWN_PAYOUT


def test_confirm_payout__payout_of_193_characters_is_accepted(book) -> None:
    assert PAYOUT_CHARS_MAX == 193
    book.open_account("o1")
    assert refusal(book.confirm_payout("c1", "p" * 193)) == Code.UNKNOWN_PAYOUT


def test_confirm_payout__payout_of_192_characters_is_accepted(book) -> None:
    book.open_account("o1")
    assert refusal(book.confirm_payout("c1", "p" * 192)) == Code.UNKNOWN_PAYOUT


def test_confirm_payout__payout_of_193_astral_characters_is_accepted(book) -> None:
    # The rule counts characters (code points), not UTF-8 bytes or UTF-16 units.
    book.open_account("o1")
    assert refusal(book.confirm_payout("c1", "\U0001f600" * 193)) == Code.UNKNOWN_PAYOUT
    assert rejection(book.confirm_payout("c2", "\U0001f600" * 194)) == Code.MALFORMED


@pytest.mark.parametrize(
    ("payout", "words"),
    [
        pytest.param("p" * 194, ["payout", "1 to 193 characters", "not 194"], id="payout_of_194_characters"),
        pytest.param("", ["payout", "1 to 193 characters", "not 0"], id="empty_payout"),
        pytest.param("a\x00b", ["payout", "control character U+0000"], id="payout_with_nul"),
        pytest.param("a\nb", ["payout", "control character U+000A"], id="payout_with_newline"),
        pytest.param("a\x7fb", ["payout", "control character U+007F"], id="payout_with_delete"),
        pytest.param("a\x85b", ["payout", "control character U+0085"], id="payout_with_c1_control"),
        pytest.param("\ud800", ["payout", "lone surrogate U+D800"], id="payout_with_lone_surrogate"),
        pytest.param("a\udc00", ["payout", "lone surrogate U+DC00"], id="payout_with_lone_low_surrogate"),
    ],
)
def test_confirm_payout__payout_outside_the_rules_is_malformed_and_not_recorded(book, payout, words) -> None:
    profit_withdrawn(book)
    decision = book.confirm_payout("c1", payout)
    assert rejection(decision) == Code.MALFORMED
    for word in words:
        assert word in decision.message
    # Nothing is recorded (book.do checked it): the id is still free for a well-formed command.
    assert book.store.entry("acme", "c1") is None
    assert book.run(ConfirmPayout(id="c1", account="acme", payout="acme:b1")) == ["applied"]


def test_confirm_payout__payout_of_194_characters_is_malformed(book) -> None:
    book.open_account("o1")
    assert rejection(book.confirm_payout("c1", "p" * 194)) == Code.MALFORMED
    assert book.store.entry("acme", "c1") is None


def test_confirm_payout__payout_with_nul_is_malformed_and_not_recorded(book) -> None:
    # The seed refused it and recorded it: PostgreSQL cannot store a NUL in text.
    book.open_account("o1")
    assert rejection(book.confirm_payout("c1", "a\x00b")) == Code.MALFORMED
    assert book.store.entry("acme", "c1") is None
    assert book.account().entry_count == 1
    assert refusal(book.confirm_payout("c1", "ab")) == Code.UNKNOWN_PAYOUT


def test_confirm_payout__malformed_payout_is_malformed_before_unknown_account(book) -> None:
    assert rejection(book.confirm_payout("c1", "a\x00b", account="ghost")) == Code.MALFORMED
    assert rejection(book.confirm_payout("c1", "ab", account="ghost")) == Code.UNKNOWN_ACCOUNT


# --- malformed and unknown_account --------------------------------------------------------------


@pytest.mark.parametrize(
    ("command_id", "account_id"),
    [
        pytest.param("", "acme", id="empty_id"),
        pytest.param("x" * 129, "acme", id="id_of_129_characters"),
        pytest.param("a\x00b", "acme", id="id_with_nul"),
        pytest.param("a\nb", "acme", id="id_with_newline"),
        pytest.param("a\x7fb", "acme", id="id_with_delete"),
        pytest.param("a\x85b", "acme", id="id_with_c1_control"),
        pytest.param("a\ud800b", "acme", id="id_with_lone_surrogate"),
        pytest.param("f1", "", id="empty_account"),
        pytest.param("f1", "a" * 65, id="account_of_65_characters"),
        pytest.param("f1", "ac me", id="account_with_space"),
        pytest.param("f1", "acmé", id="account_with_non_ascii"),
        pytest.param("f1", "ac/me", id="account_with_slash"),
    ],
)
def test_decide__malformed_id_or_account(book, command_id, account_id) -> None:
    book.open_account("o1")
    command = Fund(id=command_id, account=account_id, amount_minor=100)
    assert rejection(book.do(command)) == Code.MALFORMED


def test_decide__longest_id_and_account_are_well_formed(book) -> None:
    account_id = "A-z_0." + "a" * 58
    assert book.run(
        OpenAccount(id="é" + "x" * 127, account=account_id, my_share_bp=0, company_share_bp=0)
    ) == ["applied"]


@pytest.mark.parametrize(
    "command",
    [
        Fund(id="x1", account="ghost", amount_minor=100),
        RecordBalance(id="x1", account="ghost", balance_minor=100),
        Settle(id="x1", account="ghost", payment_minor=100),
        SetShares(id="x1", account="ghost", my_share_bp=100, company_share_bp=900),
        ConfirmPayout(id="x1", account="ghost", payout="ghost:b1"),
    ],
    ids=lambda command: type(command).__name__,
)
def test_decide__unknown_account(book, command: Command) -> None:
    book.open_account("o1")
    assert rejection(book.do(command)) == Code.UNKNOWN_ACCOUNT
    assert book.store.account("ghost") is None
    assert book.store.account_ids() == ["acme"]


# --- idempotency ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        Fund(id="x1", account="acme", amount_minor=100),
        RecordBalance(id="x1", account="acme", balance_minor=150_000, date=JAN_5),
        Settle(id="x1", account="acme", payment_minor=100),
        SetShares(id="x1", account="acme", my_share_bp=0, company_share_bp=0),
        ConfirmPayout(id="x1", account="acme", payout="acme:b0"),
    ],
    ids=lambda command: type(command).__name__,
)
def test_decide__retry_of_an_applied_command_is_duplicate_and_changes_nothing(book, command) -> None:
    book.open_account("o1")
    book.record_balance("b0", 5_000)
    book.fund("f1", 100_000)
    if isinstance(command, Settle):
        book.record_balance("b1", 90_000)
    first = book.do(command)
    assert isinstance(first, Applied)
    before = book.account()
    ledger_before = list(book.ledger())
    again = attrs.evolve(command)  # equal, not the same object
    assert book.do(again) == Repeated(entry=first)
    assert book.account() is before
    assert book.ledger() == ledger_before


@pytest.mark.parametrize(
    ("setup", "refused", "now_allowed_by", "code"),
    [
        pytest.param(
            [],
            Settle(id="x1", account="acme", payment_minor=100),
            [RecordBalance(id="b1", account="acme", balance_minor=90_000)],
            Code.NO_ACTIVE_LOSS,
            id="no_active_loss",
        ),
        pytest.param(
            [RecordBalance(id="b1", account="acme", balance_minor=90_000)],
            Settle(id="x1", account="acme", payment_minor=2_000),
            [
                SetShares(id="s1", account="acme", my_share_bp=10_000, company_share_bp=0),
                Settle(id="p1", account="acme", payment_minor=1_000),
                RecordBalance(id="b2", account="acme", balance_minor=80_000),
            ],
            Code.PAYMENT_EXCEEDS_PAYABLE,
            id="payment_exceeds_payable",
        ),
        pytest.param(
            [RecordBalance(id="b1", account="acme", balance_minor=90_000)],
            RecordBalance(id="x1", account="acme", balance_minor=100_000),
            [Settle(id="p1", account="acme", payment_minor=1_000)],
            Code.LOSS_ACTIVE,
            id="loss_active",
        ),
        pytest.param(
            [],
            ConfirmPayout(id="x1", account="acme", payout="acme:b1"),
            [RecordBalance(id="b1", account="acme", balance_minor=120_000)],
            Code.UNKNOWN_PAYOUT,
            id="unknown_payout",
        ),
    ],
)
def test_decide__retry_of_a_refused_command_keeps_its_refusal_after_the_state_allows_it(
    book, setup, refused, now_allowed_by, code
) -> None:
    book.open_account("o1")
    book.fund("f1", 100_000)
    assert book.run(*setup) == ["applied"] * len(setup)
    first = book.do(refused)
    assert refusal(first) == code
    assert book.run(*now_allowed_by) == ["applied"] * len(now_allowed_by)
    # The same command under a fresh id would now be applied ...
    fresh = attrs.evolve(refused, id="fresh")
    assert isinstance(execute(book.account(), fresh, book.lookup(fresh))[0], Applied)
    # ... but its id's outcome never changes.
    before = book.account()
    assert book.do(attrs.evolve(refused)) == Repeated(entry=first)
    assert book.account() is before


def test_decide__a_refusal_is_its_command_and_code_not_its_message(book) -> None:
    opened_with_loss(book)
    first = book.settle("x1", 5_000)
    assert refusal(first) == Code.PAYMENT_EXCEEDS_PAYABLE
    assert first.message.startswith("payment 50.00 is more than the payable 10.00")
    reworded = Refused(command=first.command, code=first.code, message="worded otherwise")
    assert reworded == first
    assert hash(reworded) == hash(first)
    assert "message" not in repr(first)
    assert Refused(command=first.command, code=Code.NO_ACTIVE_LOSS, message=first.message) != first
    # The stored entry keeps no words; the retry is answered with the stored entry.
    retried = book.settle("x1", 5_000)
    assert retried == Repeated(entry=reworded)
    assert isinstance(retried, Repeated)
    assert retried.entry.code == Code.PAYMENT_EXCEEDS_PAYABLE


def test_decide__retry_of_a_stale_balance_keeps_its_refusal(book) -> None:
    book.open_account("o1")
    book.record_balance("b1", 0, JAN_5)
    first = book.record_balance("x1", 0, JAN_1)
    assert refusal(first) == Code.STALE_BALANCE
    assert book.do(RecordBalance(id="x1", account="acme", balance_minor=0, date=JAN_1)) == Repeated(
        entry=first
    )


def test_decide__retry_of_limit_exceeded_keeps_its_refusal(book) -> None:
    book.open_account("o1")
    book.fund("f1", AMOUNT_MINOR_MAX)
    first = book.fund("x1", 1)
    assert refusal(first) == Code.LIMIT_EXCEEDED
    assert book.do(Fund(id="x1", account="acme", amount_minor=1)) == Repeated(entry=first)


@pytest.mark.parametrize(
    "changed",
    [
        pytest.param(Fund(id="x1", account="acme", amount_minor=101), id="other_amount"),
        pytest.param(Settle(id="x1", account="acme", payment_minor=100), id="other_type"),
        pytest.param(
            Fund(id="x1", account="acme", amount_minor=InvalidAmount(text="1.00")), id="not_an_amount"
        ),
        pytest.param(Fund(id="x1", account="acme", amount_minor=0), id="zero_amount"),
    ],
)
def test_decide__changed_payload_is_idempotency_conflict(book, changed) -> None:
    book.open_account("o1")
    book.fund("x1", 100)
    assert rejection(book.do(changed)) == Code.IDEMPOTENCY_CONFLICT
    assert book.account().funding_minor == 100


def test_decide__absent_date_differs_from_a_present_one(book) -> None:
    book.open_account("o1")
    book.record_balance("b1", 0)
    assert rejection(book.record_balance("b1", 0, JAN_5)) == Code.IDEMPOTENCY_CONFLICT
    book.record_balance("b2", 0, JAN_5)
    assert rejection(book.record_balance("b2", 0)) == Code.IDEMPOTENCY_CONFLICT
    assert rejection(book.record_balance("b2", 0, JAN_10)) == Code.IDEMPOTENCY_CONFLICT


def test_decide__changed_payload_of_a_refused_id_is_idempotency_conflict(book) -> None:
    opened_with_loss(book)
    book.settle("x1", 5_000)
    assert rejection(book.settle("x1", 500)) == Code.IDEMPOTENCY_CONFLICT
    assert book.account().payments_minor == 0


@pytest.mark.parametrize(
    "rejected",
    [
        pytest.param(Fund(id="x1", account="acme", amount_minor=0), id="invalid_amount"),
        pytest.param(
            SetShares(id="x1", account="acme", my_share_bp=10_001, company_share_bp=0), id="invalid_shares"
        ),
        pytest.param(
            OpenAccount(id="x1", account="acme", my_share_bp=0, company_share_bp=0), id="account_exists"
        ),
        pytest.param(Fund(id="x1", account="acme", amount_minor=InvalidAmount(text="")), id="not_an_amount"),
    ],
)
def test_decide__a_rejected_id_stays_free(book, rejected) -> None:
    book.open_account("o1")
    assert isinstance(book.do(rejected), Rejected)
    assert book.store.entry("acme", "x1") is None
    assert book.run(Fund(id="x1", account="acme", amount_minor=100)) == ["applied"]


def test_decide__an_unknown_account_keeps_the_id_free_once_it_exists(book) -> None:
    assert rejection(book.fund("x1", 100)) == Code.UNKNOWN_ACCOUNT
    book.open_account("o1")
    assert book.run(Fund(id="x1", account="acme", amount_minor=100)) == ["applied"]


# Every rejection code, each from the state it needs: (setup, command).
REJECTIONS = [
    pytest.param([], Fund(id="", account="acme", amount_minor=1), Code.MALFORMED, id="malformed"),
    pytest.param(
        [Fund(id="x1", account="acme", amount_minor=1)],
        Fund(id="x1", account="acme", amount_minor=2),
        Code.IDEMPOTENCY_CONFLICT,
        id="idempotency_conflict",
    ),
    pytest.param(
        [], Fund(id="x1", account="ghost", amount_minor=1), Code.UNKNOWN_ACCOUNT, id="unknown_account"
    ),
    pytest.param(
        [],
        OpenAccount(id="x1", account="acme", my_share_bp=0, company_share_bp=0),
        Code.ACCOUNT_EXISTS,
        id="account_exists",
    ),
    pytest.param([], Fund(id="x1", account="acme", amount_minor=0), Code.INVALID_AMOUNT, id="invalid_amount"),
    pytest.param(
        [],
        SetShares(id="x1", account="acme", my_share_bp=-1, company_share_bp=0),
        Code.INVALID_SHARES,
        id="invalid_shares",
    ),
]

# Every refusal code, each from the state it needs: (setup, command).
REFUSALS = [
    pytest.param(
        [
            Fund(id="f1", account="acme", amount_minor=100_000),
            RecordBalance(id="b1", account="acme", balance_minor=1),
        ],
        RecordBalance(id="x1", account="acme", balance_minor=1),
        Code.LOSS_ACTIVE,
        id="loss_active",
    ),
    pytest.param(
        [RecordBalance(id="b1", account="acme", balance_minor=0, date=JAN_5)],
        RecordBalance(id="x1", account="acme", balance_minor=0, date=JAN_1),
        Code.STALE_BALANCE,
        id="stale_balance",
    ),
    pytest.param(
        [RecordBalance(id="b1", account="acme", balance_minor=AMOUNT_MINOR_MAX)],
        RecordBalance(id="x1", account="acme", balance_minor=1),
        Code.LIMIT_EXCEEDED,
        id="limit_exceeded_on_profit",
    ),
    pytest.param(
        [Fund(id="f1", account="acme", amount_minor=AMOUNT_MINOR_MAX)],
        Fund(id="x1", account="acme", amount_minor=1),
        Code.LIMIT_EXCEEDED,
        id="limit_exceeded_on_funding",
    ),
    pytest.param(
        [], Settle(id="x1", account="acme", payment_minor=1), Code.NO_ACTIVE_LOSS, id="no_active_loss"
    ),
    pytest.param(
        [
            Fund(id="f1", account="acme", amount_minor=100_000),
            RecordBalance(id="b1", account="acme", balance_minor=1),
        ],
        Settle(id="x1", account="acme", payment_minor=10_000),
        Code.PAYMENT_EXCEEDS_PAYABLE,
        id="payment_exceeds_payable",
    ),
    pytest.param(
        [], ConfirmPayout(id="x1", account="acme", payout="acme:b1"), Code.UNKNOWN_PAYOUT, id="unknown_payout"
    ),
]


@pytest.mark.parametrize(("setup", "command", "code"), REJECTIONS)
def test_decide__a_rejection_changes_nothing_and_records_nothing(book, setup, command, code) -> None:
    book.open_account("o1")
    book.run(*setup)
    before = book.account()
    ledger_before = list(book.ledger())
    payouts_before = book.payouts()
    recorded_before = book.store.entry(command.account, command.id)
    decision, after = execute(before if command.account == "acme" else None, command, book.lookup(command))
    assert rejection(decision) == code
    if command.account == "acme":
        assert after is before
    assert book.do(command) == decision
    assert book.account() is before
    assert book.account().entry_count == before.entry_count == len(ledger_before)
    assert book.ledger() == ledger_before
    assert book.payouts() == payouts_before
    assert book.store.entry(command.account, command.id) == recorded_before


@pytest.mark.parametrize(("setup", "command", "code"), REFUSALS)
def test_decide__a_refusal_records_only_its_id(book, setup, command, code) -> None:
    book.open_account("o1")
    assert book.run(*setup) == ["applied"] * len(setup)
    before = book.account()
    decision = book.do(command)
    assert refusal(decision) == code
    after = book.account()
    assert attrs.evolve(after, entry_count=before.entry_count) == before
    assert after.entry_count == before.entry_count + 1
    assert book.store.entry("acme", command.id) == decision
    assert book.ledger()[-1] is decision
    assert decision.command is command
    assert decision.message


@pytest.mark.parametrize(
    ("command", "words"),
    [
        pytest.param(
            Fund(id="x1", account="acme", amount_minor=0), ["amount", "0.00", "more than 0"], id="fund"
        ),
        pytest.param(
            RecordBalance(id="x1", account="acme", balance_minor=InvalidAmount(text="1e3")),
            ["balance", "'1e3'", "two decimals"],
            id="record_balance",
        ),
        pytest.param(
            Settle(id="x1", account="acme", payment_minor=AMOUNT_MINOR_MAX + 1),
            ["payment", "1000000000000000.01", "limit"],
            id="settle",
        ),
        pytest.param(
            SetShares(id="x1", account="acme", my_share_bp=6_000, company_share_bp=4_001),
            ["my_share 60.00 %", "company_share 40.01 %", "100 %"],
            id="set_shares",
        ),
        pytest.param(Fund(id="x1", account="ghost", amount_minor=1), ["'ghost'"], id="unknown_account"),
    ],
)
def test_decide__a_rejection_message_names_the_field_and_value(book, command, words) -> None:
    book.open_account("o1")
    decision = book.do(command)
    assert isinstance(decision, Rejected)
    for word in words:
        assert word in decision.message


# --- precedence ----------------------------------------------------------------------------------


def _odd_id_applied() -> Entry:
    """An applied entry whose id breaks the id rules: a ledger written before the rules were."""
    return Applied(
        command=SetShares(id="s\x07", account="acme", my_share_bp=0, company_share_bp=0),
        events=(SharesSet(my_share_bp=0, company_share_bp=0),),
    )


def _nul_payout_refused() -> Entry:
    """A refusal of a payout id holding a NUL, recorded as ledgers were before the payout rule."""
    return Refused(command=ConfirmPayout(id="c1", account="acme", payout="a\x00b"), code=Code.UNKNOWN_PAYOUT)


# Each row: the account's history after `o1` opens acme with 1 % + 9 %, a command breaking two or
# more rules, and the code of the rule that wins. One row per adjacent pair of spec.md#precedence.
PRECEDENCE = [
    pytest.param(
        [_odd_id_applied()],
        SetShares(id="s\x07", account="acme", my_share_bp=0, company_share_bp=0),
        "malformed",
        id="malformed_before_duplicate",
    ),
    pytest.param(
        [_odd_id_applied()],
        SetShares(id="s\x07", account="acme", my_share_bp=1, company_share_bp=0),
        "malformed",
        id="malformed_before_idempotency_conflict",
    ),
    pytest.param(
        [], Fund(id="", account="ghost", amount_minor=1), "malformed", id="malformed_before_unknown_account"
    ),
    pytest.param(
        [_nul_payout_refused()],
        ConfirmPayout(id="c1", account="acme", payout="a\x00b"),
        "malformed",
        id="malformed_payout_before_recorded_refusal",
    ),
    pytest.param(
        [],
        ConfirmPayout(id="x1", account="ghost", payout=""),
        "malformed",
        id="malformed_payout_before_unknown_account",
    ),
    pytest.param(
        [],
        OpenAccount(id="\x00", account="acme", my_share_bp=0, company_share_bp=0),
        "malformed",
        id="malformed_before_account_exists",
    ),
    pytest.param(
        [], Fund(id="\x00", account="acme", amount_minor=0), "malformed", id="malformed_before_invalid_amount"
    ),
    pytest.param(
        [],
        OpenAccount(id="o1", account="acme", my_share_bp=100, company_share_bp=900),
        "duplicate",
        id="duplicate_before_account_exists",
    ),
    pytest.param(
        [],
        OpenAccount(id="o1", account="acme", my_share_bp=100, company_share_bp=901),
        "idempotency_conflict",
        id="idempotency_conflict_before_account_exists",
    ),
    pytest.param(
        [],
        OpenAccount(id="o1", account="acme", my_share_bp=10_001, company_share_bp=0),
        "idempotency_conflict",
        id="idempotency_conflict_before_invalid_shares",
    ),
    pytest.param(
        [Fund(id="f1", account="acme", amount_minor=100)],
        Fund(id="f1", account="acme", amount_minor=0),
        "idempotency_conflict",
        id="idempotency_conflict_before_invalid_amount",
    ),
    pytest.param(
        [Settle(id="s1", account="acme", payment_minor=100)],
        Settle(id="s1", account="acme", payment_minor=200),
        "idempotency_conflict",
        id="idempotency_conflict_before_no_active_loss",
    ),
    pytest.param(
        [ConfirmPayout(id="c1", account="acme", payout="acme:b1")],
        ConfirmPayout(id="c1", account="acme", payout="acme:b2"),
        "idempotency_conflict",
        id="idempotency_conflict_before_unknown_payout",
    ),
    pytest.param(
        [
            Settle(id="s1", account="acme", payment_minor=100),
            Fund(id="f1", account="acme", amount_minor=100_000),
            RecordBalance(id="b1", account="acme", balance_minor=90_000),
        ],
        Settle(id="s1", account="acme", payment_minor=100),
        "no_active_loss",
        id="recorded_refusal_before_the_state_now",
    ),
    pytest.param(
        [
            Fund(id="f1", account="acme", amount_minor=100_000),
            RecordBalance(id="b1", account="acme", balance_minor=90_000),
            Settle(id="s1", account="acme", payment_minor=1_000),
        ],
        Settle(id="s1", account="acme", payment_minor=1_000),
        "duplicate",
        id="duplicate_before_no_active_loss",
    ),
    pytest.param(
        [],
        Fund(id="x1", account="ghost", amount_minor=0),
        "unknown_account",
        id="unknown_account_before_invalid_amount",
    ),
    pytest.param(
        [],
        SetShares(id="x1", account="ghost", my_share_bp=10_001, company_share_bp=0),
        "unknown_account",
        id="unknown_account_before_invalid_shares",
    ),
    pytest.param(
        [],
        ConfirmPayout(id="x1", account="ghost", payout="nope"),
        "unknown_account",
        id="unknown_account_before_unknown_payout",
    ),
    pytest.param(
        [],
        OpenAccount(id="x1", account="acme", my_share_bp=10_001, company_share_bp=0),
        "account_exists",
        id="account_exists_before_invalid_shares",
    ),
    pytest.param(
        [Fund(id="f1", account="acme", amount_minor=AMOUNT_MINOR_MAX)],
        Fund(id="x1", account="acme", amount_minor=AMOUNT_MINOR_MAX + 1),
        "invalid_amount",
        id="invalid_amount_before_limit_exceeded_on_funding",
    ),
    pytest.param(
        [
            Fund(id="f1", account="acme", amount_minor=100_000),
            RecordBalance(id="b1", account="acme", balance_minor=90_000),
        ],
        RecordBalance(id="x1", account="acme", balance_minor=-1),
        "invalid_amount",
        id="invalid_amount_before_loss_active",
    ),
    pytest.param(
        [RecordBalance(id="b1", account="acme", balance_minor=0, date=JAN_5)],
        RecordBalance(id="x1", account="acme", balance_minor=InvalidAmount(text="1,00"), date=JAN_1),
        "invalid_amount",
        id="invalid_amount_before_stale_balance",
    ),
    pytest.param(
        [RecordBalance(id="b1", account="acme", balance_minor=AMOUNT_MINOR_MAX)],
        RecordBalance(id="x1", account="acme", balance_minor=AMOUNT_MINOR_MAX + 1),
        "invalid_amount",
        id="invalid_amount_before_limit_exceeded_on_profit",
    ),
    pytest.param(
        [],
        Settle(id="x1", account="acme", payment_minor=0),
        "invalid_amount",
        id="invalid_amount_before_no_active_loss",
    ),
    pytest.param(
        [
            Fund(id="f1", account="acme", amount_minor=100_000),
            RecordBalance(id="b1", account="acme", balance_minor=90_000),
        ],
        Settle(id="x1", account="acme", payment_minor=AMOUNT_MINOR_MAX + 1),
        "invalid_amount",
        id="invalid_amount_before_payment_exceeds_payable",
    ),
    pytest.param(
        [
            Fund(id="f1", account="acme", amount_minor=100_000),
            RecordBalance(id="b1", account="acme", balance_minor=90_000, date=JAN_10),
        ],
        RecordBalance(id="x1", account="acme", balance_minor=100_000, date=JAN_1),
        "loss_active",
        id="loss_active_before_stale_balance",
    ),
    pytest.param(
        [
            RecordBalance(id="b1", account="acme", balance_minor=AMOUNT_MINOR_MAX),
            Fund(id="f1", account="acme", amount_minor=100_000),
            RecordBalance(id="b2", account="acme", balance_minor=90_000),
        ],
        RecordBalance(id="x1", account="acme", balance_minor=AMOUNT_MINOR_MAX),
        "loss_active",
        id="loss_active_before_limit_exceeded",
    ),
    pytest.param(
        [RecordBalance(id="b1", account="acme", balance_minor=AMOUNT_MINOR_MAX, date=JAN_10)],
        RecordBalance(id="x1", account="acme", balance_minor=1, date=JAN_1),
        "stale_balance",
        id="stale_balance_before_limit_exceeded",
    ),
    pytest.param(
        [],
        Settle(id="x1", account="acme", payment_minor=AMOUNT_MINOR_MAX),
        "no_active_loss",
        id="no_active_loss_before_payment_exceeds_payable",
    ),
]


@pytest.mark.parametrize(("history", "command", "expected"), PRECEDENCE)
def test_decide__precedence_first_broken_rule_wins(book, history, command, expected) -> None:
    book.open_account("o1", 100, 900)
    for item in history:
        if isinstance(item, (Applied, Refused)):
            book.append(item)
        else:
            book.do(item)
    assert book.run(command) == [expected]


# --- replay --------------------------------------------------------------------------------------


def test_replay__empty_ledger_is_no_account() -> None:
    assert replay([]) is None


def test_replay__every_ledger_folds_back_into_its_account(book) -> None:
    opened_with_loss(book, loss_minor=1_000, my_share_bp=375, company_share_bp=1_500)
    book.settle("s1", 7)
    book.settle("s2", 1_000)
    book.record_balance("b2", 100_000, JAN_5)
    book.record_balance("b3", 100_000, JAN_1)
    book.fund("f2", 100_000)
    book.set_shares("h1", 0, 0)
    book.record_balance("b4", 150_000)
    book.confirm_payout("c1", "acme:b4")
    book.open_account("o1", account="beta")
    assert replay(book.ledger()) == book.account()
    assert replay(book.ledger("beta")) == book.account("beta")
    assert len(book.ledger()) == book.account().entry_count == 11
    account, payouts = replay_with_payouts(book.ledger())
    assert account == book.account()
    assert sorted(payouts.values(), key=lambda payout: payout.id) == book.payouts()


# --- the worked example of docs/spec.md ----------------------------------------------------------


def test_worked_example__every_figure(book) -> None:
    # ₹1000 funded; the exchange then shows ₹900 with shares of 1 % and 9 %.
    assert (
        book.run(
            OpenAccount(id="c1", account="acme", my_share_bp=100, company_share_bp=900),
            Fund(id="c2", account="acme", amount_minor=100_000),
            RecordBalance(id="c3", account="acme", balance_minor=90_000, date=JAN_5),
        )
        == ["applied"] * 3
    )
    acme = book.account()
    assert (acme.funding_minor, acme.capital_minor, acme.balance_minor) == (100_000, 100_000, 90_000)
    assert acme.loss is not None
    assert (acme.loss.original_minor, acme.loss.remaining_minor) == (10_000, 10_000)
    assert (
        payable_minor(acme.loss.remaining_minor, acme.loss.my_share_bp + acme.loss.company_share_bp) == 1_000
    )

    # ₹4.00 closes ⌊400 · 10 000 / 1000⌋ = 4000, split ₹0.40 + ₹3.60; ₹60 remains, owing ₹6.00.
    c4 = book.settle("c4", 400)
    assert isinstance(c4, Applied)
    assert c4.events == (
        Settled(
            loss="c3",
            payment_minor=400,
            capital_closed_minor=4_000,
            my_share_minor=40,
            company_share_minor=360,
        ),
    )
    acme = book.account()
    assert acme.loss is not None
    assert (acme.loss.remaining_minor, acme.capital_minor, acme.balance_minor) == (6_000, 96_000, 90_000)

    # The retry is a duplicate.
    assert book.settle("c4", 400) == Repeated(entry=c4)
    assert book.account() is acme

    # ₹7.00 is over the payable ₹6.00: refused and recorded; the retry gets the same answer.
    c5 = book.settle("c5", 700)
    assert refusal(c5) == Code.PAYMENT_EXCEEDS_PAYABLE
    assert c5.message == "payment 7.00 is more than the payable 6.00 of the active loss (remaining 60.00)"
    assert book.settle("c5", 700) == Repeated(entry=c5)

    # ₹6.00 is the payable: it closes the whole remaining loss.
    c6 = book.settle("c6", 600)
    assert isinstance(c6, Applied)
    assert c6.events == (
        Settled(
            loss="c3",
            payment_minor=600,
            capital_closed_minor=6_000,
            my_share_minor=60,
            company_share_minor=540,
        ),
    )
    acme = book.account()
    assert acme.loss is None
    assert (acme.capital_minor, acme.balance_minor, acme.capital_closed_minor) == (90_000, 90_000, 10_000)
    assert (acme.payments_minor, acme.my_share_minor, acme.company_share_minor) == (1_000, 100, 900)

    # ₹1200 shown: the ₹300 profit leaves as pending payout acme:c7, and CB returns to CAPITAL.
    c7 = book.record_balance("c7", 120_000, datetime.date(2026, 1, 12))
    assert isinstance(c7, Applied)
    assert c7.events == (
        BalanceRecorded(balance_minor=120_000, capital_minor=90_000, date=datetime.date(2026, 1, 12)),
        ProfitWithdrawn(payout_id="acme:c7", amount_minor=30_000),
    )
    acme = book.account()
    assert (acme.capital_minor, acme.balance_minor, acme.profit_withdrawn_minor) == (90_000, 90_000, 30_000)
    assert book.payouts() == [Payout(id="acme:c7", amount_minor=30_000, status=PayoutStatus.PENDING)]

    assert book.run(ConfirmPayout(id="c8", account="acme", payout="acme:c7")) == ["applied"]
    acme = book.account()
    assert book.payouts() == [Payout(id="acme:c7", amount_minor=30_000, status=PayoutStatus.CONFIRMED)]
    assert acme.funding_minor == 100_000
    assert acme.balance_date_latest == datetime.date(2026, 1, 12)
    assert [entry.command.id for entry in book.ledger()] == ["c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8"]
    assert acme.entry_count == 8
    assert (acme.payout_count, acme.payout_confirmed_count, acme.payout_confirmed_minor) == (1, 1, 30_000)
    assert replay(book.ledger()) == acme
