"""Turn cluster labels into kept/rejected rows: one keeper per cluster chosen by the keep
policy, every other member rejected with a pointer to it. Shared by exact/near/semantic dedup."""
from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl

from curate import records as R
from curate.errors import DataError

from ._text import text_length

KeepPolicy = Literal["first", "longest", "score"]


def connected_components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Union-find over candidate pairs, vectorised (min-label hooking + pointer jumping in numpy,
    O(log) rounds; no scipy import, which costs about a second in a fresh process): a label per
    node, and -1 for nodes in no pair, so clusters are transitive by construction."""
    labels = np.full(n, -1, dtype=np.int64)
    if len(left) == 0:
        return labels
    left, right = np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)
    nodes, inv = np.unique(np.concatenate([left, right]), return_inverse=True)
    a, b = inv[:len(left)], inv[len(left):]
    parent = np.arange(len(nodes), dtype=np.int64)
    while True:
        pa, pb = parent[a], parent[b]
        lo, hi = np.minimum(pa, pb), np.maximum(pa, pb)
        if not (lo != hi).any():
            break
        np.minimum.at(parent, hi, lo)          # hook the larger root under the smaller one
        while True:                            # pointer jumping: every node points at its root
            grand = parent[parent]
            if (grand == parent).all():
                break
            parent = grand
    labels[nodes] = parent
    return labels


def keepers(df: pl.DataFrame, labels: np.ndarray | pl.Series, keep: KeepPolicy,
            columns: list[str], score_column: str | None, step: str) -> np.ndarray:
    """Row index of the kept member of each row's cluster (itself for singletons).

    ``labels``: an integer (or any hashable) cluster key per row; null / -1 = no cluster.
    Ties are broken by row order, so the result is deterministic.
    """
    return keepers_by(labels, keep, keep_key(df, keep, columns, score_column, step))


def keep_key(df: pl.DataFrame, keep: KeepPolicy, columns: list[str], score_column: str | None,
             step: str) -> pl.Series | None:
    """What the keep policy ranks by, per row: the text length (``longest``), the score with
    NaN/null as -inf (``score``), nothing (``first``)."""
    if keep == "first":
        return None
    if keep == "longest":
        return df.select(text_length(columns).alias("_len"))["_len"]
    if keep == "score":
        if not score_column or score_column not in df.columns:
            raise DataError(f"step {step}: keep: score needs `score_column` naming a numeric column "
                            f"(got {score_column!r}; columns: {', '.join(df.columns)})")
        return df[score_column].cast(pl.Float64).fill_nan(None).fill_null(float("-inf")).alias("_s")
    raise DataError(f"step {step}: unknown keep policy {keep!r}")  # pragma: no cover - pydantic validates


def keepers_by(labels: np.ndarray | pl.Series, keep: KeepPolicy, key: pl.Series | None,
               index: np.ndarray | None = None) -> np.ndarray:
    """:func:`keepers` from the rank key of :func:`keep_key`. ``index``: the row numbers of the
    rows given (ascending; default ``0..n-1``), which ties are broken by and the result names."""
    lab = pl.Series("_c", labels)
    if lab.dtype.is_integer():
        lab = lab.set(lab < 0, None)
    idx = np.arange(len(lab), dtype=np.int64) if index is None else np.asarray(index, dtype=np.int64)
    work = pl.DataFrame({"_c": lab, "_i": idx})
    if keep == "first":
        by, desc = ["_i"], [False]
    elif keep == "longest":
        work = work.with_columns(key.alias("_len"))
        by, desc = ["_len", "_i"], [True, False]
    else:
        work = work.with_columns(key.alias("_s"))
        by, desc = ["_s", "_i"], [True, False]
    out = work.select(
        pl.when(pl.col("_c").is_null()).then(pl.col("_i"))
        .otherwise(pl.col("_i").sort_by(by, descending=desc).first().over("_c")).alias("k"))
    return out["k"].to_numpy()


def split_rows(df: pl.DataFrame, keep_idx: np.ndarray, step: str, reason: str,
               similarity: np.ndarray | None, detail: pl.Expr,
               ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Kept rows and rejected rows (``duplicate_of``, ``similarity``, reason, detail).

    ``detail`` may use the helper columns ``duplicate_of``, ``similarity`` and ``_size``
    (the cluster size)."""
    idx = np.arange(df.height)
    is_dup = keep_idx != idx
    ids = df[R.ID]
    extra = {"duplicate_of": ids.gather(keep_idx).cast(pl.String),
             "similarity": pl.Series(similarity if similarity is not None
                                     else np.ones(df.height), dtype=pl.Float64).round(4)}
    sizes = pl.DataFrame({"k": keep_idx}).select(pl.len().over("k").alias("_size"))["_size"]
    kept = df.filter(pl.Series(~is_dup))
    rej = df.with_columns(extra["duplicate_of"].alias("duplicate_of"),
                          extra["similarity"].alias("similarity"), sizes.alias("_size")
                          ).filter(pl.Series(is_dup))
    rej = R.reject(rej, step, reason, detail).drop("_size")
    return kept, rej
