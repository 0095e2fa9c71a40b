"""Parquet: row batches through pyarrow; a file that is not (or stops being) valid Parquet is a
quarantined ``unreadable_file`` row, never an Arrow traceback."""
from __future__ import annotations

import io
from typing import Any, BinaryIO, Iterator

import polars as pl

from curate.connectors._textio.frames import BATCH_ROWS, one_reject, with_locators
from curate.source import SourceBatch


def iter_parquet(fileobj: BinaryIO, locator: str, options: Any, origin: str, *,
                 batch_rows: int = BATCH_ROWS, limit: int | None = None,
                 info: dict[str, Any] | None = None) -> Iterator[SourceBatch]:
    """Read Parquet row batches with ``pyarrow.parquet.ParquetFile.iter_batches``; locator
    ``<locator>:<row>`` (0-based). Non-seekable streams are buffered in memory first. A file
    that is not valid Parquet is one quarantined row (``unreadable_file``, locator ``<locator>``);
    a batch that fails to decode ends the read with one (locator ``<locator>:<first row>``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    errors = (pa.ArrowException, OSError, ValueError, pl.exceptions.PolarsError)
    if not _seekable(fileobj):
        fileobj = io.BytesIO(fileobj.read())
    try:
        pf = pq.ParquetFile(fileobj)
    except errors as e:
        yield SourceBatch(pl.DataFrame(), one_reject(locator, "unreadable_file", f"not Parquet: {e}",
                                                     None, origin))
        return
    if info is not None:
        info["rows_declared"] = pf.metadata.num_rows
    row = 0
    batches = pf.iter_batches(batch_size=batch_rows)
    while True:
        try:
            batch = next(batches, None)
            if batch is None:
                break
            df = pl.from_arrow(pa.Table.from_batches([batch]))
        except errors as e:
            yield SourceBatch(pl.DataFrame(), one_reject(
                f"{locator}:{row}", "unreadable_file", f"corrupt Parquet data after row {row}: {e}",
                None, origin))
            return
        assert isinstance(df, pl.DataFrame)
        if limit is not None and row + df.height > limit:
            df = df.head(limit - row)
        yield SourceBatch(with_locators(df, locator, range(row, row + df.height)))
        row += df.height
        if limit is not None and row >= limit:
            break
    if row == 0 and pf.metadata.num_rows == 0:
        empty = pl.from_arrow(pf.schema_arrow.empty_table())
        assert isinstance(empty, pl.DataFrame)
        yield SourceBatch(with_locators(empty, locator, []))


def _seekable(f: Any) -> bool:
    try:
        return bool(f.seekable())
    except (AttributeError, ValueError):
        return False
