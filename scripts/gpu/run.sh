#!/usr/bin/env bash
# One device session: environment, random-weight models, greedy cross-check, then short
# `harness train --device cuda` runs (cpu-small on the 135M shape, paper on the 3B shape).
set -u
exec > >(tee "$OUT/log.txt") 2>&1
H=$PWD/.gpu/harness
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
TL=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__)+"/lib")')
python3 -c 'import torch,transformers;print("torch", torch.__version__, "transformers", transformers.__version__)'
export LD_LIBRARY_PATH=$TL HARNESS_DATA_DIR=$PWD/datasets/data HARNESS_CACHE_DIR=/tmp/cache
ldd $H | grep -E "not found|libtorch.so|c10.so"
timeout 200 python3 .gpu/make_models.py /tmp/m || echo "make_models failed"
P="Query: effects of vitamin D on bone density in older adults. Rewrite:"
for d in cpu cuda; do echo "== harness generate small $d"; timeout 60 $H generate --model /tmp/m/small --prompt "$P" --max-new-tokens 32 --ignore-eos --device $d 2>&1 | tail -2; done
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
