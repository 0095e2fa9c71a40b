"""`executor: ray` and the `ray:` block in pipeline files, and `curate build --executor/--address`."""
from __future__ import annotations

import pytest
import yaml

from curate.errors import PipelineErrors
from curate.pipeline import Pipeline, load_yaml


def _file(tmp_path, **top):
    doc = {"name": "cfg", "sources": [{"inline": {"rows": [{"text": "a b c d"}, {"text": "e f g h"}]}}],
           "steps": [{"clean": {"min_words": 2}}], **top}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_executor_and_ray_block_validate(tmp_path):
    p = load_yaml(_file(tmp_path, executor="ray", ray={
        "address": "127.0.0.1:6379", "steps": {"augment": {"num_gpus": 1, "actors": 4}}}))
    assert p.executor == "ray" and p.ray.address == "127.0.0.1:6379"
    assert p.ray.for_step("augment", "augment").num_gpus == 1
    assert p.ray.for_step("clean", "clean").actors is None
    assert type(p._engine_class()).__name__ == "type" and p._engine_class().__name__ == "RayEngine"
    assert Pipeline(sources=[{"inline": {"rows": [{"text": "x"}]}}]).ray.address is None


def test_bad_executor_and_ray_keys_name_the_line(tmp_path):
    with pytest.raises(PipelineErrors) as e:
        load_yaml(_file(tmp_path, executor="spark"))
    assert "executor" in str(e.value) and "p.yaml:" in str(e.value)
    with pytest.raises(PipelineErrors) as e:
        load_yaml(_file(tmp_path, executor="ray", ray={"steps": {"clean": {"num_gpu": 1}}}))
    assert "num_gpu" in str(e.value)


def test_cli_build_with_executor_ray(tmp_path, monkeypatch, ray_cluster):
    """`curate build --executor ray --address ...` runs on Ray (here: joins the session's Ray)."""
    import json

    from typer.testing import CliRunner

    from curate.cli import app
    monkeypatch.chdir(tmp_path)
    path = _file(tmp_path, outputs=[{"jsonl": {"path": "out/x.jsonl"}}])
    res = CliRunner().invoke(app, ["build", str(path), "--quiet", "--no-report",
                                   "--executor", "ray", "--address", ray_cluster])
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "out" / "cfg" / "manifest.json").read_text())
    assert m["executor"] == "ray" and m["steps"][0]["rows_out"] == 2
    assert len((tmp_path / "out" / "x.jsonl").read_text().splitlines()) == 2
    res = CliRunner().invoke(app, ["build", str(path), "--quiet", "--executor", "dask"])
    assert res.exit_code == 2 and "local or ray" in res.output


def test_step_error_in_a_ray_task_is_the_local_error(tmp_path, ray_cluster):
    """A step that fails inside a Ray task raises the error the local engine raises, and the run
    leaves a failed manifest."""
    from curate.errors import DataError
    msgs = []
    for ex in ("local", "ray"):
        p = Pipeline(name="err", sources=[{"inline": {"rows": [{"text": "a b c d"}]}}],
                     steps=[{"clean": {"columns": ["nope"]}}], executor=ex,
                     workdir=str(tmp_path / ex / "w"), out_dir=str(tmp_path / ex / "out"))
        with pytest.raises(DataError) as e:
            p.run()
        msgs.append(str(e.value))
        assert e.value.result.manifest["status"] == "failed"
    assert msgs[0] == msgs[1] and "'nope'" in msgs[0]
