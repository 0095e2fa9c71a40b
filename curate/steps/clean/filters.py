"""Text-quality steps built on :class:`curate.step.Filter`: ``length_filter``, ``boilerplate_filter``,
``repetition_filter`` and ``token_filter`` (``language_filter`` is in :mod:`.language`). Each looks at one ``column``,
rejects with a named reason and a detail (``2 words < 3``, ``detected de (0.93)``), and ``clean``
runs them in this order, the costly ones (repetition, tokens, language) only on surviving rows.

    steps:
      - length_filter: {min_words: 3}
      - language_filter: {languages: [en]}
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, ClassVar

import polars as pl
from pydantic import Field, field_validator, model_validator

from curate.errors import StepError
from curate.registry import register_step
from curate.step import Filter, StepConfig, StepContext
from curate.steps.clean._repetition import DEFAULT_BOILERPLATE, RepetitionConfig, repetition
from curate.steps.clean.mappers import check_text_columns
from curate.extras import require


class TextFilterConfig(StepConfig):
    """Options every text filter accepts."""

    column: str = Field(default="text", description="String column the filter looks at.")


class TextFilter(Filter):
    """A filter over one String column (``config.column``), checked before anything runs."""

    Config: ClassVar[type[TextFilterConfig]] = TextFilterConfig

    @property
    def text(self) -> pl.Expr:
        return pl.col(self.config.column)

    def process(self, df, ctx):
        check_text_columns(df, [self.config.column], self.name)
        return super().process(df, ctx)


def _fill(df: pl.DataFrame, name: str, idx: pl.Series, values: pl.Series, dtype) -> pl.DataFrame:
    """Add column ``name``: ``values`` at rows ``idx``, null elsewhere."""
    col = pl.Series(name, [None] * df.height, dtype=dtype)
    if idx.len():
        col = col.scatter(idx, values.cast(dtype))
    return df.with_columns(col)


# ---------------------------------------------------------------------------- length
class LengthFilterConfig(TextFilterConfig):
    """Empty text and length bounds in characters and words."""

    empty: bool = Field(default=True, description="Reject rows whose text is empty or null (reason empty_text).")
    min_chars: int | None = Field(default=None, ge=0, description="Reject texts with fewer characters (too_few_chars).")
    max_chars: int | None = Field(default=None, ge=1, description="Reject texts with more characters (too_many_chars).")
    min_words: int | None = Field(default=None, ge=0, description="Reject texts with fewer whitespace-separated words (too_few_words).")
    max_words: int | None = Field(default=None, ge=1, description="Reject texts with more words (too_many_words).")

    @model_validator(mode="after")
    def _bounds(self) -> "LengthFilterConfig":
        for lo, hi in (("min_chars", "max_chars"), ("min_words", "max_words")):
            a, b = getattr(self, lo), getattr(self, hi)
            if a is not None and b is not None and a > b:
                raise ValueError(f"{lo} ({a}) is larger than {hi} ({b})")
        return self


@register_step("length_filter")
class LengthFilter(TextFilter):
    """Reject empty texts and texts outside the character / word bounds."""

    Config = LengthFilterConfig

    def filters(self) -> list[tuple[str, pl.Expr]]:
        c, t = self.config, self.text
        chars, words = t.str.len_chars(), t.str.count_matches(r"\S+")
        out = []
        if c.empty:
            out.append(("empty_text", t.is_not_null() & (chars > 0)))
        for reason, on, keep in (("too_few_chars", c.min_chars, lambda v: chars >= v),
                                 ("too_many_chars", c.max_chars, lambda v: chars <= v),
                                 ("too_few_words", c.min_words, lambda v: words >= v),
                                 ("too_many_words", c.max_words, lambda v: words <= v)):
            if on is not None:   # a null text fails only the `empty` check
                out.append((reason, keep(on).fill_null(True)))
        return out

    def details(self) -> dict[str, pl.Expr]:
        c, t = self.config, self.text
        chars, words = t.str.len_chars(), t.str.count_matches(r"\S+")
        return {"empty_text": pl.lit("empty after cleaning"),
                "too_few_chars": pl.format("{} chars < {}", chars, pl.lit(c.min_chars)),
                "too_many_chars": pl.format("{} chars > {}", chars, pl.lit(c.max_chars)),
                "too_few_words": pl.format("{} words < {}", words, pl.lit(c.min_words)),
                "too_many_words": pl.format("{} words > {}", words, pl.lit(c.max_words))}


# ---------------------------------------------------------------------------- boilerplate
def check_regexes(patterns: list[str]) -> list[str]:
    """Validate Rust-syntax regexes the way polars will run them (a config error, not a crash later)."""
    for p in patterns:
        try:
            pl.Series([""]).str.contains(p)
        except Exception as e:  # polars raises ComputeError for bad regexes
            raise ValueError(f"invalid regex {p!r}: {str(e).splitlines()[0]}") from None
    return patterns


class BoilerplateFilterConfig(TextFilterConfig):
    """Which lines count as boilerplate and how many make a row boilerplate."""

    patterns: list[str] = Field(default_factory=lambda: list(DEFAULT_BOILERPLATE),
                                description="Regexes (case-insensitive, Rust syntax) of boilerplate lines.")
    threshold: float = Field(default=0.5, gt=0, le=1, description="Reject at this fraction of matching lines.")

    @field_validator("patterns")
    @classmethod
    def _regex(cls, v: list[str]) -> list[str]:
        return check_regexes(v)


@register_step("boilerplate_filter")
class BoilerplateFilter(TextFilter):
    """Reject rows whose fraction of boilerplate lines (cookie notices, lorem ipsum ...) is high."""

    Config = BoilerplateFilterConfig

    def _fraction(self) -> pl.Expr:
        """Boilerplate lines ÷ non-blank lines. A matching line contains a match of a pattern, so
        lines are split and counted only in texts where some pattern matches (0 elsewhere)."""
        alt = "|".join(f"(?:{p})" for p in self.config.patterns)
        some = pl.when(self.text.str.contains(f"(?i){alt}")).then(self.text).otherwise(pl.lit(""))
        lines = some.str.count_matches(r"(?m)^.*\S.*$")
        hits = some.str.count_matches(rf"(?im)^.*(?:{alt}).*$")
        return (hits / lines.replace(0, None)).fill_null(0.0)

    def filters(self) -> list[tuple[str, pl.Expr]]:
        return [("boilerplate", self._fraction() < self.config.threshold)]

    def details(self) -> dict[str, pl.Expr]:
        return {"boilerplate": pl.format("{} of lines are boilerplate", self._fraction().round(2))}


# ---------------------------------------------------------------------------- repetition
class RepetitionFilterConfig(TextFilterConfig, RepetitionConfig):
    """Gopher repetition thresholds (DataTrove defaults); a rule is skipped when null."""


@register_step("repetition_filter")
class RepetitionFilter(TextFilter):
    """Reject repetitive texts by the Gopher rules (duplicate lines/paragraphs, n-gram coverage)."""

    Config = RepetitionFilterConfig
    costly = True

    def prepare(self, df: pl.DataFrame, ctx: StepContext | None = None) -> pl.DataFrame:
        text = df.get_column(self.config.column).cast(pl.String)
        idx = text.is_not_null().arg_true()
        rep = repetition(text.gather(idx), self.config) if idx.len() else None
        df = _fill(df, "_rep_rule", idx, rep["rule"] if rep is not None else pl.Series([]), pl.String)
        return _fill(df, "_rep_detail", idx, rep["detail"] if rep is not None else pl.Series([]), pl.String)

    def filters(self) -> list[tuple[str, pl.Expr]]:
        return [("repetition", pl.col("_rep_rule").is_null())]

    def details(self) -> dict[str, pl.Expr]:
        return {"repetition": pl.col("_rep_detail")}

    def filter_stats(self, prepared: pl.DataFrame) -> dict[str, Any]:
        hit = prepared.get_column("_rep_rule").drop_nulls()
        return {"repetition_rules": dict(hit.value_counts().rows())} if hit.len() else {}


# ---------------------------------------------------------------------------- tokens
@lru_cache(maxsize=4)
def _tokenizer(name: str):
    require("transformers", extra="ml")
    from transformers import AutoTokenizer
    try:
        return AutoTokenizer.from_pretrained(name)
    except Exception as e:
        raise StepError(f"token counts: cannot load tokenizer {name!r}: {e}") from e


def token_counts(texts: pl.Series, name: str) -> pl.Series:
    """Token count per text with one batched call to the fast (Rust) tokenizer."""
    tok = _tokenizer(name)
    values = texts.fill_null("").to_list()
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is not None:
        enc = backend.encode_batch_fast(values, add_special_tokens=False)
        lens = [len(e) for e in enc]
    else:  # slow (Python) tokenizer
        lens = [len(ids) for ids in tok(values, add_special_tokens=False)["input_ids"]]
    return pl.Series("tokens", lens, dtype=pl.Int64)


class TokenFilterConfig(TextFilterConfig):
    """Length bounds in model tokens."""

    tokenizer: str = Field(description="HF tokenizer name or local path used for token counts.")
    min_tokens: int | None = Field(default=None, ge=0, description="Reject texts with fewer model tokens (too_few_tokens).")
    max_tokens: int | None = Field(default=None, ge=1, description="Reject texts with more model tokens (too_many_tokens).")

    @model_validator(mode="after")
    def _bounds(self) -> "TokenFilterConfig":
        if self.min_tokens is not None and self.max_tokens is not None and self.min_tokens > self.max_tokens:
            raise ValueError(f"min_tokens ({self.min_tokens}) is larger than max_tokens ({self.max_tokens})")
        return self


@register_step("token_filter")
class TokenFilter(TextFilter):
    """Reject texts outside the bounds in tokens of a model's (fast, batched) tokenizer."""

    Config = TokenFilterConfig
    costly = True

    def prepare(self, df: pl.DataFrame, ctx: StepContext | None = None) -> pl.DataFrame:
        text = df.get_column(self.config.column).cast(pl.String)
        idx = text.is_not_null().arg_true()
        n = token_counts(text.gather(idx), self.config.tokenizer) if idx.len() else pl.Series([])
        return _fill(df, "_tokens", idx, n, pl.Int64)

    def filters(self) -> list[tuple[str, pl.Expr]]:
        c, n = self.config, pl.col("_tokens")
        out = []
        if c.min_tokens is not None:
            out.append(("too_few_tokens", n.is_null() | (n >= c.min_tokens)))
        if c.max_tokens is not None:
            out.append(("too_many_tokens", n.is_null() | (n <= c.max_tokens)))
        return out

    def details(self) -> dict[str, pl.Expr]:
        c, n = self.config, pl.col("_tokens")
        return {"too_few_tokens": pl.format("{} tokens < {}", n, pl.lit(c.min_tokens)),
                "too_many_tokens": pl.format("{} tokens > {}", n, pl.lit(c.max_tokens))}

