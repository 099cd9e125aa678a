"""Every command's exit statuses and its ordinary accidents, run as the real `ppk` executable.

0 success; 1 the command found something; 2 a wrong command line, or input, output or database that
cannot be used; 130 interrupted; 141 the reader of the output went away, quietly, as other Unix tools.
A closed or full standard stream is one line on stderr and status 2, never a traceback.
"""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PPK = str(Path(sys.executable).with_name("ppk"))
WORKED = str(ROOT / "examples" / "worked.jsonl")

COMMANDS = [
    ("replay",),
    ("apply",),
    ("show",),
    ("ledger",),
    ("payouts",),
    ("demo",),
    ("dispatch",),
    ("audit",),
    ("check",),
    ("db",),
    ("db", "upgrade"),
]


def shell(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A shell line with `ppk` standing for the real executable: redirections as a user types them."""
    return subprocess.run(
        ["sh", "-c", line.replace("ppk ", shlex.quote(PPK) + " ", 1)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_version__names_ppk_and_its_version(tmp_path: Path) -> None:
    done = shell("ppk --version", tmp_path)
    assert (done.returncode, done.stdout) == (0, "ppk 0.1.0\n")


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(command) for command in COMMANDS])
def test_help__ends_with_an_example(tmp_path: Path, command: tuple[str, ...]) -> None:
    done = shell(f"ppk {' '.join(command)} --help", tmp_path)
    assert done.returncode == 0
    assert done.stdout.rstrip().splitlines()[-1].strip().startswith("Example: ppk ")


def test_help__of_ppk_lists_every_exit_status(tmp_path: Path) -> None:
    done = shell("ppk --help", tmp_path)
    for status in ("0 ", "1 ", "2 ", "130", "141"):
        assert f"  {status}" in done.stdout


@pytest.mark.parametrize("command", ["replay", "apply", "demo"])
def test_output__full_is_one_line_and_exit_2(tmp_path: Path, command: str) -> None:
    done = shell(f"ppk {command} {WORKED if command != 'demo' else ''} > /dev/full", tmp_path)
    assert done.returncode == 2
    assert done.stderr == "ppk: cannot write the output: No space left on device\n"


@pytest.mark.parametrize("command", ["replay", "apply", "show", "audit", "demo", "payouts", "ledger acme"])
def test_output__closed_is_one_line_and_exit_2_and_nothing_is_applied(tmp_path: Path, command: str) -> None:
    done = shell(f"ppk {command} {WORKED if command in ('replay', 'apply') else ''} >&-", tmp_path)
    assert done.returncode == 2
    assert done.stderr == "ppk: standard output is closed: there is nowhere to write the results\n"
    assert not (tmp_path / "ppk.db").exists(), "nothing was done without a place for its answers"


@pytest.mark.parametrize("command", ["replay", "apply"])
def test_input__closed_is_one_line_and_exit_2(tmp_path: Path, command: str) -> None:
    done = shell(f"ppk {command} <&-", tmp_path)
    assert done.returncode == 2
    assert done.stderr == f"ppk {command}: cannot read standard input: it is closed\n"


def test_output__a_reader_that_goes_away_ends_ppk_quietly_with_141(tmp_path: Path) -> None:
    many = tmp_path / "many.jsonl"
    many.write_text('{"id":"c","account":"a","type":"fund","amount":1}\n' * 200_000)
    # bash's PIPESTATUS: the status of ppk, whose reader (head) went away after one line.
    done = subprocess.run(
        ["bash", "-c", f"{shlex.quote(PPK)} replay {many} | head -n 1 > /dev/null; echo ${{PIPESTATUS[0]}}"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.stdout.strip() == "141"
    assert done.stderr == "", "quietly: no traceback, no message"


def test_interrupt__exits_130_with_no_advice_to_reproduce_a_failure(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [PPK, "check", "--budget", "120"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(6)
    process.send_signal(signal.SIGINT)
    output, errors = process.communicate(timeout=120)
    assert process.returncode == 130
    assert "interrupted" in errors and "Traceback" not in errors
    assert "@seed" not in output + errors and "counterexample" not in output + errors


def run_to_an_interrupt(script: str, folder: Path) -> tuple[str, str]:
    """Runs a Python script that starts ppk and interrupts it; its output and errors once it exited 130,
    well before the budget of the `ppk check` it runs (600 s)."""
    process = subprocess.Popen(
        [sys.executable, "-c", script], cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        output, errors = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, errors
    return output, errors


# Python drops an exception raised in a garbage collector's callback, and Hypothesis keeps one
# registered: a Ctrl-C that lands there must still interrupt `ppk check`, not leave it to its budget.
CTRL_C_IN_A_COLLECTOR_CALLBACK = """
import gc, signal, sys, threading
from ppk.adapters.cli import run

armed = threading.Event()

def collecting(phase, info):
    if phase == "start" and armed.is_set():
        armed.clear()
        signal.raise_signal(signal.SIGINT)  # its handler runs here, inside the callback

gc.callbacks.append(collecting)
threading.Timer(3, armed.set).start()
sys.argv = ["ppk", "check", "--budget", "600"]
run()
"""


def test_interrupt__landing_in_a_garbage_collector_callback_still_exits_130(tmp_path: Path) -> None:
    output, errors = run_to_an_interrupt(CTRL_C_IN_A_COLLECTOR_CALLBACK, tmp_path)
    assert "interrupted" in errors
    assert "Traceback" not in errors and "Exception ignored" not in errors, errors
    assert "no counterexample found" not in output


# Hypothesis 6.170 answers a Ctrl-C that lands in its engine before the engine's runner exists with
# an AssertionError of its own (core.py: `assert state._runner is not None`): not a counterexample.
CTRL_C_TURNED_INTO_AN_ASSERTION_ERROR = """
import signal, sys
import hypothesis.stateful
from ppk.adapters.cli import run

batches = []

def engine(machine, **options):
    batches.append(machine)
    if len(batches) == 3:
        try:
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:
            assert batches is None
    return real(machine, **options)

real = hypothesis.stateful.run_state_machine_as_test
hypothesis.stateful.run_state_machine_as_test = engine
sys.argv = ["ppk", "check", "--budget", "600"]
run()
"""


def test_interrupt__that_hypothesis_turns_into_another_exception_is_no_counterexample(tmp_path: Path) -> None:
    output, errors = run_to_an_interrupt(CTRL_C_TURNED_INTO_AN_ASSERTION_ERROR, tmp_path)
    assert "interrupted" in errors and "Traceback" not in errors
    assert "counterexample" not in output + errors
    assert not (tmp_path / "ppk-check-failure.jsonl").exists()


def test_interrupt__of_apply_keeps_what_was_committed_and_exits_130(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [PPK, "apply"], cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write('{"id":"o","account":"a","type":"open_account","my_share":1,"company_share":9}\n')
    process.stdin.flush()
    assert '"status":"applied"' in process.stdout.readline(), "the answer came once its group was durable"
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)
    assert process.returncode == 130
    shown = shell("ppk show --json a", tmp_path)
    assert shown.returncode == 0 and '"account":"a"' in shown.stdout


@pytest.mark.parametrize(
    ("line", "status"),
    [
        (f"ppk replay {WORKED}", 0),
        (f"ppk apply {WORKED}", 1),
        ("ppk show nobody", 2),
        ("ppk ledger nobody", 2),
        ("ppk payouts", 0),
        ("ppk demo", 0),
        ("ppk demo --db /nonexistent/folder/ppk.db", 2),
        ("ppk audit", 0),
        ("ppk replay --nonsense", 2),
        ("ppk nonsense", 2),
        ("ppk check --budget 0", 2),
        ("ppk apply --db mysql://root@h/d /dev/null", 2),
    ],
)
def test_exit__statuses_are_the_same_across_commands(tmp_path: Path, line: str, status: int) -> None:
    shell("ppk db upgrade", tmp_path)
    done = shell(line, tmp_path)
    assert done.returncode == status, done.stderr
    assert "Traceback" not in done.stderr
