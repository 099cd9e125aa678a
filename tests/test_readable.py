"""What a person reads, run as the real `ppk` executable: `ppk demo`, `ppk show`, `ppk ledger`,
`ppk payouts`, and `ppk apply`'s progress bar and closing line (README, "Quickstart").
"""

from __future__ import annotations

import json
import os
import pty
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ppk.adapters.canonical import encode_entry
from ppk.adapters.sql import open_store

ROOT = Path(__file__).resolve().parent.parent
PPK = str(Path(sys.executable).with_name("ppk"))
WORKED = str(ROOT / "examples" / "worked.jsonl")
DIGEST = re.compile(r"digest (ppk1-[0-9a-f]{64}) \(recorded\)")
STEP_TITLES = [f"{number}. " for number in range(1, 11)]


def ppk(*arguments: str, cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [PPK, *arguments], cwd=cwd, input=stdin, capture_output=True, timeout=300, check=False
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode("utf-8"), done.stderr.decode("utf-8")
    )


def ledger_rows(path: Path) -> list[tuple[str, int, str]]:
    with sqlite3.connect(path) as connection:
        return list(connection.execute("SELECT account, seq, command_id FROM ledger ORDER BY account, seq"))


# --- ppk demo ------------------------------------------------------------------------------------


def test_demo__walks_the_worked_example_and_ends_with_a_clean_audit(tmp_path: Path) -> None:
    done = ppk("demo", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    out = done.stdout
    positions = [out.index(title) for title in STEP_TITLES]
    assert positions == sorted(positions), "the steps come in order"
    for shown in (
        "c4   settle payment=4.00   applied",
        "c4   settle payment=4.00   duplicate",
        "payment_exceeds_payable (recorded: a retry gets the same)",
        "60.00 of 100.00 remaining, payable 6.00, shares frozen at 1.00 % + 9.00 %",
        "profit 300.00 withdrawn as payout acme:c7 (pending)",
        "transferred 1, confirmed 1",
        "acme:c7   300.00   confirmed",
        "ppk audit: 1 account, 8 entries: clean",
    ):
        assert shown in out
    assert DIGEST.search(out)
    # What it wrote is the worked example, and the default database is where the other commands look.
    assert [row[2] for row in ledger_rows(tmp_path / "ppk.db")][:7] == [
        "c1",
        "c2",
        "c3",
        "c4",
        "c5",
        "c6",
        "c7",
    ]
    assert ppk("audit", cwd=tmp_path).returncode == 0


def test_demo__run_twice_doubles_nothing(tmp_path: Path) -> None:
    first = ppk("demo", cwd=tmp_path)
    rows = ledger_rows(tmp_path / "ppk.db")
    second = ppk("demo", cwd=tmp_path)
    assert (first.returncode, second.returncode) == (0, 0)
    assert "already holds the demo" in second.stdout
    assert "transferred 0, confirmed 0" in second.stdout
    assert " applied " not in second.stdout.split("1. Open the account")[1].split("10. The audit")[0]
    assert ledger_rows(tmp_path / "ppk.db") == rows
    with sqlite3.connect(tmp_path / "ppk-bank.db") as bank:
        assert bank.execute("SELECT count(*) FROM transfers").fetchone() == (1,)
    first_digest, second_digest = (DIGEST.search(done.stdout) for done in (first, second))
    assert first_digest and second_digest and first_digest.group(1) == second_digest.group(1)


def test_demo__after_the_worked_example_was_applied_agrees_with_it(tmp_path: Path) -> None:
    assert ppk("apply", WORKED, cwd=tmp_path).returncode == 1  # its overpayment is rejected, twice
    done = ppk("demo", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "already holds the demo" in done.stdout
    assert "transferred 0, confirmed 0" in done.stdout  # c8 confirmed the payout already


def test_demo__refuses_a_database_with_other_accounts_and_writes_nothing(tmp_path: Path) -> None:
    line = (
        b'{"id": "x1", "account": "other", "type": "open_account", "my_share": "1", "company_share": "0"}\n'
    )
    assert ppk("apply", cwd=tmp_path, stdin=line).returncode == 0
    before = ledger_rows(tmp_path / "ppk.db")
    done = ppk("demo", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("ppk demo: the database holds 1 account(s) besides the demo's 'acme'")
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1
    assert ledger_rows(tmp_path / "ppk.db") == before


def test_demo__refuses_an_acme_with_another_history(tmp_path: Path) -> None:
    line = b'{"id": "c1", "account": "acme", "type": "open_account", "my_share": "5", "company_share": "5"}\n'
    assert ppk("apply", cwd=tmp_path, stdin=line).returncode == 0
    done = ppk("demo", cwd=tmp_path)
    assert done.returncode == 2
    assert "recorded another command under id 'c1'" in done.stderr
    assert [row[2] for row in ledger_rows(tmp_path / "ppk.db")] == ["c1"]


def test_demo__on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    done = ppk("demo", "--db", postgres_url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "ppk audit: 1 account, 8 entries: clean" in done.stdout
    assert ppk("demo", "--db", postgres_url, cwd=tmp_path).returncode == 0


# --- ppk show, ledger, payouts -------------------------------------------------------------------


@pytest.fixture
def worked(tmp_path: Path) -> Path:
    """A folder whose ppk.db holds the worked example, applied."""
    assert ppk("apply", WORKED, cwd=tmp_path).returncode == 1
    return tmp_path


def test_show__a_table_of_the_figures_the_json_view_has(worked: Path) -> None:
    table = ppk("show", cwd=worked)
    view = json.loads(ppk("show", "--json", cwd=worked).stdout)
    assert table.returncode == 0
    row = next(line for line in table.stdout.splitlines() if line.strip().startswith("acme")).split()
    totals = view["totals"]
    assert row[:3] == ["acme", view["capital"], view["balance"]]
    assert " ".join(row[3:9]) == "1.00 % + 9.00 % none"
    assert row[9:15] == [
        totals["funding"],
        totals["capital_closed"],
        totals["settled_payments"],
        totals["my_share"],
        totals["company_share"],
        totals["profit_withdrawn"],
    ]
    assert row[15:] == ["0", "pending", "of", "1"]


def test_show__does_not_create_a_database(tmp_path: Path) -> None:
    done = ppk("show", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == "ppk show: 'ppk.db': no such database file\n"
    assert not (tmp_path / "ppk.db").exists()


def test_ledger__one_line_per_entry_with_its_place_in_the_chain(worked: Path) -> None:
    lines = ppk("ledger", "acme", cwd=worked).stdout.splitlines()
    stored = [json.loads(line) for line in ppk("ledger", "--json", "acme", cwd=worked).stdout.splitlines()]
    assert [line.split()[:3] for line in lines] == [
        [str(item["seq"]), item["hash"][:16], item["entry"]["command"]["id"]] for item in stored
    ]
    assert [item["seq"] for item in stored] == list(range(1, 9))
    assert lines[4].endswith("-> refused: payment_exceeds_payable")
    with sqlite3.connect(worked / "ppk.db") as connection:
        rows = connection.execute("SELECT seq, hash, entry FROM ledger WHERE account = 'acme' ORDER BY seq")
        assert [(item["seq"], item["hash"]) for item in stored] == [
            (seq, bytes(h).hex()) for seq, h, _ in rows
        ]
    store = open_store(str(worked / "ppk.db"), create=False)
    try:
        entries = list(store.ledger("acme"))
    finally:
        store.close()
    assert [json.loads(encode_entry(entry)) for entry in entries] == [item["entry"] for item in stored]


def test_ledger__of_an_account_that_does_not_exist(worked: Path) -> None:
    done = ppk("ledger", "nobody", cwd=worked)
    assert (done.returncode, done.stdout, done.stderr) == (
        2,
        "",
        "ppk ledger: no account 'nobody' in the database\n",
    )


def test_payouts__every_payout_or_only_the_pending(worked: Path) -> None:
    everything = ppk("payouts", cwd=worked)
    assert everything.returncode == 0
    assert ["acme", "acme:c7", "300.00", "confirmed"] in [
        line.split() for line in everything.stdout.splitlines()
    ]
    assert ppk("payouts", "--pending", cwd=worked).stdout.strip() == "no pending payouts"
    assert json.loads(ppk("payouts", "--json", cwd=worked).stdout) == {
        "account": "acme",
        "id": "acme:c7",
        "amount": "300.00",
        "status": "confirmed",
    }


def test_payouts__pending_lists_what_dispatch_will_send(tmp_path: Path) -> None:
    lines = Path(WORKED).read_bytes().splitlines(keepends=True)[:9]  # up to the profit, not its confirmation
    ppk("apply", cwd=tmp_path, stdin=b"".join(lines))
    pending = [
        json.loads(line) for line in ppk("payouts", "--pending", "--json", cwd=tmp_path).stdout.splitlines()
    ]
    assert pending == [{"account": "acme", "id": "acme:c7", "amount": "300.00", "status": "pending"}]


# --- ppk apply: the closing line and the progress bar ----------------------------------------------


def test_apply__ends_with_one_line_of_counts_on_stderr(tmp_path: Path) -> None:
    done = ppk("apply", WORKED, cwd=tmp_path, stdin=None)
    assert done.returncode == 1
    assert (
        done.stderr == "ppk apply: 10 lines: 7 applied, 1 duplicate, 2 rejected (payment_exceeds_payable 2)\n"
    )
    again = ppk("apply", cwd=tmp_path, stdin=Path(WORKED).read_bytes() + b"nonsense\n")
    assert again.stderr == (
        "ppk apply: 11 lines: 0 applied, 8 duplicate, 3 rejected (malformed 1, payment_exceeds_payable 2)\n"
    )


def test_apply__shows_progress_only_on_a_terminal(tmp_path: Path) -> None:
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [PPK, "apply", "--db", str(tmp_path / "ppk.db"), WORKED],
        stdout=subprocess.DEVNULL,
        stderr=terminal,
    )
    os.close(terminal)
    seen = b""
    while True:
        try:
            data = os.read(controller, 65536)
        except OSError:  # the terminal's other side closed: ppk ended
            break
        if not data:
            break
        seen += data
    os.close(controller)
    assert process.wait(timeout=300) == 1
    text = seen.decode("utf-8", errors="replace")
    assert "ppk apply" in text and "771/771 bytes" in text  # the bar, complete
    assert text.rstrip().endswith(
        "ppk apply: 10 lines: 7 applied, 1 duplicate, 2 rejected (payment_exceeds_payable 2)"
    )
