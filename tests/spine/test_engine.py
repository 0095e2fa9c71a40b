"""The engine: caching, accounting, resume after a kill, outputs, secrets, preflight checks."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest

from curate import Pipeline
from curate.errors import CurateError, StepError

HERE = Path(__file__).parent


def make(tmp_path, steps=None, outputs=None, n=20, **kw):
    return Pipeline(name="t", sources=[{"t_rows": {"n": n}}], steps=steps or [], outputs=outputs or [],
                    workdir=str(tmp_path / ".curate"), out_dir=str(tmp_path / "out"), **kw)


def test_ids_are_content_derived_and_stable(tmp_path):
    a = make(tmp_path / "a").run().data()
    b = make(tmp_path / "b").run().data()
    assert a["id"].to_list() == b["id"].to_list()
    assert a["id"].n_unique() == a.height
    assert a["source"][3] == "t_rows:3" and set(a["origin"]) == {"t_rows"}


def test_second_run_is_fully_cached_and_changing_a_step_reruns_it_and_later(tmp_path):
    steps = [{"t_minlen": {"min_chars": 1}}, {"t_slow_upper": {"counter_file": str(tmp_path / "c.log")}}]
    r1 = make(tmp_path, steps).run()
    assert [x.cached for x in r1.reports] == [False, False, False]
    r2 = make(tmp_path, steps).run()
    assert r2.all_cached and r2.manifest["all_cached"]
    assert r2.data().equals(r1.data())
    steps[0] = {"t_minlen": {"min_chars": 6}}          # "row 10".. are 6 chars: rows 0-9 rejected
    r3 = make(tmp_path, steps).run()
    assert [x.cached for x in r3.reports] == [True, False, False]
    assert r3.reports[1].rows_rejected == 10 and r3.data().height == 10
    assert r3.data()["text"][0] == "ROW 10"


def test_force_recomputes(tmp_path):
    steps = [{"t_minlen": {}}]
    make(tmp_path, steps).run()
    r = make(tmp_path, steps).run(force=True)
    assert not any(x.cached for x in r.reports)


def test_accounting_recorded_for_every_step(tmp_path):
    r = make(tmp_path, [{"t_minlen": {"min_chars": 6}}]).run()
    for s in r.manifest["steps"]:
        assert s["rows_in"] + s["rows_created"] == s["rows_out"] + s["rows_rejected"]
        assert {"config_hash", "input_fingerprint", "seconds", "fingerprint"} <= set(s)
    rej = r.rejects()
    assert rej.height == 10 and set(rej["reason"]) == {"too_short"} and set(rej["step"]) == {"t_minlen"}
    assert r.manifest["seed"] == 0 and "polars" in r.manifest["libraries"]


def test_engine_refuses_a_step_that_loses_rows(tmp_path):
    with pytest.raises(StepError, match="accounting broken: 1 input rows neither kept nor rejected"):
        make(tmp_path, [{"t_lossy": {}}]).run()


def test_apply_to_limits_a_step_to_one_source(tmp_path):
    p = Pipeline(name="t", sources=[{"t_rows": {"n": 12, "name": "a"}}, {"t_rows": {"n": 12, "name": "b"}}],
                 steps=[{"t_minlen": {"min_chars": 6, "apply_to": ["a"]}}],
                 workdir=str(tmp_path / ".c"), out_dir=str(tmp_path / "o"))
    df = p.run().data()
    assert df.filter(pl.col("origin") == "b").height == 12
    assert df.filter(pl.col("origin") == "a").height == 2


def test_outputs_written_with_sha_in_manifest_and_restored_when_deleted(tmp_path):
    out = tmp_path / "res" / "data.jsonl"
    r1 = make(tmp_path, [{"t_minlen": {}}], [{"t_out": {"path": str(out)}}]).run()
    files = r1.manifest["outputs"][0]["files"]
    import hashlib
    assert files[0]["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    r2 = make(tmp_path, [{"t_minlen": {}}], [{"t_out": {"path": str(out)}}]).run()
    assert r2.reports[-1].cached
    out.unlink()
    r3 = make(tmp_path, [{"t_minlen": {}}], [{"t_out": {"path": str(out)}}]).run()
    assert out.exists() and not r3.reports[-1].cached and r3.reports[1].cached
    assert out.read_bytes() == b"".join([]) or len(out.read_text().splitlines()) == 20


def test_duplicate_output_paths_rejected_before_running(tmp_path):
    out = str(tmp_path / "x.jsonl")
    with pytest.raises(CurateError, match=r"outputs\[1\]\.t_out: path .*x\.jsonl is also written by outputs\[0\]"):
        make(tmp_path, [], [{"t_out": {"path": out}}, {"t_out": {"path": out}}]).run()
    assert not (tmp_path / ".curate").exists()


def test_unwritable_output_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("I am a file, not a folder")
    with pytest.raises(CurateError, match=r"output directory .*file/sub is not writable"):
        make(tmp_path, [], [{"t_out": {"path": str(blocker / "sub" / "x.jsonl")}}]).run()


def test_dry_run_runs_nothing(tmp_path):
    log = tmp_path / "c.log"
    r = make(tmp_path, [{"t_slow_upper": {"counter_file": str(log)}}]).run(dry_run=True)
    assert r.planned and not log.exists()
    assert r.reports[-1].extra.get("would_run")


def test_only_recomputes_one_step_and_stops(tmp_path):
    log = tmp_path / "c.log"
    steps = [{"t_minlen": {}}, {"t_slow_upper": {"counter_file": str(log)}}, {"t_minlen": {"min_chars": 2}}]
    make(tmp_path, steps).run()
    n = len(log.read_text().splitlines())
    r = make(tmp_path, steps).run(only="t_slow_upper")
    assert len(log.read_text().splitlines()) == 2 * n
    assert [x.name for x in r.reports] == ["t_rows:t_rows", "t_minlen", "t_slow_upper"]
    assert r.reports[1].cached and not r.reports[2].cached


SCRIPT = textwrap.dedent("""
    import importlib.util, sys
    spec = importlib.util.spec_from_file_location("curate_spine_plugins", sys.argv[1])
    m = importlib.util.module_from_spec(spec); sys.modules["curate_spine_plugins"] = m; spec.loader.exec_module(m)
    from curate import Pipeline
    tmp = sys.argv[2]
    p = Pipeline(name="t", sources=[{"t_rows": {"n": 1000}}],
                 steps=[{"t_slow_upper": {"counter_file": tmp + "/c.log", "kill_after": 4}}],
                 outputs=[{"t_out": {"path": tmp + "/out.jsonl"}}],
                 workdir=tmp + "/.curate", out_dir=tmp + "/out", batch_size=100)
    p.run()
""")


def test_killed_step_resumes_without_loss_or_repeats(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "T_KILL": "1"}
    killed = subprocess.run([sys.executable, str(script), str(HERE / "plugins.py"), str(tmp_path)], env=env)
    assert killed.returncode == 137                      # died in the middle of the step
    log = tmp_path / "c.log"
    assert len(log.read_text().splitlines()) == 4         # 4 of 10 batches done before the kill
    assert not (tmp_path / "out.jsonl").exists()
    env["T_KILL"] = "0"
    subprocess.run([sys.executable, str(script), str(HERE / "plugins.py"), str(tmp_path)], env=env, check=True)
    batches = log.read_text().splitlines()
    assert len(batches) == 10 and len(set(batches)) == 10  # the 4 finished batches were not redone
    rows = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(rows) == 1000 and len({r["id"] for r in rows}) == 1000
    assert sorted(r["text"] for r in rows) == sorted(f"ROW {i}" for i in range(1000))


def test_planted_secret_never_written(tmp_path, monkeypatch, capsys):
    secret = "sk-planted-5ecret-value-123"
    monkeypatch.setenv("CURATE_TEST_SECRET", secret)
    pfile = tmp_path / "p.yaml"
    pfile.write_text(textwrap.dedent(f"""
        name: secret
        sources:
          - t_rows: {{n: 5}}
        steps:
          - t_secret: {{api_key: "${{env:CURATE_TEST_SECRET}}", endpoint: "http://127.0.0.1:9/?k=${{env:CURATE_TEST_SECRET}}"}}
        outputs:
          - t_out: {{path: {tmp_path}/out/data.jsonl}}
        workdir: {tmp_path}/.curate
        out_dir: {tmp_path}/out
    """))
    from typer.testing import CliRunner
    from curate.cli import app
    res = CliRunner().invoke(app, ["build", str(pfile)])
    assert res.exit_code == 0, res.output
    res2 = CliRunner().invoke(app, ["build", str(pfile)])
    assert "cached" in res2.output
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p != pfile]
    assert any(p.name == "manifest.json" for p in written) and len(written) > 5
    for p in written:
        assert secret.encode() not in p.read_bytes(), f"secret leaked into {p}"
    assert secret not in res.output + res2.output + capsys.readouterr().out
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["steps"][0]["config"]["api_key"] == "${env:CURATE_TEST_SECRET}"
