"""The properties that make rotary embeddings correct."""

from __future__ import annotations

import torch
from gpt_core.rope import apply_rope, rope_cache


def rotate_at(x: torch.Tensor, pos: int, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate a single vector x (hd,) as if it sat at position pos."""
    return apply_rope(x.view(1, 1, 1, -1), cos[pos : pos + 1], sin[pos : pos + 1]).view(-1)


def test_score_depends_only_on_relative_position() -> None:
    torch.manual_seed(0)
    hd = 16
    cos, sin = rope_cache(64, hd, theta=100.0)
    q, k = torch.randn(hd, dtype=torch.float32), torch.randn(hd)
    for offset in (0, 1, 5):
        scores = [
            torch.dot(rotate_at(q, i + offset, cos, sin), rotate_at(k, i, cos, sin))
            for i in range(0, 40, 7)
        ]
        for s in scores[1:]:
            torch.testing.assert_close(s, scores[0], atol=1e-5, rtol=1e-5)
    # and it does depend on the offset (otherwise the test above proves nothing)
    s0 = torch.dot(rotate_at(q, 3, cos, sin), rotate_at(k, 3, cos, sin))
    s1 = torch.dot(rotate_at(q, 7, cos, sin), rotate_at(k, 3, cos, sin))
    assert abs(float(s0 - s1)) > 1e-3


def test_rotation_preserves_norms() -> None:
    torch.manual_seed(1)
    cos, sin = rope_cache(32, 8)
    x = torch.randn(2, 3, 32, 8)
    y = apply_rope(x, cos, sin)
    torch.testing.assert_close(y.norm(dim=-1), x.norm(dim=-1))
    assert not torch.allclose(y[:, :, 1:], x[:, :, 1:])


def test_position_zero_is_identity() -> None:
    cos, sin = rope_cache(4, 8)
    x = torch.randn(1, 2, 1, 8)
    torch.testing.assert_close(apply_rope(x, cos[:1], sin[:1]), x)


def test_half_split_pairing() -> None:
    # Channel i is rotated together with channel i + hd/2 (not with its neighbour i+1).
    hd = 8
    cos, sin = rope_cache(4, hd)
    x = torch.zeros(1, 1, 1, hd)
    x[..., 0] = 1.0
    y = apply_rope(x, cos[1:2], sin[1:2]).view(-1)
    assert y[0] == cos[1, 0]
    assert y[hd // 2] == sin[1, 0]
    assert torch.count_nonzero(y) == 2
