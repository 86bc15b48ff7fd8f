#!/usr/bin/env bash
# Greedy decoding speed of two `harness` binaries (e.g. before and after a change to the decoder)
# on the setup's SmolLM2-135M-Instruct, float32 on the CPU: 8 SciFact chat prompts, 64 new tokens
# (end-of-turn ignored), batch 1 and 8, runs alternating; prints the medians and their ratio.
# Build the old binary from its commit first (git checkout REV && cargo build --release, copy
# target/release/harness away). Usage: decode_before_after.sh OLD_BINARY [NEW_BINARY] [THREADS=2] [REPS=5]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OLD="$1"; NEW="${2:-$ROOT/target/release/harness}"; THREADS="${3:-2}"; REPS="${4:-5}"
MODEL="${HARNESS_DEPS_DIR:-$ROOT/.deps}/models/smollm2-135m-instruct"
PROMPTS="$(mktemp)"; OUTS="$(mktemp)"; trap 'rm -f "$PROMPTS" "$OUTS"' EXIT
python3 - "$ROOT/datasets/data/scifact/queries.jsonl" >"$PROMPTS" <<'PY'
import json, sys
for i, line in enumerate(open(sys.argv[1])):
    if i >= 8: break
    print("Rewrite this claim as a search query: " + json.loads(line)["text"])
PY
for batch in 1 8; do
  for _ in $(seq "$REPS"); do
    for side in old new; do
      bin=$OLD; [ "$side" = new ] && bin=$NEW
      rate=$("$bin" generate --model "$MODEL" --prompts-file "$PROMPTS" --batch "$batch" --chat --max-new-tokens 64 \
        --ignore-eos --threads "$THREADS" --device cpu 2>&1 >/dev/null | tail -1 | sed -E 's/.*tokens_per_s=([0-9.]+).*/\1/')
      echo "$batch $side $rate" >>"$OUTS"
    done
  done
done
python3 - "$OUTS" "$REPS" <<'PY'
import statistics as s, sys
rows = [l.split() for l in open(sys.argv[1])]
for b in ("1", "8"):
    old = s.median(float(r[2]) for r in rows if r[0] == b and r[1] == "old")
    new = s.median(float(r[2]) for r in rows if r[0] == b and r[1] == "new")
    print(f"batch {b}, median of {sys.argv[2]}: old {old:.1f} tokens/s, new {new:.1f} tokens/s, ratio {new / old:.3f}")
PY
