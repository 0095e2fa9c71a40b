"""File outputs: round trips through the matching source, column selection, atomic replacement,
and the jsonl output loading with ``datasets.load_dataset("json")``."""
from __future__ import annotations

import json

import polars as pl
import pytest

from curate.errors import DataError


@pytest.fixture
def src(write):
    return write("in.jsonl", "".join(json.dumps(r) + "\n" for r in [
        {"text": "hello, world", "label": "a", "n": 1, "tags": ["x"], "meta": {"k": 1}},
        {"text": 'quote " and\nnewline', "label": "b", "n": 2, "tags": [], "meta": {"k": None}},
        {"text": "ünïcödé", "label": "a", "n": 3, "tags": ["y", "z"], "meta": {"k": 3}},
    ]))


def test_jsonl_round_trip_and_load_dataset(src, tmp_path, run_source):
    out = tmp_path / "o" / "data.jsonl"
    r = run_source("jsonl", path=src, outputs=[{"jsonl": {"path": str(out)}}])
    assert out in r.outputs or str(out) in map(str, r.outputs)
    back = run_source("jsonl", path=out).data()
    cols = ["text", "label", "n", "tags", "meta"]
    assert back.select(cols).equals(r.data().select(cols))
    assert back["id"].to_list() != []          # the written id column came back as a field
    from datasets import load_dataset
    ds = load_dataset("json", data_files=str(out), split="train", cache_dir=str(tmp_path / "hf"))
    assert ds.num_rows == 3 and ds["text"] == r.data()["text"].to_list()
    assert set(ds.column_names) == {"id", "source", "origin", *cols}


def test_parquet_round_trip(src, tmp_path, run_source):
    out = tmp_path / "o" / "data.parquet"
    r = run_source("jsonl", path=src, outputs=[{"parquet": {"path": str(out), "drop_meta": True}}])
    assert pl.read_parquet(out).equals(r.data().drop("id", "source", "origin"))
    back = run_source("parquet", path=out).data()
    assert back.select("text", "tags", "meta").equals(r.data().select("text", "tags", "meta"))


def test_csv_round_trip(src, tmp_path, run_source):
    out = tmp_path / "o" / "data.csv"
    r = run_source("jsonl", path=src, outputs=[
        {"csv": {"path": str(out), "columns": {"body": "text", "category": "label", "tags": "tags"}}}])
    back = run_source("csv", path=out).data()
    assert back.columns[3:] == ["body", "category", "tags"]
    assert back["body"].to_list() == r.data()["text"].to_list()
    assert [json.loads(t) for t in back["tags"]] == r.data()["tags"].to_list()
    assert back["source"].to_list() == [f"csv:{out}:2", f"csv:{out}:3", f"csv:{out}:5"]


def test_hf_dataset_round_trip_and_replace(src, tmp_path, run_source):
    from datasets import load_from_disk
    out = tmp_path / "o" / "ds"
    r = run_source("jsonl", path=src, outputs=[{"hf_dataset": {"dir": str(out), "columns": ["text", "label"]}}])
    ds = load_from_disk(str(out))
    assert ds.column_names == ["text", "label"] and ds["text"] == r.data()["text"].to_list()
    assert all(p.is_file() and out in p.parents for p in r.outputs)
    back = run_source("hf_dataset", path=out).data()
    assert back.select("text", "label").equals(r.data().select("text", "label"))
    # a second write replaces the folder whole
    r2 = run_source("jsonl", path=src, limit=1, outputs=[{"hf_dataset": {"dir": str(out)}}])
    assert load_from_disk(str(out)).num_rows == 1 and r2.data().height == 1
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]


def test_output_columns_missing_is_data_error(src, tmp_path, run_source):
    with pytest.raises(DataError, match=r"'nope'.*columns are: .*'text'"):
        run_source("jsonl", path=src, outputs=[{"jsonl": {"path": str(tmp_path / "x.jsonl"),
                                                          "columns": ["text", "nope"]}}])
    assert not (tmp_path / "x.jsonl").exists()


def test_outputs_are_atomic_and_leave_no_temp_files(src, tmp_path, run_source):
    out = tmp_path / "o2" / "data.jsonl"
    out.parent.mkdir()
    out.write_text("old\n")
    run_source("jsonl", path=src, outputs=[{"jsonl": {"path": str(out), "drop_meta": True}}])
    lines = out.read_text().splitlines()
    assert len(lines) == 3 and set(json.loads(lines[0])) == {"text", "label", "n", "tags", "meta"}
    assert [p.name for p in out.parent.iterdir()] == ["data.jsonl"]


def test_empty_table_outputs(write, tmp_path, run_source):
    p = write("e.csv", "text,label\n")
    outs = {"jsonl": {"path": str(tmp_path / "e.jsonl")}, "parquet": {"path": str(tmp_path / "e.parquet")},
            "csv": {"path": str(tmp_path / "e.out.csv")}, "hf_dataset": {"dir": str(tmp_path / "e_ds")}}
    run_source("csv", path=p, outputs=[{k: v} for k, v in outs.items()])
    assert (tmp_path / "e.jsonl").read_text() == ""
    assert pl.read_parquet(tmp_path / "e.parquet").height == 0
    from datasets import load_from_disk
    assert load_from_disk(str(tmp_path / "e_ds")).num_rows == 0


def test_yaml_pipeline_with_file_source_and_outputs(in_tmp, data_dir):
    from curate import Pipeline
    (in_tmp / "p.yaml").write_text(f"""
name: sms-files
seed: 3
sources:
  - tsv: {{path: "{data_dir / 'sms_spam_collection.tsv'}", text: SMS, label: Label, limit: 100}}
outputs:
  - jsonl: {{path: out/sms.jsonl, columns: [text, label]}}
  - parquet: {{path: out/sms.parquet, drop_meta: true}}
""")
    r = Pipeline.from_yaml(in_tmp / "p.yaml").run()
    back = pl.read_ndjson(in_tmp / "out" / "sms.jsonl")
    assert back.columns == ["text", "label"] and back.height == 100
    assert pl.read_parquet(in_tmp / "out" / "sms.parquet").columns == ["text", "label"]
    assert r.manifest["outputs"][0]["files"][0]["path"] == "out/sms.jsonl"


def test_gzip_outputs_read_back(src, tmp_path, run_source):
    import gzip
    outs = [{"jsonl": {"path": str(tmp_path / "g.jsonl.gz")}}, {"csv": {"path": str(tmp_path / "g.csv.gz")}}]
    r = run_source("jsonl", path=src, outputs=outs)
    assert gzip.decompress((tmp_path / "g.jsonl.gz").read_bytes()).count(b"\n") == 3
    back = run_source("jsonl", path=tmp_path / "g.jsonl.gz").data()
    assert back["text"].to_list() == r.data()["text"].to_list()
    assert run_source("csv", path=tmp_path / "g.csv.gz").data()["text"].to_list() == r.data()["text"].to_list()
