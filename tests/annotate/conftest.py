"""Fixtures for the annotation tests: the SMS data and a step runner."""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from curate.step import StepContext

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "pipelines" / "data"


def run_step(step, df: pl.DataFrame):
    return step.process(df, StepContext(step.name, 0, 0, Path("/tmp")))


@pytest.fixture(scope="session")
def sms() -> pl.DataFrame:
    lines = (DATA / "sms_spam_collection.tsv").read_text(encoding="utf-8").splitlines()[1:]
    label, text = zip(*(ln.split("\t", 1) for ln in lines))
    return pl.DataFrame({"id": [f"sms{i}" for i in range(len(text))], "text": list(text), "label": list(label)})
