"""The durable command line, run as a user runs it: `ppk apply`, `show`, `dispatch`, `db upgrade`.

Every test runs the real `ppk` executable in a folder of its own, so that the default database
(`ppk.db` there) and the default bank (`ppk-bank.db`) are the test's.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command as alembic_command
from sqlalchemy import create_engine

from ppk.adapters import sql
from ppk.adapters.bank import SqliteBank, TransferRefusedError
from ppk.adapters.dispatcher import confirm_id

PPK = str(Path(sys.executable).with_name("ppk"))

OPEN = b'{"id":"o","account":"acme","type":"open_account","my_share":1,"company_share":9}\n'
FUND = b'{"id":"f","account":"acme","type":"fund","amount":1000}\n'
PROFIT = b'{"id":"b","account":"acme","type":"record_balance","balance":1300}\n'


def ppk(folder: Path, *args: str, stdin: bytes = b"", **env: str) -> subprocess.CompletedProcess[str]:
    """Run `ppk ARGS` in `folder`, with PPK_DATABASE_URL unset unless given."""
    environment = {name: value for name, value in os.environ.items() if name != "PPK_DATABASE_URL"}
    environment.update(env)
    completed = subprocess.run(
        [PPK, *args], input=stdin, cwd=folder, capture_output=True, timeout=120, check=False, env=environment
    )
    return subprocess.CompletedProcess(
        args, completed.returncode, completed.stdout.decode(), completed.stderr.decode()
    )


def statuses(completed: subprocess.CompletedProcess[str]) -> list[str]:
    return [json.loads(line)["status"] for line in completed.stdout.splitlines()]


# --- ppk apply and ppk show --------------------------------------------------------------------------


def test_apply__defaults_to_ppk_db_here_and_show_reads_it(tmp_path: Path) -> None:
    applied = ppk(tmp_path, "apply", stdin=OPEN + FUND)
    assert (applied.returncode, statuses(applied)) == (0, ["applied", "applied"])
    assert applied.stderr == "ppk apply: 2 lines: 2 applied, 0 duplicate, 0 rejected\n"
    assert (tmp_path / "ppk.db").is_file()
    shown = ppk(tmp_path, "show", "--json", "acme")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["capital"] == "1000.00"
    text = ppk(tmp_path, "show")
    assert text.returncode == 0
    assert ["acme", "1000.00", "1000.00"] in [line.split()[:3] for line in text.stdout.splitlines()]


def test_apply__the_environment_names_the_database_when_db_does_not(tmp_path: Path) -> None:
    applied = ppk(tmp_path, "apply", stdin=OPEN, PPK_DATABASE_URL=str(tmp_path / "elsewhere.db"))
    assert applied.returncode == 0, applied.stderr
    assert (tmp_path / "elsewhere.db").is_file() and not (tmp_path / "ppk.db").exists()
    explicit = ppk(tmp_path, "apply", "--db", str(tmp_path / "third.db"), stdin=OPEN,
                   PPK_DATABASE_URL=str(tmp_path / "elsewhere.db"))  # fmt: skip
    assert explicit.returncode == 0 and (tmp_path / "third.db").is_file()


def test_apply__exit_1_when_a_line_is_rejected(tmp_path: Path) -> None:
    applied = ppk(tmp_path, "apply", stdin=OPEN + b'{"id":"x","account":"nobody","type":"fund","amount":1}\n')
    assert applied.returncode == 1
    assert applied.stderr == "ppk apply: 2 lines: 1 applied, 0 duplicate, 1 rejected (unknown_account 1)\n"
    assert statuses(applied) == ["applied", "rejected"]


def test_apply__an_unreadable_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    applied = ppk(tmp_path, "apply", str(tmp_path / "missing.jsonl"))
    assert applied.returncode == 2
    assert applied.stderr.startswith("ppk apply: cannot read") and applied.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("db", "words"),
    [
        ("/no/such/folder/ppk.db", "the folder '/no/such/folder' does not exist"),
        ("mysql://root:SECRET@127.0.0.1/x", "not mysql"),
        ("postgresql://root:SECRET@127.0.0.1:1/x", "postgresql://root:***@127.0.0.1:1/x"),
    ],
)
def test_apply__a_database_that_cannot_be_used_is_one_line_exit_2_and_no_password(
    tmp_path: Path, db: str, words: str
) -> None:
    applied = ppk(tmp_path, "apply", "--db", db, stdin=OPEN)
    assert applied.returncode == 2
    assert words in applied.stderr
    assert applied.stderr.count("\n") == 1 and "Traceback" not in applied.stderr
    assert "SECRET" not in applied.stderr + applied.stdout


def test_apply__a_schema_version_this_ppk_does_not_know_is_refused_and_not_upgraded(tmp_path: Path) -> None:
    """A database a newer ppk wrote: apply and db upgrade refuse it in one line. (An older version,
    which names `ppk db upgrade`, needs a second migration: tests/test_sql.py makes one.)"""
    assert ppk(tmp_path, "apply", stdin=OPEN).returncode == 0
    with sqlite3.connect(tmp_path / "ppk.db") as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")
    for args in (("apply",), ("db", "upgrade")):
        refused = ppk(tmp_path, *args, stdin=FUND)
        assert refused.returncode == 2
        assert "schema version 9999" in refused.stderr and "does not know" in refused.stderr
        assert refused.stderr.count("\n") == 1


def test_apply__an_older_schema_is_refused_naming_ppk_db_upgrade_which_upgrades_it(tmp_path: Path) -> None:
    """A database a ppk of schema version 0001 wrote (Alembic run to 0001 only)."""
    engine = create_engine(f"sqlite:///{tmp_path / 'ppk.db'}")
    with engine.begin() as connection:
        config, _ = sql._alembic(connection)
        alembic_command.upgrade(config, "0001")
    engine.dispose()
    refused = ppk(tmp_path, "apply", stdin=OPEN)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert "schema version 0001" in refused.stderr and "ppk db upgrade" in refused.stderr
    upgraded = ppk(tmp_path, "db", "upgrade")
    assert (upgraded.returncode, upgraded.stdout) == (
        0,
        f"ppk db upgrade: schema version 0001 -> {sql.schema_head()}\n",
    )
    assert ppk(tmp_path, "apply", stdin=OPEN).returncode == 0


def test_apply__a_database_locked_beyond_the_busy_timeout_is_one_line_and_exit_2(tmp_path: Path) -> None:
    assert ppk(tmp_path, "apply", stdin=OPEN).returncode == 0
    holder = sqlite3.connect(tmp_path / "ppk.db", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        locked = ppk(tmp_path, "apply", stdin=FUND, PPK_BUSY_TIMEOUT="0.5")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert locked.returncode == 2 and locked.stdout == ""
    assert locked.stderr == (
        "ppk apply: 'ppk.db' is locked by another writer beyond the busy timeout of 0.5 s "
        "($PPK_BUSY_TIMEOUT); try again when it is done\n"
    )
    assert json.loads(ppk(tmp_path, "show", "--json").stdout)["capital"] == "0.00", "nothing was applied"


def test_show_and_audit__read_while_another_writer_holds_the_lock(tmp_path: Path) -> None:
    """spec.md#storage: opening a database only to read is a reader's transaction, which WAL lets run
    beside the writer: `ppk show` and `ppk audit` wait for no writer (they waited the busy timeout and
    failed, until the world machine opened a database to read while another connection held its
    lock). The audit reads its books and says it could not record its checkpoint, and why."""
    assert ppk(tmp_path, "apply", stdin=OPEN + FUND).returncode == 0
    holder = sqlite3.connect(tmp_path / "ppk.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        shown = ppk(tmp_path, "show", "--json", "acme", PPK_BUSY_TIMEOUT="0.5")
        audited = ppk(tmp_path, "audit", PPK_BUSY_TIMEOUT="0.5")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["capital"] == "1000.00"
    assert audited.returncode == 0, audited.stderr
    assert audited.stdout.startswith("ppk audit: 1 account, 2 entries: clean\n"), audited.stdout
    assert audited.stdout.endswith(
        " (not recorded: the database could not be written: 'ppk.db' is locked by another writer beyond "
        "the busy timeout of 0.5 s ($PPK_BUSY_TIMEOUT); try again when it is done)\n"
    ), audited.stdout


def test_audit__prints_its_report_before_it_waits_for_the_lock_to_record_its_checkpoint(
    tmp_path: Path,
) -> None:
    """The report was ready when the audit's snapshot ended, but nothing was printed until the
    checkpoint's write had its lock or the busy timeout (60 s by default) ran out. Now the report
    comes first; once the other writer is done, the digest's line says it is recorded."""
    assert ppk(tmp_path, "apply", stdin=OPEN + FUND).returncode == 0
    environment = {name: value for name, value in os.environ.items() if name != "PPK_DATABASE_URL"}
    holder = sqlite3.connect(tmp_path / "ppk.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with subprocess.Popen(
            [PPK, "audit"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**environment, "PPK_BUSY_TIMEOUT": "30"},
        ) as audit:
            assert audit.stdout is not None and audit.stderr is not None
            head = audit.stdout.readline()
            waiting = audit.poll() is None
            holder.execute("ROLLBACK")
            rest, errors = audit.communicate(timeout=120)
    finally:
        holder.close()
    assert (head, waiting) == (b"ppk audit: 1 account, 2 entries: clean\n", True)
    assert (audit.returncode, errors) == (0, b"")
    assert rest.startswith(b"digest ppk1-") and rest.endswith(b" (recorded)\n"), rest


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "1e9"])
def test_apply__a_busy_timeout_that_is_not_seconds_is_named(tmp_path: Path, value: str) -> None:
    refused = ppk(tmp_path, "apply", stdin=OPEN, PPK_BUSY_TIMEOUT=value)
    assert refused.returncode == 2
    assert refused.stderr == (
        f"ppk apply: $PPK_BUSY_TIMEOUT is {value!r}: it must be a number of seconds from 0 to 86400\n"
    )
    assert not (tmp_path / "ppk.db").exists()


def test_db_upgrade__creates_the_schema_and_says_so_then_again_says_it_is_current(tmp_path: Path) -> None:
    first = ppk(tmp_path, "db", "upgrade")
    assert (first.returncode, first.stdout) == (0, "ppk db upgrade: schema version none -> 0002\n")
    again = ppk(tmp_path, "db", "upgrade")
    assert (again.returncode, again.stdout) == (0, "ppk db upgrade: already at schema version 0002\n")


def test_db_upgrade__refuses_a_database_that_is_not_ppks(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "ppk.db") as connection:
        connection.execute("CREATE TABLE customers (name TEXT)")
    refused = ppk(tmp_path, "db", "upgrade")
    assert refused.returncode == 2 and "is not a ppk database" in refused.stderr
    assert refused.stderr.startswith("ppk db upgrade: "), "the command as typed, not `ppk upgrade`"


def test_show__an_account_that_does_not_exist_is_exit_2(tmp_path: Path) -> None:
    assert ppk(tmp_path, "apply", stdin=OPEN).returncode == 0
    shown = ppk(tmp_path, "show", "acme", "nobody")
    assert shown.returncode == 2
    assert shown.stderr == "ppk show: no account 'nobody' in the database\n"
    assert shown.stdout == ""


# --- ppk dispatch and the bank ------------------------------------------------------------------------


def test_dispatch__transfers_each_pending_payout_once_and_confirms_it(tmp_path: Path) -> None:
    assert ppk(tmp_path, "apply", stdin=OPEN + FUND + PROFIT).returncode == 0
    first = ppk(tmp_path, "dispatch")
    assert (first.returncode, first.stdout) == (0, "ppk dispatch: 1 transferred, 1 confirmed\n")
    again = ppk(tmp_path, "dispatch")
    assert (again.returncode, again.stdout) == (0, "ppk dispatch: 0 transferred, 0 confirmed\n")
    bank = SqliteBank(tmp_path / "ppk-bank.db")
    try:
        assert bank.transfers() == {"acme:b": 30_000}
    finally:
        bank.close()
    view = json.loads(ppk(tmp_path, "show", "--json", "acme").stdout)
    assert view["payouts"] == [{"id": "acme:b", "amount": "300.00", "status": "confirmed"}]


def test_dispatch__after_a_death_between_transfer_and_confirm_transfers_nothing_twice(tmp_path: Path) -> None:
    """The bank took the transfer, the process died before confirming: the next run sends it again,
    the bank moves nothing the second time, and the payout is confirmed."""
    assert ppk(tmp_path, "apply", stdin=OPEN + FUND + PROFIT).returncode == 0
    bank = SqliteBank(tmp_path / "ppk-bank.db")
    try:
        bank.send("acme:b", 30_000)  # what the dead run did
        rerun = ppk(tmp_path, "dispatch")
        assert (rerun.returncode, rerun.stdout) == (0, "ppk dispatch: 1 transferred, 1 confirmed\n")
        assert bank.transfers() == {"acme:b": 30_000}
    finally:
        bank.close()
    line = {"id": confirm_id("acme:b"), "account": "acme", "type": "confirm_payout", "payout": "acme:b"}
    confirmation = ppk(tmp_path, "apply", stdin=json.dumps(line).encode() + b"\n")
    assert statuses(confirmation) == ["duplicate"], "the dispatcher's confirmation is recorded under its id"


def test_dispatch__a_bank_that_refuses_is_exit_1_and_leaves_the_payout_pending(tmp_path: Path) -> None:
    assert ppk(tmp_path, "apply", stdin=OPEN + FUND + PROFIT).returncode == 0
    bank = SqliteBank(tmp_path / "ppk-bank.db")
    try:
        bank.send("acme:b", 1)  # the bank already holds another amount under this payout id
    finally:
        bank.close()
    refused = ppk(tmp_path, "dispatch")
    assert refused.returncode == 1
    assert "was transferred before for 1 minor units, not 30000" in refused.stderr
    view = json.loads(ppk(tmp_path, "show", "--json", "acme").stdout)
    assert view["payouts"][0]["status"] == "pending"


def test_bank__accepts_a_payout_id_once_and_refuses_another_amount(tmp_path: Path) -> None:
    bank = SqliteBank(tmp_path / "bank.db")
    try:
        bank.send("a:1", 500)
        bank.send("a:1", 500)  # a retry moves nothing
        with pytest.raises(TransferRefusedError, match="not 600"):
            bank.send("a:1", 600)
        with pytest.raises(TransferRefusedError, match="not 400"):  # smaller, too (survivor bank.py:52 `<`)
            bank.send("a:1", 400)
        bank.send("b:1", 7)
        assert bank.transfers() == {"a:1": 500, "b:1": 7}
    finally:
        bank.close()
    reopened = SqliteBank(tmp_path / "bank.db")
    try:
        assert reopened.transfers() == {"a:1": 500, "b:1": 7}, "a transfer the bank took is durable"
    finally:
        reopened.close()
