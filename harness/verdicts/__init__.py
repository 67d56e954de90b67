"""Verdicts: findings rules, the one paired comparison, the one recommendation policy."""
