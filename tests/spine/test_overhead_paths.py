"""The engine's short cuts around a step give the same answers as the long way: the accounting
check from kept row positions, whole-block JSON Lines parsing, content ids, the report's samples."""
from __future__ import annotations

import io

import numpy as np
import polars as pl
import pytest

from curate import records as R
from curate.connectors._textio.jsonl import iter_jsonl
from curate.connectors._textio.options import JsonlOptions
from curate.engine import _kept_rows
from curate.errors import StepError
from curate.report.figures import histograms, word_counts
from curate.runresult import check_accounting


def _frame(n: int = 1000) -> pl.DataFrame:
    df = pl.DataFrame({"text": [f"doc {i % 700}" for i in range(n)], R.SOURCE: [f"x:{i}" for i in range(n)],
                       R.ORIGIN: ["d"] * n})
    return R.with_ids(df)


def test_accounting_from_positions_matches_the_full_check():
    df = _frame()
    mask = pl.Series(np.random.default_rng(1).random(df.height) > 0.3)
    kept, rej = df.filter(mask), R.reject(df.filter(~mask), "s", "why")
    pos = _kept_rows(df, kept)
    assert pos is not None and len(pos) == kept.height
    assert check_accounting("s", df, kept, rej, kept_pos=pos) == check_accounting("s", df, kept, rej) == 0
    # a kept row also rejected, a rejected row missing, a rejected row twice: still caught
    for bad in (R.concat([rej, R.reject(kept.head(1), "s", "x")]), rej.slice(1),
                R.concat([rej, rej.head(1)])):
        with pytest.raises(StepError, match="accounting broken"):
            check_accounting("s", df, kept, bad, kept_pos=pos)
    # a kept row whose text the step changed is not "rows removed"
    changed = kept.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("new")).otherwise(pl.col("text")).alias("text"))
    assert _kept_rows(df, changed) is None


def test_whole_block_jsonl_same_rows_and_quarantine_as_line_by_line():
    good = b"".join(b'{"text": "row %d", "n": %d}\n' % (i, i) for i in range(300))
    cut = good.index(b"\n", 200) + 1
    bad = good[:cut] + b"\n   \n{not json}\n[1]\n" + good[cut:]
    for data, rejected in ((good, 0), (bad, 2)):
        batches = list(iter_jsonl(io.BytesIO(data), "jsonl:f", JsonlOptions(), "o", batch_rows=64))
        rows = pl.concat([b.rows for b in batches if b.rows.height])
        rej = [b.rejected for b in batches if b.rejected is not None and b.rejected.height]
        assert rows.height == 300 and all(b.rows.height <= 64 for b in batches)
        assert rows["n"].to_list() == list(range(300)) and rows.columns == [R.SOURCE, "text", "n"]
        assert sum(r.height for r in rej) == rejected
        lines = [int(s.rsplit(":", 1)[1]) for s in rows[R.SOURCE]]
        assert lines == sorted(lines) and lines[0] == 1 and lines[-1] == 300 + (4 if rejected else 0)


def test_content_ids_are_the_xxh3_of_the_ndjson_line():
    import xxhash
    df = pl.DataFrame({"text": ["a", "b\u2028c", "é\n", None, "a"], "n": [1, 2, None, 4, 1]})
    lines = df.select(["n", "text"]).write_ndjson().split("\n")[:-1]
    want = [xxhash.xxh3_64_hexdigest(ln.encode()) for ln in lines]
    assert R.content_ids(df).to_list() == want[:4] + [want[0] + "-1"]


def test_report_histograms_are_binned_and_word_counts_match_the_regex():
    df = pl.DataFrame({"t": ["a b", "  a\u00a0 b\tc ", "", "   ", None, "x", "\u2028y\u2028"]})
    assert word_counts(df, "t").tolist() == [2, 3, 0, 0, 1, 1]
    fig = histograms({"input": np.arange(1000), "final": [], "one": [5]}, "t", "words")
    assert [tr.name for tr in fig.data] == ["input", "one"]
    assert sum(fig.data[0].y) == 1000 and len(fig.data[0].x) == 40
    assert histograms({"x": []}, "t", "w") is None
