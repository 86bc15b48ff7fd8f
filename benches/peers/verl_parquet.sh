#!/usr/bin/env bash
# `harness export verl` read back with pyarrow as verl reads its training files
# (benches/peers/verl_parquet.py): one dataset per task family (SciFact, the literature
# reviews, the SQuAD paragraphs, Spider). Installs pyarrow into .deps/peer-verl. Needs a
# release build. Usage: benches/peers/verl_parquet.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEPS="${HARNESS_DEPS_DIR:-$ROOT/.deps}"
PEER="$DEPS/peer-verl"
if [ ! -f "$PEER/.complete" ]; then
  python3 -m pip install --quiet --target "$PEER" pyarrow==26.0.1 && touch "$PEER/.complete"
fi
OUT="$(mktemp -d)"; trap 'rm -rf "$OUT"' EXIT
for dataset in scifact literature squad-paragraphs spider; do
  "$ROOT/target/release/harness" export verl --dataset "$dataset" --split train --out "$OUT/$dataset.parquet"
done
PYTHONPATH="$PEER" python3 "$ROOT/benches/peers/verl_parquet.py" "$OUT"/*.parquet
