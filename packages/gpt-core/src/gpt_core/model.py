"""The GPT language model: embeddings, a stack of blocks, a final norm and the output head."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gpt_core.block import Block
from gpt_core.config import ConfigError, GPTConfig
from gpt_core.kv_cache import KVCache
from gpt_core.linear import LinearFn, apply_linear
from gpt_core.loss import linear_cross_entropy
from gpt_core.norm import make_norm
from gpt_core.rope import rope_cache


class GPT(nn.Module):
    """A decoder-only transformer; `logits, loss = model(idx, targets)`."""

    rope_cos: torch.Tensor  # (max_seq_len, head_dim) buffers, present with pos_encoding="rope"
    rope_sin: torch.Tensor

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        V, d = config.padded_vocab_size, config.d_model
        self.tok_emb = nn.Embedding(V, d)
        self.pos_emb = (
            nn.Embedding(config.max_seq_len, d) if config.pos_encoding == "learned" else None
        )
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config, i) for i in range(config.n_layers))
        self.norm_f = make_norm(config)
        self.lm_head = nn.Linear(d, V, bias=False)
        if config.tie_weights:
            # One matrix both embeds tokens and scores them: fewer parameters, and in practice
            # a better model at small scale (Press & Wolf 2017).
            self.lm_head.weight = self.tok_emb.weight
        if config.pos_encoding == "rope":
            cos, sin = rope_cache(config.max_seq_len, config.head_dim, config.rope_theta)
            # Derived from the config, so not saved in the state_dict.
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """GPT-2 initialisation: N(0, 0.02) weights, zero biases, unit norms, and the
        projections that write into the residual stream scaled by 1/sqrt(2 * n_layers), so
        the stream's variance does not grow with depth (two such writes per block)."""
        residual_std = 0.02 / math.sqrt(2 * self.config.n_layers)
        for name, p in self.named_parameters():
            if name.endswith(".proj.weight"):  # attn.proj and mlp.proj
                nn.init.normal_(p, mean=0.0, std=residual_std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
            elif "norm" in name:
                nn.init.ones_(p)
            else:  # embeddings, qkv, fc/gate/up, lm_head
                nn.init.normal_(p, mean=0.0, std=0.02)

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        cache: KVCache | None = None,
        last_only: bool = False,
        linear: LinearFn = apply_linear,
        return_logits: bool = True,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """idx (B, T) token ids -> logits (B, T, vocab_size) and the mean cross-entropy
        against targets (B, T) when given (target -1 is ignored, e.g. for padding).

        return_logits=False returns (None, loss): the training step's and evaluation's form.
        In fp32 it never builds the whole logits matrix (gpt_core.loss), which gives the same
        loss and gradients in less memory and time.

        With a cache, idx holds only the new tokens and their positions continue after the
        cached ones. last_only computes logits for the last position only (generation).
        linear applies every projection (gpt_core.linear); gpt_core.decode passes a faster
        CPU form for one-token steps, so decoding runs this very code.
        """
        if idx.dim() != 2:
            raise ConfigError(f"idx must be (batch, time), got shape {tuple(idx.shape)}")
        T = idx.shape[1]
        start = 0 if cache is None else cache.pos
        if start + T > self.config.max_seq_len:
            raise ConfigError(
                f"sequence of {start + T} tokens is longer than max_seq_len "
                f"{self.config.max_seq_len}; crop it to the last {self.config.max_seq_len}"
            )
        x, rope = self.embed(idx, start)
        x = self.drop(x)
        for block in self.blocks:
            x = block(x, rope=rope, cache=cache, linear=linear)
        if cache is not None:
            cache.advance(T)
        if targets is not None and not return_logits and self._chunked_loss_applies(x):
            h = self.norm_f(x).reshape(-1, x.shape[-1])  # (B*T, d)
            weight = self.lm_head.weight[: self.config.vocab_size]  # padded ids never score
            return None, linear_cross_entropy(h, weight, targets.reshape(-1), ignore_index=-1)
        if last_only:
            x = x[:, -1:, :]  # (B, 1, d): skip the output head for the other positions
        logits = self.head(x, linear)
        loss = None
        if targets is not None:
            # at least fp32: a bf16 or fp16 log-softmax over the vocabulary loses the loss
            scores = logits.to(torch.promote_types(logits.dtype, torch.float32))
            loss = F.cross_entropy(
                scores.reshape(-1, scores.shape[-1]), targets.reshape(-1), ignore_index=-1
            )
        return (logits if return_logits else None), loss

    def _chunked_loss_applies(self, x: torch.Tensor) -> bool:
        """Whether the chunked loss may stand in for head + F.cross_entropy: fp32 or fp64
        without autocast, whose casts it does not copy. (It reads lm_head's weight, so hooks
        on lm_head do not see it: gpt_train.explain describes the head itself.)"""
        dtype_ok = x.dtype in (torch.float32, torch.float64)
        return dtype_ok and not torch.is_autocast_enabled(x.device.type)

    def embed(
        self, idx: torch.Tensor, start: int = 0
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        """Token (and learned position) embeddings of idx (B, T) at positions start.., and
        the rotary cos/sin rows (T, head_dim) of those positions, or None."""
        T = idx.shape[1]
        x: torch.Tensor = self.tok_emb(idx)  # (B, T, d)
        if self.pos_emb is not None:
            return x + self.pos_emb.weight[start : start + T], None  # (T, d) broadcast
        return x, (self.rope_cos[start : start + T], self.rope_sin[start : start + T])

    def head(self, x: torch.Tensor, linear: LinearFn = apply_linear) -> torch.Tensor:
        """The final norm and output projection: x (B, T, d) -> logits (B, T, vocab_size)."""
        logits = linear(self.lm_head, self.norm_f(x))
        if self.config.padded_vocab_size != self.config.vocab_size:
            logits = logits[..., : self.config.vocab_size]  # padded ids do not exist outside
        return logits

    # -- sizes and costs -------------------------------------------------------------------

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        """Number of parameters (a tied matrix counts once); optionally without the token and
        position embeddings (the "non-embedding" count of the scaling-law papers)."""
        n = sum(p.numel() for p in self.parameters())
        if exclude_embeddings:
            n -= self.tok_emb.weight.numel()
            if self.pos_emb is not None:
                n -= self.pos_emb.weight.numel()
        return n

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs per token, 6N + 12*L*d*T (PaLM, appendix B).

        N counts the weights used in matrix multiplies: the non-embedding parameters plus
        the output head (whether or not it is tied); the second term is the attention
        scores and weighted sum over a context of T = seq_len (default max_seq_len).
        """
        c = self.config
        T = c.max_seq_len if seq_len is None else seq_len
        n = self.num_parameters(exclude_embeddings=True)
        if c.tie_weights:  # the head is the token embedding, subtracted above: count it back
            n += c.padded_vocab_size * c.d_model
        return 6.0 * n + 12.0 * c.n_layers * c.d_model * T

    def estimate_mfu(
        self, tokens_per_second: float, peak_flops: float, seq_len: int | None = None
    ) -> float:
        """Model FLOPs utilisation: achieved training FLOP/s over the hardware's peak."""
        return self.flops_per_token(seq_len) * tokens_per_second / peak_flops

    # -- decoding ----------------------------------------------------------------------------

    def new_cache(self, batch_size: int, max_len: int | None = None) -> KVCache:
        """An empty KV cache for this model (max_len defaults to max_seq_len)."""
        c = self.config
        p = self.tok_emb.weight
        return KVCache(
            c.n_layers,
            batch_size,
            c.n_heads,
            min(max_len or c.max_seq_len, c.max_seq_len),
            c.head_dim,
            device=p.device,
            dtype=p.dtype,
        )
