"""Fixtures for the clean-step tests: inline rows, a runner through the engine and a
tiny tokenizer saved to disk (loaded by path like a real HF name)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from curate.step import StepContext

DATA = Path(__file__).resolve().parents[2] / "pipelines" / "data"


def run_clean(texts: list[str | None], **cfg: Any):
    """Run the clean step directly on a batch; returns the StepResult."""
    from curate.steps.clean import Clean

    df = pl.DataFrame({"id": [f"r{i}" for i in range(len(texts))], "text": texts},
                      schema={"id": pl.String, "text": pl.String})
    return Clean(**cfg).process(df, StepContext("clean", 0, 0, Path("/tmp")))


def reasons(res) -> dict[str, str]:
    """id -> reason of the rejected rows."""
    return dict(res.rejected.select("id", "reason").rows())


def read_sms() -> pl.DataFrame:
    lines = (DATA / "sms_spam_collection.tsv").read_text(encoding="utf-8").splitlines()[1:]
    label, text = zip(*(ln.split("\t", 1) for ln in lines))
    return pl.DataFrame({"text": list(text), "label": list(label)})


@pytest.fixture(scope="session")
def tiny_tok_path(tmp_path_factory) -> str:
    from curate.testing import tiny_tokenizer

    path = tmp_path_factory.mktemp("clean_tok")
    tiny_tokenizer(path)
    return str(path)


@pytest.fixture
def run():
    """``run(texts, **config)`` → StepResult of the clean step on one batch."""
    return run_clean


@pytest.fixture
def rejected_reasons():
    """``rejected_reasons(result)`` → {id: reason}."""
    return reasons


@pytest.fixture(scope="session")
def sms() -> pl.DataFrame:
    return read_sms()
