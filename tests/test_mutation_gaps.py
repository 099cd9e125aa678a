"""Tests that kill the mutants cosmic-ray found alive (docs/verification.md#mutation-score).

Each pins a behaviour no other test pinned: the preconditions of `decide` and `fold` (their account,
and the lookup of their own command's keys), the loss a capital-closing event must name, and message
texts that a clerk reads. The lemmas' domains are
properties in stateful_tests/test_mutation_gaps.py.
"""

from __future__ import annotations

import icontract
import pytest

from ppk.kernel.state import (
    NOTHING_RECORDED,
    AccountOpened,
    Applied,
    Code,
    ConfirmPayout,
    Entry,
    Fund,
    Funded,
    Lookup,
    OpenAccount,
    Refused,
    Rejected,
    Settle,
    Settled,
    minor_text,
)
from ppk.kernel.transitions import (
    SHOWN_CHARS_MAX,
    decide,
    fold,
    shown,
)

# --- decide and fold take only an account's own commands and entries ------------------------------


OTHER_ACCOUNTS = pytest.mark.parametrize("other", ["a", "zeta"], ids=["sorts_before", "sorts_after"])


@OTHER_ACCOUNTS
def test_decide__a_command_for_another_account_violates_a_precondition(book, other) -> None:
    book.open_account("o1")
    with pytest.raises(icontract.ViolationError):
        decide(book.account(), Fund(id="f1", account=other, amount_minor=100), NOTHING_RECORDED)


@OTHER_ACCOUNTS
def test_fold__an_entry_for_another_account_violates_a_precondition(book, other) -> None:
    book.open_account("o1")
    entry = Applied(
        command=Fund(id="f1", account=other, amount_minor=100), events=(Funded(amount_minor=100),)
    )
    with pytest.raises(icontract.ViolationError):
        fold(book.account(), entry, NOTHING_RECORDED)


def test_fold__a_ledger_that_starts_with_anything_but_open_account_violates_a_precondition() -> None:
    entry = Applied(
        command=Fund(id="f1", account="acme", amount_minor=100),
        events=(AccountOpened(my_share_bp=100, company_share_bp=900),),
    )
    with pytest.raises(icontract.ViolationError):
        fold(None, entry, NOTHING_RECORDED)


@pytest.mark.parametrize("named_loss", ["a", "zz"], ids=["sorts_before", "sorts_after"])
def test_fold__a_settlement_naming_another_loss_is_an_assertion_error(book, named_loss) -> None:
    book.open_account("o1")
    book.fund("f1", 100_000)
    book.record_balance("m", 90_000)
    entry = Applied(
        command=Settle(id="s1", account="acme", payment_minor=10),
        events=(
            Settled(
                loss=named_loss,
                payment_minor=10,
                capital_closed_minor=100,
                my_share_minor=1,
                company_share_minor=9,
            ),
        ),
    )
    with pytest.raises(AssertionError, match="capital closes only the active loss"):
        fold(book.account(), entry, NOTHING_RECORDED)


def test_decide__a_bad_id_is_malformed_even_with_a_good_account() -> None:
    decision = decide(
        None, OpenAccount(id="", account="acme", my_share_bp=100, company_share_bp=900), NOTHING_RECORDED
    )
    assert isinstance(decision, Rejected)
    assert decision.code == Code.MALFORMED
    assert decision.message.startswith("id ")


# --- decide and fold take only the lookup of their own command's keys ----------------------------


def _recorded_fund(book) -> Entry:
    book.open_account("o1")
    book.fund("f1", 100)
    entry = book.store.entry("acme", "f1")
    assert entry is not None
    return entry


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(Fund(id="f2", account="acme", amount_minor=100), id="another_id"),
        pytest.param(Fund(id="f1", account="beta", amount_minor=100), id="another_account"),
    ],
)
def test_decide__a_lookup_of_another_commands_entry_violates_a_precondition(book, command) -> None:
    lookup = Lookup(entry=_recorded_fund(book))
    book.open_account("o1", account="beta")
    account = book.account(command.account)
    with pytest.raises(icontract.ViolationError, match="the lookup is this command's"):
        decide(account, command, lookup)
    entry = Applied(command=command, events=(Funded(amount_minor=100),))
    with pytest.raises(icontract.ViolationError, match="the lookup is this entry's"):
        fold(account, entry, lookup)


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(Fund(id="f2", account="acme", amount_minor=100), id="no_confirmation"),
        pytest.param(ConfirmPayout(id="c1", account="acme", payout="acme:b2"), id="another_payout"),
    ],
)
def test_decide__a_lookup_of_a_payout_the_command_does_not_name_violates_a_precondition(
    book, command
) -> None:
    book.open_account("o1")
    book.fund("f1", 100_000)
    book.record_balance("b1", 120_000)
    lookup = Lookup(payout=book.payout("acme:b1"))
    with pytest.raises(icontract.ViolationError, match="the lookup is this command's"):
        decide(book.account(), command, lookup)


def test_decide__a_lookup_of_the_named_payout_meets_the_precondition(book) -> None:
    book.open_account("o1")
    book.fund("f1", 100_000)
    book.record_balance("b1", 120_000)
    command = ConfirmPayout(id="c1", account="acme", payout="acme:b1")
    decision = decide(book.account(), command, Lookup(payout=book.payout("acme:b1")))
    assert isinstance(decision, Applied)
    # The same command without its payout looked up is refused: the kernel trusts its lookup.
    refused = decide(book.account(), command, NOTHING_RECORDED)
    assert isinstance(refused, Refused)
    assert refused.code == Code.UNKNOWN_PAYOUT


def test_decide__a_new_account_with_a_history_violates_a_precondition(book) -> None:
    entry = _recorded_fund(book)
    command = OpenAccount(id="f1", account="acme", my_share_bp=100, company_share_bp=900)
    with pytest.raises(icontract.ViolationError, match="a new account has no history"):
        decide(None, command, Lookup(entry=entry))


# --- Messages --------------------------------------------------------------------------------------


def test_shown__a_value_of_exactly_the_maximum_is_quoted_whole() -> None:
    assert shown("x" * SHOWN_CHARS_MAX) == repr("x" * SHOWN_CHARS_MAX)
    assert (
        shown("x" * (SHOWN_CHARS_MAX + 1))
        == repr("x" * SHOWN_CHARS_MAX) + f"… ({SHOWN_CHARS_MAX + 1} characters)"
    )


def test_shares__over_100_percent_message_gives_their_sum(book) -> None:
    decision = book.open_account("o1", 6_000, 5_000)
    assert isinstance(decision, Rejected)
    assert decision.message.endswith("add up to 110.00 %, more than 100 %")


def test_idempotency_conflict__message_names_the_recorded_command(book) -> None:
    book.open_account("o1")
    book.fund("f1", 1_000)
    decision = book.fund("f1", 2_000)
    assert isinstance(decision, Rejected)
    assert "(fund amount=10.00)" in decision.message


def test_record_balance__equal_to_capital_opens_no_loss(book) -> None:
    book.open_account("o1")
    book.fund("f1", 100_000)
    decision = book.record_balance("b1", 100_000)
    assert isinstance(decision, Applied)
    assert [type(event).__name__ for event in decision.events] == ["BalanceRecorded"]


@pytest.mark.parametrize(
    ("amount_minor", "text"), [(-1, "-0.01"), (-100, "-1.00"), (0, "0.00"), (1, "0.01"), (123_456, "1234.56")]
)
def test_minor_text__two_decimals_and_the_sign(amount_minor, text) -> None:
    assert minor_text(amount_minor) == text
