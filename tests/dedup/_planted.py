"""Helpers that build documents with known 5-word-shingle Jaccard similarity."""
from __future__ import annotations

import random


def words(rng: random.Random, n: int, prefix: str = "w") -> list[str]:
    return [f"{prefix}{rng.randrange(10**9)}" for _ in range(n)]


def jaccard(a: str, b: str, n: int = 5) -> float:
    def sh(t: str) -> set:
        w = t.lower().split()
        return {tuple(w[i:i + n]) for i in range(max(1, len(w) - n + 1))}
    x, y = sh(a), sh(b)
    return len(x & y) / len(x | y)


def variant(rng: random.Random, base: list[str], edits: int) -> list[str]:
    """Replace ``edits`` words at spread-out positions with fresh words."""
    out = list(base)
    step = max(1, len(out) // (edits + 1))
    for k in range(edits):
        out[(k + 1) * step % len(out)] = f"x{rng.randrange(10**9)}"
    return out
