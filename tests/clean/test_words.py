"""The byte-scan word runs (``clean._words``) equal polars' ``\\w+`` regex on every kind of text:
ASCII, accented Latin, CJK, combining marks, emoji, Unicode digits and separators, nulls, empty
rows and sliced columns; word hashes identify words; the threaded n-gram path equals the serial one."""
from __future__ import annotations

import random

import numpy as np
import polars as pl
import pytest

from curate.steps.clean import _words as W
from curate.steps.clean._repetition import RepetitionConfig, _ngram_fracs, _ngram_fracs_rows

from .conftest import DATA

ODD = ["é", "e\u0301", "日本語", "ß", "\xa0", "’", "😀", "Ⅻ", "٣", "ـ", "\u200d", "\u203f", "x_y", "_",
       "\t", "\n", " ", ".", "-", "'", "ﬁ", "Ａ", "\u2028", "\x00", "1.5", "A", "z", "9", "@", "[", "`", "{"]


def texts(n: int = 4000, seed: int = 0) -> list[str | None]:
    rng = random.Random(seed)
    sms = [ln.split("\t", 1)[1] for ln in (DATA / "sms_spam_collection.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    out: list[str | None] = [None, "", " ", "a", "_", "aaaaaaaaaaaaaaaaaaaaaa bbbbbbbbbbbbbbbbbbbbbbbb"] + sms[:1500]
    for _ in range(n):
        out.append("".join(rng.choice(ODD) if rng.random() < 0.5 else rng.choice(sms[:300])[:rng.randrange(1, 20)]
                           for _ in range(rng.randrange(0, 12))))
    return out


@pytest.fixture(scope="module")
def column() -> pl.Series:
    return pl.Series("t", texts())


def test_counts_and_characters_equal_the_regex(column):
    for s in (column, column.slice(777, 2100), pl.concat([column.slice(0, 50), column.slice(900, 60)], rechunk=False)):
        counts, chars = W.word_stats(s)
        t = s.fill_null("")
        assert counts.tolist() == t.str.count_matches(r"\w+").to_list()
        assert chars.tolist() == (t.str.len_chars() - t.str.count_matches(r"\W")).to_list()
    assert W.word_stats(pl.Series([None, ""], dtype=pl.String))[0].tolist() == [0, 0]


def test_spans_are_the_regex_words_with_character_lengths(column):
    sp = W.spans(column)
    words = [bytes(sp.data[a:b]).decode() for a, b in zip(sp.start, sp.stop)]
    assert words == [w for row in column.fill_null("").str.extract_all(r"\w+").to_list() for w in row]
    assert sp.length.tolist() == [len(w) for w in words]
    assert sp.counts().tolist() == column.fill_null("").str.count_matches(r"\w+").to_list()
    assert any(not w.isascii() for w in words)          # the non-ASCII classification was exercised


def test_hashes_identify_words(column):
    sp = W.spans(column)
    seen: dict[str, int] = {}
    for a, b, h in zip(sp.start, sp.stop, sp.hashes()):
        w = bytes(sp.data[a:b]).decode()
        assert seen.setdefault(w, int(h)) == int(h)      # the same word anywhere, the same hash
    assert len(set(seen.values())) == len(seen) > 1000   # and no two words share one
    # words of every length around the 8-byte chunk edges
    long = pl.Series([" ".join("ab" * k for k in range(1, 20)) + " " + "ab" * 7 + "a"])
    hs = W.spans(long).hashes()
    assert len(set(hs.tolist())) == len(hs)


def test_threaded_ngram_fractions_equal_the_serial_path(column):
    cfg = RepetitionConfig()
    rep = pl.Series(["the cat the cat the cat sat " * (i % 5) + t for i, t in enumerate(column.fill_null("").to_list())])
    serial = _ngram_fracs_rows(rep, cfg)
    threaded = _ngram_fracs(rep, cfg, min_rows=500)
    assert set(serial) == set(threaded)
    for k in serial:
        assert np.array_equal(serial[k], threaded[k]), k
    assert serial["top2"].sum() > 0 and serial["dup5"].sum() > 0
