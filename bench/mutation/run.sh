#!/usr/bin/env bash
# Mutation score of kernel/ (or adapters/) with cosmic-ray: the measurement of
# docs/verification.md#mutation-score. Not run by CI: about 1.5 hours on 2 cores. Never run in a working
# tree you care about: cosmic-ray rewrites the mutated modules in place while it runs. This script works
# in clones under $WORK.
#
#   bash bench/mutation/run.sh [WORK [SESSIONS]]   # WORK defaults to /tmp/ppk-mutation, SESSIONS to 'a c b'
#
# Environment:
#   TARGET=kernel (default) or adapters: what is mutated, and the test commands (see targets below).
#   OUT=DIR: where the session databases and reports go (default WORK), so that one pair of clones
#     serves several targets.
#   SAMPLE=N [SEED=S]: score a seeded random sample of about N mutants, stratified by module (in
#     proportion, at least 4 a module), when every mutant would not fit; score.py prints the intervals.
#   PORTS=NNN: the workers listen on ports NNN1 and NNN2 (default 988), so that two runs can share a machine.
#   SKIP_EQUIVALENT=1: the sessions after a (c, b, a2, ...) do not run what equivalent.txt lists.
#   RESUME=1: go on with a session's database (after an interruption), rerunning what ended ABNORMAL.
#   TIMEOUT=SECONDS per mutant (default 180, cosmic-ray.toml's): cosmic-ray counts a timeout as killed,
#     so it must exceed the unmutated suite's time, and the report's "timeout" lines are worth a look.
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
out="${OUT:-$work}"
target="${TARGET:-kernel}"
mkdir -p "$work" "$out"
cp "$here"/cosmic-ray.toml "$here"/ppk_mutation_profile.py "$here"/filter_annotations.py "$here"/ordered.py "$work"/

for i in 1 2; do
    [ -d "$work/w$i" ] || git clone -q "$source_repo" "$work/w$i"
    # An interrupted session leaves its last mutant written into the clone: put the code back.
    git -C "$work/w$i" checkout -q -- .
    if [ ! -x "$work/venv$i/bin/python" ]; then
        python3 -m venv "$work/venv$i"
        (cd "$work/w$i" && "$work/venv$i/bin/pip" install -q -c .ci/constraints.txt -e '.[dev]' \
            --config-settings editable_mode=strict && "$work/venv$i/bin/pip" install -q cosmic-ray==8.7.0)
    fi
    # Strict editable installs link the files there were at install time: link the clone's files now,
    # so that a module added since (the clones moved to a later commit) is the clone's, not missing.
    (cd "$work/w$i" && "$work/venv$i/bin/pip" install -q --no-deps -e . --config-settings editable_mode=strict)
    (cd "$work/w$i" && "$work/venv$i/bin/python" -c \
        "import ppk.kernel.state as s, ppk.adapters.store as a, sys
sys.exit(not (s.__file__.startswith('$work/w$i/') and a.__file__.startswith('$work/w$i/')))")
done
cr="$work/venv1/bin"

carry() {  # carry DB MODULE_REGEX PREVIOUS_DB...: drop mutants outside MODULE_REGEX, mark those killed before
    # With CONTRACTS_ONLY=1, also drop mutants outside the icontract decorators of their module. With
    # SAMPLE=N and no PREVIOUS_DB, keep N mutants per module (seeded by SEED), annotations' left out, and
    # record each module's count in the table population, for score.py.
    (cd "$work/w1" && CONTRACTS_ONLY="${CONTRACTS_ONLY:-}" SAMPLE="${SAMPLE:-}" SEED="${SEED:-11}" \
        SKIP_EQUIVALENT="${SKIP_EQUIVALENT:+$here/equivalent.txt}" \
        "$cr/python" - "$@") <<'PY'
import ast, os, random, re, sqlite3, sys
target, module, previous = sys.argv[1], re.compile(sys.argv[2]), sys.argv[3:]
b = sqlite3.connect(target)
spec = "module_path, operator_name, occurrence"

def drop(job_id):
    for table in ("work_results", "mutation_specs", "work_items"):
        b.execute(f"delete from {table} where job_id = ?", (job_id,))

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
        drop(job_id)
if os.environ["SAMPLE"] and not previous:
    scored = "select job_id, module_path from mutation_specs where job_id not in (select job_id from work_results)"
    by_module = {}
    for job_id, path in sorted(b.execute(scored).fetchall()):
        by_module.setdefault(path, []).append(job_id)
    b.execute("create table population (module_path text primary key, mutants integer, sampled integer)")
    for path, jobs in sorted(by_module.items()):
        # Proportional allocation, at least 4 per module (or all of a smaller one).
        size = max(min(4, len(jobs)), round(int(os.environ["SAMPLE"]) * len(jobs) / sum(map(len, by_module.values()))))
        kept = set(random.Random(f"{os.environ['SEED']}:{path}").sample(jobs, size))
        b.execute("insert into population values (?, ?, ?)", (path, len(jobs), len(kept)))
        for job_id in set(jobs) - kept:
            drop(job_id)
    for (job_id,) in b.execute("select job_id from work_results").fetchall():  # inside annotations
        drop(job_id)
if previous:  # a sampled session a: the later ones run its sample only
    ran = set()
    for name in previous:
        ran.update(sqlite3.connect(name).execute(f"select {spec} from mutation_specs").fetchall())
    for job_id, *key in b.execute(f"select job_id, {spec} from mutation_specs").fetchall():
        if tuple(key) not in ran:
            drop(job_id)
for name in previous:
    a = sqlite3.connect(name)
    killed = {row[:3] for row in a.execute(f"select {spec}, r.test_outcome from mutation_specs join work_results r using(job_id)") if row[3] == "KILLED"}
    pending = f"select job_id, {spec} from mutation_specs where job_id not in (select job_id from work_results)"
    for job_id, *key in b.execute(pending).fetchall():
        if tuple(key) in killed:
            b.execute("insert into work_results(worker_outcome, output, test_outcome, diff, job_id) values ('NORMAL', ?, 'KILLED', NULL, ?)", (f"killed in {name}", job_id))
if os.environ["SKIP_EQUIVALENT"] and previous:  # what equivalent.txt lists is not run again: it counts for neither suite
    sys.path.insert(0, os.path.dirname(os.environ["SKIP_EQUIVALENT"]))
    import equivalent  # equivalent.py: the entries, placed in this clone's source (the run's commit)
    listed = equivalent.Listed(lambda module: open(module, encoding="utf-8").read().splitlines() if os.path.isfile(module) else None)
    written = {}  # the line each mutant writes, from the earlier sessions' diffs
    for name in previous:
        for key in sqlite3.connect(name).execute(f"select {spec}, r.diff from mutation_specs join work_results r using(job_id)"):
            if key[3] is not None:  # a session that skipped the mutant has no diff: keep the one that ran it
                written[key[:3]] = equivalent.mutated_line(key[3])
    for job_id, path, row, col, operator, occurrence in b.execute("select job_id, module_path, start_pos_row, start_pos_col, operator_name, occurrence from mutation_specs where job_id not in (select job_id from work_results)").fetchall():
        if listed.listing(equivalent.Mutant(path, row, col, operator, occurrence, written.get((path, operator, occurrence)))):
            b.execute("insert into work_results(worker_outcome, output, test_outcome, diff, job_id) values ('SKIPPED', 'listed in equivalent.txt', NULL, NULL, ?)", (job_id,))
b.commit()
PY
}

session() {  # session NAME TEST_COMMAND MODULE_REGEX [PREVIOUS_DB...]: run only what the previous left alive
    local name="$1" command="$2" module="$3"
    shift 3
    if [ -n "${RESUME:-}" ]; then  # RESUME=1: go on with the session's database, rerunning the ABNORMAL
        "$cr/python" -c "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute(\"delete from work_results where worker_outcome = 'ABNORMAL'\"); c.commit()" "$out/$name.sqlite"
    else
        sed -e "s|^test-command = .*|test-command = \"$command\"|" -e "s|^module-path = .*|module-path = $modules|" \
            -e "s|^timeout = .*|timeout = ${TIMEOUT:-180.0}|" \
            -e "s|^worker-urls = .*|worker-urls = [\"http://127.0.0.1:${PORTS:-988}1\", \"http://127.0.0.1:${PORTS:-988}2\"]|" \
            "$work/cosmic-ray.toml" > "$out/$name.toml"
        (cd "$work/w1" && "$cr/cosmic-ray" init "$out/$name.toml" "$out/$name.sqlite" \
            && "$cr/cr-filter-operators" "$out/$name.sqlite" "$out/$name.toml" \
            && "$cr/python" "$work/filter_annotations.py" "$out/$name.sqlite")
        carry "$out/$name.sqlite" "$module" "$@"
        # score.py places equivalent.txt's anchored entries in the source of this commit.
        local at
        at="$(git -C "$work/w1" rev-parse HEAD)"
        if [ ! -f "$out/commit" ]; then
            echo "$at" > "$out/commit"
        elif [ "$(cat "$out/commit")" != "$at" ]; then
            echo "session $name runs at $at, the earlier sessions of $out at $(cat "$out/commit"):" \
                "score.py places equivalent.txt in the earlier commit's source" >&2
        fi
    fi
    # The baseline: the test command on the unmutated clone must pass, or every mutant would count as
    # killed by a failure that has nothing to do with it (session b of the seed-17 sample was).
    local commit
    commit="$(git -C "$work/w1" rev-parse --short HEAD)"
    if ! (cd "$work/w1" && env PATH="$work/venv1/bin:$PATH" PYTHONPATH="$work" PYTHONDONTWRITEBYTECODE=1 \
        PPK_HYPOTHESIS_PROFILE=mutation timeout "${TIMEOUT:-180}" bash -c "$command" \
        > "$out/$name-baseline.log" 2>&1); then
        echo "session $name: its test command fails on the unmutated code at $commit (see $out/$name-baseline.log):" \
            "a kill would mean nothing; fix the suite first" >&2
        exit 1
    fi
    echo "session $name: the unmutated code at $commit passes its test command"
    local pids=()
    for i in 1 2; do
        find "$work/w$i" -name __pycache__ -prune -exec rm -rf {} +
        (cd "$work/w$i" && exec env PATH="$work/venv$i/bin:$PATH" PYTHONPATH="$work" PYTHONDONTWRITEBYTECODE=1 \
            PPK_HYPOTHESIS_PROFILE=mutation "$work/venv$i/bin/cosmic-ray" http-worker --port "${PORTS:-988}$i" \
            >> "$out/$name-worker$i.log" 2>&1) &
        pids+=($!)
    done
    sleep 3
    # aiohttp gives up on a request after 5 minutes, and cosmic-ray then records the mutant as ABNORMAL,
    # with no test outcome, and never runs it again: a survivor of a suite that takes longer would
    # vanish from the score. So the distributor waits as long as the test command's own timeout.
    (cd "$work/w1" && time "$cr/python" -c 'import sys, aiohttp.client as c
c.DEFAULT_TIMEOUT = c.ClientTimeout(total=None)
from cosmic_ray.cli import main
sys.exit(main())' exec "$out/$name.toml" "$out/$name.sqlite")
    kill "${pids[@]}"
    "$cr/cr-report" "$out/$name.sqlite" --show-pending > "$out/$name-report.txt"
    tail -n 4 "$out/$name-report.txt"
    "$cr/python" "$here/score.py" "$out" > "$out/score-after-$name.txt" || true
    head -n 16 "$out/score-after-$name.txt"
}

# ordered.py runs the test files that exercise the mutated module first (same files, same verdict).
pytest="python $work/ordered.py -x -q -p no:cacheprovider -p ppk_mutation_profile"
case "$target" in
kernel)
    modules='"kernel"'
    # a: the model-checking suite, but for the two slow files, on every mutant.
    model_checking="$pytest stateful_tests --ignore=stateful_tests/test_crosshair_kernel.py --ignore=stateful_tests/test_teeth.py"
    # c: the rest of it that can see a mutant: CrossHair over the kernel's contracts (minutes a run), on
    # what a and a2 left alive inside an icontract decorator: CrossHair's verdict depends on the
    # contracts (and the code they call, which a and a2 already run). The teeth (test_teeth.py) put
    # the seed's rules in place of the kernel's, so they are not run on mutants.
    check="$pytest stateful_tests/test_crosshair_kernel.py" contracts_only=1
    whole="$pytest tests" ;;
adapters)
    # The codec, the chain, the stores (memory and SQL), the dispatcher, the bank and the audit; not the
    # CLI's printing (cli.py, views.py, demo.py), the migrations, nor schema.py's table definitions.
    modules='["adapters/jsonl.py", "adapters/canonical.py", "adapters/chain.py", "adapters/store.py", "adapters/dispatcher.py", "adapters/bank.py", "adapters/sql.py", "adapters/audit.py"]'
    # a: the model-checking suite that imports adapters/, fast first: the lockstep and codec tests, the
    # machines in memory, then on SQLite (PostgreSQL's run if PPK_POSTGRES_URL or a server is found).
    model_checking="$pytest stateful_tests/test_reference_lockstep.py stateful_tests/test_amount_grammar.py stateful_tests/test_store_settings.py stateful_tests/test_machines.py stateful_tests/test_sql_machines.py"
    # c: ppk check on SQLite, the machines as a user runs them: the deep profile's fresh examples and
    # longer programs for CHECK_BUDGET seconds (the ci profile's would be the draws a already made).
    check="ppk check --store sqlite --budget ${CHECK_BUDGET:-30} --failing-commands /dev/null" contracts_only=
    # b: tests/, the codec's, the chain's and the stores' first.
    # Not tests/test_equivalent.py: it holds equivalent.txt's anchored rows to the source, which a mutant
    # of such a row changes, so it would "kill" the listed equivalents (it did, in the seed-43 sample).
    # Nor the test that spec.md's links land on their lines: a mutant that deletes a line (a decorator
    # removed) moves them, and "killed" the seed-47 sample's equivalent sql.py 269 so.
    whole="$pytest tests/test_codec.py tests/test_canonical.py tests/test_verify_chain.py tests/test_store.py tests/test_dispatcher.py tests/test_sql.py tests/test_audit.py tests --ignore=tests/test_equivalent.py --deselect tests/test_docs.py::test_spec__code_links_land_on_their_targets"
    ;;
*) echo "TARGET is kernel or adapters, not $target" >&2; exit 2 ;;
esac
sessions="${2:-a c b}"
for s in $sessions; do
    case "$s" in
    a) session a "$model_checking" . ;;
    # a2, a3, ...: the same command, on what the earlier ones left alive (in MODULES, a regex, if set),
    # after the clones moved to a later commit (git pull in w1 and w2): how docs/verification.md
    # measured the checks added while a ran. Optional.
    a[0-9]) session "$s" "$model_checking" "${MODULES:-.}" $(ls "$out"/a*.sqlite | grep -v "/$s.sqlite") ;;
    c) CONTRACTS_ONLY="$contracts_only" session c "$check" . "$out"/a*.sqlite ;;
    # b: the rest of the suite (tests/), on what a and c left alive: the whole suite is a, c or b.
    # c is optional (for adapters/, a's command holds the model-checking suite whole): only those run.
    b) session b "$whole" "${MODULES:-.}" $(ls "$out"/a*.sqlite "$out"/c.sqlite 2>/dev/null) ;;
    esac
done
