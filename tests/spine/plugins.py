"""Test-only source and steps registered under `t_*` names (imported by the spine tests)."""
from __future__ import annotations

import os
from pathlib import Path

import polars as pl
from pydantic import Field, SecretStr

from curate import records as R
from curate.registry import register_source, register_step
from curate.source import Source, SourceBatch, SourceConfig
from curate.step import Filter, Step, StepConfig, StepContext, StepResult


class RowsConfig(SourceConfig):
    rows: list[dict] = Field(default_factory=list)
    n: int = 0


@register_source("t_rows")
class Rows(Source):
    """In-memory rows (or `n` generated rows `row <i>`)."""

    Config = RowsConfig

    def fingerprint(self) -> str | None:
        return "static"

    def read(self):
        rows = self.config.rows or [{"text": f"row {i}", "label": "ab"[i % 2]} for i in range(self.config.n)]
        df = pl.DataFrame(rows).with_columns(pl.format("t_rows:{}", pl.int_range(pl.len())).alias(R.SOURCE))
        yield SourceBatch(df)


class MinLenConfig(StepConfig):
    min_chars: int = Field(default=1, ge=0, le=1000)
    ratio: float = Field(default=0.5, ge=0, le=1)


@register_step("t_minlen")
class MinLen(Filter):
    Config = MinLenConfig

    def filters(self):
        return [("too_short", pl.col("text").str.len_chars() >= self.config.min_chars)]


class CountingConfig(StepConfig):
    counter_file: str
    kill_after: int | None = None


@register_step("t_slow_upper")
class SlowUpper(Step):
    """Resumable batch step: upper-cases text, logs each processed batch, can die mid-way."""

    Config = CountingConfig
    resumable = True

    def process(self, df: pl.DataFrame, ctx: StepContext) -> StepResult:
        log = Path(self.config.counter_file)
        done_before = len(log.read_text().splitlines()) if log.exists() else 0
        if self.config.kill_after is not None and done_before >= self.config.kill_after \
                and os.environ.get("T_KILL") == "1":
            os._exit(137)       # simulate kill -9 in the middle of the step
        with log.open("a") as f:
            f.write(",".join(df[R.ID].to_list()[:1]) + "\n")
        return StepResult(kept=df.with_columns(pl.col("text").str.to_uppercase()))


@register_step("t_lossy")
class Lossy(Step):
    """A buggy step that silently drops one row: the engine must refuse it."""

    def process(self, df, ctx):
        return StepResult(kept=df.slice(1))


class SecretConfig(StepConfig):
    api_key: SecretStr
    endpoint: str = "http://127.0.0.1:9/x"


@register_step("t_secret")
class UsesSecret(Step):
    """Checks it received the resolved secret, and writes nothing of it."""

    Config = SecretConfig

    def process(self, df, ctx):
        assert self.config.api_key.get_secret_value().startswith("sk-"), "secret not resolved"
        return StepResult(kept=df, stats={"calls": df.height})


from curate.io import atomic_path  # noqa: E402
from curate.registry import register_output  # noqa: E402
from curate.sink import Sink, SinkConfig  # noqa: E402


class OutConfig(SinkConfig):
    path: str


@register_output("t_out")
class Out(Sink):
    """Writes the table as NDJSON."""

    Config = OutConfig

    def targets(self):
        return [Path(self.config.path)]

    def write(self, df, seed):
        with atomic_path(self.config.path) as tmp:
            df.write_ndjson(tmp)
        return [Path(self.config.path)]
