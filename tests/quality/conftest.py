"""Fixtures for the quality filters: real rows (SMS Spam Collection, hh-rlhf dialogues) and a
helper that runs one step on one batch."""
from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from curate.step import StepContext

DATA = Path(__file__).resolve().parents[2] / "pipelines" / "data"


def frame(texts: list[str | None], **cols) -> pl.DataFrame:
    return pl.DataFrame({"id": [f"r{i}" for i in range(len(texts))], "text": texts, **cols},
                        schema_overrides={"text": pl.String})


def run_step(step, df: pl.DataFrame):
    return step.process(df, StepContext(step.name, 0, 0, Path("/tmp")))


def reasons(res) -> dict[str, str]:
    return dict(res.rejected.select("id", "reason").rows())


@pytest.fixture(scope="session")
def sms() -> pl.DataFrame:
    lines = (DATA / "sms_spam_collection.tsv").read_text(encoding="utf-8").splitlines()[1:]
    label, text = zip(*(ln.split("\t", 1) for ln in lines))
    return pl.DataFrame({"id": [f"sms{i}" for i in range(len(text))], "text": list(text), "label": list(label)})


@pytest.fixture(scope="session")
def hh() -> pl.DataFrame:
    rows = [json.loads(x) for x in (DATA / "hh_rlhf_harmless_base_test_first300.jsonl").read_text(encoding="utf-8").splitlines()]
    return pl.DataFrame({"id": [f"hh{i}" for i in range(len(rows))], "text": [r["chosen"] for r in rows]})
