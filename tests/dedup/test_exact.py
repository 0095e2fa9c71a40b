"""Exact dedup: normalisation, keep policies, explanation columns, accounting via the engine."""
from __future__ import annotations

import polars as pl
import pytest

from curate.errors import CurateError
from curate.steps.dedup.step import Dedup

ROWS = [
    {"text": "Hello  World", "q": 1.0},
    {"text": "hello world", "q": 3.0},
    {"text": "HELLO WORLD, longer!", "q": 0.0},
    {"text": "unique one", "q": 0.0},
    {"text": "Ｈｅｌｌｏ world", "q": 2.0},   # full-width: NFKC folds it
    {"text": None, "q": 0.0},
    {"text": None, "q": 1.0},
]


def test_exact_first_normalised(run_steps):
    res = run_steps(ROWS, [{"dedup": {"columns": ["text"]}}])
    kept, rej = res.data(), res.rejects()
    assert kept["text"].to_list() == ["Hello  World", "HELLO WORLD, longer!", "unique one", None, None]
    assert sorted(rej["text"].to_list()) == ["hello world", "Ｈｅｌｌｏ world"]
    assert set(rej["reason"]) == {"exact_duplicate"}
    first_id = kept.filter(pl.col("text") == "Hello  World")["id"][0]
    assert set(rej["duplicate_of"]) == {first_id}
    assert rej["similarity"].to_list() == [1.0, 1.0]
    assert all(first_id in d for d in rej["detail"])
    st = res.manifest["steps"][0]["stats"]
    assert st["duplicates"] == 2 and st["clusters"] == 1
    rep = res.reports[-1]
    assert rep.rows_in == 7 and rep.rows_out == 5 and rep.rows_rejected == 2


def test_exact_keep_score_and_longest(run_steps):
    res = run_steps(ROWS, [{"dedup": {"keep": "score", "score_column": "q"}}], name="s")
    assert "hello world" in res.data()["text"].to_list()
    assert "Hello  World" in res.rejects()["text"].to_list()
    rows = [{"text": "a  b"}, {"text": "A B"}, {"text": "a b   "}]
    res = run_steps(rows, [{"dedup": {"keep": "longest", "normalize": {"lowercase": True}}}], name="l")
    assert res.data()["text"].to_list() == ["a b   "]


def test_strip_punctuation_and_case_sensitive(run_steps):
    rows = [{"text": "Hello, world!"}, {"text": "hello world"}, {"text": "Hello world"}]
    res = run_steps(rows, [{"dedup": {"normalize": {"strip_punctuation": True}}}], name="p")
    assert res.data().height == 1
    res = run_steps(rows, [{"dedup": {"normalize": {"lowercase": False}}}], name="c")
    assert res.data().height == 3


def test_multi_column_and_missing_column(run_steps):
    rows = [{"a": "x", "b": "1"}, {"a": "x", "b": "2"}, {"a": "x", "b": "1"}]
    res = run_steps(rows, [{"dedup": {"columns": ["a", "b"]}}], name="m")
    assert res.data()["b"].to_list() == ["1", "2"]
    with pytest.raises(CurateError, match="nope"):
        run_steps(rows, [{"dedup": {"columns": ["nope"]}}], name="x")


def test_sms_exact_duplicates(run_steps, data_dir):
    """The SMS corpus has 403 repeats of an earlier message (5,171 distinct texts)."""
    df = pl.read_csv(data_dir / "sms_spam_collection.tsv", separator="\t", quote_char=None,
                     has_header=True, new_columns=["label", "text"])
    res = run_steps(df.to_dicts(), [Dedup(normalize={"lowercase": False, "collapse_whitespace": False,
                                                     "unicode": None})], name="sms")
    assert res.data().height == df["text"].n_unique()
    assert res.rejects().height == df.height - df["text"].n_unique()


def test_config_rejects_unknown_keys():
    with pytest.raises(Exception):
        Dedup(kep="first")
    with pytest.raises(Exception):
        Dedup(normalize={"unicode": "NFX"})
