#!/usr/bin/env bash
# verl PPO with the paper's hyperparameters and the harness's data and rewards, for a machine
# with GPUs and verl installed (not set up by this repository's commands). Untested here: no
# GPU and no verl on the project's machine. The settings and their sources: scripts/verl/README.md.
#
# Usage: scripts/verl/ppo_paper.sh DATASET [MODEL] [N_GPUS]
#   e.g. scripts/verl/ppo_paper.sh scifact Qwen/Qwen2.5-3B-Instruct 2
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DATASET="${1:?dataset card name, e.g. scifact}"
MODEL="${2:-Qwen/Qwen2.5-3B-Instruct}"
GPUS="${3:-2}"
H="${HARNESS_BIN:-$ROOT/target/release/harness}"
DATA="${VERL_DATA_DIR:-$ROOT/results/verl/$DATASET}"
PORT="${HARNESS_REWARD_PORT:-8001}"
VAL="${VAL_SPLIT:-dev}"   # literature has train and test halves: VAL_SPLIT=test
mkdir -p "$DATA"
for split in train "$VAL"; do
  [ -f "$DATA/$split.parquet" ] || "$H" export verl --dataset "$DATASET" --split "$split" --out "$DATA/$split.parquet"
done
# The paper's response lengths: 500 literature, 350 evidence seeking, 512 classic IR and SQL.
case "$DATASET" in
  literature|pubmed|ctgov) RESPONSE=500 ;;
  nq|triviaqa|squad|squad-paragraphs) RESPONSE=350 ;;
  *) RESPONSE=512 ;;
esac
"$H" serve --reward --dataset "$DATASET" --port "$PORT" --threads "$(nproc)" &
SERVER=$!
trap 'kill $SERVER' EXIT
until (echo > "/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do sleep 1; done
export HARNESS_REWARD_URL="http://127.0.0.1:$PORT/reward"
python3 -m verl.trainer.main_ppo \
  data.train_files="$DATA/train.parquet" data.val_files="$DATA/$VAL.parquet" \
  data.train_batch_size=64 data.max_prompt_length=2048 data.max_response_length="$RESPONSE" \
  actor_rollout_ref.model.path="$MODEL" critic.model.path="$MODEL" \
  actor_rollout_ref.model.enable_gradient_checkpointing=true critic.model.enable_gradient_checkpointing=true \
  actor_rollout_ref.actor.optim.lr=1e-6 critic.optim.lr=1e-5 \
  actor_rollout_ref.actor.ppo_mini_batch_size=16 actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=2 \
  critic.ppo_micro_batch_size_per_gpu=2 actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=2 \
  actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=2 actor_rollout_ref.ref.fsdp_config.param_offload=true \
  actor_rollout_ref.actor.clip_ratio=0.2 actor_rollout_ref.actor.entropy_coeff=0.001 actor_rollout_ref.actor.use_kl_loss=false \
  actor_rollout_ref.rollout.name=vllm actor_rollout_ref.rollout.temperature=0.6 actor_rollout_ref.rollout.n=1 \
  actor_rollout_ref.rollout.tensor_model_parallel_size=1 \
  algorithm.adv_estimator=gae algorithm.gamma=1.0 algorithm.lam=1.0 \
  algorithm.use_kl_in_reward=true algorithm.kl_penalty=kl algorithm.kl_ctrl.type=fixed algorithm.kl_ctrl.kl_coef=0.001 \
  custom_reward_function.path="$ROOT/scripts/verl/harness_reward.py" custom_reward_function.name=compute_score_batch \
  reward_model.reward_manager=batch \
  trainer.n_gpus_per_node="$GPUS" trainer.nnodes=1 trainer.val_before_train=false \
  trainer.total_epochs=5 trainer.save_freq=50 trainer.test_freq=50 trainer.logger='[console]' \
  trainer.project_name=deepretrieval-bench trainer.experiment_name="$DATASET-ppo-paper"
