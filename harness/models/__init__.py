"""Models: resolving names, loading weights, the scoring-model protocol, the local scoring model."""
