"""gpt_tokenizers."""
