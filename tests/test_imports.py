"""Import hygiene: the kernel installs as `ppk.kernel` only, and imports only what style.md allows."""

from __future__ import annotations

import ast
import contextlib
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import ppk.kernel
from ppk.kernel import contracts, state, transitions

KERNEL_MODULES = [state, contracts, transitions]
ALLOWED_THIRD_PARTY = {"attrs", "icontract"}
"""style.md: the kernel imports only the standard library, attrs and icontract. (immutables went with
the maps the account no longer holds: nothing in it grows with history, spec.md#e6.)"""
FORBIDDEN = {"json", "logging", "time", "random", "uuid", "os", "sqlalchemy", "ppk.adapters"}


def test_imports__no_bare_kernel_or_adapters_module_is_loaded() -> None:
    # The adapters are not the kernel's to need; load them if they are there.
    with contextlib.suppress(ImportError):
        importlib.import_module("ppk.adapters")
    assert "kernel" not in sys.modules
    assert "adapters" not in sys.modules
    assert not any(name.startswith(("kernel.", "adapters.")) for name in sys.modules)


def test_imports__kernel_classes_come_from_ppk_kernel() -> None:
    assert state.Account.__module__ == "ppk.kernel.state"
    assert transitions.Account is state.Account
    assert contracts.Account is state.Account
    assert transitions.contracts is contracts
    assert transitions.decide.__module__ == "ppk.kernel.transitions"
    assert contracts.capital_is_conserved.__module__ == "ppk.kernel.contracts"


def imported_names(module) -> set[str]:  # type: ignore[no-untyped-def]
    """Every module a source file imports, by its full dotted name (relative imports resolved)."""
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "the kernel imports by absolute name"
            assert node.module is not None
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names if node.module == "ppk"}
    return names


@pytest.mark.parametrize("module", KERNEL_MODULES, ids=lambda module: module.__name__)
def test_imports__kernel_imports_only_stdlib_attrs_icontract(module) -> None:
    names = imported_names(module)
    assert names, "no imports found: the check would pass vacuously"
    for name in names:
        top = name.split(".")[0]
        assert name not in FORBIDDEN and top not in FORBIDDEN, name
        assert not name.startswith("ppk.adapters"), name
        if top == "ppk":
            assert name.startswith("ppk.kernel"), name
        elif top == "__future__":
            continue
        else:
            assert top in sys.stdlib_module_names or top in ALLOWED_THIRD_PARTY, name


def test_imports__kernel_depends_in_one_direction() -> None:
    assert not {name for name in imported_names(state) if name.startswith("ppk")}
    assert {name for name in imported_names(contracts) if name.startswith("ppk")} == {"ppk.kernel.state"}
    assert "ppk.kernel.transitions" not in imported_names(contracts)


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_imports__no_bare_kernel_is_installed(tmp_path: Path) -> None:
    for bare in ("kernel", "adapters"):
        completed = run_python(f"import {bare}", tmp_path)
        assert completed.returncode != 0, f"`import {bare}` worked from {tmp_path}"
        assert "ModuleNotFoundError" in completed.stderr
    completed = run_python("import ppk.kernel.transitions, ppk.kernel; print(ppk.kernel.__name__)", tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "ppk.kernel"


def test_imports__ppk_kernel_is_this_checkout() -> None:
    assert Path(ppk.kernel.__file__).resolve().parent == Path(__file__).resolve().parent.parent / "kernel"


ADAPTERS = Path(__file__).resolve().parent.parent / "adapters"


@pytest.mark.parametrize(
    "path", sorted(set(ADAPTERS.glob("*.py")) - {ADAPTERS / "__init__.py"}), ids=lambda path: path.name
)
def test_imports__production_code_loads_no_test_machinery(path: Path) -> None:
    # Crash injection lives in ppk.stateful_tests.faults, wrapped around a store from outside; only
    # `ppk check` loads the state machines, inside the command, when it runs.
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module or "")
    assert names, "no imports found: the check would pass vacuously"
    assert not {name for name in names if name.startswith(("ppk.stateful_tests", "hypothesis"))}
