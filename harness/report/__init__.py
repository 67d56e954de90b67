"""The HTML comparison report, built from the store alone."""
