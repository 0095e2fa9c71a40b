"""Source ``memory``: rows already in Python — a polars or pandas DataFrame, a pyarrow Table, a
``datasets.Dataset`` (or DatasetDict), or a list of dicts — so a pipeline or a single step runs
on data you hold without writing it to a file first::

    Pipeline(sources=[df], steps=[Clean(min_words=3)]).run()
    Pipeline(sources=[from_frame(df, name="tickets", text="body")], ...)

Rows get the locator ``memory:<name>:<row>`` (0-based). The data is fingerprinted by content,
so an unchanged frame hits the cache like an unchanged file; it never enters the manifest.
"""
from __future__ import annotations

from typing import Any, Iterator

import polars as pl
from pydantic import ConfigDict, Field

from curate import records as R
from curate.errors import DataError
from curate.registry import register_source
from curate.source import Source, SourceBatch, SourceConfig

BATCH_ROWS = 50_000


def is_frame_like(obj: Any) -> bool:
    """True for the in-memory tables :func:`to_polars` accepts."""
    if isinstance(obj, (pl.DataFrame, pl.LazyFrame)):
        return True
    if isinstance(obj, list):
        return all(isinstance(r, dict) for r in obj)
    mod = type(obj).__module__.split(".")[0]
    return mod in ("pandas", "pyarrow", "datasets")


def to_polars(obj: Any, where: str = "memory source") -> pl.DataFrame:
    """``obj`` as a polars DataFrame (zero-copy through Arrow where the library allows).

    A DatasetDict becomes its splits one after another with a ``split`` column."""
    if isinstance(obj, pl.DataFrame):
        return obj
    if isinstance(obj, pl.LazyFrame):
        return obj.collect()
    if isinstance(obj, list):
        if not all(isinstance(r, dict) for r in obj):
            bad = next(r for r in obj if not isinstance(r, dict))
            raise DataError(f"{where}: a list of rows must hold dicts, found {type(bad).__name__}")
        if not obj:
            return pl.DataFrame()
        return pl.DataFrame(obj, strict=False, infer_schema_length=None)
    mod, cls = type(obj).__module__.split(".")[0], type(obj).__name__
    if mod == "pandas" and cls == "DataFrame":
        return pl.from_pandas(obj)
    if mod == "pyarrow" and cls in ("Table", "RecordBatch"):
        out = pl.from_arrow(obj)
        assert isinstance(out, pl.DataFrame)
        return out
    if mod == "datasets" and cls == "Dataset":
        out = pl.from_arrow(obj.with_format("arrow")[:] if len(obj) else obj.data.table.schema.empty_table())
        assert isinstance(out, pl.DataFrame)
        return out
    if mod == "datasets" and cls in ("DatasetDict", "IterableDatasetDict"):
        parts = [to_polars(d, where).with_columns(pl.lit(name, dtype=pl.String).alias("split"))
                 for name, d in obj.items()]
        return pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame()
    raise DataError(f"{where}: cannot read a {type(obj).__module__}.{cls}; give a polars or pandas "
                    "DataFrame, a pyarrow Table, a datasets.Dataset or a list of dicts")


class MemoryConfig(SourceConfig):
    """A table held in Python (never written to the manifest; fingerprinted by content)."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    data: Any = Field(default=None, exclude=True,
                      description="The rows: a polars/pandas DataFrame, a pyarrow Table, a "
                                  "datasets.Dataset or a list of dicts.")


@register_source("memory")
class MemorySource(Source):
    """Rows from an in-memory table; locator ``memory:<name>:<row>``."""

    Config = MemoryConfig

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._frame: pl.DataFrame | None = None

    def frame(self) -> pl.DataFrame:
        if self._frame is None:
            if self.config.data is None:
                raise DataError(f"source {self.origin}: no data (give `data=` a DataFrame or rows)")
            self._frame = to_polars(self.config.data, f"source {self.origin}")
            clash = [c for c in (R.SOURCE,) if c in self._frame.columns]
            if clash:
                self._frame = self._frame.rename({R.SOURCE: f"input_{R.SOURCE}"})
        return self._frame

    def fingerprint(self) -> str | None:
        from curate.cache import fingerprint, frame_fingerprint
        return fingerprint("memory", frame_fingerprint(self.frame()))

    def describe(self) -> str:
        df = self.frame()
        return f"{self.origin}: in memory, {df.height} rows"

    def read(self) -> Iterator[SourceBatch]:
        df = self.frame()
        left = self.config.limit
        if left is not None:
            df = df.head(left)
        prefix = f"memory:{self.origin}:"
        for start in range(0, max(df.height, 1), BATCH_ROWS):
            part = df.slice(start, BATCH_ROWS)
            loc = (pl.lit(prefix) + pl.int_range(start, start + part.height).cast(pl.String)).alias(R.SOURCE)
            yield SourceBatch(part.select([loc, *part.columns]) if part.width else
                              pl.DataFrame(schema={R.SOURCE: pl.String}))


def from_frame(data: Any, name: str | None = None, **options: Any) -> MemorySource:
    """A source over ``data`` (DataFrame, pandas, Arrow, datasets.Dataset, list of dicts);
    ``options`` are the usual source options (``text=``, ``label=``, ``fields=``, ``limit=``)."""
    return MemorySource(data=data, name=name, **options)


def as_source(item: Any) -> Any:
    """``item`` itself when it is already a source; a :class:`MemorySource` for frame-like data."""
    if isinstance(item, Source):
        return item
    if is_frame_like(item):
        return MemorySource(data=item)
    return item
