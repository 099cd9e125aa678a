"""Hypothesis strategies for every command type, every event class and both entry kinds, as the
codec stores them (spec.md#encoding): the encoding's round trip draws from them, and so does the
audit's property that no entry the codec reads makes it fail."""

from __future__ import annotations

import datetime
import typing

from hypothesis import strategies as st

from ppk.adapters.canonical import INTEGER_MAX, INTEGER_MIN
from ppk.kernel.state import (
    ACCOUNT_CHARS_MAX,
    AMOUNT_MINOR_MAX,
    BP_PER_WHOLE,
    COMMAND_TABLE,
    ID_CHARS_MAX,
    PAYOUT_CHARS_MAX,
    REFUSAL_CODES,
    Applied,
    Command,
    CommandType,
    Entry,
    Event,
    FieldKind,
    Refused,
)

TEXT_CHARS = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"))
"""spec.md#fields: the characters of an id or a payout: no control character, no lone surrogate."""

IDS = st.text(TEXT_CHARS, min_size=1, max_size=ID_CHARS_MAX)
ACCOUNTS = st.text(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-",
    min_size=1,
    max_size=ACCOUNT_CHARS_MAX,
)
PAYOUTS = st.text(TEXT_CHARS, min_size=1, max_size=PAYOUT_CHARS_MAX)
AMOUNTS = st.integers(0, AMOUNT_MINOR_MAX)
SHARES = st.integers(0, BP_PER_WHOLE)
DATES = st.none() | st.dates()

FIELD_STRATEGIES: dict[FieldKind, st.SearchStrategy[object]] = {
    FieldKind.AMOUNT: AMOUNTS,
    FieldKind.SHARE: SHARES,
    FieldKind.PAYOUT: PAYOUTS,
    FieldKind.DATE: DATES,
}


def command_strategy(command_type: CommandType) -> st.SearchStrategy[Command]:
    fields = {field.attribute: FIELD_STRATEGIES[field.kind] for field in command_type.fields}
    return st.builds(command_type.cls, id=IDS, account=ACCOUNTS, **fields)


COMMANDS: st.SearchStrategy[Command] = st.one_of([command_strategy(row) for row in COMMAND_TABLE])

EVENT_CLASSES: tuple[type[Event], ...] = typing.get_args(Event)
"""Every event class, from the kernel's own `Event` union (not from the encoding's table)."""

# Any integer a stored entry may hold, the 64-bit bounds among them; the limits of real figures too.
EVENT_INTEGERS = st.integers(0, AMOUNT_MINOR_MAX) | st.sampled_from(
    [INTEGER_MIN, -1, 0, AMOUNT_MINOR_MAX, INTEGER_MAX]
)
EVENT_FIELD_STRATEGIES: dict[object, st.SearchStrategy[object]] = {
    int: EVENT_INTEGERS,
    str: IDS,
    datetime.date | None: DATES,
}


def event_strategy(cls: type[Event]) -> st.SearchStrategy[Event]:
    fields = {name: EVENT_FIELD_STRATEGIES[kind] for name, kind in typing.get_type_hints(cls).items()}
    return st.builds(cls, **fields)


EVENTS: st.SearchStrategy[Event] = st.one_of([event_strategy(cls) for cls in EVENT_CLASSES])

APPLIED = st.builds(Applied, command=COMMANDS, events=st.lists(EVENTS, max_size=3).map(tuple))
REFUSED = st.builds(
    Refused, command=COMMANDS, code=st.sampled_from(sorted(REFUSAL_CODES)), message=st.text(max_size=40)
)
ENTRIES: st.SearchStrategy[Entry] = APPLIED | REFUSED
