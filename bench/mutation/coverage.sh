#!/usr/bin/env bash
# What the model-checking suite runs of adapters/: line and branch coverage (coverage.py) of session
# a's command in run.sh (TARGET=adapters), in the mutation profile, and of `ppk check --store sqlite`.
# A line no machine runs is a mutant no machine can kill: this is how the gaps closed in session 20
# were found (bench/mutation/HISTORY.md). Not run by CI: about 12 minutes on 2 cores. Read-only: it
# may run in the working tree.
#
#   bash bench/mutation/coverage.sh [OUT]   # OUT defaults to /tmp/ppk-coverage
#
# Environment: CHECK_BUDGET=SECONDS for ppk check (default 30, as run.sh's session c).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../.."
out="${1:-/tmp/ppk-coverage}"
mkdir -p "$out"
python -c "import coverage" 2>/dev/null || python -m pip install -q coverage==7.17.5
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" PPK_HYPOTHESIS_PROFILE=mutation
run=(python -m coverage run --branch --source=ppk.adapters)
"${run[@]}" --data-file="$out/a.cov" -m pytest -q -p no:cacheprovider -p ppk_mutation_profile \
    stateful_tests/test_reference_lockstep.py stateful_tests/test_amount_grammar.py \
    stateful_tests/test_store_settings.py stateful_tests/test_machines.py stateful_tests/test_sql_machines.py
printf 'import sys\nfrom ppk.adapters.cli import run\nsys.argv[0] = "ppk"\nrun()\n' > "$out/ppk_main.py"
"${run[@]}" --data-file="$out/c.cov" "$out/ppk_main.py" check --store sqlite --budget "${CHECK_BUDGET:-30}" \
    --failing-commands /dev/null
python -m coverage combine --keep --data-file="$out/all.cov" "$out/a.cov" "$out/c.cov" > /dev/null
# The eight modules the adapters' mutation score is of (run.sh's `modules`).
python -m coverage report --data-file="$out/all.cov" --show-missing \
    --include='*/adapters/jsonl.py,*/adapters/canonical.py,*/adapters/chain.py,*/adapters/store.py,*/adapters/dispatcher.py,*/adapters/bank.py,*/adapters/sql.py,*/adapters/audit.py'
