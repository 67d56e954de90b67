"""Sweeps that search: sampled spaces (Optuna), early elimination at rung boundaries, selection on validation."""
