#!/usr/bin/env bash
# `harness score` against trec_eval (C) and pytrec_eval on one run of the MS MARCO passage dev
# shape (6,980 queries x 1,000 passages, ~7 M lines; benches/peers/make_score_bench.py), three
# measures, -c: whole processes, CPU time (user+sys) and peak RSS from /usr/bin/time, median of
# REPS alternating runs; checks that harness prints trec_eval's bytes.
# trec_eval: $TREC_EVAL or `trec_eval` on PATH (build it from github.com/usnistgov/trec_eval,
# `make`); pytrec_eval-terrier is installed from PyPI into .deps/peer-pytrec.
# Needs a release build (cargo build --release). Usage: score_side_by_side.sh [REPS=5]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
REPS="${1:-5}"
DEPS="${HARNESS_DEPS_DIR:-$ROOT/.deps}"
TREC_EVAL="${TREC_EVAL:-$(command -v trec_eval || true)}"
[ -x "$TREC_EVAL" ] || { echo "trec_eval not found: set TREC_EVAL=/path/to/trec_eval" >&2; exit 2; }
PEER="$DEPS/peer-pytrec"
if [ ! -f "$PEER/.complete" ]; then
  python3 -m pip install --quiet --target "$PEER" pytrec_eval-terrier==0.5.11 && touch "$PEER/.complete"
fi
DATA="$DEPS/bench-data/score-msmarco-shape"
[ -f "$DATA/run.trec" ] || python3 "$ROOT/benches/peers/make_score_bench.py" "$DATA"
HARNESS="$ROOT/target/release/harness"
M=(-m map -m recip_rank -m ndcg_cut.10)
OUT="$(mktemp -d)"; trap 'rm -rf "$OUT"' EXIT
measure() { # name, command...: appends "cpu_s rss_kb wall_s" to $OUT/name
  local name="$1"; shift
  /usr/bin/time -f "%U %S %M %e" -o "$OUT/time" "$@" >"$OUT/$name.stdout"
  awk '{printf "%.3f %d %.3f\n", $1+$2, $3, $4}' "$OUT/time" >>"$OUT/$name"
}
PYSCRIPT="import sys, pytrec_eval
qrels = {}
for line in open(sys.argv[1]):
    q, _, d, g = line.split(); qrels.setdefault(q, {})[d] = int(g)
run = {}
for line in open(sys.argv[2]):
    q, _, d, _, s, _ = line.split(); run.setdefault(q, {})[d] = float(s)
ev = pytrec_eval.RelevanceEvaluator(qrels, {'map', 'recip_rank', 'ndcg_cut.10'})
res = ev.evaluate(run)
for m in ('map', 'recip_rank', 'ndcg_cut_10'):
    print(m, sum(r[m] for r in res.values()) / len(qrels))"
for _ in $(seq "$REPS"); do
  measure trec_eval "$TREC_EVAL" -c "${M[@]}" "$DATA/qrels.txt" "$DATA/run.trec"
  measure harness1 "$HARNESS" score -c "${M[@]}" --qrels "$DATA/qrels.txt" --run "$DATA/run.trec" --threads 1
  measure harness2 "$HARNESS" score -c "${M[@]}" --qrels "$DATA/qrels.txt" --run "$DATA/run.trec" --threads 2
  measure pytrec_eval env PYTHONPATH="$PEER" python3 -c "$PYSCRIPT" "$DATA/qrels.txt" "$DATA/run.trec"
done
for h in harness1 harness2; do
  cmp -s "$OUT/trec_eval.stdout" "$OUT/$h.stdout" || { echo "$h output differs from trec_eval:"; diff "$OUT/trec_eval.stdout" "$OUT/$h.stdout"; exit 1; }
done
echo "harness output identical to trec_eval's:"; cat "$OUT/harness1.stdout"
python3 - "$OUT" <<'PY'
import statistics, sys, os
out = sys.argv[1]
def med(name):
    rows = [tuple(map(float, l.split())) for l in open(os.path.join(out, name))]
    return (statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows) / 1024,
            statistics.median(r[2] for r in rows))
te_cpu, te_mb, te_wall = med("trec_eval")
for name, label in [("trec_eval", "trec_eval (C)"), ("pytrec_eval", "pytrec_eval"), ("harness1", "harness score --threads 1"), ("harness2", "harness score --threads 2")]:
    cpu, mb, wall = med(name)
    print(f"{label:28s} CPU {cpu:6.2f} s  wall {wall:6.2f} s  peak {mb:7.1f} MB  "
          f"trec_eval/this: CPU {te_cpu / cpu:5.2f}x  wall {te_wall / wall:5.2f}x  memory {te_mb / mb:5.2f}x")
PY
