"""Exact dedup: rows whose normalised text is identical form one cluster.

Vectorised in polars: the normalised text of the compared columns is the group key (polars
hashes it and checks equality in Rust), so there is no per-row Python and no hash collisions.
"""
from __future__ import annotations

import polars as pl

from ._text import Normalize, joined, normalized


def exact_labels(df: pl.DataFrame, columns: list[str], norm: Normalize) -> pl.Series:
    """A cluster label per row (UInt32 group index; null for rows whose text is null or that have
    no exact twin)."""
    key = normalized(joined(columns, sep="\x1f"), norm)
    out = df.select(key.alias("_k")).select(
        pl.when(pl.col("_k").is_not_null() & (pl.len().over("_k") > 1))
        .then(pl.col("_k").rank("dense")).otherwise(None).alias("_c"))
    return out["_c"].cast(pl.Int64)
