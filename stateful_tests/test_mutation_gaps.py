"""The lemmas of spec.md#rounding and spec.md#split hold to their domain, as properties.

Each lemma computes its formula on every argument inside its domain and raises `ViolationError` on
every argument outside it. Mutation testing (docs/verification.md#mutation-score) found the domain
unpinned: a precondition could be weakened and no test noticed, because every caller stays inside.
It also found what the machines never reach, or reach by chance: commands a backend builds at the
edges of their fields, and the full forms over no account at all.
"""

from __future__ import annotations

import icontract
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ppk.adapters import jsonl
from ppk.adapters.store import MemoryStore
from ppk.kernel import contracts
from ppk.kernel.state import (
    AMOUNT_MINOR_MAX,
    BP_PER_WHOLE,
    PAYOUT_CHARS_MAX,
    Command,
    ConfirmPayout,
    OpenAccount,
    Payout,
    PayoutStatus,
    SetShares,
)
from ppk.kernel.transitions import capital_closed_minor, my_share_minor, payable_minor
from ppk.stateful_tests.reference import ReferenceBook


def near(*edges: int) -> st.SearchStrategy[int]:
    """Integers at and next to each edge: where a precondition's boundary lies."""
    return st.one_of(*(st.integers(edge - 2, edge + 2) for edge in edges))


AMOUNTS_MINOR = st.one_of(near(0, AMOUNT_MINOR_MAX), st.integers(-AMOUNT_MINOR_MAX, 2 * AMOUNT_MINOR_MAX))
SHARES_BP = st.one_of(
    near(0, 3, BP_PER_WHOLE // 2, BP_PER_WHOLE), st.integers(-BP_PER_WHOLE, 2 * BP_PER_WHOLE)
)


@given(remaining_minor=AMOUNTS_MINOR, total_share_bp=SHARES_BP)
@example(remaining_minor=0, total_share_bp=1_000)
@example(remaining_minor=AMOUNT_MINOR_MAX + 1, total_share_bp=100)
@example(remaining_minor=1_000, total_share_bp=-1)
@example(remaining_minor=0, total_share_bp=-1)
@example(remaining_minor=AMOUNT_MINOR_MAX, total_share_bp=BP_PER_WHOLE)
@example(remaining_minor=1_000, total_share_bp=BP_PER_WHOLE + 1)
def test_payable_minor__is_the_formula_inside_its_domain_and_refused_outside(
    remaining_minor: int, total_share_bp: int
) -> None:
    """spec.md#rounding: payable(L) = ⌊L · t / 10 000⌋ for 0 ≤ L ≤ limit and 0 ≤ t ≤ 100 %."""
    if 0 <= remaining_minor <= AMOUNT_MINOR_MAX and 0 <= total_share_bp <= BP_PER_WHOLE:
        assert (
            payable_minor(remaining_minor, total_share_bp) == remaining_minor * total_share_bp // BP_PER_WHOLE
        )
    else:
        with pytest.raises(icontract.ViolationError):
            payable_minor(remaining_minor, total_share_bp)


@given(payment_minor=AMOUNTS_MINOR, remaining_minor=AMOUNTS_MINOR, total_share_bp=SHARES_BP)
@example(payment_minor=1, remaining_minor=AMOUNT_MINOR_MAX + 1, total_share_bp=BP_PER_WHOLE)
@example(payment_minor=1, remaining_minor=1_000, total_share_bp=0)
@example(payment_minor=1, remaining_minor=1_000, total_share_bp=BP_PER_WHOLE + 1)
@example(payment_minor=0, remaining_minor=1_000, total_share_bp=1_000)
@example(payment_minor=100, remaining_minor=1_000, total_share_bp=1_000)
@example(payment_minor=99, remaining_minor=1_000, total_share_bp=1_000)
@example(payment_minor=1, remaining_minor=AMOUNT_MINOR_MAX, total_share_bp=BP_PER_WHOLE)
# The whole payable, where ⌊p · 10 000 / t⌋ leaves a loss that still owes: outside, as E4 requires.
@example(payment_minor=2, remaining_minor=4, total_share_bp=7_000)
def test_capital_closed_minor__is_the_formula_inside_its_domain_and_refused_outside(
    payment_minor: int, remaining_minor: int, total_share_bp: int
) -> None:
    """spec.md#rounding: ⌊p · 10 000 / t⌋ for 0 < t ≤ 100 %, 0 < L ≤ limit and 0 < p < payable(L)."""
    inside = 0 < total_share_bp <= BP_PER_WHOLE and 0 < remaining_minor <= AMOUNT_MINOR_MAX
    if inside and 0 < payment_minor < remaining_minor * total_share_bp // BP_PER_WHOLE:
        closed_minor = capital_closed_minor(payment_minor, remaining_minor, total_share_bp)
        assert closed_minor == payment_minor * BP_PER_WHOLE // total_share_bp
    else:
        with pytest.raises(icontract.ViolationError):
            capital_closed_minor(payment_minor, remaining_minor, total_share_bp)


@given(payment_minor=AMOUNTS_MINOR, my_share_bp=SHARES_BP, company_share_bp=SHARES_BP)
@example(payment_minor=0, my_share_bp=100, company_share_bp=900)
@example(payment_minor=AMOUNT_MINOR_MAX + 1, my_share_bp=100, company_share_bp=900)
@example(payment_minor=AMOUNT_MINOR_MAX, my_share_bp=100, company_share_bp=9_900)
@example(payment_minor=1, my_share_bp=3, company_share_bp=-1)
@example(payment_minor=1, my_share_bp=-1, company_share_bp=3)
@example(payment_minor=100, my_share_bp=0, company_share_bp=0)
@example(payment_minor=100, my_share_bp=5_000, company_share_bp=5_001)
def test_my_share_minor__is_the_formula_inside_its_domain_and_refused_outside(
    payment_minor: int, my_share_bp: int, company_share_bp: int
) -> None:
    """spec.md#split: my = ⌊p · my / t⌋ for 0 < p ≤ limit, shares ≥ 0 and 0 < t ≤ 100 %."""
    total_share_bp = my_share_bp + company_share_bp
    inside = 0 < payment_minor <= AMOUNT_MINOR_MAX and my_share_bp >= 0 and company_share_bp >= 0
    if inside and 0 < total_share_bp <= BP_PER_WHOLE:
        assert my_share_minor(payment_minor, my_share_bp, company_share_bp) == (
            payment_minor * my_share_bp // total_share_bp
        )
    else:
        with pytest.raises(icontract.ViolationError):
            my_share_minor(payment_minor, my_share_bp, company_share_bp)


# Commands a backend built without the codec, at the edges the machine's draws may miss: the kernel
# judges ids, payouts and quantities itself (spec.md#readings 9), as the reference judges the same
# command written as a line. The machine's backend commands never build a confirm_payout, and build a
# share of -1 in one draw of 64.
def _confirmation(command_id: str, payout: str) -> Command:
    return ConfirmPayout(id=command_id, account="acme", payout=payout)


def _shares(my_share_bp: int, company_share_bp: int) -> list[Command]:
    return [
        SetShares(id="w2", account="acme", my_share_bp=my_share_bp, company_share_bp=company_share_bp),
        OpenAccount(id="w2", account="beta", my_share_bp=my_share_bp, company_share_bp=company_share_bp),
    ]


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(_confirmation("w2", ""), id="payout_empty"),
        pytest.param(_confirmation("w2", "p" * PAYOUT_CHARS_MAX), id="payout_193"),
        pytest.param(_confirmation("w2", "p" * (PAYOUT_CHARS_MAX + 1)), id="payout_194"),
        pytest.param(_confirmation("w2", "a\x00b"), id="payout_nul"),
        pytest.param(_confirmation("w2", "a\x85"), id="payout_u0085"),
        pytest.param(_confirmation("w2", "\ud800"), id="payout_lone_surrogate"),
        pytest.param(_confirmation("", "acme:w1"), id="id_empty"),
        pytest.param(_confirmation("w\x00", "acme:w1"), id="id_nul"),
        *(
            pytest.param(command, id=f"{type(command).__name__}_{my}_{company}")
            for my, company in ((-1, 0), (0, -1), (BP_PER_WHOLE + 1, 0), (5_000, 5_001), (BP_PER_WHOLE, 0))
            for command in _shares(my, company)
        ),
    ],
)
def test_decide__a_backend_command_is_judged_as_the_reference_judges_its_line(command: Command) -> None:
    store, reference = MemoryStore(), ReferenceBook()
    opening = b'{"id": "w1", "account": "acme", "type": "open_account", "my_share": 10, "company_share": 90}'
    opened = jsonl.decode_line(opening)
    assert not isinstance(opened, jsonl.Malformed)
    store.execute(opened)
    reference.apply_line(opening)
    result = jsonl.decision_result(2, command, store.execute(command))
    expected = reference.apply_line(jsonl.encode_line(jsonl.command_object(command))[:-1])
    assert expected is not None
    # The status, the code, and whether the refusal is recorded under the id (what a retry will get).
    error, expected_error = result.get("error", {}), expected.get("error", {})
    assert (result["status"], error.get("code"), error.get("recorded")) == (
        expected["status"],
        expected_error.get("code"),
        expected_error.get("recorded"),
    )


def test_full_forms__payouts_left_with_no_account_and_no_ledger_break_i7() -> None:
    """spec.md#i7: books with no account and no ledger hold every invariant, unless payouts were left
    behind in the store; the settlement machine only audits accounts that exist."""
    assert contracts.broken_invariants_over((), None, ()) == []
    left = Payout(id="acme:b1", amount_minor=1, status=PayoutStatus.PENDING)
    assert contracts.broken_invariants_over((), None, (left,)) == ["I7"]
