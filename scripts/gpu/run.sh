#!/usr/bin/env bash
# One device session, from a fresh clone plus .gpu/ (made by scripts/gpu/build.sh on a machine
# with the registries; give it to the device tool as `carry: [".gpu"]`). Environment check,
# random-weight models made by transformers there, greedy cross-check of `harness generate`
# against transformers (float32 on the CPU, bfloat16 on the GPU), then short
# `harness train --device cuda` runs (cpu-small on the 135M shape, paper on the 3B shape).
# Everything it prints goes to $OUT/log.txt; memory samples to $OUT/mem_*.txt.
set -u
exec > >(tee "$OUT/log.txt") 2>&1
[ -x .gpu/harness ] || { echo "no .gpu/harness: run scripts/gpu/build.sh TORCH_VERSION first and carry .gpu"; exit 2; }
H=$PWD/.gpu/harness
cat .gpu/BUILD.txt
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
TL=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__)+"/lib")')
python3 -c 'import torch,transformers;print("torch", torch.__version__, "transformers", transformers.__version__)'
export LD_LIBRARY_PATH=$TL HARNESS_DATA_DIR=$PWD/datasets/data HARNESS_CACHE_DIR=/tmp/cache
ldd $H | grep -E "not found|libtorch.so|c10.so"
timeout 240 python3 .gpu/make_models.py /tmp/m | tee /tmp/make_models.txt || echo "make_models failed"
P="Query: effects of vitamin D on bone density in older adults. Rewrite:"
# harness decodes in float32 on the CPU and bfloat16 on CUDA; compare each with transformers' same kind.
for pair in cpu:F32 cuda:BF16; do
  d=${pair%%:*}; kind=${pair##*:}
  echo "== harness generate small $d"
  ours=$(timeout 60 $H generate --model /tmp/m/small --prompt "$P" --max-new-tokens 32 --ignore-eos --ids --device $d 2>&1 | tee /dev/stderr | sed -n 's/^generated_ids: //p')
  theirs=$(sed -n "s/^TRANSFORMERS_GREEDY_$kind=//p" /tmp/make_models.txt)
  python3 - "$ours" "$theirs" "$d" "$kind" <<'PYEOF'
import json, sys
ours, theirs = (json.loads(x) if x else [] for x in sys.argv[1:3])
first = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), None)
if ours and ours == theirs:
    print(f"greedy {sys.argv[3]} vs transformers {sys.argv[4]}: same {len(ours)} tokens")
else:
    print(f"greedy {sys.argv[3]} vs transformers {sys.argv[4]}: differ from token {first} ({len(ours)} vs {len(theirs)} tokens)")
PYEOF
done
poll() { nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 250 > "$OUT/$1" & echo $!; }
echo "== train small (cpu-small config) on cuda"
M=$(poll mem_small.txt)
timeout 150 $H train --dataset scifact --policy /tmp/m/small --config cpu-small --device cuda --steps 6 --out /tmp/run_small 2>&1 | tail -5
kill $M; cp /tmp/run_small/log.jsonl $OUT/log_small.jsonl 2>/dev/null
echo "== generate qwen3b-shape batch 64 x 256"
for i in $(seq 64); do echo "$P $i"; done > /tmp/prompts.txt
timeout 120 $H generate --model /tmp/m/qwen3b --prompts-file /tmp/prompts.txt --batch 64 --max-new-tokens 256 --ignore-eos --device cuda 2>&1 | grep -vE "^$P" | tail -4
echo "== train qwen3b-shape (paper config, LoRA) on cuda"
M=$(poll mem_3b.txt)
timeout 330 $H train --dataset scifact --policy /tmp/m/qwen3b --config paper --device cuda --steps 3 --max-minutes 3.5 --out /tmp/run_3b 2>&1 | tail -5
kill $M; cp /tmp/run_3b/log.jsonl $OUT/log_3b.jsonl; cp /tmp/run_3b/meta.json $OUT/meta_3b.json
for f in mem_small.txt mem_3b.txt; do echo "$f peak MiB: $(sort -n $OUT/$f | tail -1)"; done
cat $OUT/log_small.jsonl $OUT/log_3b.jsonl
