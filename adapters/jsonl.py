"""The JSON Lines codec: input lines to kernel commands, decisions and accounts to output lines.

Pure functions over bytes and values, no printing (spec.md#boundary). `read_lines` splits a binary
stream into physical lines without reading it whole; `decode_line` turns one line into a kernel
command or a `Malformed` rejection, deciding `malformed` from the line alone (spec.md#malformed);
`malformed_result`, `decision_result` and `account_view` build the output objects, and
`encode_line` writes one of them as a line of compact JSON (spec.md#results).

Amounts and percentages are judged on their text as written (spec.md#amount-grammar): JSON
numbers reach the decoder's `parse_int`/`parse_float` hooks as their literal text and never pass
through a binary float. A text outside the grammar is not `malformed`: it reaches the kernel as an
`InvalidAmount`, because precedence puts idempotency and the account checks before it.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterator
from typing import IO, Any, Final, NoReturn, TypeAlias

import attrs

from ppk.kernel.state import (
    COMMAND_TYPE_OF,
    COMMAND_TYPES,
    MINOR_PER_MAJOR,
    Account,
    Applied,
    Code,
    Command,
    CommandField,
    CommandType,
    Decision,
    FieldKind,
    InvalidAmount,
    Payout,
    Quantity,
    Refused,
    Rejected,
    Repeated,
    minor_text,
)
from ppk.kernel.transitions import (
    SHOWN_CHARS_MAX,
    account_problem,
    id_problem,
    loss_payable_minor,
    payout_problem,
    recorded_refusal_message,
    shown,
)

LINE_BYTES_MAX: Final = 1_048_576
"""spec.md#malformed: a line is at most 1 MiB, counting its bytes without its `\\n`."""

CHUNK_BYTES: Final = 65_536
"""How much of an over-long line is read at a time while it is drained."""

WHOLE_DIGITS_MAX: Final = 20
"""Significant integer digits past which a grammar-valid amount is over every limit (10^15 has 16).

Such a text is never given to `int()`, which refuses strings of more than 4,300 digits."""

NESTING_DEPTH_MAX: Final = 64
"""spec.md#malformed: how deep a line may nest arrays and objects; the command object itself is 1.

A fixed limit, checked before the line is parsed, so that "too deep" is decided from the line alone
and not from how much of Python's stack the caller has used."""

_BOM: Final = b"\xef\xbb\xbf"
_STRING: Final = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET: Final = re.compile(r"[\[\]{}]")
_BLANK_BYTES: Final = b" \t\r"
_AMOUNT: Final = re.compile(r"([0-9]+)(?:\.([0-9]{1,2}))?")
_DATE: Final = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")

_COMMON_FIELDS: Final = ("id", "account", "type")
_TYPES_TEXT: Final = ", ".join(COMMAND_TYPES)
_ALLOWED: Final = {
    name: (*_COMMON_FIELDS, *(field.name for field in command_type.fields))
    for name, command_type in COMMAND_TYPES.items()
}
"""Each command type's fields, by its `type` name: the common ones, then its own."""
_REQUIRED: Final = {
    name: [field.name for field in command_type.fields if not field.optional]
    for name, command_type in COMMAND_TYPES.items()
}
"""Each command type's fields that may not be left out, by its `type` name."""


# --- Input lines ---------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Line:
    """One physical input line that is not blank (spec.md#input-lines)."""

    number: int
    """Its 1-based physical line number; blank lines count too."""
    data: bytes | None
    """Its bytes without `\\n` and a `\\r` before it; None when it is over `LINE_BYTES_MAX`."""
    size_bytes: int
    """Its length in bytes without its `\\n` (a `\\r` before the `\\n` counts)."""


def _is_blank(data: bytes) -> bool:
    return not data.strip(_BLANK_BYTES)


def read_lines(stream: IO[bytes]) -> Iterator[Line]:
    """spec.md#input-lines: the non-blank lines of a binary stream, read in bounded pieces."""
    number = 0
    # Room for the longest allowed line, a `\r` and the `\n`; the first read also has room for a BOM.
    limit_bytes = LINE_BYTES_MAX + 2 + len(_BOM)
    while True:
        raw = stream.readline(limit_bytes)
        if number == 0 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        elif not raw:
            return
        limit_bytes = LINE_BYTES_MAX + 2
        number += 1
        ended = raw.endswith(b"\n")
        data = raw[:-1] if ended else raw
        size_bytes = len(data)
        blank = _is_blank(data)
        # A line that filled the read without its `\n` goes on: drain it, holding one chunk at a time.
        more = not ended and len(raw) >= LINE_BYTES_MAX + 2
        while more:
            data = b""
            raw = stream.readline(CHUNK_BYTES)
            ended = raw.endswith(b"\n")
            more = bool(raw) and not ended
            rest = raw[:-1] if ended else raw
            size_bytes += len(rest)
            blank = blank and _is_blank(rest)
        if blank:
            continue
        if size_bytes > LINE_BYTES_MAX:
            yield Line(number=number, data=None, size_bytes=size_bytes)
            continue
        if ended and data.endswith(b"\r"):
            data = data[:-1]
        yield Line(number=number, data=data, size_bytes=size_bytes)


# --- Decoding one line ---------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Malformed:
    """spec.md#malformed: a line rejected from its text alone, with what it said of id and account."""

    rejected: Rejected
    """The rejection, code `malformed`, its message naming the field and value at fault."""
    id: str | None
    """The line's `id` when the line was a JSON object and it was a string, else None."""
    account: str | None
    """The line's `account` when the line was a JSON object and it was a string, else None."""


@attrs.frozen
class _Number:
    """A JSON number, kept as its literal text exactly as it appears in the line."""

    text: str


class _ObjectWithRepeatedKey(dict[str, object]):
    """A JSON object in which some keys appeared more than once; `key` is the first of them."""

    def __init__(self, pairs: list[tuple[str, object]], key: str, repeated: frozenset[str]) -> None:
        # A repeated key has no single value: it keeps none, so a repeated id is not echoed.
        super().__init__((name, value) for name, value in pairs if name not in repeated)
        self.key = key


class _MalformedLineError(Exception):
    """Raised inside the JSON decoder's hooks; caught by `decode_line`."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    seen: set[str] = set()
    repeated: list[str] = []
    for key, _ in pairs:
        if key in seen:
            repeated.append(key)
        seen.add(key)
    if repeated:
        return _ObjectWithRepeatedKey(pairs, repeated[0], frozenset(repeated))
    return dict(pairs)


def _constant(name: str) -> NoReturn:
    raise _MalformedLineError(
        f"the line is not valid JSON: {name} is not a JSON value; write amounts and percentages in "
        f'digits, like "1500.25" or 9'
    )


_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_object, parse_int=_Number, parse_float=_Number, parse_constant=_constant
)


def _json_text(value: object) -> str:
    """A decoded JSON value as a clerk would recognise it in the line."""
    if isinstance(value, str):
        return f"the string {shown(value)}"
    if isinstance(value, _Number):
        return f"the number {value.text[:SHOWN_CHARS_MAX]}"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "an object"
    return "an array"


def _malformed(message: str, command_id: object = None, account_id: object = None) -> Malformed:
    return Malformed(
        rejected=Rejected(code=Code.MALFORMED, message=message),
        id=command_id if isinstance(command_id, str) else None,
        account=account_id if isinstance(account_id, str) else None,
    )


def parse_quantity(text: str) -> Quantity:
    """spec.md#amount-grammar: `[0-9]+(\\.[0-9]{1,2})?` as hundredths (minor units or bp)."""
    match = _AMOUNT.fullmatch(text)
    if match is None:
        return InvalidAmount(text=text)
    whole = match.group(1).lstrip("0")
    if len(whole) > WHOLE_DIGITS_MAX:
        return InvalidAmount(text=text, over_limit=True)
    hundredths = (match.group(2) or "").ljust(2, "0")
    return int(whole or "0") * MINOR_PER_MAJOR + int(hundredths)


def parse_date(text: str) -> datetime.date | None:
    """spec.md#fields: a `YYYY-MM-DD` of ASCII digits naming a real Gregorian day, else None."""
    # Not date.fromisoformat: it also takes `20240105` and week dates like `2024-W01-1`.
    match = _DATE.fullmatch(text)
    if match is None:
        return None
    year, month, day = match.groups()
    try:
        return datetime.date(int(year), int(month), int(day))
    except ValueError:
        return None


def _field_problem(field: CommandField, value: object) -> str | None:
    """Why a field of the command type has the wrong JSON type or form (spec.md#fields)."""
    name = field.name
    if field.kind in (FieldKind.AMOUNT, FieldKind.SHARE):
        if isinstance(value, (str, _Number)):
            return None
        what = (
            'a percentage, like "9" or 47.82,'
            if field.kind is FieldKind.SHARE
            else 'an amount, like "1500.25" or 1500,'
        )
        return f"{name} must be {what} written as a JSON string or number, not {_json_text(value)}"
    if field.kind is FieldKind.PAYOUT:
        if isinstance(value, str):
            return payout_problem(value)
        return f'payout must be a string naming a payout, like "acme:c7", not {_json_text(value)}'
    assert field.kind is FieldKind.DATE, field
    if isinstance(value, str) and parse_date(value) is not None:
        return None
    return (
        f"date must be a real day written as a string YYYY-MM-DD, from 0001-01-01 to 9999-12-31, "
        f'like "2026-01-05", not {_json_text(value)}'
    )


def _field_value(field: CommandField, value: object) -> Quantity | datetime.date | str | None:
    """The kernel's value of a field that passed `_field_problem`; None for an absent optional one."""
    if value is None:
        return None
    if field.kind is FieldKind.DATE:
        assert isinstance(value, str)
        return parse_date(value)
    if field.kind is FieldKind.PAYOUT:
        assert isinstance(value, str)
        return value
    return parse_quantity(value.text if isinstance(value, _Number) else str(value))


def _command(command_type: CommandType, fields: dict[str, object]) -> Command:
    """The kernel command of a line whose fields have all passed the checks of spec.md#malformed."""
    values = {field.attribute: _field_value(field, fields.get(field.name)) for field in command_type.fields}
    command: Command = command_type.cls(id=fields["id"], account=fields["account"], **values)  # type: ignore[arg-type]
    return command


def _nesting_depth(text: str) -> int:
    """The deepest nesting of brackets outside strings; exact for valid JSON, a bound otherwise."""
    if text.count("[") + text.count("{") <= NESTING_DEPTH_MAX:
        return 0  # cannot nest deeper than it has brackets
    depth = deepest = 0
    for bracket in _BRACKET.finditer(_STRING.sub("", text)):
        depth += 1 if bracket[0] in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def decode_line(data: bytes) -> Command | Malformed:
    """spec.md#malformed: one line's bytes (without `\\n`) as a kernel command, or why it is not one.

    A `\\r` left at the end of `data` is JSON whitespace and changes nothing but the length.
    """
    if len(data) > LINE_BYTES_MAX:
        return _too_long(len(data))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        return _malformed(
            f"the line is not UTF-8 text: its byte {error.start + 1}, 0x{data[error.start]:02X}, "
            f"is not valid UTF-8"
        )
    if _nesting_depth(text) > NESTING_DEPTH_MAX:
        return _malformed(
            f"the line nests arrays or objects more than {NESTING_DEPTH_MAX} deep; "
            f"a command is one JSON object of plain values"
        )
    try:
        value = _DECODER.decode(text)
    except _MalformedLineError as error:
        return _malformed(error.message)
    except json.JSONDecodeError as error:
        return _malformed(
            f"the line is not valid JSON: {error.msg.removesuffix(' at')} at column {error.colno}"
        )
    if not isinstance(value, dict):
        return _malformed(f"the line must be a JSON object {{...}}, not {_json_text(value)}")
    return _decode_object(value)


def _decode_object(fields: dict[str, object]) -> Command | Malformed:
    # The line is an object, so its id and account are echoed even when a key repeats; like most
    # JSON readers, the last value of a repeated key is the one taken.
    command_id, account_id = fields.get("id"), fields.get("account")
    if isinstance(fields, _ObjectWithRepeatedKey):
        return _malformed(
            f"field {shown(fields.key)} appears more than once; each field may appear only once",
            command_id,
            account_id,
        )
    for name in _COMMON_FIELDS:
        if name not in fields:
            return _malformed(
                f"field {name!r} is missing; every command has id, account and type",
                command_id,
                account_id,
            )
    problem = (
        id_problem(command_id)
        if isinstance(command_id, str)
        else f"id must be a string, not {_json_text(command_id)}"
    )
    if problem is None:
        problem = (
            account_problem(account_id)
            if isinstance(account_id, str)
            else f"account must be a string, not {_json_text(account_id)}"
        )
    if problem is not None:
        return _malformed(problem, command_id, account_id)
    type_name = fields["type"]
    if not isinstance(type_name, str):
        return _malformed(
            f"type must be a string, one of {_TYPES_TEXT}; not {_json_text(type_name)}",
            command_id,
            account_id,
        )
    command_type = COMMAND_TYPES.get(type_name)
    if command_type is None:
        return _malformed(
            f"type {shown(type_name)} is not a command; use one of {_TYPES_TEXT}", command_id, account_id
        )
    allowed = _ALLOWED[type_name]
    for name in fields:
        if name not in allowed:
            return _malformed(
                f"field {shown(name)} is not a field of {type_name}, which has only {', '.join(allowed)}",
                command_id,
                account_id,
            )
    required = _REQUIRED[type_name]
    for name in required:
        if name not in fields:
            return _malformed(
                f"field {name!r} is missing; {type_name} needs {', '.join(required)}", command_id, account_id
            )
    for field in command_type.fields:
        if field.name in fields:
            problem = _field_problem(field, fields[field.name])
            if problem is not None:
                return _malformed(problem, command_id, account_id)
    return _command(command_type, fields)


def _too_long(size_bytes: int) -> Malformed:
    return _malformed(
        f"the line is {size_bytes} bytes long; a line may be at most {LINE_BYTES_MAX} bytes (1 MiB)"
    )


def decode(line: Line) -> Command | Malformed:
    """One input line as a kernel command, or why it is malformed; an over-long line is malformed."""
    if line.data is None:
        return _too_long(line.size_bytes)
    return decode_line(line.data)


# --- Results and views ---------------------------------------------------------------------------

JsonObject: TypeAlias = dict[str, Any]
"""A JSON object as `json.dumps` writes it; its values are JSON values."""


def _result(
    number: int, id: str | None, account: str | None, status: str, rejection: Rejected | Refused | None
) -> JsonObject:
    result: JsonObject = {"line": number}
    if id is not None:
        result["id"] = id
    if account is not None:
        result["account"] = account
    result["status"] = status
    if rejection is not None:
        # A refusal is recorded: its id is used up, and the same command gets the same answer. A
        # rejection is not: the id is still free (spec.md#results).
        result["error"] = {
            "code": str(rejection.code),
            "message": rejection.message,
            "recorded": isinstance(rejection, Refused),
        }
    return result


def malformed_result(number: int, malformed: Malformed) -> JsonObject:
    """spec.md#results: the result of a malformed line."""
    return _result(number, malformed.id, malformed.account, "rejected", malformed.rejected)


def decision_status(decision: Decision) -> tuple[str, Rejected | Refused | None]:
    """spec.md#results: a decision's status, and the rejection or refusal behind a `rejected`."""
    if isinstance(decision, Applied):
        return "applied", None
    if isinstance(decision, Repeated):
        entry = decision.entry
        if isinstance(entry, Applied):
            return "duplicate", None
        # The same code as the first time; its message says so (a refusal is its code, spec.md#storage).
        return "rejected", attrs.evolve(entry, message=recorded_refusal_message(entry))
    return "rejected", decision


def decision_result(number: int, command: Command, decision: Decision) -> JsonObject:
    """spec.md#results: the result of a command as the kernel decided it."""
    status, rejection = decision_status(decision)
    return _result(number, command.id, command.account, status, rejection)


def _shares(my_share_bp: int, company_share_bp: int) -> JsonObject:
    return {"my": minor_text(my_share_bp), "company": minor_text(company_share_bp)}


def account_view(account: Account, payouts: list[Payout]) -> JsonObject:
    """spec.md#results: an account and its payouts as `ppk replay --show` prints them, every number
    with two decimals, the payouts sorted by id."""
    loss = account.loss
    loss_view: JsonObject | None = None
    if loss is not None:
        loss_view = {
            "original": minor_text(loss.original_minor),
            "remaining": minor_text(loss.remaining_minor),
            "payable": minor_text(loss_payable_minor(loss)),
            "shares": _shares(loss.my_share_bp, loss.company_share_bp),
        }
    return {
        "account": account.id,
        "shares": _shares(account.my_share_bp, account.company_share_bp),
        "capital": minor_text(account.capital_minor),
        "balance": minor_text(account.balance_minor),
        "loss": loss_view,
        "totals": {
            "funding": minor_text(account.funding_minor),
            "capital_closed": minor_text(account.capital_closed_minor),
            "profit_withdrawn": minor_text(account.profit_withdrawn_minor),
            "settled_payments": minor_text(account.payments_minor),
            "my_share": minor_text(account.my_share_minor),
            "company_share": minor_text(account.company_share_minor),
        },
        "payouts": [
            {"id": payout.id, "amount": minor_text(payout.amount_minor), "status": str(payout.status)}
            for payout in sorted(payouts, key=lambda payout: payout.id)
        ],
    }


def command_object(command: Command) -> JsonObject:
    """A command as the JSON object of an input line, amounts and percentages as two-decimal strings.

    `decode_line(encode_line(command_object(command)))` gives the command back when it is well formed.
    """
    command_type = COMMAND_TYPE_OF[type(command)]
    value: JsonObject = {"id": command.id, "account": command.account, "type": command_type.name}
    for field in command_type.fields:
        field_value = getattr(command, field.attribute)
        if isinstance(field_value, InvalidAmount):
            value[field.name] = field_value.text
        elif isinstance(field_value, int):
            value[field.name] = minor_text(field_value)
        elif isinstance(field_value, datetime.date):
            value[field.name] = field_value.isoformat()
        elif field_value is not None:
            value[field.name] = field_value
    return value


def encode_line(value: JsonObject) -> bytes:
    """One output line: compact JSON in UTF-8 and `\\n`; `\\u` escapes if a string holds a lone surrogate."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        # A malformed line's id may be a lone surrogate, which UTF-8 cannot carry but JSON escapes can.
        data = json.dumps(value, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    return data + b"\n"
