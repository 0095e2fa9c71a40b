"""Fixtures for the dedup tests: a helper that runs steps over inline rows through the real engine
(so the accounting invariant is enforced)."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def run_steps(tmp_path: Path):
    """Run ``steps`` over ``rows`` through the engine; returns the RunResult."""
    from curate import Pipeline

    def run(rows: list[dict], steps: list, name: str = "dedup-test", **kw):
        p = Pipeline(name=name, sources=[{"inline": {"rows": rows, **kw}}], steps=steps,
                     workdir=str(tmp_path / ".curate"), out_dir=str(tmp_path / "out"))
        return p.run()
    return run
