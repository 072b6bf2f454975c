"""SFT: audio reaches the loss, labels cover only the answer, accumulation is exact, LoRA/full train what they say."""

from __future__ import annotations

import torch

from experiments.spec import LoraSpec, TrainSpec
from experiments.trainer_arguments import lora_config, sft_arguments
from models.loading import load_model_and_processor
from trainers.sft import AudioSFTCollator, build_sft_trainer


def _trainer(tiny_dir, items, tmp_path, *, batch=4, accum=1, steps=1, lora=None, freeze_audio=False, lr=1e-3, **kw):
    # A log row every step: the tests read the trainer's log history of 1- and 2-step runs.
    model, processor = load_model_and_processor(tiny_dir, device="cpu", dtype=torch.float32)
    train = TrainSpec(learning_rate=lr, epochs=None, max_steps=steps, per_device_batch=batch, grad_accum=accum,
                      save_every=0, logging_steps=1)  # fmt: skip
    args = sft_arguments(train, output_dir=str(tmp_path / "run"), seed=0)
    peft = lora_config(lora, model)  # a LoraSpec, as an experiment gives it
    return build_sft_trainer(model, processor, items, args=args, lora=peft, freeze_audio=freeze_audio, **kw)


def test_labels_cover_only_the_answer_and_end_of_turn(tiny_dir, smoke_train_items):
    _, processor = load_model_and_processor(tiny_dir, device="cpu")
    items = smoke_train_items[:6]
    for prompt in ("p1", "p2"):
        batch = AudioSFTCollator(processor, prompt)(items)
        audio_id = processor.tokenizer.convert_tokens_to_ids("<|AUDIO|>")
        assert (batch["labels"] == audio_id).sum() == 0
        for row, item in enumerate(items):
            labelled = batch["input_ids"][row][batch["labels"][row] != -100]
            target = item.answer if prompt == "p1" else f"<answer>{item.answer}</answer>"
            assert processor.tokenizer.decode(labelled) == target + "<|im_end|>"
            # Padding (right) is never labelled and audio features are present for every row.
            assert (batch["labels"][row][batch["attention_mask"][row] == 0] == -100).all()
        assert batch["input_features"].shape[0] == len(items) and batch["feature_attention_mask"].sum(-1).min() > 0


def test_audio_reaches_the_grad_enabled_forward(tiny_dir, smoke_train_items, tmp_path):
    trainer = _trainer(tiny_dir, smoke_train_items, tmp_path, steps=2)
    calls = []
    hook = trainer.model.model.audio_tower.register_forward_hook(lambda m, a, o: calls.append(torch.is_grad_enabled()))
    trainer.train()
    hook.remove()
    assert calls.count(True) == 2  # one grad-enabled audio-encoder pass per optimizer step


def _grad_norm(tiny_dir, items, tmp_path, batch, accum, **kw):
    trainer = _trainer(tiny_dir, items, tmp_path / f"{batch}x{accum}", batch=batch, accum=accum, steps=1, **kw)
    trainer.train()
    return next(h["grad_norm"] for h in trainer.state.log_history if "grad_norm" in h)


def test_gradient_accumulation_2x2_equals_4x1(tiny_dir, smoke_train_items, tmp_path):
    # Answers of different token lengths make a per-micro-batch mean differ from the token mean of the step.
    items = smoke_train_items[:4]
    one_step = _grad_norm(tiny_dir, items, tmp_path, 4, 1)
    accumulated = _grad_norm(tiny_dir, items, tmp_path, 2, 2)
    assert abs(one_step - accumulated) < 1e-4 * one_step


def test_lora_trains_only_language_model_adapters(tiny_dir, smoke_train_items, tmp_path):
    trainer = _trainer(tiny_dir, smoke_train_items, tmp_path, steps=3, lora=LoraSpec())
    model = trainer.model
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    trainable = [k for k, v in model.named_parameters() if v.requires_grad]
    assert trainable and all("lora_" in k and "language_model" in k for k in trainable)
    assert not any("audio_tower" in k and "lora_" in k for k in before)
    trainer.train()
    after = dict(model.named_parameters())
    assert all(torch.equal(before[k], after[k]) for k in before if "lora_" not in k)  # base weights untouched
    assert any(not torch.equal(before[k], after[k]) for k in trainable)


def test_full_sft_moves_every_trainable_tensor(tiny_dir, smoke_train_items, tmp_path):
    trainer = _trainer(tiny_dir, smoke_train_items, tmp_path, steps=2)
    before = {k: v.detach().clone() for k, v in trainer.model.named_parameters() if v.requires_grad}
    trainer.train()
    after = dict(trainer.model.named_parameters())
    unchanged = [k for k in before if torch.equal(before[k], after[k])]
    assert not unchanged, unchanged
    assert any("audio_tower" in k for k in before)  # the audio encoder trains too, as in the original


def test_freeze_audio_encoder_keeps_it_fixed(tiny_dir, smoke_train_items, tmp_path):
    trainer = _trainer(tiny_dir, smoke_train_items, tmp_path, steps=2, freeze_audio=True)
    before = {k: v.detach().clone() for k, v in trainer.model.named_parameters()}
    trainer.train()
    after = dict(trainer.model.named_parameters())
    assert all(torch.equal(before[k], after[k]) for k in before if "audio_tower" in k)
    assert any(not torch.equal(before[k], after[k]) for k in before if "language_model" in k)


def test_the_accumulation_check_has_teeth(tiny_dir, smoke_train_items, tmp_path):
    """Negative control: with the model's own loss (what a plain Trainer uses) 2 x 2 does NOT equal 4 x 1."""
    from trainers.sft import AudioSFTTrainer, ItemDataset

    def naive(batch, accum):
        model, processor = load_model_and_processor(tiny_dir, device="cpu", dtype=torch.float32)
        train = TrainSpec(learning_rate=1e-3, epochs=None, max_steps=1, per_device_batch=batch, grad_accum=accum,
                          save_every=0, logging_steps=1)  # fmt: skip
        args = sft_arguments(train, output_dir=str(tmp_path / f"n{batch}"), seed=0)
        trainer = AudioSFTTrainer(model=model, args=args, train_dataset=ItemDataset(smoke_train_items[:4]),
                                  data_collator=AudioSFTCollator(processor, "p1"))  # fmt: skip
        trainer.train()
        return next(h["grad_norm"] for h in trainer.state.log_history if "grad_norm" in h)

    assert abs(naive(4, 1) - naive(2, 2)) > 0.05 * naive(4, 1)
