"""gpt_eval: evaluation, loss plots, hyper-parameter sweeps and benchmarks for gptkit.

Modules: `plots` (curves from metrics.csv), `sweep` (grid / random / TPE search over a train
config), `evaluate` (loss, perplexity, bits per byte), `sampling` (streaming decode helpers),
`attention_plot` (attention maps) and the `bench_*` benchmarks used by `uv run bench`.
"""

from gpt_eval.errors import EvalError

__all__ = ["EvalError"]
