"""Semantic dedup: rows whose sentence embeddings have cosine similarity ≥ ``threshold``.

Embeddings come from :func:`curate.embed.embed` (offline all-MiniLM-L6-v2 by default; any
sentence-transformers model name or path works) or from a column of precomputed vectors.
Small tables are compared all-pairs in blocks (one matrix product per block, memory
``block × n``); larger ones are split into k-means buckets and each row is compared with the
rows of its ``probes`` nearest buckets, so work grows ~n·n/buckets instead of n².
"""
from __future__ import annotations

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field


class SemanticConfig(BaseModel):
    """Embedding-based duplicate options (``dedup: {semantic: {...}}``)."""

    model_config = ConfigDict(extra="forbid")
    threshold: float = Field(default=0.9, ge=-1.0, le=1.0,
                             description="Cosine similarity at or above which two rows are duplicates.")
    model: str | None = Field(default=None, description="sentence-transformers model name or path "
                              "(default: the offline all-MiniLM-L6-v2).")
    embedding_column: str | None = Field(default=None, description="Use this list[float] column "
                                         "instead of computing embeddings.")
    batch_size: int = Field(default=64, ge=1, le=4096, description="Encoder batch size.")
    buckets: int | None = Field(default=None, ge=1, description="k-means buckets (default: "
                                "all-pairs up to `exact_limit` rows, else about n/2000).")
    probes: int = Field(default=2, ge=1, le=64, description="Buckets each row is compared against.")
    exact_limit: int = Field(default=20_000, ge=0, description="Up to this many rows, compare all pairs.")
    device: str | None = Field(default=None, description="Encoder device (cpu, cuda); default auto.")


def embeddings(df: pl.DataFrame, texts: list[str], cfg: SemanticConfig) -> np.ndarray:
    """L2-normalised float32 vectors, one per row."""
    if cfg.embedding_column:
        v = np.asarray(df[cfg.embedding_column].to_list(), dtype=np.float32)
        norm = np.linalg.norm(v, axis=1, keepdims=True)
        return v / np.where(norm == 0, 1, norm)
    from curate.embed import embed
    return embed(texts, model=cfg.model, batch_size=cfg.batch_size, device=cfg.device)


def _block_pairs(emb: np.ndarray, rows: np.ndarray, cols: np.ndarray, threshold: float,
                 block: int = 2048, ordered: bool = True) -> list[np.ndarray]:
    """Pairs (2 × m arrays, global indices) between ``rows`` and ``cols`` with cosine ≥
    threshold; ``ordered`` keeps only i < j (all-pairs), else each pair is sorted (i ≠ j)."""
    out = []
    ec = emb[cols]
    for s in range(0, len(rows), block):
        r = rows[s:s + block]
        sims = emb[r] @ ec.T
        ii, jj = np.nonzero(sims >= threshold)
        gi, gj = r[ii], cols[jj]
        if ordered:
            keep = gi < gj
            out.append(np.stack([gi[keep], gj[keep]]).astype(np.int64))
        else:
            keep = gi != gj
            out.append(np.stack([np.minimum(gi, gj)[keep], np.maximum(gi, gj)[keep]]).astype(np.int64))
    return out


def cosine_pairs(emb: np.ndarray, cfg: SemanticConfig, seed: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Pairs (i < j) with cosine ≥ threshold, and stats on how they were searched."""
    n = emb.shape[0]
    idx = np.arange(n)
    if n < 2:
        e = np.zeros(0, np.int64)
        return e, e, {"search": "none"}
    if cfg.buckets is None and n <= cfg.exact_limit:
        parts = _block_pairs(emb, idx, idx, cfg.threshold)
        info = {"search": "all_pairs"}
    else:
        from sklearn.cluster import MiniBatchKMeans
        k = cfg.buckets or max(2, n // 2000)
        k = min(k, n)
        rng = np.random.default_rng(seed)
        sample = emb[rng.choice(n, size=min(n, 50 * k + 10_000), replace=False)]
        km = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=1, max_iter=20,
                             batch_size=4096).fit(sample)
        cent = km.cluster_centers_.astype(np.float32)
        probes = min(cfg.probes, k)
        near = np.argsort(-(emb @ cent.T), axis=1)[:, :probes]          # (n, probes)
        primary = near[:, 0]
        parts = []
        for c in range(k):
            own = idx[primary == c]
            if len(own) == 0:
                continue
            visitors = idx[(near == c).any(axis=1)]
            parts += _block_pairs(emb, own, visitors, cfg.threshold, ordered=False)
        info = {"search": "kmeans_buckets", "buckets": int(k), "probes": int(probes)}
    if not parts:
        e = np.zeros(0, np.int64)
        return e, e, info
    allp = np.concatenate(parts, axis=1)
    codes = np.unique(allp[0] * n + allp[1])
    return codes // n, codes % n, info
