#!/usr/bin/env bash
# GPU checks on one GPU with a Qwen2-Audio-7B-shaped random-weight model (bf16): evaluator throughput at batch 64
# with 16 new tokens on 10 s clips, for every speed-switch configuration, and GRPO steps (1 prompt, G=8, 16-token
# completions, LoRA) with the phase breakdown and peak memory: all switches on, the stock 30 s encoder, and the
# shared-prompt switches off one at a time and together (bench/grpo_switches.py; LoRA dropout 0 so that the
# shared-prompt and merged-LoRA switches apply: under active dropout they stand aside), and one GRPO-LoRA step with
# the paper's 512-token completions under gradient checkpointing, for its peak memory. Then, after all of those, the
# Omni thinkers' shapes (Qwen2.5-Omni-7B, Qwen3-Omni-30B-A3B: ~17 and ~62 GB in bf16): evaluator items/s (64 items of
# 10 s, batch 32, default switches: the Omni families' speed switches stand aside) and a GRPO-LoRA step (G=8,
# 16 tokens, 3 steps) with its peak memory, each capped at OMNI_TIMEOUT seconds so that a slow or failing run leaves
# time for the rest (every run's failure is reported in the exit status, none stops the script).
#
#   bash bench/gpu_check.sh                  # on the GPU machine; results in $OUT (default bench/results)
#   SHAPE=tiny SKIP_WHEELS=1 bash bench/gpu_check.sh   # the same script in a minute on a CPU, to check it first
#                                                      # (the Omni runs then take the tiny Omni twins)
#   OMNI_SHAPES="qwen2.5-omni-3b" bash bench/gpu_check.sh   # other Omni shapes (bench/shapes.py); "" skips them
#   OMNI_ONLY=1 bash bench/gpu_check.sh     # the Omni runs alone (to split the check over two device commands)
#
# Packages missing on the GPU image travel as wheels in .whl/ (installed into /tmp/site when present).
set -uo pipefail
cd "$(dirname "$0")/.."
SHAPE=${SHAPE:-7b}
if [ "$SHAPE" = tiny ]; then OMNI_DEFAULT="tiny-qwen2.5-omni tiny-qwen3-omni"; else
  OMNI_DEFAULT="qwen2.5-omni-7b qwen3-omni-30b-a3b"; fi
OMNI_SHAPES=${OMNI_SHAPES-$OMNI_DEFAULT}
OMNI_TIMEOUT=${OMNI_TIMEOUT:-120}
OUT=${OUT:-bench/results}
mkdir -p "$OUT"
if [ -z "${SKIP_WHEELS:-}" ] && compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site:$PWD || exit 1
fi
export PYTHONUNBUFFERED=1 WANDB_MODE=disabled HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch, transformers, trl, peft; print('torch', torch.__version__, 'transformers', transformers.__version__, 'trl', trl.__version__, 'peft', peft.__version__)"
status=0
if [ -z "${OMNI_ONLY:-}" ]; then
  python3 -m bench.eval_throughput --shape "$SHAPE" --n-items 256 --clip-seconds 10 --batch-size 64 --max-new-tokens 16 \
    --switches --repeats 1 --out "$OUT/eval_throughput-random-$SHAPE.json" || status=1
  python3 -m bench.grpo_step --shape "$SHAPE" --lora --steps 4 --out "$OUT/grpo_step-$SHAPE-lora.json" || status=1
  python3 -m bench.grpo_step --shape "$SHAPE" --lora --steps 4 --no-valid-frame-encoder \
    --out "$OUT/grpo_step-$SHAPE-lora-stock-encoder.json" || status=1
  python3 -m bench.grpo_switches --shape "$SHAPE" --lora --lora-dropout 0 --steps 4 --repeats 1 \
    --only all_on no_shared_prefill no_shared_scoring all_off --out "$OUT/grpo_switches-$SHAPE-lora.json" || status=1
  python3 -m bench.grpo_step --shape "$SHAPE" --lora --steps 2 --completion-tokens 512 --gradient-checkpointing \
    --out "$OUT/grpo_step-$SHAPE-lora-512-gc.json" || status=1
fi
for omni in $OMNI_SHAPES; do
  timeout "$OMNI_TIMEOUT" python3 -m bench.eval_throughput --shape "$omni" --n-items 64 --clip-seconds 10 \
    --batch-size 32 --max-new-tokens 16 --repeats 1 --out "$OUT/eval_throughput-random-$omni.json" || status=1
  timeout "$OMNI_TIMEOUT" python3 -m bench.grpo_step --shape "$omni" --lora --steps 3 \
    --out "$OUT/grpo_step-$omni-lora.json" || status=1
done
exit $status
