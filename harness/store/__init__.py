"""The DuckDB store and its read models: the only code with SQL."""

from harness.results import VariantResult
from harness.store.db import Store

__all__ = ["Store", "VariantResult"]
