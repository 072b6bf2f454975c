"""Prefilling each distinct prompt once gives plain generation's scores and tokens, with the audio in the prefill;
under active dropout (training mode, as TRL samples) the switch stands aside, so the tokens are still plain ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import trainers.group_prefill as group_prefill
from data.prompts import build_conversation, render_prompt
from experiments.spec import LoraSpec
from models.features import featurize
from models.qwen2_audio import build_tiny_model
from models.registry import FAMILIES
from tests.helpers import TEST_WORDS
from trainers.group_prefill import active_dropout, distinct_prompts, shared_prefill


def _batch(processor, rows, padding_side="left"):
    questions = ["Q?", "Is it a rather long question about the sound?"]
    texts = [render_prompt(processor, build_conversation(q, ["a", "b"], "p2")) for q in questions]
    rng = np.random.default_rng(0)
    waves = [(0.2 * rng.standard_normal(n)).astype(np.float32) for n in (8000, 30400)]
    feats = featurize(processor, texts, waves, padding_side=padding_side)
    return {k: v[torch.tensor(rows)] for k, v in feats.items()}


def _generate(model, inputs, shared, **kw):
    prefill_rows = []
    hook = model.get_input_embeddings().register_forward_hook(
        lambda m, a, o: prefill_rows.append(tuple(a[0].shape)) if a[0].shape[1] > 1 else None
    )
    torch.manual_seed(0)
    with torch.no_grad(), shared_prefill(model) if shared else torch.enable_grad():
        out = model.generate(**inputs, max_new_tokens=6, output_scores=True, return_dict_in_generate=True, **kw)
    hook.remove()
    return out.sequences, torch.stack(out.scores), prefill_rows


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("sampling", [{"do_sample": False}, {"do_sample": True, "top_k": 50, "temperature": 1.0}])
def test_same_scores_and_tokens_as_plain_generation(sampling, family):
    """Per family: under multimodal RoPE (the Omni thinkers) the prefill takes the plain forward's positions and
    sets the deltas decoding continues from, even after a call of another batch size left its own."""
    model, processor = FAMILIES[family].build_tiny(seed=1, words=TEST_WORDS)
    model.eval()
    inputs = _batch(processor, [0, 1, 0, 1, 1, 0])  # two prompts' groups of 3, interleaved
    other = _batch(processor, [1, 0])
    _generate(model, other, False, **sampling)  # leaves the state of a 2-row call (Omni: rope_deltas of 2 rows)
    ref_tokens, ref_scores, ref_prefill = _generate(model, inputs, False, **sampling)
    _generate(model, other, False, **sampling)
    tokens, scores, prefill = _generate(model, inputs, True, **sampling)
    width = inputs["input_ids"].shape[1]
    assert ref_prefill == [(6, width)] and prefill == [(2, width - 1)]  # two distinct prompts prefilled, once each
    assert torch.equal(tokens, ref_tokens)
    finite = torch.isfinite(ref_scores)
    assert torch.equal(finite, torch.isfinite(scores))
    assert torch.allclose(scores[finite], ref_scores[finite], atol=1e-4)
    silent = dict(inputs, input_features=torch.zeros_like(inputs["input_features"]))
    _, silent_scores, _ = _generate(model, silent, True, **sampling)
    # So the audio is in the shared prefill: silence moves the scores far more than sharing does (an untrained
    # Qwen3-Omni twin hears little: 3e-5 against 0 for sharing; Qwen2-Audio's: above 1e-3).
    shared_diff = (scores[finite] - ref_scores[finite]).abs().max()
    assert (silent_scores[finite] - ref_scores[finite]).abs().max() > max(100 * shared_diff, 1e-6)
    assert "generate" not in model.__dict__  # the switch leaves no trace on the instance


def test_falls_back_to_plain_generation_where_sharing_does_not_apply():
    model, processor = build_tiny_model(seed=1, words=TEST_WORDS)
    distinct = _batch(processor, [0, 1])
    _, _, prefill = _generate(model, distinct, True)
    assert prefill == [(2, distinct["input_ids"].shape[1])]
    right = _batch(processor, [0, 1, 0, 1], padding_side="right")
    _, _, prefill = _generate(model, right, True)
    assert prefill == [(4, right["input_ids"].shape[1])]


def test_distinct_prompts_compare_tokens_padding_and_audio():
    ids = torch.tensor([[0, 5, 6], [0, 5, 6], [5, 5, 6], [0, 5, 6]])
    mask = torch.tensor([[0, 1, 1], [0, 1, 1], [1, 1, 1], [0, 1, 1]])
    features = torch.zeros(4, 2, 8)
    features[3, 0, 0] = 1.0  # same text as rows 0-1, another clip
    first, inverse = distinct_prompts(ids, mask, features, torch.ones(4, 8, dtype=torch.long))
    assert first.tolist() == [0, 2, 3] and inverse.tolist() == [0, 0, 1, 2]


def _with_dropout(source: str):
    """The tiny model in training mode with one kind of dropout at 0.5: LoRA's (as in grpo-p2-lora, where it is
    0.05), the language model's attention dropout, or the audio encoder's."""
    model, processor = build_tiny_model(seed=1, words=TEST_WORDS)
    if source == "lora":
        from peft import LoraConfig, get_peft_model

        spec = LoraSpec()
        config = LoraConfig(r=spec.r, lora_alpha=spec.alpha, lora_dropout=0.5, target_modules=spec.targets,
                            task_type="CAUSAL_LM")  # fmt: skip
        model = get_peft_model(model, config)
        with torch.no_grad():  # non-zero adapters (B starts at zero), so the dropped branch changes the logits
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    p.normal_(0, 0.5)
    elif source == "attention":  # the rate each attention module reads (copied from the config when built)
        for layer in model.model.language_model.layers:
            layer.self_attn.attention_dropout = 0.5
    else:  # the encoder's dropout on its input embeddings
        model.model.audio_tower.dropout = 0.5
    model.train()
    return model, processor


@pytest.mark.parametrize(
    "source, named",
    [("lora", "LoRA dropout 0.5"), ("attention", "Qwen2Attention.attention_dropout 0.5"),
     ("audio", "Qwen2AudioEncoder.dropout 0.5")],
)  # fmt: skip
def test_stands_aside_under_dropout_in_training_mode(source, named, capsys, monkeypatch):
    monkeypatch.setattr(group_prefill, "_told", set())  # a fresh process: nothing said yet
    model, processor = _with_dropout(source)
    assert named in active_dropout(model)
    inputs = _batch(processor, [0, 1, 0, 1, 1, 0])
    sampling = {"do_sample": True, "top_k": 50, "temperature": 1.0}
    ref_tokens, _, ref_prefill = _generate(model, inputs, False, **sampling)
    tokens, _, prefill = _generate(model, inputs, True, **sampling)
    # One shared prompt would draw one dropout mask where G copies draw G: the tokens would differ.
    assert torch.equal(tokens, ref_tokens)
    assert prefill == ref_prefill == [(6, inputs["input_ids"].shape[1])]  # the plain prefill ran
    _generate(model, inputs, True, **sampling)
    said = capsys.readouterr().out.splitlines()
    assert [line for line in said if "stands aside" in line] == [
        f"shared_prompt_prefill stands aside: dropout is active during sampling ({named}); "
        + ("set --set lora.dropout=0" if source == "lora" else "set the model's dropout rates to 0")
        + " to use it"
    ]  # once per process, not once per generation
    model.eval()  # no dropout: the switch applies again
    assert _generate(model, inputs, True, **sampling)[2] == [(2, inputs["input_ids"].shape[1] - 1)]


def test_shared_prefill_puts_back_a_generate_registered_on_the_instance():
    """FSDP2 registers its own generate on the model instance (to unshard weights for generation). Leaving the
    block must restore it, not delete it: GRPO-LoRA under FSDP2 crashed on its second generation otherwise."""
    from trainers.group_prefill import shared_prefill

    class Model:
        def generate(self, **kwargs):
            return "class method"

    registered = Model()
    registered.generate = lambda **kwargs: "registered on the instance"
    with shared_prefill(registered):
        assert registered.generate.__name__ == "generate"  # the shared-prefill wrapper while inside
    assert registered.generate() == "registered on the instance"
    plain = Model()
    with shared_prefill(plain):
        pass
    assert plain.generate() == "class method" and "generate" not in vars(plain)
