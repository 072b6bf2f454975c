"""Model families behind one seam: loading, featurising, the audio-encoder switches, the tiny twins, the evaluator.

- ``family.py``: the interface (:class:`~models.family.ModelFamily`) and the speed switches;
- ``qwen2_audio.py``, ``qwen2_5_omni.py``, ``qwen3_omni.py`` (with ``omni.py``): one module per family;
- ``registry.py``: which family a checkpoint, model or processor belongs to;
- ``loading.py``: strict loading of any family; ``tiny.py``: the tiny offline twins by name;
- ``features.py``: prompts and waveforms into model inputs; ``audio_encoder.py``: Qwen2-Audio's encoder switches;
- ``evaluate.py``: the batched evaluator of a loaded model on a list of items.

Only this package names a family's classes. ``docs/models.md`` says how to add a family.
"""
