#!/usr/bin/env bash
# Mutation score of kernel/ with cosmic-ray: the measurement of docs/verification.md#mutation-score.
# Not run by CI: about 1.5 hours on 2 cores. Never run in a working tree you care about: cosmic-ray
# rewrites kernel/*.py in place while it runs. This script works in clones under $WORK.
#
#   bash bench/mutation/run.sh [WORK]      # WORK defaults to /tmp/ppk-mutation
#
# Two http workers (2 cores), each in its own clone with its own venv (no system site-packages), so
# that each imports the kernel it mutates. Session a runs the model-checking suite alone on every
# mutant; session b runs the rest of the suite (tests/) on the mutants session a left alive, so that
# killed-by-the-whole-suite = killed by a or b (`tests stateful_tests` with -x is the union).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source_repo="$(cd "$here/../.." && pwd)"
work="${1:-/tmp/ppk-mutation}"
mkdir -p "$work"
cp "$here"/cosmic-ray.toml "$here"/ppk_mutation_profile.py "$here"/filter_annotations.py "$work"/

for i in 1 2; do
    [ -d "$work/w$i" ] || git clone -q "$source_repo" "$work/w$i"
    if [ ! -x "$work/venv$i/bin/python" ]; then
        python3 -m venv "$work/venv$i"
        (cd "$work/w$i" && "$work/venv$i/bin/pip" install -q -c .ci/constraints.txt -e '.[dev]' \
            --config-settings editable_mode=strict && "$work/venv$i/bin/pip" install -q cosmic-ray==8.7.0)
    fi
    (cd "$work/w$i" && "$work/venv$i/bin/python" -c \
        "import ppk.kernel.state as s, sys; sys.exit(not s.__file__.startswith('$work/w$i/'))")
done
cr="$work/venv1/bin"

session() {  # session NAME TEST_COMMAND [PREVIOUS_DB]
    local name="$1" command="$2" previous="${3:-}"
    sed -e "s|^test-command = .*|test-command = \"$command\"|" "$work/cosmic-ray.toml" > "$work/$name.toml"
    (cd "$work/w1" && "$cr/cosmic-ray" init "$work/$name.toml" "$work/$name.sqlite" \
        && "$cr/cr-filter-operators" "$work/$name.sqlite" "$work/$name.toml" \
        && "$cr/python" "$work/filter_annotations.py" "$work/$name.sqlite")
    if [ -n "$previous" ]; then  # b runs only what a left alive
        "$cr/python" - "$previous" "$work/$name.sqlite" <<'PY'
import sqlite3, sys
a, b = sqlite3.connect(sys.argv[1]), sqlite3.connect(sys.argv[2])
key = "select m.module_path, m.operator_name, m.occurrence, r.test_outcome from mutation_specs m join work_results r using(job_id)"
killed = {row[:3] for row in a.execute(key) if row[3] == "KILLED"}
for job_id, *spec in b.execute("select job_id, module_path, operator_name, occurrence from mutation_specs where job_id not in (select job_id from work_results)").fetchall():
    if tuple(spec) in killed:
        b.execute("insert into work_results(worker_outcome, output, test_outcome, diff, job_id) values ('NORMAL', 'killed in session a', 'KILLED', NULL, ?)", (job_id,))
b.commit()
PY
    fi
    local pids=()
    for i in 1 2; do
        find "$work/w$i" -name __pycache__ -prune -exec rm -rf {} +
        (cd "$work/w$i" && exec env PATH="$work/venv$i/bin:$PATH" PYTHONPATH="$work" PYTHONDONTWRITEBYTECODE=1 \
            PPK_HYPOTHESIS_PROFILE=mutation "$work/venv$i/bin/cosmic-ray" http-worker --port "988$i" \
            > "$work/$name-worker$i.log" 2>&1) &
        pids+=($!)
    done
    sleep 3
    (cd "$work/w1" && time "$cr/cosmic-ray" exec "$work/$name.toml" "$work/$name.sqlite")
    kill "${pids[@]}"
    "$cr/cr-report" "$work/$name.sqlite" --show-pending > "$work/$name-report.txt"
    tail -n 4 "$work/$name-report.txt"
}

# test_crosshair_kernel.py (CrossHair over all of kernel/, minutes) and test_teeth.py (seed defects put back)
# are too slow to run once per mutant, and were not part of the measured suite (da2c8a2's stateful_tests).
session a "python -m pytest -x -q -p no:cacheprovider -p ppk_mutation_profile stateful_tests --ignore=stateful_tests/test_crosshair_kernel.py --ignore=stateful_tests/test_teeth.py"
session b "python -m pytest -x -q -p no:cacheprovider -p ppk_mutation_profile tests" "$work/a.sqlite"
