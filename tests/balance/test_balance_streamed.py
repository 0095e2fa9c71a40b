"""``balance`` in the local engine reads ids, labels (plus ``parent_id``/``derived_by``) and a
hash of each text, not the texts (``Balance.process_table``); the engine takes the kept rows and
writes the oversampled copies from the parts. The result equals the whole-frame path's: rows in
the same order with the same columns, rejects, stats and created counts, for oversampling,
undersampling, ``none``, a ratio target and a second balance over copies of copies."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from curate import Pipeline
from curate.cache import read_entry
from curate.steps.balance import Balance


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    """3,000 rows over four classes (one rare), some null/empty labels, repeated and null texts."""
    rng = np.random.default_rng(11)
    n = 3000
    label = rng.choice(["ham", "spam", "eggs", "rare"], n, p=[0.7, 0.2, 0.095, 0.005]).astype(object)
    label[rng.random(n) < 0.02] = None
    label[rng.random(n) < 0.01] = ""
    text = [f"message {int(rng.integers(0, 2500))} " + "w " * int(rng.integers(1, 20)) for _ in range(n)]
    for i in rng.choice(n, 30, replace=False):
        text[i] = None
    df = pl.DataFrame({"text": text, "label": list(label), "score": rng.random(n)})
    path = tmp_path_factory.mktemp("balance") / "rows.parquet"
    df.write_parquet(path)
    return path


def _run(path: Path, tmp: Path, steps: list[dict], narrow: bool, monkeypatch):
    with monkeypatch.context() as m:
        if not narrow:
            m.setattr(Balance, "process_table", lambda self, table, ctx: None)
        tag = "n" if narrow else "f"
        p = Pipeline(name="balance", sources=[{"parquet": {"path": str(path), "name": "rows"}}],
                     steps=steps, workdir=str(tmp / f"w{tag}"), out_dir=str(tmp / f"o{tag}"),
                     batch_size=400, seed=7)
        res = p.run()
    d = Path(res.final_path)
    reps = [(r.rows_in, r.rows_out, r.rows_rejected, r.rows_created, r.extra)
            for r in res.reports if r.kind == "step"]
    return read_entry(d, "kept"), read_entry(d, "rejected"), reps


CONFIGS = {
    "oversample": [{"balance": {"method": "oversample"}}],
    "oversample_ratio": [{"balance": {"method": "oversample", "target": 0.5}}],
    "undersample": [{"balance": {"method": "undersample"}}],
    "none": [{"balance": {"method": "none"}}],
    "twice": [{"balance": {"method": "oversample", "target": 0.3}},
              {"balance": {"method": "oversample"}}],
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_narrow_balance_equals_whole_frame(table, tmp_path, monkeypatch, name):
    k1, r1, s1 = _run(table, tmp_path, CONFIGS[name], True, monkeypatch)
    k2, r2, s2 = _run(table, tmp_path, CONFIGS[name], False, monkeypatch)
    assert k1.columns == k2.columns
    assert k1.equals(k2)
    assert (r1 is None and r2 is None) or r1.equals(r2)     # the last step's rejects
    assert s1 == s2
    assert s1[0][2] >= 80                   # missing labels (and undersampled rows) rejected
    if name.startswith("oversample") or name == "twice":
        assert s1[-1][3] > 1000 and k1["parent_id"].null_count() < k1.height
        copies = k1.filter(pl.col("parent_id").is_not_null())
        # a copy carries its parent's text, read from the parts
        parents = k1.select(pl.col("id").alias("parent_id"), pl.col("text").alias("t0"))
        j = copies.join(parents, on="parent_id", how="left")
        assert j.height == copies.height and (j["text"] == j["t0"]).fill_null(True).all()


def test_narrow_balance_reads_no_text(table, tmp_path, monkeypatch):
    seen = []
    orig = Balance.process

    def spy(self, df, ctx):
        seen.append(df)
        return orig(self, df, ctx)
    monkeypatch.setattr(Balance, "process", spy)
    _run(table, tmp_path, CONFIGS["oversample"], True, monkeypatch)
    df = seen[0]
    assert "score" not in df.columns and df.schema["text"] == pl.UInt64     # a hash, not the text
    assert df["text"].null_count() == 30


def test_embedding_methods_keep_the_whole_frame(table):
    from curate.cache import Table
    assert Balance(method="smote").process_table(Table([], Path(".")), None) is None
