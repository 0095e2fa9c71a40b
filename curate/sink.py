"""The output protocol: a sink writes the final table in one format, atomically.

Splits are honoured here, once for every format: when the table has a ``split`` column (the
``split`` step writes it) a file output writes one file per split — ``out/x.jsonl`` becomes
``out/x.train.jsonl``, ``out/x.validation.jsonl``, ``out/x.test.jsonl`` — and records them in its
stats (``splits: {train: {rows, files}, ...}``), which the engine puts in the manifest, so the
train runner finds them there. ``split_files: false`` writes one file with the column kept.
Formats implement :meth:`Sink.write_split` (one file for one part) and take
:class:`SplitSinkConfig`; a sink that overrides :meth:`Sink.write` itself (a database table, an
S3 object) writes one target with the column kept.
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from curate.component import Component
from curate.storage import StorageOptions

#: Conventional split order in file listings and the manifest (other values follow, sorted).
SPLIT_ORDER = ("train", "validation", "test")
#: Compression suffixes kept last when a split name is put into a file name.
_COMPRESSION = (".gz", ".bz2", ".xz", ".zst")


class SinkConfig(BaseModel):
    """Options every output accepts."""

    model_config = ConfigDict(extra="forbid")
    sources: list[str] | None = Field(
        default=None, description="Write only rows whose `origin` is one of these source names.")


class SplitSinkConfig(SinkConfig, StorageOptions):
    """Options of outputs that write one file per split (every file format)."""

    split_files: bool = Field(
        default=True, description="When the rows carry a split column (the `split` step), write one "
                                  "file per split (`x.train.jsonl`, `x.validation.jsonl`, `x.test.jsonl`; "
                                  "NI: `task<N>_<name>_<split>.json`), named in the manifest. false: one "
                                  "file with the split column kept.")
    split_column: str = Field(default="split", description="Column holding the split name.")


def split_path(path: str | Path, split: str) -> Path:
    """``out/x.jsonl`` -> ``out/x.<split>.jsonl``; ``x.jsonl.gz`` -> ``x.<split>.jsonl.gz``;
    a name without a suffix (a folder) -> ``x.<split>``."""
    p = path if hasattr(path, "with_name") else Path(path)     # a Path or a UPath (URL)
    split = re.sub(r"[^A-Za-z0-9_-]+", "_", split) or "_"
    name = p.name
    tail = ""
    for c in _COMPRESSION:
        if name.lower().endswith(c) and len(name) > len(c):
            name, tail = name[:-len(c)], name[-len(c):]
            break
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        return p.with_name(f"{name}.{split}{tail}")
    return p.with_name(f"{stem}.{split}.{ext}{tail}")


def split_parts(df: pl.DataFrame, column: str) -> list[tuple[str | None, pl.DataFrame]]:
    """``[(split, rows), ...]`` in train/validation/test order, then other values sorted; rows
    without a split value come last as ``(None, rows)``. No column (or no value): ``[(None, df)]``."""
    if column not in df.columns or df[column].null_count() == df.height:
        return [(None, df)]
    values = df[column].cast(pl.String)
    found = set(values.drop_nulls().unique().to_list())
    order = [s for s in SPLIT_ORDER if s in found] + sorted(found - set(SPLIT_ORDER))
    parts: list[tuple[str | None, pl.DataFrame]] = [(s, df.filter(values == s)) for s in order]
    if values.null_count():
        parts.append((None, df.filter(values.is_null())))
    return parts


class Sink(Component, ABC):
    """Base class for outputs. Subclasses implement :meth:`targets` and :meth:`write_split`
    (or override :meth:`write` to take the whole table as one target)."""

    name: ClassVar[str] = "output"
    Config: ClassVar[type[SinkConfig]] = SinkConfig

    def __init__(self, config: SinkConfig | dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        #: What the last ``write`` wants recorded in the manifest (counts, splits, warnings, ...).
        self.stats: dict[str, Any] = {}
        #: Name of the pipeline being written (set by the engine; formats use it for defaults).
        self.pipeline_name: str | None = None

    def path(self, p: str | Path, split: str | None = None) -> Path:
        """``p`` — or its file for ``split`` — as a local ``Path``, or a ``UPath`` when it is a URL
        (``s3://``, ``memory://`` ...; see :mod:`curate.storage`), with this output's storage_options."""
        from curate import storage
        base = storage.path(p, getattr(self.config, "storage_options", None))
        return base if split is None else split_path(base, split)

    @abstractmethod
    def targets(self) -> list[Path]:
        """Paths this output will write (files or folders); checked for clashes before running."""

    def write(self, df: pl.DataFrame, seed: int) -> list[Path]:
        """Write ``df`` — one target per split (see the module doc) — and return the files written
        (each atomically). Per-split rows and files go to ``self.stats["splits"]``."""
        self.stats = {}
        cfg = self.config
        parts = split_parts(df, cfg.split_column) if getattr(cfg, "split_files", False) else [(None, df)]
        written = self.write_parts(parts, seed)
        if any(s is not None for s, _ in parts):
            self.stats["splits"] = {
                (s if s is not None else "none"): {"rows": part.height, "files": [str(f) for f in files]}
                for (s, part), files in zip(parts, written)}
        return [f for files in written for f in files]

    def write_parts(self, parts: list[tuple[str | None, pl.DataFrame]], seed: int) -> list[list[Path]]:
        """Write each part; override to see all parts at once (e.g. NI picks its examples from
        the train part, a dataset folder writes a DatasetDict)."""
        return [self.write_split(part, seed, split) for split, part in parts]

    def write_split(self, df: pl.DataFrame, seed: int, split: str | None) -> list[Path]:
        """Write the rows of one split (``None``: the whole table, or rows without a split) to
        this output's target for that split (:func:`split_path`); return the files written."""
        raise NotImplementedError(f"output {self.name} implements neither write_split nor write")

    def streams(self, columns: list[str]) -> bool:
        """True when this output writes the final table (with these ``columns``) part by part
        (:meth:`write_stream`), so the engine never holds it whole. Default False: the engine
        reads the table into one frame for :meth:`write` (NI task files need every row of a task
        at once: a task is bounded by memory, about 1 KiB per instance in RAM)."""
        return False

    def write_stream(self, frames, seed: int) -> tuple[list[Path], int]:
        """Write an iterator of frames (the final table's parts, in order, already passed through
        :meth:`select`); return the files written and the row count. Only called when
        :meth:`streams` is True."""
        raise NotImplementedError(f"output {self.name} does not stream")

    def stream_splits(self, frames, writer) -> tuple[list[Path], int]:
        """The body of a :meth:`write_stream` that writes one target per split: each frame's
        rows are cut by split (as :func:`split_parts` cuts the whole table) and handed to the
        split's writer, ``writer(split)``: a context manager with ``write(df)``, ``path`` and
        ``rows``, entered when the split's first rows arrive and left (its file committed) at
        the end. A table without rows gets the empty target :meth:`write` would give. Returns
        the files in :func:`split_parts`' order and the row count; ``stats["splits"]`` as
        :meth:`write` records them."""
        from contextlib import ExitStack
        self.stats = {}
        self.digests = {}
        cfg = self.config
        by = cfg.split_column if getattr(cfg, "split_files", False) else None
        writers: dict[str | None, Any] = {}
        first, rows = None, 0
        with ExitStack() as stack:
            for df in frames:
                first = df if first is None else first
                rows += df.height
                for split, part in (split_parts(df, by) if by else [(None, df)]):
                    if not part.height:
                        continue
                    if split not in writers:
                        writers[split] = stack.enter_context(writer(split))
                    writers[split].write(part)
            if not writers:               # no rows: the empty target write() gives
                w = stack.enter_context(writer(None))
                w.write(first if first is not None else pl.DataFrame())
                writers[None] = w
        self.digests = {str(w.path): w.sha256 for w in writers.values() if getattr(w, "sha256", None)}
        if not rows:
            return [writers[None].path], 0
        named = [s for s in writers if s is not None]
        splits = ([s for s in SPLIT_ORDER if s in named] + sorted(set(named) - set(SPLIT_ORDER))
                  + ([None] if None in writers else []))
        if named:
            self.stats["splits"] = {(s if s is not None else "none"): {"rows": writers[s].rows,
                                                                      "files": [str(writers[s].path)]}
                                    for s in splits}
        return [writers[s].path for s in splits], rows

    def select(self, df: pl.DataFrame) -> pl.DataFrame:
        from curate import records as R
        if self.config.sources is not None and R.ORIGIN in df.columns:
            return df.filter(pl.col(R.ORIGIN).is_in(self.config.sources))
        return df

    def describe(self) -> str:
        return f"{self.name} → {', '.join(str(p) for p in self.targets())}"
