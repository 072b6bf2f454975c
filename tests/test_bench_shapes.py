"""bench/shapes.py through the family seam: every family's tiny shape runs the benchmarks end to end, and every
full-size shape builds (on the ``meta`` device: no memory) with the parameter count of its released checkpoint, so a
wrong number in ``full_shapes`` fails here."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from bench.shapes import is_tiny, resolve_shape, shape_names
from models.registry import FAMILIES

TINY_SHAPES = [f.tiny_name for f in FAMILIES.values()]

# Expected parameter counts in billions, independent of the numbers in models/ (the Omni thinkers' vision towers are
# one-block stand-ins, so the Omni counts are without them): Qwen2-Audio-7B ~8.4B; Qwen2.5-Omni-7B's thinker ~8.9B
# with its 0.67B vision tower; the 3B's: a 3.1B language model, 0.64B audio encoder and a 0.31B output head;
# Qwen3-Omni-30B-A3B's: the 30.5B language model of Qwen3-30B-A3B and a 0.65B audio encoder.
EXPECTED_BILLIONS = {
    "qwen2-audio-7b": (8.3, 8.5),
    "qwen2.5-omni-7b": (8.0, 8.5),
    "qwen2.5-omni-3b": (3.6, 4.1),
    "qwen3-omni-30b-a3b": (30.9, 31.4),
}


def test_every_family_shape_is_named():
    names = set(shape_names())
    assert set(TINY_SHAPES) | set(EXPECTED_BILLIONS) | {"7b"} == names
    assert resolve_shape("7b") == resolve_shape("qwen2-audio-7b") and not is_tiny("7b")
    assert all(is_tiny(s) for s in TINY_SHAPES)
    with pytest.raises(ValueError, match="valid: tiny"):
        resolve_shape("13b")


@pytest.mark.parametrize("shape", list(EXPECTED_BILLIONS))
def test_full_size_shape_builds_with_the_real_parameter_count(shape):
    import torch

    family, size = resolve_shape(shape)
    with torch.device("meta"):
        model, processor = family.build_random(size)
    params = list(model.parameters())
    assert all(p.device.type == "meta" and p.dtype == torch.bfloat16 for p in params)
    low, high = EXPECTED_BILLIONS[shape]
    assert low <= sum(p.numel() for p in params) / 1e9 <= high
    assert type(model).__name__ == family.model_class_name
    assert processor.feature_extractor.chunk_length == 30  # the real audio window, not the tiny twin's 2 s
    # the special tokens the suite uses are inside the real vocabulary
    tok = processor.tokenizer
    vocab = model.get_input_embeddings().num_embeddings
    assert len(tok) <= vocab and max(tok.get_vocab().values()) < vocab
    assert family.audio_encoder(model) is not None and family.language_model(model) is not None


def test_an_unknown_full_size_shape_is_refused():
    with pytest.raises(KeyError, match="valid: 7b, 3b"):
        FAMILIES["qwen2.5-omni"].build_random("14b", device="meta")


@pytest.mark.parametrize("shape", TINY_SHAPES)
def test_eval_throughput_runs_on_every_family(tmp_path, shape):
    from bench.eval_throughput import DEFAULT, main

    main(["--shape", shape, "--n-items", "4", "--batch-size", "2", "--max-new-tokens", "2", "--repeats", "1",
          "--out", str(tmp_path / "e.json")])  # fmt: skip
    result = json.loads((tmp_path / "e.json").read_text())
    family, _ = resolve_shape(shape)
    assert result["model"] == f"random-{shape}" and result["family"] == family.name and result["n_items"] == 4
    c = result["configurations"][DEFAULT]
    for key in ("bare_items_per_second", "evaluator_cold_items_per_second", "evaluator_warm_items_per_second"):
        assert c[key] > 0
    assert isinstance(c["overhead_pct"], float) and isinstance(c["standing_aside_for_family"], list)
    # a switch that is not exact for the family says so in the result
    assert ("valid_frame_encoder" in c["standing_aside_for_family"]) == (
        "valid_frame_encoder" in family.inexact_switches
    )


@pytest.mark.parametrize("shape", TINY_SHAPES)
def test_grpo_step_runs_on_every_family(tmp_path, shape):
    from bench.grpo_step import main

    main(["--shape", shape, "--steps", "2", "--generations", "2", "--completion-tokens", "2", "--lora",
          "--out", str(tmp_path / "g.json")])  # fmt: skip
    result = json.loads((tmp_path / "g.json").read_text())
    assert result["shape"] == shape and result["family"] == resolve_shape(shape)[0].name
    phases = result["mean_after_first_step"]
    assert {"generation", "policy_forward", "backward", "optimizer", "total"} <= set(phases)
    assert len(result["steps"]) == 2 and phases["total"] > 0
    assert 0 < result["audio_encoder_within_phases"] < phases["total"]
    assert "peak_gpu_memory_gb" in result


def test_full_fine_tuning_of_a_full_size_shape_is_refused_before_building_it():
    from bench.grpo_step import main

    with pytest.raises(SystemExit, match="use --lora"):
        main(["--shape", "qwen3-omni-30b-a3b"])


def test_bench_names_no_family_class():
    root = Path(__file__).resolve().parents[1]
    found = subprocess.run(["grep", "-rnE", "Qwen2Audio|Qwen2_5Omni|Qwen3Omni", str(root / "bench")],
                           capture_output=True, text=True)  # fmt: skip
    assert found.stdout == ""
