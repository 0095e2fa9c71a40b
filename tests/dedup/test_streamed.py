"""The streamed dedup (``Dedup.process_table``: the table read part by part, no texts held)
decides exactly what the whole-frame path (``Dedup.process``) decides: same kept rows, same
rejected rows with the same reasons, details, ``duplicate_of`` and similarities, same stats, on a
generated corpus with exact and edited copies, for every keep policy and verify mode."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from curate import Pipeline
from curate.cache import read_entry
from curate.steps.dedup import streamed
from curate.steps.dedup.step import Dedup

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from _gen import write_corpus  # noqa: E402


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """6k generated documents (2 % exact, 8 % edited copies) with a title, a score (nulls and
    NaN included) and some null, empty and whitespace-variant texts, as Parquet."""
    d = tmp_path_factory.mktemp("streamed")
    df = pl.read_ndjson(write_corpus(d / "docs.jsonl", 6000))
    rng = np.random.default_rng(3)
    n = df.height
    score = rng.random(n)
    score[rng.random(n) < 0.05] = np.nan
    text = df["text"].to_list()
    for i in rng.choice(n, 40, replace=False):
        text[i] = None if i % 3 == 0 else ("" if i % 3 == 1 else "  " + text[i - 1].upper() + " \n")
    df = pl.DataFrame({"text": text, "title": [f"t{i % 7}" for i in range(n)],
                       "score": pl.Series(score).set(pl.Series(rng.random(n) < 0.05), None)})
    path = d / "docs.parquet"
    df.write_parquet(path)
    return path


# streamed modes: "memory" (small tables: every signature and shingle kept from the scan),
# "reread" (the candidate rows re-read at once) and "blocks" ((part, part) blocks, LRU evictions,
# sparse rows in chunks), each with several key-range partitions
MODES = {"memory": {}, "reread": {"_CACHE_BYTES": 4 << 20},
         "blocks": {"_CACHE_BYTES": 1 << 20, "_ALL_BYTES": 1 << 10}}


def _run(path: Path, tmp: Path, dedup: dict, streamed_on: bool, monkeypatch, mode: str = "blocks"):
    with monkeypatch.context() as m:
        if not streamed_on:
            m.setattr(Dedup, "process_table", lambda self, table, ctx: None)
        else:
            m.setattr(streamed, "_PART_KEYS", 20_000)          # several key-range partitions
            for name, value in MODES[mode].items():
                m.setattr(streamed, name, value)
            m.setattr(streamed, "_DENSE", 8)                   # dense and sparse (part, part)
            m.setattr(streamed, "_SPARSE_ROWS", 40)
        label = f"s{mode}" if streamed_on else "f"
        p = Pipeline(name="streamed", sources=[{"parquet": {"path": str(path), "name": "docs"}}],
                     steps=[{"dedup": dedup}], workdir=str(tmp / f"w{label}"), out_dir=str(tmp / f"o{label}"),
                     batch_size=700)
        res = p.run()
    d = Path(res.final_path)
    stats = next(r.extra for r in res.reports if r.name == "dedup")
    return read_entry(d, "kept"), read_entry(d, "rejected"), _no_seconds(stats)


def _no_seconds(d):
    return {k: _no_seconds(v) for k, v in d.items() if "seconds" not in k} if isinstance(d, dict) else d


CONFIGS = [
    {"exact": True, "near": {"threshold": 0.8}},
    {"exact": True, "keep": "longest", "near": {"threshold": 0.7}},
    {"exact": True, "keep": "score", "score_column": "score", "near": {"threshold": 0.8}},
    {"exact": False, "near": {"threshold": 0.8, "verify": "signature"}},
    {"exact": True, "near": {"threshold": 0.75, "verify": "none", "ngram": 3}},
    {"exact": True, "columns": ["title", "text"], "near": {"threshold": 0.8}},
    {"exact": True, "near": {"threshold": 0.6, "unit": "char", "ngram": 8, "max_bucket_pairs": 2}},
    {"exact": True},
    {"exact": True, "normalize": {"lowercase": False, "collapse_whitespace": False}},
]


@pytest.fixture(scope="module")
def whole_frame(corpus, tmp_path_factory):
    """The whole-frame path's result per configuration (computed once)."""
    done: dict[int, tuple] = {}

    def get(i: int):
        if i not in done:
            with pytest.MonkeyPatch.context() as m:
                done[i] = _run(corpus, tmp_path_factory.mktemp(f"whole{i}"), CONFIGS[i], False, m)
        return done[i]
    return get


# every configuration in the "blocks" mode; those with a near stage in the other modes too
CASES = [(i, m) for i, c in enumerate(CONFIGS) for m in MODES if m == "blocks" or c.get("near")]


@pytest.mark.parametrize("i, mode", CASES, ids=[f"{i}-{m}" for i, m in CASES])
def test_streamed_equals_whole_frame(corpus, tmp_path, monkeypatch, whole_frame, i, mode):
    dedup = CONFIGS[i]
    reads, parts = [], []
    monkeypatch.setattr(streamed._Rows, "_read", lambda self, rows, f=streamed._Rows._read: (
        reads.append(len(rows)), f(self, rows))[1])
    monkeypatch.setattr(streamed._Rows, "_part", lambda self, p, f=streamed._Rows._part: (
        parts.append(p), f(self, p))[1])
    k1, r1, s1 = _run(corpus, tmp_path, dedup, True, monkeypatch, mode)
    k2, r2, s2 = whole_frame(i)
    assert r2.height > 100                     # the corpus has work for every configuration
    assert k1.equals(k2)
    assert r1.equals(r2)
    assert s1 == s2
    if dedup.get("near") is not None:          # the mode asked for is the one taken
        assert {"memory": not reads and not parts, "reread": reads and not parts,
                "blocks": parts}[mode]


def test_streamed_path_is_taken_and_holds_no_text(corpus, tmp_path, monkeypatch):
    """The engine hands dedup the table (process is not called) and the spill folder is gone."""
    def boom(self, df, ctx):
        raise AssertionError("whole-frame path used")
    monkeypatch.setattr(Dedup, "process", boom)
    p = Pipeline(name="streamed", sources=[{"parquet": {"path": str(corpus), "name": "docs"}}],
                 steps=[{"dedup": {"near": {"threshold": 0.8}}}], workdir=str(tmp_path / "w"),
                 out_dir=str(tmp_path / "o"), batch_size=1000)
    res = p.run()
    rep = next(r for r in res.reports if r.name == "dedup")
    assert rep.rows_in == rep.rows_out + rep.rows_rejected and rep.rows_rejected > 100
    assert not list((tmp_path / "w").rglob("dedup-*"))


def test_semantic_keeps_the_whole_frame_path():
    assert not streamed.supported(Dedup(semantic={"threshold": 0.9}).config)
    assert not streamed.supported(Dedup(near={"backend": "numpy"}).config)
    assert streamed.supported(Dedup(near={"threshold": 0.8}).config)


def test_show_states_the_memory_model():
    from typer.testing import CliRunner

    from curate.cli import app
    out = CliRunner().invoke(app, ["show", "dedup"], env={"COLUMNS": "200"}).output
    assert "memory:" in out and "never held" in out and "band keys spilled to disk" in out
    out = CliRunner().invoke(app, ["show", "split"], env={"COLUMNS": "200"}).output
    assert "memory:" in out


EDGE_ROWS = {
    "one_row": [{"text": "only one"}],
    "all_unique": [{"text": f"doc number {i} " + "x " * i} for i in range(30)],
    "all_null": [{"text": None}, {"text": None}, {"text": ""}, {"text": "a"}],
    "all_same": [{"text": "same words here ok"}] * 5 + [{"text": "Same  words here OK "}],
}


@pytest.mark.parametrize("name", list(EDGE_ROWS))
def test_edge_tables_match(run_steps, monkeypatch, name):
    rows = EDGE_ROWS[name]
    got = []
    for on in (True, False):
        with monkeypatch.context() as m:
            if not on:
                m.setattr(Dedup, "process_table", lambda self, table, ctx: None)
            res = run_steps(rows, [Dedup(near={"threshold": 0.5, "ngram": 2})], name=f"{name}{on}")
        rep = next(r for r in res.reports if r.name == "dedup")
        got.append((res.data(), res.rejects(), _no_seconds(rep.extra)))
    (k1, r1, s1), (k2, r2, s2) = got
    assert k1.equals(k2) and s1 == s2
    assert (r1 is None and r2 is None) or r1.drop("run_id", strict=False).equals(r2.drop("run_id", strict=False))
