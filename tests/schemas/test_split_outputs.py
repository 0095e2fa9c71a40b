"""Every file output honours the `split` column the same way (curate.sink): one file per split,
named in the manifest; `split_files: false` writes one file."""
from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from curate.sink import split_parts, split_path

from .conftest import rows_source

SPLITS = ("train", "validation", "test")


def test_split_path_names():
    assert split_path("out/x.jsonl", "train") == Path("out/x.train.jsonl")
    assert split_path("out/x.v2.jsonl.gz", "test") == Path("out/x.v2.test.jsonl.gz")
    assert split_path("out/ds", "validation") == Path("out/ds.validation")
    assert split_path("out/x.csv", "a/b c") == Path("out/x.a_b_c.csv")


def test_split_parts_order_and_missing_values():
    df = pl.DataFrame({"x": range(6), "split": ["test", "train", None, "dev", "train", "validation"]})
    parts = split_parts(df, "split")
    assert [s for s, _ in parts] == ["train", "validation", "test", "dev", None]
    assert [p.height for _, p in parts] == [2, 1, 1, 1, 1]
    assert split_parts(df.drop("split"), "split")[0][0] is None


@pytest.fixture
def qa_rows() -> list[dict]:
    return [{"instruction": "Answer the question.", "input": f"question {i}", "output": f"answer {i}",
             "label": "ab"[i % 2], "prompt": f"q{i}", "chosen": f" good {i}", "rejected": f" bad {i}"}
            for i in range(60)]


def _outputs(tmp: Path, **extra) -> list[dict]:
    return [{"jsonl": {"path": str(tmp / "x.jsonl"), **extra}},
            {"parquet": {"path": str(tmp / "x.parquet"), **extra}},
            {"csv": {"path": str(tmp / "x.csv.gz"), **extra}},
            {"chat": {"path": str(tmp / "chat.jsonl"), **extra}},
            {"alpaca": {"path": str(tmp / "alpaca.jsonl"), **extra}},
            {"dpo": {"path": str(tmp / "dpo.jsonl"), **extra}},
            {"hf_dataset": {"dir": str(tmp / "ds"), **extra}}]


def test_every_writer_writes_one_file_per_split(tmp_path, run_pipeline, qa_rows):
    out = tmp_path / "o"
    res = run_pipeline([rows_source(qa_rows)], steps=[{"split": {"test": 0.2, "validation": 0.2}}],
                       outputs=_outputs(out))
    split_of = dict(zip(res.data()["input"], res.data()["split"]))
    for entry in res.manifest["outputs"]:
        st = entry["stats"]["splits"]
        assert list(st) == list(SPLITS), entry["name"]
        assert sum(s["rows"] for s in st.values()) == 60
        assert [f["path"] for f in entry["files"] if "dataset_info" not in f["path"]
                and "state.json" not in f["path"] and "arrow" not in f["path"]] == \
               [f for s in SPLITS for f in st[s]["files"] if "dataset_info" not in f
                and "state.json" not in f and "arrow" not in f]
    for s in SPLITS:
        rows = [json.loads(x) for x in (out / f"x.{s}.jsonl").read_text().splitlines()]
        assert rows and {split_of[r["input"]] for r in rows} == {s}
        assert pl.read_parquet(out / f"x.{s}.parquet")["split"].unique().to_list() == [s]
        assert pl.read_csv(out / f"x.{s}.csv.gz")["split"].unique().to_list() == [s]
        chat = [json.loads(x) for x in (out / f"chat.{s}.jsonl").read_text().splitlines()]
        assert {split_of[c["messages"][0]["content"].split("\n\n")[1]] for c in chat} == {s}
        assert (out / f"alpaca.{s}.jsonl").exists() and (out / f"dpo.{s}.jsonl").exists()
        from datasets import load_from_disk
        assert set(load_from_disk(str(out / f"ds.{s}"))["split"]) == {s}
    assert not (out / "x.jsonl").exists()


def test_split_files_off_and_no_split_column(tmp_path, run_pipeline, qa_rows):
    res = run_pipeline([rows_source(qa_rows)], steps=[{"split": {}}], outputs=_outputs(tmp_path / "one", split_files=False))
    assert all("splits" not in e["stats"] for e in res.manifest["outputs"])
    assert pl.read_ndjson(tmp_path / "one" / "x.jsonl").height == 60
    res = run_pipeline([rows_source(qa_rows)], outputs=_outputs(tmp_path / "none"), sub="b")
    assert (tmp_path / "none" / "x.jsonl").exists() and not list((tmp_path / "none").glob("x.train.*"))
