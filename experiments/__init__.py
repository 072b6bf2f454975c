"""Named experiments on profiles: ``python -m experiments list | run NAME | eval --model ...``."""
