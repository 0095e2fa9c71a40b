"""Acceptance: pipelines/self_instruct_tiny.yaml (175 seed tasks → synthesize instructions →
preference pairs → verify → NI task files + DPO JSONL) runs with the tiny model on CPU."""
from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from curate.pipeline import Pipeline

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_self_instruct_tiny_pipeline(tmp_path, monkeypatch, tiny_model):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pipelines").symlink_to(REPO / "pipelines")
    monkeypatch.setenv("CURATE_TINY_MODEL", str(tiny_model))
    p = Pipeline.from_yaml("pipelines/self_instruct_tiny.yaml")
    r = p.run()
    steps = {f"{s['index']}-{s['name']}": s for s in r.manifest["steps"]}
    si, pref, ver = steps["0-synthesize"], steps["1-synthesize"], steps["2-verify"]
    assert si["rows_in"] == 175 and si["stats"]["tasks_emitted"] == 3
    assert si["rows_created"] == si["stats"]["instances"] + si["rows_rejected"]
    assert pref["rows_in"] == 175 + si["stats"]["instances"]
    assert pref["stats"]["prompts"] == si["stats"]["instances"]            # apply_to: self_instruct only
    assert pref["stats"]["pairs"] + sum(pref["stats"]["rejected_by_reason"].values()) == pref["stats"]["prompts"]
    assert set(ver["stats"]["checks"]) == {"format", "label", "length", "novelty"}     # junk: false here
    assert ver["rows_in"] == ver["rows_out"] + ver["rows_rejected"]

    final = r.data()
    instances = final.filter(pl.col("origin") == "self_instruct")
    pairs = final.filter(pl.col("origin") == "preferences")
    ni_files = sorted(Path("out/self_instruct_tiny/ni").glob("task91*.json"))
    assert len(ni_files) == instances["task"].n_unique() >= 1
    task = json.loads(ni_files[0].read_text())
    assert task["Definition"] and task["Instances"] and len(task["Positive Examples"]) == 2
    assert all(i["id"].startswith("task9100-") for i in task["Instances"])
    dpo = [json.loads(x) for x in Path("out/self_instruct_tiny/dpo.jsonl").read_text().splitlines()]
    assert len(dpo) == pairs.height
    for row in dpo:
        assert row["chosen"] != row["rejected"] and row["chosen_score"] - row["rejected_score"] >= 1
    rej = r.rejects()
    assert rej["reason"].null_count() == 0 and set(rej["step"]) <= {"synthesize", "verify"}
    # second run: everything cached, same outputs
    again = Pipeline.from_yaml("pipelines/self_instruct_tiny.yaml").run()
    assert again.all_cached and again.data().equals(final)
