"""Attention maps as one image: a grid of layers (rows) by heads (columns), tokens on the axes.

Row i of a map is where query token i looks: each row sums to one and, with a causal mask,
only the lower triangle is lit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gpt_eval.errors import EvalError

if TYPE_CHECKING:
    from gpt_core import GPT
    from gpt_train.runs import LoadedRun

MAX_LABELS = 48  # beyond this many tokens the axes show every n-th label only


def token_labels(ids: Sequence[int], decode: Callable[[Sequence[int]], str]) -> list[str]:
    """Each token's text made visible on an axis: spaces as '·', newlines as '\\n'."""
    labels = []
    for i in ids:
        text = decode([int(i)])
        text = text.replace(" ", "·").replace("\n", "\\n").replace("\t", "\\t")
        labels.append(text if text else "∅")
    return labels


def plot_attention(
    maps: Sequence[Any], labels: Sequence[str], path: str | Path, title: str = ""
) -> Path:
    """Save maps (one (n_heads, T, T) array per layer) as a layers x heads grid of heatmaps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arrays = [np.asarray(m, dtype=np.float32) for m in maps]
    if not arrays:
        raise EvalError("the model recorded no attention maps")
    n_layers, (n_heads, T, _) = len(arrays), arrays[0].shape
    if len(labels) != T:
        raise EvalError(f"{len(labels)} token labels for attention maps over {T} tokens")
    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg", ".pdf", ".jpg", ".jpeg"):
        raise EvalError(f"attention image {path} must end in .png, .svg, .pdf or .jpg")
    path.parent.mkdir(parents=True, exist_ok=True)

    cell = max(2.2, min(0.22 * T, 6.0))  # inches per map: room for the token labels
    fig, axes = plt.subplots(
        n_layers,
        n_heads,
        figsize=(cell * n_heads + 1.2, cell * n_layers + 0.8),
        squeeze=False,
        layout="constrained",  # leaves room for the labels and the shared colour bar
    )
    every = max(1, -(-T // MAX_LABELS))
    ticks = list(range(0, T, every))
    fontsize = 7 if T <= 24 else 5
    image = None
    for layer, arr in enumerate(arrays):
        for head in range(n_heads):
            ax = axes[layer][head]
            image = ax.imshow(arr[head], cmap="viridis", vmin=0.0, vmax=1.0, aspect="equal")
            ax.set_xticks(ticks, [labels[t] for t in ticks], rotation=90, fontsize=fontsize)
            ax.set_yticks(ticks, [labels[t] for t in ticks], fontsize=fontsize)
            if layer == 0:
                ax.set_title(f"head {head}", fontsize=9)
            if head == 0:
                ax.set_ylabel(f"layer {layer}\nquery", fontsize=9)
            if layer == n_layers - 1:
                ax.set_xlabel("key", fontsize=9)
    fig.suptitle(title or f"attention of {T} prompt tokens (rows: query, columns: key)")
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6, label="attention weight")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def prompt_attention(model: GPT, ids: Sequence[int]) -> tuple[list[int], list[Any]]:
    """Run the last max_seq_len tokens of `ids` once under the tracer: those tokens and
    their attention maps, one (n_heads, T, T) float32 array per layer.

    The tracer hooks the model while it runs, so the caller must not use the same model
    from another thread meanwhile (the playground traces a copy of its own)."""
    import torch
    from gpt_core.tracing import trace

    window = [int(i) for i in list(ids)[-model.config.max_seq_len :]]
    if not window:
        raise EvalError("attention needs at least one token")
    device = next(model.parameters()).device
    x = torch.tensor([window], dtype=torch.long, device=device)
    with torch.inference_mode(), trace(model) as t:
        model(x)
    return window, [a[0].float().cpu().numpy() for a in t.attention]


def save_prompt_attention(run: LoadedRun, ids: Sequence[int], path: str | Path) -> Path:
    """Run the prompt (its last max_seq_len tokens) once under the tracer and save its
    attention maps as one image; returns the image's path."""
    window, maps = prompt_attention(run.model, ids)
    labels = token_labels(window, run.tokenizer.decode)
    return plot_attention(
        maps,
        labels,
        path,
        title=f"attention: {Path(run.checkpoint_path).parent.parent.name}, step {run.step}",
    )
