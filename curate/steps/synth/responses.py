"""Responses for SFT data: one generated response per prompt row (same row, new column),
generated in resumable shards."""
from __future__ import annotations

from typing import Any

import polars as pl

from curate import records as R

from curate.errors import DataError
from curate.step import StepContext
from curate.steps.synth._llm_options import run_shards


def prompt_expr(df: pl.DataFrame, column: str | None) -> pl.Expr:
    """The prompt of each row: ``column`` if given; else ``prompt``; else instruction (+ input)."""
    if column is not None:
        R.require_column(df, column, "synthesize", "prompt column")
        return pl.col(column).cast(pl.String)
    if "prompt" in df.columns:
        return pl.col("prompt").cast(pl.String)
    if "instruction" in df.columns:
        inp = pl.col("text").cast(pl.String) if "text" in df.columns else pl.lit(None, pl.String)
        return (pl.when(inp.is_null() | (inp.str.strip_chars() == ""))
                .then(pl.col("instruction"))
                .otherwise(pl.concat_str([pl.col("instruction"), pl.lit("\n\n"), inp])))
    if "text" in df.columns:
        return pl.col("text").cast(pl.String)
    raise DataError("synthesize: rows need a `prompt`, `instruction` or `text` column (or set `prompt_column`)")


def generate_responses(df: pl.DataFrame, cfg, ctx: StepContext) -> tuple[list, list, dict[str, Any]]:
    prompts = df.select(prompt_expr(df, cfg.prompt_column).alias("p"))["p"].to_list()
    seed = cfg.seed if cfg.seed is not None else ctx.seed
    llm = None

    def work(key: int, start: int, stop: int):
        nonlocal llm
        llm = llm or cfg.llm()
        gens = llm.generate([p or "" for p in prompts[start:stop]], cfg.sampling(ctx, seed=seed * 1_000 + key))
        part = df.slice(start, stop - start).with_columns(
            pl.Series(cfg.output_column, [g[0].text for g in gens], dtype=pl.String),
            pl.lit("responses").alias("synth_kind"), pl.lit(cfg.model).alias("synth_model"))
        return part, pl.DataFrame(), {"completion_tokens": sum(g[0].completion_tokens for g in gens),
                                      "responses": stop - start}

    kept, rej, stats = run_shards(ctx, df.height, cfg.shard_size, work, prefix="resp")
    from curate.step import merge_numeric
    return kept, rej, merge_numeric(stats)
