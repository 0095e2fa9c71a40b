"""The ``inline`` source: rows written in the pipeline file (or passed from Python) — for small
lookup tables, hand-written examples and tests."""
from __future__ import annotations

from typing import Any, Iterator

import polars as pl
from pydantic import Field

from curate import records as R
from curate.io import fingerprint
from curate.registry import register_source
from curate.source import Source, SourceBatch, SourceConfig


class InlineConfig(SourceConfig):
    """Options of the ``inline`` source."""

    rows: list[dict[str, Any]] = Field(description="The rows, one mapping per row.")


@register_source("inline")
class InlineSource(Source):
    """Rows given in the config; locator ``inline:<index>``."""

    Config = InlineConfig

    def fingerprint(self) -> str | None:
        return fingerprint("inline", self.config.rows)

    def read(self) -> Iterator[SourceBatch]:
        if not self.config.rows:
            yield SourceBatch(pl.DataFrame(schema={R.SOURCE: pl.String}))
            return
        df = pl.DataFrame(self.config.rows, strict=False, infer_schema_length=None)
        yield SourceBatch(df.with_columns(pl.format("inline:{}", pl.int_range(pl.len())).alias(R.SOURCE)))
