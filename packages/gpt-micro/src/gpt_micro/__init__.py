"""A GPT in pure Python."""
