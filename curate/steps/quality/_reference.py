"""The heuristic rules written row by row in plain Python — the obvious implementation, used by
the tests and by bench/filters.py (as the pandas ``apply`` peer) to check that the vectorised
steps decide exactly the same. Not used by the pipeline."""
from __future__ import annotations

import re
from collections import Counter
from typing import Any

from curate.steps.quality._stats import LANG_DEFAULTS, STOP_WORDS

#: Cheap rules first, repetition (the costly one) last — the order pipelines should use too.
ORDER = ("quality_word_count", "quality_word_length", "quality_symbols", "quality_lines",
         "quality_stop_words", "quality_alpha", "quality_repetition")
_BULLETS = set("•●○▪◦‣∙·-*–")


def _frac(hits: int, total: int) -> float:
    return hits / total if total else 0.0


def dups(elems: list[str]) -> tuple[int, int]:
    """How many elements repeat an earlier one, and their characters."""
    seen, n, chars = set(), 0, 0
    for e in elems:
        if e in seen:
            n, chars = n + 1, chars + len(e)
        seen.add(e)
    return n, chars


def top_ngram_chars(words: list[str], n: int) -> int:
    """Characters of the most repeated n-gram times its count (0 when none repeats)."""
    grams = Counter(" ".join(words[i:i + n]) for i in range(len(words) - n + 1))
    return max((len(g) * k for g, k in grams.items() if k >= 2), default=0)


def dup_ngram_chars(words: list[str], n: int) -> int:
    """Characters of the words covered by n-grams that repeat an earlier occurrence."""
    seen, covered = set(), set()
    for i in range(len(words) - n + 1):
        g = tuple(words[i:i + n])
        if g in seen:
            covered.update(range(i, i + n))
        seen.add(g)
    return sum(len(words[i]) for i in covered)


def element_checks(text: str) -> list[tuple[str, float]]:
    """Duplicate paragraph and line fractions (by count and by characters)."""
    L = len(text)
    paras = [p for p in re.split(r"\n{2,}", text.strip()) if p]
    d, c = dups(paras)
    checks = [("dup_para_frac", _frac(d, len(paras))), ("dup_para_char_frac", _frac(c, L))]
    lines = [x for x in text.split("\n") if x]
    d, c = dups(lines)
    return checks + [("dup_line_frac", _frac(d, len(lines))), ("dup_line_char_frac", _frac(c, L))]


def repetition(text: str, top_n: dict[int, float], dup_n: dict[int, float],
               t: dict[str, float]) -> tuple[str, float, float] | None:
    """First Gopher repetition rule broken (clean's definitions) as (rule, value, threshold), or
    None. Cheap element checks first; n-grams are counted only when those pass."""
    L = len(text)
    for name, v in element_checks(text):
        if v > t[name]:
            return name, v, t[name]
    words = re.findall(r"\w+", text)
    for n, thr in sorted(top_n.items()):
        v = _frac(top_ngram_chars(words, n), L)
        if v > thr:
            return f"top_{n}_gram", v, thr
    for n, thr in sorted(dup_n.items()):
        v = _frac(dup_ngram_chars(words, n), L)
        if v > thr:
            return f"dup_{n}_gram", v, thr
    return None


def decide(text: str | None, thresholds: dict[str, Any] | None = None, language: str = "en",
           repetition_cfg: Any = None) -> str | None:
    """The first rule (in :data:`ORDER`) that ``text`` breaks, or None to keep it."""
    t = {**LANG_DEFAULTS[language], **(thresholds or {})}
    text = text or ""
    words = re.findall(r"\w+", text)
    nw = len(words)
    if t["min_words"] is not None and nw < t["min_words"]:
        return "too_few_words"
    if t["max_words"] is not None and nw > t["max_words"]:
        return "too_many_words"
    mwl = sum(len(w) for w in words) / nw if nw else 0.0
    if t["min_mean_word_length"] is not None and mwl < t["min_mean_word_length"]:
        return "short_mean_word_length"
    if t["max_mean_word_length"] is not None and mwl > t["max_mean_word_length"]:
        return "long_mean_word_length"
    if t["max_symbol_ratio"] is not None and nw:
        sym = text.count("#") + len(re.findall(r"\.\.\.|…", text))
        if sym / nw > t["max_symbol_ratio"]:
            return "symbol_ratio"
    lines = [ln for ln in text.split("\n") if ln.strip()]
    if t["max_bullet_lines_frac"] is not None and \
            _frac(sum(ln.lstrip(" \t")[:1] in _BULLETS for ln in lines), len(lines)) > t["max_bullet_lines_frac"]:
        return "bullet_lines"
    if t["max_ellipsis_lines_frac"] is not None and \
            _frac(sum(ln.rstrip(" \t").endswith(("...", "…")) for ln in lines), len(lines)) > t["max_ellipsis_lines_frac"]:
        return "ellipsis_lines"
    stop = STOP_WORDS.get(language)
    if t["min_stop_words"] is not None and stop:
        sw = set(stop)
        if sum(w.lower() in sw for w in words) < t["min_stop_words"]:
            return "few_stop_words"
    toks = text.split()
    if t["min_alpha_frac"] is not None and \
            _frac(sum(any(ch.isalpha() for ch in tok) for tok in toks), len(toks)) < t["min_alpha_frac"]:
        return "low_alpha_frac"
    if repetition_cfg is not None:
        rc = repetition_cfg
        r = repetition(text, rc.top_n_grams, rc.dup_n_grams,
                       {k: getattr(rc, k) for k in ("dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac")})
        if r:
            return r[0]
    return None
