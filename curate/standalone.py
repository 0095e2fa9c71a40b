"""Python API helpers: run one step on an in-memory table (``Step.run``) with the engine's
context, batching and accounting, but no pipeline, cache or files."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import polars as pl

from curate import records as R
from curate.step import Step, StepContext, StepResult


def prepare(data: Any) -> pl.DataFrame:
    """``data`` as polars with the bookkeeping columns a step expects: ``source`` (``memory:<row>``
    when absent) and a content-derived ``id`` (when absent), in the engine's column order."""
    from curate.connectors.memory import to_polars
    df = to_polars(data, "step input")
    if R.SOURCE not in df.columns:
        df = df.with_columns((pl.lit("memory:") + pl.int_range(pl.len()).cast(pl.String)).alias(R.SOURCE))
    if R.ID not in df.columns:
        df = R.with_ids(df)
    lead = [c for c in (R.ID, R.SOURCE, R.ORIGIN) if c in df.columns]
    return df.select(lead + [c for c in df.columns if c not in lead])


def run_step(step: Step, data: Any, *, seed: int = 0, batch_size: int = 50_000) -> StepResult:
    """What :meth:`curate.step.Step.run` does: prepare, process (batch by batch unless the step is
    global), check that every input row leaves once, name the step on each rejected row."""
    from curate.cache import ShardStore
    from curate.engine import check_accounting
    df = prepare(data)
    with tempfile.TemporaryDirectory(prefix=f"curate-{step.name}-") as tmp:
        ctx = StepContext(step_name=step.name, index=0, seed=seed, workdir=Path(tmp),
                          batch_size=batch_size, shards=ShardStore(Path(tmp) / "shards"))
        if step.scope == "global":
            results = [step.process(df, ctx)]
        else:
            results = [step.process(df.slice(start, batch_size), ctx)
                       for start in range(0, max(df.height, 1), batch_size)]
    kept = R.concat([r.kept for r in results if r.kept.height or r.kept.width])
    if kept.width == 0:
        kept = df.clear()
    rejected = R.concat([r.rejected for r in results if r.rejected.height])
    if rejected.height:
        rejected = rejected.with_columns(pl.col(R.STEP).fill_null(step.name)) if R.STEP in rejected.columns \
            else rejected.with_columns(pl.lit(step.name).alias(R.STEP))
    else:
        rejected = R.empty_rejects(df)
    check_accounting(step.name, df, kept, rejected)
    return StepResult(kept, rejected, step.merge_stats([r.stats for r in results]))
