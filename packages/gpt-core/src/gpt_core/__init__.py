"""gpt_core."""
