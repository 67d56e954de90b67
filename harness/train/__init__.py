"""Training backends: local (transformers + peft) and OpenAI (submit and follow jobs)."""
