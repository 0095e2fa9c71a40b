"""Labelling functions loaded by file path in the weak-supervision tests."""
import polars as pl


def has_digits(text: str):
    return "spam" if any(ch.isdigit() for ch in text) else None


def batched_question(df: pl.DataFrame):
    return df.select(pl.when(pl.col("text").str.ends_with("?")).then(pl.lit("ham"))).to_series().to_list()


def broken(text: str):
    raise RuntimeError("boom")
