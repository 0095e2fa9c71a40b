"""File outputs (jsonl, csv, parquet; gzip; one file per split) write the final table part by
part (``write_stream``), never as one frame: jsonl and csv give the bytes the whole-table
``write`` gives, Parquet the same rows; the manifest's split stats are the same too."""
from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from curate import Pipeline
from curate.cache import read_entry
from curate.connectors.files import outputs
from curate.registry import get
from curate.sink import Sink


@pytest.fixture(scope="module")
def rows(tmp_path_factory) -> Path:
    rng = np.random.default_rng(2)
    n = 1300
    label = rng.choice(["a", "b", "c"], n).astype(object)
    label[rng.random(n) < 0.02] = None
    df = pl.DataFrame({"text": [f"row {i} é, \"quoted\"\nline" if i % 7 == 0 else f"row {i}" for i in range(n)],
                       "label": list(label),
                       "tags": [[f"t{i % 3}", "x"] if i % 4 else None for i in range(n)],
                       "score": [None if i % 11 == 0 else float(i) / 3 for i in range(n)]})
    path = tmp_path_factory.mktemp("stream") / "rows.parquet"
    df.write_parquet(path)
    return path


def _read(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.endswith(".gz") else data


def _run_streamed(p: Pipeline, monkeypatch):
    """Run ``p`` with the whole-table ``Sink.write`` made to fail (the outputs must stream)."""
    def whole(self, df, seed):
        raise AssertionError("the whole-table path was used")
    with monkeypatch.context() as m:
        m.setattr(Sink, "write", whole)
        return p.run()


CASES = [("jsonl", "out.jsonl"), ("jsonl", "out.jsonl.gz"), ("csv", "out.csv"), ("csv", "out.csv.gz"),
         ("parquet", "out.parquet")]


@pytest.mark.parametrize("behind", [False, True], ids=["inline", "thread"])
@pytest.mark.parametrize("split", [True, False], ids=["split_files", "one_file"])
@pytest.mark.parametrize("fmt, name", CASES, ids=[c[1] for c in CASES])
def test_streamed_output_equals_whole_table_write(rows, tmp_path, monkeypatch, fmt, name, split, behind):
    if behind:              # every part written, compressed and hashed on the writer thread
        monkeypatch.setattr(outputs, "BEHIND_BYTES", 1)
    out = {fmt: {"path": str(tmp_path / "stream" / name), "split_files": split}}
    p = Pipeline(name="stream", sources=[{"parquet": {"path": str(rows), "name": "rows"}}],
                 steps=[{"split": {"stratify": None}}],
                 outputs=[out], workdir=str(tmp_path / "w"), out_dir=str(tmp_path / "o"), batch_size=200)
    res = _run_streamed(p, monkeypatch)
    rep = next(r for r in res.reports if r.kind == "output")
    # the same table written whole, by the same output type
    final = read_entry(Path(res.final_path), "kept")
    assert final.height == 1300
    ref_cfg = {**out[fmt], "path": str(tmp_path / "whole" / name)}
    sink = get("output", fmt)(ref_cfg)
    files = sink.write(sink.select(final), 0)
    streamed = sorted(tmp_path.joinpath("stream").iterdir())
    assert [f.name for f in streamed] == sorted(f.name for f in files)
    assert len(streamed) == (3 if split else 1)
    for f in streamed:
        ref = tmp_path / "whole" / f.name
        if fmt == "parquet":
            assert pl.read_parquet(f).equals(pl.read_parquet(ref))
        else:                 # gzip included: the compressed bytes are the same
            assert f.read_bytes() == ref.read_bytes() and len(_read(f)) > 1000
    want = {k: {**v, "files": [x.replace("/whole/", "/stream/") for x in v["files"]]}
            for k, v in sink.stats.get("splits", {}).items()}
    assert rep.extra.get("splits", {}) == want and rep.rows_in == 1300
    # jsonl/csv files are hashed while written: the manifest's digests are those of the bytes
    recorded = {f["path"]: f["sha256"] for f in res.manifest["outputs"][0]["files"]}
    assert recorded == {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in streamed}


@pytest.mark.parametrize("fmt, name", CASES, ids=[c[1] for c in CASES])
def test_streamed_empty_table_writes_the_empty_file(tmp_path, fmt, name):
    src = tmp_path / "one.jsonl"
    src.write_text('{"text": "only"}\n')
    p = Pipeline(name="empty", sources=[{"jsonl": {"path": str(src)}}],
                 steps=[{"clean": {"min_words": 5}}],
                 outputs=[{fmt: {"path": str(tmp_path / "stream" / name)}}],
                 workdir=str(tmp_path / "w"), out_dir=str(tmp_path / "o"))
    res = p.run()
    f = tmp_path / "stream" / name
    final = read_entry(Path(res.final_path), "kept")
    assert final.height == 0
    sink = get("output", fmt)({"path": str(tmp_path / "whole" / name)})
    ref = sink.write(sink.select(final), 0)[0]
    if fmt == "parquet":
        assert pl.read_parquet(f).height == 0 and pl.read_parquet(f).columns == pl.read_parquet(ref).columns
    else:
        assert _read(f) == _read(ref)


@pytest.fixture(scope="module")
def sft_rows(tmp_path_factory) -> Path:
    n = 900
    df = pl.DataFrame({"instruction": [f"Answer question {i}" for i in range(n)],
                       "input": [None if i % 3 else f"context {i}" for i in range(n)],
                       "output": [f"answer {i} ✓" for i in range(n)], "label": ["a", "b", "c"] * (n // 3)})
    path = tmp_path_factory.mktemp("sft") / "sft.parquet"
    df.write_parquet(path)
    return path


@pytest.mark.parametrize("fmt", ["chat", "alpaca"])
@pytest.mark.parametrize("split", [True, False], ids=["split_files", "one_file"])
def test_sft_outputs_stream_the_same_bytes(sft_rows, tmp_path, monkeypatch, fmt, split):
    extra = {"system": "Be brief."} if fmt == "chat" else {}
    out = {fmt: {"path": str(tmp_path / "stream" / "sft.jsonl"), "split_files": split,
                 "extra_columns": ["label"], **extra}}
    p = Pipeline(name="sft", sources=[{"parquet": {"path": str(sft_rows), "name": "sft"}}],
                 steps=[{"split": {"stratify": "label"}}], outputs=[out],
                 workdir=str(tmp_path / "w"), out_dir=str(tmp_path / "o"), batch_size=150)
    res = _run_streamed(p, monkeypatch)
    rep = next(r for r in res.reports if r.kind == "output")
    final = read_entry(Path(res.final_path), "kept")
    sink = get("output", fmt)({**out[fmt], "path": str(tmp_path / "whole" / "sft.jsonl")})
    files = sink.write(sink.select(final), 0)
    streamed = sorted(tmp_path.joinpath("stream").iterdir())
    assert [f.name for f in streamed] == sorted(f.name for f in files) and len(streamed) == (3 if split else 1)
    for f in streamed:
        assert f.read_bytes() == (tmp_path / "whole" / f.name).read_bytes()
    assert rep.rows_in == 900 and bool(rep.extra.get("splits")) == split


def test_sft_stream_error_names_the_row_of_the_file(tmp_path):
    """An empty output in a later part is reported with its row number in the whole file."""
    n = 500
    src = tmp_path / "rows.jsonl"
    src.write_text("".join(f'{{"instruction": "q{i}", "output": "{"" if i == 420 else f"a{i}"}"}}\n'
                           for i in range(n)))
    p = Pipeline(name="bad", sources=[{"jsonl": {"path": str(src)}}], steps=[],
                 outputs=[{"alpaca": {"path": str(tmp_path / "out.jsonl")}}],
                 workdir=str(tmp_path / "w"), out_dir=str(tmp_path / "o"), batch_size=100)
    with pytest.raises(Exception, match="row 420 has an empty output"):
        p.run()
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("split", [True, False], ids=["split_files", "one_file"])
def test_hf_dataset_streams_the_same_dataset(rows, tmp_path, monkeypatch, split):
    from datasets import load_from_disk

    out = {"hf_dataset": {"dir": str(tmp_path / "stream" / "ds"), "split_files": split}}
    p = Pipeline(name="hf", sources=[{"parquet": {"path": str(rows), "name": "rows"}}],
                 steps=[{"split": {"stratify": None}}], outputs=[out],
                 workdir=str(tmp_path / "w"), out_dir=str(tmp_path / "o"), batch_size=200)
    res = _run_streamed(p, monkeypatch)
    rep = next(r for r in res.reports if r.kind == "output")
    final = read_entry(Path(res.final_path), "kept")
    sink = get("output", "hf_dataset")({**out["hf_dataset"], "dir": str(tmp_path / "whole" / "ds")})
    sink.write(sink.select(final), 0)
    streamed = sorted(tmp_path.joinpath("stream").iterdir())
    assert [d.name for d in streamed] == sorted(d.name for d in tmp_path.joinpath("whole").iterdir())
    assert len(streamed) == (3 if split else 1)
    for d in streamed:
        a, b = load_from_disk(str(d)), load_from_disk(str(tmp_path / "whole" / d.name))
        assert a.features == b.features and a.to_polars().equals(b.to_polars()) and len(a) > 50
    want = {k: {**v, "files": [x.replace("/whole/", "/stream/") for x in v["files"]]}
            for k, v in sink.stats.get("splits", {}).items()}
    assert rep.extra.get("splits", {}) == want and rep.rows_in == 1300


@pytest.mark.parametrize("behind", [False, True], ids=["inline", "thread"])
def test_failed_part_write_leaves_the_old_file(rows, tmp_path, monkeypatch, behind):
    """A write that fails on a later part (here: the disk fills on the third) raises one error
    naming the target, wherever the part was written, and the previous file stays whole."""
    from curate.errors import CurateError
    target = tmp_path / "stream" / "out.jsonl"
    target.parent.mkdir()
    target.write_text('{"text": "previous"}\n')
    if behind:
        monkeypatch.setattr(outputs, "BEHIND_BYTES", 1)
    calls = []
    real = outputs._Sha256Writer.write

    def write(self, data):
        calls.append(len(data))
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real(self, data)
    monkeypatch.setattr(outputs._Sha256Writer, "write", write)
    p = Pipeline(name="fail", sources=[{"parquet": {"path": str(rows), "name": "rows"}}],
                 outputs=[{"jsonl": {"path": str(target)}}], workdir=str(tmp_path / "w"),
                 out_dir=str(tmp_path / "o"), batch_size=200)
    with pytest.raises(CurateError) as e:
        p.run()
    assert str(target) in str(e.value) and "disk full" in str(e.value) and len(calls) == 3
    assert target.read_text() == '{"text": "previous"}\n'
    assert sorted(f.name for f in target.parent.iterdir()) == ["out.jsonl"]
