"""Outputs ``jsonl``, ``parquet``, ``csv`` and ``hf_dataset``: the final table written atomically
(temp file or folder beside the target, then rename; or uploaded whole to a URL through
:mod:`curate.storage`), optionally with chosen/renamed columns. The bytes are the same wherever
they are stored (gzip headers fixed)."""
from __future__ import annotations

import io
from contextlib import nullcontext
from pathlib import Path

import polars as pl
from pydantic import Field

from curate import records as R
from curate.storage import atomic_dir, atomic_path, files_under, gzip_writer
from curate.errors import DataError
from curate.extras import require
from curate.registry import register_output
from curate.sink import Sink, SplitSinkConfig


class FileOutputConfig(SplitSinkConfig):
    """Column selection shared by the file outputs."""

    columns: list[str] | dict[str, str] | None = Field(
        default=None,
        description="Columns to write, in order: a list of names, or {output_name: column} to "
                    "rename as well. Default: every column.")
    drop_meta: bool = Field(default=False, description="Leave out the bookkeeping columns id, source, origin.")


class PathOutputConfig(FileOutputConfig):
    path: str = Field(description="File to write (its folder is created); jsonl and csv are "
                                  "gzip-compressed when it ends with `.gz`.")


class CsvOutputConfig(PathOutputConfig):
    delimiter: str = Field(default=",", min_length=1, max_length=1, description="Field separator.")


class HfDatasetOutputConfig(FileOutputConfig):
    dir: str = Field(description="Folder to write with `datasets`' save_to_disk (replaced whole).")


def shape(df: pl.DataFrame, config: FileOutputConfig, where: str) -> pl.DataFrame:
    """Apply ``drop_meta`` and ``columns``; a named column that is absent is a DataError."""
    if config.drop_meta:
        df = df.drop([c for c in R.RESERVED if c in df.columns])
    cols = config.columns
    if cols is None:
        return df
    mapping = {c: c for c in cols} if isinstance(cols, list) else dict(cols)
    missing = [src for src in mapping.values() if src not in df.columns]
    if missing:
        raise DataError(f"{where}: columns names {missing[0]!r}, which is not in the data; "
                        f"columns are: {', '.join(map(repr, df.columns))}")
    return df.select([pl.col(src).alias(out) for out, src in mapping.items()])


class _PathSink(Sink):
    Config = PathOutputConfig

    def targets(self) -> list[Path]:
        return [self.path(self.config.path)]

    def streams(self, columns: list[str]) -> bool:
        """Every file output writes the final table part by part (:meth:`write_stream`)."""
        return True

    def write_stream(self, frames, seed: int) -> tuple[list[Path], int]:
        """Write the final table's parts as they come: each split's rows appended to that split's
        temp file (jsonl/csv lines, gzip streams, Parquet row groups), renamed over (or uploaded
        to) its target at the end. jsonl and csv bytes equal :meth:`write`'s of the whole table;
        Parquet holds the same rows in one row group per part."""
        cfg = self.config

        def writer(split: str | None) -> PartWriter:
            path = self.path(cfg.path, split)
            return PartWriter(self.name, path, lambda df: shape(df, cfg, f"output {self.name} ({path})"),
                              delimiter=getattr(cfg, "delimiter", ","))
        return self.stream_splits(frames, writer)

    def write_split(self, df: pl.DataFrame, seed: int, split: str | None) -> list[Path]:
        path = self.path(self.config.path, split)
        df = shape(df, self.config, f"output {self.name} ({path})")
        with atomic_path(path) as tmp:
            write_format(df, self.name, tmp, gz=path.name.lower().endswith(".gz"),
                         delimiter=getattr(self.config, "delimiter", ","))
        return [path]


class PartWriter:
    """One file written part by part: ``write(df)`` appends ``prepare(df)`` as ``fmt`` (jsonl or
    csv lines, a gzip stream when the name ends with ``.gz``, Parquet row groups) to a temp file
    that replaces (or is uploaded to) ``path`` when the context ends without an error. The bytes
    are those :func:`write_format` gives for all the parts at once (Parquet: the same rows).
    jsonl and csv bytes are hashed as they are written: ``sha256`` then holds the file's digest,
    so nobody reads the file back to hash it. Once a part's bytes reach :data:`BEHIND_BYTES`,
    parts are compressed, hashed and written on a thread while the caller reads and serialises
    the next one (one part in flight, in order; its error is raised by the next call). Small
    outputs never start the thread (a thread costs a malloc arena of address space, which a
    process under ``RLIMIT_AS`` may not have)."""

    def __init__(self, fmt: str, path, prepare=None, delimiter: str = ",") -> None:
        self.fmt, self.path, self.prepare, self.delimiter = fmt, path, prepare, delimiter
        self.gz = self.path.name.lower().endswith(".gz") and fmt != "parquet"
        self.rows = 0
        self.sha256: str | None = None
        self._parquet = None
        self._pool = None
        self._pending = None

    def __enter__(self) -> "PartWriter":
        from contextlib import ExitStack
        self._stack = ExitStack()
        self._tmp = self._stack.enter_context(atomic_path(self.path))
        if self.fmt != "parquet":
            self._hash = _Sha256Writer(self._stack.enter_context(open(self._tmp, "wb")))
            self._f = self._stack.enter_context(gzip_writer(self._hash)) if self.gz else self._hash
        return self

    def write(self, df: pl.DataFrame) -> None:
        df = self.prepare(df) if self.prepare is not None else df
        if self.fmt in ("jsonl", "csv"):
            data = _text_bytes(df, self.fmt, self.delimiter, header=self.rows == 0)
            self._wait()
            if self._pool is None and len(data) >= BEHIND_BYTES:
                from concurrent.futures import ThreadPoolExecutor
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="curate-output")
            if self._pool is None:
                self._f.write(data)
            else:
                self._pending = self._pool.submit(self._f.write, data)
        else:
            import pyarrow.parquet as pq
            table = df.to_arrow()
            if self._parquet is None:
                self._parquet = self._stack.enter_context(pq.ParquetWriter(self._tmp, table.schema,
                                                                           compression="zstd"))
            self._parquet.write_table(table)
        self.rows += df.height

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def __exit__(self, *exc) -> None:
        try:
            self._wait()                   # the last part's write
            if exc[0] is None and self.fmt != "parquet":
                if self.gz:
                    self._f.close()        # the gzip trailer goes through the hash too
                self.sha256 = self._hash.hexdigest()
        except BaseException as e:         # a full disk at the last write: the temp file goes too
            if exc[0] is None:
                self._stack.__exit__(type(e), e, e.__traceback__)
                raise
        finally:
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None
        self._stack.__exit__(*exc)


class _Sha256Writer:
    """A binary file that hashes (sha256) what is written to it."""

    def __init__(self, f) -> None:
        import hashlib
        self.f, self._h = f, hashlib.sha256()

    def write(self, data) -> int:
        self._h.update(data)
        return self.f.write(data)

    def flush(self) -> None:
        self.f.flush()

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def _csv_ready(df: pl.DataFrame) -> pl.DataFrame:
    """Nested values (lists, structs) as JSON text, the only way CSV can hold them."""
    return df.with_columns(R.json_text(c) for c, ty in df.schema.items() if ty.is_nested())


def write_format(df: pl.DataFrame, fmt: str, target: Path, gz: bool = False, delimiter: str = ",") -> None:
    """Write ``df`` as ``fmt`` (jsonl, csv, parquet) to the local file ``target`` — the bytes every
    file output and the s3 output store; gzip (not for Parquet) with a fixed header (no name,
    mtime 0): same rows → same bytes → cached output, wherever it is stored."""
    if fmt == "parquet":
        df.write_parquet(target)
        return
    with open(target, "wb") as raw, (gzip_writer(raw) if gz else nullcontext(raw)) as f:
        for start in range(0, max(df.height, 1), _SLICE):
            f.write(_text_bytes(df.slice(start, _SLICE), fmt, delimiter, header=start == 0))


_SLICE = 50_000        # rows serialised at a time by write_format
BEHIND_BYTES = 8 << 20      # a part's bytes from which PartWriter writes on a thread


def _text_bytes(df: pl.DataFrame, fmt: str, delimiter: str, header: bool) -> memoryview:
    """``df`` as jsonl or csv bytes. Serialised apart and then written: polars flushes a file it
    writes to, and a flush of a gzip stream ends a deflate block, so the compressed bytes would
    depend on polars' buffering instead of only on the rows."""
    buf = io.BytesIO()
    if fmt == "jsonl":
        df.write_ndjson(buf)
    else:
        _csv_ready(df).write_csv(buf, separator=delimiter, include_header=header)
    return buf.getbuffer()


@register_output("jsonl")
class JsonlOutput(_PathSink):
    """One JSON object per line (UTF-8), types and nesting kept; loads with
    ``datasets.load_dataset("json", data_files=...)``."""


@register_output("parquet")
class ParquetOutput(_PathSink):
    """A Parquet file (zstd), types and nesting kept."""


@register_output("csv")
class CsvOutput(_PathSink):
    """CSV with a header (RFC 4180 quoting); nested values (lists, structs) are written as JSON."""

    Config = CsvOutputConfig


@register_output("hf_dataset")
class HfDatasetOutput(Sink):
    """A ``datasets.Dataset`` folder (save_to_disk), built from the table's Arrow data."""

    Config = HfDatasetOutputConfig

    def targets(self) -> list[Path]:
        return [self.path(self.config.dir)]

    def write_split(self, df: pl.DataFrame, seed: int, split: str | None) -> list[Path]:
        require("datasets", extra="ml", what="the hf_dataset output")
        from datasets import Dataset
        target = self.path(self.config.dir, split)
        df = shape(df, self.config, f"output hf_dataset ({target})")
        with atomic_dir(target) as tmp:
            _save_quietly(Dataset(df.to_arrow()), tmp)
        return files_under(target)

    def streams(self, columns: list[str]) -> bool:
        """Parts go to an Arrow stream file, saved from a memory map (never one frame in RAM)."""
        return True

    def write_stream(self, frames, seed: int) -> tuple[list[Path], int]:
        require("datasets", extra="ml", what="the hf_dataset output")
        folders, rows = self.stream_splits(frames, lambda split: _DatasetWriter(self, split))
        for entry in self.stats.get("splits", {}).values():     # files, as write() lists them
            entry["files"] = [str(f) for d in entry["files"] for f in files_under(self.path(d))]
        return [f for d in folders for f in files_under(d)], rows


class _DatasetWriter:
    """One ``hf_dataset`` folder written part by part: the parts are appended to an Arrow IPC
    stream in a temp folder, memory-mapped by ``Dataset.from_file`` and saved with
    ``save_to_disk`` when the context ends without an error."""

    def __init__(self, sink: HfDatasetOutput, split: str | None) -> None:
        self.sink, self.path, self.rows = sink, sink.path(sink.config.dir, split), 0
        self._writer = self._file = None
        self._empty: pl.DataFrame | None = None

    def __enter__(self) -> "_DatasetWriter":
        import tempfile
        from curate import storage
        near = None                 # beside the target (same disk) when it is local
        if not storage.is_url(self.path):
            near = Path(self.path).parent
            near.mkdir(parents=True, exist_ok=True)
        self._tmp = tempfile.TemporaryDirectory(prefix=".curate-hf-", dir=near)
        return self

    def write(self, df: pl.DataFrame) -> None:
        import pyarrow as pa
        df = shape(df, self.sink.config, f"output hf_dataset ({self.path})")
        if not df.height:
            self._empty = df
            return
        table = df.to_arrow()
        if self._writer is None:
            self._file = pa.OSFile(str(Path(self._tmp.name) / "data.arrow"), "wb")
            self._writer = pa.ipc.new_stream(self._file, table.schema)
        self._writer.write_table(table)
        self.rows += df.height

    def __exit__(self, exc_type, *exc) -> None:
        from datasets import Dataset
        try:
            if self._writer is not None:
                self._writer.close()
                self._file.close()
            if exc_type is None:
                ds = (Dataset.from_file(str(Path(self._tmp.name) / "data.arrow")) if self._writer is not None
                      else Dataset((self._empty if self._empty is not None else pl.DataFrame()).to_arrow()))
                with atomic_dir(self.path) as tmp:
                    _save_quietly(ds, tmp)
                del ds
        finally:
            self._tmp.cleanup()


def _save_quietly(ds, path: Path) -> None:
    """save_to_disk without its progress bar (the engine shows its own progress). An empty
    dataset needs num_shards=1: datasets 5 otherwise writes no shard and cannot load it back."""
    require("datasets", extra="ml")
    from datasets.utils import logging as dlog
    was = dlog.is_progress_bar_enabled()
    dlog.disable_progress_bar()
    try:
        ds.save_to_disk(str(path), num_shards=1 if len(ds) == 0 else None)
    finally:
        if was:
            dlog.enable_progress_bar()
