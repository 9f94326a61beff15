# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # From raw text to samples
#
# This notebook takes a plain text file to a small GPT that writes in its style, using the
# same library the `train` and `sample` commands run on: `gpt_tokenizers` turns text into ids,
# `gpt_train.loader` cuts the ids into training windows, `gpt_core` holds the model and the
# sampler, and `gpt_eval` draws the attention maps. The training loop itself is written out
# below, a handful of lines, so every step of it can be inspected.
#
# The whole notebook runs in well under a minute on a laptop CPU. Every cell can be run again:
# the training cell continues training, the sampling cell draws again.

# %%
import math
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Image, display

torch.manual_seed(0)
# The text ships with gptkit, in corpora/ at the root of the repository. Jupyter starts the
# kernel in this notebook's folder; look upwards so it is found from the root too.
ROOT = next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "corpora").is_dir())
text = (ROOT / "corpora" / "tinyshakespeare.txt").read_text(encoding="utf-8")
print(f"{len(text):,} characters of Shakespeare; the first lines:\n")
print(text[:200])

# %% [markdown]
# ## 1. Tokens
#
# The model reads integers, not letters. A *tokenizer* fixes the mapping. The simplest one
# gives every distinct character its own id: `CharTokenizer.from_text` collects the
# characters that occur in the text and numbers them in sorted order.

# %%
from gpt_tokenizers import BPETokenizer, CharTokenizer, format_pieces, token_pieces

tok = CharTokenizer.from_text(text)
V = tok.vocab_size
ids = tok.encode("ROMEO:")
print(f"{V} distinct characters; 'ROMEO:' -> {ids} -> {tok.decode(ids)!r}")
assert tok.decode(ids) == "ROMEO:"

# %% [markdown]
# Real models mostly use byte-pair encoding (BPE) instead: it starts from the 256 byte values
# and keeps merging the most frequent neighbouring pair into a new token, so frequent
# fragments ("the", "ing", " and") become one token each. The same sentence needs fewer
# tokens, at the price of a bigger vocabulary. Here a small one is learned from 50,000
# characters; the brackets show where it cuts and which id each piece got.

# %%
bpe = BPETokenizer.train(text[:50_000], vocab_size=400)
line = "First Citizen: we are accounted poor citizens."
bpe_ids = bpe.encode(line)
print(format_pieces(token_pieces(bpe, bpe_ids), color=False, show_ids=True))
print(f"{len(tok.encode(line))} characters -> {len(bpe_ids)} BPE tokens")

# %% [markdown]
# We stay with characters: 65 symbols keep the model tiny. The whole text becomes one long
# array of ids; the first 90% is for training, the rest is held out to measure the model
# on text it never trained on.

# %%
data = np.array(tok.encode(text), dtype=np.int64)
split = int(0.9 * len(data))
train_ids, val_ids = data[:split], data[split:]
print(f"train {len(train_ids):,} tokens, validation {len(val_ids):,} tokens")

# %% [markdown]
# ## 2. Batches
#
# A training example is a window of T consecutive ids, `x`, and the same window moved one
# position to the right, `y`: at every position the target is simply the next character.
# `BatchSampler` (from `gpt_train/loader.py`, what the real trainer uses) draws B such
# windows at random places, reproducibly for a given seed.

# %%
from gpt_train.loader import BatchSampler

T, B = 64, 16
train_batches = BatchSampler(train_ids, seq_len=T, batch_size=B, seed=0)
val_batches = BatchSampler(val_ids, seq_len=T, batch_size=B, seed=0, split="val")
((x, y),) = train_batches.next()  # one optimizer step = one micro-batch here
print("x", tuple(x.shape), "y", tuple(y.shape))
print("x[0]:", repr(tok.decode(x[0, :30].tolist())))
print("y[0]:", repr(tok.decode(y[0, :30].tolist())))
assert torch.equal(x[:, 1:], y[:, :-1])  # y is x shifted by one

# %% [markdown]
# ## 3. The model
#
# `GPTConfig` says how big the model is: the vocabulary, the longest context it can read
# (`max_seq_len`), the width of each token's vector (`d_model`), how many blocks are stacked
# and how many attention heads each block has. Given inputs and targets, the model returns
# scores for every next token (the logits, shape (B, T, V)) and the cross-entropy loss.
#
# Before training, the model has no preference, so its loss should be close to that of
# guessing uniformly among V tokens: ln V.

# %%
from gpt_core import GPT, GPTConfig

config = GPTConfig(vocab_size=V, max_seq_len=T, d_model=64, n_layers=2, n_heads=4)
model = GPT(config)
logits, loss = model(x, y)
print(f"{model.num_parameters():,} parameters; logits {tuple(logits.shape)}")
print(f"loss before training {loss.item():.3f}, ln V = {math.log(V):.3f}")

# %% [markdown]
# ## 4. Training, written out
#
# One step: take a batch, run the model forward to get the loss, run it backward so every
# weight gets its gradient (how the loss changes when that weight moves), and let the
# optimizer move the weights a little. AdamW scales each step by running averages of the
# gradients, which makes one learning rate work for all the weights; the clip keeps one
# unlucky batch from throwing them far.
#
# `losses` keeps every step's loss for the curve below. Running the training cell again
# trains for another `STEPS` steps, continuing where it stopped (set `STEPS` to train
# longer; running this cell again starts the record and the optimizer afresh, but not the
# model: rerun the model cell above for that).

# %%
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)
losses: list[float] = []
STEPS = 150


# %%
@torch.no_grad()
def val_loss(batches: int = 4) -> float:
    """The mean loss on a fixed set of held-out batches (no gradients, no dropout)."""
    model.eval()
    total = sum(float(model(xb, yb)[1]) for xb, yb in val_batches.eval_batches(batches))
    model.train()
    return total / batches


# %% tags=["train"]
model.train()
for _ in range(STEPS):
    ((xb, yb),) = train_batches.next()
    _, loss = model(xb, yb)  # forward: the mean cross-entropy over B x T positions
    optimizer.zero_grad(set_to_none=True)
    loss.backward()  # backward: fills p.grad for every parameter p
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()  # update: move every weight against its gradient
    losses.append(loss.item())
print(f"step {len(losses)}: train loss {np.mean(losses[-20:]):.3f}, val loss {val_loss():.3f}")

# %% [markdown]
# ## 5. The loss curve
#
# The loss starts near ln V and drops fast while the model learns which characters are
# common, then more slowly as it picks up spelling and the shape of the play (names in
# capitals, a colon, a new line).

# %%
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(losses, alpha=0.4, label="each step")
window = 10
smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
ax.plot(range(window - 1, len(losses)), smooth, label=f"mean of {window}")
ax.axhline(math.log(V), color="grey", linestyle=":", label="ln V (uniform guess)")
ax.set_xlabel("step")
ax.set_ylabel("train loss")
ax.legend()
display(fig)
plt.close(fig)
first, last = np.mean(losses[:10]), np.mean(losses[-10:])
print(f"mean loss of the first 10 steps {first:.3f}, of the last 10 {last:.3f}")

# %% [markdown]
# ## 6. Sampling
#
# To write, the model is fed a prompt, its scores for the next token become probabilities,
# one token is drawn, appended, and the loop goes on. Two settings shape the draw:
#
# - **temperature** divides the scores first: below 1 the likely tokens get likelier (safer
#   text), above 1 the choice gets more adventurous; 0 always takes the single best token;
# - **top-k** only keeps the k most likely tokens in the draw.
#
# `generate` runs the loop with the settings of one `SamplingConfig`; a seed makes the draw
# repeatable. After 150 steps the spelling is rough, but the layout of a play shows. The
# greedy draw (temperature 0) soon falls into a loop, repeating its single likeliest
# continuation; a little randomness reads more like the training text.

# %% tags=["sample"]
from gpt_core import SamplingConfig, generate

prompt = torch.tensor([tok.encode("ROMEO:")])  # (1, 6)
model.eval()
for temperature in (0.0, 0.8, 1.2):
    sampling = SamplingConfig(max_new_tokens=120, temperature=temperature, top_k=20, seed=0)
    out = generate(model, prompt, sampling)  # (1, 6 + 120)
    print(f"--- temperature {temperature}, top-k 20 ---")
    print(tok.decode(out[0].tolist()))

# %% [markdown]
# ## 7. What attention looks at
#
# Each head of each block computes, for every position, a set of weights over the positions
# before it (and itself) that sum to one: how much of each earlier token it reads. The
# picture shows them for one line of text, one square per layer and head; row i is what
# token i looks at, and everything above the diagonal is dark because a token may not look
# ahead. `prompt_attention` runs the model once with the tracer on and returns the maps;
# `plot_attention` is the same picture `uv run sample --attention` saves.

# %%
from gpt_eval.attention_plot import plot_attention, prompt_attention, token_labels

window_ids, maps = prompt_attention(model, tok.encode("ROMEO:\nWhat light is this?"))
image = Path(tempfile.mkdtemp(prefix="gptkit-notebook-")) / "attention.png"
plot_attention(maps, token_labels(window_ids, tok.decode), image)
display(Image(filename=str(image)))
rows = maps[0].sum(axis=-1)  # layer 0: (heads, T), each row's total weight
print(f"every row sums to 1: {np.allclose(rows, 1.0, atol=1e-5)}")

# %% [markdown]
# ## 8. Inside one forward pass
#
# `gpt_core.tracing.trace` records every module the model runs, in order: the shapes going
# in and out and a few statistics of the output. Reading down the table follows a batch
# from the token ids (B, T) through the embeddings (B, T, d_model), each block's norm,
# attention and MLP, to the logits (B, T, V). The hooks exist only inside the `with` block,
# so the model is untouched afterwards.

# %%
from gpt_core.tracing import trace

with torch.no_grad(), trace(model) as t:
    model(x[:2])  # two of the windows from above
print(t.format())
