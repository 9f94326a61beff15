"""The scalar autograd engine: every operation's gradient against a finite difference."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable

import pytest
from gpt_micro.engine import Value, dot, vsum

EPS = 1e-6


def numeric_grad(f: Callable[[list[Value]], Value], xs: list[float]) -> list[float]:
    """Central differences of f at xs, one input at a time."""
    grads = []
    for i in range(len(xs)):
        up = [Value(x + (EPS if j == i else 0.0)) for j, x in enumerate(xs)]
        down = [Value(x - (EPS if j == i else 0.0)) for j, x in enumerate(xs)]
        grads.append((f(up).data - f(down).data) / (2 * EPS))
    return grads


CASES: dict[str, Callable[[list[Value]], Value]] = {
    "add": lambda v: v[0] + v[1] + 3,
    "sub": lambda v: v[0] - v[1] - 2 + (1 - v[0]),
    "mul": lambda v: v[0] * v[1] * 2.5,
    "div": lambda v: v[0] / v[1] + 2 / v[1] + v[0] / 4,
    "pow": lambda v: v[0] ** 3 + v[1] ** -0.5,
    "exp_log": lambda v: (v[0] * v[1]).exp() + (v[1] * v[1]).log(),
    "relu": lambda v: (v[0] - v[1]).relu() * v[1] + (v[1] - 5).relu(),
    "neg": lambda v: -v[0] * v[1],
    "reuse": lambda v: v[0] * v[0] + v[0] * v[1] * v[0],  # one node feeding many
    "vsum_dot": lambda v: vsum([v[0], v[1], v[0] * v[1]]) + dot([v[0], v[1]], [v[1], v[1]]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_matches_finite_difference(name: str) -> None:
    f = CASES[name]
    xs = [0.7, 1.3]
    inputs = [Value(x) for x in xs]
    out = f(inputs)
    out.backward()
    expected = numeric_grad(f, xs)
    for v, g in zip(inputs, expected, strict=True):
        assert v.grad == pytest.approx(g, abs=1e-6)


def test_values_are_exact() -> None:
    a, b = Value(2.0), Value(-3.0)
    assert (a * b + a**2 - b / a).data == pytest.approx(-6 + 4 + 1.5)
    assert a.exp().log().data == pytest.approx(2.0)
    assert b.relu().data == 0.0
    assert Value(0.5).exp().data == math.exp(0.5)


def test_deep_graph_needs_no_recursion() -> None:
    """A chain far deeper than Python's recursion limit still back-propagates."""
    x = Value(1.0)
    y = x
    for _ in range(sys.getrecursionlimit() * 3):
        y = y + x * 0.001
    y.backward()
    assert x.grad == pytest.approx(1.0 + 0.001 * sys.getrecursionlimit() * 3)


def test_importing_gpt_micro_loads_no_third_party_module() -> None:
    code = (
        "import sys, gpt_micro.train, gpt_micro.model, gpt_micro.optim; "
        "print(sorted({'torch', 'numpy', 'regex', 'tiktoken'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
