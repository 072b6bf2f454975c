"""Evaluations that control what a run's score measured: the silent-audio control of each Table 2 row
(:mod:`controls.silent`). They load models; :mod:`analysis` only reads what they write."""
