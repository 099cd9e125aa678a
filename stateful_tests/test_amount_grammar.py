"""The codec's amount reader against the amount grammar of spec.md#amount-grammar, written apart from it.

`parse_quantity` (adapters/jsonl.py) reads every amount and percentage at the boundary. Here the
grammar is written again from the spec's words alone — a regular expression and plain arithmetic —
and the two must agree on every text: the same number of hundredths, or both "not an amount", or
both "more digits than any limit". Hypothesis's CrossHair backend drives the texts with an SMT
solver (symbolic strings), and plain Hypothesis drives them from an alphabet around the grammar.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ppk.adapters import jsonl
from ppk.adapters.jsonl import parse_quantity
from ppk.kernel.state import InvalidAmount

GRAMMAR = re.compile(r"[0-9]+(\.[0-9]{1,2})?")
"""spec.md#amount-grammar: ASCII digits, then at most one point and one or two digits."""

DIGITS_MAX = 20
"""More significant whole digits than this is past every limit of spec.md#limits (10^15 has 16)."""

OVER = "over every limit"


def grammar_value(text: str) -> int | str | None:
    """The hundredths a text means by the grammar; OVER if it has too many digits; None if no amount."""
    if not text.isascii() or GRAMMAR.fullmatch(text) is None:
        return None
    whole, _, cents = text.partition(".")
    significant = whole.lstrip("0")
    if len(significant) > DIGITS_MAX:
        return OVER
    value = 0
    for digit in significant + (cents + "00")[:2]:
        value = value * 10 + (ord(digit) - ord("0"))
    return value


def reader_value(text: str) -> int | str | None:
    """What `parse_quantity` says of a text, in the terms of `grammar_value`."""
    read = parse_quantity(text)
    if isinstance(read, InvalidAmount):
        return OVER if read.over_limit else None
    return read


EDGES = ["0", "00.00", "5", "5.", ".5", "5.0", "5.05", "5.055", "+5", "-0", "1e3", " 5", "5 ", "", "٥", "5\n"]


@settings(max_examples=2_000, deadline=None, derandomize=True, database=None)
@given(st.text(alphabet="0123456789.+-e ٥\n", max_size=30))
@example("9" * 21)
@example("0" * 40 + "1.5")
@example("1" + "0" * 20)
def test_amount_grammar__the_reader_agrees_with_the_grammar_near_it(text: str) -> None:
    assert reader_value(text) == grammar_value(text), text


def test_amount_grammar__the_edges_of_the_spec() -> None:
    expected = {"0": 0, "00.00": 0, "5": 500, "5.0": 500, "5.05": 505}
    for text in EDGES:
        assert reader_value(text) == grammar_value(text) == expected.get(text), repr(text)


@settings(
    backend="crosshair",
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(st.text(max_size=24))
def test_amount_grammar__the_solver_finds_no_text_they_disagree_on(text: str) -> None:
    assert reader_value(text) == grammar_value(text)


BAD_READERS = {
    "three decimals": r"([0-9]+)(?:\.([0-9]{1,3}))?",
    "no digit before the point": r"([0-9]*)(?:\.([0-9]{1,2}))?",
    "any Unicode digit": r"(\d+)(?:\.(\d{1,2}))?",
    "a point with no decimals": r"([0-9]+)(?:\.([0-9]{0,2}))?",
}
"""The reader's pattern, each wrong by one rule of the grammar: the solver must tell each one."""

TEETH_ATTEMPTS = 3
"""The solver's search is not deterministic: a wrong reader gets a few runs to be found in."""


@pytest.mark.parametrize("pattern", BAD_READERS.values(), ids=list(BAD_READERS))
def test_teeth__the_solver_finds_a_reader_wrong_by_one_rule(
    monkeypatch: pytest.MonkeyPatch, pattern: str
) -> None:
    monkeypatch.setattr(jsonl, "_AMOUNT", re.compile(pattern))
    for _ in range(TEETH_ATTEMPTS):
        try:
            test_amount_grammar__the_solver_finds_no_text_they_disagree_on()
        except AssertionError:
            return
    pytest.fail(f"the solver found no text the reader {pattern!r} misreads")
