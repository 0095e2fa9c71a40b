"""Semantic dedup: rows whose sentence embeddings have cosine similarity ≥ ``threshold``.

Embeddings come from :func:`curate.embed.embed` (offline all-MiniLM-L6-v2 by default; any
sentence-transformers model name or path works) or from a column of precomputed vectors.
Small tables are compared all-pairs in blocks (one matrix product per block, memory
``block × n``); larger ones are split into k-means buckets and each row is compared with the
rows of its ``probes`` nearest buckets, so work grows ~n·n/buckets instead of n².

``threshold: auto`` (the default) follows the backend (``embedding.backend``, or
``$CURATE_EMBED_BACKEND``): 0.9 for the network (torch, onnx, onnx-int8: the same cosines to
~1e-3), :data:`STATIC_THRESHOLD` for the static model, whose cosines live in another space. That
value was measured (``python bench/embed.py --thresholds``) on MRPC train (4,075 pairs): MiniLM at
0.9 gives paraphrase F1 0.501 (P 0.881, R 0.350); static gives the same F1 at 0.913 (0.498,
P 0.913, R 0.343). The mapping depends on the data: among the 5,171 distinct SMS texts MiniLM
finds 425 pairs at ≥ 0.9, static 1,184 at ≥ 0.9, 826 at ≥ 0.913, and as many (425) only at
0.942, so for short chatty texts set a higher static threshold by hand.
"""
from __future__ import annotations

import numpy as np
import polars as pl
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from curate.embed import EmbedConfig, fold_embed_keys

#: ``threshold: auto``: MiniLM's 0.9, and the static model's threshold with the same MRPC F1.
DEFAULT_THRESHOLD = 0.9
STATIC_THRESHOLD = 0.913


class SemanticConfig(BaseModel):
    """Embedding-based duplicate options (``dedup: {semantic: {...}}``)."""

    model_config = ConfigDict(extra="forbid")
    threshold: Annotated[float, Field(ge=-1.0, le=1.0)] | Literal["auto"] = Field(
        default="auto",
        description="Cosine similarity at or above which two rows are duplicates; `auto`: 0.9, or "
                    f"{STATIC_THRESHOLD} with the static backend (same MRPC F1).")
    embedding: EmbedConfig = Field(default_factory=EmbedConfig, description="Encoder: model, backend, "
                                   "batch_size, device (flat `model`/`batch_size`/`device` also accepted).")
    embedding_column: str | None = Field(default=None, description="Use this list[float] column "
                                         "instead of computing embeddings.")
    buckets: int | None = Field(default=None, ge=1, description="k-means buckets (default: "
                                "all-pairs up to `exact_limit` rows, else about n/2000).")
    probes: int = Field(default=2, ge=1, le=64, description="Buckets each row is compared against.")
    exact_limit: int = Field(default=20_000, ge=0, description="Up to this many rows, compare all pairs.")

    @model_validator(mode="before")
    @classmethod
    def _flat_embed_keys(cls, data):
        return fold_embed_keys(data, {"model": "model", "batch_size": "batch_size", "device": "device"})

    @model_validator(mode="after")
    def _auto_threshold(self) -> "SemanticConfig":
        if self.threshold == "auto":
            static = not self.embedding_column and self.embedding.effective_backend() == "static"
            self.threshold = STATIC_THRESHOLD if static else DEFAULT_THRESHOLD
        return self

    @property
    def model(self) -> str | None:
        """The encoder's model name (``embedding.model``), as the dedup step's stats read it."""
        return self.embedding.model


def embeddings(df: pl.DataFrame, texts: list[str], cfg: SemanticConfig) -> np.ndarray:
    """L2-normalised float32 vectors, one per row."""
    if cfg.embedding_column:
        v = np.asarray(df[cfg.embedding_column].to_list(), dtype=np.float32)
        norm = np.linalg.norm(v, axis=1, keepdims=True)
        return v / np.where(norm == 0, 1, norm)
    return cfg.embedding.embed(texts)


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
