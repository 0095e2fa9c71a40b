"""Frames out: quarantined rows (:class:`Rejects`), ``source`` locators, and parsed JSON objects
turned into a polars frame without losing values."""
from __future__ import annotations

import json
from typing import Any

import polars as pl

from curate import records as R
from curate.source import quarantine

BATCH_ROWS = 50_000          # rows per yielded batch
RAW_CHARS = 500              # raw text kept with a quarantined row
RAW = "raw"                  # column holding that text


def _truncate(text: str) -> str:
    """``text`` cut to :data:`RAW_CHARS` characters (an ellipsis marks the cut)."""
    return text if len(text) <= RAW_CHARS else text[:RAW_CHARS] + "…"


class Rejects:
    """Collects quarantined rows of one batch."""

    def __init__(self) -> None:
        self.locators: list[str] = []
        self.reasons: list[str] = []
        self.details: list[str | None] = []
        self.raws: list[str | None] = []

    def add(self, locator: str, reason: str, detail: str | None, raw: str | None) -> None:
        self.locators.append(locator)
        self.reasons.append(reason)
        self.details.append(detail)
        self.raws.append(None if raw is None else _truncate(raw.rstrip("\r\n")))

    def __len__(self) -> int:
        return len(self.locators)

    def frame(self, origin: str) -> pl.DataFrame:
        if not self.locators:
            return pl.DataFrame()
        return quarantine(self.locators, self.reasons, self.details, origin).with_columns(
            pl.Series(RAW, self.raws, dtype=pl.String))


def with_locators(df: pl.DataFrame, locator: str, positions: list[int] | range) -> pl.DataFrame:
    """Put ``source`` = ``<locator>:<position>`` (built vectorised) first in ``df``.

    A batch without rows and without columns stays an empty frame, so the engine does not try to
    map columns of a batch that held only quarantined rows.
    """
    if df.width == 0 and len(positions) == 0:
        return pl.DataFrame()
    pos = pl.Series("_pos", positions, dtype=pl.Int64).cast(pl.String)
    src = pl.select((pl.lit(f"{locator}:") + pos).alias(R.SOURCE)).to_series() if len(pos) \
        else pl.Series(R.SOURCE, [], dtype=pl.String)
    return df.with_columns(src).select([R.SOURCE] + [c for c in df.columns if c != R.SOURCE])


def records_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Polars frame from parsed JSON objects, keeping their types.

    Polars unifies mixed values to a common type (1 and "a" → strings). A column it cannot
    unify without losing values (an int in one row, an object in the next), or cannot store in
    Parquet (Python objects, 128-bit ints), is kept as JSON text instead; nothing becomes null.
    """
    if not rows:
        return pl.DataFrame()
    df: pl.DataFrame | None
    try:
        df = pl.DataFrame(rows, infer_schema_length=None, strict=False)
    except Exception:  # noqa: BLE001 - polars raises several kinds for unmixable values
        df = None
    present = None
    if df is not None and not any(_unstorable(t) for t in df.dtypes):
        if not df.width or not any(df.null_count().row(0)):   # no nulls: nothing was lost
            return df
        present = _present(rows)
        if all(df.height - df[c].null_count() == present.get(c, 0) for c in df.columns):
            return df
    present = _present(rows) if present is None else present
    cols = []
    keys = dict.fromkeys(k for r in rows for k in r)
    for k in keys:
        vals = [r.get(k) for r in rows]
        try:
            col = pl.Series(k, vals, strict=False)
            if _unstorable(col.dtype) or len(vals) - col.null_count() != present.get(k, 0):
                raise TypeError(k)
        except Exception:  # noqa: BLE001
            col = pl.Series(k, [None if v is None else json.dumps(v, ensure_ascii=False)
                                for v in vals], dtype=pl.String)
        cols.append(col)
    return pl.DataFrame(cols)


def _present(rows: list[dict[str, Any]]) -> dict[str, int]:
    """How many rows hold a non-null value for each key."""
    present: dict[str, int] = {}
    for r in rows:
        for k, v in r.items():
            if v is not None:
                present[k] = present.get(k, 0) + 1
    return present


_WIDE_INTS = tuple(t for t in (getattr(pl, "Int128", None), getattr(pl, "UInt128", None)) if t is not None)


def _unstorable(dtype: pl.DataType) -> bool:
    """True when ``dtype`` is (or nests) a Python-object or 128-bit int type (no Parquet for them)."""
    if dtype == pl.Object or any(dtype == t for t in _WIDE_INTS):
        return True
    inner = getattr(dtype, "inner", None)
    if inner is not None:
        return _unstorable(inner)
    fields = getattr(dtype, "fields", None)
    return bool(fields) and any(_unstorable(f.dtype) for f in fields)


def one_reject(locator: str, reason: str, detail: str, raw: str | None, origin: str) -> pl.DataFrame:
    """A rejects frame of one row (a whole file or the rest of it)."""
    rej = Rejects()
    rej.add(locator, reason, detail, raw)
    return rej.frame(origin)


def json_type(obj: Any) -> str:
    """``obj``'s JSON type in words, for ``not_an_object`` details."""
    return {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number",
            type(None): "null"}.get(type(obj), type(obj).__name__)

