"""Exact dedup: rows whose normalised text is identical form one cluster.

Vectorised in polars: the normalised text of the compared columns is the group key (polars
hashes it and checks equality in Rust), so there is no per-row Python and no hash collisions.
"""
from __future__ import annotations

import polars as pl

from ._text import Normalize, joined, normalized


def exact_key(columns: list[str]) -> pl.Expr:
    """The compared text before normalisation (columns joined with a unit separator, so column
    boundaries count)."""
    return joined(columns, sep="\x1f")


def exact_labels(df: pl.DataFrame, columns: list[str], norm: Normalize,
                 key: pl.Series | None = None) -> pl.Series:
    """A cluster label per row (UInt32 group index; null for rows whose text is null or that have
    no exact twin). ``key``: the already normalised :func:`exact_key` of ``df`` (so callers that
    also shingle the text normalise it once)."""
    if key is None:
        key = df.select(normalized(exact_key(columns), norm).alias("_k"))["_k"]
    dup = (key.is_duplicated() & key.is_not_null()).fill_null(False)
    out = pl.repeat(None, len(key), dtype=pl.Int64, eager=True).alias("_c")
    if dup.any():                    # rank only the rows that have a twin (the sort is the cost)
        out = out.scatter(dup.arg_true(), key.filter(dup).rank("dense").cast(pl.Int64))
    return out
