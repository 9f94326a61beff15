"""gpt_eval."""
