"""A reference model of the requirements (domain.md, restated in full in docs/spec.md): plain dicts and
ints, written without the kernel.

It shares no code with `ppk` on purpose: it is the second reading of the requirements that the
differential test runs in lockstep with the kernel, so a misreading in one shows up as a
disagreement instead of being copied into both. It favours the obvious over the fast.

Public API:
- `ReferenceBook()`: every account, as plain dicts and ints.
- `ReferenceBook.apply_line(line: bytes) -> dict | None`: one input line without its `\\n` (a
  trailing `\\r` allowed); the result `{"id"?, "account"?, "status", "error"?}`, or `None` for a
  blank line (no result).
- `ReferenceBook.views() -> list[dict]`: the account views as `ppk replay --show` prints them.
- `replay_bytes(data: bytes, book: ReferenceBook | None = None) -> Iterator[dict]`: a whole input,
  split into lines by the input-line rules; each result gets its 1-based physical `line`.
- `input_lines(data: bytes) -> Iterator[tuple[int, bytes | None]]`: the non-blank lines of an input
  as the input-line rules read them, numbered, each without its `\\n` and the `\\r` before it.

Readings (where domain.md leaves a choice, the most literal reading is taken):
- R1. A result carries `id` (`account`) whenever the line parsed as a JSON object whose `id`
  (`account`) key appears once with a string value, even if that string breaks the id (account)
  rule or the line is malformed for another reason (a repeated key elsewhere included). A key that
  appears twice has no single value: it is not echoed.
- R2. A line over 1 MiB, or one nesting deeper than `NESTING_DEPTH_MAX` containers, is not read at
  all: malformed, with no `id` or `account`. The depth limit is ours (domain.md names none); no
  valid command nests deeper than 1, so it only decides whether `id`/`account` are echoed.
- R3. A blank line is skipped whatever its length. The byte-order mark is stripped from the input
  before lines are split, so it counts towards no line's length; one anywhere else is not blank and
  not JSON whitespace, so its line is malformed.
- R4. "More than 10^15 units" is strict: an amount of exactly 10^17 minor units is valid, and a fund
  or profit that brings a running total to exactly 10^17 is applied.
- R5. Sameness: a text that does not match the amount grammar equals nothing. An amount that
  matches it but breaks a limit or is zero compares by its number; it can never equal a recorded
  command's amount, because only commands that passed those checks are recorded.
- R6. Only the date of an *applied* `record_balance` counts as "latest"; a refused one's date is not.
- R7. A loss written off when it opens (E9) leaves no active loss: the view shows `"loss": null`,
  and the write-off counts in `capital_closed` but not in any payment or share total.
- R8. Payouts belong to their account: `confirm_payout` on account `a` of a payout withdrawn on
  account `B` is `unknown_payout`, whatever the payout id says.
- R9. A surrogate pair written as two JSON escapes is one character of the id (or payout); a lone
  surrogate (escaped; raw ones are not UTF-8) makes the id (or payout) malformed. `payout` follows
  the id's character rule with its own length, 1 to 193 (domain.md, "Fields"); other strings have
  no character rule: a `type` with odd characters is judged as any other string.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterator
from typing import Any

AMOUNT_MINOR_MAX = 10**17
TOTAL_MINOR_MAX = 10**17
SHARE_BP_MAX = 10_000
BP_PER_WHOLE = 10_000
LINE_BYTES_MAX = 1024 * 1024
ID_CHARS_MAX = 128
ACCOUNT_CHARS_MAX = 64
PAYOUT_CHARS_MAX = 193
NESTING_DEPTH_MAX = 64
BOM = b"\xef\xbb\xbf"

AMOUNT_PATTERN = re.compile(r"[0-9]+(\.[0-9]{1,2})?")
ACCOUNT_PATTERN = re.compile(r"[A-Za-z0-9_.\-]+")
DATE_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

# The fields of each type besides id, account and type: (required, optional).
FIELDS: dict[str, tuple[set[str], set[str]]] = {
    "open_account": ({"my_share", "company_share"}, set()),
    "fund": ({"amount"}, set()),
    "record_balance": ({"balance"}, {"date"}),
    "settle": ({"payment"}, set()),
    "set_shares": ({"my_share", "company_share"}, set()),
    "confirm_payout": ({"payout"}, set()),
}
AMOUNT_FIELDS = {"amount", "balance", "payment", "my_share", "company_share"}


class JsonNumber:
    """A JSON number as the literal text of the line: it is never read through a float."""

    def __init__(self, text: str) -> None:
        self.text = text


class MalformedError(Exception):
    """The line breaks a boundary rule; the message says which."""


def refuse_constant(text: str) -> None:
    raise MalformedError(f"{text} is not JSON")


class JsonObject(dict[str, Any]):
    """A JSON object; `repeated_keys` names the keys written more than once (the last value is kept)."""

    repeated_keys: set[str]


def json_object(pairs: list[tuple[str, Any]]) -> JsonObject:
    result = JsonObject()
    result.repeated_keys = set()
    for key, value in pairs:
        if key in result:
            result.repeated_keys.add(key)
        result[key] = value
    return result


def nesting_depth_exceeds(text: str, depth_max: int) -> bool:
    """Whether some container sits deeper than `depth_max` (brackets inside strings do not count)."""
    depth = 0
    in_string = False
    escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > depth_max:
                return True
        elif char in "]}":
            depth -= 1
    return False


def has_repeated_key(value: Any) -> bool:
    if isinstance(value, JsonObject):
        return bool(value.repeated_keys) or any(has_repeated_key(v) for v in value.values())
    if isinstance(value, list):
        return any(has_repeated_key(v) for v in value)
    return False


def amount_text(value: str | JsonNumber) -> str:
    return value if isinstance(value, str) else value.text


def amount_value(text: str) -> int | None:
    """The amount in hundredths (minor units, or basis points for a share), or None if the text
    breaks the grammar. A value too long for int() is returned as one over every limit."""
    if AMOUNT_PATTERN.fullmatch(text) is None:
        return None
    whole, _, fraction = text.partition(".")
    whole = whole.lstrip("0") or "0"
    if len(whole) > 30:
        return AMOUNT_MINOR_MAX * 1000
    return int(whole) * 100 + int(fraction.ljust(2, "0"))


def money(value_minor: int) -> str:
    """An amount (or a share in bp) as a string with exactly two decimals."""
    assert value_minor >= 0
    return f"{value_minor // 100}.{value_minor % 100:02d}"


def payable_minor(remaining_minor: int, total_bp: int) -> int:
    return remaining_minor * total_bp // BP_PER_WHOLE


def is_control(char: str) -> bool:
    code = ord(char)
    return code <= 0x1F or 0x7F <= code <= 0x9F


def is_lone_surrogate(char: str) -> bool:
    return 0xD800 <= ord(char) <= 0xDFFF


# RFC 3629 §4: after a lead byte, how many continuation bytes follow, and the range of the first
# (the others are 0x80-0xBF). Overlong forms, surrogates and code points past U+10FFFF are excluded
# by these ranges; 0x80-0xC1 and 0xF5-0xFF never lead.
_UTF8_LEADS: list[tuple[range, int, range]] = [
    (range(0xC2, 0xE0), 1, range(0x80, 0xC0)),
    (range(0xE0, 0xE1), 2, range(0xA0, 0xC0)),
    (range(0xE1, 0xED), 2, range(0x80, 0xC0)),
    (range(0xED, 0xEE), 2, range(0x80, 0xA0)),
    (range(0xEE, 0xF0), 2, range(0x80, 0xC0)),
    (range(0xF0, 0xF1), 3, range(0x90, 0xC0)),
    (range(0xF1, 0xF4), 3, range(0x80, 0xC0)),
    (range(0xF4, 0xF5), 3, range(0x80, 0x90)),
]


def first_invalid_byte(data: bytes) -> int | None:
    """The index of the first byte that starts no well-formed UTF-8 sequence (RFC 3629's table, byte
    by byte, not Python's decoder), or None if all of `data` is UTF-8."""
    at = 0
    while at < len(data):
        if data[at] < 0x80:
            at += 1
            continue
        lead = next((entry for entry in _UTF8_LEADS if data[at] in entry[0]), None)
        if lead is None:
            return at
        _, following, first = lead
        tail = data[at + 1 : at + 1 + following]
        if len(tail) < following or tail[0] not in first or any(not 0x80 <= byte < 0xC0 for byte in tail[1:]):
            return at
        at += 1 + following
    return None


def parse_line(line: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """(echo, command): `echo` holds the id and account to put in the result; `command` the
    checked fields. Raises MalformedError(echo, message) if the line breaks a boundary rule."""
    echo: dict[str, Any] = {}
    if len(line) > LINE_BYTES_MAX:
        raise MalformedError(echo, f"the line has {len(line)} bytes; at most {LINE_BYTES_MAX} are allowed")
    bad = first_invalid_byte(line)
    if bad is not None:
        raise MalformedError(echo, f"the line is not UTF-8: its byte {bad + 1}, 0x{line[bad]:02X}, is not")
    text = line.decode("utf-8")
    if nesting_depth_exceeds(text, NESTING_DEPTH_MAX):
        raise MalformedError(echo, f"the line nests deeper than {NESTING_DEPTH_MAX} levels")
    try:
        value = json.loads(
            text,
            object_pairs_hook=json_object,
            parse_int=JsonNumber,
            parse_float=JsonNumber,
            parse_constant=refuse_constant,
        )
    except (ValueError, RecursionError, MalformedError):
        raise MalformedError(echo, "the line is not valid JSON") from None
    if not isinstance(value, JsonObject):
        raise MalformedError(echo, "the line is not a JSON object")
    for key in ("id", "account"):
        if key not in value.repeated_keys and isinstance(value.get(key), str):
            echo[key] = value[key]
    if has_repeated_key(value):
        raise MalformedError(echo, "a key appears more than once")
    check_id(echo, value.get("id"))
    check_account(echo, value.get("account"))
    kind = value.get("type")
    if not isinstance(kind, str):
        raise MalformedError(echo, "type must be a string")
    if kind not in FIELDS:
        raise MalformedError(echo, f"unknown type {kind!r}")
    required, optional = FIELDS[kind]
    fields = set(value) - {"id", "account", "type"}
    if not required <= fields:
        raise MalformedError(echo, f"{kind} needs the fields {sorted(required)}")
    if not fields <= required | optional:
        raise MalformedError(echo, f"{kind} does not take the fields {sorted(fields - required - optional)}")
    for name in fields:
        field_value = value[name]
        if name in AMOUNT_FIELDS:
            if not isinstance(field_value, str | JsonNumber):
                raise MalformedError(echo, f"{name} must be a JSON string or number")
        elif not isinstance(field_value, str):
            raise MalformedError(echo, f"{name} must be a string")
        if name == "date":
            check_date(echo, field_value)
        if name == "payout":
            check_text(echo, "payout", field_value, PAYOUT_CHARS_MAX)
    return echo, dict(value)


def check_id(echo: dict[str, Any], value: Any) -> None:
    check_text(echo, "id", value, ID_CHARS_MAX)


def check_text(echo: dict[str, Any], name: str, value: Any, chars_max: int) -> None:
    """An id-like string: 1 to `chars_max` characters, none a control character or a lone surrogate."""
    if not isinstance(value, str):
        raise MalformedError(echo, f"{name} must be a string")
    if not 1 <= len(value) <= chars_max:
        raise MalformedError(echo, f"{name} must have 1 to {chars_max} characters")
    for char in value:
        if is_control(char) or is_lone_surrogate(char):
            raise MalformedError(echo, f"{name} holds the character U+{ord(char):04X}")


def check_account(echo: dict[str, Any], value: Any) -> None:
    if not isinstance(value, str):
        raise MalformedError(echo, "account must be a string")
    if not 1 <= len(value) <= ACCOUNT_CHARS_MAX or ACCOUNT_PATTERN.fullmatch(value) is None:
        raise MalformedError(echo, f"account must be 1 to {ACCOUNT_CHARS_MAX} of A-Z a-z 0-9 _ . -")


def check_date(echo: dict[str, Any], value: str) -> None:
    if DATE_PATTERN.fullmatch(value) is None:
        raise MalformedError(echo, f"date {value!r} is not of the form YYYY-MM-DD")
    try:
        datetime.date(int(value[0:4]), int(value[5:7]), int(value[8:10]))
    except ValueError:
        raise MalformedError(echo, f"date {value!r} is not a real day") from None


def sameness_key(command: dict[str, Any]) -> tuple[Any, ...]:
    """What two commands must share to be the same: type and every field by value."""
    parts: list[Any] = [command["type"]]
    required, optional = FIELDS[command["type"]]
    for name in sorted(required | optional):
        value = command.get(name)
        if name in AMOUNT_FIELDS:
            number = quantity(command, name)
            # A fresh object equals nothing but itself, so an invalid text matches no record.
            parts.append(object() if number is None else number)
        else:
            parts.append(value)  # None for an absent date: differs from any present one.
    return tuple(parts)


Outcome = tuple[str, str | None, str]
"""(status, code or None, message) of one command."""

APPLIED: Outcome = ("applied", None, "")
DUPLICATE: Outcome = ("duplicate", None, "")


def rejected(code: str, message: str) -> Outcome:
    return ("rejected", code, message)


def quantity(command: dict[str, Any], name: str) -> int | None:
    """A field's amount in hundredths, or None if its text breaks the grammar."""
    return amount_value(amount_text(command[name]))


def new_account(my_bp: int, company_bp: int) -> dict[str, Any]:
    return {
        "my_bp": my_bp,
        "company_bp": company_bp,
        "funding_minor": 0,
        "capital_closed_minor": 0,
        "capital_minor": 0,
        "balance_minor": 0,
        "profit_withdrawn_minor": 0,
        "settled_payments_minor": 0,
        "my_share_minor": 0,
        "company_share_minor": 0,
        "loss": None,
        "payouts": {},
        "records": {},
        "latest_date": None,
    }


def quantity_rejection(command: dict[str, Any]) -> Outcome | None:
    """invalid_amount / invalid_shares: the amounts and shares of a command, against their rules."""
    kind = command["type"]
    if kind in ("open_account", "set_shares"):
        my_bp = quantity(command, "my_share")
        company_bp = quantity(command, "company_share")
        if my_bp is None or company_bp is None:
            return rejected("invalid_shares", "a share must be digits with at most 2 decimals")
        if my_bp > SHARE_BP_MAX or company_bp > SHARE_BP_MAX:
            return rejected("invalid_shares", "a share must be at most 100")
        if my_bp + company_bp > SHARE_BP_MAX:
            return rejected("invalid_shares", "the two shares must add up to at most 100")
        return None
    for name in ("amount", "payment", "balance"):
        if name in command:
            value_minor = quantity(command, name)
            if value_minor is None:
                return rejected("invalid_amount", f"{name} must be digits with at most 2 decimals")
            if value_minor > AMOUNT_MINOR_MAX:
                return rejected("invalid_amount", f"{name} must be at most 10^15")
            if value_minor == 0 and name != "balance":
                return rejected("invalid_amount", f"{name} must be more than 0")
    return None


class ReferenceBook:
    """Every account of one stream, as plain dicts and ints."""

    def __init__(self) -> None:
        self.accounts: dict[str, dict[str, Any]] = {}

    def apply_line(self, line: bytes) -> dict[str, Any] | None:
        """The result of one line (without its `\\n`), or None for a blank line."""
        if is_blank(line):
            return None
        try:
            echo, command = parse_line(line)
        except MalformedError as error:
            echo, message = error.args
            refusal = {"code": "malformed", "message": message, "recorded": False}
            return {**echo, "status": "rejected", "error": refusal}
        outcome = self.execute(command)
        status, code, message = outcome
        result: dict[str, Any] = {**echo, "status": status}
        if status == "rejected":
            # Recorded: this outcome is the one the account keeps under the id (its id is used up).
            account = self.accounts.get(command["account"])
            kept = account["records"].get(command["id"]) if account is not None else None
            result["error"] = {
                "code": code,
                "message": message,
                "recorded": kept is not None and kept[1] == outcome,
            }
        return result

    def execute(self, command: dict[str, Any]) -> Outcome:
        """The outcome of a well-formed command, checks in domain.md's order of precedence."""
        account = self.accounts.get(command["account"])
        key = sameness_key(command)
        if account is not None and command["id"] in account["records"]:
            recorded: Outcome
            recorded_key, recorded = account["records"][command["id"]]
            if recorded_key != key:
                return rejected("idempotency_conflict", f"id {command['id']!r} was used for another command")
            if recorded == APPLIED:
                return DUPLICATE
            return recorded  # The same refusal, code and all.

        if command["type"] == "open_account" and account is not None:
            return rejected("account_exists", f"account {command['account']!r} already exists")
        if command["type"] != "open_account" and account is None:
            return rejected("unknown_account", f"account {command['account']!r} does not exist")
        rejection = quantity_rejection(command)
        if rejection is not None:
            return rejection  # Rejected before any state rule: nothing is recorded.

        if command["type"] == "open_account":
            account = new_account(quantity(command, "my_share") or 0, quantity(command, "company_share") or 0)
            self.accounts[command["account"]] = account
            outcome = APPLIED
        else:
            assert account is not None
            outcome = self.decide(account, command)
        account["records"][command["id"]] = (key, outcome)
        return outcome

    def decide(self, account: dict[str, Any], command: dict[str, Any]) -> Outcome:
        """The state rules of a command with valid quantities: refused, or applied to `account`."""
        kind = command["type"]
        if kind == "set_shares":
            account["my_bp"] = quantity(command, "my_share")
            account["company_bp"] = quantity(command, "company_share")
            return APPLIED
        if kind == "fund":
            return self.fund(account, command)
        if kind == "record_balance":
            return self.record_balance(account, command)
        if kind == "settle":
            return self.settle(account, command)
        assert kind == "confirm_payout"
        return self.confirm_payout(account, command)

    def fund(self, account: dict[str, Any], command: dict[str, Any]) -> Outcome:
        amount_minor = quantity(command, "amount")
        assert amount_minor is not None
        if account["funding_minor"] + amount_minor > TOTAL_MINOR_MAX:
            return rejected("limit_exceeded", "the total funding would pass 10^15")
        account["funding_minor"] += amount_minor
        account["capital_minor"] += amount_minor
        account["balance_minor"] += amount_minor
        return APPLIED

    def record_balance(self, account: dict[str, Any], command: dict[str, Any]) -> Outcome:
        balance_minor = quantity(command, "balance")
        assert balance_minor is not None
        if account["loss"] is not None:
            return rejected("loss_active", "a loss is active: settle it first")
        date = command.get("date")
        if date is not None and account["latest_date"] is not None and date < account["latest_date"]:
            return rejected("stale_balance", f"date {date} is before {account['latest_date']}")
        capital_minor = account["capital_minor"]
        profit_minor = max(balance_minor - capital_minor, 0)
        if account["profit_withdrawn_minor"] + profit_minor > TOTAL_MINOR_MAX:
            return rejected("limit_exceeded", "the total profit withdrawn would pass 10^15")

        if date is not None:
            account["latest_date"] = date  # Not before the latest: the check above made sure.
        if balance_minor > capital_minor:
            payout_id = f"{command['account']}:{command['id']}"
            assert payout_id not in account["payouts"]
            account["payouts"][payout_id] = {"amount_minor": profit_minor, "confirmed": False}
            account["profit_withdrawn_minor"] += profit_minor
            account["balance_minor"] = capital_minor
        elif balance_minor < capital_minor:
            loss_minor = capital_minor - balance_minor
            account["balance_minor"] = balance_minor
            total_bp = account["my_bp"] + account["company_bp"]
            if payable_minor(loss_minor, total_bp) == 0:
                # E9: nobody can pay it, so it is written off in the same transition.
                account["capital_minor"] -= loss_minor
                account["capital_closed_minor"] += loss_minor
            else:
                account["loss"] = {
                    "original_minor": loss_minor,
                    "remaining_minor": loss_minor,
                    "my_bp": account["my_bp"],
                    "company_bp": account["company_bp"],
                    "opened_by": command["id"],
                    "capital_minor": capital_minor,
                    "balance_minor": balance_minor,
                }
        else:
            account["balance_minor"] = balance_minor
        return APPLIED

    def settle(self, account: dict[str, Any], command: dict[str, Any]) -> Outcome:
        payment_minor = quantity(command, "payment")
        assert payment_minor is not None
        loss = account["loss"]
        if loss is None:
            return rejected("no_active_loss", "there is no active loss to settle")
        total_bp = loss["my_bp"] + loss["company_bp"]
        payable = payable_minor(loss["remaining_minor"], total_bp)
        if payment_minor > payable:
            return rejected("payment_exceeds_payable", f"payment is more than the payable {money(payable)}")

        if payment_minor == payable:
            closed_minor = loss["remaining_minor"]
        else:
            closed_minor = payment_minor * BP_PER_WHOLE // total_bp
        my_minor = payment_minor * loss["my_bp"] // total_bp
        company_minor = payment_minor - my_minor
        loss["remaining_minor"] -= closed_minor
        account["capital_minor"] -= closed_minor
        account["capital_closed_minor"] += closed_minor
        account["settled_payments_minor"] += payment_minor
        account["my_share_minor"] += my_minor
        account["company_share_minor"] += company_minor
        assert loss["remaining_minor"] >= 0
        if loss["remaining_minor"] == 0:
            account["loss"] = None
        return APPLIED

    def confirm_payout(self, account: dict[str, Any], command: dict[str, Any]) -> Outcome:
        payout = account["payouts"].get(command["payout"])
        if payout is None:
            return rejected("unknown_payout", f"the account has no payout {command['payout']!r}")
        payout["confirmed"] = True
        return APPLIED

    def payable_minor(self, account_id: str) -> int:
        """The payable of the account's active loss, 0 without one (a helper for test strategies)."""
        loss = self.accounts[account_id]["loss"]
        if loss is None:
            return 0
        return payable_minor(loss["remaining_minor"], loss["my_bp"] + loss["company_bp"])

    def views(self) -> list[dict[str, Any]]:
        """Every account as `ppk replay --show` prints it, sorted by account id."""
        return [self.view(account_id) for account_id in sorted(self.accounts)]

    def view(self, account_id: str) -> dict[str, Any]:
        account = self.accounts[account_id]
        loss = account["loss"]
        loss_view = None
        if loss is not None:
            loss_view = {
                "original": money(loss["original_minor"]),
                "remaining": money(loss["remaining_minor"]),
                "payable": money(self.payable_minor(account_id)),
                "shares": {"my": money(loss["my_bp"]), "company": money(loss["company_bp"])},
            }
        return {
            "account": account_id,
            "shares": {"my": money(account["my_bp"]), "company": money(account["company_bp"])},
            "capital": money(account["capital_minor"]),
            "balance": money(account["balance_minor"]),
            "loss": loss_view,
            "totals": {
                "funding": money(account["funding_minor"]),
                "capital_closed": money(account["capital_closed_minor"]),
                "profit_withdrawn": money(account["profit_withdrawn_minor"]),
                "settled_payments": money(account["settled_payments_minor"]),
                "my_share": money(account["my_share_minor"]),
                "company_share": money(account["company_share_minor"]),
            },
            "payouts": [
                {
                    "id": payout_id,
                    "amount": money(payout["amount_minor"]),
                    "status": "confirmed" if payout["confirmed"] else "pending",
                }
                for payout_id, payout in sorted(account["payouts"].items())
            ],
        }


def is_blank(line: bytes) -> bool:
    """A line of nothing but spaces, tabs and carriage returns, which gets no result."""
    return line.strip(b" \t\r") == b""


def physical_lines(data: bytes) -> Iterator[tuple[int, bytes, bool]]:
    """Each line of an input as (its 1-based number, its bytes without `\\n`, whether a `\\n` ended it),
    blank ones too; a byte-order mark at the start is no line's."""
    if data.startswith(BOM):
        data = data[len(BOM) :]
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # The input ended with `\n` (or was empty): no line follows it.
    for number, line in enumerate(lines, start=1):
        yield number, line, number < len(lines) or data.endswith(b"\n")


def input_lines(data: bytes) -> Iterator[tuple[int, bytes | None]]:
    """The non-blank lines as the input-line rules read them: (number, bytes without the `\\n` and a
    `\\r` before it), or (number, None) for a line over `LINE_BYTES_MAX` (a `\\r` before its `\\n`
    counts towards that), which is not read at all."""
    for number, line, ended in physical_lines(data):
        if is_blank(line):
            continue
        if len(line) > LINE_BYTES_MAX:
            yield number, None
        else:
            yield number, line[:-1] if ended and line.endswith(b"\r") else line


def replay_bytes(data: bytes, book: ReferenceBook | None = None) -> Iterator[dict[str, Any]]:
    """Each non-blank line's result with its 1-based physical `line` number (a `\\r` left at the end
    of a line is JSON whitespace to `apply_line`)."""
    if book is None:
        book = ReferenceBook()
    for number, line, _ in physical_lines(data):
        result = book.apply_line(line)
        if result is not None:
            yield {"line": number, **result}
