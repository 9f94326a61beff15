"""gpt_train: data preparation, typed configs, the training loop, checkpoints and DDP.

The heavy modules (torch) are imported lazily by their users; importing the package itself
only defines the error type, so `from gpt_train import TrainError` stays cheap.
"""

from gpt_train.errors import TrainError

__all__ = ["TrainError"]
