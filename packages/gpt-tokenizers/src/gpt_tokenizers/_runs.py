"""Long chunks for the BPE trainer, stored as linked lists of runs so a merge is O(1) each.

A chunk longer than `trainer.LONG_CHUNK` bytes is kept as a doubly linked list of nodes,
each a maximal run of one id: "aaaab" is the two nodes (a, 4) and (b, 1). A run of one
letter, however long, is then a single node, and merging (a, a) on it is one step:
a run of n a's becomes n // 2 copies of the new id followed by one a when n is odd,
exactly what merging left to right without overlap makes of the letters.

Pair counts equal those of the letters (what `reference_trainer.get_stats` counts): a run
(x, n) of a chunk that occurs w times holds the pair (x, x) w * (n - 1) times, overlapping
ones included, and two neighbouring runs hold their boundary pair w times. Runs stay
maximal: when a merge puts two runs of its new id side by side they are joined, which
leaves every count unchanged (w * (r1 - 1) + w * (r2 - 1) + w == w * (r1 + r2 - 1)).
"""

from __future__ import annotations

import operator
from array import array
from itertools import compress, groupby, repeat


class LongChunks:
    """Long chunks as linked lists of runs, with an index from each pair to where it starts.

    Node p is `rep[p]` copies of id `sym[p]` (-1 once the node is gone); `nxt[p]` and
    `prv[p]` are its neighbours in its chunk (-1 at the ends) and `weight[p]` how often its
    chunk occurs. `starts[pair]` lists nodes where the pair may start: the run itself for
    (x, x), the left node of the boundary for (x, y). Every occurrence is listed; entries go
    stale as merges change nodes and are checked when used.
    """

    def __init__(self, shift: int) -> None:
        self.shift = shift
        self.sym, self.rep = array("q"), array("q")
        self.nxt, self.prv, self.weight = array("q"), array("q"), array("q")
        self.starts: dict[int, array[int]] = {}
        # The pair counts and the pairs that appeared, while a merge runs.
        self._counts: dict[int, int] = {}
        self._appeared: dict[int, list[int]] = {}

    def add(self, chunk: bytes, count: int, pair_counts: dict[int, int]) -> None:
        """Append one chunk that occurs `count` times and add its pairs to `pair_counts`."""
        n, first = len(chunk), len(self.sym)
        # Where runs begin, their ids and lengths, in C loops (chunks may be megabytes).
        begins = [0, *compress(range(1, n), map(operator.ne, chunk[:-1], chunk[1:]))]
        syms = bytes(map(chunk.__getitem__, begins))
        runs = len(begins)
        self.sym.extend(syms)
        self.rep.extend(map(operator.sub, [*begins[1:], n], begins))
        self.nxt.extend(range(first + 1, first + runs))
        self.nxt.append(-1)
        self.prv.append(-1)
        self.prv.extend(range(first, first + runs - 1))
        self.weight.extend(array("q", [count]) * runs)
        starts, get, shift = self.starts, pair_counts.get, self.shift
        # Boundaries first, their nodes grouped by pair (a stable sort keeps them in order).
        bounds = list(map(operator.or_, map(operator.lshift, syms[:-1], repeat(shift)), syms[1:]))
        for key, group in groupby(
            sorted(range(runs - 1), key=bounds.__getitem__), bounds.__getitem__
        ):
            where = array("q", map(first.__add__, group))
            pair_counts[key] = get(key, 0) + count * len(where)
            starts.setdefault(key, array("q")).extend(where)
        # Then the runs of two or more, each holding (x, x) once per letter after its first.
        for i in compress(range(runs), map((1).__lt__, self.rep[first:])):
            key = (syms[i] << shift) | syms[i]
            pair_counts[key] = get(key, 0) + count * (self.rep[first + i] - 1)
            starts.setdefault(key, array("q")).append(first + i)

    def merge(self, key: int, new: int, pair_counts: dict[int, int]) -> set[int]:
        """Replace every occurrence of pair `key` by id `new`, left to right in each chunk,
        and update `pair_counts` (but for `key` itself, which the caller drops); returns the
        new pairs (those holding `new`) it counted."""
        nodes = self.starts.pop(key, None)
        if nodes is None:
            return set()
        shift = self.shift
        a, b = key >> shift, key & ((1 << shift) - 1)
        self._counts, self._appeared = pair_counts, {}
        if a == b:
            self._merge_runs(nodes, a, new)
        else:
            self._merge_boundaries(nodes, a, b, new)
        appeared, self._appeared = self._appeared, {}
        for made, where in appeared.items():
            self.starts[made] = array("q", where)
        return set(appeared)

    def _change(self, pair: int, by: int) -> None:
        """Add `by` to the count of `pair`."""
        self._counts[pair] = self._counts.get(pair, 0) + by

    def _gain(self, pair: int, by: int, node: int) -> None:
        """Count `by` more of a pair holding the new id, which now starts at `node` (its
        count may have gone below zero first, as (new, a) in "abab" is lost, then gained)."""
        self._counts[pair] = self._counts.get(pair, 0) + by
        found = self._appeared.get(pair)
        if found is None:
            self._appeared[pair] = [node]
        else:
            found.append(node)

    def _node(self, sym: int, rep: int, weight: int) -> int:
        """A new unlinked node."""
        self.sym.append(sym)
        self.rep.append(rep)
        self.weight.append(weight)
        self.nxt.append(-1)
        self.prv.append(-1)
        return len(self.sym) - 1

    def _link(self, left: int, right: int) -> None:
        """Make `right` follow `left`; either may be -1 (a chunk's end)."""
        if left >= 0:
            self.nxt[left] = right
        if right >= 0:
            self.prv[right] = left

    def _merge_runs(self, nodes: array[int], a: int, new: int) -> None:
        """Merge (a, a): each run of n a's becomes n // 2 new ids, then one a if n is odd."""
        shift, sym, rep, nxt, prv = self.shift, self.sym, self.rep, self.nxt, self.prv
        weight, gain, change = self.weight, self._gain, self._change
        for p in nodes:
            n = rep[p]
            if sym[p] != a or n < 2:
                continue  # stale: merged already, or shortened by an earlier merge
            c, half, left, right = weight[p], n // 2, prv[p], nxt[p]
            if n % 2:
                # The new run goes before p, which keeps its last a and its pair on the right.
                run = self._node(new, half, c)
                self._link(left, run)
                self._link(run, p)
                rep[p] = 1
                gain((new << shift) | a, c, run)
            else:
                run = p
                sym[p], rep[p] = new, half
                if right >= 0:
                    s = sym[right]
                    change((a << shift) | s, -c)
                    gain((new << shift) | s, c, run)
            if half > 1:
                gain((new << shift) | new, c * (half - 1), run)
            if left >= 0:  # its id is neither a nor new: runs are maximal
                s = sym[left]
                change((s << shift) | a, -c)
                gain((s << shift) | new, c, left)

    def _merge_boundaries(self, nodes: array[int], a: int, b: int, new: int) -> None:
        """Merge (a, b), a != b: the last a of a run and the first b of the next become one
        new id (no two occurrences overlap, and every a-run followed by a b-run holds one)."""
        shift, sym, rep, nxt, prv = self.shift, self.sym, self.rep, self.nxt, self.prv
        counts, appeared = self._counts, self._appeared
        get, seen, gain = counts.get, appeared.get, self._gain
        a_a, b_b, a_new = (a << shift) | a, (b << shift) | b, (a << shift) | new
        new_new = (new << shift) | new
        # This loop runs once per occurrence, so the common steps are inlined.
        for p in nodes:
            q = nxt[p]
            if sym[p] != a or q < 0 or sym[q] != b:
                continue  # stale: this boundary changed in an earlier merge
            c, left, right = self.weight[p], prv[p], nxt[q]
            node = -1  # the node to hold the new id: p or q if it vanishes, else a fresh one
            if rep[p] > 1:  # p keeps its other a's
                rep[p] -= 1
                counts[a_a] -= c
                before = p
            elif left >= 0:
                # (left, a) may be a pair of this merge, as (new, a) in "abab".
                s = sym[left] << shift
                counts[s | a] = get(s | a, 0) - c
                if s == new << shift:  # "abab": grow the run of new ids on the left
                    node, before = left, prv[left]
                    counts[new_new] = get(new_new, 0) + c
                    if rep[left] == 1:
                        gain(new_new, 0, left)
                    sym[p] = -1
                else:
                    node, before = p, left
                    made = s | new
                    counts[made] = get(made, 0) + c
                    found = seen(made)
                    if found is None:
                        appeared[made] = [left]
                    else:
                        found.append(left)
            else:
                node, before = p, -1
            if rep[q] > 1:  # q keeps its other b's
                rep[q] -= 1
                counts[b_b] -= c
                after = q
            else:
                after = right
                if right >= 0:
                    lost = (b << shift) | sym[right]
                    counts[lost] = get(lost, 0) - c
                if node < 0:
                    node = q
                else:
                    sym[q] = -1
            if node < 0:
                node = self._node(new, 1, c)
            if node == left:
                rep[node] += 1
            else:
                sym[node], rep[node] = new, 1
            prv[node], nxt[node] = before, after
            if before >= 0:
                nxt[before] = node
            if after >= 0:
                prv[after] = node
            if before == p:
                counts[a_new] = get(a_new, 0) + c
                found = seen(a_new)
                if found is None:
                    appeared[a_new] = [p]
                else:
                    found.append(p)
            if after >= 0:
                made = (new << shift) | sym[after]
                counts[made] = get(made, 0) + c
                if sym[after] == new:
                    # A run of new ids on the right, from an occurrence further on merged
                    # first: join this one to it (the count above already holds the pair).
                    # Index lists stay in chunk order, so this only keeps `merge` correct
                    # for any order.
                    rep[after] += rep[node]
                    self._link(prv[node], after)
                    sym[node] = -1
                    gain(new_new, 0, after)
                else:
                    found = seen(made)
                    if found is None:
                        appeared[made] = [node]
                    else:
                        found.append(node)
