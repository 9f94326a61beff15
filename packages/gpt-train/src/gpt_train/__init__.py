"""gpt_train."""
