"""The experiment spec: its schema, the plan (variants and ids), findings and gate settings."""
