"""A scalar autograd engine: every number remembers how it was made, so gradients can flow back.

A `Value` wraps one float. Arithmetic on Values builds a graph; each node stores its children
and the local derivative of itself with respect to each child. `backward()` walks the graph in
reverse topological order and applies the chain rule: child.grad += local_grad * node.grad.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

Number = float | int


class Value:
    """One scalar in the computation graph, with its value (`data`) and d(loss)/d(it) (`grad`)."""

    __slots__ = ("_children", "_local_grads", "data", "grad")

    def __init__(
        self,
        data: float,
        children: tuple[Value, ...] = (),
        local_grads: tuple[float, ...] = (),
    ) -> None:
        self.data = float(data)
        self.grad = 0.0
        self._children = children  # the Values this one was computed from
        self._local_grads = local_grads  # d(self)/d(child) for each child, same order

    def __repr__(self) -> str:
        return f"Value(data={self.data:.6g}, grad={self.grad:.6g})"

    # --- the primitive operations: each returns a new node with its local derivatives ---

    def __add__(self, other: Value | Number) -> Value:
        o = other if isinstance(other, Value) else Value(other)
        return Value(self.data + o.data, (self, o), (1.0, 1.0))

    def __mul__(self, other: Value | Number) -> Value:
        o = other if isinstance(other, Value) else Value(other)
        return Value(self.data * o.data, (self, o), (o.data, self.data))

    def __pow__(self, exponent: Number) -> Value:
        # Only constant exponents: d(x^n)/dx = n * x^(n-1).
        return Value(self.data**exponent, (self,), (exponent * self.data ** (exponent - 1),))

    def exp(self) -> Value:
        e = math.exp(self.data)
        return Value(e, (self,), (e,))

    def log(self) -> Value:
        return Value(math.log(self.data), (self,), (1.0 / self.data,))

    def relu(self) -> Value:
        return Value(max(self.data, 0.0), (self,), (float(self.data > 0),))

    # --- everything else is built from the primitives ---

    def __neg__(self) -> Value:
        return self * -1.0

    def __radd__(self, other: Number) -> Value:
        return self + other

    def __sub__(self, other: Value | Number) -> Value:
        return self + (-other)

    def __rsub__(self, other: Number) -> Value:
        return (-self) + other

    def __rmul__(self, other: Number) -> Value:
        return self * other

    def __truediv__(self, other: Value | Number) -> Value:
        if isinstance(other, Value):
            return self * other**-1
        return self * (1.0 / other)

    def __rtruediv__(self, other: Number) -> Value:
        return self**-1 * other

    # --- reverse-mode differentiation ---

    def backward(self) -> None:
        """Fill `.grad` of every Value this one depends on with d(self)/d(that Value)."""
        order: list[Value] = []
        seen: set[int] = set()
        # Iterative depth-first topological sort (a GPT graph is far too deep for recursion).
        stack: list[tuple[Value, bool]] = [(self, False)]
        while stack:
            node, children_done = stack.pop()
            if children_done:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in node._children if id(child) not in seen)
        self.grad = 1.0
        for node in reversed(order):  # every node's grad is complete before it is pushed down
            for child, local in zip(node._children, node._local_grads, strict=True):
                child.grad += local * node.grad


def vsum(values: Iterable[Value]) -> Value:
    """Sum many Values as one node (faster and shallower than a chain of `+`)."""
    vs = tuple(values)
    return Value(sum(v.data for v in vs), vs, (1.0,) * len(vs))


def dot(ws: Iterable[Value], xs: Iterable[Value]) -> Value:
    """w . x as one node: d/dw_i = x_i and d/dx_i = w_i."""
    w, x = tuple(ws), tuple(xs)
    data = sum(a.data * b.data for a, b in zip(w, x, strict=True))
    return Value(data, w + x, tuple(b.data for b in x) + tuple(a.data for a in w))
