"""The DuckDB store and its read models: the only code with SQL."""

from harness.store.db import Store, VariantResult

__all__ = ["Store", "VariantResult"]
