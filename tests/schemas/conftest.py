"""Fixtures for the output-schema tests: inline rows and small real data frames from the repo's openly licensed samples."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from curate.connectors.inline import InlineSource

DATA = Path(__file__).resolve().parents[2] / "pipelines" / "data"


def rows_source(rows: list[dict[str, Any]], name: str = "rows", **kw: Any) -> InlineSource:
    return InlineSource(rows=rows, name=name, **kw)


@pytest.fixture
def run_pipeline(tmp_path):
    """Run a pipeline in tmp_path; returns the RunResult."""
    from curate import Pipeline

    def run(sources, steps=(), outputs=(), seed: int = 0, sub: str = "a", **kw):
        return Pipeline(name="t", sources=list(sources), steps=list(steps), outputs=list(outputs), seed=seed,
                        workdir=str(tmp_path / sub / ".curate"), out_dir=str(tmp_path / sub / "out"),
                        **kw).run()
    return run


@pytest.fixture(scope="session")
def sms() -> pl.DataFrame:
    """SMS Spam Collection: columns text, label (ham 4827 / spam 747)."""
    return pl.read_csv(DATA / "sms_spam_collection.tsv", separator="\t", quote_char=None) \
        .rename({"Label": "label", "SMS": "text"}).select("text", "label")


@pytest.fixture(scope="session")
def sms_balanced(sms) -> pl.DataFrame:
    """300 ham + 300 spam, distinct texts (seeded)."""
    u = sms.unique("text", keep="first", maintain_order=True)
    return pl.concat([u.filter(pl.col("label") == lab).sample(300, seed=1) for lab in ("ham", "spam")])


@pytest.fixture(scope="session")
def hh_rows() -> list[dict[str, str]]:
    lines = (DATA / "hh_rlhf_harmless_base_test_first300.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(ln) for ln in lines]


@pytest.fixture(scope="session")
def ni_task_path() -> Path:
    return DATA / "ni_tasks" / "task1146_country_capital.json"
