"""Acceptance of the spine: the quickstart builds from a plain clone, outputs validate, reruns cache."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from curate.cli import app

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def clone(tmp_path, monkeypatch):
    """A working directory laid out like a clone: pipelines/ (with its data) next to nothing else."""
    shutil.copytree(REPO / "pipelines", tmp_path / "pipelines")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.slow
def test_quickstart_end_to_end(clone):
    runner = CliRunner()
    res = runner.invoke(app, ["build", "pipelines/quickstart.yaml", "--quiet"])
    assert res.exit_code == 0, res.output
    ni_files = list((clone / "out/quickstart/ni").glob("task*.json"))
    assert len(ni_files) == 1
    task = json.loads(ni_files[0].read_text())
    schema = json.loads((REPO / "schemas/natural_instructions.schema.json").read_text())
    jsonschema.validate(task, schema)
    assert 26 <= len(task["Instances"]) <= 6500
    labels = [i["output"][0] for i in task["Instances"]]
    assert set(labels) == {"ham", "spam"}
    assert abs(labels.count("ham") - labels.count("spam")) <= 0.05 * len(labels)

    dpo_rows = [json.loads(x) for x in (clone / "out/quickstart/dpo.jsonl").read_text().splitlines()]
    assert len(dpo_rows) >= 290
    for r in dpo_rows:
        assert r["prompt"].endswith("\n\nAssistant:") and r["chosen"] and r["rejected"]
        assert r["chosen"] != r["rejected"]
    import datasets
    ds = datasets.load_dataset("json", data_files=str(clone / "out/quickstart/dpo.jsonl"), split="train")
    assert {"prompt", "chosen", "rejected"} <= set(ds.column_names)

    manifest = json.loads((clone / "out/quickstart/manifest.json").read_text())
    for s in manifest["steps"]:
        assert s["rows_in"] + s["rows_created"] == s["rows_out"] + s["rows_rejected"]
    assert manifest["totals"]["rows_read"] == 5574 + 300
    rejects = (clone / "out/quickstart/rejects.jsonl").read_text().splitlines()
    assert len(rejects) == manifest["totals"]["rows_rejected"]

    # second run: every step cached; deleting one output restores it (only it)
    res2 = runner.invoke(app, ["build", "pipelines/quickstart.yaml", "--quiet"])
    assert res2.exit_code == 0 and "every step cached" in res2.output
    before = (clone / "out/quickstart/dpo.jsonl").read_bytes()
    (clone / "out/quickstart/dpo.jsonl").unlink()
    res3 = runner.invoke(app, ["build", "pipelines/quickstart.yaml", "--quiet"])
    assert res3.exit_code == 0 and "every step cached" in res3.output
    assert (clone / "out/quickstart/dpo.jsonl").read_bytes() == before


def test_every_example_pipeline_validates(clone, monkeypatch):
    import re
    runner = CliRunner()
    files = sorted((clone / "pipelines").glob("*.yaml"))
    assert files
    for f in files:
        for var in re.findall(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}", f.read_text()):
            monkeypatch.setenv(var, "placeholder")
        res = runner.invoke(app, ["validate", str(f.relative_to(clone))])
        assert res.exit_code == 0, f"{f.name}: {res.output}"


def test_schema_command_prints_json_schema():
    res = CliRunner().invoke(app, ["schema"])
    assert res.exit_code == 0
    schema = json.loads(res.output)
    names = {next(iter(v["properties"])) for v in schema["properties"]["steps"]["items"]["oneOf"]}
    assert {"clean", "dedup", "balance"} <= names
