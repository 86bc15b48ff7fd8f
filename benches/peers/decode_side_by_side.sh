#!/usr/bin/env bash
# Greedy decoding speed of `harness generate` against transformers on the same model folder
# (the setup's SmolLM2-135M-Instruct, float32), the same chat prompts, thread count and number of
# new tokens (end-of-turn ignored on both sides), at batch 1 and 8. Installs the Python peer
# (torch 2.13.0 + transformers 5.24.0, about 2.6 GB) into .deps/peer-transformers.
# Each side runs REPS times, alternating; the ratio is of the medians (a shared 2-core machine is
# noisy). The first run of each side also writes its generated ids, and the script says whether
# they are identical. Usage: benches/peers/decode_side_by_side.sh [NEW_TOKENS=64] [THREADS=2] [REPS=5]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
NEW="${1:-64}"; THREADS="${2:-2}"; REPS="${3:-5}"
DEPS="${HARNESS_DEPS_DIR:-$ROOT/.deps}"
MODEL="$DEPS/models/smollm2-135m-instruct"
PEER="${PEER_VENV:-$DEPS/peer-transformers}"
if [ ! -x "$PEER/bin/python" ]; then
  python3 -m venv "$PEER"
  "$PEER/bin/pip" install --quiet torch==2.13.0 transformers==5.24.0 safetensors
fi
PROMPTS="$(mktemp)"; IDS="$(mktemp -d)"; trap 'rm -rf "$PROMPTS" "$IDS"' EXIT
python3 - "$ROOT/datasets/data/scifact/queries.jsonl" >"$PROMPTS" <<'PY'
import json, sys
for i, line in enumerate(open(sys.argv[1])):
    if i >= 8: break
    print("Rewrite this claim as a search query: " + json.loads(line)["text"])
PY
rate() { sed -E 's/.*tokens_per_s=([0-9.]+).*/\1/'; }
for batch in 1 8; do
  py=(); rs=()
  for rep in $(seq "$REPS"); do
    py_ids=(); rs_out=/dev/null
    [ "$rep" = 1 ] && py_ids=("$IDS/transformers") && rs_out="$IDS/harness.out"
    py+=("$("$PEER/bin/python" "$ROOT/benches/peers/transformers_decode.py" "$MODEL" "$PROMPTS" "$batch" "$NEW" "$THREADS" "${py_ids[@]}" | tail -1 | rate)")
    rs+=("$("$ROOT/target/release/harness" generate --model "$MODEL" --prompts-file "$PROMPTS" --batch "$batch" --chat \
          --max-new-tokens "$NEW" --ignore-eos --threads "$THREADS" --device cpu --ids 2>&1 >"$rs_out" | tail -1 | rate)")
  done
  # transformers decodes the first BATCH prompts; harness all of them in batches of BATCH.
  grep '^generated_ids: ' "$IDS/harness.out" | head -n "$(wc -l <"$IDS/transformers")" >"$IDS/harness"
  if cmp -s "$IDS/harness" "$IDS/transformers"; then same="identical"; else same="DIFFERENT"; fi
  echo "batch $batch: generated ids of the $(wc -l <"$IDS/transformers") rows transformers decoded are $same on both sides"
  python3 -c "import statistics as s,sys; py=[float(x) for x in sys.argv[5].split()]; rs=[float(x) for x in sys.argv[6].split()]; print(f'batch {sys.argv[1]}, {sys.argv[2]} new tokens, {sys.argv[3]} threads, median of {sys.argv[4]}: harness {s.median(rs):.1f} tokens/s, transformers {s.median(py):.1f} tokens/s, ratio {s.median(rs)/s.median(py):.2f}')" \
    "$batch" "$NEW" "$THREADS" "$REPS" "${py[*]}" "${rs[*]}"
done
