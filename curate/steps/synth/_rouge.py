"""ROUGE-L (LCS F-measure, the rouge_score definition: lowercase alphanumeric tokens, no stemming)
computed with rapidfuzz's C++ LCS over token lists, one query against many references at once."""
from __future__ import annotations

import re
from typing import Iterable, Sequence

import numpy as np
from curate.extras import require

_TOKEN = re.compile(r"[a-z0-9]+")


def tokens(text: str | None) -> list[str]:
    """rouge_score's default tokenisation (lowercase, non-alphanumerics split, no stemming)."""
    return _TOKEN.findall((text or "").lower())


def rouge_l_matrix(queries: Sequence[list[str]], refs: Sequence[list[str]]) -> np.ndarray:
    """ROUGE-L F1 of every query against every reference (``len(queries) × len(refs)``)."""
    if not queries or not refs:
        return np.zeros((len(queries), len(refs)))
    require("rapidfuzz", extra="llm")
    from rapidfuzz import process
    require("rapidfuzz", extra="llm")
    from rapidfuzz.distance import LCSseq
    lcs = process.cdist(queries, refs, scorer=LCSseq.similarity, dtype=np.int32, workers=1)
    ql = np.array([len(q) for q in queries], dtype=np.float64)[:, None]
    rl = np.array([len(r) for r in refs], dtype=np.float64)[None, :]
    denom = ql + rl
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(denom > 0, 2.0 * lcs / denom, 0.0)
    return f


def rouge_l(a: str, b: str) -> float:
    return float(rouge_l_matrix([tokens(a)], [tokens(b)])[0, 0])


class RougeIndex:
    """The texts kept so far; answers "how close is this to anything kept" (self-instruct filter)."""

    def __init__(self, texts: Iterable[str] = ()) -> None:
        self.toks: list[list[str]] = [tokens(t) for t in texts]

    def __len__(self) -> int:
        return len(self.toks)

    def max_sim(self, text: str) -> tuple[float, int]:
        """Highest ROUGE-L against the index and the index of that text (-1 when empty)."""
        if not self.toks:
            return 0.0, -1
        row = rouge_l_matrix([tokens(text)], self.toks)[0]
        j = int(row.argmax())
        return float(row[j]), j

    def add(self, text: str) -> None:
        self.toks.append(tokens(text))
