#!/usr/bin/env bash
# Execution accuracy over Spider dev: `harness sql-eval --mode test-suite` against the official
# Python evaluator's exec match, same gold, predictions, databases and machine, one run each.
# Two prediction sets: the dev gold against itself (1,034 lines, 972 runnable), and the 6,459
# deliberately varied predictions of tests/golden/spider_exec.
# Needs a release build and a checkout of taoyds/test-suite-sql-eval (pass its folder); installs
# sqlparse and tqdm into .deps/peer-sql.
# Usage: benches/peers/sql_side_by_side.sh TSUITE_DIR
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TSUITE="${1:?usage: sql_side_by_side.sh TSUITE_DIR (a checkout of taoyds/test-suite-sql-eval)}"
PEER="${HARNESS_DEPS_DIR:-$ROOT/.deps}/peer-sql"
if [ ! -f "$PEER/.complete" ]; then
  python3 -m pip install --quiet --target "$PEER" sqlparse==0.6.1 tqdm==4.70.1
  touch "$PEER/.complete"
fi
DB="$ROOT/datasets/data/spider/database"
WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
cp "$ROOT/datasets/data/spider/dev_gold.sql" "$WORK/self.gold"
cut -f1 "$WORK/self.gold" >"$WORK/self.pred"
zcat "$ROOT/tests/golden/spider_exec/gold.sql.gz" >"$WORK/varied.gold"
zcat "$ROOT/tests/golden/spider_exec/pred.sql.gz" >"$WORK/varied.pred"
for set in self varied; do
  py=$(PYTHONPATH="$PEER" python3 "$ROOT/benches/peers/spider_official_exec.py" "$TSUITE" "$WORK/$set.gold" "$WORK/$set.pred" "$DB")
  py_s=$(sed -E 's/.*seconds=([0-9.]+).*/\1/' <<<"$py")
  for threads in 1 0; do
    start=$(date +%s.%N)
    "$ROOT/target/release/harness" sql-eval --gold "$WORK/$set.gold" --pred "$WORK/$set.pred" --db-dir "$DB" \
      --mode test-suite --threads "$threads" --quiet --out "$WORK/out-$set-$threads"
    end=$(date +%s.%N)
    rs_correct=$(awk -F'\t' '$1=="all"{print $4}' "$WORK/out-$set-$threads/summary.tsv")
    python3 -c "import sys; py,rs=float(sys.argv[1]),float(sys.argv[3])-float(sys.argv[2]); t='all cores' if sys.argv[6]=='0' else sys.argv[6]+' thread'; print(f'{sys.argv[4]}: official {py:.2f}s ({sys.argv[5]}), harness {rs:.2f}s (correct={sys.argv[7]}, {t}), ratio {py/rs:.1f}x')" \
      "$py_s" "$start" "$end" "$set" "$py" "$threads" "$rs_correct"
  done
done
