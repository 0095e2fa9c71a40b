"""kill -9 in the middle of generation, rerun: every row exactly once, and the result equals an
uninterrupted run (shards written as generation proceeds; Self-Instruct's novelty index replayed)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import xxhash

SEEDS = Path(__file__).resolve().parents[2] / "pipelines" / "data" / "self_instruct_seed_tasks.jsonl"
WORDS = "poem story list summary email letter riddle recipe plan review question joke essay tweet".split()
TOPICS = "cats rain trains coffee mountains robots gardens winter oceans chess bread music".split()

SCRIPT = textwrap.dedent('''
    import sys
    import polars as pl
    from curate import Pipeline
    from curate.registry import register_source
    from curate.source import Source, SourceBatch, SourceConfig

    class Cfg(SourceConfig):
        pass

    @register_source("one_row")
    class One(Source):
        Config = Cfg
        def read(self):
            yield SourceBatch(pl.DataFrame({"source": ["one:0"], "x": [1]}))

    url, work = sys.argv[1], sys.argv[2]
    p = Pipeline(name="resume", seed=3, sources=[{"one_row": {}}],
                 steps=[{"synthesize": {"kind": "instructions", "model": "scripted", "backend": "http",
                                        "base_url": url, "n": 14, "seeds": sys.argv[3], "prompts_per_round": 2,
                                        "instances_per_task": 3, "concurrency": 2,
                                        "max_retries": 0}}],
                 workdir=work + "/.curate", out_dir=work + "/out")
    r = p.run()
    print("ROWS", r.data().height)
''')


def answer(prompt: str, j: int) -> str:
    time.sleep(0.03)                      # slow enough to be killed mid-run
    h = xxhash.xxh3_64_intdigest(prompt.encode())
    if prompt.startswith("Come up with a series of tasks"):
        return "\n".join(f"Task {20 + k}: Write a {WORDS[(h >> (4 * k)) % 14]} about {TOPICS[(h >> (4 * k + 2)) % 12]} "
                         f"and {TOPICS[(h >> (4 * k + 8)) % 12]} for a {WORDS[(h >> (4 * k + 16)) % 14]} {h % 97}."
                         for k in range(3))
    if prompt.startswith("Can the following task"):
        return "No"
    return f"generated text {h % 100000}"


def run_script(tmp: Path, url: str, work: Path, kill_after_shards: int | None = None) -> tuple[int, int]:
    script = tmp / "run.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, str(script), url, str(work), str(SEEDS)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if kill_after_shards is None:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        return proc.returncode, -1
    deadline = time.time() + 300
    done = 0
    while time.time() < deadline:
        done = len(list(work.glob(".curate/**/shards/shard-*.done")))
        if done >= kill_after_shards or proc.poll() is not None:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed; make it slower"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return proc.returncode, done


def test_kill_and_resume_gives_every_row_once(tmp_path, scripted_server):
    srv = scripted_server(answer)
    work = tmp_path / "killed"
    rc, done = run_script(tmp_path, srv.url, work, kill_after_shards=2)
    assert rc == -signal.SIGKILL and done >= 2
    shards_before = len(list(work.glob(".curate/**/shards/shard-*.done")))
    requests_before = srv.requests
    run_script(tmp_path, srv.url, work)                                  # resume
    ref = tmp_path / "ref"
    reqs_mid = srv.requests
    run_script(tmp_path, srv.url, ref)                                   # uninterrupted
    resumed_requests, full_requests = reqs_mid - requests_before, srv.requests - reqs_mid
    assert resumed_requests < full_requests                              # finished shards were not redone

    def final(d: Path) -> pl.DataFrame:
        from curate.cache import read_entry
        return read_entry(next(d.glob(".curate/resume/00-synthesize-*")))
    a, b = final(work), final(ref)
    assert a["id"].is_unique().all() and a.height > 14
    assert a.sort("id").equals(b.sort("id"))
    assert a.filter(pl.col("origin") == "self_instruct")["task"].n_unique() == 14
    rej = lambda d: pl.read_ndjson(d / "out" / "rejects.jsonl")  # noqa: E731
    assert rej(work).sort("id").equals(rej(ref).sort("id"))
    assert shards_before >= 2
