"""Data: chat JSONL rules, splits and fingerprints; suites as versioned data."""
