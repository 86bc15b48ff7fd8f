#!/usr/bin/env bash
# `harness compare` against scipy.stats.ttest_rel and an independent numpy randomization test
# and bootstrap (benches/peers/compare_scipy.py), on the committed SciFact runs: BM25 flat
# (0.9, 0.4) and BM25 (1.2, 0.75) + RM3, top 100, nDCG@10 over the 300 test queries.
# Installs pytrec_eval-terrier, scipy and numpy into .deps/peer-scipy. Needs a release build.
# Usage: benches/peers/compare_side_by_side.sh [--record]   (--record rewrites the test fixture)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEPS="${HARNESS_DEPS_DIR:-$ROOT/.deps}"
PEER="$DEPS/peer-scipy"
if [ ! -f "$PEER/.complete" ]; then
  python3 -m pip install --quiet --target "$PEER" pytrec_eval-terrier==0.5.11 scipy==1.17.1 numpy==2.4.6 && touch "$PEER/.complete"
fi
G="$ROOT/tests/golden"
OUT="$(mktemp -d)"; trap 'rm -rf "$OUT"' EXIT
"$ROOT/target/release/harness" compare --qrels "$G/trec_eval/scifact-bm25.qrels" \
  --run "bm25=$G/trec_eval/scifact-bm25.run.gz" --run "rm3=$G/compare/scifact-rm3.run.gz" -m ndcg_cut.10 --out "$OUT"
RECORD=()
[ "${1:-}" = "--record" ] && RECORD=(--record "$G/compare/scifact-bm25-vs-rm3.scipy.json")
cd "$ROOT"
PYTHONPATH="$PEER" python3 benches/peers/compare_scipy.py tests/golden/trec_eval/scifact-bm25.qrels ndcg_cut.10 \
  tests/golden/trec_eval/scifact-bm25.run.gz tests/golden/compare/scifact-rm3.run.gz --harness-csv "$OUT/compare.csv" "${RECORD[@]}"
