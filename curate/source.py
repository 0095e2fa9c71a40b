"""The source protocol: a connector reads records in batches, each with a ``source`` locator;
rows it cannot parse are quarantined (rejected with a reason and location), never dropped."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterator

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from curate import records as R
from curate.component import Component
from curate.errors import DataError


class SourceConfig(BaseModel):
    """Options every source accepts: naming and column mapping."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, description="Name of this source; stored as each row's `origin`.")
    text: str | None = Field(default=None, description="Input column to use as `text`.")
    label: str | None = Field(default=None, description="Input column to use as `label`.")
    fields: dict[str, str] = Field(default_factory=dict,
                                   description="Further renames: {output_name: input_column}.")
    keep_columns: list[str] | None = Field(
        default=None, description="Keep only these columns (after mapping); default keeps all.")
    strict: bool = Field(default=False, description="Fail on the first malformed row instead of quarantining it.")
    limit: int | None = Field(default=None, ge=1, description="Read at most this many rows.")


@dataclass
class SourceBatch:
    """One batch read by a source: parsed rows (with ``source``) and quarantined rows."""

    rows: pl.DataFrame
    rejected: pl.DataFrame = field(default_factory=pl.DataFrame)


class Source(Component, ABC):
    """Base class for connectors. Subclasses implement :meth:`read` (and :meth:`fingerprint`)."""

    name: ClassVar[str] = "source"
    Config: ClassVar[type[SourceConfig]] = SourceConfig

    def __init__(self, config: SourceConfig | dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.origin = self.config.name or self.name
        #: Where the source may keep state (crawl checkpoints ...); the engine sets it to the
        #: pipeline's cache folder before reading.
        self.workdir: Path = Path(".curate")
        #: Counters the source wants in the manifest (retries, pages skipped, ...).
        self.stats: dict[str, Any] = {}

    def fingerprint(self) -> str | None:
        """A cheap fingerprint of the input (e.g. file paths, sizes, mtimes), or ``None`` when the
        data can only be known by reading it (databases, web): then it is read every run."""
        return None

    @abstractmethod
    def read(self) -> Iterator[SourceBatch]:
        """Yield batches of raw rows. Each row must have a ``source`` locator column."""

    def describe(self) -> str:
        return self.origin

    # -- mapping, shared by every connector -------------------------------------------------
    def mapping(self) -> dict[str, str]:
        """Output column -> input column, from ``text``, ``label`` and ``fields``."""
        m: dict[str, str] = {}
        if self.config.text:
            m["text"] = self.config.text
        if self.config.label:
            m["label"] = self.config.label
        m.update(self.config.fields)
        return m

    def apply_mapping(self, df: pl.DataFrame, where: str) -> pl.DataFrame:
        """Rename mapped columns; a mapped column that is missing is a :class:`DataError`."""
        m = self.mapping()
        missing = [src for src in m.values() if src not in df.columns]
        if missing:
            have = [c for c in df.columns if c != R.SOURCE]
            raise DataError(f"{where}: column {missing[0]!r} (mapped in source {self.origin!r}) "
                            f"not found; columns are: {', '.join(map(repr, have))}")
        exprs = []
        mapped_inputs = set(m.values())
        for out, src in m.items():
            exprs.append(pl.col(src).alias(out))
        for c in df.columns:
            if c not in mapped_inputs and c not in m:
                exprs.append(pl.col(c))
        out_df = df.select(exprs)
        if self.config.keep_columns:
            absent = [c for c in self.config.keep_columns if c not in out_df.columns]
            if absent:
                raise DataError(f"{where}: keep_columns names {absent[0]!r}, which is not a column; "
                                f"columns are: {', '.join(map(repr, out_df.columns))}")
            out_df = out_df.select([R.SOURCE] + [c for c in self.config.keep_columns if c != R.SOURCE])
        return out_df


def quarantine(locators: list[str], reasons: list[str], details: list[str | None],
               origin: str) -> pl.DataFrame:
    """Build a source-reject frame: one row per malformed input row."""
    return pl.DataFrame({
        R.SOURCE: pl.Series(locators, dtype=pl.String),
        R.ORIGIN: pl.Series([origin] * len(locators), dtype=pl.String),
        R.STEP: pl.Series([f"source:{origin}"] * len(locators), dtype=pl.String),
        R.REASON: pl.Series(reasons, dtype=pl.String),
        R.DETAIL: pl.Series(details, dtype=pl.String),
    })
