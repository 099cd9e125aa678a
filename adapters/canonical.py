"""The canonical encoding of a ledger entry: the bytes a store keeps and a hash will cover (spec.md#encoding).

One entry, one byte string, whatever the process, platform or `PYTHONHASHSEED`: a JSON object with
its keys sorted by code point, no whitespace, integers as integers (never a float), every string in
UTF-8 with only `"`, `\\` and U+0000–U+001F escaped, and a `version`. The command's fields come from
the kernel's command table (`COMMAND_TABLE`), keyed by their kernel names, which carry the unit
(`payment_minor`, `my_share_bp`); events are keyed by their own field names. A refusal is its
command and its code: no message is stored (spec.md#storage).

`decode_entry` is strict: it takes only the exact bytes `encode_entry` writes, and says which field
is wrong otherwise, so a stored entry that was edited by hand cannot pass for another.
"""

from __future__ import annotations

import datetime
import json
import typing
from collections.abc import Callable
from typing import Any, Final, NoReturn

from ppk.adapters.jsonl import parse_date
from ppk.kernel.state import (
    COMMAND_TYPE_OF,
    COMMAND_TYPES,
    REFUSAL_CODES,
    AccountOpened,
    Applied,
    BalanceRecorded,
    Code,
    Command,
    Entry,
    Event,
    FieldKind,
    Funded,
    InvalidAmount,
    LossOpened,
    LossWrittenOff,
    PayoutConfirmed,
    ProfitWithdrawn,
    Refused,
    Settled,
    SharesSet,
)

ENTRY_ENCODING_VERSION: Final = 1
"""spec.md#encoding: the version every encoded entry carries; a decoder refuses any other."""

INTEGER_MIN: Final = -(2**63)
INTEGER_MAX: Final = 2**63 - 1
"""A stored integer fits a signed 64-bit column; every valid figure is far inside (spec.md#limits)."""

EVENT_TYPES: Final[dict[str, type[Event]]] = {
    "account_opened": AccountOpened,
    "funded": Funded,
    "balance_recorded": BalanceRecorded,
    "profit_withdrawn": ProfitWithdrawn,
    "loss_opened": LossOpened,
    "loss_written_off": LossWrittenOff,
    "settled": Settled,
    "shares_set": SharesSet,
    "payout_confirmed": PayoutConfirmed,
}
"""spec.md#encoding: each event's `type` in a stored entry."""

EVENT_TYPE_NAMES: Final[dict[type[Event], str]] = {cls: name for name, cls in EVENT_TYPES.items()}

_EVENT_FIELDS: Final[dict[type[Event], dict[str, object]]] = {
    cls: typing.get_type_hints(cls) for cls in EVENT_TYPES.values()
}
"""Each event class's fields and their types (int, str, or `datetime.date | None`)."""


class CorruptEntryError(ValueError):
    """Stored bytes that are not an entry in the canonical encoding; the message names the field."""


# --- Encoding ------------------------------------------------------------------------------------


def _command_object(command: Command) -> dict[str, Any]:
    command_type = COMMAND_TYPE_OF[type(command)]
    value: dict[str, Any] = {"account": command.account, "id": command.id, "type": command_type.name}
    for field in command_type.fields:
        field_value = getattr(command, field.attribute)
        if isinstance(field_value, InvalidAmount):
            raise ValueError(f"{field.name} {field_value.text!r} is not an amount: no entry records one")
        value[field.attribute] = (
            field_value.isoformat() if isinstance(field_value, datetime.date) else field_value
        )
    return value


def _event_object(event: Event) -> dict[str, Any]:
    value: dict[str, Any] = {"type": EVENT_TYPE_NAMES[type(event)]}
    for name in _EVENT_FIELDS[type(event)]:
        field_value = getattr(event, name)
        value[name] = field_value.isoformat() if isinstance(field_value, datetime.date) else field_value
    return value


def entry_object(entry: Entry) -> dict[str, Any]:
    """The JSON object of an entry in the canonical encoding, before it is written as bytes."""
    value: dict[str, Any] = {"command": _command_object(entry.command), "version": ENTRY_ENCODING_VERSION}
    if isinstance(entry, Applied):
        value["outcome"] = "applied"
        value["events"] = [_event_object(event) for event in entry.events]
    else:
        value["outcome"] = "refused"
        value["code"] = str(entry.code)
    return value


def canonical_bytes(value: object) -> bytes:
    """spec.md#encoding: a JSON value as canonical bytes: sorted keys, no whitespace, UTF-8."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as error:
        # No valid id or payout holds one (spec.md#fields): only a command no rule checked could.
        raise ValueError(f"a stored string holds the lone surrogate {error.object[error.start]!r}") from None


def encode_entry(entry: Entry) -> bytes:
    """spec.md#encoding: the canonical bytes of a ledger entry."""
    return canonical_bytes(entry_object(entry))


# --- Decoding ------------------------------------------------------------------------------------


def _corrupt(path: str, problem: str) -> NoReturn:
    raise CorruptEntryError(f"entry field {path} {problem}")


class _Number:
    """A JSON number no stored field may hold (a fraction, an exponent, too many digits), kept as text
    so that the field that holds it can be named."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"the number {self.text[:40]}"


def _int(text: str) -> int | _Number:
    # int() refuses texts of more than 4,300 digits; 20 already pass every 64-bit integer.
    return int(text) if len(text) <= 20 else _Number(text)


def _constant(text: str) -> NoReturn:
    raise CorruptEntryError(f"a stored entry holds no {text}")


_DECODER: Final = json.JSONDecoder(parse_float=_Number, parse_int=_int, parse_constant=_constant)


def _object(value: object, path: str, keys: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        _corrupt(path, f"must be an object, not {type(value).__name__}")
    if set(value) != keys:
        missing, extra = sorted(keys - set(value)), sorted(set(value) - keys)
        _corrupt(path, f"must have exactly the keys {sorted(keys)} (missing {missing}, extra {extra})")
    return value


def _integer(value: object, path: str) -> int:
    # bool is an int in Python, and `true` is no integer in JSON.
    if not isinstance(value, int) or isinstance(value, bool):
        _corrupt(path, f"must be an integer that fits a signed 64 bits, not {value!r:.60}")
    if not INTEGER_MIN <= value <= INTEGER_MAX:
        _corrupt(path, f"must fit a signed 64-bit integer, not {value}")
    return value


def _string(value: object, path: str) -> str:
    if not isinstance(value, str):
        _corrupt(path, f"must be a string, not {value!r:.60}")
    lone = next((char for char in value if 0xD800 <= ord(char) <= 0xDFFF), None)
    if lone is not None:
        _corrupt(path, f"must be text UTF-8 can carry, not one with the lone surrogate {lone!r}")
    return value


def _date(value: object, path: str) -> datetime.date | None:
    if value is None:
        return None
    day = parse_date(_string(value, path))
    if day is None:
        _corrupt(path, f"must be a day written YYYY-MM-DD, or null, not {value!r:.60}")
    return day


_READERS: Final[dict[object, Callable[[object, str], object]]] = {
    int: _integer,
    str: _string,
    datetime.date | None: _date,
}
"""How to read a stored field, by the type its class declares."""

_KIND_READERS: Final[dict[FieldKind, Callable[[object, str], object]]] = {
    FieldKind.AMOUNT: _integer,
    FieldKind.SHARE: _integer,
    FieldKind.PAYOUT: _string,
    FieldKind.DATE: _date,
}


def _command(value: object) -> Command:
    type_name = _string(value.get("type") if isinstance(value, dict) else None, "command.type")
    command_type = COMMAND_TYPES.get(type_name)
    if command_type is None:
        _corrupt("command.type", f"names no command type: {type_name!r:.60}")
    fields = {field.attribute: field for field in command_type.fields}
    command = _object(value, "command", {"account", "id", "type", *fields})
    values = {
        attribute: _KIND_READERS[field.kind](command[attribute], f"command.{attribute}")
        for attribute, field in fields.items()
    }
    decoded: Command = command_type.cls(
        id=_string(command["id"], "command.id"),
        account=_string(command["account"], "command.account"),
        **values,  # type: ignore[arg-type]
    )
    return decoded


def _event(value: object, index: int) -> Event:
    path = f"events[{index}]"
    type_name = _string(value.get("type") if isinstance(value, dict) else None, f"{path}.type")
    cls = EVENT_TYPES.get(type_name)
    if cls is None:
        _corrupt(f"{path}.type", f"names no event type: {type_name!r:.60}")
    field_types = _EVENT_FIELDS[cls]
    event = _object(value, path, {"type", *field_types})
    values = {name: _READERS[kind](event[name], f"{path}.{name}") for name, kind in field_types.items()}
    return cls(**values)  # type: ignore[arg-type]


def decode_entry(data: bytes) -> Entry:
    """spec.md#encoding: the entry whose canonical bytes these are; `CorruptEntryError` if they are not."""
    try:
        value = _DECODER.decode(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise CorruptEntryError(f"a stored entry is UTF-8 text; byte {error.start + 1} is not") from None
    except json.JSONDecodeError as error:
        raise CorruptEntryError(f"a stored entry is JSON: {error.msg} at column {error.colno}") from None
    except RecursionError:
        # An entry nests three levels deep (entry, events, event); Python's parser gave up far deeper.
        raise CorruptEntryError("a stored entry nests arrays or objects far too deep") from None
    outcome = value.get("outcome") if isinstance(value, dict) else None
    if outcome == "applied":
        fields = _object(value, "entry", {"command", "events", "outcome", "version"})
    elif outcome == "refused":
        fields = _object(value, "entry", {"code", "command", "outcome", "version"})
    else:
        _corrupt("outcome", f'must be "applied" or "refused", not {outcome!r:.60}')
    if _integer(fields["version"], "version") != ENTRY_ENCODING_VERSION:
        _corrupt("version", f"must be {ENTRY_ENCODING_VERSION}, not {fields['version']}")
    command = _command(fields["command"])
    entry: Entry
    if outcome == "applied":
        events = fields["events"]
        if not isinstance(events, list):
            _corrupt("events", f"must be an array, not {type(events).__name__}")
        entry = Applied(command=command, events=tuple(_event(event, i) for i, event in enumerate(events)))
    else:
        code = _string(fields["code"], "code")
        if code not in REFUSAL_CODES:
            _corrupt("code", f"must be the code of a state rule, not {code!r:.60}")
        entry = Refused(command=command, code=Code(code))
    if encode_entry(entry) != data:
        raise CorruptEntryError("a stored entry is not in the canonical encoding: its bytes would differ")
    return entry
