"""Parquet and saved-dataset sources: types kept, row locators, batches, unreadable files."""
from __future__ import annotations

import polars as pl
import pytest

from curate.errors import DataError


def _frame(n: int) -> pl.DataFrame:
    return pl.DataFrame({"text": [f"t{i}" for i in range(n)], "n": list(range(n)),
                         "tags": [[str(i)] for i in range(n)]})


def test_parquet_source_keeps_types_and_row_locators(tmp_path, run_source):
    p = tmp_path / "a.parquet"
    _frame(5).write_parquet(p)
    df = run_source("parquet", path=p, text="text").data()
    assert df.select("text", "n", "tags").equals(_frame(5))
    assert df["source"].to_list() == [f"parquet:{p}:{i}" for i in range(5)]


def test_parquet_batches_and_limit(tmp_path):
    from curate.connectors.files.parquet import ParquetSource
    p = tmp_path / "b.parquet"
    _frame(10).write_parquet(p, row_group_size=4)
    src = ParquetSource(path=str(p))
    src.batch_rows = 3
    batches = [b.rows for b in src.read()]
    assert len(batches) >= 4 and all(b.height <= 3 for b in batches)
    assert pl.concat(batches)["source"].to_list() == [f"parquet:{p}:{i}" for i in range(10)]
    assert pl.concat([b.rows for b in ParquetSource(path=str(p), limit=4).read()]).height == 4


def test_parquet_glob_and_empty_file(tmp_path, run_source):
    _frame(2).write_parquet(tmp_path / "x1.parquet")
    _frame(3).write_parquet(tmp_path / "x2.parquet")
    _frame(0).write_parquet(tmp_path / "x3.parquet")
    r = run_source("parquet", path=str(tmp_path / "x*.parquet"))
    assert r.data().height == 5
    assert r.data()["source"][2] == f"parquet:{tmp_path / 'x2.parquet'}:0"


def test_corrupt_parquet_is_quarantined(write, run_source, by_locator):
    p = write("bad.parquet", b"this is not parquet at all")
    r = run_source("parquet", path=p)
    assert r.data().height == 0
    assert by_locator(r.rejects())[f"parquet:{p}"][0] == "unreadable_file"


def test_hf_dataset_source(tmp_path, run_source):
    from datasets import Dataset, DatasetDict
    ds = Dataset.from_dict({"text": ["a", "b", "c"], "label": [0, 1, 0]})
    ds.save_to_disk(str(tmp_path / "ds"))
    r = run_source("hf_dataset", path=tmp_path / "ds")
    assert r.data().select("text", "label").rows() == [("a", 0), ("b", 1), ("c", 0)]
    assert r.data()["source"].to_list() == [f"hf_dataset:{tmp_path / 'ds'}:{i}" for i in range(3)]

    DatasetDict({"train": ds, "test": ds.select([1])}).save_to_disk(str(tmp_path / "dd"))
    r = run_source("hf_dataset", path=tmp_path / "dd", split="test")
    assert r.data()["text"].to_list() == ["b"]
    assert r.data()["source"].to_list() == [f"hf_dataset:{tmp_path / 'dd' / 'test'}:0"]
    r = run_source("hf_dataset", path=tmp_path / "dd")
    assert r.data().select("split", "text").rows() == [("train", "a"), ("train", "b"), ("train", "c"),
                                                       ("test", "b")]
    with pytest.raises(DataError, match="no split 'dev'.*'train', 'test'"):
        run_source("hf_dataset", path=tmp_path / "dd", split="dev")
    with pytest.raises(DataError, match="not a directory"):
        (tmp_path / "f.txt").write_text("x")
        run_source("hf_dataset", path=tmp_path / "f.txt")
