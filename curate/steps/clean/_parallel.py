"""Row-parallel evaluation of string expressions (used by ``clean`` and the quality heuristics).

A string expression (a regex count, ``extract_all``) runs on one thread per column. Here each
slice of rows is one input of a lazy ``concat``, which polars evaluates on its thread pool in
parallel, order kept; within a slice the lazy plan computes a subexpression shared by several
outputs once."""
from __future__ import annotations

from typing import Callable

import polars as pl


def map_parallel(df: pl.DataFrame, plan: Callable[[pl.LazyFrame], pl.LazyFrame],
                 min_rows: int = 2048) -> pl.DataFrame:
    """``plan(df.lazy()).collect()`` for a ``plan`` that works row by row (it may filter or
    explode rows, in order), run on slices of at least ``min_rows`` rows in parallel."""
    k = min(pl.thread_pool_size(), df.height // min_rows)
    if k < 2:
        return plan(df.lazy()).collect()
    step = -(-df.height // k)
    return pl.concat([plan(df.slice(i, step).lazy()) for i in range(0, df.height, step)]).collect()


def with_columns_parallel(df: pl.DataFrame, exprs: dict[str, pl.Expr], min_rows: int = 2048) -> pl.DataFrame:
    """``df.with_columns(**exprs)`` for row-wise ``exprs``, rows split over the thread pool."""
    return map_parallel(df, lambda lf: lf.with_columns(**exprs), min_rows)
