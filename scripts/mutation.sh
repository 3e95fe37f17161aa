#!/usr/bin/env bash
# Mutation testing of the rule modules (issue 17), outside CI. One command:
#
#   scripts/mutation.sh                  # afresh: every module in [tool.mutmut] only_mutate
#   KEEP=1 scripts/mutation.sh 'streamproc.processors.rules*'  # again, for matching mutants
#   JOBS=1 scripts/mutation.sh           # fewer parallel children (default 2)
#
# mutmut (pip install -e ".[mutation]") copies streamproc/ and tests/ to mutants/, mutates
# the modules in pyproject.toml's [tool.mutmut] only_mutate, maps each test to the functions
# it reaches, and for each mutant runs the model-free tests that reach the mutated function.
# mutants/ is removed first unless KEEP=1: a map kept from older code sends mutants to too
# few tests. Then the summary per module: killed, survived, equivalent (the survivors named
# in tests/mutation-equivalent.txt, with the reason), timeouts, no tests, other; the score
# is killed / (all - equivalent). `mutmut show NAME` prints a mutant's diff.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
# From mutants/ the default ../shared would not be found: name it absolutely.
export STREAMPROC_SHARED=${STREAMPROC_SHARED:-$(cd .. && pwd)/shared}
[ "${KEEP:-0}" = 1 ] || rm -rf mutants
"$PY" -m mutmut run --max-children "${JOBS:-2}" "$@" >mutants.log 2>&1 || {
    tail -40 mutants.log; exit 1; }
rm -f mutants.log
exec "$PY" - <<'PY'
import json
from collections import Counter, defaultdict
from pathlib import Path

from mutmut.stats import status_by_exit_code

equivalent = {}
for line in Path("tests/mutation-equivalent.txt").read_text().splitlines():
    if line.strip() and not line.startswith("#"):
        name, _, reason = line.partition(" ")
        equivalent[name] = reason.strip()

per_module: dict[str, Counter] = defaultdict(Counter)
survivors = []
for meta in sorted(Path("mutants").rglob("*.py.meta")):
    module = str(meta.relative_to("mutants"))[: -len(".meta")]
    for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
        status = status_by_exit_code[code]
        if status == "survived" and name in equivalent:
            status = "equivalent"
        elif status == "survived":
            survivors.append(name)
        per_module[module][status] += 1

columns = ["killed", "survived", "equivalent", "timeout", "no tests", "other"]
print(f"{'module':42} " + " ".join(f"{c:>10}" for c in columns) + "      score")
total: Counter = Counter()
for module, counts in sorted(per_module.items()):
    counts["other"] = sum(v for k, v in counts.items() if k not in columns)
    total.update({k: v for k, v in counts.items()})
    judged = sum(counts[c] for c in columns) - counts["equivalent"]
    score = 100 * counts["killed"] / judged if judged else 100.0
    print(f"{module:42} " + " ".join(f"{counts[c]:>10}" for c in columns) + f"  {score:8.1f}%")
judged = sum(total[c] for c in columns) - total["equivalent"]
score = 100 * total["killed"] / judged if judged else 100.0
print(f"{'total':42} " + " ".join(f"{total[c]:>10}" for c in columns) + f"  {score:8.1f}%")
if survivors:
    print("\nsurvivors (not listed as equivalent):")
    for name in sorted(survivors):
        print("  " + name)
PY
