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
# # A GPT in pure Python
#
# `gpt_micro` is a complete GPT written with nothing but the Python standard library: every
# number is a `Value` object that remembers how it was computed, so the gradients of the
# loss can be worked out by walking those records backwards. It is slow (a few hundred
# floating-point numbers per token, each a Python object) but nothing is hidden. This
# notebook builds it up: the autograd engine, the model on a list of names, the Adam
# optimizer, a short training run and sampling, and at the end a check that it computes
# exactly the gradients the torch model `gpt_core.GPT` computes.
#
# It runs in well under a minute; every cell can be run again.

# %% [markdown]
# ## 1. Autograd on one expression
#
# `Value` wraps a float. Each operation (`+`, `*`, `relu`, ...) returns a new `Value` that
# keeps its inputs and the local derivative with respect to each. `backward()` starts from
# the result with gradient 1 and hands gradients back along those links (the chain rule),
# adding up where a value was used more than once.
#
# For c = relu(a * b + a) with a = 2, b = 3: dc/da = b + 1 = 4 and dc/db = a = 2.

# %%
from gpt_micro import Value

a, b = Value(2.0), Value(3.0)
c = (a * b + a).relu()
c.backward()
print(c, a, b, sep="\n")
assert (a.grad, b.grad) == (4.0, 2.0)

# %% [markdown]
# The same derivative by brute force: nudge a by a tiny h and see how much c moves. The two
# agree, which is all backpropagation promises; it just gets every derivative at once for
# the price of one backward pass.

# %%
h = 1e-6
nudged = (Value(2.0 + h) * b + Value(2.0 + h)).relu()
print(f"finite difference {(nudged.data - c.data) / h:.6f}, backward {a.grad}")

# %% [markdown]
# ## 2. The data: names, as characters
#
# gpt_micro ships a list of 1,143 given names. Each character gets an id, plus one special
# token, BOS, which marks both where a name starts and where it ends: the model learns to
# begin after BOS and to produce BOS when the name is finished.

# %%
from gpt_micro import CharVocab, load_names
from gpt_micro.train import make_example

names = load_names()
vocab = CharVocab.from_names(names)
print(f"{len(names)} names, e.g. {names[:5]}; vocabulary of {vocab.size} (a-z and BOS)")
tokens = vocab.encode("emma")
inputs, targets = make_example(tokens, block_size=16)
print("emma ->", tokens, "\ninputs ", inputs, "\ntargets", targets)

# %% [markdown]
# ## 3. The tiny transformer
#
# `MicroGPT` has the same parts as the torch model: token and position embeddings, blocks of
# RMSNorm, causal multi-head attention and a ReLU MLP, each added to the running residual,
# and a final norm and output layer. It reads one token at a time and keeps the keys and
# values of earlier tokens in a cache, so attention can only ever look back.
#
# Untrained, the loss on a name is about ln(vocab size): no letter is preferred yet.

# %%
import math

from gpt_micro import MicroConfig, MicroGPT

micro = MicroGPT(MicroConfig(vocab_size=vocab.size, block_size=16, n_embd=16, n_head=4))
for name, matrix in list(micro.params.items())[:6]:
    print(f"{name:10s} {len(matrix)} x {len(matrix[0])}")
print(f"... {micro.num_parameters():,} parameters, each one Value")
loss = micro.loss([inputs], [targets])
print(f"loss on 'emma' {loss.data:.3f}, ln {vocab.size} = {math.log(vocab.size):.3f}")

# %% [markdown]
# ## 4. Adam
#
# Plain gradient descent moves each weight by `lr * grad`. Adam keeps two running averages
# per weight, of the gradient and of its square, and moves by their ratio: a step of about
# `lr` in the direction the gradient has kept pointing, whatever the gradient's scale. Here
# it finds the minimum of (w - 3)^2 from w = 0:

# %%
from gpt_micro import Adam

w = Value(0.0)
opt = Adam([w], lr=0.3)
for _ in range(100):
    opt.zero_grad()
    ((w - 3) ** 2).backward()
    opt.step()
print(f"w = {w.data:.3f} after 100 steps (the minimum is at 3)")
assert abs(w.data - 3) < 0.1

# %% [markdown]
# ## 5. Training
#
# One step is the same on the model: the loss on a few random names, `zero_grad`,
# `backward` (now through thousands of Values), and an Adam step. `gpt_micro.train` runs
# that loop (its source is short: `gpt_micro/train.py`) and returns each step's loss.
# Running the training cell again trains for another `STEPS` steps (with a fresh
# optimizer), continuing from the current weights.

# %%
from statistics import mean

from gpt_micro import train as micro_train

losses: list[float] = []
STEPS = 60

# %% tags=["train"]
losses += micro_train(micro, vocab, names, steps=STEPS, batch_size=2, lr=2e-2, seed=len(losses))
early, late = mean(losses[:10]), mean(losses[-10:])
print(f"{len(losses)} steps: mean loss {early:.3f} over the first 10, {late:.3f} over the last 10")

# %% [markdown]
# ## 6. Sampling
#
# Start from BOS, turn the logits into probabilities (divided by a temperature first: lower
# is safer), draw a letter, feed it back, and stop when BOS comes out. After a few dozen
# steps the names are short and odd, but they already have vowels in plausible places.

# %% tags=["sample"]
from gpt_micro import sample

for name in sample(micro, vocab, num_samples=10, temperature=0.7, seed=len(losses)):
    print(name)

# %% [markdown]
# ## 7. Checking against torch
#
# The claim is that this is the same model as `gpt_core.GPT` configured with RMSNorm, a ReLU
# MLP, no biases and learned positions. To test it, build that torch model in float64 (as
# precise as Python floats; `gpt_micro.interop.gpt_core_settings` gives its settings), copy
# its weights into a fresh MicroGPT (`load_gpt_core_weights` knows where each weight lives:
# torch keeps q, k and v in one stacked matrix), run both on the same three names, and
# compare the loss and every single gradient.

# %% tags=["gradcheck"]
import torch
from gpt_core import GPT, GPTConfig
from gpt_micro.interop import (
    gpt_core_key,
    gpt_core_part,
    gpt_core_settings,
    load_gpt_core_weights,
)

cfg = micro.config
torch.manual_seed(0)
ref = GPT(GPTConfig(**gpt_core_settings(cfg))).double()  # RMSNorm, ReLU MLP, no biases
twin = MicroGPT(cfg)
load_gpt_core_weights(twin, {k: t.tolist() for k, t in ref.state_dict().items()})

pairs = [make_example(vocab.encode(n), cfg.block_size) for n in ("emma", "olivia", "ava")]
T = max(len(x) for x, _ in pairs)
xs = [x + [0] * (T - len(x)) for x, _ in pairs]  # pad to one length; -1 targets are ignored
ys = [y + [-1] * (T - len(y)) for _, y in pairs]

micro_loss = twin.loss(xs, ys)
micro_loss.backward()
_, torch_loss = ref(torch.tensor(xs), torch.tensor(ys))
assert torch_loss is not None
torch_loss.backward()

torch_grads = {k: p.grad.tolist() for k, p in ref.named_parameters() if p.grad is not None}
max_grad_diff = 0.0
for name, matrix in twin.params.items():
    expected = gpt_core_part(name, torch_grads[gpt_core_key(name)], cfg.n_embd)
    for row, want in zip(matrix, expected, strict=True):
        for value, g in zip(row, want, strict=True):
            max_grad_diff = max(max_grad_diff, abs(value.grad - g))
print(f"loss: pure Python {micro_loss.data:.12f}, torch {torch_loss.item():.12f}")
print(f"max |gradient difference| over {twin.num_parameters():,} parameters: {max_grad_diff:.2e}")
assert max_grad_diff < 1e-9
