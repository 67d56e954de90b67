"""Data: sources and formats read as chat examples, their rules, splits and fingerprints; suites as versioned data."""
