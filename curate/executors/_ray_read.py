"""Sources read in parallel on Ray: one task per file of a file source, per object of an S3
source, per range of the integer key of a SQL table; the driver puts the pieces back together in
the local reader's order, so rows, rejects, ids and cache entries are the local engine's.

A piece is read by the source's own ``read`` restricted to that piece (a copy of the source whose
file list, object list or SELECT covers only it), and each batch it yields goes through the
local engine's per-batch handling (column mapping, renamed bookkeeping columns, ``origin``).
For a source with a cheap fingerprint (files, S3) the task writes the rows as cache parts of
``batch_size`` rows straight into the source's cache entry and the driver only lists them, in
piece order (the entry holds the local rows in the local order; only the cut between parts
differs). A source without one (SQL) is named by its content, hashed over the parts as the local
reader cuts them: there every batch is written as one Parquet file and the driver cuts them in
piece order exactly as :meth:`curate.engine.Engine._read_source` does.

Many small files are read a run of consecutive files per task (at most four tasks per CPU).
Nothing here imports Ray.
"""
from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import polars as pl

from curate import records as R
from curate.io import write_parquet


# ------------------------------------------------------------------------------ planning
def plan(src, cpus: int) -> list[dict[str, Any]] | None:
    """The pieces of ``src`` to read in parallel, or None (read it on the driver): sources with a
    ``limit`` (it counts over all pieces), unknown connectors, and sources of a single piece."""
    if src.config.limit:
        return None
    from curate.connectors.files.base import FileSource
    from curate.connectors.s3 import S3Source
    from curate.connectors.sql import SqlSource
    read = type(src).read
    if isinstance(src, FileSource) and read is FileSource.read:
        from curate.storage import _protocols
        paths = src.paths()
        if any("memory" in _protocols(p) or str(p).startswith("memory:") for p in paths):
            return None                 # an in-process filesystem: the workers cannot see it
        pieces = [{"kind": "file", "path": p} for p in paths]
    elif isinstance(src, S3Source) and read is S3Source.read:
        pieces = [{"kind": "s3", "obj": o} for o in src.objects()]
    elif isinstance(src, SqlSource) and read is SqlSource.read:
        pieces = sql_ranges(src, cpus)
    else:
        return None
    return pieces if pieces and len(pieces) > 1 else None


def sql_ranges(src, cpus: int) -> list[dict[str, Any]] | None:
    """``[lo, hi)`` ranges of a table's single integer key (its primary key or ``key:``), about one
    ``chunk_size`` each and at most ``4 × cpus``; None for a query, a compound or non-integer key,
    or a key with NULLs (their place in ORDER BY differs between databases)."""
    c = src.config
    if c.table is None:
        return None
    try:
        import sqlalchemy as sa

        from curate.connectors.sql import make_engine
        engine = make_engine(c.url, c.connect_timeout)
    except Exception:        # noqa: BLE001 - no driver, a bad URL: the local read says so
        return None
    try:
        with engine.connect() as conn:
            table = sa.Table(c.table, sa.MetaData(), schema=c.db_schema, autoload_with=conn)
            key = list(c.key or [col.name for col in table.primary_key.columns])
            if len(key) != 1 or key[0] not in table.c:
                return None
            col = table.c[key[0]]
            try:
                if col.type.python_type is not int:
                    return None
            except NotImplementedError:
                return None
            lo, hi, n, nulls = conn.execute(sa.select(
                sa.func.min(col), sa.func.max(col), sa.func.count(),
                sa.func.count() - sa.func.count(col))).one()
    except Exception:        # noqa: BLE001 - any trouble: the driver reads it and reports it as locally
        return None
    finally:
        engine.dispose()
    if n is None or n == 0 or nulls or lo is None:
        return None
    k = max(1, min(4 * max(cpus, 1), math.ceil(n / c.chunk_size), hi - lo + 1))
    cuts = [lo + (hi - lo + 1) * j // k for j in range(k)] + [hi + 1]
    return [{"kind": "sql", "key": key[0], "lo": int(a), "hi": int(b)} for a, b in zip(cuts, cuts[1:]) if b > a]


def shippable(src):
    """A copy of ``src`` that pickles (no open client)."""
    out = copy.copy(src)
    if hasattr(out, "_client"):
        out._client = None
    return out


# ------------------------------------------------------------------------------ the task
def restricted(src, piece: dict[str, Any]):
    """A copy of ``src`` whose ``read`` covers only ``piece``."""
    sub = copy.copy(src)
    sub.stats = {}
    if piece["kind"] == "file":
        sub.paths = lambda: [piece["path"]]
    elif piece["kind"] == "s3":
        sub._client, sub._objects = None, [piece["obj"]]
    elif piece["kind"] == "sql":
        whole = sub._statement

        def statement(conn):
            stmt, text, label, key = whole(conn)
            col = stmt.selected_columns[piece["key"]]
            return stmt.where(col >= piece["lo"]).where(col < piece["hi"]), text, label, key
        sub._statement = statement
    return sub


def read_piece(src, piece: dict[str, Any], where: str, folder: str, index: int,
               parts_dir: str | None = None, batch_size: int = 0) -> dict[str, Any]:
    """Read one piece (the Ray task), each batch after the local engine's per-batch handling.
    With ``parts_dir`` (a source with a cheap fingerprint: the entry's folder) the rows are cut
    into cache parts of ``batch_size`` rows there (``parts``: path, rows, checksum); without it
    each batch is written to ``folder`` (``files``) for the driver to cut as the local reader
    does. Rejects go to ``folder``. Returns the piece's stats too, or ``error`` (any exception;
    the driver then reads the source itself, which raises the local engine's error)."""
    from curate.cache import write_part
    sub = restricted(src, piece)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    rows_files, rej_files, parts, n = [], [], [], 0
    buf: list[pl.DataFrame] = []

    def flush(final: bool) -> None:
        nonlocal buf
        part = R.concat(buf) if buf else pl.DataFrame()
        while part.height >= batch_size or (final and part.height):
            path = Path(parts_dir) / f"kept-p{index:06d}-{len(parts):06d}.parquet"
            piece_df = part.slice(0, batch_size)
            parts.append((str(path), piece_df.height, write_part(piece_df, path)))
            part = part.slice(batch_size)
        buf = [part] if part.height else []

    try:
        for k, batch in enumerate(sub.read()):
            rows = batch.rows
            if rows.height or rows.width:
                rows = sub.apply_mapping(rows, where)
                clash = {c: f"input_{c}" for c in (R.ID, R.ORIGIN) if c in rows.columns}
                if clash:
                    rows = rows.rename(clash)
                rows = rows.with_columns(pl.lit(sub.origin, dtype=pl.String).alias(R.ORIGIN))
                n += rows.height
                if parts_dir is not None:
                    buf.append(rows)
                    if sum(f.height for f in buf) >= batch_size:
                        flush(False)
                else:
                    path = out / f"p{index:06d}-{k:06d}.parquet"
                    write_parquet(rows, path)
                    rows_files.append(str(path))
            if batch.rejected is not None and batch.rejected.height:
                if sub.config.strict:
                    return {"error": "strict"}
                path = out / f"p{index:06d}-{k:06d}.rejected.parquet"
                write_parquet(batch.rejected, path)
                rej_files.append(str(path))
        if parts_dir is not None:
            flush(True)
    except Exception as e:  # noqa: BLE001 - a worker death is no exception here: Ray retries it
        return {"error": f"{type(e).__name__}: {e}"}
    return {"rows": n, "files": rows_files, "parts": parts, "rejected": rej_files, "stats": sub.stats}


def read_pieces(src, pieces: list[dict[str, Any]], where: str, folder: str, first: int,
                parts_dir: str | None = None, batch_size: int = 0) -> list[dict[str, Any]]:
    """:func:`read_piece` over consecutive pieces (numbered from ``first``), in order: one task
    for many small files; stops at the first piece that reports an error."""
    out = []
    for k, piece in enumerate(pieces):
        out.append(read_piece(src, piece, where, folder, first + k, parts_dir, batch_size))
        if "error" in out[-1]:
            break
    return out


def batches_of(pieces: list[dict[str, Any]], tasks: int) -> list[tuple[int, list[dict[str, Any]]]]:
    """``pieces`` cut into at most ``tasks`` runs of consecutive pieces, as ``(first index, run)``."""
    tasks = max(1, min(tasks, len(pieces)))
    cuts = [len(pieces) * j // tasks for j in range(tasks + 1)]
    return [(a, pieces[a:b]) for a, b in zip(cuts, cuts[1:])]
