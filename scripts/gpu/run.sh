#!/usr/bin/env bash
# One device session, from a fresh clone plus .gpu/ (made by scripts/gpu/build.sh on a machine
# with the registries; give it to the device tool as `carry: [".gpu"]`). Stages, each within the
# device tool's 10-minute call (run them in order on a warm machine; each makes the random-weight
# models first if /tmp/m is gone):
#   parity    greedy ids of `harness generate` on the small model: CUDA float32 against CPU
#             float32 and against transformers float32, CUDA bfloat16 against transformers bf16
#   generate  tokens/s at batch 64 x 256 new tokens, small and 3B-shaped models, the device-side
#             decoding window (16 steps between reads, the default) against a read every step
#   train     `train --plan` then short `harness train --device cuda` runs: cpu-small on the
#             small model, paper (LoRA, activation checkpointing) on the 3B shape; GPU memory
#             sampled every 250 ms against the plan's prediction
# Everything it prints goes to $OUT/<stage>.txt; memory samples to $OUT/mem_*.txt.
# Usage (device tool): bash scripts/gpu/run.sh STAGE
set -u
STAGE="${1:?usage: run.sh parity|generate|train}"
exec > >(tee "$OUT/$STAGE.txt") 2>&1
[ -x .gpu/harness ] || { echo "no .gpu/harness: run scripts/gpu/build.sh TORCH_VERSION first and carry .gpu"; exit 2; }
H=$PWD/.gpu/harness
cat .gpu/BUILD.txt
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
TL=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__)+"/lib")')
export LD_LIBRARY_PATH=$TL HARNESS_DATA_DIR=$PWD/datasets/data HARNESS_CACHE_DIR=/tmp/cache
ldd $H | grep -E "not found|libtorch.so|c10.so"
if [ ! -f /tmp/m/qwen3b/config.json ]; then
  python3 -c 'import torch,transformers;print("torch", torch.__version__, "transformers", transformers.__version__)'
  timeout 240 python3 .gpu/make_models.py /tmp/m > /tmp/make_models.txt 2>&1 || echo "make_models failed"
fi
cat /tmp/make_models.txt
P="Query: effects of vitamin D on bone density in older adults. Rewrite:"
poll() { nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 250 > "$OUT/$1" & echo $!; }
gen() { timeout 90 $H generate --model "/tmp/m/$1" --prompt "$P" --max-new-tokens 32 --ignore-eos --ids --device "$2" --dtype "$3" 2>&1 | sed -n 's/^generated_ids: //p'; }
same() {
  python3 - "$1" "$2" "$3" <<'PYEOF'
import json, sys
a, b = (json.loads(x) if x else [] for x in sys.argv[1:3])
first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
print(f"{sys.argv[3]}: " + (f"same {len(a)} tokens" if a and a == b else f"differ from token {first} ({len(a)} vs {len(b)} tokens)"))
PYEOF
}

case "$STAGE" in
parity)
  cpu=$(gen small cpu float32); cuda32=$(gen small cuda float32); cuda16=$(gen small cuda auto)
  same "$cuda32" "$cpu" "harness CUDA float32 vs harness CPU float32"
  same "$cuda32" "$(sed -n 's/^TRANSFORMERS_GREEDY_F32=//p' /tmp/make_models.txt)" "harness CUDA float32 vs transformers float32"
  same "$cpu" "$(sed -n 's/^TRANSFORMERS_GREEDY_F32=//p' /tmp/make_models.txt)" "harness CPU float32 vs transformers float32"
  same "$cuda16" "$(sed -n 's/^TRANSFORMERS_GREEDY_BF16=//p' /tmp/make_models.txt)" "harness CUDA bfloat16 vs transformers bfloat16"
  ;;
generate)
  for i in $(seq 64); do echo "$P $i"; done > /tmp/prompts.txt
  for model in small qwen3b; do
    for every in 16 1; do
      echo "== generate $model, batch 64 x 256 new tokens, host read every $every step(s)"
      timeout 150 $H generate --model /tmp/m/$model --prompts-file /tmp/prompts.txt --batch 64 --max-new-tokens 256 \
        --ignore-eos --sync-every $every --device cuda 2>&1 | tail -1
    done
  done
  ;;
train)
  echo "== plan: qwen3b shape, paper config, scifact"
  $H train --plan --dataset scifact --policy /tmp/m/qwen3b --config paper --device cuda --memory-gib 75
  echo "== train small (cpu-small config) on cuda"
  M=$(poll mem_small.txt)
  timeout 150 $H train --dataset scifact --policy /tmp/m/small --config cpu-small --device cuda --steps 6 --out /tmp/run_small 2>&1 | tail -5
  kill $M; cp /tmp/run_small/log.jsonl $OUT/log_small.jsonl 2>/dev/null
  echo "== train qwen3b shape (paper config: LoRA, activation checkpointing) on cuda"
  M=$(poll mem_3b.txt)
  timeout 330 $H train --dataset scifact --policy /tmp/m/qwen3b --config paper --device cuda --steps 3 --max-minutes 3.5 --out /tmp/run_3b 2>&1 | tail -5
  kill $M; cp /tmp/run_3b/log.jsonl $OUT/log_3b.jsonl; cp /tmp/run_3b/meta.json $OUT/meta_3b.json
  for f in mem_small.txt mem_3b.txt; do echo "$f peak MiB: $(sort -n $OUT/$f | tail -1)"; done
  cat $OUT/log_small.jsonl $OUT/log_3b.jsonl
  ;;
*) echo "unknown stage $STAGE (parity, generate, train)"; exit 2 ;;
esac
