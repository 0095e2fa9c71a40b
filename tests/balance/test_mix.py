"""mix: examples-proportional (with cap), temperature and equal task mixing."""
from __future__ import annotations

import polars as pl
import pytest

from curate.errors import DataError
from curate.steps.mix import allocate, mixing_rates


def rows() -> list[dict]:
    sizes = {"big": 100, "mid": 20, "small": 4}
    return [{"text": f"{t} {i}", "task": t} for t, n in sizes.items() for i in range(n)]


def test_rates():
    counts = {"big": 100, "mid": 20, "small": 4}
    assert mixing_rates(counts, "proportional", None, 1)["big"] == pytest.approx(100 / 124)
    capped = mixing_rates(counts, "proportional", 20, 1)
    assert capped["big"] == pytest.approx(20 / 44) and capped["mid"] == pytest.approx(20 / 44)
    hot = mixing_rates(counts, "temperature", None, 2.0)
    assert hot["big"] == pytest.approx(10 / (10 + 20 ** 0.5 + 2))
    assert mixing_rates(counts, "temperature", None, 1.0) == pytest.approx(mixing_rates(counts, "proportional", None, 1))
    assert allocate({"a": 0.5, "b": 0.25, "c": 0.25}, 7) == {"a": 3, "b": 2, "c": 2}


def test_proportional_with_cap_downsamples_and_rejects(run_rows):
    res = run_rows(rows(), [{"mix": {"cap": 20}}])
    df, rej = res.data(), res.rejects()
    st = res.manifest["steps"][0]["stats"]
    assert st["total"] == 44
    assert sum(st["after"].values()) == 44 and df.height == 44
    assert df.filter(pl.col("task") == "small").height == st["after"]["small"]
    assert set(rej["reason"]) == {"mix_downsampled"}
    assert df.height + rej.height - res.manifest["steps"][0]["rows_created"] == 124


def test_equal_mixing_upsamples_small_tasks_with_copies(run_rows):
    res = run_rows(rows(), [{"mix": {"method": "equal", "total": 60}}])
    df = res.data()
    assert df.group_by("task").len().sort("task")["len"].to_list() == [20, 20, 20]
    copies = df.filter(pl.col("parent_id").is_not_null())
    assert copies.height == 16 and (copies["task"] == "small").all()
    assert copies["id"].str.contains(r"-mx\d+$").all()


def test_missing_task_column(run_rows):
    with pytest.raises(DataError, match="task column 'task' not found"):
        run_rows([{"text": "a"}], [{"mix": {}}])
