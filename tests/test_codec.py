"""The JSON Lines codec: every example of spec.md#boundary, through the codec and the kernel."""

from __future__ import annotations

import datetime
import io
import json
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppk.adapters import jsonl
from ppk.adapters.cli import replay_lines
from ppk.adapters.store import MemoryStore
from ppk.kernel import transitions
from ppk.kernel.state import (
    AMOUNT_MINOR_MAX,
    REFUSAL_CODES,
    Account,
    Code,
    Command,
    ConfirmPayout,
    Fund,
    InvalidAmount,
    OpenAccount,
    RecordBalance,
    Refused,
    Repeated,
    SetShares,
    Settle,
)

# --- Helpers -------------------------------------------------------------------------------------


@attrs.frozen
class Lit:
    """A JSON value written into the line exactly as given (a number literal, or broken JSON)."""

    text: str


def cmd(type: Any, id: Any = "x1", account: Any = "acme", **fields: Any) -> str:
    """One command line; a `Lit` field is written verbatim, anything else through json.dumps."""
    pairs = {"id": id, "account": account, "type": type, **fields}
    parts = []
    for key, value in pairs.items():
        if value is _ABSENT:
            continue
        text = value.text if isinstance(value, Lit) else json.dumps(value)
        parts.append(f"{json.dumps(key)}:{text}")
    return "{" + ",".join(parts) + "}"


_ABSENT = object()
"""Leave the field out of the line."""

OPEN = cmd("open_account", id="o1", my_share="1", company_share="9")
FUND = cmd("fund", id="f1", amount="1000")


def run(*lines: str | bytes, store: MemoryStore | None = None) -> list[dict[str, Any]]:
    """Replay the lines (each ended with `\\n`) through `store`; their results."""
    store = MemoryStore() if store is None else store
    data = b"".join(
        (line.encode("utf-8", "surrogatepass") if isinstance(line, str) else line) + b"\n" for line in lines
    )
    return list(replay_lines(io.BytesIO(data), store))


def run_bytes(data: bytes, store: MemoryStore | None = None) -> list[dict[str, Any]]:
    return list(replay_lines(io.BytesIO(data), MemoryStore() if store is None else store))


def snapshot(store: MemoryStore) -> dict[str, object]:
    """Everything a store holds, by account: its value, its ledger and its payouts."""
    return {
        account_id: (store.account(account_id), list(store.ledger(account_id)), store.payouts(account_id))
        for account_id in store.account_ids()
    }


def account_of(store: MemoryStore, account_id: str = "acme") -> Account:
    account = store.account(account_id)
    assert account is not None, account_id
    return account


def view(store: MemoryStore, account_id: str = "acme") -> dict[str, Any]:
    """The account's view, as `ppk replay --show` prints it."""
    return jsonl.account_view(account_of(store, account_id), store.payouts(account_id))


def codes(results: list[dict[str, Any]]) -> list[str]:
    """Each result as `applied`, `duplicate` or its error code."""
    return [
        result["error"]["code"] if result["status"] == "rejected" else result["status"] for result in results
    ]


def opened(*lines: str) -> MemoryStore:
    """A store after `acme` is opened (1 % + 9 %) and funded with 1000.00, then the lines run."""
    store = MemoryStore()
    results = run(OPEN, FUND, *lines, store=store)
    assert codes(results[:2]) == ["applied", "applied"]
    return store


def one(line: str | bytes, store: MemoryStore) -> dict[str, Any]:
    (result,) = run(line, store=store)
    return result


def malformed(line: str | bytes) -> jsonl.Malformed:
    data = line.encode("utf-8", "surrogatepass") if isinstance(line, str) else line
    decoded = jsonl.decode_line(data)
    assert isinstance(decoded, jsonl.Malformed), decoded
    assert decoded.rejected.code == Code.MALFORMED
    return decoded


# --- parse_quantity: the amount grammar ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "hundredths"),
    [
        ("9", 900),
        ("47.82", 4782),
        ("1000", 100_000),
        ("0", 0),
        ("0.5", 50),
        ("5.5", 550),
        ("5.05", 505),
        ("05.00", 500),
        ("0000000000000000000000000000001", 100),
        ("0" * 5000 + "7.25", 725),
        ("1000000000000000", AMOUNT_MINOR_MAX),
        ("1000000000000000.01", AMOUNT_MINOR_MAX + 1),
        ("9" * 20, int("9" * 20) * 100),
    ],
)
def test_parse_quantity__grammar_gives_hundredths(text: str, hundredths: int) -> None:
    assert jsonl.parse_quantity(text) == hundredths


@pytest.mark.parametrize(
    "text",
    [
        "5.",
        ".5",
        "+5",
        "-0",
        "-5",
        "1e3",
        "1.5e1",
        "1.234",
        "NaN",
        "Infinity",
        "٥",
        "５",
        "1٥",
        " 5",
        "5 ",
        "\t5",
        "5\n",
        "",
        "5,00",
        "1_000",
        "0x10",
        "5..0",
        "5.0.0",
    ],
)
def test_parse_quantity__outside_the_grammar_is_invalid(text: str) -> None:
    quantity = jsonl.parse_quantity(text)
    assert isinstance(quantity, InvalidAmount)
    assert quantity.text == text
    assert not quantity.over_limit


@pytest.mark.parametrize("text", ["9" * 21, "1" + "0" * 25 + ".50", "9" * 5000, "1" * 100_000])
def test_parse_quantity__far_too_many_digits_is_over_the_limit_without_int(text: str) -> None:
    quantity = jsonl.parse_quantity(text)
    assert isinstance(quantity, InvalidAmount)
    assert quantity.over_limit
    assert quantity.text == text


# --- parse_date ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("2024-01-05", datetime.date(2024, 1, 5)),
        ("2024-02-29", datetime.date(2024, 2, 29)),
        ("0001-01-01", datetime.date(1, 1, 1)),
        ("9999-12-31", datetime.date(9999, 12, 31)),
    ],
)
def test_parse_date__real_days(text: str, day: datetime.date) -> None:
    assert jsonl.parse_date(text) == day


@pytest.mark.parametrize(
    "text",
    [
        "2023-02-29",
        "0000-01-01",
        "20240105",
        "2024-W01-1",
        "2024-1-5",
        "2024-01-5",
        "2024-13-01",
        "2024-00-10",
        "2024-04-31",
        "٢٠٢٤-٠١-٠٥",
        "２０２４-01-05",
        "2024-01-05 ",
        " 2024-01-05",
        "2024-01-05\n",
        "2024/01/05",
        "2024-01-05T00:00",
        "+2024-01-05",
        "10000-01-01",
        "",
        "2024-001",
    ],
)
def test_parse_date__anything_else_is_not_a_day(text: str) -> None:
    assert jsonl.parse_date(text) is None


# --- decode_line: commands -----------------------------------------------------------------------


def test_decode_line__every_command_type() -> None:
    lines = [
        (
            cmd("open_account", my_share="1", company_share=Lit("9")),
            OpenAccount(id="x1", account="acme", my_share_bp=100, company_share_bp=900),
        ),
        (cmd("fund", amount=Lit("1000")), Fund(id="x1", account="acme", amount_minor=100_000)),
        (
            cmd("record_balance", balance="900.5"),
            RecordBalance(id="x1", account="acme", balance_minor=90_050),
        ),
        (
            cmd("record_balance", balance="0", date="2026-01-05"),
            RecordBalance(id="x1", account="acme", balance_minor=0, date=datetime.date(2026, 1, 5)),
        ),
        (cmd("settle", payment=Lit("4.00")), Settle(id="x1", account="acme", payment_minor=400)),
        (
            cmd("set_shares", my_share="47.82", company_share="0"),
            SetShares(id="x1", account="acme", my_share_bp=4782, company_share_bp=0),
        ),
        (cmd("confirm_payout", payout="acme:c7"), ConfirmPayout(id="x1", account="acme", payout="acme:c7")),
    ]
    for line, command in lines:
        assert jsonl.decode_line(line.encode()) == command


def test_decode_line__number_literal_is_judged_as_written() -> None:
    for literal in ["1e3", "1.5e1", "-0", "-5", "5.000", "1E2", "0.1e1", "1" * 5000]:
        command = jsonl.decode_line(cmd("fund", amount=Lit(literal)).encode())
        assert isinstance(command, Fund)
        assert isinstance(command.amount_minor, InvalidAmount)
        assert command.amount_minor.text == literal


def test_decode_line__trailing_carriage_return_is_whitespace() -> None:
    assert jsonl.decode_line((FUND + "\r").encode()) == jsonl.decode_line(FUND.encode())


def test_decode_line__field_order_does_not_matter() -> None:
    line = '{"amount":"5","type":"fund","account":"acme","id":"x1"}'
    assert jsonl.decode_line(line.encode()) == Fund(id="x1", account="acme", amount_minor=500)


# --- decode_line: malformed, with the message naming field and value ----------------------------

LONG_ID = "i" * 129

MALFORMED = [
    # Not UTF-8, not JSON, not an object.
    (
        "not_utf8",
        b'{"id":"x1\xff","account":"acme","type":"fund","amount":"5"}',
        ["UTF-8", "0xFF"],
        None,
        None,
    ),
    (
        "encoded_surrogate",
        b'{"id":"\xed\xa0\x80","account":"acme","type":"fund","amount":"5"}',
        ["UTF-8"],
        None,
        None,
    ),
    (
        "overlong_utf8",
        b'{"id":"\xc0\xaf","account":"acme","type":"fund","amount":"5"}',
        ["UTF-8"],
        None,
        None,
    ),
    ("truncated", '{"id":"x1","account":"acme"', ["not valid JSON"], None, None),
    (
        "trailing_comma",
        '{"id":"x1","account":"acme","type":"fund","amount":"5",}',
        ["not valid JSON"],
        None,
        None,
    ),
    ("single_quotes", "{'id':'x1'}", ["not valid JSON"], None, None),
    ("two_objects", FUND + FUND, ["not valid JSON"], None, None),
    ("bare_nan", cmd("fund", amount=Lit("NaN")), ["NaN", "digits"], None, None),
    ("bare_infinity", cmd("fund", amount=Lit("Infinity")), ["Infinity"], None, None),
    ("bare_minus_infinity", cmd("fund", amount=Lit("-Infinity")), ["-Infinity"], None, None),
    ("literal_leading_zero", cmd("fund", amount=Lit("05")), ["not valid JSON"], None, None),
    ("literal_plus", cmd("fund", amount=Lit("+5")), ["not valid JSON"], None, None),
    ("literal_leading_dot", cmd("fund", amount=Lit(".5")), ["not valid JSON"], None, None),
    ("literal_trailing_dot", cmd("fund", amount=Lit("5.")), ["not valid JSON"], None, None),
    ("literal_arabic_digit", cmd("fund", amount=Lit("٥")), ["not valid JSON"], None, None),
    ("literal_mixed_digits", cmd("fund", amount=Lit("1٥")), ["not valid JSON"], None, None),
    (
        "control_char_in_string",
        '{"id":"x\t1","account":"acme","type":"fund","amount":"5"}',
        ["not valid JSON"],
        None,
        None,
    ),
    ("later_bom", "\ufeff" + FUND, ["not valid JSON"], None, None),
    ("array", '["x1","acme"]', ["JSON object", "an array"], None, None),
    ("string", '"x1"', ["JSON object", "the string 'x1'"], None, None),
    ("number", "5", ["JSON object", "the number 5"], None, None),
    ("null", "null", ["JSON object", "null"], None, None),
    (
        "deep_nesting",
        cmd("fund", amount=Lit("[" * 100_000 + "]" * 100_000)),
        ["more than 64 deep"],
        None,
        None,
    ),
    # The command object is depth 1: 63 brackets inside it make 64, which is parsed (a wrong type).
    (
        "nesting_at_the_limit",
        cmd("fund", amount=Lit("[" * 63 + "]" * 63)),
        ["amount", "an array"],
        "x1",
        "acme",
    ),
    (
        "nesting_past_the_limit",
        cmd("fund", amount=Lit("[" * 64 + "]" * 64)),
        ["more than 64 deep"],
        None,
        None,
    ),
    (
        "brackets_in_strings_do_not_nest",
        cmd("fund", id="[" * 129, amount="5"),
        ["id", "1 to 128"],
        "[" * 129,
        "acme",
    ),
    # Repeated keys.
    (
        "repeated_amount",
        '{"id":"x1","account":"acme","type":"fund","amount":"5","amount":"5"}',
        ["'amount'", "once"],
        "x1",
        "acme",
    ),
    (
        "repeated_id",
        '{"id":"x1","id":"x2","account":"acme","type":"fund","amount":"5"}',
        ["'id'", "once"],
        None,
        "acme",
    ),
    (
        "repeated_escaped_key",
        '{"id":"x1","\\u0069d":"x1","account":"acme","type":"fund","amount":"5"}',
        ["'id'"],
        None,
        "acme",
    ),
    ("repeated_nested", cmd("fund", amount=Lit('{"a":1,"a":2}')), ["amount", "an object"], "x1", "acme"),
    # id, account, type: missing, wrong JSON type, outside the rules.
    ("missing_id", cmd("fund", id=_ABSENT, amount="5"), ["'id'", "missing"], None, "acme"),
    ("missing_account", cmd("fund", account=_ABSENT, amount="5"), ["'account'", "missing"], "x1", None),
    ("missing_type", '{"id":"x1","account":"acme","amount":"5"}', ["'type'", "missing"], "x1", "acme"),
    ("id_number", cmd("fund", id=Lit("5"), amount="5"), ["id", "string", "the number 5"], None, "acme"),
    ("id_null", cmd("fund", id=None, amount="5"), ["id", "string", "null"], None, "acme"),
    ("id_bool", cmd("fund", id=True, amount="5"), ["id", "string", "true"], None, "acme"),
    ("id_array", cmd("fund", id=["x1"], amount="5"), ["id", "string", "an array"], None, "acme"),
    ("id_empty", cmd("fund", id="", amount="5"), ["id", "1 to 128", "not 0"], "", "acme"),
    ("id_129_chars", cmd("fund", id=LONG_ID, amount="5"), ["id", "1 to 128", "not 129"], LONG_ID, "acme"),
    ("id_nul", cmd("fund", id="x\u00001", amount="5"), ["id", "control", "U+0000"], "x\u00001", "acme"),
    ("id_newline", cmd("fund", id="x1\n", amount="5"), ["id", "control", "U+000A"], "x1\n", "acme"),
    ("id_delete", cmd("fund", id="x\u007f", amount="5"), ["id", "control", "U+007F"], "x\u007f", "acme"),
    ("id_next_line", cmd("fund", id="x\u0085", amount="5"), ["id", "control", "U+0085"], "x\u0085", "acme"),
    ("id_u009f", cmd("fund", id="x\u009f", amount="5"), ["id", "control", "U+009F"], "x\u009f", "acme"),
    (
        "id_lone_surrogate",
        cmd("fund", id="\ud800", amount="5"),
        ["id", "surrogate", "U+D800"],
        "\ud800",
        "acme",
    ),
    ("id_lone_low_surrogate", cmd("fund", id="a\udc00", amount="5"), ["id", "U+DC00"], "a\udc00", "acme"),
    (
        "account_number",
        cmd("fund", account=Lit("7"), amount="5"),
        ["account", "string", "the number 7"],
        "x1",
        None,
    ),
    ("account_null", cmd("fund", account=None, amount="5"), ["account", "string", "null"], "x1", None),
    ("account_empty", cmd("fund", account="", amount="5"), ["account", "1 to 64", "not 0"], "x1", ""),
    (
        "account_65_chars",
        cmd("fund", account="a" * 65, amount="5"),
        ["account", "1 to 64", "not 65"],
        "x1",
        "a" * 65,
    ),
    ("account_bang", cmd("fund", account="acct!", amount="5"), ["account", "'acct!'", "'!'"], "x1", "acct!"),
    ("account_newline_trap", cmd("fund", account="acct\n", amount="5"), ["account", "'\\n'"], "x1", "acct\n"),
    ("account_space", cmd("fund", account="ac ct", amount="5"), ["account", "' '"], "x1", "ac ct"),
    ("account_non_ascii", cmd("fund", account="acmé", amount="5"), ["account", "'é'"], "x1", "acmé"),
    ("account_colon", cmd("fund", account="ac:me", amount="5"), ["account", "':'"], "x1", "ac:me"),
    ("type_number", cmd(Lit("1"), amount="5"), ["type", "string", "the number 1"], "x1", "acme"),
    ("type_null", cmd(None, amount="5"), ["type", "null"], "x1", "acme"),
    ("type_unknown", cmd("withdraw", amount="5"), ["type", "'withdraw'", "open_account"], "x1", "acme"),
    ("type_wrong_case", cmd("Fund", amount="5"), ["type", "'Fund'"], "x1", "acme"),
    ("type_empty", cmd("", amount="5"), ["type", "''"], "x1", "acme"),
    # Fields of the type: missing, not of the type, wrong JSON type.
    ("fund_missing_amount", cmd("fund"), ["'amount'", "missing"], "x1", "acme"),
    (
        "open_missing_company_share",
        cmd("open_account", my_share="1"),
        ["'company_share'", "missing"],
        "x1",
        "acme",
    ),
    ("settle_with_amount", cmd("settle", amount="5"), ["'amount'", "settle", "payment"], "x1", "acme"),
    ("settle_missing_payment", cmd("settle"), ["'payment'", "missing"], "x1", "acme"),
    (
        "record_balance_only_date",
        cmd("record_balance", date="2024-01-05"),
        ["'balance'", "missing"],
        "x1",
        "acme",
    ),
    ("fund_extra_field", cmd("fund", amount="5", note="hi"), ["'note'", "fund"], "x1", "acme"),
    ("fund_with_date", cmd("fund", amount="5", date="2024-01-05"), ["'date'", "fund"], "x1", "acme"),
    ("settle_with_payout", cmd("settle", payment="5", payout="p"), ["'payout'", "settle"], "x1", "acme"),
    ("confirm_missing_payout", cmd("confirm_payout"), ["'payout'", "missing"], "x1", "acme"),
    ("key_case", cmd("fund", Amount="5"), ["'Amount'"], "x1", "acme"),
    ("amount_true", cmd("fund", amount=True), ["amount", "true", "string or number"], "x1", "acme"),
    ("amount_false", cmd("fund", amount=False), ["amount", "false"], "x1", "acme"),
    ("amount_null", cmd("fund", amount=None), ["amount", "null"], "x1", "acme"),
    ("amount_object", cmd("fund", amount={"value": "5"}), ["amount", "an object"], "x1", "acme"),
    ("amount_array", cmd("fund", amount=["5"]), ["amount", "an array"], "x1", "acme"),
    ("balance_null", cmd("record_balance", balance=None), ["balance", "null"], "x1", "acme"),
    ("payment_bool", cmd("settle", payment=True), ["payment", "true"], "x1", "acme"),
    (
        "my_share_null",
        cmd("open_account", my_share=None, company_share="9"),
        ["my_share", "null"],
        "x1",
        "acme",
    ),
    (
        "company_share_list",
        cmd("set_shares", my_share="1", company_share=[9]),
        ["company_share", "an array"],
        "x1",
        "acme",
    ),
    (
        "payout_number",
        cmd("confirm_payout", payout=Lit("5")),
        ["payout", "string", "the number 5"],
        "x1",
        "acme",
    ),
    ("payout_null", cmd("confirm_payout", payout=None), ["payout", "null"], "x1", "acme"),
    (
        "payout_194_chars",
        cmd("confirm_payout", payout="p" * 194),
        ["payout", "1 to 193", "not 194"],
        "x1",
        "acme",
    ),
    ("payout_empty", cmd("confirm_payout", payout=""), ["payout", "1 to 193", "not 0"], "x1", "acme"),
    ("payout_nul", cmd("confirm_payout", payout="a\u0000b"), ["payout", "control", "U+0000"], "x1", "acme"),
    (
        "payout_next_line",
        cmd("confirm_payout", payout="\u0085"),
        ["payout", "control", "U+0085"],
        "x1",
        "acme",
    ),
    (
        "payout_lone_surrogate",
        cmd("confirm_payout", payout="\ud800"),
        ["payout", "surrogate", "U+D800"],
        "x1",
        "acme",
    ),
    # Dates.
    (
        "date_not_a_day",
        cmd("record_balance", balance="5", date="2023-02-29"),
        ["date", "'2023-02-29'", "YYYY-MM-DD"],
        "x1",
        "acme",
    ),
    (
        "date_year_zero",
        cmd("record_balance", balance="5", date="0000-01-01"),
        ["date", "'0000-01-01'", "0001"],
        "x1",
        "acme",
    ),
    (
        "date_basic_form",
        cmd("record_balance", balance="5", date="20240105"),
        ["date", "'20240105'"],
        "x1",
        "acme",
    ),
    (
        "date_week",
        cmd("record_balance", balance="5", date="2024-W01-1"),
        ["date", "'2024-W01-1'"],
        "x1",
        "acme",
    ),
    ("date_short", cmd("record_balance", balance="5", date="2024-1-5"), ["date", "'2024-1-5'"], "x1", "acme"),
    (
        "date_arabic_digits",
        cmd("record_balance", balance="5", date="٢٠٢٤-٠١-٠٥"),
        ["date", "'٢٠٢٤-٠١-٠٥'"],
        "x1",
        "acme",
    ),
    (
        "date_fullwidth_digits",
        cmd("record_balance", balance="5", date="２０２４-01-05"),
        ["date", "２０２４"],
        "x1",
        "acme",
    ),
    (
        "date_trailing_newline",
        cmd("record_balance", balance="5", date="2024-01-05\n"),
        ["date", "'2024-01-05\\n'"],
        "x1",
        "acme",
    ),
    (
        "date_number",
        cmd("record_balance", balance="5", date=Lit("20240105")),
        ["date", "the number 20240105"],
        "x1",
        "acme",
    ),
    ("date_null", cmd("record_balance", balance="5", date=None), ["date", "null"], "x1", "acme"),
]


@pytest.mark.parametrize(
    ("line", "words", "id", "account"),
    [row[1:] for row in MALFORMED],
    ids=[row[0] for row in MALFORMED],
)
def test_decode_line__malformed_names_field_and_value(
    line: str | bytes, words: list[str], id: str | None, account: str | None
) -> None:
    decoded = malformed(line)
    for word in words:
        assert word in decoded.rejected.message
    assert decoded.id == id
    assert decoded.account == account


def test_decode_line__over_one_mib_is_malformed() -> None:
    decoded = malformed(b" " * (jsonl.LINE_BYTES_MAX + 1))
    assert str(jsonl.LINE_BYTES_MAX + 1) in decoded.rejected.message


def test_decode_line__exactly_one_mib_is_a_line() -> None:
    padding = jsonl.LINE_BYTES_MAX - len(FUND.encode())
    assert isinstance(jsonl.decode_line(FUND.encode() + b" " * padding), Fund)


def test_decode_line__accepted_ids_and_accounts() -> None:
    for id in [
        "x",
        "i" * 128,
        "😀" * 128,
        "a b",
        "\u00a0",
        "ü",
        "\u2028",
        "\ufeff",
        "acme:c7",
        "\ud83d\ude00",
    ]:
        command = jsonl.decode_line(cmd("fund", id=id, amount="5").encode("utf-8", "surrogatepass"))
        assert isinstance(command, Fund), (id, command)
    for account in ["a", "a" * 64, "A-Z_a.z-09", "...", "-", "_"]:
        command = jsonl.decode_line(cmd("fund", account=account, amount="5").encode())
        assert isinstance(command, Fund), (account, command)


def test_decode_line__escaped_astral_id_is_one_character() -> None:
    command = jsonl.decode_line(cmd("fund", id=Lit('"' + "\\ud83d\\ude00" * 128 + '"'), amount="5").encode())
    assert isinstance(command, Fund)
    assert command.id == "😀" * 128


# --- read_lines ----------------------------------------------------------------------------------


def numbered(data: bytes) -> list[tuple[int, bytes | None]]:
    return [(line.number, line.data) for line in jsonl.read_lines(io.BytesIO(data))]


def test_read_lines__blank_lines_are_skipped_but_counted() -> None:
    data = b"a\n\n   \n\t \r\nb\r\n\r\n \nc"
    assert numbered(data) == [(1, b"a"), (5, b"b"), (8, b"c")]


def test_read_lines__carriage_return_before_newline_is_dropped() -> None:
    assert numbered(b"a\r\nb\rc\r\nd\r") == [(1, b"a"), (2, b"b\rc"), (3, b"d\r")]


def test_read_lines__bom_at_start_is_ignored() -> None:
    assert numbered(b"\xef\xbb\xbfa\nb") == [(1, b"a"), (2, b"b")]
    assert numbered(b"\xef\xbb\xbf\na") == [(2, b"a")]
    assert numbered(b"\xef\xbb\xbf") == []
    assert numbered(b"a\n\xef\xbb\xbfb") == [(1, b"a"), (2, b"\xef\xbb\xbfb")]


def test_read_lines__empty_input_and_last_line_without_newline() -> None:
    assert numbered(b"") == []
    assert numbered(b"\n") == []
    assert numbered(b"a") == [(1, b"a")]
    assert numbered(b"a\n") == [(1, b"a")]


def test_read_lines__over_one_mib_is_not_kept() -> None:
    big = b"x" * (3 * jsonl.LINE_BYTES_MAX)
    lines = list(jsonl.read_lines(io.BytesIO(b"a\n" + big + b"\nb\n")))
    assert [(line.number, line.data, line.size_bytes) for line in lines] == [
        (1, b"a", 1),
        (2, None, len(big)),
        (3, b"b", 1),
    ]


def test_read_lines__limit_is_exact() -> None:
    exact = b"x" * jsonl.LINE_BYTES_MAX
    over = exact + b"x"
    for data, kept in [(exact, True), (over, False), (b"\xef\xbb\xbf" + exact, True)]:
        for ending in [b"\n", b""]:
            (line,) = jsonl.read_lines(io.BytesIO(data + ending))
            assert (line.data is not None) is kept


def test_read_lines__carriage_return_counts_toward_the_limit() -> None:
    (line,) = jsonl.read_lines(io.BytesIO(b"x" * jsonl.LINE_BYTES_MAX + b"\r\n"))
    assert line.data is None
    assert line.size_bytes == jsonl.LINE_BYTES_MAX + 1


def test_read_lines__over_long_blank_line_is_still_blank() -> None:
    assert numbered(b" " * (2 * jsonl.LINE_BYTES_MAX) + b"\nb") == [(2, b"b")]


class _Generated(io.RawIOBase):
    """A stream of `size` bytes of `fill` then `tail`, made as it is read; it remembers the largest read."""

    def __init__(self, size: int, fill: bytes, tail: bytes) -> None:
        self.remaining = size
        self.fill = fill
        self.tail = tail
        self.read_bytes_max = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        self.read_bytes_max = max(self.read_bytes_max, len(view))
        if self.remaining > 0:
            count = min(len(view), self.remaining)
            view[:count] = self.fill * count
            self.remaining -= count
            return count
        count = min(len(view), len(self.tail))
        view[:count] = self.tail[:count]
        self.tail = self.tail[count:]
        return count


class _Recording(io.BufferedReader):
    """A buffered reader that remembers the longest piece `readline` gave out."""

    line_bytes_max = 0

    def readline(self, size: int | None = -1, /) -> bytes:
        data = super().readline(size)
        self.line_bytes_max = max(self.line_bytes_max, len(data))
        return data


def test_read_lines__over_long_line_is_read_in_bounded_pieces() -> None:
    size = 64 * jsonl.LINE_BYTES_MAX
    stream = _Recording(_Generated(size, b"y", b"\n" + FUND.encode() + b"\n"))
    lines = list(jsonl.read_lines(stream))
    assert [(line.number, line.data, line.size_bytes) for line in lines] == [
        (1, None, size),
        (2, FUND.encode(), len(FUND)),
    ]
    assert stream.line_bytes_max <= jsonl.LINE_BYTES_MAX + 5


def test_read_lines__streams_without_reading_ahead() -> None:
    stream = _Generated(0, b"", (FUND + "\n").encode() * 10)
    reader = io.BufferedReader(stream, buffer_size=16)
    lines = jsonl.read_lines(reader)
    first = next(lines)
    assert first.number == 1
    assert stream.tail, "the rest of the input has not been read yet"


# --- Output: results, encoding -------------------------------------------------------------------


def test_encode_line__compact_utf8() -> None:
    assert jsonl.encode_line({"line": 1, "id": "é", "status": "applied"}) == (
        '{"line":1,"id":"é","status":"applied"}\n'.encode()
    )


def test_encode_line__lone_surrogate_is_escaped() -> None:
    data = jsonl.encode_line({"line": 1, "id": "\ud800é"})
    assert data == b'{"line":1,"id":"\\ud800\\u00e9"}\n'
    assert json.loads(data) == {"line": 1, "id": "\ud800é"}


def test_result__keys_in_order_and_exact() -> None:
    results = run(OPEN, "nonsense", cmd("fund", id="x1", amount="0"))
    assert [list(result) for result in results] == [
        ["line", "id", "account", "status"],
        ["line", "status", "error"],
        ["line", "id", "account", "status", "error"],
    ]
    assert results[0] == {"line": 1, "id": "o1", "account": "acme", "status": "applied"}
    assert results[1]["error"]["code"] == "malformed"
    assert results[2] == {
        "line": 3,
        "id": "x1",
        "account": "acme",
        "status": "rejected",
        "error": {"code": "invalid_amount", "message": "amount 0.00 must be more than 0", "recorded": False},
    }


def test_result__malformed_echoes_id_and_account_strings_only() -> None:
    (result,) = run(cmd("fund", id="\ud800", account="acct!", amount="5"))
    assert result["id"] == "\ud800"
    assert result["account"] == "acct!"
    (result,) = run(cmd("fund", id=5, account=None, amount="5"))
    assert "id" not in result
    assert "account" not in result


# --- Quantities through the kernel: invalid_amount and invalid_shares ---------------------------

INVALID_AMOUNT_TEXTS = [
    "-5",
    "0.001",
    "1.234",
    "5.",
    ".5",
    "+5",
    "-0",
    "1e3",
    "1.5e1",
    "NaN",
    "Infinity",
    "٥",
    "5٥",
    " 5",
    "5 ",
    "",
    "1,000",
    "9" * 5000,
    "1000000000000000.01",
    "100000000000000000000",
]


@pytest.mark.parametrize("text", INVALID_AMOUNT_TEXTS)
@pytest.mark.parametrize(
    ("type", "field"), [("fund", "amount"), ("settle", "payment"), ("record_balance", "balance")]
)
def test_amount__string_outside_the_grammar_is_invalid_amount(type: str, field: str, text: str) -> None:
    store = opened()
    before = snapshot(store)
    result = one(cmd(type, **{field: text}), store)
    assert result["error"]["code"] == "invalid_amount"
    assert field in result["error"]["message"]
    assert text[:50] in result["error"]["message"] or "1000000000000000.01" in result["error"]["message"]
    assert snapshot(store) == before
    assert one(cmd("set_shares", my_share="1", company_share="9"), store)["status"] == "applied"


@pytest.mark.parametrize("literal", ["1e3", "1.5e1", "-0", "-5", "5.000", "0.001", "1E+2", "9" * 5000])
def test_amount__number_literal_outside_the_grammar_is_invalid_amount(literal: str) -> None:
    store = opened()
    result = one(cmd("fund", amount=Lit(literal)), store)
    assert result["error"]["code"] == "invalid_amount"
    assert f"amount '{literal[:40]}" in result["error"]["message"]


@pytest.mark.parametrize(("literal", "funding"), [("5.00", "1005.00"), ("5", "1005.00"), ("0.5", "1000.50")])
def test_amount__number_literal_in_the_grammar_is_read_exactly(literal: str, funding: str) -> None:
    store = opened()
    assert one(cmd("fund", amount=Lit(literal)), store)["status"] == "applied"
    assert view(store)["totals"] == {
        "funding": funding,
        "capital_closed": "0.00",
        "profit_withdrawn": "0.00",
        "settled_payments": "0.00",
        "my_share": "0.00",
        "company_share": "0.00",
    }


def test_amount__leading_zeros_in_a_string_are_fine() -> None:
    store = opened()
    assert one(cmd("fund", amount="05.00"), store)["status"] == "applied"
    assert account_of(store).funding_minor == 100_500


@pytest.mark.parametrize(("type", "field"), [("fund", "amount"), ("settle", "payment")])
def test_amount__zero_amount_or_payment_is_invalid(type: str, field: str) -> None:
    store = opened()
    for zero in ["0", "0.00", "000", Lit("0"), Lit("0.0")]:
        result = one(cmd(type, **{field: zero}), store)
        assert result["error"] == {
            "code": "invalid_amount",
            "message": f"{field} 0.00 must be more than 0",
            "recorded": False,
        }


def test_amount__zero_balance_is_valid() -> None:
    store = opened()
    assert one(cmd("record_balance", balance="0"), store)["status"] == "applied"
    assert account_of(store).balance_minor == 0


def test_amount__limit_is_inclusive() -> None:
    store = MemoryStore()
    results = run(
        OPEN,
        cmd("fund", id="f1", amount="1000000000000000"),
        cmd("fund", id="f2", amount="1000000000000000.01"),
        cmd("fund", id="f3", amount="0.01"),
        store=store,
    )
    assert codes(results) == ["applied", "applied", "invalid_amount", "limit_exceeded"]
    assert "over the limit of 1000000000000000.00" in results[2]["error"]["message"]


@pytest.mark.parametrize(
    ("my_share", "company_share", "words"),
    [
        ("100.01", "0", ["my_share", "100.01"]),
        ("0", "101", ["company_share", "101.00"]),
        ("60", "50", ["60.00", "50.00", "110.00"]),
        ("50.01", "49.99.", ["company_share", "'49.99.'"]),
        ("-1", "9", ["my_share", "'-1'"]),
        ("1e1", "9", ["my_share", "'1e1'"]),
        ("1", "", ["company_share", "''"]),
        ("9" * 5000, "9", ["my_share"]),
        (Lit("1.5e1"), "9", ["my_share", "'1.5e1'"]),
    ],
)
def test_shares__outside_the_rules_are_invalid_shares(
    my_share: Any, company_share: Any, words: list[str]
) -> None:
    for type in ["open_account", "set_shares"]:
        store = MemoryStore() if type == "open_account" else opened()
        before = snapshot(store)
        result = one(cmd(type, my_share=my_share, company_share=company_share), store)
        assert result["error"]["code"] == "invalid_shares"
        for word in words:
            assert word in result["error"]["message"]
        assert snapshot(store) == before


def test_shares__exactly_100_percent_and_zero_are_valid() -> None:
    results = run(
        cmd("open_account", id="o1", account="a", my_share="100", company_share="0"),
        cmd("open_account", id="o1", account="b", my_share=Lit("47.82"), company_share="52.18"),
        cmd("open_account", id="o1", account="c", my_share="0", company_share="0"),
    )
    assert codes(results) == ["applied", "applied", "applied"]


# --- Precedence: malformed, then repetition, then accounts, then quantities, then state rules ----


def test_precedence__malformed_beats_a_used_id() -> None:
    store = opened()
    before = snapshot(store)
    result = one(cmd("fund", id="f1", amount="1000", note="retry"), store)
    assert result["error"]["code"] == "malformed"
    assert snapshot(store) == before


def test_precedence__idempotency_conflict_beats_invalid_amount() -> None:
    store = opened()
    before = snapshot(store)
    for amount in ["abc", "0", "-5", "1e3", "1000.001"]:
        result = one(cmd("fund", id="f1", amount=amount), store)
        assert result["error"]["code"] == "idempotency_conflict"
        assert "'f1'" in result["error"]["message"]
    assert snapshot(store) == before


def test_precedence__used_id_with_other_type_is_conflict() -> None:
    store = opened()
    result = one(cmd("settle", id="f1", payment="1000"), store)
    assert result["error"]["code"] == "idempotency_conflict"


def test_precedence__unknown_account_beats_invalid_amount() -> None:
    store = MemoryStore()
    assert codes(run(cmd("fund", amount="abc"), store=store)) == ["unknown_account"]
    assert store.account_ids() == []


def test_precedence__account_exists_beats_invalid_shares() -> None:
    store = opened()
    before = snapshot(store)
    result = one(cmd("open_account", id="o2", my_share="200", company_share="x"), store)
    assert result["error"] == {
        "code": "account_exists",
        "message": "account 'acme' already exists",
        "recorded": False,
    }
    assert snapshot(store) == before


def test_precedence__invalid_amount_beats_state_rules() -> None:
    store = opened(cmd("record_balance", id="r1", balance="900"))
    assert one(cmd("record_balance", id="r2", balance="1.234"), store)["error"]["code"] == "invalid_amount"
    assert one(cmd("settle", id="s1", payment="1e3"), store)["error"]["code"] == "invalid_amount"


def test_precedence__record_balance_loss_active_before_stale_and_limit() -> None:
    store = opened(cmd("record_balance", id="r1", balance="900", date="2026-01-05"))
    result = one(cmd("record_balance", id="r2", balance="100000000000000", date="2020-01-01"), store)
    assert result["error"]["code"] == "loss_active"


def test_precedence__stale_balance_before_limit() -> None:
    store = opened(cmd("record_balance", id="r1", balance="1000", date="2026-01-05"))
    result = one(cmd("record_balance", id="r2", balance="1000000000000000", date="2026-01-04"), store)
    assert result["error"]["code"] == "stale_balance"
    assert "2026-01-04" in result["error"]["message"]


# --- Idempotency through the codec ---------------------------------------------------------------


@pytest.mark.parametrize("amount", [Lit("1000"), Lit("1000.00"), Lit("1000.0"), "1000", "1000.00", "01000.0"])
def test_idempotency__retry_written_differently_is_duplicate(amount: Any) -> None:
    store = opened()
    before = snapshot(store)
    assert one(cmd("fund", id="f1", amount=amount), store) == {
        "line": 1,
        "id": "f1",
        "account": "acme",
        "status": "duplicate",
    }
    assert snapshot(store) == before


def test_idempotency__retried_open_account_is_duplicate() -> None:
    store = opened()
    result = one(cmd("open_account", id="o1", my_share=Lit("1"), company_share="9.00"), store)
    assert result["status"] == "duplicate"


def test_idempotency__changed_payload_is_conflict() -> None:
    store = opened(cmd("record_balance", id="r1", balance="1000", date="2026-01-05"))
    before = snapshot(store)
    for line in [
        cmd("fund", id="f1", amount="1000.01"),
        cmd("record_balance", id="r1", balance="1000"),
        cmd("record_balance", id="r1", balance="1000", date="2026-01-06"),
        cmd("open_account", id="o1", my_share="1", company_share="8"),
    ]:
        assert one(line, store)["error"]["code"] == "idempotency_conflict"
    assert snapshot(store) == before
    assert one(cmd("record_balance", id="r1", balance="1000.00", date="2026-01-05"), store)["status"] == (
        "duplicate"
    )


def test_idempotency__same_id_on_another_account_is_another_command() -> None:
    results = run(
        OPEN,
        cmd("open_account", id="o1", account="beta", my_share="2", company_share="3"),
        FUND,
        cmd("fund", id="f1", account="beta", amount="5"),
    )
    assert codes(results) == ["applied", "applied", "applied", "applied"]


def test_idempotency__retry_of_refused_gets_the_same_refusal_forever() -> None:
    store = opened()
    first = one(cmd("settle", id="s1", payment="5"), store)
    assert first["error"]["code"] == "no_active_loss"
    # A loss opens: the payment would now pass, but the id's outcome never changes.
    assert one(cmd("record_balance", id="r1", balance="900"), store)["status"] == "applied"
    retry = one(cmd("settle", id="s1", payment=Lit("5.00")), store)
    assert first["error"]["message"] == "there is no active loss to settle on this account"
    assert retry == {
        **first,
        "line": 1,
        "error": {
            "code": "no_active_loss",
            "message": "id 's1' was refused when first sent: there was no active loss to settle; the same "
            "command gets the same answer, so send a new command under a new id",
            "recorded": True,
        },
    }
    assert one(cmd("settle", id="s1", payment="6"), store)["error"]["code"] == "idempotency_conflict"


def test_decision_status__every_refusal_code_has_a_rule_for_its_retry() -> None:
    assert set(transitions.REFUSAL_RULES) == REFUSAL_CODES


@pytest.mark.parametrize("code", sorted(REFUSAL_CODES))
def test_decision_status__a_retried_refusal_keeps_its_code_and_says_it_was_refused(code: Code) -> None:
    refused = Refused(
        command=Settle(id="s1", account="acme", payment_minor=1), code=code, message="first words"
    )
    status, rejection = jsonl.decision_status(Repeated(entry=refused))
    assert status == "rejected"
    assert isinstance(rejection, Refused), "a retried refusal is still the recorded refusal"
    assert (rejection.code, rejection.message) == (
        code,
        f"id 's1' was refused when first sent: {transitions.REFUSAL_RULES[code]}; the same command "
        f"gets the same answer, so send a new command under a new id",
    )
    # The first answer, by contrast, is the refusal itself, with its own words.
    assert jsonl.decision_status(refused) == ("rejected", refused)


# --- Every rejection and refusal: nothing changes; only a refusal records its id -----------------

SETUP_LOSS = (cmd("record_balance", id="r1", balance="900", date="2026-01-05"),)
SETUP_PROFIT = (cmd("record_balance", id="r1", balance="1200", date="2026-01-05"),)
REUSE = cmd("set_shares", id="{id}", my_share="2", company_share="3")

REJECTIONS = [
    # (name, setup, line, code, id): a pure rejection; the id stays free.
    ("malformed_json", (), '{"id":"x1"', "malformed", "x1"),
    ("malformed_extra_field", (), cmd("fund", amount="5", memo="m"), "malformed", "x1"),
    ("malformed_bad_date", (), cmd("record_balance", balance="900", date="2023-02-29"), "malformed", "x1"),
    ("malformed_account", (), cmd("fund", account="acct!", amount="5"), "malformed", "x1"),
    ("malformed_bare_nan", (), cmd("fund", amount=Lit("NaN")), "malformed", "x1"),
    ("unknown_account", (), cmd("fund", account="nobody", amount="5"), "unknown_account", "x1"),
    ("account_exists", (), cmd("open_account", my_share="1", company_share="9"), "account_exists", "x1"),
    ("invalid_amount_fund", (), cmd("fund", amount="-5"), "invalid_amount", "x1"),
    ("invalid_amount_balance", (), cmd("record_balance", balance="1.234"), "invalid_amount", "x1"),
    ("invalid_amount_payment", SETUP_LOSS, cmd("settle", payment="0"), "invalid_amount", "x1"),
    ("invalid_shares", (), cmd("set_shares", my_share="60", company_share="50"), "invalid_shares", "x1"),
    ("idempotency_conflict", (), cmd("fund", id="f1", amount="7"), "idempotency_conflict", None),
    (
        "refused_retry",
        (cmd("settle", id="s1", payment="5"),),
        cmd("settle", id="s1", payment="5.00"),
        "no_active_loss",
        None,
    ),
    ("duplicate", (), cmd("fund", id="f1", amount=Lit("1000")), "duplicate", None),
]


@pytest.mark.parametrize(
    ("setup", "line", "code", "id"), [row[1:] for row in REJECTIONS], ids=[row[0] for row in REJECTIONS]
)
def test_rejection__changes_nothing_and_leaves_the_id_free(
    setup: tuple[str, ...], line: str, code: str, id: str | None
) -> None:
    store = opened(*setup)
    before = snapshot(store)
    (result,) = codes(run(line, store=store))
    assert result == code
    assert snapshot(store) == before, "a rejection changes nothing and records nothing"
    if id is not None:
        assert codes(run(REUSE.replace("{id}", id), store=store)) == ["applied"]


REFUSALS = [
    # (name, setup, line, code, another command under the same id): a state rule; recorded.
    ("loss_active", SETUP_LOSS, cmd("record_balance", balance="950"), "loss_active", cmd("fund", amount="1")),
    (
        "stale_balance",
        SETUP_PROFIT,
        cmd("record_balance", balance="1000", date="2026-01-04"),
        "stale_balance",
        cmd("record_balance", balance="1000", date="2026-01-05"),
    ),
    ("limit_fund", (), cmd("fund", amount="999999999999999.01"), "limit_exceeded", cmd("fund", amount="1")),
    (
        "limit_profit",
        (cmd("record_balance", id="r1", balance="1000000000000000"),),
        cmd("record_balance", balance="1000000000000000"),
        "limit_exceeded",
        cmd("record_balance", balance="1000"),
    ),
    ("no_active_loss", (), cmd("settle", payment="1"), "no_active_loss", cmd("fund", amount="1")),
    (
        "payment_exceeds_payable",
        SETUP_LOSS,
        cmd("settle", payment="10.01"),
        "payment_exceeds_payable",
        cmd("settle", payment="10"),
    ),
    (
        "unknown_payout",
        SETUP_PROFIT,
        cmd("confirm_payout", payout="acme:r2"),
        "unknown_payout",
        cmd("confirm_payout", payout="acme:r1"),
    ),
]


@pytest.mark.parametrize(
    ("setup", "line", "code", "other"), [row[1:] for row in REFUSALS], ids=[row[0] for row in REFUSALS]
)
def test_refusal__changes_nothing_but_records_the_id(
    setup: tuple[str, ...], line: str, code: str, other: str
) -> None:
    store = opened(*setup)
    before, ledger_before, payouts_before = (
        account_of(store),
        list(store.ledger("acme")),
        store.payouts("acme"),
    )
    view_before = view(store)
    assert store.entry("acme", "x1") is None
    (result,) = run(line, store=store)
    assert result["error"]["code"] == code
    after = account_of(store)
    assert view(store) == view_before
    assert attrs.evolve(after, entry_count=before.entry_count) == before, "only the id's record is new"
    assert after.entry_count == before.entry_count + 1
    assert store.payouts("acme") == payouts_before
    recorded = store.entry("acme", "x1")
    assert isinstance(recorded, Refused)
    assert recorded.code == code
    assert recorded.command == jsonl.decode_line(line.encode())
    assert list(store.ledger("acme")) == [*ledger_before, recorded]
    # The id stays refused: the same command again gets the same code, told that it was refused when
    # first sent (the first answer's words are not stored); another command under it is a conflict.
    retried = {
        **result,
        "error": {"code": code, "message": transitions.recorded_refusal_message(recorded), "recorded": True},
    }
    assert retried["error"]["message"].startswith("id 'x1' was refused when first sent: ")
    assert run(line, store=store) == [retried]
    assert codes(run(other, store=store)) == ["idempotency_conflict"]
    assert view(store) == view_before
    assert account_of(store) == after


# --- Unknown accounts and payouts ----------------------------------------------------------------


def test_unknown_account__every_command_but_open() -> None:
    lines = [
        cmd("fund", amount="5"),
        cmd("record_balance", balance="5"),
        cmd("settle", payment="5"),
        cmd("set_shares", my_share="1", company_share="1"),
        cmd("confirm_payout", payout="acme:r1"),
    ]
    results = run(*lines)
    assert codes(results) == ["unknown_account"] * 5
    assert all("'acme'" in result["error"]["message"] for result in results)


def test_unknown_payout__of_another_account() -> None:
    store = MemoryStore()
    results = run(
        cmd("open_account", id="o1", account="a", my_share="1", company_share="9"),
        cmd("open_account", id="o1", account="b", my_share="1", company_share="9"),
        cmd("record_balance", id="r1", account="a", balance="10"),
        cmd("confirm_payout", id="c1", account="b", payout="a:r1"),
        cmd("confirm_payout", id="c1", account="a", payout="a:r1"),
        cmd("confirm_payout", id="c2", account="a", payout="a:r1"),
        store=store,
    )
    assert codes(results) == ["applied", "applied", "applied", "unknown_payout", "applied", "applied"]
    assert "'a:r1'" in results[3]["error"]["message"]
    assert view(store, "a")["payouts"] == [{"id": "a:r1", "amount": "10.00", "status": "confirmed"}]


# --- confirm_payout: the payout rule (spec.md#fields) --------------------------------------------

PAYOUT_NUL = '{"id":"x1","account":"acme","type":"confirm_payout","payout":"a\\u0000b"}'
"""A payout with a NUL, written as a JSON escape in the line."""


def payout_line(payout: str | Lit, id: str = "x1") -> str:
    """A confirm_payout line on acme; a str payout is written with json.dumps (ASCII, escapes)."""
    return cmd("confirm_payout", id=id, payout=payout)


def test_confirm_payout__payout_of_192_characters_is_accepted() -> None:
    store = opened()
    assert one(payout_line("p" * 192), store)["error"]["code"] == "unknown_payout"
    assert isinstance(store.entry("acme", "x1"), Refused)


def test_confirm_payout__payout_of_193_characters_is_accepted() -> None:
    store = opened()
    assert one(payout_line("p" * 193), store)["error"]["code"] == "unknown_payout"
    assert isinstance(store.entry("acme", "x1"), Refused)


@pytest.mark.parametrize("payout_chars", [192, 193])
def test_confirm_payout__longest_real_payouts_are_confirmed(payout_chars: int) -> None:
    # `<account>:<command id>` with a 128-character command id and an account of 63 or 64.
    account_id, command_id = "a" * (payout_chars - 129), "b" * 128
    payout = f"{account_id}:{command_id}"
    assert len(payout) == payout_chars
    results = run(
        cmd("open_account", id="o1", account=account_id, my_share="1", company_share="9"),
        cmd("record_balance", id=command_id, account=account_id, balance="10"),
        cmd("confirm_payout", id="c1", account=account_id, payout=payout),
    )
    assert codes(results) == ["applied", "applied", "applied"]


def test_confirm_payout__payout_of_194_characters_is_malformed() -> None:
    store = opened()
    before = snapshot(store)
    result = one(payout_line("p" * 194), store)
    assert result["error"]["code"] == "malformed"
    assert "must be 1 to 193 characters long, not 194" in result["error"]["message"]
    assert snapshot(store) == before
    assert store.entry("acme", "x1") is None


def test_confirm_payout__empty_payout_is_malformed() -> None:
    store = opened()
    result = one(payout_line(""), store)
    assert result["error"] == {
        "code": "malformed",
        "message": "payout '' must be 1 to 193 characters long, not 0",
        "recorded": False,
    }
    assert store.entry("acme", "x1") is None


def test_confirm_payout__payout_with_nul_is_malformed_and_not_recorded() -> None:
    # The seed refused this payout and recorded the refusal: PostgreSQL cannot store a NUL in text.
    assert payout_line("a\x00b") == PAYOUT_NUL
    store = opened()
    before = snapshot(store)
    result = one(PAYOUT_NUL, store)
    assert result == {
        "line": 1,
        "id": "x1",
        "account": "acme",
        "status": "rejected",
        "error": {
            "code": "malformed",
            "message": "payout must not contain the control character U+0000",
            "recorded": False,
        },
    }
    assert snapshot(store) == before
    # The id stays free: the same id with another payout reaches the state rules.
    assert store.entry("acme", "x1") is None
    assert one(payout_line("ab"), store)["error"]["code"] == "unknown_payout"


def test_confirm_payout__payout_with_lone_surrogate_is_malformed() -> None:
    line = '{"id":"x1","account":"acme","type":"confirm_payout","payout":"\\ud800"}'
    assert payout_line("\ud800") == line
    store = opened()
    result = one(line, store)
    assert result["error"] == {
        "code": "malformed",
        "message": "payout must not contain the lone surrogate U+D800",
        "recorded": False,
    }
    assert store.entry("acme", "x1") is None


@pytest.mark.parametrize(
    "payout",
    [
        pytest.param(Lit('"\\u0085"'), id="escaped"),
        pytest.param(Lit('"a\u0085b"'), id="raw_utf8"),
    ],
)
def test_confirm_payout__payout_with_c1_control_is_malformed(payout: Lit) -> None:
    store = opened()
    result = one(payout_line(payout), store)
    assert result["error"] == {
        "code": "malformed",
        "message": "payout must not contain the control character U+0085",
        "recorded": False,
    }
    assert store.entry("acme", "x1") is None


def test_confirm_payout__surrogate_pair_written_as_two_escapes_is_one_character() -> None:
    pair = "\\ud83d\\ude00"
    decoded = jsonl.decode_line(payout_line(Lit('"' + pair * 193 + '"')).encode())
    assert decoded == ConfirmPayout(id="x1", account="acme", payout="\U0001f600" * 193)
    store = opened()
    assert one(payout_line(Lit('"' + pair * 193 + '"')), store)["error"]["code"] == "unknown_payout"
    result = one(payout_line(Lit('"' + pair * 194 + '"'), id="x2"), store)
    assert result["error"]["code"] == "malformed"
    assert "not 194" in result["error"]["message"]


# --- Input lines through the runner --------------------------------------------------------------


def test_lines__blank_lines_count_toward_numbering() -> None:
    data = (OPEN + "\n\n  \t\n\r\n" + FUND + "\n \n" + "oops\n").encode()
    assert [(result["line"], result["status"]) for result in run_bytes(data)] == [
        (1, "applied"),
        (5, "applied"),
        (7, "rejected"),
    ]


def test_lines__crlf_bom_and_last_line_without_newline() -> None:
    data = (
        b"\xef\xbb\xbf"
        + OPEN.encode()
        + b"\r\n"
        + FUND.encode()
        + b"\r\n"
        + cmd("fund", id="f2", amount="1").encode()
    )
    results = run_bytes(data)
    assert codes(results) == ["applied", "applied", "applied"]
    assert [result["line"] for result in results] == [1, 2, 3]


def test_lines__bad_utf8_is_one_malformed_line_and_the_rest_go_on() -> None:
    store = MemoryStore()
    data = OPEN.encode() + b"\n" + b'{"id":"\xff\xfe"}\n' + b"\x80\x81\n" + FUND.encode() + b"\n"
    results = run_bytes(data, store)
    assert codes(results) == ["applied", "malformed", "malformed", "applied"]
    assert "id" not in results[1]
    assert account_of(store).funding_minor == 100_000


def test_lines__over_one_mib_is_malformed_and_the_rest_go_on() -> None:
    huge = cmd("fund", id="f2", amount="1" + " " * (jsonl.LINE_BYTES_MAX + 10))
    results = run(OPEN, huge, FUND)
    assert codes(results) == ["applied", "malformed", "applied"]
    assert results[1] == {
        "line": 2,
        "status": "rejected",
        "error": {
            "code": "malformed",
            "message": f"the line is {len(huge)} bytes long; a line may be at most 1048576 bytes (1 MiB)",
            "recorded": False,
        },
    }


# --- The account view ----------------------------------------------------------------------------


def test_view__exact_strings_with_an_active_loss() -> None:
    store = opened(
        cmd("record_balance", id="r1", balance="1200"),
        cmd("record_balance", id="r2", balance="1300"),
        cmd("confirm_payout", id="c1", payout="acme:r1"),
        cmd("set_shares", id="s0", my_share="47.82", company_share="0.5"),
        cmd("record_balance", id="r3", balance="800"),
        cmd("settle", id="s1", payment="4"),
    )
    assert view(store) == {
        "account": "acme",
        "shares": {"my": "47.82", "company": "0.50"},
        "capital": "991.73",
        "balance": "800.00",
        "loss": {
            "original": "200.00",
            "remaining": "191.73",
            "payable": "92.64",
            "shares": {"my": "47.82", "company": "0.50"},
        },
        "totals": {
            "funding": "1000.00",
            "capital_closed": "8.27",
            "profit_withdrawn": "500.00",
            "settled_payments": "4.00",
            "my_share": "3.95",
            "company_share": "0.05",
        },
        "payouts": [
            {"id": "acme:r1", "amount": "200.00", "status": "confirmed"},
            {"id": "acme:r2", "amount": "300.00", "status": "pending"},
        ],
    }


def test_view__loss_keeps_its_frozen_shares() -> None:
    store = opened(
        cmd("record_balance", id="r1", balance="900"),
        cmd("set_shares", id="s0", my_share="2", company_share="3"),
    )
    account_view = view(store)
    assert account_view["shares"] == {"my": "2.00", "company": "3.00"}
    assert account_view["loss"] == {
        "original": "100.00",
        "remaining": "100.00",
        "payable": "10.00",
        "shares": {"my": "1.00", "company": "9.00"},
    }


def test_view__payouts_sorted_by_id() -> None:
    store = opened(
        cmd("record_balance", id="b", balance="1001"),
        cmd("record_balance", id="B", balance="1002"),
        cmd("record_balance", id="a", balance="1003"),
    )
    assert [payout["id"] for payout in view(store)["payouts"]] == [
        "acme:B",
        "acme:a",
        "acme:b",
    ]


def test_view__fresh_account() -> None:
    store = MemoryStore()
    (result,) = run(OPEN, store=store)
    assert result["status"] == "applied"
    assert jsonl.encode_line(view(store)) == (
        b'{"account":"acme","shares":{"my":"1.00","company":"9.00"},"capital":"0.00","balance":"0.00",'
        b'"loss":null,"totals":{"funding":"0.00","capital_closed":"0.00","profit_withdrawn":"0.00",'
        b'"settled_payments":"0.00","my_share":"0.00","company_share":"0.00"},"payouts":[]}\n'
    )


# --- Properties: no line crashes the codec, no stream crashes the runner -------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["id", "account", "type", "amount", "date", "x"]), children, max_size=5
        )
    ),
    max_leaves=8,
)

AMOUNTS = st.one_of(
    st.integers(0, 200_000).map(lambda hundredths: f"{hundredths // 100}.{hundredths % 100:02d}"),
    st.integers(0, 3_000).map(lambda whole: Lit(str(whole))),
    st.sampled_from(["0", "1e3", "-1", "0.001", "1000000000000000", "1000000000000000.01", " 5"]),
)
SHARES = st.integers(0, 10_001).map(lambda bp: f"{bp // 100}.{bp % 100:02d}") | st.sampled_from(
    ["1", "9", "x"]
)


def _command_lines() -> st.SearchStrategy[str]:
    ids = st.sampled_from(["a", "b", "c", "d"])
    accounts = st.sampled_from(["acme", "beta"])
    days = st.sampled_from(["2026-01-01", "2026-01-02", "2026-01-03", _ABSENT])
    payouts = st.sampled_from(["acme:a", "acme:b", "beta:c", "acme:x"])
    return st.one_of(
        st.builds(
            lambda i, a, m, c: cmd("open_account", i, a, my_share=m, company_share=c),
            ids,
            accounts,
            SHARES,
            SHARES,
        ),
        st.builds(lambda i, a, q: cmd("fund", i, a, amount=q), ids, accounts, AMOUNTS),
        st.builds(
            lambda i, a, q, d: cmd("record_balance", i, a, balance=q, date=d), ids, accounts, AMOUNTS, days
        ),
        st.builds(lambda i, a, q: cmd("settle", i, a, payment=q), ids, accounts, AMOUNTS),
        st.builds(
            lambda i, a, m, c: cmd("set_shares", i, a, my_share=m, company_share=c),
            ids,
            accounts,
            SHARES,
            SHARES,
        ),
        st.builds(lambda i, a, p: cmd("confirm_payout", i, a, payout=p), ids, accounts, payouts),
    )


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_property__any_bytes_give_one_result_per_non_blank_line(data: bytes) -> None:
    results = run_bytes(data)
    assert len(results) == len(list(jsonl.read_lines(io.BytesIO(data))))
    for result in results:
        assert json.loads(jsonl.encode_line(result)) == result


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_property__any_json_value_decodes_or_is_malformed(value: Any) -> None:
    decoded = jsonl.decode_line(json.dumps(value).encode("utf-8", "surrogatepass"))
    if isinstance(decoded, jsonl.Malformed):
        assert decoded.rejected.message
        assert json.loads(jsonl.encode_line(jsonl.malformed_result(1, decoded)))["status"] == "rejected"


@settings(max_examples=200, deadline=None)
@given(st.lists(_command_lines(), max_size=30))
def test_property__any_command_stream_replays_and_views(lines: list[str]) -> None:
    store = MemoryStore()
    results = run(*lines, store=store)
    assert [result["line"] for result in results] == list(range(1, len(lines) + 1))
    for account_id in store.account_ids():
        account_view = view(store, account_id)
        assert json.loads(jsonl.encode_line(account_view)) == account_view


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            b"\xff",
            "the line is not UTF-8 text: its byte 1, 0xFF, is not valid UTF-8",
        ),
        (
            '{"id":"x\t1"}',
            "the line is not valid JSON: Invalid control character at column 9",
        ),
        (
            cmd("fund", amount=None),
            'amount must be an amount, like "1500.25" or 1500, written as a JSON string or number, not null',
        ),
        (
            cmd("set_shares", my_share="1", company_share=True),
            'company_share must be a percentage, like "9" or 47.82, '
            "written as a JSON string or number, not true",
        ),
        (
            cmd("record_balance", balance="5", date="2023-02-29"),
            "date must be a real day written as a string YYYY-MM-DD, from 0001-01-01 to 9999-12-31, "
            "like \"2026-01-05\", not the string '2023-02-29'",
        ),
        (
            cmd("fund", amount="5", memo="x"),
            "field 'memo' is not a field of fund, which has only id, account, type, amount",
        ),
        (
            cmd("fund", id="x" * 200, amount="5"),
            "id '" + "x" * 80 + "'… (200 characters) must be 1 to 128 characters long, not 200",
        ),
    ],
)
def test_decode_line__exact_messages(line: str | bytes, message: str) -> None:
    assert malformed(line).rejected.message == message


def test_decode_line__long_values_are_cut_short_in_messages() -> None:
    message = malformed(cmd("x" * 10_000)).rejected.message
    assert "'" + "x" * jsonl.SHOWN_CHARS_MAX + "'… (10000 characters)" in message
    assert len(message) < 300


def test_replay__long_amount_is_cut_short_in_the_message() -> None:
    """A million-digit amount is invalid_amount, and its result stays a short line."""
    lines = [
        cmd("open_account", id="o", my_share="1", company_share="9"),
        cmd("fund", id="f", amount="1" * 1_000_000),
    ]
    results = list(replay_lines(io.BytesIO("\n".join(lines).encode()), MemoryStore()))
    assert results[1]["error"]["code"] == "invalid_amount"
    assert "over the limit" in results[1]["error"]["message"]
    assert len(results[1]["error"]["message"]) < 300


def test_replay__share_with_too_many_digits_is_out_of_range() -> None:
    lines = [cmd("open_account", id="o", my_share="1" * 30, company_share="9")]
    (result,) = replay_lines(io.BytesIO("\n".join(lines).encode()), MemoryStore())
    assert result["error"]["code"] == "invalid_shares"
    assert result["error"]["message"] == "my_share '" + "1" * 30 + "' % must be from 0 to 100 %"


KERNEL_COMMANDS = [
    OpenAccount(id="o", account="acme", my_share_bp=100, company_share_bp=4782),
    Fund(id="f", account="acme", amount_minor=100_005),
    RecordBalance(id="b", account="acme", balance_minor=0, date=datetime.date(2026, 1, 5)),
    RecordBalance(id="b2", account="acme", balance_minor=90_000),
    Settle(id="s", account="acme", payment_minor=1),
    SetShares(id="h", account="acme", my_share_bp=0, company_share_bp=10_000),
    ConfirmPayout(id="p", account="acme", payout="acme:b"),
]


@pytest.mark.parametrize("command", KERNEL_COMMANDS, ids=lambda command: type(command).__name__)
def test_command_object__decodes_back_to_the_command(command: Command) -> None:
    assert jsonl.decode_line(jsonl.encode_line(jsonl.command_object(command))[:-1]) == command
