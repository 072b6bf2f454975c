"""How to train: SFT (full and LoRA, one path), audio-correct GRPO, rewards, and checkpoint evaluation."""
