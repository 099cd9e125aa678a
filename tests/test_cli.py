"""`ppk replay`: the console script, its input and output streams and its exit statuses."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ppk.adapters import cli, jsonl
from ppk.adapters.store import MemoryStore
from ppk.kernel.state import Fund, OpenAccount

PPK = str(Path(sys.executable).with_name("ppk"))

OPEN = '{"id":"o1","account":"acme","type":"open_account","my_share":"1","company_share":"9"}'
FUND = '{"id":"f1","account":"acme","type":"fund","amount":"1000"}'
LOSS = '{"id":"r1","account":"acme","type":"record_balance","balance":"900","date":"2026-01-05"}'
SETTLE = '{"id":"s1","account":"acme","type":"settle","payment":4}'

WORKED = b"""\
{"id": "c1", "account": "acme", "type": "open_account", "my_share": "1", "company_share": "9"}
{"id": "c2", "account": "acme", "type": "fund", "amount": "1000"}
{"id": "c3", "account": "acme", "type": "record_balance", "balance": "900", "date": "2026-01-05"}
{"id": "c4", "account": "acme", "type": "settle", "payment": "4.00"}
{"id": "c4", "account": "acme", "type": "settle", "payment": 4}
{"id": "c5", "account": "acme", "type": "settle", "payment": "7"}
{"id": "c5", "account": "acme", "type": "settle", "payment": "7.00"}
{"id": "c6", "account": "acme", "type": "settle", "payment": "6"}
{"id": "c7", "account": "acme", "type": "record_balance", "balance": "1200", "date": "2026-01-12"}
{"id": "c8", "account": "acme", "type": "confirm_payout", "payout": "acme:c7"}
"""

WORKED_OUTPUT = b"""\
{"line":1,"id":"c1","account":"acme","status":"applied"}
{"line":2,"id":"c2","account":"acme","status":"applied"}
{"line":3,"id":"c3","account":"acme","status":"applied"}
{"line":4,"id":"c4","account":"acme","status":"applied"}
{"line":5,"id":"c4","account":"acme","status":"duplicate"}
{"line":6,"id":"c5","account":"acme","status":"rejected","error":{"code":"payment_exceeds_payable",\
"message":"payment 7.00 is more than the payable 6.00 of the active loss (remaining 60.00)","recorded":true}}
{"line":7,"id":"c5","account":"acme","status":"rejected","error":{"code":"payment_exceeds_payable",\
"message":"id 'c5' was refused when first sent: the payment was more than the payable of the active loss; \
the same command gets the same answer, so send a new command under a new id","recorded":true}}
{"line":8,"id":"c6","account":"acme","status":"applied"}
{"line":9,"id":"c7","account":"acme","status":"applied"}
{"line":10,"id":"c8","account":"acme","status":"applied"}
"""

WORKED_VIEW = (
    b'{"account":"acme","shares":{"my":"1.00","company":"9.00"},"capital":"900.00","balance":"900.00",'
    b'"loss":null,"totals":{"funding":"1000.00","capital_closed":"100.00","profit_withdrawn":"300.00",'
    b'"settled_payments":"10.00","my_share":"1.00","company_share":"9.00"},'
    b'"payouts":[{"id":"acme:c7","amount":"300.00","status":"confirmed"}]}\n'
)


def ppk(*args: str, input: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """The installed console script, run for real."""
    return subprocess.run([PPK, *args], input=input, capture_output=True, timeout=60, check=False)


def invoke(*args: str, input: bytes = b"") -> Any:
    return CliRunner().invoke(cli.main, list(args), input=input)


def lines_of(output: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines()]


def opener(stream: io.BufferedIOBase) -> Any:
    """A stand-in for `open` in the CLI's module that gives `stream` for any file name."""

    def fake_open(file: str, mode: str) -> io.BufferedIOBase:
        assert mode == "rb"
        return stream

    return fake_open


# --- The console script --------------------------------------------------------------------------


def test_replay__worked_example_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "worked.jsonl"
    path.write_bytes(WORKED)
    done = ppk("replay", "--show", str(path))
    assert done.returncode == 0
    assert done.stderr == b""
    assert done.stdout == WORKED_OUTPUT + WORKED_VIEW


def test_replay__reads_standard_input() -> None:
    done = ppk("replay", input=WORKED)
    assert done.returncode == 0
    assert done.stdout == WORKED_OUTPUT


def test_replay__dash_is_standard_input() -> None:
    done = ppk("replay", "--show", "-", input=WORKED)
    assert done.returncode == 0
    assert done.stdout == WORKED_OUTPUT + WORKED_VIEW


def test_replay__missing_file_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"
    done = ppk("replay", str(missing))
    assert done.returncode == 2
    assert done.stdout == b""
    assert b"cannot read" in done.stderr
    assert str(missing).encode() in done.stderr
    assert b"No such file or directory" in done.stderr
    assert b"Traceback" not in done.stderr


def test_replay__directory_exits_2(tmp_path: Path) -> None:
    done = ppk("replay", str(tmp_path))
    assert done.returncode == 2
    assert done.stdout == b""
    assert b"directory" in done.stderr


def test_replay__bad_utf8_on_standard_input_is_one_malformed_line() -> None:
    data = OPEN.encode() + b"\n" + b'{"id":"\xc3\x28"}\n' + b"\xff\n" + FUND.encode() + b"\n"
    done = ppk("replay", "--show", input=data)
    assert done.returncode == 0
    results = lines_of(done.stdout)
    assert [result.get("status") for result in results[:4]] == ["applied", "rejected", "rejected", "applied"]
    assert [result["error"]["code"] for result in results[1:3]] == ["malformed", "malformed"]
    assert results[4]["totals"]["funding"] == "1000.00"


def test_replay__lone_surrogate_id_is_echoed_as_an_escape() -> None:
    line = b'{"id":"\\ud800","account":"acme","type":"fund","amount":"5"}\n'
    done = ppk("replay", input=line + FUND.encode() + b"\n")
    assert done.returncode == 0
    first, second = done.stdout.splitlines()
    assert b'"id":"\\ud800"' in first
    assert json.loads(first)["error"]["code"] == "malformed"
    assert json.loads(second)["error"]["code"] == "unknown_account"


def test_replay__answers_each_line_before_the_input_ends() -> None:
    process = subprocess.Popen([PPK, "replay"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(OPEN.encode() + b"\n")
        process.stdin.flush()
        assert json.loads(process.stdout.readline())["status"] == "applied"
        process.stdin.write(b"nonsense\n")
        process.stdin.flush()
        assert json.loads(process.stdout.readline())["error"]["code"] == "malformed"
    finally:
        process.stdin.close()
        assert process.wait(timeout=60) == 0
        process.stdout.close()


def test_replay__closed_output_ends_it_by_sigpipe_quietly(tmp_path: Path) -> None:
    path = tmp_path / "many.jsonl"
    path.write_bytes(b"nonsense\n" * 50_000)
    process = subprocess.Popen([PPK, "replay", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    assert json.loads(process.stdout.readline())["line"] == 1
    process.stdout.close()
    assert process.wait(timeout=60) == -signal.SIGPIPE  # as head(1)'s writer ends; a shell says 141
    assert process.stderr.read() == b""
    process.stderr.close()


# --- The command, in process ---------------------------------------------------------------------


def test_replay__rejections_still_exit_0() -> None:
    result = invoke("replay", input=b"nonsense\n[]\n" + FUND.encode() + b"\n")
    assert result.exit_code == 0
    assert [line["error"]["code"] for line in lines_of(result.stdout_bytes)] == [
        "malformed",
        "malformed",
        "unknown_account",
    ]


def test_replay__empty_and_blank_input_print_nothing() -> None:
    for data in [b"", b"\n", b" \t\r\n\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf\r\n  "]:
        result = invoke("replay", "--show", input=data)
        assert result.exit_code == 0
        assert result.stdout_bytes == b""


def test_replay__line_numbers_count_blank_lines() -> None:
    data = b"\xef\xbb\xbf\r\n" + OPEN.encode() + b"\r\n\r\n \t\n" + FUND.encode()
    result = invoke("replay", input=data)
    assert [(line["line"], line["status"]) for line in lines_of(result.stdout_bytes)] == [
        (2, "applied"),
        (5, "applied"),
    ]


def test_replay__show_sorts_accounts_code_point_by_code_point() -> None:
    names = ["a", "B", "_", "Z", "-", "0", "b.", "b", "A", "."]
    data = b"".join(
        f'{{"id":"o","account":"{name}","type":"open_account","my_share":"0","company_share":"0"}}\n'.encode()
        for name in names
    )
    result = invoke("replay", "--show", input=data)
    assert result.exit_code == 0
    views = lines_of(result.stdout_bytes)[len(names) :]
    assert [view["account"] for view in views] == ["-", ".", "0", "A", "B", "Z", "_", "a", "b", "b."]


def test_replay__show_without_accounts_prints_only_results() -> None:
    result = invoke("replay", "--show", input=b"nonsense\n")
    assert len(lines_of(result.stdout_bytes)) == 1


def test_replay__read_error_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    class Failing(io.BytesIO):
        def readline(self, size: int | None = -1, /) -> bytes:
            if self.tell() > 0:
                raise OSError(5, "Input/output error")
            return super().readline(size)

    monkeypatch.setattr(
        cli, "open", opener(Failing(OPEN.encode() + b"\n" + FUND.encode() + b"\n")), raising=False
    )
    result = invoke("replay", "commands.jsonl")
    assert result.exit_code == 2
    assert lines_of(result.stdout_bytes) == [{"line": 1, "id": "o1", "account": "acme", "status": "applied"}]
    assert "ppk replay: cannot read commands.jsonl: Input/output error" in result.stderr


def test_replay__open_error_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(file: str, mode: str) -> io.BufferedIOBase:
        raise PermissionError(13, "Permission denied", file)

    monkeypatch.setattr(cli, "open", refuse, raising=False)
    result = invoke("replay", "secret.jsonl")
    assert result.exit_code == 2
    assert result.stdout_bytes == b""
    assert "ppk replay: cannot read secret.jsonl: Permission denied" in result.stderr


def test_replay__help_states_exit_statuses() -> None:
    result = invoke("replay", "--help")
    assert result.exit_code == 0
    assert "Exit status:\n" in result.stdout
    assert "0  every line was read, even if some were rejected" in result.stdout
    assert "2  the input cannot be opened or read, the output cannot be written" in result.stdout
    assert "130  interrupted (Ctrl-C)" in result.stdout


def test_main__help_lists_replay() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    assert "replay" in result.stdout
    assert "Exit status, for every command:" in result.stdout


# --- The runner, without the CLI -----------------------------------------------------------------


def snapshot(store: MemoryStore) -> dict[str, object]:
    """Everything a store holds, by account: its value, its ledger and its payouts."""
    return {
        account_id: (store.account(account_id), list(store.ledger(account_id)), store.payouts(account_id))
        for account_id in store.account_ids()
    }


def test_replay_lines__results_and_accounts() -> None:
    store = MemoryStore()
    data = "\n".join([OPEN, FUND, LOSS, SETTLE, SETTLE.replace("4", '"4.00"'), ""]).encode()
    results = list(cli.replay_lines(io.BytesIO(data), store))
    assert [result["status"] for result in results] == [
        "applied",
        "applied",
        "applied",
        "applied",
        "duplicate",
    ]
    assert store.account_ids() == ["acme"]
    assert [entry.command.id for entry in store.ledger("acme")] == ["o1", "f1", "r1", "s1"]
    account = store.account("acme")
    assert account is not None
    view = jsonl.account_view(account, store.payouts("acme"))
    assert view["loss"] == {
        "original": "100.00",
        "remaining": "60.00",
        "payable": "6.00",
        "shares": {"my": "1.00", "company": "9.00"},
    }
    assert list(cli.account_views(store)) == [view]


def test_replay_lines__is_lazy() -> None:
    stream = io.BytesIO((OPEN + "\n" + FUND + "\n").encode())
    store = MemoryStore()
    results = cli.replay_lines(stream, store)
    assert store.account_ids() == []
    assert next(results)["id"] == "o1"
    account = store.account("acme")
    assert account is not None and account.funding_minor == 0
    assert next(results)["id"] == "f1"
    account = store.account("acme")
    assert account is not None and account.funding_minor == 100_000


def test_replay_lines__rejected_line_leaves_accounts_alone() -> None:
    store = MemoryStore()
    list(cli.replay_lines(io.BytesIO((OPEN + "\n" + FUND + "\n").encode()), store))
    before = snapshot(store)
    lines = [
        '{"id":"f1","account":"acme","type":"fund","amount":"1"}',
        '{"id":"x","account":"ghost","type":"fund","amount":"1"}',
        '{"id":"x","account":"acme","type":"fund","amount":"1.001"}',
        '{"id":"x","account":"acme","type":"fund","amount":"1","memo":""}',
    ]
    results = list(cli.replay_lines(io.BytesIO("\n".join(lines).encode()), store))
    assert [result["error"]["code"] for result in results] == [
        "idempotency_conflict",
        "unknown_account",
        "invalid_amount",
        "malformed",
    ]
    assert snapshot(store) == before


class RecordingStore(MemoryStore):
    """A MemoryStore that remembers every command it was asked to execute, and what it answered."""

    def __init__(self) -> None:
        super().__init__()
        self.executed: list[tuple[object, object]] = []

    def execute(self, command):  # type: ignore[no-untyped-def]
        decision = super().execute(command)
        self.executed.append((command, decision))
        return decision


def test_replay_lines__every_command_goes_through_the_store() -> None:
    """ppk replay is the store's one execution path: the same decisions, the same books, as executing
    the decoded commands on a store directly; a malformed line never reaches the store."""
    lines = [
        OPEN,
        FUND,
        LOSS,
        SETTLE,
        SETTLE.replace("4", '"4.00"'),
        '{"id":"s2","account":"acme","type":"settle","payment":"7"}',
        '{"id":"s2","account":"acme","type":"settle","payment":"7.00"}',
        '{"id":"s3","account":"acme","type":"settle","payment":"6"}',
        '{"id":"x","account":"acme","type":"fund","amount":"1","memo":""}',
        '{"id":"r2","account":"acme","type":"record_balance","balance":"1200"}',
        '{"id":"p1","account":"acme","type":"confirm_payout","payout":"acme:r2"}',
        '{"id":"p2","account":"acme","type":"confirm_payout","payout":"a\\u0000b"}',
        '{"id":"f1","account":"ghost","type":"fund","amount":"1"}',
    ]
    data = "\n".join(lines).encode()
    through_replay = RecordingStore()
    results = list(cli.replay_lines(io.BytesIO(data), through_replay))

    direct = MemoryStore()
    expected = []
    for number, line in enumerate(lines, start=1):
        decoded = jsonl.decode_line(line.encode())
        if isinstance(decoded, jsonl.Malformed):
            expected.append(jsonl.malformed_result(number, decoded))
        else:
            expected.append(jsonl.decision_result(number, decoded, direct.execute(decoded)))
    assert results == expected
    assert [result.get("error", {}).get("code", result["status"]) for result in results] == [
        "applied",
        "applied",
        "applied",
        "applied",
        "duplicate",
        "payment_exceeds_payable",
        "payment_exceeds_payable",
        "applied",
        "malformed",
        "applied",
        "applied",
        "malformed",
        "unknown_account",
    ]
    assert snapshot(through_replay) == snapshot(direct)
    assert list(cli.account_views(through_replay)) == list(cli.account_views(direct))
    # One execute per well-formed line, with exactly the decoded command, in order; no other way in.
    decoded_lines = [jsonl.decode_line(line.encode()) for line in lines]
    assert [command for command, _ in through_replay.executed] == [
        command for command in decoded_lines if not isinstance(command, jsonl.Malformed)
    ]
    assert through_replay.executed[:2] == [
        (
            OpenAccount(id="o1", account="acme", my_share_bp=100, company_share_bp=900),
            through_replay.entry("acme", "o1"),
        ),
        (Fund(id="f1", account="acme", amount_minor=100_000), through_replay.entry("acme", "f1")),
    ]
