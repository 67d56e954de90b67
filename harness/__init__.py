"""finetune-harness: train, score, store, report and gate fine-tuning sweeps."""

__version__ = "0.2.0"
