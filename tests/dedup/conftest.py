"""Fixtures for the dedup tests: an in-memory source so pipelines run without files, and a helper
that runs one step through the real engine (so the accounting invariant is enforced)."""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from curate.registry import register_source
from curate.source import Source, SourceBatch, SourceConfig


class RowsConfig(SourceConfig):
    rows: list[dict]


@register_source("dedup_test_rows")
class Rows(Source):
    """Rows given inline; locator = position."""

    Config = RowsConfig

    def read(self):
        df = pl.DataFrame(self.config.rows)
        yield SourceBatch(df.with_columns(pl.format("mem:{}", pl.int_range(pl.len())).alias("source")))


@pytest.fixture
def run_steps(tmp_path: Path):
    """Run ``steps`` over ``rows`` through the engine; returns the RunResult."""
    from curate import Pipeline

    def run(rows: list[dict], steps: list, name: str = "dedup-test", **kw):
        p = Pipeline(name=name, sources=[{"dedup_test_rows": {"rows": rows, **kw}}], steps=steps,
                     workdir=str(tmp_path / ".curate"), out_dir=str(tmp_path / "out"))
        return p.run()
    return run
