"""gpt_core: a GPT language model that is easy to read, exactly right and fast.

from gpt_core import GPT, GPTConfig, SamplingConfig, generate
model = GPT(GPTConfig(vocab_size=4096, max_seq_len=256, d_model=256, n_layers=4, n_heads=8))
logits, loss = model(idx, targets)
out = generate(model, idx, SamplingConfig(max_new_tokens=100, temperature=0.8, top_k=50))
"""

from gpt_core.config import ConfigError, GPTConfig
from gpt_core.generation import GenerationStep, SamplingConfig, generate, stream
from gpt_core.kv_cache import KVCache
from gpt_core.model import GPT

__all__ = [
    "GPT",
    "ConfigError",
    "GPTConfig",
    "GenerationStep",
    "KVCache",
    "SamplingConfig",
    "generate",
    "stream",
]
