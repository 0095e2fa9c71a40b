"""Record conventions shared by every source, step and output.

Every row carries ``id`` (stable, content-derived), ``source`` (``connector:locator``, e.g.
``csv:data/sms.tsv:12``) and ``origin`` (the name of the pipeline source it came from), plus the
user's fields. Rejected rows additionally carry ``step`` and ``reason`` (and optional ``detail``).
"""
from __future__ import annotations

import io
from typing import Iterable

import numpy as np
import polars as pl
import xxhash

ID, SOURCE, ORIGIN = "id", "source", "origin"
STEP, REASON, DETAIL = "step", "reason", "detail"
RESERVED = (ID, SOURCE, ORIGIN)
REJECT_COLUMNS = (STEP, REASON, DETAIL)


def content_columns(df: pl.DataFrame) -> list[str]:
    """User fields: everything but the reserved and reject bookkeeping columns."""
    return [c for c in df.columns if c not in RESERVED and c not in REJECT_COLUMNS]


def content_ids(df: pl.DataFrame, columns: Iterable[str] | None = None) -> pl.Series:
    """Stable ids from row content: xxh3-64 of the row's fields as NDJSON (sorted keys).

    Rows with identical content get the same base id; the k-th repeat (k ≥ 1, in row order)
    gets ``<id>-k`` so ids stay unique and deterministic.
    """
    if df.height == 0:
        return pl.Series(ID, [], dtype=pl.String)
    frame = pl.DataFrame({ID: content_hashes(df, columns)})
    rep = frame.select(pl.int_range(pl.len()).over(ID).alias("k"))["k"]
    return (
        frame.with_columns(rep)
        .select(pl.when(pl.col("k") == 0).then(pl.col(ID))
                .otherwise(pl.col(ID) + "-" + pl.col("k").cast(pl.String)).alias(ID))[ID]
    )


def content_hashes(df: pl.DataFrame, columns: Iterable[str] | None = None) -> pl.Series:
    """The base of :func:`content_ids`: xxh3-64 (16 hex digits) of each row's content, without
    the repeat suffix (the engine numbers repeats over a table it reads part by part)."""
    return hex_ids(content_hash_ints(df, columns))


def content_hash_ints(df: pl.DataFrame, columns: Iterable[str] | None = None) -> np.ndarray:
    """:func:`content_hashes` as unsigned 64-bit integers (what the engine numbers repeats by)."""
    cols = sorted(columns if columns is not None else content_columns(df))
    if not cols or not df.height:
        return np.zeros(df.height, dtype=np.uint64)
    # One NDJSON line per row: a stable, type-aware serialisation done in Rust, hashed as the
    # UTF-8 bytes polars wrote (no round trip through Python strings).
    # split on b"\n" only: JSON escapes newlines in values, and leaves U+0085, U+2028 ... raw
    buf = io.BytesIO()
    df.select(cols).write_ndjson(buf)
    lines = buf.getvalue().split(b"\n")
    lines.pop()
    return np.fromiter(map(xxhash.xxh3_64_intdigest, lines), dtype=np.uint64, count=len(lines))


_HEX_PAIRS = np.frombuffer(b"".join(b"%02x" % i for i in range(256)), dtype=np.uint16)


def hex_ids(hashes: np.ndarray) -> pl.Series:
    """64-bit hashes as 16 lowercase hex digits each (an ``id`` column), built without a Python
    string per row: big-endian bytes, two digits per byte, read by polars as 16-byte values."""
    h = np.ascontiguousarray(hashes, dtype=np.uint64).astype(">u8")
    digits = _HEX_PAIRS[h.view(np.uint8)].view("S16") if len(h) else np.array([], dtype="S16")
    return pl.Series(ID, digits).cast(pl.String)


def with_ids(df: pl.DataFrame) -> pl.DataFrame:
    """Return ``df`` with a content-derived ``id`` column first (replacing any existing one)."""
    ids = content_ids(df)
    return df.with_columns(ids).select([ID] + [c for c in df.columns if c != ID])


def require_column(df: pl.DataFrame, column: str | None, where: str, what: str = "column",
                   hint: str = "") -> None:
    """Raise a DataError naming ``where``, the missing column and the columns there are."""
    if column is not None and column not in df.columns:
        from curate.errors import DataError
        raise DataError(f"{where}: {what} {column!r} not found; columns are: "
                        f"{', '.join(map(repr, df.columns))}{hint}")


def reject(df: pl.DataFrame, step: str, reason: str | pl.Expr,
           detail: str | pl.Expr | None = None, **extra: pl.Expr | str) -> pl.DataFrame:
    """Mark rows of ``df`` as rejected by ``step`` with ``reason`` (and optional detail/extra)."""
    def lit(v):
        return v if isinstance(v, pl.Expr) else pl.lit(v, dtype=pl.String)
    cols = [pl.lit(step, dtype=pl.String).alias(STEP), lit(reason).alias(REASON),
            (lit(detail) if detail is not None else pl.lit(None, dtype=pl.String)).alias(DETAIL)]
    cols += [lit(v).alias(k) for k, v in extra.items()]
    return df.with_columns(cols)


def empty_rejects(schema_from: pl.DataFrame | None = None) -> pl.DataFrame:
    """An empty reject frame (optionally with the columns of ``schema_from``)."""
    base = schema_from.clear() if schema_from is not None else pl.DataFrame()
    return base.with_columns(pl.lit(None, dtype=pl.String).alias(c) for c in REJECT_COLUMNS)


def concat(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """Concatenate frames whose columns may differ (missing columns become null)."""
    frames = [f for f in frames if f is not None and (f.width > 0)]
    if not frames:
        return pl.DataFrame()
    if len(frames) == 1:
        return frames[0]
    return pl.concat(frames, how="diagonal_relaxed")


def json_text(col: str) -> pl.Expr:
    """A nested column (list/struct) as JSON text, vectorised: encode a one-field struct, strip it."""
    enc = pl.struct(pl.col(col).alias("v")).struct.json_encode()
    return (pl.when(pl.col(col).is_null()).then(None)
            .otherwise(enc.str.slice(5, enc.str.len_chars() - 6)).alias(col))
