"""GRPO: the audio reaches every log-probability pass, the paper's settings reach TRL, and training moves weights."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from experiments.registry import get_experiment
from experiments.spec import GRPOSpec, LoraSpec, TrainSpec
from experiments.trainer_arguments import build_trainer, grpo_arguments
from models.loading import load_model_and_processor
from models.tiny import TINY_MODELS


def _exp(**grpo_kw):
    exp = get_experiment("grpo-p2")
    # A log row every step: the tests read the trainer's log history of 2-step runs.
    train = TrainSpec(learning_rate=1e-3, epochs=None, max_steps=2, per_device_batch=2, grad_accum=2, save_every=0,
                      logging_steps=1)  # fmt: skip
    return dataclasses.replace(exp, train=train, grpo=GRPOSpec(num_generations=4, max_completion_length=6, **grpo_kw))


@pytest.fixture()
def varied_reward(monkeypatch):
    """An untrained model never names a listed option, so every reward is 0 and nothing can move. For the tests of
    the machinery, score completions by their length parity instead: rewards then vary within a group."""
    import trainers.rewards

    monkeypatch.setattr(trainers.rewards, "accuracy_score", lambda c, a, ch, rule="mmau": float(len(c) % 2))


def _trainer(tiny_dir, items, tmp_path, exp):
    model, processor = load_model_and_processor(tiny_dir, device="cpu", dtype=torch.float32)
    return build_trainer(exp, model, processor, items[:16], output_dir=str(tmp_path / "run"), seed=0)


def test_paper_settings_reach_trl():
    exp = get_experiment("grpo-p2")
    cfg = grpo_arguments(exp.train, exp.grpo, output_dir="/tmp/x", seed=0)
    assert (cfg.num_generations, cfg.temperature, cfg.top_k, cfg.max_completion_length) == (8, 1.0, 50, 512)
    assert (cfg.beta, cfg.loss_type, cfg.use_bias_correction_kl, cfg.scale_rewards) == (0.04, "grpo", False, "group")
    assert (cfg.learning_rate, cfg.max_steps, cfg.save_steps, cfg.gradient_accumulation_steps) == (1e-6, 500, 100, 2)
    assert cfg.per_device_train_batch_size == 8  # TRL counts completions: 1 prompt x G=8
    assert cfg.num_iterations == 1
    clip = get_experiment("grpo-p2-clip").grpo
    assert clip.num_iterations == 2 and clip.epsilon == 0.2


def test_audio_reaches_generation_and_every_loss_pass(tiny_dir, smoke_train_items, tmp_path):
    trainer = _trainer(tiny_dir, smoke_train_items, tmp_path, _exp())
    calls = {"policy": [], "ref": []}
    hooks = [
        trainer.model.model.audio_tower.register_forward_hook(lambda m, a, o: calls["policy"].append(torch.is_grad_enabled())),
        trainer.ref_model.model.audio_tower.register_forward_hook(lambda m, a, o: calls["ref"].append(torch.is_grad_enabled())),
    ]  # fmt: skip
    trainer.train()
    for h in hooks:
        h.remove()
    # 2 optimizer steps x 2 accumulation micro-batches: one grad-enabled policy pass each; the reference (beta > 0)
    # scores every generation batch with audio, without gradients.
    assert calls["policy"].count(True) == 4
    assert calls["ref"] and not any(calls["ref"])
    assert not hasattr(trainer.model.config, "image_token_id")  # the init workaround leaves no trace in the config


def test_log_probs_depend_on_the_audio_and_refuse_to_run_without_it(tiny_dir, smoke_train_items, tmp_path):
    trainer = _trainer(tiny_dir, smoke_train_items, tmp_path, _exp())
    trainer._batch_audio_paths = [smoke_train_items[0].audio_path] * 2
    prompt = trainer.train_dataset[0]["prompt"]
    prompt_ids, _, fields = trainer._tokenize_prompts([prompt, prompt])
    ids = torch.tensor(prompt_ids)
    mask = torch.ones_like(ids)
    real = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, 5)[0]
    trainer._audio = (torch.zeros_like(fields["input_features"]), fields["feature_attention_mask"])
    silent = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, 5)[0]
    assert (real - silent).abs().max() > 1e-4
    trainer._audio = None
    with pytest.raises(RuntimeError, match="without audio"):
        trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, 5)


def test_full_grpo_moves_weights_and_logs_the_papers_metrics(tiny_dir, smoke_train_items, tmp_path, varied_reward):
    trainer = _trainer(tiny_dir, smoke_train_items, tmp_path, _exp())
    before = {k: v.detach().clone() for k, v in trainer.model.named_parameters()}
    trainer.train()
    moved = [k for k, v in trainer.model.named_parameters() if not torch.equal(before[k], v)]
    assert len(moved) > len(before) // 2
    assert any("audio_tower" in k for k in moved)  # the policy gradient reaches the audio encoder
    logged = set().union(*(h.keys() for h in trainer.state.log_history))
    for key in ("reward", "reward_std", "rewards/accuracy/mean", "rewards/format/mean", "frac_reward_zero_std",
                "completions/mean_length", "completions/clipped_ratio", "kl", "entropy", "learning_rate"):  # fmt: skip
        assert key in logged, key


def test_lora_grpo_trains_only_adapters(tiny_dir, smoke_train_items, tmp_path, varied_reward):
    exp = dataclasses.replace(_exp(), lora=LoraSpec())
    trainer = _trainer(tiny_dir, smoke_train_items, tmp_path, exp)
    assert trainer.ref_model is None  # the reference is the model with adapters disabled
    before = {k: v.detach().clone() for k, v in trainer.model.named_parameters()}
    trainer.train()
    after = dict(trainer.model.named_parameters())
    assert all(torch.equal(before[k], after[k]) for k in before if "lora_" not in k)
    assert any(not torch.equal(before[k], after[k]) for k in before if "lora_" in k)


def test_original_schedule_decays_over_1000_steps(tiny_dir, smoke_train_items, tmp_path):
    exp = dataclasses.replace(_exp(), train=dataclasses.replace(_exp().train, schedule_steps=100, max_steps=2))
    trainer = _trainer(tiny_dir, smoke_train_items, tmp_path, exp)
    trainer.train()
    lrs = [h["learning_rate"] for h in trainer.state.log_history if "learning_rate" in h]
    assert lrs[1] == pytest.approx(1e-3 * (1 - 1 / 100))  # linear decay over 100 steps, not over the run's 2


def test_clip_ablation_scores_against_old_policy(tiny_dir, smoke_train_items, tmp_path, monkeypatch):
    """With two passes per rollout batch the loss gets old log-probs, so the ratio can leave 1 and be clipped."""
    from trainers.grpo import AudioGRPOTrainer

    seen = []
    original = AudioGRPOTrainer._compute_loss

    def spy(self, model, inputs):
        seen.append("old_per_token_logps" in inputs)
        return original(self, model, inputs)

    monkeypatch.setattr(AudioGRPOTrainer, "_compute_loss", spy)
    _trainer(tiny_dir, smoke_train_items, tmp_path, _exp(num_iterations=2)).train()
    assert seen and all(seen)
    seen.clear()
    _trainer(tiny_dir, smoke_train_items, tmp_path / "one", _exp()).train()
    assert seen and not any(seen)  # one pass: the ratio is exactly 1, TRL skips the old log-probs


def test_distinct_clip_encoder_scores_groups_like_per_row_encoding(tiny_dir, smoke_train_items, tmp_path):
    """The log-probabilities of two prompts' groups, and their gradients, with each clip encoded once vs per row."""
    from models.audio_encoder import use_encoder_switches

    trainer = _trainer(tiny_dir, smoke_train_items, tmp_path, _exp())
    trainer.shared_prompt_scoring = False  # which would run each prompt, so each clip, once anyway
    paths = [smoke_train_items[i].audio_path for i in (0, 1, 0, 1, 0, 1)]
    prompts = [trainer.train_dataset[i]["prompt"] for i in (0, 1, 0, 1, 0, 1)]
    trainer._batch_audio_paths = paths
    prompt_ids, _, fields = trainer._tokenize_prompts(prompts)
    width = max(map(len, prompt_ids))
    ids = torch.tensor([[0] * (width - len(p)) + p for p in prompt_ids])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompt_ids])
    model = trainer.model
    encoded = []
    hook = model.model.audio_tower.conv1.register_forward_hook(lambda m, a, o: encoded.append(o.shape[0]))

    def score(distinct: bool):
        use_encoder_switches(model, valid_frames=True, distinct_clips=distinct)
        model.zero_grad()
        trainer._audio = (fields["input_features"], fields["feature_attention_mask"])
        logps = trainer._get_per_token_logps_and_entropies(model, ids, mask, 5)[0]
        logps.sum().backward()
        return logps.detach(), {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}

    ref_logps, ref_grads = score(False)
    logps, grads = score(True)
    hook.remove()
    assert encoded == [6, 2]
    assert torch.allclose(logps, ref_logps, atol=1e-5)
    assert grads.keys() == ref_grads.keys() and any("audio_tower" in k for k in grads)
    assert all(torch.allclose(grads[k], ref_grads[k], atol=1e-6, rtol=1e-4) for k in grads)


def test_generation_prefills_each_prompt_once(tiny_dir, smoke_train_items, tmp_path, monkeypatch):
    import trainers.group_prefill

    seen = []
    original = trainers.group_prefill.distinct_prompts

    def spy(*args, **kwargs):
        first, inverse = original(*args, **kwargs)
        seen.append((len(inverse), len(first)))
        return first, inverse

    monkeypatch.setattr(trainers.group_prefill, "distinct_prompts", spy)
    exp = _exp()
    assert exp.grpo.shared_prompt_prefill and exp.grpo.shared_prompt_scoring  # on by default
    exp = dataclasses.replace(exp, train=dataclasses.replace(exp.train, max_steps=1),
                              grpo=dataclasses.replace(exp.grpo, shared_prompt_scoring=False))  # fmt: skip
    _trainer(tiny_dir, smoke_train_items, tmp_path, exp).train()
    # One generation batch: 2 prompts x 2 accumulation steps, G=4 rows each.
    assert seen == [(16, 4)]


def _scoring_batch(trainer, items, order=(0, 1, 0, 1, 0, 1), completion=5):
    """Prompt + completion rows as TRL scores them: prompts left-padded, completions right-padded."""
    trainer._batch_audio_paths = [items[i].audio_path for i in order]
    prompt_ids, _, fields = trainer._tokenize_prompts([trainer.train_dataset[i]["prompt"] for i in order])
    width = max(map(len, prompt_ids))
    gen = torch.Generator().manual_seed(0)
    ids, mask = [], []
    for r, p in enumerate(prompt_ids):
        done = completion - (r % 3)  # completions of different lengths: the ends are padding
        tokens = torch.randint(5, 100, (completion,), generator=gen).tolist()
        ids.append([0] * (width - len(p)) + p + tokens)
        mask.append([0] * (width - len(p)) + [1] * len(p) + [1] * done + [0] * (completion - done))
    return torch.tensor(ids), torch.tensor(mask), fields


@pytest.mark.parametrize("model_name", sorted(TINY_MODELS))
@pytest.mark.parametrize("lora", [False, True])
def test_shared_prompt_scoring_gives_the_plain_log_probs_and_gradients(lora, model_name, smoke_train_items, tmp_path):
    """Per family (the Omni thinkers: with the plain forward's multimodal RoPE positions, split at the prompt)."""
    from experiments.profiles import resolve_model_name

    exp = dataclasses.replace(_exp(), lora=LoraSpec(dropout=0.0) if lora else None)
    trainer = _trainer(resolve_model_name(model_name), smoke_train_items, tmp_path, exp)
    ids, mask, fields = _scoring_batch(trainer, smoke_train_items)
    model = trainer.model
    seen = []
    hook = model.get_input_embeddings().register_forward_hook(lambda m, a, o: seen.append(tuple(a[0].shape)))

    def score(shared: bool):
        trainer.shared_prompt_scoring = shared
        model.zero_grad()
        trainer._audio = (fields["input_features"], fields["feature_attention_mask"])
        logps, entropy, _ = trainer._get_per_token_logps_and_entropies(model, ids, mask, 5, compute_entropy=True)
        (logps * mask[:, -5:]).sum().backward()
        grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
        return logps.detach(), entropy.detach(), grads

    ref = score(False)
    seen.clear()
    shared = score(True)
    hook.remove()
    assert seen == [(2, ids.shape[1] - 6), (6, 6)]  # 2 distinct prompts once, then last prompt token + completion
    valid = mask[:, -5:].bool()
    assert torch.allclose(shared[0][valid], ref[0][valid], atol=1e-5)
    assert torch.allclose(shared[1][valid], ref[1][valid], atol=1e-5)
    assert shared[2].keys() == ref[2].keys() and shared[2]
    assert any("audio_tower" in k for k in ref[2]) != lora  # full: the encoder learns; LoRA: adapters only
    for k, g in shared[2].items():
        assert torch.allclose(g, ref[2][k], atol=1e-6, rtol=1e-4), k


def test_shared_prompt_scoring_stands_aside_under_dropout(tiny_dir, smoke_train_items, tmp_path):
    from trainers.group_prefill import has_active_dropout

    trainer = _trainer(tiny_dir, smoke_train_items, tmp_path, dataclasses.replace(_exp(), lora=LoraSpec()))
    ids, mask, fields = _scoring_batch(trainer, smoke_train_items)
    assert trainer.shared_prompt_scoring and trainer.model.training and has_active_dropout(trainer.model)
    seen = []
    hook = trainer.model.get_input_embeddings().register_forward_hook(lambda m, a, o: seen.append(a[0].shape[0]))
    trainer._audio = (fields["input_features"], fields["feature_attention_mask"])
    trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, 5)
    trainer.model.eval()
    assert not has_active_dropout(trainer.model)
    trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, 5)
    hook.remove()
    assert seen == [6, 2, 6]  # training with LoRA dropout: plain pass; eval mode: shared prompts
