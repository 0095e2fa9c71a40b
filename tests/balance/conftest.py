"""Fixtures for balance/split/augment tests: inline rows and small real datasets."""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest


DATA = Path(__file__).resolve().parents[2] / "pipelines" / "data"


def read_sms(n: int | None = None, seed: int = 0) -> pl.DataFrame:
    """The SMS spam collection (split on the first tab only), optionally a stratified sample."""
    lines = (DATA / "sms_spam_collection.tsv").read_text(encoding="utf-8").splitlines()[1:]
    label, text = zip(*(ln.split("\t", 1) for ln in lines))
    df = pl.DataFrame({"text": list(text), "label": list(label)})
    if n is not None:
        frac = n / df.height
        df = pl.concat([g.sample(fraction=frac, seed=seed) for _, g in df.group_by("label", maintain_order=True)])
    return df


@pytest.fixture
def run_rows(tmp_path):
    """Run a pipeline over inline rows: ``run_rows(rows, steps) -> RunResult``."""
    from curate import Pipeline

    def run(rows, steps, seed: int = 7, name: str = "t"):
        p = Pipeline(name=name, seed=seed, sources=[{"inline": {"rows": rows}}], steps=steps,
                     workdir=str(tmp_path / name / ".curate"), out_dir=str(tmp_path / name / "out"))
        return p.run()
    return run


@pytest.fixture(scope="session")
def sms() -> pl.DataFrame:
    return read_sms()
