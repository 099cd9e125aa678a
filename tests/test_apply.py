"""`ppk apply` and `ppk show`: the durable command line answers as `ppk replay --show` (spec.md#database).

A differential test over generated streams on both engines; the real executable on the worked
example; a real kill test (SIGKILL at random moments, then run again); and a real race (eight
processes applying one file to one PostgreSQL database at once).
"""

from __future__ import annotations

import io
import json
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from ppk.adapters import cli, jsonl
from ppk.adapters.sql import SqlStore, open_store
from ppk.adapters.store import MemoryStore
from ppk.kernel.state import REFUSAL_CODES, Applied, Refused
from ppk.stateful_tests.machines import check_ledgers
from ppk.stateful_tests.sql_machines import empty_database
from ppk.stateful_tests.test_reference_lockstep import StreamDrawer

ROOT = Path(__file__).resolve().parent.parent
PPK = [str(Path(sys.executable).with_name("ppk"))]
"""The real executable, installed beside this Python."""


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A `--db` value naming an empty database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "ppk.db")
    url: str = request.getfixturevalue("postgres_url")
    return url


def replayed(data: bytes) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    store = MemoryStore()
    results = list(cli.replay_lines(io.BytesIO(data), store))
    return results, list(cli.account_views(store))


def applied(data: bytes, store: SqlStore) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    results = list(cli.apply_lines(io.BytesIO(data), store))
    return results, list(cli.account_views(store))


# --- The same results and views as ppk replay ------------------------------------------------------


@pytest.mark.parametrize("group_lines", [1_000, 3])
def test_apply__results_and_views_equal_replay_on_generated_streams(
    database: str, group_lines: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small groups too: a stream spans several committed groups, each decided on what was committed."""
    monkeypatch.setattr(cli, "GROUP_LINES_MAX", group_lines)
    store = open_store(database)

    @settings(max_examples=25, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # fmt: skip
    @given(st.data())
    def agree(data: st.DataObject) -> None:
        stream = StreamDrawer(data).stream(lines_max=40)
        assert applied(stream, empty_database(store)) == replayed(stream)
        check_ledgers(store)

    try:
        agree()
    finally:
        store.close()


CLOSING_LINE = re.compile(
    rb"ppk apply: \d+ lines: \d+ applied, \d+ duplicate, \d+ rejected( \([a-z_ 0-9,]+\))?\n"
)


def closing_line_only(stderr: bytes) -> bool:
    """Whether `ppk apply` said nothing on stderr but its closing line of counts."""
    return CLOSING_LINE.fullmatch(stderr) is not None


def run(*arguments: str, stdin: bytes | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*PPK, *arguments], input=stdin, capture_output=True, cwd=cwd, timeout=600, check=False
    )


def test_apply__the_real_executable_prints_what_replay_prints(database: str) -> None:
    worked = "examples/worked.jsonl"
    expected = run("replay", "--show", worked).stdout.splitlines(keepends=True)
    first = run("apply", "--db", database, worked)
    assert first.returncode == 1, "two lines of the worked example are rejected"
    assert closing_line_only(first.stderr)
    shown = run("show", "--db", database, "--json")
    assert shown.returncode == 0, shown.stderr
    assert first.stdout.splitlines(keepends=True) + shown.stdout.splitlines(keepends=True) == expected
    again = run("apply", "--db", database, worked)
    statuses = [json.loads(line)["status"] for line in again.stdout.splitlines()]
    assert statuses == ["duplicate"] * 5 + ["rejected"] * 2 + ["duplicate"] * 3, "run again: nothing twice"
    assert run("show", "--db", database, "--json").stdout == shown.stdout


def test_apply__exit_0_when_nothing_is_rejected(tmp_path: Path) -> None:
    lines = b'{"id":"o","account":"a","type":"open_account","my_share":1,"company_share":9}\n'
    completed = run("apply", "--db", str(tmp_path / "x.db"), stdin=lines)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["status"] == "applied"


# --- Killed at any moment, run again: where one run ends -------------------------------------------


def story(seed: int, lines: int) -> bytes:
    """A long, deterministic input: several accounts, losses settled, profits, retries, refusals."""
    rng = random.Random(seed)
    accounts = [f"acct{index}" for index in range(8)]
    out: list[dict[str, Any]] = []
    for account in accounts:
        out.append(
            {"id": "open", "account": account, "type": "open_account", "my_share": "1", "company_share": "9"}
        )
        out.append({"id": "fund", "account": account, "type": "fund", "amount": "1000000"})
    serial = 0
    while len(out) < lines:
        serial += 1
        account = rng.choice(accounts)
        kind = rng.choices(["fund", "record_balance", "settle", "retry", "bad"], [2, 4, 4, 2, 1])[0]
        command: dict[str, Any] = {"id": f"c{serial}", "account": account, "type": kind}
        if kind == "fund":
            command["amount"] = str(rng.randint(1, 5000))
        elif kind == "record_balance":
            command["balance"] = str(rng.randint(900_000, 1_100_000))
        elif kind == "settle":
            command["payment"] = str(rng.choice([1, 5, 50, 500, 5000]))
        elif kind == "retry":
            command = rng.choice(out)
        else:
            command = {"id": f"c{serial}", "account": account, "type": "fund", "amount": "-1"}
        out.append(command)
    return b"".join(json.dumps(command).encode() + b"\n" for command in out)


def test_apply__killed_at_random_moments_and_run_again_ends_where_one_run_ends(tmp_path: Path) -> None:
    data = story(seed=7, lines=3_000)
    source = tmp_path / "story.jsonl"
    source.write_bytes(data)
    killed_db = str(tmp_path / "killed.db")
    rng = random.Random(11)
    acknowledged: list[dict[str, Any]] = []
    kills = 0
    for _ in range(6):
        process = subprocess.Popen([*PPK, "apply", "--db", killed_db, str(source)], stdout=subprocess.PIPE)
        time.sleep(rng.uniform(0.3, 2.5))
        process.send_signal(signal.SIGKILL)
        output, _ = process.communicate()
        kills += process.returncode == -signal.SIGKILL
        # A result printed is acknowledged: only whole lines count (the kill may cut the last one).
        acknowledged += [json.loads(line) for line in output.split(b"\n")[:-1]]
    assert kills >= 3, "the kills came after the runs had finished: nothing was interrupted"
    final = run("apply", "--db", killed_db, str(source))
    assert final.returncode == 1 and closing_line_only(final.stderr)  # rejected lines, nothing worse
    acknowledged += [json.loads(line) for line in final.stdout.splitlines()]

    store = open_store(killed_db)
    try:
        check_ledgers(store)
        commands = {
            number: jsonl.decode_line(line) for number, line in enumerate(data.split(b"\n"), 1) if line
        }
        for result in acknowledged:
            command = commands[result["line"]]
            if isinstance(command, jsonl.Malformed):
                continue
            entry = store.entry(command.account, command.id)
            error = result.get("error", {}).get("code")
            if result["status"] in ("applied", "duplicate"):
                assert isinstance(entry, Applied) and entry.command == command, result
            elif error in REFUSAL_CODES:
                assert isinstance(entry, Refused) and entry.code == error, result
            else:
                assert entry is None or entry.command != command, f"a rejection was recorded: {result}"
        # Exactly once: the ledger has one entry per id used, and it replays (check_ledgers) to the views.
        views = list(cli.account_views(store))
    finally:
        store.close()
    assert views == replayed(data)[1]


# --- Eight writers, one file, one PostgreSQL database ----------------------------------------------

WRITERS = 8


def outcomes_by_line(outputs: list[bytes]) -> Iterator[tuple[int, list[tuple[str, str | None]]]]:
    per_writer = [[json.loads(line) for line in output.splitlines()] for output in outputs]
    for results in zip(*per_writer, strict=True):
        numbers = {result["line"] for result in results}
        assert len(numbers) == 1
        yield numbers.pop(), [(result["status"], result.get("error", {}).get("code")) for result in results]


def test_apply__eight_writers_on_one_file_apply_each_command_once(postgres_url: str, tmp_path: Path) -> None:
    data = story(seed=3, lines=600)
    source = tmp_path / "story.jsonl"
    source.write_bytes(data)
    open_store(postgres_url).close()  # the schema first, so that the writers race on commands only
    processes = [
        subprocess.Popen(
            [*PPK, "apply", "--db", postgres_url, str(source)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(WRITERS)
    ]
    finished = [process.communicate(timeout=600) for process in processes]
    for process, (_, errors) in zip(processes, finished, strict=True):
        # 1: the story has rejected lines; and nothing but the closing line on stderr (a traceback also
        # exits with 1).
        assert process.returncode == 1 and closing_line_only(errors)
    expected = dict((result["line"], result) for result in replayed(data)[0])
    for number, outcomes in outcomes_by_line([output for output, _ in finished]):
        # One applied and the rest duplicates; all duplicates for a retry of an earlier line; or the
        # same rejection eight times (a recorded refusal: one writer recorded it, the rest found it).
        sequential = expected[number]
        code = sequential.get("error", {}).get("code")
        if sequential["status"] == "applied":
            assert sorted(outcomes) == [("applied", None)] + [("duplicate", None)] * (WRITERS - 1), number
        elif sequential["status"] == "duplicate":
            assert outcomes == [("duplicate", None)] * WRITERS, number
        else:
            assert outcomes == [("rejected", code)] * WRITERS, (number, outcomes)
    store = open_store(postgres_url)
    try:
        check_ledgers(store)  # no entry twice, no payout twice, every ledger replays to its account
        assert list(cli.account_views(store)) == replayed(data)[1]
        with store.engine.connect() as connection:
            payouts = connection.execute(
                text("SELECT count(*), count(DISTINCT payout_id) FROM payouts")
            ).one()
        assert payouts[0] == payouts[1]
    finally:
        store.close()
