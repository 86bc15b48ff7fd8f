#!/usr/bin/env bash
# Encoding throughput of `harness embed` against python onnxruntime on the same model,
# tokenizer, texts (the first N SciFact passages), batch size and threads, in one run.
# Needs the setup (.deps) and a release build; installs the Python peer into .deps/peer-python.
# Usage: benches/peers/encode_side_by_side.sh [N=256] [BATCH=32] [THREADS=2]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
N="${1:-256}"; BATCH="${2:-32}"; THREADS="${3:-2}"
DEPS="${HARNESS_DEPS_DIR:-$ROOT/.deps}"
MODEL="$DEPS/models/all-minilm-l6-v2-int8"
PEER="$DEPS/peer-python"
if [ ! -f "$PEER/.complete" ]; then
  python3 -m pip install --quiet --no-deps --target "$PEER" onnxruntime==1.31.1 tokenizers==0.23.3 numpy==2.4.6 flatbuffers protobuf packaging sympy mpmath coloredlogs humanfriendly
  touch "$PEER/.complete"
fi
TEXTS="$(mktemp)"
python3 -c "import gzip,json,sys
for i,l in enumerate(gzip.open(sys.argv[1],'rt')):
    if i>=int(sys.argv[2]): break
    d=json.loads(l); print((d['title']+' '+d['text']).strip().replace('\n',' '))" "$ROOT/datasets/data/scifact/corpus.jsonl.gz" "$N" >"$TEXTS"
py=$(PYTHONPATH="$PEER" python3 "$ROOT/benches/peers/onnxruntime_encode.py" "$MODEL" "$MODEL/tokenizer.json" "$TEXTS" "$BATCH" "$THREADS")
rs=$("$ROOT/target/release/harness" embed --model "$MODEL" --batch-size "$BATCH" --threads "$THREADS" --throughput <"$TEXTS" 2>&1 >/dev/null | sed -E 's/.*: ([0-9.]+) texts\/s.*/\1/')
rm -f "$TEXTS"
python3 -c "import sys; py,rs=float(sys.argv[1]),float(sys.argv[2]); print(f'{sys.argv[3]} SciFact passages, batch {sys.argv[4]}, {sys.argv[5]} threads: harness {rs:.1f} passages/s, python onnxruntime {py:.1f} passages/s, ratio {rs/py:.2f}')" "$py" "$rs" "$N" "$BATCH" "$THREADS"
