"""Fixtures for the file-connector tests: write input files, run one source through the engine."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import polars as pl
import pytest

from curate import Pipeline


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str | bytes], Path]:
    """write(name, content) -> path; str content is written as UTF-8."""
    def _write(name: str, content: str | bytes) -> Path:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content.encode() if isinstance(content, str) else content)
        return p
    return _write


@pytest.fixture
def run_source(tmp_path: Path) -> Callable[..., Any]:
    """run_source(kind, outputs=None, **config) -> RunResult of a pipeline with that one source."""
    counter = iter(range(1000))

    def _run(kind: str, outputs: list | None = None, **config: Any):
        n = next(counter)
        config = {k: (str(v) if isinstance(v, Path) else v) for k, v in config.items()}
        p = Pipeline(name=f"t{n}", sources=[{kind: config}], outputs=outputs or [],
                     workdir=str(tmp_path / ".curate"), out_dir=str(tmp_path / f"out{n}"))
        return p.run()
    return _run


@pytest.fixture
def by_locator() -> Callable[[pl.DataFrame], dict[str, tuple[str, str]]]:
    """by_locator(rejects) -> {locator: (reason, detail)}."""
    def _f(rej: pl.DataFrame) -> dict[str, tuple[str, str]]:
        return {r["source"]: (r["reason"], r["detail"]) for r in rej.iter_rows(named=True)}
    return _f
