"""Pipeline files: every invalid input is an error naming the file, the line and the key path."""
from __future__ import annotations

import json
import textwrap

import pytest

from curate.errors import CurateError, PipelineErrors, PipelineFileError
from curate.pipeline import Pipeline, json_schema, load_yaml

GOOD = """\
name: demo
seed: 7
sources:
  - t_rows: {n: 10}
steps:
  - t_minlen:
      min_chars: 3
      ratio: 0.5
outputs: []
"""


def write(tmp_path, text: str, name: str = "p.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def errors_of(path) -> str:
    with pytest.raises((PipelineErrors, PipelineFileError)) as e:
        load_yaml(path)
    return str(e.value)


def test_good_file_loads(tmp_path):
    p = load_yaml(write(tmp_path, GOOD))
    assert p.name == "demo" and p.seed == 7
    assert [s.name for s in p.steps] == ["t_minlen"]
    assert p.steps[0].config.min_chars == 3


def test_out_of_range_names_file_line_and_key(tmp_path):
    path = write(tmp_path, GOOD.replace("ratio: 0.5", "ratio: 1.5"))
    msg = errors_of(path)
    assert msg == f"{path}:8 steps[0].t_minlen.ratio: must be between 0 and 1"


def test_wrong_type(tmp_path):
    path = write(tmp_path, GOOD.replace("min_chars: 3", "min_chars: three"))
    msg = errors_of(path)
    assert f"{path}:7 steps[0].t_minlen.min_chars:" in msg and "integer" in msg


def test_unknown_step_suggests_close_name(tmp_path):
    path = write(tmp_path, GOOD.replace("t_minlen:", "t_minlenn:"))
    msg = errors_of(path)
    assert f"{path}:6 steps[0].t_minlenn: unknown step 't_minlenn'; did you mean 't_minlen'?" in msg


def test_unknown_key_in_step(tmp_path):
    path = write(tmp_path, GOOD.replace("ratio: 0.5", "ration: 0.5"))
    msg = errors_of(path)
    assert f"{path}:8 steps[0].t_minlen.ration: unknown key; did you mean 'ratio'?" in msg


def test_unknown_top_level_key_and_several_errors_at_once(tmp_path):
    path = write(tmp_path, GOOD.replace("seed: 7", "seed: 7\nsede: 3").replace("ratio: 0.5", "ratio: -1"))
    with pytest.raises(PipelineErrors) as e:
        load_yaml(path)
    msg = str(e.value)
    assert f"{path}:3 sede: unknown key" in msg


def test_missing_required_key(tmp_path):
    path = write(tmp_path, GOOD.replace("name: demo\n", ""))
    assert "name: required key is missing" in errors_of(path)


def test_step_must_be_single_key_mapping(tmp_path):
    path = write(tmp_path, GOOD.replace("  - t_minlen:\n", "  - t_minlen: {}\n    t_rows:\n"))
    assert "exactly one key" in errors_of(path)


def test_invalid_yaml_reports_line(tmp_path):
    path = write(tmp_path, "name: x\nsources: [\n  - a: 1\n")
    msg = errors_of(path)
    assert str(path) in msg and "invalid YAML" in msg


def test_duplicate_key_is_an_error(tmp_path):
    path = write(tmp_path, GOOD.replace("seed: 7", "seed: 7\nseed: 8"))
    assert f"{path}:3 seed: duplicate key" in errors_of(path)


def test_missing_env_var_names_it(tmp_path, monkeypatch):
    monkeypatch.delenv("CURATE_NOPE", raising=False)
    path = write(tmp_path, GOOD.replace("- t_rows: {n: 10}", "- t_rows: {n: 10, name: '${env:CURATE_NOPE}'}"))
    msg = errors_of(path)
    assert "CURATE_NOPE" in msg and "sources[0].t_rows.name" in msg and f"{path}:4" in msg


def test_env_var_resolves_at_run_time(tmp_path, monkeypatch):
    monkeypatch.setenv("CURATE_SRC_NAME", "fromenv")
    path = write(tmp_path, GOOD.replace("- t_rows: {n: 10}", "- t_rows: {n: 10, name: '${env:CURATE_SRC_NAME}'}"))
    p = load_yaml(path)
    assert p.sources[0].origin == "fromenv"
    assert p.sources[0].raw_config["name"] == "${env:CURATE_SRC_NAME}"


def test_missing_file():
    with pytest.raises(PipelineFileError, match="pipeline file not found"):
        load_yaml("does/not/exist.yaml")


def test_python_api_errors_use_key_paths():
    with pytest.raises(PipelineErrors, match=r"steps\[0\]\.t_minlen\.ratio: must be between 0 and 1"):
        Pipeline(name="x", sources=[{"t_rows": {"n": 1}}], steps=[{"t_minlen": {"ratio": 2}}])


def test_duplicate_source_names_rejected():
    with pytest.raises(CurateError, match="used twice"):
        Pipeline(name="x", sources=[{"t_rows": {"n": 1, "name": "a"}}, {"t_rows": {"n": 1, "name": "a"}}])


def test_unnamed_sources_of_one_kind_get_numbered():
    p = Pipeline(name="x", sources=[{"t_rows": {"n": 1}}, {"t_rows": {"n": 2}}])
    assert [s.origin for s in p.sources] == ["t_rows1", "t_rows2"]


def test_json_schema_lists_every_registered_component():
    schema = json_schema()
    steps = schema["properties"]["steps"]["items"]["oneOf"]
    names = {next(iter(v["properties"])) for v in steps}
    assert {"t_minlen", "t_slow_upper"} <= names
    assert "step:t_minlen" in schema["$defs"]
    json.dumps(schema)  # serialisable
