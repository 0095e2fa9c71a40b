"""The streaming local executor: tables as Parquet parts, ids over parts, shards per batch, a
filter-only global step stored as row numbers, and the cache checks on all of it."""
from __future__ import annotations

import json

import polars as pl

from curate import Pipeline
from curate import records as R
from curate.cache import StepCache, entry_table



def run(tmp_path, sources, steps=(), batch_size=7, **kw):
    return Pipeline(name="s", sources=sources, steps=list(steps), outputs=kw.pop("outputs", []),
                    workdir=str(tmp_path / ".c"), out_dir=str(tmp_path / "out"),
                    batch_size=batch_size, **kw).run()


def test_ids_over_parts_equal_one_call_over_the_whole_table(tmp_path):
    # repeats inside and across parts (batch_size 7), two sources with different columns
    a = [{"text": f"t{i % 5}"} for i in range(30)]
    b = [{"text": f"t{i % 3}", "label": "x"} for i in range(10)]
    res = run(tmp_path, [{"t_rows": {"rows": a, "name": "a"}}, {"t_rows": {"rows": b, "name": "b"}}])
    got = res.data()
    whole = R.concat([pl.DataFrame(a).with_columns(pl.format("t_rows:{}", pl.int_range(pl.len())).alias("source"),
                                                   pl.lit("a").alias("origin")),
                      pl.DataFrame(b).with_columns(pl.format("t_rows:{}", pl.int_range(pl.len())).alias("source"),
                                                   pl.lit("b").alias("origin"))])
    want = R.with_ids(whole)
    assert got.columns[:3] == ["id", "source", "origin"]
    assert got["id"].to_list() == want["id"].to_list()
    assert got["id"].n_unique() == got.height == 40


def test_batch_step_writes_one_shard_per_batch_and_accounts(tmp_path):
    res = run(tmp_path, [{"t_rows": {"n": 50}}], [{"t_minlen": {"min_chars": 6}}], batch_size=7)
    step = res.manifest["steps"][0]
    assert (step["rows_in"], step["rows_out"], step["rows_rejected"]) == (50, 40, 10)
    entry = next((tmp_path / ".c" / "s").glob("00-t_minlen-*"))
    assert len(list((entry / "parts").glob("shard-*.done"))) == 8        # ceil(50 / 7)
    assert res.data()["text"].to_list() == [f"row {i}" for i in range(10, 50)]
    assert res.rejects().height == 10


def test_filter_only_global_step_stores_row_numbers_not_rows(tmp_path):
    rows = [{"text": f"doc {i % 12} words here"} for i in range(40)]
    res = run(tmp_path, [{"t_rows": {"rows": rows}}], [{"dedup": {}}], batch_size=9)
    entry = next((tmp_path / ".c" / "s").glob("00-dedup-*"))
    assert not list(entry.glob("kept-*.parquet")) and list(entry.glob("take-*.parquet"))
    data = res.data()
    assert data.height == 12 and data["text"].to_list() == [f"doc {i} words here" for i in range(12)]
    assert res.manifest["steps"][0]["rows_rejected"] == 28
    again = run(tmp_path, [{"t_rows": {"rows": rows}}], [{"dedup": {}}], batch_size=9)
    assert again.all_cached and again.data().equals(data)


def test_a_corrupted_referenced_part_invalidates_the_entries_that_use_it(tmp_path):
    rows = [{"text": f"doc {i % 12} words here"} for i in range(40)]
    run(tmp_path, [{"t_rows": {"rows": rows}}], [{"dedup": {}}], batch_size=9)
    root = tmp_path / ".c" / "s"
    src_part = next(root.glob("source-*/kept-000001.parquet"))
    src_part.write_bytes(src_part.read_bytes()[:-12])
    dedup = next(root.glob("00-dedup-*"))
    fp = dedup.name.split("-")[-1]
    assert not StepCache(root, "00-dedup", fp).done            # it reads that part through row numbers
    again = run(tmp_path, [{"t_rows": {"rows": rows}}], [{"dedup": {}}], batch_size=9)
    assert not any(r.cached for r in again.reports if r.kind in ("source", "step"))
    assert again.data().height == 12


def test_apply_to_passes_other_rows_through_after_the_steps_own(tmp_path):
    res = run(tmp_path, [{"t_rows": {"n": 12, "name": "a"}}, {"t_rows": {"n": 12, "name": "b"}}],
              [{"t_minlen": {"min_chars": 6, "apply_to": ["a"]}}], batch_size=5)
    df = res.data()
    assert df["origin"].to_list() == ["a"] * 2 + ["b"] * 12
    meta = json.loads(next((tmp_path / ".c" / "s").glob("00-t_minlen-*/meta.json")).read_text())
    assert meta["rows_in"] == 24 and meta["rows_out"] == 14


def test_entry_table_reads_legacy_single_file_entries(tmp_path):
    d = tmp_path / "old"
    d.mkdir()
    pl.DataFrame({"id": ["a"], "text": ["x"]}).write_parquet(d / "kept.parquet")
    assert entry_table(d).read()["text"].to_list() == ["x"]
    assert entry_table(d, "rejected") is None


def test_jsonl_output_streams_the_same_bytes_as_one_write(tmp_path):
    rows = [{"text": f"row {i}", "n": i if i % 3 else None} for i in range(40)]
    out = tmp_path / "o" / "x.jsonl"
    res = run(tmp_path, [{"t_rows": {"rows": rows}}], [{"t_minlen": {"min_chars": 6}}], batch_size=6,
              outputs=[{"jsonl": {"path": str(out)}}])
    assert out.read_bytes() == res.data().write_ndjson().encode()
    assert res.manifest["outputs"][0]["rows"] == 30
