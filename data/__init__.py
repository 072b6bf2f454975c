"""The shared data and evaluation layer: items, audio, AVQA/MMAU loaders, prompts, scoring, evaluator, toy world.

Nothing in this package imports ``trainers``, ``experiments`` or ``analysis``: the arrows point one way.
"""
