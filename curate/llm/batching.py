"""Token-budget packing: sort prompts by length and cut batches so that the padded size of each
batch (rows × (longest prompt + new tokens)) stays within a budget. Short prompts then share big
batches, long ones small batches, and padding waste is minimal."""
from __future__ import annotations

from typing import Sequence, TypeVar

T = TypeVar("T")


def batch_cost(lengths: Sequence[int], max_new_tokens: int) -> int:
    """Padded tokens a left-padded batch occupies at the end of generation."""
    return len(lengths) * (max(lengths) + max_new_tokens) if lengths else 0


def pack_by_tokens(lengths: Sequence[int], max_new_tokens: int, batch_tokens: int,
                   max_batch_size: int | None = None) -> list[list[int]]:
    """Group prompt indices into batches whose padded cost is ≤ ``batch_tokens``.

    Indices are visited longest first (stable for equal lengths, so packing is deterministic);
    a single prompt larger than the budget gets a batch of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    cur: list[int] = []
    cur_max = 0
    for i in order:
        longest = max(cur_max, lengths[i])
        fits = (len(cur) + 1) * (longest + max_new_tokens) <= batch_tokens
        if cur and (not fits or (max_batch_size is not None and len(cur) >= max_batch_size)):
            batches.append(cur)
            cur, longest = [], lengths[i]
        cur.append(i)
        cur_max = longest
    if cur:
        batches.append(cur)
    return batches


def pack_min_cost(lengths: Sequence[int], max_new_tokens: int, batch_tokens: int,
                  max_batch_size: int | None = None, step_overhead_tokens: int = 4096) -> list[list[int]]:
    """Optimal contiguous split of the length-sorted prompts under the same budget.

    Cost model of a batch of ``n`` prompts whose longest has ``L`` tokens: ``overhead + n × (L +
    new/2)`` per decoding step — a fixed per-step cost (kernel launches, Python; expressed in
    token units) plus attention/KV work over the padded length. A dynamic programme over split
    points (O(N × max batch)) minimises the sum, so on a CPU (small overhead) long and short prompts
    go to separate batches, while on a GPU (large overhead) batches fill the budget as greedy does.
    Every batch still satisfies ``rows × (L + new) ≤ batch_tokens``.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    ls = [lengths[i] for i in order]
    n = len(ls)
    if n == 0:
        return []
    cap = max_batch_size or n
    inf = float("inf")
    best = [0.0] + [inf] * n
    cut = [0] * (n + 1)
    for j in range(1, n + 1):                 # best split of the first j sorted prompts
        for i in range(j - 1, max(-1, j - 1 - cap), -1):
            size = j - i
            if size > 1 and size * (ls[i] + max_new_tokens) > batch_tokens:
                break                             # longer batches only get costlier
            c = best[i] + step_overhead_tokens + size * (ls[i] + max_new_tokens / 2)
            if c < best[j]:
                best[j], cut[j] = c, i
    batches: list[list[int]] = []
    j = n
    while j > 0:
        i = cut[j]
        batches.append(order[i:j])
        j = i
    return batches[::-1]


def restore_order(batches: Sequence[Sequence[int]], results: Sequence[Sequence[T]], n: int) -> list[T]:
    """Put per-batch results back into the original prompt order."""
    out: list[T | None] = [None] * n
    for idx, res in zip(batches, results):
        if len(idx) != len(res):
            raise ValueError(f"batch of {len(idx)} prompts returned {len(res)} results")
        for i, r in zip(idx, res):
            out[i] = r
    missing = [i for i, r in enumerate(out) if r is None]
    if missing:
        raise ValueError(f"no result for prompts {missing[:5]}")
    return out  # type: ignore[return-value]


def fixed_batches(n: int, batch_size: int) -> list[list[int]]:
    """Arrival-order batches of a fixed size (the baseline most pipelines use)."""
    return [list(range(s, min(n, s + batch_size))) for s in range(0, n, batch_size)]
