"""The release gate: baselines, rules, evaluation, console output, JUnit."""
