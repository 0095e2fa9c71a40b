"""Faults under Ray: a worker killed mid-step is retried and the outputs are the local ones; a
driver killed mid-step leaves finished blocks that a rerun reuses, with nothing lost or repeated."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from curate.executors.ray_executor import FAULTS_ENV
from curate.pipeline import load_yaml

from ._helpers import assert_same_run, make_corpus, write_pipeline

DOC = {
    "name": "faults", "seed": 1, "batch_size": 48,
    "sources": [{"jsonl": {"name": "docs", "path": "{corpus}/part*.jsonl"}}],
    "steps": [
        {"clean": {"min_words": 3}},
        {"dedup": {"near": {"threshold": 0.8, "ngram": 3}}},
    ],
    "outputs": [{"jsonl": {"path": "{out}/all.jsonl"}}],
}


def _doc(corpus: Path) -> dict:
    return json.loads(json.dumps(DOC).replace("{corpus}", str(corpus)))


@pytest.fixture
def small_corpus(tmp_path) -> Path:
    return make_corpus(tmp_path / "corpus", n=120)


@pytest.mark.slow
def test_worker_killed_mid_step_is_retried(tmp_path, small_corpus, ray_cluster, monkeypatch):
    """The first task of the clean step kills its worker (os._exit) once; Ray runs it again and
    the run's rows, rejects and counts are the local run's."""
    doc = _doc(small_corpus)
    local = load_yaml(write_pipeline(doc, tmp_path / "local", "local")).run()
    marker = tmp_path / "died"
    monkeypatch.setenv(FAULTS_ENV, json.dumps({"die_once": {"step": 0, "marker": str(marker)}}))
    ray = load_yaml(write_pipeline(doc, tmp_path / "ray", "ray")).run()
    assert marker.exists(), "the fault did not fire"
    assert_same_run(local, ray)
    assert ray.manifest["steps"][0]["stats"]["ray"]["blocks"] >= 3


DRIVER = """
import sys
from curate.pipeline import load_yaml
load_yaml(sys.argv[1]).run()
"""


@pytest.mark.slow
def test_driver_killed_rerun_resumes_from_finished_blocks(tmp_path, small_corpus, ray_cluster):
    """A driver process (joined to the session's Ray) is SIGKILLed while block 3 of the clean step
    hangs and other blocks have finished; the rerun skips the finished blocks and writes exactly
    the local run's rows."""
    doc = _doc(small_corpus)
    local = load_yaml(write_pipeline(doc, tmp_path / "local", "local")).run()
    path = write_pipeline(doc, tmp_path / "ray", "ray", ray={"address": ray_cluster})
    marker = tmp_path / "paused"
    env = {**os.environ, FAULTS_ENV: json.dumps(
        {"pause": {"step": 0, "block": "b-000003", "marker": str(marker), "seconds": 300}})}
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(path)], env=env, cwd=tmp_path,
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    step_dirs = lambda: list((tmp_path / "ray" / ".curate" / "faults" / "ray").glob("00-clean-*"))  # noqa: E731
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            done = [m for d in step_dirs() for m in d.glob("b-*.json")]
            if marker.exists() and len(done) >= 2:
                break
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            time.sleep(0.2)
        else:
            pytest.fail("the paused block or two finished blocks never appeared")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)      # the driver (its own session)
        proc.wait()
        if marker.exists():                          # the hung worker, if Ray has not ended it yet
            try:
                os.kill(int(marker.read_text()), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
    (folder,) = step_dirs()
    assert not (folder / "meta.json").exists()       # the step did not finish
    finished_before = {m.name for m in folder.glob("b-*.json")}
    assert "b-000003.json" not in finished_before
    again = load_yaml(path).run()
    clean = again.manifest["steps"][0]
    assert clean["stats"]["ray"]["resumed_blocks"] == len(finished_before) >= 2
    assert_same_run(local, again)
    ids = again.data()["id"]
    assert ids.n_unique() == ids.len()
