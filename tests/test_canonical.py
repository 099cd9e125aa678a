"""The canonical encoding of a ledger entry (adapters/canonical.py, spec.md#encoding): it round-trips
every entry kind exactly, its bytes are the same in every process whatever `PYTHONHASHSEED`, a refusal's
words are not in them, the decoder takes nothing but those exact bytes, and the worked example's
entries have the bytes the spec shows.
"""

from __future__ import annotations

import datetime
import json
import os
import pickle
import subprocess
import sys
import typing
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppk.adapters.canonical import (
    ENTRY_ENCODING_VERSION,
    EVENT_TYPES,
    INTEGER_MAX,
    INTEGER_MIN,
    CorruptEntryError,
    canonical_bytes,
    decode_entry,
    encode_entry,
    entry_object,
)
from ppk.adapters.store import MemoryStore
from ppk.kernel.state import (
    COMMAND_TABLE,
    REFUSAL_CODES,
    Applied,
    Code,
    Command,
    ConfirmPayout,
    Entry,
    Fund,
    InvalidAmount,
    OpenAccount,
    RecordBalance,
    Refused,
    SetShares,
    Settle,
    Settled,
)
from ppk.kernel.transitions import replay_with_payouts
from ppk.stateful_tests.entry_strategies import (
    ENTRIES,
    EVENT_CLASSES,
    REFUSED,
)


def test_strategies__cover_every_command_type_event_class_and_refusal_code() -> None:
    assert {row.cls for row in COMMAND_TABLE} == set(typing.get_args(Command))
    assert len(COMMAND_TABLE) == 6
    assert len(EVENT_CLASSES) == 9
    assert set(EVENT_TYPES.values()) == set(EVENT_CLASSES)
    assert len(REFUSAL_CODES) == 6


# --- (a) Round trip ------------------------------------------------------------------------------


def is_canonical_json(data: bytes) -> bool:
    """Independently of the encoder: the bytes are UTF-8 JSON with keys sorted at every level, no
    whitespace between tokens, no float, and nothing escaped that needs no escape."""
    value = json.loads(data.decode("utf-8"), parse_float=lambda text: pytest.fail(f"a float: {text}"))
    again = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return again.encode("utf-8") == data


@settings(max_examples=500, deadline=None)
@given(ENTRIES)
def test_encode_entry__decodes_back_to_the_same_entry(entry: Entry) -> None:
    data = encode_entry(entry)
    decoded = decode_entry(data)
    assert decoded == entry
    assert type(decoded) is type(entry)
    assert type(decoded.command) is type(entry.command)
    if isinstance(entry, Applied):
        assert isinstance(decoded, Applied)
        assert [type(event) for event in decoded.events] == [type(event) for event in entry.events]
    assert encode_entry(decoded) == data
    assert is_canonical_json(data)
    assert json.loads(data)["version"] == ENTRY_ENCODING_VERSION == 1


@settings(max_examples=300, deadline=None)
@given(ENTRIES)
def test_encode_entry__is_deterministic(entry: Entry) -> None:
    data = encode_entry(entry)
    assert encode_entry(entry) == data
    # An equal entry built apart, and one rebuilt from the bytes, give the same bytes.
    assert encode_entry(pickle.loads(pickle.dumps(entry))) == data
    assert encode_entry(decode_entry(data)) == data
    assert canonical_bytes(entry_object(entry)) == data


@settings(max_examples=300, deadline=None)
@given(REFUSED, st.text(max_size=80))
def test_encode_entry__a_refusals_message_does_not_change_its_bytes(refused: Refused, message: str) -> None:
    reworded = attrs.evolve(refused, message=message)
    assert encode_entry(reworded) == encode_entry(refused)
    assert encode_entry(attrs.evolve(refused, message="")) == encode_entry(refused)
    assert decode_entry(encode_entry(refused)).message == ""
    assert "message" not in json.loads(encode_entry(refused))


def test_encode_entry__escapes_only_quote_backslash_and_controls() -> None:
    # An id from a ledger older than the id rules may hold a control character.
    odd = 'a"\\\x07\x1f\x7f\u0085é\u2028😀'
    entry = Applied(command=SetShares(id=odd, account="acme", my_share_bp=0, company_share_bp=0), events=())
    data = encode_entry(entry)
    assert data == (
        b'{"command":{"account":"acme","company_share_bp":0,"id":"a\\"\\\\\\u0007\\u001f'
        + "\x7f\u0085é\u2028😀".encode()
        + b'","my_share_bp":0,"type":"set_shares"},"events":[],"outcome":"applied","version":1}'
    )
    assert decode_entry(data) == entry


# --- (b) Determinism under two PYTHONHASHSEEDs ----------------------------------------------------


def entry_batch() -> list[Entry]:
    """A fixed batch of entries of every kind: the same on every run (derandomized Hypothesis)."""
    batch: list[Entry] = []

    @settings(max_examples=200, derandomize=True, database=None, deadline=None)
    @given(ENTRIES)
    def collect(entry: Entry) -> None:
        batch.append(entry)

    collect()
    return batch + worked_example_ledger()


ENCODE_IN_A_FRESH_PROCESS = """
import pickle, sys
from ppk.adapters.canonical import encode_entry
with open(sys.argv[1], "rb") as source:
    entries = pickle.load(source)
with open(sys.argv[2], "wb") as target:
    pickle.dump((hash("ppk"), [encode_entry(entry) for entry in entries]), target)
"""


def test_encode_entry__same_bytes_under_two_hash_seeds(tmp_path: Path) -> None:
    batch = entry_batch()
    assert len(batch) > 100
    assert {type(entry) for entry in batch} == {Applied, Refused}
    assert {type(entry.command) for entry in batch} == {row.cls for row in COMMAND_TABLE}
    assert {type(event) for entry in batch if isinstance(entry, Applied) for event in entry.events} == set(
        EVENT_CLASSES
    )
    entries_path = tmp_path / "entries.pickle"
    entries_path.write_bytes(pickle.dumps(batch))
    outputs = {}
    for seed in ["0", "12345"]:
        output_path = tmp_path / f"encoded-{seed}.pickle"
        completed = subprocess.run(
            [sys.executable, "-c", ENCODE_IN_A_FRESH_PROCESS, str(entries_path), str(output_path)],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr
        outputs[seed] = pickle.loads(output_path.read_bytes())
    (hash_0, encoded_0), (hash_12345, encoded_12345) = outputs["0"], outputs["12345"]
    assert hash_0 != hash_12345, "the two processes did hash strings differently"
    assert encoded_0 == encoded_12345
    assert encoded_0 == [encode_entry(entry) for entry in batch]


# --- (c) Strictness: only the exact bytes encode_entry writes decode -----------------------------

C4 = (
    b'{"command":{"account":"acme","id":"c4","payment_minor":400,"type":"settle"},"events":[{'
    b'"capital_closed_minor":4000,"company_share_minor":360,"loss":"c3","my_share_minor":40,'
    b'"payment_minor":400,"type":"settled"}],"outcome":"applied","version":1}'
)
C5 = (
    b'{"code":"payment_exceeds_payable","command":{"account":"acme","id":"c5","payment_minor":700,'
    b'"type":"settle"},"outcome":"refused","version":1}'
)
C7 = (
    b'{"command":{"account":"acme","balance_minor":120000,"date":"2026-01-12","id":"c7",'
    b'"type":"record_balance"},"events":[{"balance_minor":120000,"capital_minor":90000,"date":"2026-01-12",'
    b'"type":"balance_recorded"},{"amount_minor":30000,"payout_id":"acme:c7","type":"profit_withdrawn"}],'
    b'"outcome":"applied","version":1}'
)


def test_decode_entry__the_examples_here_are_canonical() -> None:
    for data in [C4, C5, C7]:
        assert encode_entry(decode_entry(data)) == data


CORRUPT = [
    # (name, bytes, words the message must hold: the field at fault)
    (
        "bool_for_an_int",
        C4.replace(b'"payment_minor":400,"type"', b'"payment_minor":true,"type"'),
        ["command.payment_minor", "integer"],
    ),
    ("string_for_an_int", C4.replace(b"4000", b'"4000"'), ["events[0].capital_closed_minor", "integer"]),
    ("int_for_a_string", C4.replace(b'"id":"c4"', b'"id":4'), ["command.id", "string"]),
    ("null_for_an_int", C5.replace(b"700", b"null"), ["command.payment_minor", "integer"]),
    ("missing_key", C4.replace(b',"version":1', b""), ["entry", "missing ['version']"]),
    ("missing_command_key", C4.replace(b'"id":"c4",', b""), ["command", "missing ['id']"]),
    ("missing_event_key", C4.replace(b'"loss":"c3",', b""), ["events[0]", "missing ['loss']"]),
    ("extra_key", C5.replace(b'"outcome"', b'"message":"x","outcome"'), ["entry", "extra ['message']"]),
    ("extra_command_key", C4.replace(b'"id":"c4",', b'"id":"c4","memo":"",'), ["command", "extra ['memo']"]),
    (
        "extra_event_key",
        C4.replace(b'"loss":"c3",', b'"loss":"c3","note":1,'),
        ["events[0]", "extra ['note']"],
    ),
    (
        "events_on_a_refusal",
        C5.replace(b'"outcome"', b'"events":[],"outcome"'),
        ["entry", "extra ['events']"],
    ),
    (
        "code_on_an_application",
        C4.replace(b'"events"', b'"code":"no_active_loss","events"'),
        ["entry", "extra ['code']"],
    ),
    ("unknown_command_type", C5.replace(b'"settle"', b'"withdraw"'), ["command.type", "'withdraw'"]),
    ("unknown_event", C4.replace(b'"settled"', b'"refunded"'), ["events[0].type", "'refunded'"]),
    ("wrong_version", C4.replace(b'"version":1', b'"version":2'), ["version", "not 2"]),
    ("version_as_string", C4.replace(b'"version":1', b'"version":"1"'), ["version", "integer"]),
    ("unknown_outcome", C4.replace(b'"applied"', b'"accepted"'), ["outcome", "'accepted'"]),
    ("not_an_object", b"[1,2]", ["outcome"]),
    ("non_refusal_code", C5.replace(b"payment_exceeds_payable", b"malformed"), ["code", "'malformed'"]),
    ("unknown_code", C5.replace(b"payment_exceeds_payable", b"overdrawn"), ["code", "'overdrawn'"]),
    (
        "date_not_a_day",
        C7.replace(b'"date":"2026-01-12","id"', b'"date":"2026-1-12","id"'),
        ["command.date", "YYYY-MM-DD"],
    ),
    (
        "date_as_number",
        C7.replace(b'"date":"2026-01-12","type"', b'"date":20260112,"type"'),
        ["events[0].date", "string"],
    ),
    (
        "events_not_a_list",
        C4.replace(b'"events":[', b'"events":{"a":').replace(b'}],"outcome"', b'}},"outcome"'),
        ["events", "array"],
    ),
    (
        "int_over_64_bits",
        C4.replace(b"4000", str(2**63).encode()),
        ["events[0].capital_closed_minor", "64-bit"],
    ),
    (
        "int_under_64_bits",
        C4.replace(b"4000", str(-(2**63) - 1).encode()),
        ["events[0].capital_closed_minor", "64-bit"],
    ),
    (
        "command_int_over_64_bits",
        C5.replace(b"700", str(2**64).encode()),
        ["command.payment_minor", "64-bit"],
    ),
]


@pytest.mark.parametrize(("data", "words"), [row[1:] for row in CORRUPT], ids=[row[0] for row in CORRUPT])
def test_decode_entry__refuses_a_field_out_of_shape_naming_it(data: bytes, words: list[str]) -> None:
    with pytest.raises(CorruptEntryError) as refused:
        decode_entry(data)
    for word in words:
        assert word in str(refused.value)


def test_decode_entry__a_64_bit_integer_at_the_bounds_is_read() -> None:
    for bound in [INTEGER_MAX, INTEGER_MIN]:
        data = C4.replace(b"4000", str(bound).encode())
        decoded = decode_entry(data)
        assert isinstance(decoded, Applied)
        (event,) = decoded.events
        assert isinstance(event, Settled) and event.capital_closed_minor == bound


@pytest.mark.parametrize(
    ("data", "words"),
    [
        pytest.param(
            C4.replace(b"4000", b"4000.0"),
            ["capital_closed_minor", "must be an integer", "4000.0"],
            id="float",
        ),
        pytest.param(
            C4.replace(b"4000", b"4e3"), ["capital_closed_minor", "must be an integer", "4e3"], id="exponent"
        ),
        pytest.param(C4.replace(b"4000", b"NaN"), ["NaN"], id="nan"),
        pytest.param(C4.replace(b"4000", b"-Infinity"), ["-Infinity"], id="minus_infinity"),
    ],
)
def test_decode_entry__refuses_a_number_that_is_not_an_integer(data: bytes, words: list[str]) -> None:
    with pytest.raises(CorruptEntryError) as refused:
        decode_entry(data)
    for word in words:
        assert word in str(refused.value)


def test_decode_entry__a_float_is_refused_naming_its_field() -> None:
    with pytest.raises(CorruptEntryError, match=r"events\[0\]\.capital_closed_minor"):
        decode_entry(C4.replace(b"4000", b"4000.0"))


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(C5.replace(b"700", b"7" * 5000), id="integer_of_5000_digits"),
        pytest.param(C5.replace(b'"c5"', b'"c\\ud800"'), id="escaped_lone_surrogate"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deep_nesting"),
    ],
)
def test_decode_entry__refuses_any_bytes_with_corrupt_entry_error(data: bytes) -> None:
    with pytest.raises(CorruptEntryError):
        decode_entry(data)


@pytest.mark.parametrize(
    ("data", "byte"),
    [
        pytest.param(C5.replace(b"acme", b"acm\xff"), 60, id="invalid_byte"),
        pytest.param(C5.replace(b"acme", b"\xed\xa0\x80"), 57, id="encoded_surrogate"),
        pytest.param(C5.replace(b"acme", b"\xc0\xaf"), 57, id="overlong"),
    ],
)
def test_decode_entry__refuses_bytes_that_are_not_utf8(data: bytes, byte: int) -> None:
    with pytest.raises(CorruptEntryError, match=f"UTF-8 text; byte {byte} is not"):
        decode_entry(data)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(
            b'{"command":{"account":"acme","id":"c5","payment_minor":700,"type":"settle"},'
            b'"code":"payment_exceeds_payable","outcome":"refused","version":1}',
            id="keys_out_of_order",
        ),
        pytest.param(
            C5.replace(b'"account":"acme","id":"c5"', b'"id":"c5","account":"acme"'),
            id="nested_keys_out_of_order",
        ),
        pytest.param(C5.replace(b'","command"', b'", "command"'), id="space_after_a_comma"),
        pytest.param(C5.replace(b'"code":', b'"code" :'), id="space_before_a_colon"),
        pytest.param(C5 + b"\n", id="trailing_newline"),
        pytest.param(b" " + C5, id="leading_space"),
        pytest.param(C5.replace(b'"acme"', b'"\\u0061cme"'), id="needless_escape"),
        pytest.param(C5.replace(b'"version":1', b'"version":01'), id="leading_zero"),
        pytest.param(C5.replace(b"700", b"-0"), id="minus_zero"),
    ],
)
def test_decode_entry__refuses_bytes_not_in_the_canonical_form(data: bytes) -> None:
    with pytest.raises(CorruptEntryError):
        decode_entry(data)


def test_decode_entry__non_canonical_json_is_named_as_such() -> None:
    reordered = (
        b'{"command":{"account":"acme","id":"c5","payment_minor":700,"type":"settle"},'
        b'"code":"payment_exceeds_payable","outcome":"refused","version":1}'
    )
    # The same entry as C5 in other bytes: a store that accepted it would keep two forms of one entry.
    assert json.loads(reordered) == json.loads(C5)
    with pytest.raises(CorruptEntryError, match="not in the canonical encoding"):
        decode_entry(reordered)
    with pytest.raises(CorruptEntryError, match="not in the canonical encoding"):
        decode_entry(C5.replace(b'"code":', b'"code": '))


def test_decode_entry__refuses_text_that_is_not_json() -> None:
    for data in [b"", C5[:-1], C5 + C5, b"{'a':1}"]:
        with pytest.raises(CorruptEntryError):
            decode_entry(data)


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(Fund(id="f1", account="acme", amount_minor=InvalidAmount(text="1e3")), id="fund"),
        pytest.param(
            SetShares(id="s1", account="acme", my_share_bp=100, company_share_bp=InvalidAmount(text="9%")),
            id="set_shares",
        ),
    ],
)
def test_encode_entry__refuses_an_entry_holding_an_invalid_amount(command: Command) -> None:
    for entry in [Applied(command=command, events=()), Refused(command=command, code=Code.NO_ACTIVE_LOSS)]:
        with pytest.raises(ValueError, match="is not an amount"):
            encode_entry(entry)


# --- (d) The worked example's bytes (docs/spec.md#worked-examples) --------------------------------

JAN_5 = datetime.date(2026, 1, 5)
JAN_12 = datetime.date(2026, 1, 12)

WORKED_COMMANDS: list[Command] = [
    OpenAccount(id="c1", account="acme", my_share_bp=100, company_share_bp=900),
    Fund(id="c2", account="acme", amount_minor=100_000),
    RecordBalance(id="c3", account="acme", balance_minor=90_000, date=JAN_5),
    Settle(id="c4", account="acme", payment_minor=400),
    Settle(id="c5", account="acme", payment_minor=700),
    Settle(id="c6", account="acme", payment_minor=600),
    RecordBalance(id="c7", account="acme", balance_minor=120_000, date=JAN_12),
    ConfirmPayout(id="c8", account="acme", payout="acme:c7"),
]


def worked_example_store() -> MemoryStore:
    store = MemoryStore()
    for command in WORKED_COMMANDS:
        store.execute(command)
    return store


def worked_example_ledger() -> list[Entry]:
    return list(worked_example_store().ledger("acme"))


def test_worked_example__c4_settlement_encodes_to_the_bytes_of_the_spec() -> None:
    entry = worked_example_store().entry("acme", "c4")
    assert isinstance(entry, Applied)
    assert encode_entry(entry) == (
        b'{"command":{"account":"acme","id":"c4","payment_minor":400,"type":"settle"},'
        b'"events":[{"capital_closed_minor":4000,"company_share_minor":360,"loss":"c3",'
        b'"my_share_minor":40,"payment_minor":400,"type":"settled"}],"outcome":"applied","version":1}'
    )
    assert encode_entry(entry) == C4
    assert decode_entry(C4) == entry


def test_worked_example__c5_refusal_encodes_to_the_bytes_of_the_spec() -> None:
    entry = worked_example_store().entry("acme", "c5")
    assert isinstance(entry, Refused)
    assert entry.code == Code.PAYMENT_EXCEEDS_PAYABLE
    assert entry.message, "the first answer had words; they are not in the bytes"
    assert encode_entry(entry) == (
        b'{"code":"payment_exceeds_payable","command":{"account":"acme","id":"c5","payment_minor":700,'
        b'"type":"settle"},"outcome":"refused","version":1}'
    )
    assert encode_entry(entry) == C5
    assert decode_entry(C5) == entry


def test_worked_example__every_entry_round_trips_and_replays() -> None:
    store = worked_example_store()
    ledger = list(store.ledger("acme"))
    assert [entry.command.id for entry in ledger] == [f"c{number}" for number in range(1, 9)]
    decoded = [decode_entry(encode_entry(entry)) for entry in ledger]
    assert decoded == ledger
    assert encode_entry(ledger[6]) == C7
    # The decoded bytes alone rebuild the same books.
    account, payouts = replay_with_payouts(decoded)
    assert account == store.account("acme")
    assert sorted(payouts.values(), key=lambda payout: payout.id) == store.payouts("acme")
