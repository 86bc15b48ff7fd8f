#!/usr/bin/env bash
# Greedy decoding speed of `harness generate` against transformers on the same model folder
# (the setup's SmolLM2-135M-Instruct, float32), the same chat prompts, thread count and number of
# new tokens (end-of-turn ignored on both sides), at batch 1 and 8. Installs the Python peer
# (torch 2.13.0 + transformers 5.24.0, about 2.6 GB) into .deps/peer-transformers.
# Usage: benches/peers/decode_side_by_side.sh [NEW_TOKENS=64] [THREADS=2]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
NEW="${1:-64}"; THREADS="${2:-2}"
DEPS="${HARNESS_DEPS_DIR:-$ROOT/.deps}"
MODEL="$DEPS/models/smollm2-135m-instruct"
PEER="${PEER_VENV:-$DEPS/peer-transformers}"
if [ ! -x "$PEER/bin/python" ]; then
  python3 -m venv "$PEER"
  "$PEER/bin/pip" install --quiet torch==2.13.0 transformers==5.24.0 safetensors
fi
PROMPTS="$(mktemp)"; trap 'rm -f "$PROMPTS"' EXIT
python3 - "$ROOT/datasets/data/scifact/queries.jsonl" >"$PROMPTS" <<'PY'
import json, sys
for i, line in enumerate(open(sys.argv[1])):
    if i >= 8: break
    print("Rewrite this claim as a search query: " + json.loads(line)["text"])
PY
for batch in 1 8; do
  py=$("$PEER/bin/python" "$ROOT/benches/peers/transformers_decode.py" "$MODEL" "$PROMPTS" "$batch" "$NEW" "$THREADS" | tail -1)
  rs=$("$ROOT/target/release/harness" generate --model "$MODEL" --prompts-file "$PROMPTS" --batch "$batch" --chat \
        --max-new-tokens "$NEW" --ignore-eos --threads "$THREADS" --device cpu 2>&1 >/dev/null | tail -1)
  python3 -c "import re,sys; g=lambda s: float(re.search(r'tokens_per_s=([0-9.]+)', s).group(1)); py,rs=g(sys.argv[1]),g(sys.argv[2]); print(f'batch {sys.argv[3]}, {sys.argv[4]} new tokens, {sys.argv[5]} threads: harness {rs:.1f} tokens/s, transformers {py:.1f} tokens/s, ratio {rs/py:.2f}')" "$py" "$rs" "$batch" "$NEW" "$THREADS"
done
