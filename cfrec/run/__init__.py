"""Run machinery: what `train.py` does with one composed config (fit, checkpoints and resume, early stopping,
loggers, progress, the run's result and provenance)."""
