"""A GPT in pure Python: scalar autograd, a tiny transformer, Adam. Read it top to bottom:

engine.py (Value: autograd on one number) -> model.py (MicroGPT) -> optim.py (Adam)
-> train.py (names -> tokens, training loop, sampling).
"""

from gpt_micro.engine import Value
from gpt_micro.model import MicroConfig, MicroGPT
from gpt_micro.optim import Adam
from gpt_micro.train import CharVocab, MicroError, load_names, sample, train

__all__ = [
    "Adam",
    "CharVocab",
    "MicroConfig",
    "MicroError",
    "MicroGPT",
    "Value",
    "load_names",
    "sample",
    "train",
]
