#!/usr/bin/env bash
# Multi-node launch under Slurm: one task per node, 8 GPUs each, ZeRO-3 across all of them.
#   sbatch --nodes=2 launch/slurm_multinode.sh grpo-p2 paper 0      # EXPERIMENT PROFILE SEED
#SBATCH --job-name=r1-aqa
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=64
#SBATCH --time=24:00:00
set -euo pipefail
EXP=${1:-grpo-p2}; PROFILE=${2:-paper}; SEED=${3:-0}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
MAIN_IP=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
srun bash -c "cd '$PWD' && .venv/bin/accelerate launch --config_file launch/multinode_zero3.yaml \
  --num_machines $SLURM_NNODES --num_processes $((SLURM_NNODES * GPUS_PER_NODE)) \
  --machine_rank \$SLURM_NODEID --main_process_ip $MAIN_IP --main_process_port 29500 \
  -m experiments run $EXP --profile $PROFILE --seed $SEED --resume"
