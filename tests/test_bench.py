"""The benchmark scripts run end to end on the tiny shape and write results that name the machine (no timing
assertions: speed is measured in bench/, never asserted in tests)."""

from __future__ import annotations

import json


def test_eval_throughput_writes_every_switch_configuration(tmp_path):
    from bench.eval_throughput import SWITCHES, main

    main(["--shape", "tiny", "--n-items", "8", "--batch-size", "4", "--max-new-tokens", "4", "--repeats", "1",
          "--switches", "--out", str(tmp_path / "e.json")])  # fmt: skip
    result = json.loads((tmp_path / "e.json").read_text())
    assert set(result["configurations"]) == set(SWITCHES) and result["machine"]["cpu_count"] >= 1
    assert all(c["bare_items_per_second"] > 0 for c in result["configurations"].values())


def test_grpo_step_breaks_the_step_into_phases(tmp_path):
    from bench.grpo_step import main

    main(
        ["--steps", "2", "--generations", "4", "--completion-tokens", "4", "--lora", "--out", str(tmp_path / "g.json")]
    )
    result = json.loads((tmp_path / "g.json").read_text())
    phases = result["mean_after_first_step"]
    assert {"generation", "policy_forward", "backward", "optimizer", "total"} <= set(phases)
    assert len(result["steps"]) == 2 and "machine" in result
    assert result["distinct_clip_encoder"] and 0 < result["audio_encoder_within_phases"] < phases["total"]


def test_grpo_switches_compares_configurations_in_one_result(tmp_path):
    from bench.grpo_switches import main

    main(["--steps", "2", "--repeats", "1", "--only", "all_on", "all_off", "--out", str(tmp_path / "s.json")])
    result = json.loads((tmp_path / "s.json").read_text())
    assert set(result["configurations"]) == {"all_on", "all_off"} and "machine" in result
    assert all(c["median_seconds"]["total"] > 0 for c in result["configurations"].values())
    assert result["configurations"]["all_off"]["flags"] == ["--no-shared-prefill", "--no-shared-scoring",
                                                            "--no-distinct-clips"]  # fmt: skip
