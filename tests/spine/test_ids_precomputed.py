"""Content hashes taken while a source part is written are the ids' input when the part's columns
are those of the combined sources; other parts are read back and conformed. Either way the ids
are those of one :func:`curate.records.with_ids` call over the whole table."""
from __future__ import annotations

import polars as pl

from curate import Pipeline
from curate import engine as E
from curate import records as R
from curate.cache import Table


def _run(tmp_path, sources, force=False):
    return Pipeline(name="s", sources=sources, steps=[], outputs=[], workdir=str(tmp_path / ".c"),
                    out_dir=str(tmp_path / "out"), batch_size=7).run(force=force)


def _whole(parts: dict[str, list[dict]]) -> pl.DataFrame:
    return R.with_ids(R.concat([pl.DataFrame(rows).with_columns(
        pl.format("t_rows:{}", pl.int_range(pl.len())).alias("source"), pl.lit(name).alias("origin"))
        for name, rows in parts.items()]))


def test_hashes_from_the_read_are_used_only_where_the_columns_match(tmp_path, monkeypatch):
    a = [{"text": f"t{i % 5}", "n": i % 3} for i in range(30)]            # no label: conformed
    b = [{"text": f"t{i % 3}", "n": 1, "label": "x"} for i in range(10)]  # the combined columns
    reads: list[str] = []
    real_with_ids, real_read = E.Engine._with_ids, Table.read_segment

    def with_ids(self, tables, entry, digests):
        monkeypatch.setattr(Table, "read_segment",
                            lambda t, seg, *a, **k: reads.append(str(t.base)) or real_read(t, seg, *a, **k))
        try:
            return real_with_ids(self, tables, entry, digests)
        finally:
            monkeypatch.setattr(Table, "read_segment", real_read)
    monkeypatch.setattr(E.Engine, "_with_ids", with_ids)
    sources = [{"t_rows": {"rows": a, "name": "a"}}, {"t_rows": {"rows": b, "name": "b"}}]
    got = _run(tmp_path, sources).data()
    want = _whole({"a": a, "b": b})
    assert got["id"].to_list() == want["id"].to_list() and got["id"].n_unique() == 40
    assert len(reads) == 5 and all("source-a" in r for r in reads)     # a's 5 parts read back, b's not
    # sources from the cache (no hashes in memory): every part read back, the same ids
    reads.clear()
    import shutil
    for d in (tmp_path / ".c" / "s").glob("sources-*"):
        shutil.rmtree(d)
    again = _run(tmp_path, sources).data()
    assert again["id"].to_list() == want["id"].to_list() and len(reads) == 7


def test_one_source_with_repeats_across_parts(tmp_path):
    rows = [{"text": f"doc {i % 4}", "score": (i % 3) / 2} for i in range(33)]
    got = _run(tmp_path, [{"t_rows": {"rows": rows, "name": "a"}}]).data()
    assert got["id"].to_list() == _whole({"a": rows})["id"].to_list()
