"""Every model family behind the seam keeps the suite's guarantees, on its tiny twin loaded from its hub layout.

Per family (parametrised): detection from ``model_type`` and a clear error for an unknown one; the hub layout
(Omni: full config, ``thinker.*`` weights, a talker tensor skipped) loaded strictly; featurize equal to the
processor; the audio reaching the logits; SFT labels on the answer tokens only; LoRA on the language model only
(Qwen3-Omni: attention only, experts frozen); full SFT training the audio encoder unless it is frozen; the unused
vision tower frozen; inexact speed switches standing aside. GRPO's audio alignment per family is in
``tests/test_grpo_alignment.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from data.prompts import build_conversation, render_prompt
from data.schema import DataError, Item
from models.features import featurize
from models.loading import CheckpointError, load_model_and_processor
from models.registry import FAMILIES, family_for_model_type, family_of, family_of_checkpoint
from models.tiny import TINY_MODELS

TINY = sorted(TINY_MODELS)


@pytest.fixture(scope="module", params=TINY)
def twin(request: pytest.FixtureRequest):
    from experiments.profiles import resolve_model_name

    path = Path(resolve_model_name(request.param))
    model, processor = load_model_and_processor(path, dtype=torch.float32, device="cpu")
    return TINY_MODELS[request.param], path, model, processor


def _waves(*seconds: float) -> list[np.ndarray]:
    return [np.random.default_rng(i).standard_normal(int(s * 16000)).astype(np.float32) * 0.1
            for i, s in enumerate(seconds)]  # fmt: skip


def _prompt(processor, prompt_id: str = "p2") -> str:
    return render_prompt(processor, build_conversation("Is the tone high or low?", ["high", "low"], prompt_id))


def test_family_is_detected_from_model_type_and_an_unknown_one_is_refused(twin):
    family, path, model, processor = twin
    assert family_of_checkpoint(path) is family
    assert family_of(model) is family and family_of(processor) is family

    class EngineLike(torch.nn.Module):  # a DeepSpeedEngine: wraps ``module`` and has its own non-HF ``config``
        def __init__(self, module: torch.nn.Module) -> None:
            super().__init__()
            self.module, self.config = module, {"zero_optimization": {"stage": 3}}

    assert family_of(EngineLike(model)) is family
    with pytest.raises(DataError) as err:
        family_for_model_type("llama", "some/checkpoint")
    for name in FAMILIES:
        assert name in str(err.value)


def test_omni_twins_are_saved_in_the_hub_layout_and_loaded_strictly(twin, tmp_path):
    family, path, _, _ = twin
    if family.name == "qwen2-audio":
        pytest.skip("Qwen2-Audio's hub layout is its save_pretrained layout (tests/test_models.py)")
    from safetensors.torch import load_file, save_file

    config = json.loads((path / "config.json").read_text())
    assert config["model_type"] in family.full_model_types and "thinker_config" in config
    tensors = load_file(str(path / "model.safetensors"))
    assert all(k.startswith(("thinker.", *family.speech_prefixes)) for k in tensors)
    assert any(k.startswith(family.speech_prefixes) for k in tensors)  # the loader must skip these
    # A stray thinker weight is not skipped: the strict load names it.
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(path, bad)
    tensors["thinker.model.stray.weight"] = torch.zeros(2)
    save_file(tensors, str(bad / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="stray"):
        load_model_and_processor(bad, dtype=torch.float32, device="cpu")


def test_featurize_equals_the_processor(twin):
    _, _, _, processor = twin
    text = _prompt(processor)
    waves = _waves(0.5, 2.0, 3.1)  # shorter than, equal to and longer than the 2 s window
    from models.loading import audio_window_seconds

    window = int(audio_window_seconds(processor) * 16000)
    waves = [w[:window] for w in waves]
    fast = featurize(processor, [text] * 3, waves)
    plain = dict(processor(text=[text] * 3, audio=waves, sampling_rate=16000, padding=True, return_tensors="pt"))
    plain.pop("num_audio_tokens", None)
    assert sorted(fast) == sorted(plain)
    for key in fast:
        assert torch.equal(fast[key], plain[key]), key


def test_the_audio_reaches_the_logits(twin):
    _, _, model, processor = twin
    inputs = featurize(processor, [_prompt(processor)], _waves(1.5))
    with torch.no_grad():
        real = model(**inputs).logits
        silent = model(**{**inputs, "input_features": torch.zeros_like(inputs["input_features"])}).logits
    assert (real - silent).abs().max() > 0


def test_sft_labels_only_the_answer_and_end_of_turn(twin, tmp_path):
    _, _, _, processor = twin
    from data.audio import write_wav
    from trainers.sft import AudioSFTCollator

    items = []
    for i, wave in enumerate(_waves(1.0, 1.7)):
        write_wav(tmp_path / f"{i}.wav", wave, 16000)
        items.append(Item(id=f"i{i}", audio_path=str(tmp_path / f"{i}.wav"), question="Is the tone high or low?",
                          choices=("high", "low"), answer=["high", "low"][i]))  # fmt: skip
    batch = AudioSFTCollator(processor, "p2")(items)
    tok = processor.tokenizer
    for row, item in enumerate(items):
        labelled = batch["labels"][row][batch["labels"][row] != -100]
        assert tok.decode(labelled) == f"<answer>{item.answer}</answer><|im_end|>"


def test_lora_adapts_the_language_model_only(twin):
    family, _, model, _ = twin
    import copy

    from experiments.spec import LoraSpec
    from experiments.trainer_arguments import lora_config
    from trainers.sft import apply_lora

    copied = copy.deepcopy(model)
    peft_model = apply_lora(copied, lora_config(LoraSpec(), copied))
    adapted = {n.rsplit(".lora_A", 1)[0] for n, _ in peft_model.named_parameters() if ".lora_A" in n}
    assert adapted and all(".language_model." in n for n in adapted)
    kinds = {n.rsplit(".", 1)[-1] for n in adapted}
    if family.name == "qwen3-omni":
        # Fused 3-D experts are no Linear modules, and the router is not named: attention only (models/qwen3_omni.py).
        assert kinds == {"q_proj", "k_proj", "v_proj", "o_proj"}
        assert not any("experts" in n for n, p in peft_model.named_parameters() if p.requires_grad)
    else:
        assert kinds == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)


@pytest.mark.parametrize("freeze", [False, True])
def test_full_sft_trains_the_audio_encoder_unless_frozen(twin, tmp_path, freeze):
    family, _, model, processor = twin
    import copy

    from data.audio import write_wav
    from trainers.common import freeze_audio_encoder
    from trainers.sft import AudioSFTCollator, token_mean_loss

    model = copy.deepcopy(model).train()
    frozen = family.freeze_unused_parts(model)
    assert frozen == list(family.unused_parts)
    if freeze:
        freeze_audio_encoder(model)
    write_wav(tmp_path / "a.wav", _waves(1.2)[0], 16000)
    item = Item(id="a", audio_path=str(tmp_path / "a.wav"), question="Is the tone high or low?",
                choices=("high", "low"), answer="high")  # fmt: skip
    batch = AudioSFTCollator(processor, "p2")([item])
    labels = batch.pop("labels")
    token_mean_loss(model(**batch), labels).backward()
    encoder_grads = [p.grad for p in family.audio_encoder(model).parameters()]
    if freeze:
        assert all(g is None for g in encoder_grads)
    else:
        assert any(g is not None and g.abs().sum() > 0 for g in encoder_grads)
    for part in family.unused_parts:
        assert all(not p.requires_grad for p in getattr(family.backbone(model), part).parameters())


def test_inexact_switches_stand_aside_and_say_so_once(twin, capsys):
    family, _, model, _ = twin
    import models.family
    from models.audio_encoder import use_valid_frame_encoder

    models.family._SAID.clear()
    use_valid_frame_encoder(model, True)
    patched = "_stock_forward" in family.audio_encoder(model).__dict__
    use_valid_frame_encoder(model, True)
    use_valid_frame_encoder(model, False)
    said = capsys.readouterr().out
    if "valid_frame_encoder" in family.inexact_switches:
        assert not patched and said.count("valid_frame_encoder stands aside") == 1
        assert not family.allows("valid_frame_encoder")
    else:
        assert patched and "stands aside" not in said
