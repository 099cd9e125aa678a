"""The ten invariants of spec.md#invariants: each full form holds on real ledgers and catches a
tampered one (a tampered ledger, stored account or stored payouts), and each inductive contract on
`fold` raises when fed an entry, a lookup (or a kernel bug) that breaks it.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterator

import attrs
import icontract
import pytest

from ppk.kernel import contracts, transitions
from ppk.kernel.contracts import FULL_INVARIANTS, broken_invariants_over
from ppk.kernel.state import (
    AMOUNT_MINOR_MAX,
    NOTHING_RECORDED,
    Account,
    AccountOpened,
    Applied,
    BalanceRecorded,
    Code,
    ConfirmPayout,
    Entry,
    Event,
    Fund,
    Funded,
    Lookup,
    LossOpened,
    LossWrittenOff,
    OpenAccount,
    Payout,
    PayoutConfirmed,
    PayoutStatus,
    ProfitWithdrawn,
    RecordBalance,
    Refused,
    SetShares,
    Settle,
    Settled,
    SharesSet,
)
from ppk.kernel.transitions import execute, fold

JAN_5 = datetime.date(2026, 1, 5)
JAN_12 = datetime.date(2026, 1, 12)

# --- Scenarios: real ledgers, driven through decide ----------------------------------------------


def worked_example(book) -> None:
    """docs/spec.md#worked-examples: two payments, a refused overpayment, a profit and its payout."""
    book.open_account("c1", 100, 900)
    book.fund("c2", 100_000)
    book.record_balance("c3", 90_000, JAN_5)
    book.settle("c4", 400)
    book.settle("c4", 400)
    book.settle("c5", 700)
    book.settle("c5", 700)
    book.settle("c6", 600)
    book.record_balance("c7", 120_000, JAN_12)
    book.confirm_payout("c8", "acme:c7")


def active_loss_after_partial_payments(book) -> None:
    """An uneven share (18.75 %), partial payments, funding during the loss, refusals of each kind."""
    book.open_account("o1", 375, 1_500)
    book.fund("f1", 100_000)
    book.record_balance("b1", 99_000, JAN_5)
    book.settle("s1", 7)
    book.settle("s2", 13)
    book.fund("f2", 5_000)
    book.record_balance("b2", 200_000)
    book.settle("s3", 10_000)
    book.set_shares("h1", 0, 10_000)
    book.confirm_payout("p1", "acme:b1")


def write_offs_and_several_losses(book) -> None:
    """Losses written off (0 %, and too small), a loss paid in full, a stale record, payouts twice."""
    book.open_account("o1", 0, 0)
    book.fund("f1", 100_000)
    book.record_balance("b1", 90_000, JAN_5)
    book.set_shares("h1", 100, 900)
    book.record_balance("b2", 89_991)
    book.record_balance("b3", 80_000, JAN_12)
    book.settle("s1", 999)
    book.record_balance("b4", 85_000, JAN_5)
    book.record_balance("b5", 85_000, JAN_12)
    book.confirm_payout("p1", "acme:b5")
    book.confirm_payout("p2", "acme:b5")
    book.confirm_payout("p3", "acme:b4")


def limits_reached(book) -> None:
    """Funding and profit withdrawn at exactly the limit, and the refusals one past it."""
    book.open_account("o1", 10_000, 0)
    book.record_balance("b1", AMOUNT_MINOR_MAX)
    book.record_balance("b2", 1)
    book.fund("f1", AMOUNT_MINOR_MAX)
    book.fund("f2", 1)
    book.record_balance("b3", 0)
    book.settle("s1", AMOUNT_MINOR_MAX)


SCENARIOS = [
    worked_example,
    active_loss_after_partial_payments,
    write_offs_and_several_losses,
    limits_reached,
]

FULL_FORMS = contracts.FULL_INVARIANTS


def sorted_payouts(payouts: dict[str, Payout]) -> list[Payout]:
    """Payouts by id, as a store lists them."""
    return [payouts[payout_id] for payout_id in sorted(payouts)]


def replayed(entries: list[Entry]) -> tuple[Account | None, list[Payout]]:
    """The account and the payouts a ledger replays to, as a store would keep them."""
    account, payouts = transitions.replay_with_payouts(entries)
    return account, sorted_payouts(payouts)


def with_lookups(entries: list[Entry]) -> Iterator[tuple[Entry, Lookup]]:
    """Each entry of a ledger (whose ids are unique) with the lookup a store gives its command: the id
    free, and for a confirmation the payout it names as the earlier entries wrote it."""
    payouts: dict[str, Payout] = {}
    for entry in entries:
        named = transitions.payout_looked_up(entry.command)
        yield entry, (NOTHING_RECORDED if named is None else Lookup(payout=payouts.get(named)))
        payouts.update((payout.id, payout) for payout in transitions.payouts_written(entry))


def test_full_forms__one_per_invariant_in_spec_order() -> None:
    assert list(FULL_INVARIANTS) == [f"I{number}" for number in range(1, 11)]
    assert list(FULL_FORMS) == list(FULL_INVARIANTS)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario.__name__)
@pytest.mark.parametrize("invariant", list(FULL_FORMS))
def test_full_form__holds_over_a_real_ledger(book, scenario, invariant) -> None:
    scenario(book)
    ledger, account, payouts = book.ledger(), book.account(), book.payouts()
    assert FULL_FORMS[invariant](ledger, account, payouts)
    assert FULL_INVARIANTS[invariant](ledger, account, payouts)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario.__name__)
def test_full_form__every_prefix_of_a_real_ledger_breaks_nothing(book, scenario) -> None:
    scenario(book)
    ledger = book.ledger()
    assert len(ledger) > 5
    for end in range(len(ledger) + 1):
        prefix = ledger[:end]
        assert broken_invariants_over(prefix, *replayed(prefix)) == []


def test_full_form__empty_ledger_has_no_account() -> None:
    assert broken_invariants_over([], None, []) == []
    assert contracts.FULL_INVARIANTS["I1"]([], None, [])


# --- Tampered ledgers and accounts: each built to break one invariant ---------------------------


def replay_unchecked(entries: list[Entry]) -> tuple[Account, list[Payout]]:
    """The account and payouts a (tampered) ledger folds into, without fold's contracts: the stored
    account and payouts agree with their ledger, so only what the ledger itself breaks is reported."""
    account = None
    payouts: dict[str, Payout] = {}
    for entry, lookup in with_lookups(entries):
        account = fold.__wrapped__(account, entry, lookup)
        payouts.update((payout.id, payout) for payout in transitions.payouts_written(entry))
    assert account is not None
    return account, sorted_payouts(payouts)


def worked(book) -> tuple[list[Entry], Account, list[Payout]]:
    worked_example(book)
    return list(book.ledger()), book.account(), book.payouts()


def with_events(entry: Entry, *events: Event) -> Applied:
    assert isinstance(entry, Applied)
    return attrs.evolve(entry, events=events)


def entry_of(ledger: list[Entry], command_id: str) -> Entry:
    (entry,) = [entry for entry in ledger if entry.command.id == command_id]
    return entry


def opened_and_funded() -> list[Entry]:
    """A ledger: acme opened with 1 % + 9 %, then ₹1000 funded."""
    return [
        Applied(
            command=OpenAccount(id="o1", account="acme", my_share_bp=100, company_share_bp=900),
            events=(AccountOpened(my_share_bp=100, company_share_bp=900),),
        ),
        Applied(
            command=Fund(id="f1", account="acme", amount_minor=100_000),
            events=(Funded(amount_minor=100_000),),
        ),
    ]


def record(command_id: str, balance_minor: int, *events: Event) -> Applied:
    return Applied(
        command=RecordBalance(id=command_id, account="acme", balance_minor=balance_minor), events=events
    )


def loss_opened(opened_by: str, capital_minor: int, balance_minor: int) -> LossOpened:
    return LossOpened(
        opened_by=opened_by,
        capital_minor=capital_minor,
        balance_minor=balance_minor,
        original_minor=capital_minor - balance_minor,
        my_share_bp=100,
        company_share_bp=900,
    )


def test_i1__stored_capital_that_disagrees_with_the_ledger_is_caught(book) -> None:
    ledger, account, payouts = worked(book)
    assert broken_invariants_over(
        ledger, attrs.evolve(account, capital_minor=account.capital_minor + 1), payouts
    ) == ["I1"]
    assert broken_invariants_over(
        ledger, attrs.evolve(account, funding_minor=account.funding_minor - 1), payouts
    ) == ["I1"]


def test_i2__capital_closed_past_funding_is_caught() -> None:
    # ₹1 funded, a loss of ₹2 written off: capital is −₹1, which is also a negative amount (I10).
    ledger = [
        *opened_and_funded()[:1],
        Applied(command=Fund(id="f1", account="acme", amount_minor=100), events=(Funded(amount_minor=100),)),
        record(
            "b1",
            0,
            BalanceRecorded(balance_minor=-100, capital_minor=100, date=None),
            loss_opened("b1", 100, -100),
            LossWrittenOff(loss="b1", capital_closed_minor=200),
        ),
    ]
    assert not contracts.FULL_INVARIANTS["I2"](ledger, None, [])
    assert broken_invariants_over(ledger, *replay_unchecked(ledger)) == ["I2", "I10"]


def test_i3__two_losses_opened_at_once_are_caught() -> None:
    ledger = [
        *opened_and_funded(),
        record(
            "b1",
            90_000,
            BalanceRecorded(balance_minor=90_000, capital_minor=100_000, date=None),
            loss_opened("b1", 100_000, 90_000),
            loss_opened("b1", 100_000, 90_000),
        ),
    ]
    assert broken_invariants_over(ledger, *replay_unchecked(ledger)) == ["I3"]


def test_i3__a_second_loss_opened_while_one_is_active_is_caught() -> None:
    # The first loss is abandoned with its remaining unpaid, so its accounting breaks too (I9).
    ledger = [
        *opened_and_funded(),
        record(
            "b1",
            90_000,
            BalanceRecorded(balance_minor=90_000, capital_minor=100_000, date=None),
            loss_opened("b1", 100_000, 90_000),
        ),
        record(
            "b2",
            80_000,
            BalanceRecorded(balance_minor=80_000, capital_minor=100_000, date=None),
            loss_opened("b2", 100_000, 80_000),
        ),
    ]
    assert broken_invariants_over(ledger, *replay_unchecked(ledger)) == ["I3", "I9"]


def test_i3__capital_closed_without_a_loss_is_caught(book) -> None:
    ledger, _, _ = worked(book)
    c2 = entry_of(ledger, "c2")
    tampered = [
        *ledger[:1],
        with_events(c2, Funded(amount_minor=100_000), LossWrittenOff(loss="c1", capital_closed_minor=0)),
    ]
    assert not contracts.FULL_INVARIANTS["I3"](tampered, None, [])


def test_i4__a_loss_with_balance_above_capital_is_caught() -> None:
    # With a positive remaining, I5 implies I4: breaking I4 over the ledger breaks I5 too.
    ledger = [
        *opened_and_funded(),
        record(
            "b1",
            110_000,
            BalanceRecorded(balance_minor=110_000, capital_minor=100_000, date=None),
            attrs.evolve(loss_opened("b1", 100_000, 110_000), original_minor=10_000),
        ),
    ]
    assert not contracts.FULL_INVARIANTS["I4"](ledger, None, [])
    assert broken_invariants_over(ledger, *replay_unchecked(ledger)) == ["I4", "I5"]


def test_i5__a_loss_that_goes_unrecorded_is_caught() -> None:
    ledger = [
        *opened_and_funded(),
        record("b1", 90_000, BalanceRecorded(balance_minor=90_000, capital_minor=100_000, date=None)),
    ]
    assert broken_invariants_over(ledger, *replay_unchecked(ledger)) == ["I5"]


def test_i5__profit_that_lingers_is_caught(book) -> None:
    ledger, account, payouts = worked(book)
    c7 = entry_of(ledger, "c7")
    assert isinstance(c7, Applied)
    tampered = [with_events(c7, c7.events[0]) if entry is c7 else entry for entry in ledger]
    stored = attrs.evolve(account, balance_minor=120_000)
    assert "I5" in broken_invariants_over(tampered, stored, payouts)
    assert broken_invariants_over(ledger, stored, payouts) == ["I5"]


def test_i6__a_settlement_whose_shares_do_not_add_up_is_caught(book) -> None:
    ledger, _, _ = worked(book)
    c6 = entry_of(ledger, "c6")
    assert isinstance(c6, Applied)
    (settled,) = c6.events
    assert isinstance(settled, Settled)
    tampered = [
        with_events(c6, attrs.evolve(settled, my_share_minor=61)) if entry is c6 else entry
        for entry in ledger
    ]
    assert broken_invariants_over(tampered, *replay_unchecked(tampered)) == ["I6"]


def test_i6__stored_share_totals_that_disagree_with_the_ledger_are_caught(book) -> None:
    ledger, account, payouts = worked(book)
    stored = attrs.evolve(
        account, my_share_minor=account.my_share_minor + 1, payments_minor=account.payments_minor + 1
    )
    assert broken_invariants_over(ledger, stored, payouts) == ["I6"]


def test_i7__a_profit_withdrawn_with_no_payout_is_caught(book) -> None:
    ledger, account, payouts = worked(book)
    assert [payout.id for payout in payouts] == ["acme:c7"]
    assert broken_invariants_over(ledger, account, []) == ["I7"]


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"amount_minor": 29_999}, id="another_amount"),
        pytest.param({"status": PayoutStatus.PENDING}, id="pending_though_confirmed"),
        pytest.param({"id": "acme:c6"}, id="another_id"),
    ],
)
def test_i7__a_stored_payout_that_disagrees_with_the_ledger_is_caught(book, changes) -> None:
    ledger, account, payouts = worked(book)
    (payout,) = payouts
    assert broken_invariants_over(ledger, account, [attrs.evolve(payout, **changes)]) == ["I7"]


def test_i7__a_stored_payout_no_withdrawal_made_is_caught(book) -> None:
    ledger, account, payouts = worked(book)
    extra = Payout(id="acme:c6", amount_minor=1, status=PayoutStatus.PENDING)
    assert broken_invariants_over(ledger, account, [extra, *payouts]) == ["I7"]
    assert broken_invariants_over(ledger, account, [*payouts, *payouts]) == ["I7"]


@pytest.mark.parametrize(
    "counter", ["payout_count", "payout_confirmed_count", "payout_confirmed_minor", "profit_withdrawn_minor"]
)
@pytest.mark.parametrize("step", [1, -1])
def test_i7__stored_payout_counters_that_disagree_with_the_ledger_are_caught(book, counter, step) -> None:
    ledger, account, payouts = worked(book)
    stored = attrs.evolve(account, **{counter: getattr(account, counter) + step})
    assert broken_invariants_over(ledger, stored, payouts) == ["I7"]


def test_i7__a_withdrawal_under_a_payout_id_not_its_own_is_caught() -> None:
    ledger = [
        *opened_and_funded(),
        record(
            "b1",
            120_000,
            BalanceRecorded(balance_minor=120_000, capital_minor=100_000, date=None),
            ProfitWithdrawn(payout_id="acme:b2", amount_minor=20_000),
        ),
    ]
    account, payouts = replay_unchecked(ledger)
    assert [payout.id for payout in payouts] == ["acme:b2"]
    assert broken_invariants_over(ledger, account, payouts) == ["I7"]


def test_i7__a_confirmation_of_another_amount_than_its_payouts_is_caught(book) -> None:
    ledger, _, _ = worked(book)
    c8 = entry_of(ledger, "c8")
    tampered = [
        with_events(c8, PayoutConfirmed(payout_id="acme:c7", amount_minor=29_999)) if entry is c8 else entry
        for entry in ledger
    ]
    assert broken_invariants_over(tampered, *replay_unchecked(tampered)) == ["I7"]


def test_i7__a_payout_confirmed_twice_is_caught(book) -> None:
    ledger, _, _ = worked(book)
    twice = Applied(
        command=ConfirmPayout(id="c9", account="acme", payout="acme:c7"),
        events=(PayoutConfirmed(payout_id="acme:c7", amount_minor=30_000),),
    )
    tampered = [*ledger, twice]
    assert broken_invariants_over(tampered, *replay_unchecked(tampered)) == ["I7"]


def test_i7__a_second_withdrawal_under_an_existing_payout_id_is_caught(book) -> None:
    ledger, _, _ = worked(book)
    again = record(
        "c9",
        95_000,
        BalanceRecorded(balance_minor=95_000, capital_minor=90_000, date=None),
        ProfitWithdrawn(payout_id="acme:c7", amount_minor=5_000),
    )
    tampered = [*ledger, again]
    assert broken_invariants_over(tampered, *replay_unchecked(tampered)) == ["I7"]


def test_i7__payouts_that_do_not_sum_to_profit_withdrawn_are_caught(book) -> None:
    ledger, account, payouts = worked(book)
    stored = attrs.evolve(account, profit_withdrawn_minor=account.profit_withdrawn_minor + 1)
    assert broken_invariants_over(ledger, stored, payouts) == ["I7"]


def test_i8__a_command_id_twice_in_the_ledger_is_caught(book) -> None:
    ledger, _, _ = worked(book)
    reused = Applied(
        command=SetShares(id="c2", account="acme", my_share_bp=100, company_share_bp=900),
        events=(SharesSet(my_share_bp=100, company_share_bp=900),),
    )
    tampered = [*ledger, reused]
    assert broken_invariants_over(tampered, *replay_unchecked(tampered)) == ["I8"]


@pytest.mark.parametrize("step", [1, -1])
def test_i8__a_stored_entry_count_that_disagrees_with_the_ledger_is_caught(book, step) -> None:
    ledger, account, payouts = worked(book)
    assert account.entry_count == len(ledger) == 8
    stored = attrs.evolve(account, entry_count=account.entry_count + step)
    assert broken_invariants_over(ledger, stored, payouts) == ["I8"]


def test_i8__an_entry_dropped_from_the_ledger_is_caught(book) -> None:
    ledger, account, payouts = worked(book)
    c5 = entry_of(ledger, "c5")
    assert isinstance(c5, Refused)
    assert broken_invariants_over([entry for entry in ledger if entry is not c5], account, payouts) == ["I8"]


def test_i8__an_entry_of_another_account_in_the_ledger_is_caught(book) -> None:
    ledger, _, _ = worked(book)
    stray = Refused(command=Settle(id="c9", account="beta", payment_minor=1), code=Code.NO_ACTIVE_LOSS)
    tampered = [*ledger, stray]
    assert broken_invariants_over(tampered, *replay_unchecked(tampered)) == ["I8"]


def test_i8__a_refusal_reworded_is_the_same_entry(book) -> None:
    # A refusal is its code (spec.md#storage): its words are not stored, so rewording them is no change.
    ledger, account, payouts = worked(book)
    c5 = entry_of(ledger, "c5")
    assert isinstance(c5, Refused)
    reworded = attrs.evolve(c5, message="something else")
    assert reworded == c5
    tampered = [reworded if entry is c5 else entry for entry in ledger]
    assert broken_invariants_over(tampered, account, payouts) == []


def test_i9__a_settlement_of_a_loss_never_opened_is_caught(book) -> None:
    ledger, account, payouts = worked(book)
    c4 = entry_of(ledger, "c4")
    assert isinstance(c4, Applied)
    (settled,) = c4.events
    paid_other = with_events(c4, attrs.evolve(settled, loss="c9"))
    tampered = [paid_other if entry is c4 else entry for entry in ledger]
    assert broken_invariants_over(tampered, account, payouts) == ["I9"]


def test_i9__a_stored_loss_never_opened_is_caught(book) -> None:
    active_loss_after_partial_payments(book)
    ledger, account = book.ledger(), book.account()
    assert account.loss is not None
    renamed = [
        with_events(
            entry,
            *(
                attrs.evolve(event, opened_by="zz") if isinstance(event, LossOpened) else event
                for event in entry.events
            ),
        )
        if isinstance(entry, Applied) and entry.command.id == "b1"
        else entry
        for entry in ledger
    ]
    assert not contracts.FULL_INVARIANTS["I9"](renamed, account, [])


def test_i10__an_amount_over_the_limit_is_caught(book) -> None:
    ledger, _, _ = worked(book)
    huge = Applied(
        command=Fund(id="c9", account="acme", amount_minor=1),
        events=(Funded(amount_minor=AMOUNT_MINOR_MAX + 1),),
    )
    tampered = [*ledger, huge]
    assert broken_invariants_over(tampered, *replay_unchecked(tampered)) == ["I10"]


def test_i10__a_negative_balance_is_caught() -> None:
    ledger = [
        *opened_and_funded(),
        record(
            "b1",
            0,
            BalanceRecorded(balance_minor=-5, capital_minor=100_000, date=None),
            loss_opened("b1", 100_000, -5),
        ),
    ]
    assert broken_invariants_over(ledger, *replay_unchecked(ledger)) == ["I10"]


# --- The inductive contracts on fold -------------------------------------------------------------


def broken_fold_contracts(
    account: Account | None, entry: Entry, lookup: Lookup = NOTHING_RECORDED
) -> list[str]:
    """The descriptions of fold's postconditions that the unchecked fold of `entry` breaks."""
    result = fold.__wrapped__(account, entry, lookup)
    return sorted(name for name, holds in contracts.FOLD_ENSURES if not holds(account, entry, lookup, result))


def assert_only_contract_breaks(
    account: Account | None, entry: Entry, description: str, lookup: Lookup = NOTHING_RECORDED
) -> None:
    assert broken_fold_contracts(account, entry, lookup) == [description]
    with pytest.raises(icontract.ViolationError, match=f"(?m)^{re.escape(description)}: "):
        fold(account, entry, lookup)


def test_fold__every_invariant_has_a_contract() -> None:
    descriptions = {name for name, _ in contracts.FOLD_ENSURES}
    assert descriptions == {
        "I1",
        "I1, step",
        "I2",
        "I3",
        "I4",
        "I5",
        "I6",
        "I6, step",
        "I7",
        "I7, step",
        "I8, step",
        "I8: a refusal records only its id",
        "I9",
        "I10",
        "shares are percentages",
    }


def funded(book) -> Account:
    book.open_account("o1", 100, 900)
    book.fund("f1", 100_000)
    return book.account()


def with_loss(book) -> Account:
    funded(book)
    book.record_balance("b1", 90_000)
    return book.account()


def with_payout(book) -> Account:
    funded(book)
    book.record_balance("b1", 120_000)
    return book.account()


def harmless(command_id: str = "h1") -> Applied:
    return Applied(
        command=SetShares(id=command_id, account="acme", my_share_bp=100, company_share_bp=900),
        events=(SharesSet(my_share_bp=100, company_share_bp=900),),
    )


def test_fold__i1_stored_capital_off_its_totals_raises(book) -> None:
    account = funded(book)
    tampered = attrs.evolve(
        account, capital_minor=account.capital_minor + 1, balance_minor=account.balance_minor + 1
    )
    assert_only_contract_breaks(tampered, harmless(), "I1")


def funds_twice(real: Callable[[Account, tuple[Event, ...]], Account]) -> Callable[..., Account]:
    """A kernel bug in fold: Funded counted twice, consistently everywhere but against its event."""

    def after(account: Account, events: tuple[Event, ...]) -> Account:
        funded = tuple(event for event in events if isinstance(event, Funded))
        return attrs.evolve(real(account, events + funded), entry_count=account.entry_count + 1)

    return after


def test_fold__i1_step_totals_that_move_unlike_the_events_raise(book, monkeypatch) -> None:
    account = funded(book)
    monkeypatch.setattr(transitions, "_after", funds_twice(transitions._after))
    entry = Applied(command=Fund(id="f2", account="acme", amount_minor=10), events=(Funded(amount_minor=10),))
    assert_only_contract_breaks(account, entry, "I1, step")


def test_execute__checks_folds_contracts_in_its_one_call(book, monkeypatch) -> None:
    """execute runs decide and fold without their own wrappers, under one contract of its own that
    checks all of theirs: the same kernel bug is refused, named, by execute."""
    account = funded(book)
    monkeypatch.setattr(transitions, "_after", funds_twice(transitions._after))
    with pytest.raises(
        contracts.ContractBroken, match=r"(?m)^I1, step: a postcondition of execute"
    ) as raised:
        execute(account, Fund(id="f2", account="acme", amount_minor=10), NOTHING_RECORDED)
    assert raised.value.contract == "I1, step"


def test_execute__refuses_what_decide_refuses(book) -> None:
    account = funded(book)
    with pytest.raises(contracts.ContractBroken, match="a precondition of decide") as raised:
        execute(account, Fund(id="f2", account="zeta", amount_minor=10), NOTHING_RECORDED)
    assert raised.value.contract == "the account is the command's"
    recorded = book.store.entry("acme", "f1")
    with pytest.raises(contracts.ContractBroken) as raised:
        execute(None, Fund(id="f1", account="acme", amount_minor=10), Lookup(entry=recorded))
    assert raised.value.contract == "a new account has no history"


def test_execute__an_entry_of_another_command_is_refused(book, monkeypatch) -> None:
    account = funded(book)
    other = Fund(id="f3", account="acme", amount_minor=10)
    monkeypatch.setattr(
        transitions,
        "_decide",
        lambda account, command, lookup: Applied(command=other, events=(Funded(amount_minor=10),)),
    )
    with pytest.raises(contracts.ContractBroken) as raised:
        execute(account, Fund(id="f2", account="acme", amount_minor=10), NOTHING_RECORDED)
    assert raised.value.contract == "the entry records this command"


def test_fold__i2_capital_closed_past_funding_raises(book) -> None:
    book.open_account("o1", 100, 900)
    book.fund("f1", 100)
    account = book.account()
    entry = record(
        "b1",
        0,
        BalanceRecorded(balance_minor=-100, capital_minor=100, date=None),
        loss_opened("b1", 100, -100),
        LossWrittenOff(loss="b1", capital_closed_minor=200),
    )
    # With I1 holding, capital closed past funding is a negative capital: I10 breaks with I2.
    assert broken_fold_contracts(account, entry) == ["I10", "I2"]
    with pytest.raises(icontract.ViolationError, match=r"(?m)^I10: "):
        fold(account, entry, NOTHING_RECORDED)


def test_fold__i3_a_loss_opened_while_one_is_active_raises(book) -> None:
    account = with_loss(book)
    entry = record(
        "b2",
        80_000,
        BalanceRecorded(balance_minor=80_000, capital_minor=100_000, date=None),
        loss_opened("b2", 100_000, 80_000),
    )
    assert_only_contract_breaks(account, entry, "I3")


def test_fold__i4_a_loss_without_capital_above_balance_raises(book) -> None:
    account = funded(book)
    entry = record(
        "b1",
        100_000,
        BalanceRecorded(balance_minor=100_000, capital_minor=100_000, date=None),
        loss_opened("b1", 100_000, 100_000),
    )
    assert_only_contract_breaks(account, entry, "I4")


def test_fold__i5_a_loss_that_goes_unrecorded_raises(book) -> None:
    account = funded(book)
    entry = record("b1", 90_000, BalanceRecorded(balance_minor=90_000, capital_minor=100_000, date=None))
    assert_only_contract_breaks(account, entry, "I5")


def test_fold__i6_stored_share_totals_that_do_not_add_up_raise(book) -> None:
    account = funded(book)
    tampered = attrs.evolve(account, my_share_minor=1)
    assert_only_contract_breaks(tampered, harmless(), "I6")


def test_fold__i6_a_settlement_whose_shares_do_not_add_up_raises(book) -> None:
    account = with_loss(book)
    entry = Applied(
        command=Settle(id="s1", account="acme", payment_minor=100),
        events=(
            Settled(
                loss="b1",
                payment_minor=100,
                capital_closed_minor=1_000,
                my_share_minor=11,
                company_share_minor=90,
            ),
        ),
    )
    assert sorted(broken_fold_contracts(account, entry)) == ["I6", "I6, step"]
    with pytest.raises(icontract.ViolationError, match=r"(?m)^I6(, step)?: "):
        fold(account, entry, NOTHING_RECORDED)


def test_fold__i6_step_settlements_whose_errors_cancel_raise(book) -> None:
    # Totals add up, but neither settlement splits its own payment.
    account = with_loss(book)
    entry = Applied(
        command=Settle(id="s1", account="acme", payment_minor=200),
        events=(
            Settled(
                loss="b1",
                payment_minor=100,
                capital_closed_minor=1_000,
                my_share_minor=11,
                company_share_minor=90,
            ),
            Settled(
                loss="b1",
                payment_minor=100,
                capital_closed_minor=1_000,
                my_share_minor=9,
                company_share_minor=90,
            ),
        ),
    )
    assert_only_contract_breaks(account, entry, "I6, step")


def test_fold__i7_a_second_withdrawal_under_an_existing_payout_id_raises(book) -> None:
    account = with_payout(book)
    entry = record(
        "b2",
        105_000,
        BalanceRecorded(balance_minor=105_000, capital_minor=100_000, date=None),
        ProfitWithdrawn(payout_id="acme:b1", amount_minor=5_000),
    )
    assert_only_contract_breaks(account, entry, "I7, step")


def with_two_payouts(book) -> Account:
    """acme: payout `acme:b1` of ₹200 confirmed, then payout `acme:b2` of ₹200 pending."""
    with_payout(book)
    book.confirm_payout("c1", "acme:b1")
    book.record_balance("b2", 120_000)
    assert [payout.amount_minor for payout in book.payouts()] == [20_000, 20_000]
    return book.account()


def confirmation(payout_id: str, amount_minor: int) -> Applied:
    return Applied(
        command=ConfirmPayout(id="c9", account="acme", payout=payout_id),
        events=(PayoutConfirmed(payout_id=payout_id, amount_minor=amount_minor),),
    )


def test_fold__i7_a_payout_confirmed_twice_raises(book) -> None:
    # Two payouts of the same amount: confirming the first again keeps every count and sum
    # consistent, so only the step contract can see that the payout looked up is not pending.
    account = with_two_payouts(book)
    confirmed = Lookup(payout=book.payout("acme:b1"))
    assert confirmed.payout is not None and confirmed.payout.status is PayoutStatus.CONFIRMED
    assert_only_contract_breaks(account, confirmation("acme:b1", 20_000), "I7, step", confirmed)


def test_fold__i7_a_confirmation_of_a_payout_not_looked_up_raises(book) -> None:
    account = with_payout(book)
    assert_only_contract_breaks(account, confirmation("acme:b1", 20_000), "I7, step", NOTHING_RECORDED)


def test_fold__i7_a_confirmation_of_another_amount_than_its_payouts_raises(book) -> None:
    # Two pending payouts, so that the counts and sums stay consistent after the confirmation.
    with_payout(book)
    book.record_balance("b2", 120_000)
    account = book.account()
    pending = Lookup(payout=book.payout("acme:b1"))
    assert_only_contract_breaks(account, confirmation("acme:b1", 19_999), "I7, step", pending)


def test_fold__i7_a_confirmation_naming_another_payout_than_looked_up_raises(book) -> None:
    account = with_two_payouts(book)
    entry = Applied(
        command=ConfirmPayout(id="c9", account="acme", payout="acme:b2"),
        events=(PayoutConfirmed(payout_id="acme:b1", amount_minor=20_000),),
    )
    assert_only_contract_breaks(account, entry, "I7, step", Lookup(payout=book.payout("acme:b2")))


def test_fold__i7_payout_counters_that_disagree_raise(book) -> None:
    account = with_payout(book)
    tampered = attrs.evolve(account, payout_confirmed_count=account.payout_count + 1)
    assert_only_contract_breaks(tampered, harmless(), "I7")


def test_fold__i8_a_command_id_used_twice_raises(book) -> None:
    account = funded(book)
    recorded = book.store.entry("acme", "f1")
    assert recorded is not None
    assert_only_contract_breaks(account, harmless("f1"), "I8, step", Lookup(entry=recorded))


def test_fold__i8_an_entry_that_is_not_counted_raises(book, monkeypatch) -> None:
    account = funded(book)

    real = transitions._after

    def uncounting(account: Account, events: tuple[Event, ...]) -> Account:
        """A kernel bug: an entry is folded but the ledger's count does not grow."""
        return attrs.evolve(real(account, events), entry_count=account.entry_count)

    monkeypatch.setattr(transitions, "_after", uncounting)
    assert_only_contract_breaks(account, harmless(), "I8, step")


def test_fold__i8_a_refusal_that_changes_more_than_its_record_raises(book, monkeypatch) -> None:
    account = funded(book)
    refused = Refused(
        command=Settle(id="s1", account="acme", payment_minor=1), code=Code.NO_ACTIVE_LOSS, message="x"
    )

    real = transitions._after

    def leaky(account: Account, events: tuple[Event, ...]) -> Account:
        """A kernel bug: recording a refusal (no events) also moves the latest balance date."""
        after = real(account, events)
        return after if events else attrs.evolve(after, balance_date_latest=JAN_12)

    monkeypatch.setattr(transitions, "_after", leaky)
    assert_only_contract_breaks(account, refused, "I8: a refusal records only its id")


def test_fold__i9_a_loss_whose_parts_do_not_add_up_raises(book) -> None:
    account = with_loss(book)
    assert account.loss is not None
    tampered = attrs.evolve(account, loss=attrs.evolve(account.loss, capital_closed_minor=1))
    assert_only_contract_breaks(tampered, harmless(), "I9")


def test_fold__i10_a_negative_balance_raises(book) -> None:
    account = funded(book)
    entry = record(
        "b1",
        0,
        BalanceRecorded(balance_minor=-5, capital_minor=100_000, date=None),
        loss_opened("b1", 100_000, -5),
    )
    assert_only_contract_breaks(account, entry, "I10")


def test_fold__i10_an_amount_over_the_limit_raises(book) -> None:
    account = funded(book)
    entry = Applied(
        command=Fund(id="f2", account="acme", amount_minor=1), events=(Funded(amount_minor=AMOUNT_MINOR_MAX),)
    )
    assert_only_contract_breaks(account, entry, "I10")


def test_fold__shares_over_100_percent_raise(book) -> None:
    account = funded(book)
    entry = Applied(
        command=SetShares(id="h1", account="acme", my_share_bp=6_000, company_share_bp=5_000),
        events=(SharesSet(my_share_bp=6_000, company_share_bp=5_000),),
    )
    assert_only_contract_breaks(account, entry, "shares are percentages")


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario.__name__)
def test_fold__every_real_entry_breaks_no_contract(book, scenario) -> None:
    scenario(book)
    account = None
    for entry, lookup in with_lookups(book.ledger()):
        assert broken_fold_contracts(account, entry, lookup) == []
        account = fold(account, entry, lookup)
    assert account == book.account()
