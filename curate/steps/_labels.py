"""Shared by the label-aware steps (balance, split with stratify, dpo_pairs from_labels): rows
without a label are rejected as ``missing_label`` before any label decision (an empty string is
not a class), and a step that removes more than half of its input says so."""
from __future__ import annotations

from typing import Any

import polars as pl

from curate import records as R

MISSING_LABEL = "missing_label"


def missing_label(df: pl.DataFrame, column: str) -> pl.Expr:
    """True where ``column`` holds no label: null, or a string that is empty after stripping.
    (A list column — multi-label — counts only null as missing: an empty list is a valid
    "none of the labels".)"""
    dtype = df.schema[column]
    if dtype == pl.String:
        return pl.col(column).is_null() | (pl.col(column).str.strip_chars() == "")
    if dtype == pl.Categorical or dtype == pl.Enum:
        return pl.col(column).is_null() | (pl.col(column).cast(pl.String).str.strip_chars() == "")
    return pl.col(column).is_null()


def split_missing_labels(df: pl.DataFrame, column: str, step: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(labelled rows, rejected rows)``; the rejected carry reason ``missing_label``."""
    miss = missing_label(df, column)
    bad = df.filter(miss)
    if not bad.height:
        return df, R.empty_rejects(df)
    detail = (pl.lit(f"{column} is ") + pl.when(pl.col(column).is_null()).then(pl.lit("null"))
              .otherwise(pl.lit("empty")))
    return df.filter(~miss), R.reject(bad, step, MISSING_LABEL, detail)


def unique_ratio(df: pl.DataFrame, column: str) -> float | None:
    """Distinct values of ``column`` / rows (1.0 = every row's text is different)."""
    if column not in df.columns or df.height == 0:
        return None
    return round(df[column].n_unique() / df.height, 4)


def removal_warning(step: str, rows_in: int, removed: int, guard_hint: str = "") -> list[str]:
    """A warning when a step removes more than half of its input (empty otherwise)."""
    if rows_in and removed * 2 > rows_in:
        return [f"{step} removed {removed} of {rows_in} rows ({100 * removed / rows_in:.1f}%)"
                + (f"; {guard_hint}" if guard_hint else "")]
    return []


def add_warnings(stats: dict[str, Any], warnings: list[str]) -> None:
    """Append to ``stats["warnings"]`` (the manifest's per-step warnings list)."""
    if warnings:
        stats.setdefault("warnings", []).extend(warnings)
