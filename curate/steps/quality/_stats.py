r"""Vectorised text statistics for the heuristic filters, and their defaults per language.

Every measure is a polars expression over one string column (no per-row Python; word counts and
lengths come from a byte scan of the column, ``clean._words``):

* words are ``\w+`` runs (as in ``clean``'s repetition rules); tokens are ``\S+`` runs;
* ``symbol_ratio`` = (``#`` + ellipses ``...``/``…``) ÷ words (Gopher);
* line fractions count non-empty lines; a bullet line starts with ``• ● ○ ▪ ◦ ‣ ∙ · - * –``;
* ``alpha_frac`` = tokens holding at least one letter ÷ tokens (Gopher's "80 % of words");
* stop words are counted with word boundaries, case-insensitively.

Defaults follow Gopher (Rae et al. 2021, appendix A) and FineWeb (Penedo et al. 2024), which are
tuned on English web documents; the per-language table only changes what has to change (German
compounds make longer words; stop-word lists are per language; languages written without spaces
switch the word-based rules off). Short texts (SMS, chat turns) need lower word bounds: set them.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from curate.steps.clean._words import word_stats

# Gopher's stop words (English) and the most frequent function words of a few other languages
# (chosen for curate from spaCy's stop-word lists, which are MIT licensed).
STOP_WORDS: dict[str, list[str]] = {
    "en": ["the", "be", "to", "of", "and", "that", "have", "with"],
    "de": ["der", "die", "und", "das", "ist", "nicht", "ein", "zu", "mit", "sich"],
    "fr": ["le", "la", "les", "de", "et", "un", "une", "est", "que", "pas"],
    "es": ["el", "la", "de", "que", "y", "en", "los", "se", "las", "por"],
    "it": ["il", "di", "che", "e", "la", "per", "un", "non", "sono", "della"],
    "nl": ["de", "het", "een", "en", "van", "is", "dat", "niet", "op", "te"],
    "pt": ["o", "a", "de", "que", "e", "do", "da", "em", "um", "para"],
}

#: Threshold defaults; ``None`` switches a rule off. "en" is Gopher/FineWeb as published.
_EN: dict[str, float | int | None] = {
    "min_words": 50, "max_words": 100_000,
    "min_mean_word_length": 3.0, "max_mean_word_length": 10.0,
    "max_symbol_ratio": 0.1,
    "max_bullet_lines_frac": 0.9, "max_ellipsis_lines_frac": 0.3,
    "min_punct_lines_frac": None, "max_short_lines_frac": None,   # FineWeb: 0.12 / 0.67
    "min_stop_words": 2, "min_alpha_frac": 0.8,
}
LANG_DEFAULTS: dict[str, dict[str, float | int | None]] = {
    "en": _EN,
    "de": {**_EN, "max_mean_word_length": 13.0},
    "fr": dict(_EN), "es": dict(_EN), "it": dict(_EN), "nl": {**_EN, "max_mean_word_length": 12.0},
    "pt": dict(_EN),
    # Written without spaces: word counts and word lengths mean nothing; keep line/symbol rules.
    "zh": {**_EN, "min_words": None, "max_words": None, "min_mean_word_length": None,
           "max_mean_word_length": None, "min_stop_words": None, "max_symbol_ratio": None},
    "ja": {**_EN, "min_words": None, "max_words": None, "min_mean_word_length": None,
           "max_mean_word_length": None, "min_stop_words": None, "max_symbol_ratio": None},
    # Any other language: the language-neutral rules only.
    "any": {**_EN, "min_stop_words": None},
}

_BULLET = r"(?m)^[ \t]*[•●○▪◦‣∙·\-\*–]"
_ELLIPSIS_LINE = r"(?m)(?:\.\.\.|…)[ \t]*$"
_LINE = r"(?m)^.*\S.*$"
_PUNCT_LINE = r"(?m)[.!?\"'”’)\]][ \t]*$"
_SHORT_LINE = r"(?m)^[^\n]{0,30}$"
_BLANK_SHORT_LINE = r"(?m)^[^\S\n]{0,30}$"


def text(col: str) -> pl.Expr:
    return pl.col(col).fill_null("")


def n_words(col: str) -> pl.Expr:
    """``\\w+`` runs per row (a byte scan over the column, see ``clean._words``)."""
    return text(col).map_batches(lambda s: pl.Series(word_stats(s)[0]), return_dtype=pl.Int64,
                                 is_elementwise=True)


def mean_word_length(col: str) -> pl.Expr:
    """Characters in words ÷ words (null for texts without words)."""
    def mwl(s: pl.Series) -> pl.Series:
        words, chars = word_stats(s)
        return pl.Series(chars / np.where(words > 0, words, np.nan)).fill_nan(None)
    return text(col).map_batches(mwl, return_dtype=pl.Float64, is_elementwise=True)


def _where(cond: pl.Expr, col: str) -> pl.Expr:
    """The text where ``cond`` holds, ``""`` elsewhere: a costlier measure that only matters on
    some rows is then computed on those rows only (regexes on ``""`` cost nothing)."""
    return pl.when(cond).then(text(col)).otherwise(pl.lit(""))


def symbol_ratio(col: str) -> pl.Expr:
    """(``#`` + ellipses) ÷ words; 0 without symbols, so words are counted only where there are any."""
    t = text(col)
    sym = t.str.count_matches("#", literal=True) + t.str.count_matches(r"\.\.\.|…")
    words = _where(sym > 0, col).str.count_matches(r"\w+")
    return (sym / words.replace(0, None)).fill_null(0.0)


def n_lines(col: str) -> pl.Expr:
    return text(col).str.count_matches(_LINE)


def line_frac(col: str, pattern: str, blank_pattern: str | None = None) -> pl.Expr:
    """Lines matching ``pattern`` (minus those matching ``blank_pattern``) ÷ non-empty lines
    (0 without hits, so lines are counted only on rows with hits)."""
    hits = text(col).str.count_matches(pattern)
    if blank_pattern is not None:
        hits = hits - text(col).str.count_matches(blank_pattern)
    lines = _where(hits > 0, col).str.count_matches(_LINE)
    return (hits / lines.replace(0, None)).fill_null(0.0)


def bullet_frac(col: str) -> pl.Expr:
    return line_frac(col, _BULLET)


def ellipsis_frac(col: str) -> pl.Expr:
    return line_frac(col, _ELLIPSIS_LINE)


def punct_frac(col: str) -> pl.Expr:
    return line_frac(col, _PUNCT_LINE)


def short_line_frac(col: str) -> pl.Expr:
    """Non-blank lines of at most 30 characters ÷ non-blank lines (FineWeb)."""
    return line_frac(col, _SHORT_LINE, _BLANK_SHORT_LINE)


def alpha_frac(col: str) -> pl.Expr:
    """Tokens holding a letter ÷ tokens. It is 1 when every token has a letter, so tokens are
    counted only in texts with a token without one (a run of non-space, non-letter characters
    between spaces or the ends)."""
    t = text(col)
    lacking = t.str.contains(r"(?:^|\s)[^\s\p{L}]+(?:\s|$)")
    some = pl.when(lacking).then(t).otherwise(pl.lit(""))
    frac = some.str.count_matches(r"\S*\p{L}\S*") / some.str.count_matches(r"\S+").replace(0, None)
    return (pl.when(lacking).then(frac)
            .when(t.str.contains(r"\S")).then(pl.lit(1.0)).otherwise(pl.lit(0.0)).fill_null(0.0))


def word_pattern(words: list[str]) -> str:
    """A case-insensitive regex matching any of ``words`` as whole words: ``\\b`` on the sides
    that are word characters (so "ass" does not match "class"); entries are regex-escaped and
    inner whitespace matches any run of whitespace ("call now" matches "call  now")."""
    import re
    parts = []
    for w in sorted({w.strip().lower() for w in words if w and w.strip()}, key=len, reverse=True):
        body = r"\s+".join(re.escape(x) for x in w.split())
        left = r"\b" if re.match(r"\w", w) else ""
        right = r"\b" if re.search(r"\w$", w) else ""
        parts.append(f"{left}{body}{right}")
    if not parts:
        return r"\b\B"          # matches nothing
    return "(?i)(?:" + "|".join(parts) + ")"


def stop_word_count(col: str, words: list[str]) -> pl.Expr:
    return text(col).str.count_matches(word_pattern(words))
