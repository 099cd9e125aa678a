#!/usr/bin/env bash
# Mutation score of kernel/ with cosmic-ray: the measurement of docs/verification.md#mutation-score.
# Not run by CI: about 1.5 hours on 2 cores. Never run in a working tree you care about: cosmic-ray
# rewrites kernel/*.py in place while it runs. This script works in clones under $WORK.
#
#   bash bench/mutation/run.sh [WORK [SESSIONS]]   # WORK defaults to /tmp/ppk-mutation, SESSIONS to 'a c b'
#
# Two http workers (2 cores), each in its own clone with its own venv (no system site-packages), so
# that each imports the kernel it mutates. Sessions a and c are the model-checking suite (stateful_tests),
# b the rest (tests/); each later session runs only the mutants the earlier ones left alive, so that
# killed by the model-checking suite = a or c, and by the whole suite = a, c or b (with -x, a run of
# the union fails if any part does).
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

carry() {  # carry DB MODULE_REGEX PREVIOUS_DB...: drop mutants outside MODULE_REGEX, mark those killed before
    # With CONTRACTS_ONLY=1, also drop mutants outside the icontract decorators of their module.
    (cd "$work/w1" && CONTRACTS_ONLY="${CONTRACTS_ONLY:-}" "$cr/python" - "$@") <<'PY'
import ast, os, re, sqlite3, sys
target, module, previous = sys.argv[1], re.compile(sys.argv[2]), sys.argv[3:]
b = sqlite3.connect(target)
spec = "module_path, operator_name, occurrence"

def contract_rows(path):
    """The lines of every icontract decorator in a module."""
    rows = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        for decorator in getattr(node, "decorator_list", []):
            if ast.unparse(decorator).startswith("icontract."):
                rows.update(range(decorator.lineno, decorator.end_lineno + 1))
    return rows

rows = {}
for job_id, path, row in b.execute("select job_id, module_path, start_pos_row from mutation_specs").fetchall():
    inside = row in rows.setdefault(path, contract_rows(path)) if os.environ["CONTRACTS_ONLY"] else True
    if not module.search(path) or not inside:
        for table in ("work_results", "mutation_specs", "work_items"):
            b.execute(f"delete from {table} where job_id = ?", (job_id,))
for name in previous:
    a = sqlite3.connect(name)
    killed = {row[:3] for row in a.execute(f"select {spec}, r.test_outcome from mutation_specs join work_results r using(job_id)") if row[3] == "KILLED"}
    pending = f"select job_id, {spec} from mutation_specs where job_id not in (select job_id from work_results)"
    for job_id, *key in b.execute(pending).fetchall():
        if tuple(key) in killed:
            b.execute("insert into work_results(worker_outcome, output, test_outcome, diff, job_id) values ('NORMAL', ?, 'KILLED', NULL, ?)", (f"killed in {name}", job_id))
b.commit()
PY
}

session() {  # session NAME TEST_COMMAND MODULE_REGEX [PREVIOUS_DB...]: run only what the previous left alive
    local name="$1" command="$2" module="$3"
    shift 3
    sed -e "s|^test-command = .*|test-command = \"$command\"|" "$work/cosmic-ray.toml" > "$work/$name.toml"
    (cd "$work/w1" && "$cr/cosmic-ray" init "$work/$name.toml" "$work/$name.sqlite" \
        && "$cr/cr-filter-operators" "$work/$name.sqlite" "$work/$name.toml" \
        && "$cr/python" "$work/filter_annotations.py" "$work/$name.sqlite")
    carry "$work/$name.sqlite" "$module" "$@"
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
    "$cr/python" "$here/score.py" "$work" > "$work/score-after-$name.txt" || true
    head -n 8 "$work/score-after-$name.txt"
}

pytest="python -m pytest -x -q -p no:cacheprovider -p ppk_mutation_profile"
sessions="${2:-a c b}"
for s in $sessions; do
    case "$s" in
    # a: the model-checking suite, but for the two slow files, on every mutant.
    a) session a "$pytest stateful_tests --ignore=stateful_tests/test_crosshair_kernel.py --ignore=stateful_tests/test_teeth.py" . ;;
    # c: the rest of it that can see a mutant: CrossHair over the kernel's contracts (minutes a run), on
    # what a and a2 left alive inside an icontract decorator: CrossHair's verdict depends on the
    # contracts (and the code they call, which a and a2 already run). The teeth (test_teeth.py) put
    # the seed's rules in place of the kernel's, so they are not run on mutants.
    # a2, a3, ...: the same command, on what the earlier ones left alive (in MODULES, a regex, if set),
    # after the clones moved to a later commit (git pull in w1 and w2): how docs/verification.md
    # measured the checks added while a ran. Optional.
    a[0-9]) session "$s" "$pytest stateful_tests --ignore=stateful_tests/test_crosshair_kernel.py --ignore=stateful_tests/test_teeth.py" "${MODULES:-.}" $(ls "$work"/a*.sqlite | grep -v "/$s.sqlite") ;;
    c) CONTRACTS_ONLY=1 session c "$pytest stateful_tests/test_crosshair_kernel.py" . "$work"/a*.sqlite ;;
    # b: the rest of the suite (tests/), on what a and c left alive: the whole suite is a, c or b.
    b) session b "$pytest tests" "${MODULES:-.}" "$work"/a*.sqlite "$work/c.sqlite" ;;
    esac
done
