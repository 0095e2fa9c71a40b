"""The dedup family from a pipeline file: nested configs validate, bad keys name the line."""
from __future__ import annotations

import json

import pytest

from curate.errors import CurateError
from curate.pipeline import Pipeline

YAML = """\
name: dedup-yaml
seed: 3
sources:
  - inline:
      rows: {rows}
steps:
  - dedup: {{exact: true, near: {{method: minhash, threshold: 0.8, bands: 32, rows: 4}}, keep: longest}}
  - decontaminate: {{ngram: 3, eval_sets: [{{path: {eval}, name: ev}}]}}
"""


def test_yaml_pipeline_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ev.txt").write_text("the secret eval sentence\n")
    rows = [{"text": "a b c d e f g h i j k l"}, {"text": "A B C D E F G H I J K L"},
            {"text": "contains the secret eval sentence here"}, {"text": "clean row"}]
    f = tmp_path / "p.yaml"
    f.write_text(YAML.format(rows=json.dumps(rows), eval=tmp_path / "ev.txt"))
    res = Pipeline.from_yaml(f).run()
    assert res.data()["text"].to_list() == ["a b c d e f g h i j k l", "clean row"]
    assert sorted(res.rejects()["reason"]) == ["contamination", "exact_duplicate"]


def test_yaml_bad_key_names_line(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text(YAML.format(rows="[]", eval="x").replace("threshold: 0.8", "treshold: 0.8"))
    with pytest.raises(CurateError) as e:
        Pipeline.from_yaml(f)
    assert "treshold" in str(e.value) and ":7" in str(e.value)
