"""Fuzz-style checks of clean's fast paths against simple references on varied text (SMS rows
mixed with awkward pieces): mappers that only touch rows a cheap scan flags equal the plain
whole-column versions, the Gopher n-gram pruning equals a per-row Python reference for any
n, and boilerplate fractions equal a per-line Python count."""
from __future__ import annotations

import json
import random
import re

import polars as pl
import pytest

from curate.steps.clean import _pii as P
from curate.steps.clean import _text as T
from curate.steps.quality import _reference as ref
from curate.steps.clean._repetition import (DEFAULT_BOILERPLATE, RepetitionConfig,
                                            repetition_fractions)

from .conftest import DATA, run_clean

PIECES = [" ", "  ", "\t", " \t ", "\n", " \n ", "\n\n\n\n", "\r\n", "\r", "\x0b", "\x85", "\u2028",
          "\x00", "\x1f", "\x7f", "\u200b", "\ufeff", "\xa0", "\u3000", "é", "e\u0301", "Å", "ﬁ",
          "Ａ", "Ã©", "â€™", "192.168.0.1", "10.0.0.256", "::1", "fe80::1:2", "2001:db8:0:0:0:0:2:1",
          "12:30:45", "1.2.3", "a@b.co", "x.y+z@ex-ample.org", "@home", "555-123-4567", "555 1234",
          "+447700900123", "(020) 7946 0958", "123456789", "4111 1111 1111 1111",
          "4111-1111-1111-1112", "\ue000", "$1", "lorem ipsum dolor", "All rights reserved.",
          "We use cookies", "word", "the", "buy", "now"]


def fuzz(n: int = 3000, seed: int = 3) -> list[str | None]:
    rng = random.Random(seed)
    sms = [ln.split("\t", 1)[1] for ln in (DATA / "sms_spam_collection.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    words = [w for t in sms[:2000] for w in t.split(" ") if w]
    out: list[str | None] = [None, "", " ", "\n"] + sms[:1500]
    for _ in range(n):
        out.append("".join(rng.choice(PIECES) if rng.random() < 0.4 else rng.choice(words) + " "
                           for _ in range(rng.randrange(0, 30))))
    return out


TEXTS = pl.Series("text", fuzz(), dtype=pl.String)


def plain_whitespace(s: pl.Series) -> pl.Series:
    """The whitespace rules as six replacements on every row (the obvious chain)."""
    return pl.select(
        pl.lit(s).str.replace_all(r"\r\n?|[\x{0B}\x{0C}\x{85}\x{2028}\x{2029}]", "\n")
        .str.replace_all(r"[\x{00}-\x{08}\x{0E}-\x{1F}\x{7F}-\x{84}\x{86}-\x{9F}\x{200B}\x{2060}\x{FEFF}]", "")
        .str.replace_all(r"[^\S\n]*\t[^\S\n]*", "\t").str.replace_all(r"[^\S\n\t]+", " ")
        .str.replace_all(r" *\n *", "\n").str.replace_all(r"\n{3,}", "\n\n").str.strip_chars()).to_series()


def test_whitespace_on_flagged_rows_equals_the_plain_chain():
    want = plain_whitespace(TEXTS)
    got, changed = T.clean_whitespace(TEXTS)
    assert got.to_list() == want.to_list()
    assert changed == int((want != TEXTS).sum())
    # every row the chain changes is flagged by the cheap scan
    assert not ((want != TEXTS).fill_null(False) & ~TEXTS.str.contains(T.WHITESPACE_NEEDS).fill_null(False)).any()


@pytest.mark.parametrize("form", ["NFC", "NFKC"])
def test_normalize_non_ascii_rows_equals_all_rows(form):
    got, changed = T.normalize(TEXTS, form)
    want = TEXTS.str.normalize(form)
    assert got.to_list() == want.to_list() and changed == int((want != TEXTS).sum()) > 0


def test_pii_prefilters_flag_every_match_and_change_nothing(monkeypatch):
    for pattern, needs in ((P.EMAIL_RE, P.EMAIL_NEEDS), (P.IP_RE, P.IP_NEEDS), (P.PHONE_RE, P.PHONE_NEEDS)):
        hit = TEXTS.str.contains(pattern).fill_null(False)
        assert hit.any() and not (hit & ~TEXTS.str.contains(needs).fill_null(False)).any(), pattern
    cfgs = [P.PiiConfig(), P.PiiConfig(phones=False), P.PiiConfig(ips=True, replacement={"ip": "$0"})]
    fast = [P.redact(TEXTS, c) for c in cfgs]
    for name in ("EMAIL_NEEDS", "IP_NEEDS", "PHONE_NEEDS"):
        monkeypatch.setattr(P, name, None)          # the plain passes over every row
    for c, (s, counts, rows) in zip(cfgs, fast):
        s2, counts2, rows2 = P.redact(TEXTS, c)
        assert s.to_list() == s2.to_list() and counts == counts2 and rows == rows2
    assert fast[0][1]["phone"] > 0 and fast[0][1]["ip"] > 0 and fast[0][1]["email"] > 0


def ngram_reference(text: str, top: set[int], dup: set[int], min_words: int) -> dict[str, float]:
    """Top / duplicated n-gram character fractions for any n, per row in plain Python."""
    L = len(text)
    words = re.findall(r"\w+", text)
    small = len(words) < min_words
    out = {}
    for n in top:
        out[f"top_{n}_gram"] = (0 if small else ref.top_ngram_chars(words, n)) / L if L else 0.0
    for n in dup:
        out[f"dup_{n}_gram"] = (0 if small else ref.dup_ngram_chars(words, n)) / L if L else 0.0
    return out


@pytest.mark.parametrize("top,dup,min_words", [
    ({2: 0.2, 3: 0.18, 4: 0.16}, {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.1}, 0),
    ({1: 0.3, 7: 0.1}, {2: 0.3, 5: 0.1, 12: 0.1}, 8),
])
def test_ngram_pruning_equals_reference_for_any_n(top, dup, min_words):
    rng = random.Random(len(top) + min_words)
    hh = [json.loads(x)["chosen"] for x in (DATA / "hh_rlhf_harmless_base_test_first300.jsonl")
          .read_text(encoding="utf-8").splitlines()][:120]
    vocab = "a b c the of and é x_y 12 buy now".split()
    rep = [" ".join(rng.choice(vocab[:rng.randrange(1, len(vocab))]) for _ in range(rng.randrange(0, 90)))
           for _ in range(600)]
    texts = hh + rep + [t for t in TEXTS.to_list()[:800] if t is not None]
    cfg = RepetitionConfig(top_n_grams=top, dup_n_grams=dup, min_words=min_words)
    frame, _ = repetition_fractions(pl.Series(texts), cfg)
    for t, row in zip(texts, frame.to_dicts()):
        for k, v in ngram_reference(t, set(top), set(dup), min_words).items():
            assert row[k] == pytest.approx(v, abs=1e-12), (k, t[:80])
    assert (frame.get_column(f"dup_{min(dup)}_gram") > 0).sum() > 50


def test_boilerplate_fraction_equals_per_line_count():
    rx = re.compile("|".join(f"(?:{p})" for p in DEFAULT_BOILERPLATE), re.I)
    # Python's str.strip also strips \x1c-\x1f, which are not Unicode White_Space (regex \s)
    texts = [t for t in TEXTS.to_list() if t is not None and not re.search("[\x1c-\x1f\x85\u2028]", t)]
    texts += ["All rights reserved\nhello", "lorem ipsum\n\nprivacy policy\nx", "We use cookies"]
    res = run_clean(texts, fix_unicode=False, normalize="none", whitespace=False, empty=False,
                    boilerplate=True, boilerplate_threshold=0.5)
    got = {int(i[1:]) for i in res.rejected.get_column("id")}
    want = set()
    for i, t in enumerate(texts):
        lines = [ln for ln in t.split("\n") if ln.strip()]
        if lines and sum(bool(rx.search(ln)) for ln in lines) / len(lines) >= 0.5:
            want.add(i)
    assert got == want and len(want) >= 3
