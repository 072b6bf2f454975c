"""What the runs mean: one reader of W&B runs (``analysis.runs``), then pure functions from its tables to reports."""
