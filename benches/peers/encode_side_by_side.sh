#!/usr/bin/env bash
# Encoding cost of `harness embed` against python onnxruntime on the same model, tokenizer,
# texts (the first N SciFact passages), batch size and threads: whole-process CPU time
# (user+sys) and wall time from /usr/bin/time, medians of REPS alternating runs, and the largest
# difference between the sides' vectors.
# Four runs a round: python onnxruntime on model.onnx as published (the target's peer) and on the
# same graph with the softmax NaN guards dropped (by benches/peers/onnx_drop_nan_guards.py, the
# onnx package's twin of harness's edit); `harness embed` on its default (that edit, made in
# memory) and with --graph-as-published. So the gain of the graph edit and of the native code
# are reported apart.
# Needs the setup (.deps) and a release build; installs the Python peer into .deps/peer-python.
# Usage: benches/peers/encode_side_by_side.sh [N=256] [BATCH=32] [THREADS=2] [REPS=5]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
N="${1:-256}"; BATCH="${2:-32}"; THREADS="${3:-2}"; REPS="${4:-5}"
DEPS="${HARNESS_DEPS_DIR:-$ROOT/.deps}"
MODEL="$DEPS/models/all-minilm-l6-v2-int8"
PEER="$DEPS/peer-python"
if [ ! -f "$PEER/.complete" ]; then
  python3 -m pip install --quiet --no-deps --target "$PEER" onnxruntime==1.31.1 tokenizers==0.23.3 numpy==2.4.6 flatbuffers protobuf packaging sympy mpmath coloredlogs humanfriendly
  touch "$PEER/.complete"
fi
if [ ! -f "$PEER/.onnx-complete" ]; then
  python3 -m pip install --quiet --no-deps --target "$PEER" onnx==1.23.2 ml_dtypes typing_extensions
  touch "$PEER/.onnx-complete"
fi
OUT="$(mktemp -d)"; trap 'rm -rf "$OUT"' EXIT
mkdir "$OUT/simplified"
cp "$MODEL/tokenizer.json" "$OUT/simplified/"
echo "python: dropped $(PYTHONPATH="$PEER" python3 "$ROOT/benches/peers/onnx_drop_nan_guards.py" "$MODEL/model.onnx" "$OUT/simplified/model.onnx") softmax NaN guards"
python3 -c "import gzip,json,sys
for i,l in enumerate(gzip.open(sys.argv[1],'rt')):
    if i>=int(sys.argv[2]): break
    d=json.loads(l); print((d['title']+' '+d['text']).strip().replace('\n',' '))" "$ROOT/datasets/data/scifact/corpus.jsonl.gz" "$N" >"$OUT/texts"
timed() { # name, command...: appends "cpu_s wall_s" to $OUT/name.times
  local name="$1"; shift
  /usr/bin/time -f "%U %S %e" -o "$OUT/time" "$@"
  awk '{printf "%.3f %.3f\n", $1+$2, $3}' "$OUT/time" >>"$OUT/$name.times"
}
for _ in $(seq "$REPS"); do
  timed python env PYTHONPATH="$PEER" python3 "$ROOT/benches/peers/onnxruntime_encode.py" "$MODEL" "$MODEL/tokenizer.json" "$OUT/texts" "$BATCH" "$THREADS" "$OUT/python.jsonl" >/dev/null
  timed harness "$ROOT/target/release/harness" embed --model "$MODEL" --batch-size "$BATCH" --threads "$THREADS" <"$OUT/texts" >"$OUT/harness.jsonl"
  timed python_simplified env PYTHONPATH="$PEER" python3 "$ROOT/benches/peers/onnxruntime_encode.py" "$OUT/simplified" "$MODEL/tokenizer.json" "$OUT/texts" "$BATCH" "$THREADS" "$OUT/python_simplified.jsonl" >/dev/null
  timed harness_published "$ROOT/target/release/harness" embed --model "$MODEL" --batch-size "$BATCH" --threads "$THREADS" --graph-as-published <"$OUT/texts" >"$OUT/harness_published.jsonl"
done
python3 - "$OUT" "$N" "$BATCH" "$THREADS" "$REPS" <<'PY'
import json, os, statistics, sys
out, n, batch, threads, reps = sys.argv[1:]
def med(name):
    rows = [tuple(map(float, l.split())) for l in open(os.path.join(out, name + ".times"))]
    return statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows)
def vectors(name):
    return [json.loads(l) for l in open(os.path.join(out, name + ".jsonl"))]
reference = vectors("python")
def diff(name):
    return max(abs(a - b) for u, v in zip(reference, vectors(name)) for a, b in zip(u, v))
print(f"{n} SciFact passages, batch {batch}, {threads} threads, whole processes, median of {reps}:")
runs = [("python", "python onnxruntime, published graph"), ("python_simplified", "python onnxruntime, NaN guards dropped"),
        ("harness_published", "harness embed --graph-as-published"), ("harness", "harness embed (default)")]
pc, pw = med("python")
for name, label in runs:
    c, w = med(name)
    print(f"  {label:40s} CPU {c:6.2f} s  wall {w:6.2f} s  python-published/this: CPU {pc / c:.2f}x wall {pw / w:.2f}x  largest vector difference {diff(name):.1e}")
hc, _ = med("harness")
sc, _ = med("python_simplified")
print(f"  harness (default) against python on the same simplified graph: CPU {sc / hc:.2f}x")
PY
