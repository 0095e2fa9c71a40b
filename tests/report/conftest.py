"""Fixtures for the report/explain/inspect tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from ._pipe import pipeline_text


@pytest.fixture
def pipeline_file(tmp_path) -> Path:
    p = tmp_path / "p.yaml"
    p.write_text(pipeline_text(tmp_path))
    return p
