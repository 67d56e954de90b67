"""Experiment trackers: a stored run sent to MLflow or Weights & Biases, read from the store alone (docs/tracking.md)."""
