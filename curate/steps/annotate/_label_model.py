"""Combine labelling-function votes: majority vote, and a Dawid-Skene label model (EM over one
confusion matrix per function, abstains unobserved), plus Snorkel-style per-function analysis.

A vote matrix ``L`` has one row per record and one column per function; entries are class
indices, ``-1`` for abstain. Everything here is numpy over the whole matrix.
"""
from __future__ import annotations

import numpy as np


def vote_counts(L: np.ndarray, k: int) -> np.ndarray:
    """``(n, k)`` number of votes per class per row."""
    n = L.shape[0]
    counts = np.zeros((n, k), dtype=np.int64)
    for j in range(L.shape[1]):
        col = L[:, j]
        m = col >= 0
        np.add.at(counts, (np.flatnonzero(m), col[m]), 1)
    return counts


def majority(L: np.ndarray, k: int) -> np.ndarray:
    """``(n, k)`` vote shares; rows without votes are all zero, ties share the top mass."""
    counts = vote_counts(L, k).astype(np.float64)
    tot = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, tot, out=np.zeros_like(counts), where=tot > 0)


def dawid_skene(L: np.ndarray, k: int, *, max_iter: int = 100, tol: float = 1e-6,
                smoothing: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Posterior ``(n, k)``, class priors ``(k,)``, confusion ``(m, k, k + 1)`` (P(output o |
    true c); output ``k`` is "abstain") and the iterations run.

    Abstaining is an observed output: most labelling functions vote for one class only, and
    then *how often they fire* per class is what separates the classes (as in Snorkel's
    propensity). Initialised from the majority vote (rows without votes: uniform); Laplace
    ``smoothing``; the diagonal starts favoured so classes keep their names."""
    n, m = L.shape
    Lx = np.where(L >= 0, L, k)
    post = majority(L, k)
    post[post.sum(axis=1) == 0] = 1.0 / k
    onehot = [np.eye(k + 1)[Lx[:, j]] for j in range(m)]          # (n, k+1) each
    conf = np.ones((m, k, k + 1)) / (k + 1)
    prior = np.ones(k) / k
    it = 0
    for it in range(1, max_iter + 1):
        prior = (post.sum(axis=0) + smoothing) / (post.sum() + k * smoothing)
        for j in range(m):
            counts = post.T @ onehot[j] + smoothing             # (true, output)
            conf[j] = counts / counts.sum(axis=1, keepdims=True)
        logp = np.tile(np.log(prior), (n, 1))
        for j in range(m):
            logp += np.log(conf[j][:, Lx[:, j]]).T
        logp -= logp.max(axis=1, keepdims=True)
        new = np.exp(logp)
        new /= new.sum(axis=1, keepdims=True)
        delta = float(np.abs(new - post).max())
        post = new
        if delta < tol:
            break
    return post, prior, conf, it


def analysis(L: np.ndarray, names: list[str], labels: list[str], gold: np.ndarray | None = None) -> dict:
    """Per function: polarity, coverage, overlaps, conflicts (fractions of all rows), and
    empirical accuracy on rows with a gold label (``gold``: class index, -1 = unknown)."""
    n = max(L.shape[0], 1)
    k = len(labels)
    counts = vote_counts(L, k)
    total = counts.sum(axis=1)
    out = {}
    for j, name in enumerate(names):
        col = L[:, j]
        fired = col >= 0
        own = np.zeros(L.shape[0], dtype=np.int64)
        own[fired] = counts[np.flatnonzero(fired), col[fired]]
        st = {"polarity": sorted({labels[c] for c in np.unique(col[fired])}),
              "votes": int(fired.sum()),
              "coverage": round(float(fired.sum()) / n, 4),
              "overlaps": round(float((fired & (total > 1)).sum()) / n, 4),
              "conflicts": round(float((fired & (total - own > 0)).sum()) / n, 4)}
        if gold is not None:
            g = fired & (gold >= 0)
            st["accuracy"] = round(float((col[g] == gold[g]).mean()), 4) if g.any() else None
        out[name] = st
    return out
