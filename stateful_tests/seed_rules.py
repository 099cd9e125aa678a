"""Known-bad twins: the seed's rounding rules, with the kernel's contracts, for CrossHair to refute.

Each function here is what `seed/partial-payments-v10.md` computes, in the kernel's integer units and
under the same preconditions and postconditions as its correct twin in `ppk.kernel.transitions`.
CrossHair must find a counterexample for the named condition (spec.md#e1, spec.md#e4): if it ever
confirms one of these, the check that proves the kernel's lemmas has lost its teeth.
"""

from __future__ import annotations

import icontract

from ppk.kernel.state import AMOUNT_MINOR_MAX, BP_PER_WHOLE


def _payable_minor(remaining_minor: int, total_share_bp: int) -> int:
    """spec.md#rounding: payable(L) = ⌊L · t / 10 000⌋, as in the kernel."""
    return remaining_minor * total_share_bp // BP_PER_WHOLE


@icontract.require(lambda total_share_bp: 0 < total_share_bp <= BP_PER_WHOLE)
@icontract.require(lambda remaining_minor: 0 < remaining_minor <= AMOUNT_MINOR_MAX)
@icontract.require(
    lambda payment_minor, remaining_minor, total_share_bp: (
        0 < payment_minor < _payable_minor(remaining_minor, total_share_bp)
    )
)
@icontract.ensure(lambda result, remaining_minor: result < remaining_minor, "E4: never over-closes")
@icontract.ensure(
    lambda result, remaining_minor, total_share_bp: (
        _payable_minor(remaining_minor - result, total_share_bp) > 0
    ),
    "E4: no stuck loss",
)
def capital_closed_half_up_minor(payment_minor: int, remaining_minor: int, total_share_bp: int) -> int:
    """spec.md#e4, the seed's rule: ROUND_HALF_UP of p · 10 000 / t; leaves (16, 1875 bp, 2) stuck."""
    return (2 * payment_minor * BP_PER_WHOLE + total_share_bp) // (2 * total_share_bp)


@icontract.require(lambda capital_closed_minor: 0 < capital_closed_minor <= AMOUNT_MINOR_MAX)
@icontract.require(lambda my_share_bp: my_share_bp >= 0)
@icontract.require(lambda company_share_bp: company_share_bp >= 0)
@icontract.require(lambda my_share_bp, company_share_bp: 0 < my_share_bp + company_share_bp <= BP_PER_WHOLE)
@icontract.ensure(
    lambda result, capital_closed_minor: result[0] + result[1] == capital_closed_minor,
    "E1: shares add up to capital closed",
)
def shares_of_capital_closed_minor(
    capital_closed_minor: int, my_share_bp: int, company_share_bp: int
) -> tuple[int, int]:
    """spec.md#e1, the seed's rule: each share is its percentage of capital closed, not of the payment."""
    my_minor = capital_closed_minor * my_share_bp // BP_PER_WHOLE
    company_minor = capital_closed_minor * company_share_bp // BP_PER_WHOLE
    return my_minor, company_minor
