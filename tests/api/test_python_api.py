"""The Python API in the ecosystem's shape: sources from in-memory data (polars, pandas, Arrow,
datasets.Dataset, a list of dicts), results as polars / pandas / datasets, one step run alone on
a DataFrame, and rejects() that keeps its columns when nothing was rejected."""
from __future__ import annotations

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from curate import Pipeline, from_frame
from curate.errors import DataError
from curate.steps.clean import Clean
from curate.steps.dedup.step import Dedup

ROWS = [
    {"text": "the cat sat on the mat", "label": "a"},
    {"text": "hi", "label": "b"},                                   # too few words
    {"text": "the cat sat on the mat", "label": "a"},               # exact duplicate
    {"text": "a completely different sentence here", "label": "b"},
]


def _run(src, tmp_path, **kw):
    return Pipeline(name="api", sources=[src], steps=[Clean(min_words=3), Dedup()],
                    workdir=str(tmp_path / "w"), out_dir=str(tmp_path / "out"), **kw).run()


@pytest.mark.parametrize("kind", ["polars", "pandas", "arrow", "dataset", "dicts"])
def test_pipeline_runs_on_in_memory_data(kind, tmp_path):
    df = pl.DataFrame(ROWS)
    src = {"polars": df, "pandas": df.to_pandas(), "arrow": df.to_arrow(), "dicts": ROWS,
           "dataset": None}[kind]
    if kind == "dataset":
        import datasets
        src = datasets.Dataset.from_list(ROWS)
    res = _run(src, tmp_path)
    out = res.to_polars()
    assert sorted(out["text"].to_list()) == ["a completely different sentence here", "the cat sat on the mat"]
    assert out["source"].to_list()[0].startswith("memory:memory:")
    rej = res.rejects()
    assert sorted(rej["reason"].to_list()) == ["exact_duplicate", "too_few_words"]
    # accounting: 4 in = 2 out + 2 rejected
    assert res.manifest["totals"]["rows_read"] == 4 and res.manifest["totals"]["rows_final"] == 2


def test_frames_are_cached_by_content(tmp_path):
    df = pl.DataFrame(ROWS)
    first = _run(df, tmp_path)
    again = _run(df.clone(), tmp_path)
    assert again.all_cached and not first.all_cached
    changed = _run(df.with_columns(pl.col("text") + " x"), tmp_path)
    assert not changed.all_cached
    # the frame never goes into the manifest
    assert "data" not in first.manifest["sources"][0]["config"]


def test_from_frame_maps_columns_and_names_the_source(tmp_path):
    df = pd.DataFrame({"body": [r["text"] for r in ROWS], "tag": [r["label"] for r in ROWS]})
    res = Pipeline(name="api2", sources=[from_frame(df, name="tickets", text="body", label="tag"),
                                         from_frame([{"text": "one more row of text"}])],
                   steps=[], workdir=str(tmp_path / "w"), out_dir=str(tmp_path / "o")).run()
    out = res.to_polars()
    assert set(out["origin"]) == {"tickets", "memory"}
    assert out.filter(pl.col("origin") == "tickets")["label"].to_list() == ["a", "b", "a", "b"]
    assert out.filter(pl.col("origin") == "tickets")["source"][1] == "memory:tickets:1"


def test_results_convert_to_pandas_and_datasets(tmp_path):
    res = _run(pl.DataFrame(ROWS), tmp_path)
    pdf = res.to_pandas()
    assert isinstance(pdf, pd.DataFrame) and len(pdf) == 2 and "text" in pdf.columns
    ds = res.to_dataset()
    import datasets
    assert isinstance(ds, datasets.Dataset) and ds.num_rows == 2
    assert sorted(ds["text"]) == sorted(pdf["text"])


def test_step_runs_standalone_on_a_dataframe():
    kept, rejected = Clean(min_words=3).run(pl.DataFrame(ROWS))
    assert kept.height == 3 and rejected.height == 1
    assert rejected.row(0, named=True)["reason"] == "too_few_words"
    assert rejected["step"].to_list() == ["clean"]
    assert {"id", "source", "text", "label"} <= set(kept.columns)
    # pandas in, global step, ids made for you; duplicate text keeps distinct ids
    res = Dedup().run(pd.DataFrame(ROWS))
    assert res.kept.height == 3 and res.rejected["reason"].to_list() == ["exact_duplicate"]
    assert res.kept["id"].n_unique() == 3


def test_step_run_keeps_given_ids_and_returns_typed_empty_rejects():
    df = pl.DataFrame({"id": ["x1", "x2"], "text": ["one two three four", "five six seven eight"]})
    kept, rejected = Clean(min_words=3).run(df)
    assert kept["id"].to_list() == ["x1", "x2"]
    assert rejected.height == 0 and {"step", "reason", "detail", "id", "text"} <= set(rejected.columns)


def test_rejects_keep_their_columns_when_empty(tmp_path):
    rows = [r for r in ROWS if r["text"] != "hi"][:2] + [ROWS[3]]
    res = Pipeline(name="clean-only", sources=[rows], steps=[Clean(min_words=3)],
                   workdir=str(tmp_path / "w"), out_dir=str(tmp_path / "o")).run()
    rej = res.rejects()
    assert rej.height == 0
    assert rej.columns[:6] == ["step", "reason", "detail", "id", "source", "origin"]
    assert "text" in rej.columns and rej.schema["text"] == pl.String
    assert rej.filter(pl.col("reason") == "too_few_words").height == 0     # usable as a table


def test_bad_in_memory_data_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="list of rows must hold dicts"):
        _run(from_frame([{"text": "a"}, "not a row"]), tmp_path)
    with pytest.raises(DataError, match="cannot read a"):
        Clean().run(pa.array([1, 2]))


def test_dataset_dict_and_lazy_frames_are_sources(tmp_path):
    import datasets
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_list(ROWS[:2]),
                               "test": datasets.Dataset.from_list(ROWS[3:])})
    res = Pipeline(name="dd", sources=[from_frame(dd, name="dd"), pl.LazyFrame(ROWS[:1])],
                   workdir=str(tmp_path / "w"), out_dir=str(tmp_path / "o")).run()
    out = res.to_polars()
    assert out.filter(pl.col("origin") == "dd")["split"].to_list() == ["train", "train", "test"]
    assert out.filter(pl.col("origin") == "memory").height == 1
