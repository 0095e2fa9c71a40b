"""Fuzz-style checks: the vectorised heuristic measures (masked, row-parallel, one-pass variants)
equal plain per-row Python definitions on varied text built from the shipped SMS and hh-rlhf
rows plus awkward pieces (whitespace kinds, bullets, ellipses, hashtags, digits, non-Latin
letters), and the seven steps decide like ``_reference.decide`` on it."""
from __future__ import annotations

import random
import re

import polars as pl
import pytest

from curate.steps.clean._repetition import RepetitionConfig
from curate.steps.quality import _stats as S
from curate.steps.quality import heuristics as H
from curate.steps.quality._reference import _BULLETS, decide
from .conftest import frame, reasons, run_step

PIECES = [" ", " ", " ", "  ", "\t", "\n", "\n\n", "\n\n\n", "\r\n", "\xa0", "\u3000", "\u2028",
          "...", "…", " ...\n", "#", "#tag ", "- ", "\n- ", "\n* ", "\n• ", "·", "–", "12", "3.5",
          "١٢", "x_y", "é", "Zoë", "日本語", "Ελλάδα", "!", "?", ".", ")", "\"", "”", "’", "&", "--",
          "the ", "and ", "of ", "with ", "to be ", "buy now ", "buy now ", "Home\n", "Home\n"]


def fuzz_texts(sms: pl.DataFrame, hh: pl.DataFrame, n: int = 2500, seed: int = 11) -> list[str | None]:
    """Texts mixing real words and lines with ``PIECES``; some are real rows as they are."""
    rng = random.Random(seed)
    real = sms.get_column("text").to_list() + hh.get_column("text").to_list()
    words = [w for t in real[:3000] for w in t.split(" ") if w]
    out: list[str | None] = [None, "", " ", "\n", "...", "#", "- a"]
    for i in range(n):
        if i % 5 == 0:
            out.append(rng.choice(real))
            continue
        parts = []
        for _ in range(rng.randrange(0, 80)):
            parts.append(rng.choice(PIECES) if rng.random() < 0.35 else rng.choice(words) + " ")
        out.append("".join(parts))
    return out


def py_measures(t: str | None) -> dict[str, float]:
    """Each measure of ``_stats`` written per row in plain Python."""
    t = t or ""
    words = re.findall(r"\w+", t)
    nw = len(words)
    lines = [ln for ln in t.split("\n") if ln.strip()]
    nl = len(lines)
    toks = t.split()

    def frac(k: int, d: int) -> float:
        return k / d if d else 0.0
    return {
        "n_words": nw,
        "mean_word_length": sum(map(len, words)) / nw if nw else None,
        "symbol_ratio": frac(t.count("#") + len(re.findall(r"\.\.\.|…", t)), nw),
        "n_lines": nl,
        "bullet_frac": frac(sum(ln.lstrip(" \t")[:1] in _BULLETS for ln in lines), nl),
        "ellipsis_frac": frac(sum(ln.rstrip(" \t").endswith(("...", "…")) for ln in lines), nl),
        "punct_frac": frac(sum(ln.rstrip(" \t")[-1:] in set(".!?\"'”’)]") for ln in lines), nl),
        "short_line_frac": frac(sum(len(ln) <= 30 for ln in lines), nl),
        "alpha_frac": frac(sum(any(c.isalpha() for c in tok) for tok in toks), len(toks)),
    }


def test_measures_equal_plain_python(sms, hh):
    texts = fuzz_texts(sms, hh)
    df = pl.DataFrame({"text": texts}, schema={"text": pl.String})
    names = list(py_measures("").keys())
    got = df.select(**{k: getattr(S, k)("text") for k in names}).to_dicts()
    for t, row in zip(texts, got):
        ref = py_measures(t)
        for k in names:
            assert row[k] == pytest.approx(ref[k], abs=1e-12), (k, t)


def test_steps_decide_like_the_reference_on_fuzzed_text(sms, hh):
    texts = fuzz_texts(sms, hh, n=2000, seed=5)
    df = frame(texts)
    got: dict[str, str] = {}
    details: dict[str, str] = {}
    for s in [H.WordCount(min_words=3), H.WordLength(), H.Symbols(), H.Lines(), H.StopWords(),
              H.Alpha(), H.Repetition()]:
        res = run_step(s, df)
        assert res.kept.height + res.rejected.height == df.height
        assert sum(res.stats["rejected_by_reason"].values()) == res.rejected.height
        df = res.kept
        got.update(reasons(res))
        details.update(dict(res.rejected.select("id", "detail").rows()))
    ref = [decide(t, {"min_words": 3}, "en", RepetitionConfig()) for t in texts]
    assert [got.get(f"r{i}") for i in range(len(texts))] == ref
    assert len(set(ref)) >= 9
    # every reject explains itself: "<value> <op> <threshold>"
    assert all(re.fullmatch(r"-?[0-9.]+(e-?[0-9]+)? [<>] \S+", d) for d in details.values())


def test_detail_strings_match_the_generic_cascade(sms):
    """The heuristic steps format details only for rejected rows; the strings are the ones the
    generic per-rule ``format`` cascade gives."""
    from curate.step import cascade
    from curate.steps.quality._base import fmt
    df = frame(sms.get_column("text").head(600).to_list() + ["#a #b #c", "x", "... ...\n... ..."])
    for s in [H.WordCount(min_words=5, max_words=30), H.Symbols(), H.Lines(min_punct_lines_frac=0.5)]:
        res = run_step(s, df)
        work = s.prepare(df, None)
        rules = s._all()
        _, detail = cascade(s.filters(), {r: fmt(pl.col(m), "<" if op == "min" else ">", thr)
                                          for r, m, _, op, thr in rules})
        want = dict(work.select("id", detail.alias("d")).filter(pl.col("d").is_not_null()).rows())
        assert dict(res.rejected.select("id", "detail").rows()) == want and want


def test_row_parallel_measures_keep_row_order():
    from curate.steps.clean._parallel import with_columns_parallel
    texts = [("a " * (i % 7)) + str(i) for i in range(9000)]
    df = pl.DataFrame({"text": texts})
    par = with_columns_parallel(df, {"w": S.n_words("text")}, min_rows=1000)
    assert par.get_column("text").to_list() == texts
    assert par.get_column("w").to_list() == [(i % 7) + 1 for i in range(9000)]
