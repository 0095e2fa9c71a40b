"""Heuristic quality filters in the style of Gopher / C4 / FineWeb, one registered step per rule
family, vectorised in polars. Defaults per language live in ``_stats.LANG_DEFAULTS`` (Gopher's
published values for English); every threshold can be set per step and per column (``fields``).

    steps:
      - quality_word_count: {min_words: 3}                 # SMS-length texts
      - quality_word_length: {}                            # mean word length 3..10
      - quality_symbols: {}                                # (# + ...) / words <= 0.1
      - quality_lines: {max_bullet_lines_frac: 0.9, max_ellipsis_lines_frac: 0.3}
      - quality_repetition: {}                             # Gopher repetition (clean's rules)
      - quality_stop_words: {min_stop_words: 2}
      - quality_alpha: {min_alpha_frac: 0.8}

Reasons (manifest ``rejected_by_reason``): too_few_words, too_many_words, short_mean_word_length,
long_mean_word_length, symbol_ratio, bullet_lines, ellipsis_lines, few_punct_lines, short_lines,
the Gopher rule names of ``quality_repetition`` (dup_line_frac, top_2_gram, ...), few_stop_words,
low_alpha_frac. With several columns each reason gets ``[column]``.
"""
from __future__ import annotations

import polars as pl
from pydantic import Field

from curate.registry import register_step

try:                                   # clean became a package (curate/steps/clean/)
    from curate.steps.clean._repetition import RepetitionConfig, repetition_fractions
except ImportError:                     # pragma: no cover - the flat layout before it
    from curate.steps._clean_repetition import RepetitionConfig, repetition_fractions
from curate.steps.quality import _stats as S
from curate.steps.quality._base import HeuristicConfig, HeuristicFilter


def _bounds(name: str, value: pl.Expr, lo, hi, lo_reason: str, hi_reason: str):
    """Rules for a measure with optional lower/upper thresholds (nulls measure as 0)."""
    value = value.fill_null(0)
    return [(lo_reason, name, value, "min", lo), (hi_reason, name, value, "max", hi)]


# ------------------------------------------------------------------------ word count
class WordCountConfig(HeuristicConfig):
    """Bounds on the number of words (``\\w+`` runs). Gopher: 50 … 100,000."""

    thresholds = ("min_words", "max_words")
    min_words: int | None = Field(default=None, ge=0, description="Fewest words (default per language; en: 50).")
    max_words: int | None = Field(default=None, ge=1, description="Most words (en: 100,000).")


@register_step("quality_word_count")
class WordCount(HeuristicFilter):
    """Reject texts with too few or too many words."""

    Config = WordCountConfig

    def rules(self, col):
        c = self.config
        return _bounds("words", S.n_words(col), c.threshold("min_words", col), c.threshold("max_words", col),
                       "too_few_words", "too_many_words")


# ------------------------------------------------------------------------ mean word length
class WordLengthConfig(HeuristicConfig):
    """Bounds on the mean word length in characters. Gopher: 3 … 10 (de: 3 … 13)."""

    thresholds = ("min_mean_word_length", "max_mean_word_length")
    min_mean_word_length: float | None = Field(default=None, ge=0, description="Shortest mean word length.")
    max_mean_word_length: float | None = Field(default=None, gt=0, description="Longest mean word length.")


@register_step("quality_word_length")
class WordLength(HeuristicFilter):
    """Reject texts whose words are on average too short (symbol soup) or too long (hashes, URLs)."""

    Config = WordLengthConfig

    def rules(self, col):
        c = self.config
        return _bounds("mwl", S.mean_word_length(col), c.threshold("min_mean_word_length", col),
                       c.threshold("max_mean_word_length", col),
                       "short_mean_word_length", "long_mean_word_length")


# ------------------------------------------------------------------------ symbols
class SymbolsConfig(HeuristicConfig):
    """Most (``#`` + ellipses) per word. Gopher: 0.1."""

    thresholds = ("max_symbol_ratio",)
    max_symbol_ratio: float | None = Field(default=None, ge=0, description="Most symbols per word (en: 0.1).")


@register_step("quality_symbols")
class Symbols(HeuristicFilter):
    """Reject hashtag- or ellipsis-heavy texts."""

    Config = SymbolsConfig

    def rules(self, col):
        return _bounds("sym", S.symbol_ratio(col), None, self.config.threshold("max_symbol_ratio", col),
                       "", "symbol_ratio")


# ------------------------------------------------------------------------ lines
class LinesConfig(HeuristicConfig):
    """Line-shape rules: Gopher's bullets/ellipses, FineWeb's terminal punctuation / short lines."""

    thresholds = ("max_bullet_lines_frac", "max_ellipsis_lines_frac", "min_punct_lines_frac",
                  "max_short_lines_frac")
    max_bullet_lines_frac: float | None = Field(default=None, ge=0, le=1, description="Most lines starting with a bullet (en: 0.9).")
    max_ellipsis_lines_frac: float | None = Field(default=None, ge=0, le=1, description="Most lines ending in an ellipsis (en: 0.3).")
    min_punct_lines_frac: float | None = Field(default=None, ge=0, le=1, description="Fewest lines ending in terminal punctuation (FineWeb: 0.12; default off).")
    max_short_lines_frac: float | None = Field(default=None, ge=0, le=1, description="Most lines of ≤ 30 characters (FineWeb: 0.67; default off).")


@register_step("quality_lines")
class Lines(HeuristicFilter):
    """Reject list-like, truncated or fragmentary texts."""

    Config = LinesConfig

    def rules(self, col):
        c = self.config
        return (_bounds("bullet", S.bullet_frac(col), None, c.threshold("max_bullet_lines_frac", col), "", "bullet_lines")
                + _bounds("ellipsis", S.ellipsis_frac(col), None, c.threshold("max_ellipsis_lines_frac", col), "", "ellipsis_lines")
                + _bounds("punct", S.punct_frac(col), c.threshold("min_punct_lines_frac", col), None, "few_punct_lines", "")
                + _bounds("short", S.short_line_frac(col), None, c.threshold("max_short_lines_frac", col), "", "short_lines"))


# ------------------------------------------------------------------------ stop words
class StopWordsConfig(HeuristicConfig):
    """Fewest stop words (Gopher: 2 of the, be, to, of, and, that, have, with)."""

    thresholds = ("min_stop_words",)
    min_stop_words: int | None = Field(default=None, ge=0, description="Fewest stop-word occurrences (en: 2).")
    stop_words: list[str] | None = Field(default=None, description="Your own list (default: the language's list).")


@register_step("quality_stop_words")
class StopWords(HeuristicFilter):
    """Reject texts without the function words of running prose (tables, keyword lists, code)."""

    Config = StopWordsConfig

    def rules(self, col):
        c = self.config
        words = c.stop_words or S.STOP_WORDS.get(c.language)
        thr = c.threshold("min_stop_words", col)
        if not words or thr is None:
            return []
        return _bounds("stop", S.stop_word_count(col, words), thr, None, "few_stop_words", "")


# ------------------------------------------------------------------------ alphabetic fraction
class AlphaConfig(HeuristicConfig):
    """Fewest tokens holding a letter, as a fraction (Gopher: 0.8)."""

    thresholds = ("min_alpha_frac",)
    min_alpha_frac: float | None = Field(default=None, ge=0, le=1, description="Fewest tokens with a letter (en: 0.8).")


@register_step("quality_alpha")
class Alpha(HeuristicFilter):
    """Reject texts that are mostly numbers, symbols or markup."""

    Config = AlphaConfig

    def rules(self, col):
        return _bounds("alpha", S.alpha_frac(col), self.config.threshold("min_alpha_frac", col), None,
                       "low_alpha_frac", "")


# ------------------------------------------------------------------------ repetition
class QualityRepetitionConfig(HeuristicConfig):
    """Gopher repetition rules (clean's implementation, reused); thresholds as in ``clean.repetition``."""

    thresholds = ("rules",)
    rules: RepetitionConfig = Field(default_factory=RepetitionConfig,
                                    description="Gopher thresholds (DataTrove defaults).")


@register_step("quality_repetition")
class Repetition(HeuristicFilter):
    """Reject texts with duplicated lines/paragraphs or dominant/duplicated n-grams; the
    measured fractions come from ``repetition_fractions`` of clean's repetition module."""

    Config = QualityRepetitionConfig

    def _cfg(self, col: str) -> RepetitionConfig:
        over = self.config.fields.get(col, {}).get("rules")
        return RepetitionConfig(**over) if isinstance(over, dict) else self.config.rules

    def prepare(self, df, ctx):
        from curate import records as R
        self._rules: dict[str, list[tuple[str, float]]] = {}
        for col in self.config.columns:
            R.require_column(df, col, f"step {self.name}")
            frame, rules = repetition_fractions(df.get_column(col).fill_null(""), self._cfg(col))
            self._rules[col] = rules
            df = df.with_columns([frame.get_column(n).alias(f"_q_{col}_{n}") for n, _ in rules])
        self.__dict__.pop("_all_rules", None)         # the rules depend on what prepare measured
        return self.with_detail(df)

    def rules(self, col):
        return [(name, name, pl.col(f"_q_{col}_{name}"), "max", thr)
                for name, thr in getattr(self, "_rules", {}).get(col, [])]
