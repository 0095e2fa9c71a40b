"""``split`` in the local engine reads only ids, labels, groups and ``parent_id`` (the engine
adds the ``split`` column part by part, ``Split.process_table``): the result equals the
whole-frame path's, rows, columns, rejects and stats, for plain, grouped, lineage and
multi-label splits."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from curate import Pipeline
from curate.cache import read_entry
from curate.steps.split import Split


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    rng = np.random.default_rng(5)
    n = 3000
    label = rng.choice(["spam", "ham", "eggs", "rare"], n, p=[0.3, 0.6, 0.0995, 0.0005]).astype(object)
    label[rng.random(n) < 0.03] = None
    label[rng.random(n) < 0.02] = ""
    ids = [f"r{i}" for i in range(n)]
    parent = [ids[i - 1 - int(rng.integers(0, 5))] if i > 10 and rng.random() < 0.1 else None for i in range(n)]
    df = pl.DataFrame({"text": [f"doc {i} " + "w " * int(rng.integers(1, 30)) for i in range(n)],
                       "label": list(label), "tags": [["a", "b"][: 1 + i % 2] if i % 5 else ["c"] for i in range(n)],
                       "grp": [f"g{int(x)}" for x in rng.integers(0, 300, n)], "id": ids,
                       "parent_id": parent})
    path = tmp_path_factory.mktemp("split") / "rows.parquet"
    df.drop("id", "parent_id").write_parquet(path)       # the engine gives content ids
    df.write_parquet(path.with_name("with_ids.parquet"))
    return path


def _run(path: Path, tmp: Path, cfg: dict, narrow: bool, monkeypatch):
    with monkeypatch.context() as m:
        if not narrow:
            m.setattr(Split, "process_table", lambda self, table, ctx: None)
        tag = "n" if narrow else "f"
        p = Pipeline(name="split", sources=[{"parquet": {"path": str(path), "name": "rows"}}],
                     steps=[{"split": cfg}], workdir=str(tmp / f"w{tag}"), out_dir=str(tmp / f"o{tag}"),
                     batch_size=400, seed=3)
        res = p.run()
    d = Path(res.final_path)
    rej = read_entry(d, "rejected")
    return read_entry(d, "kept"), rej, next(r.extra for r in res.reports if r.name == "split")


CONFIGS = [{}, {"group": "grp"}, {"stratify": None, "group": "grp"}, {"stratify": "tags"},
           {"stratify": "tags", "group": "grp"}, {"column": "label"}]


@pytest.mark.parametrize("cfg", CONFIGS, ids=[str(i) for i in range(len(CONFIGS))])
def test_narrow_split_equals_whole_frame(table, tmp_path, monkeypatch, cfg):
    k1, r1, s1 = _run(table, tmp_path, cfg, True, monkeypatch)
    k2, r2, s2 = _run(table, tmp_path, cfg, False, monkeypatch)
    assert k1.equals(k2)
    assert (r1 is None and r2 is None) or r1.equals(r2)
    assert s1 == s2
    assert k1.height > 2500


def test_narrow_split_reads_no_text(table, tmp_path, monkeypatch):
    seen = []
    orig = Split.process

    def spy(self, df, ctx):
        seen.append(df.columns)
        return orig(self, df, ctx)
    monkeypatch.setattr(Split, "process", spy)
    _run(table, tmp_path, {"group": "grp"}, True, monkeypatch)
    assert seen and "text" not in seen[0] and "label" in seen[0]


@pytest.mark.parametrize("cfg", [{}, {"group": "grp"}, {"stratify": "tags"}])
def test_lineage_positions_rebuild_the_whole_frame_result(table, tmp_path, cfg):
    """With ``parent_id`` chains (ids given): the positions and added columns of
    ``process_table`` over a table of parts rebuild exactly what ``process`` returns."""
    from curate.cache import Table, TableWriter
    from curate.step import StepContext
    df = pl.read_parquet(table.with_name("with_ids.parquet"))
    w = TableWriter(tmp_path, "kept")
    for s in range(0, df.height, 700):
        w.add(df.slice(s, 700))
    t = Table(w.segments, tmp_path)
    ctx = StepContext(step_name="split", index=0, seed=3, workdir=tmp_path)
    step = Split(**cfg)
    res = step.process_table(t, ctx)
    want = step.process(df, ctx)
    assert res is not None and res.stats == want.stats and res.stats.get("lineage_groups")
    res.check(df.height, "split")
    kept = pl.concat([rows.with_columns(res.kept_columns.slice(lo, hi - lo).get_columns())
                      for rows, lo, hi in t.iter_take(res.kept)])
    assert kept.equals(want.kept)
    rej = [rows.with_columns(c.slice(lo, hi - lo).get_columns())
           for pos, c in res.rejected for rows, lo, hi in t.iter_take(pos)]
    if cfg.get("stratify", "label") == "label":           # missing labels are rejected
        assert pl.concat(rej).equals(want.rejected) and want.rejected.height > 50
    else:
        assert not rej and not want.rejected.height
