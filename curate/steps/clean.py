"""The ``clean`` step: repair and normalise text, redact PII, and drop rows that are empty, of the
wrong length, in the wrong language, repetitive or boilerplate.

Mappers (in order): ``strip_html`` → ``fix_unicode`` → ``normalize`` → ``whitespace`` → ``pii``,
applied to every column in ``columns``. Filters (in order, first failure is the row's reason):
``empty_text``, chars, words, ``boilerplate``, ``repetition``, tokens, ``language`` — cheap polars
checks first, so tokenizers and lingua only see rows that survived them. Rejected rows carry the
cleaned text (so redacted PII never reaches the rejects file).

    steps:
      - clean:
          strip_html: true
          pii: {phones: false}                 # or `pii: true` for every type
          min_words: 3
          max_tokens: 2048
          tokenizer: Qwen/Qwen2.5-0.5B-Instruct
          languages: [en]
          language_candidates: [en, de, fr, es] # default: every language lingua knows
          repetition: true                     # Gopher / DataTrove thresholds
          boilerplate: true

Manifest stats: ``rejected_by_reason``, rows changed per mapper (``html_stripped``,
``unicode_fixed``, ``normalized``, ``whitespace_fixed``, ``pii_rows``), ``pii_redacted`` per type,
``repetition_rules`` (which Gopher rule fired), ``languages_detected``.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

import polars as pl
from pydantic import Field, field_validator, model_validator

from curate import records as R
from curate.errors import DataError, StepError
from curate.registry import register_step
from curate.step import Step, StepConfig, StepContext, StepResult
from curate.steps import _clean_text as T
from curate.steps._clean_pii import PiiConfig, redact
from curate.steps._clean_repetition import (DEFAULT_BOILERPLATE, RepetitionConfig,
                                            boilerplate_fraction, repetition)

__all__ = ["Clean", "CleanConfig", "PiiConfig", "RepetitionConfig"]


class CleanConfig(StepConfig):
    """Options of the ``clean`` step; every part can be switched off on its own."""

    columns: list[str] = Field(default_factory=lambda: ["text"], min_length=1,
                               description="String columns to clean (mappers apply to all of them).")
    filter_column: str | None = Field(default=None, description="Column the filters look at (default: the first of `columns`).")
    # -- mappers
    strip_html: bool = Field(default=False, description="HTML to text (BeautifulSoup + lxml) on rows with tags/entities.")
    fix_unicode: bool = Field(default=True, description="Repair mojibake with ftfy on rows with mojibake markers.")
    normalize: Literal["NFC", "NFKC", "none"] = Field(default="NFC", description="Unicode normal form (or none).")
    whitespace: bool = Field(default=True, description="Normalise newlines, drop control chars (keep \\n \\t), collapse runs, strip.")
    pii: PiiConfig | bool | None = Field(default=None, description="Redact PII (`true` for all types with default placeholders).")
    # -- filters
    empty: bool = Field(default=True, description="Reject rows whose text is empty or null after cleaning (reason empty_text).")
    min_chars: int | None = Field(default=None, ge=0, description="Reject texts with fewer characters (too_few_chars).")
    max_chars: int | None = Field(default=None, ge=1, description="Reject texts with more characters (too_many_chars).")
    min_words: int | None = Field(default=None, ge=0, description="Reject texts with fewer whitespace-separated words (too_few_words).")
    max_words: int | None = Field(default=None, ge=1, description="Reject texts with more words (too_many_words).")
    min_tokens: int | None = Field(default=None, ge=0, description="Reject texts with fewer model tokens (too_few_tokens); needs `tokenizer`.")
    max_tokens: int | None = Field(default=None, ge=1, description="Reject texts with more model tokens (too_many_tokens); needs `tokenizer`.")
    tokenizer: str | None = Field(default=None, description="HF tokenizer name or local path used for token counts.")
    languages: list[str] | None = Field(default=None, description="Keep-list of ISO 639-1 codes (e.g. [en]); other detected languages are rejected (language).")
    language_candidates: list[str] | None = Field(
        default=None, description="Languages lingua chooses among (ISO 639-1); default: all it knows (slower, more memory).")
    language_low_accuracy: bool = Field(default=False, description="lingua's low-accuracy mode: faster, weaker on short texts.")
    min_lang_chars: int = Field(default=20, ge=0, description="Texts shorter than this are not language-filtered.")
    reject_undetected: bool = Field(default=False, description="Also reject texts whose language lingua cannot decide.")
    language_min_confidence: float = Field(
        default=0.0, ge=0, le=1,
        description="Also reject kept-language texts whose lingua confidence is below this (0 = off).")
    repetition: RepetitionConfig | bool | None = Field(default=None, description="Gopher repetition rules (`true` for the DataTrove defaults).")
    boilerplate: bool = Field(default=False, description="Reject rows whose fraction of boilerplate lines reaches `boilerplate_threshold`.")
    boilerplate_patterns: list[str] = Field(default_factory=lambda: list(DEFAULT_BOILERPLATE),
                                            description="Regexes (case-insensitive, Rust syntax) of boilerplate lines.")
    boilerplate_threshold: float = Field(default=0.5, gt=0, le=1, description="Reject at this fraction of matching lines.")

    @field_validator("pii", "repetition", mode="before")
    @classmethod
    def _bool_switch(cls, v: Any) -> Any:
        """`true` turns a part on with its defaults, `false` turns it off."""
        if v is True:
            return {}
        if v is False:
            return None
        return v

    @field_validator("languages", "language_candidates")
    @classmethod
    def _iso(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        from curate.steps._clean_lang import iso_codes
        iso_codes(v)
        return [c.strip().lower() for c in v]

    @field_validator("boilerplate_patterns")
    @classmethod
    def _regex(cls, v: list[str]) -> list[str]:
        for p in v:
            try:
                pl.Series([""]).str.contains(p)
            except Exception as e:  # polars raises ComputeError for bad regexes
                raise ValueError(f"invalid regex {p!r}: {str(e).splitlines()[0]}") from None
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "CleanConfig":
        if (self.min_tokens is not None or self.max_tokens is not None) and not self.tokenizer:
            raise ValueError("min_tokens/max_tokens need `tokenizer` (an HF tokenizer name or path)")
        for lo, hi in (("min_chars", "max_chars"), ("min_words", "max_words"), ("min_tokens", "max_tokens")):
            a, b = getattr(self, lo), getattr(self, hi)
            if a is not None and b is not None and a > b:
                raise ValueError(f"{lo} ({a}) is larger than {hi} ({b})")
        if self.languages and self.language_candidates and not set(self.languages) & set(self.language_candidates):
            raise ValueError("none of `languages` is among `language_candidates`")
        return self


@lru_cache(maxsize=4)
def _tokenizer(name: str):
    from transformers import AutoTokenizer
    try:
        return AutoTokenizer.from_pretrained(name)
    except Exception as e:
        raise StepError(f"clean: cannot load tokenizer {name!r}: {e}") from e


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


@register_step("clean")
class Clean(Step):
    """Unicode/HTML/whitespace repair, PII redaction and text-quality filters in one pass."""

    Config = CleanConfig
    version = "1"

    # ------------------------------------------------------------------ mappers
    def _check_columns(self, df: pl.DataFrame) -> list[str]:
        c = self.config
        cols = list(dict.fromkeys(c.columns + ([c.filter_column] if c.filter_column else [])))
        for col in cols:
            if col not in df.columns:
                raise DataError(f"step clean: column {col!r} not found (columns: {', '.join(df.columns)}); "
                                "set `columns:` / `filter_column:` or map it with the source's `text:`")
            if df.schema[col] not in (pl.String, pl.Null):
                raise DataError(f"step clean: column {col!r} has type {df.schema[col]}, expected text")
        return cols

    def clean_series(self, s: pl.Series, stats: dict[str, Any]) -> pl.Series:
        """Apply the enabled mappers to one column, adding rows-changed counts to ``stats``."""
        c = self.config
        s = s.cast(pl.String)
        if c.strip_html:
            s, n = T.strip_html(s)
            stats["html_stripped"] = stats.get("html_stripped", 0) + n
        if c.fix_unicode:
            s, n = T.fix_unicode(s)
            stats["unicode_fixed"] = stats.get("unicode_fixed", 0) + n
        if c.normalize != "none":
            s, n = T.normalize(s, c.normalize)
            stats["normalized"] = stats.get("normalized", 0) + n
        if c.whitespace:
            s, n = T.clean_whitespace(s)
            stats["whitespace_fixed"] = stats.get("whitespace_fixed", 0) + n
        if c.pii is not None:
            s, counts, n = redact(s, c.pii)
            red = stats.setdefault("pii_redacted", {})
            for k, v in counts.items():
                red[k] = red.get(k, 0) + v
            stats["pii_rows"] = stats.get("pii_rows", 0) + n
        return s

    # ------------------------------------------------------------------ filters
    def _filter(self, df: pl.DataFrame, col: str, stats: dict[str, Any]) -> tuple[pl.Series, pl.Series]:
        """First failing reason and its detail per row (null where the row is kept)."""
        c = self.config
        text = df.get_column(col).cast(pl.String)
        n = len(text)
        reason = pl.Series("reason", [None] * n, dtype=pl.String)
        detail = pl.Series("detail", [None] * n, dtype=pl.String)
        frame = pl.DataFrame({"t": text})

        def mark(fail: pl.Series, why: str, det: pl.Series | str) -> None:
            nonlocal reason, detail
            new = fail.fill_null(False) & reason.is_null()
            if not new.any():
                return
            det_s = det if isinstance(det, pl.Series) else pl.Series([det] * n, dtype=pl.String)
            reason = pl.select(pl.when(new).then(pl.lit(why)).otherwise(reason)).to_series()
            detail = pl.select(pl.when(new).then(det_s.cast(pl.String)).otherwise(detail)).to_series()

        def ev(expr: pl.Expr) -> pl.Series:
            return frame.select(expr).to_series()

        t = pl.col("t")
        if c.empty:
            mark(ev(t.is_null() | (t.str.len_chars() == 0)), "empty_text", "empty after cleaning")
        if c.min_chars is not None or c.max_chars is not None:
            chars = ev(t.str.len_chars())
            if c.min_chars is not None:
                mark(chars < c.min_chars, "too_few_chars", ev(pl.format("{} chars < {}", t.str.len_chars(), pl.lit(c.min_chars))))
            if c.max_chars is not None:
                mark(chars > c.max_chars, "too_many_chars", ev(pl.format("{} chars > {}", t.str.len_chars(), pl.lit(c.max_chars))))
        if c.min_words is not None or c.max_words is not None:
            w = t.str.count_matches(r"\S+")
            words = ev(w)
            if c.min_words is not None:
                mark(words < c.min_words, "too_few_words", ev(pl.format("{} words < {}", w, pl.lit(c.min_words))))
            if c.max_words is not None:
                mark(words > c.max_words, "too_many_words", ev(pl.format("{} words > {}", w, pl.lit(c.max_words))))
        if c.boilerplate:
            frac = boilerplate_fraction(text, c.boilerplate_patterns)
            mark(frac >= c.boilerplate_threshold, "boilerplate",
                 pl.select(pl.format("{} of lines are boilerplate", pl.lit(frac).round(2))).to_series())

        def alive_idx() -> pl.Series:
            return (reason.is_null() & text.is_not_null()).arg_true()

        def mark_subset(idx: pl.Series, fail: pl.Series, why: str, det: pl.Series) -> None:
            full_fail = pl.Series([False] * n).scatter(idx, fail.fill_null(False))
            full_det = pl.Series([None] * n, dtype=pl.String).scatter(idx, det.cast(pl.String))
            mark(full_fail, why, full_det)

        if c.repetition is not None:
            idx = alive_idx()
            if idx.len():
                rep = repetition(text.gather(idx), c.repetition)
                mark_subset(idx, rep["rule"].is_not_null(), "repetition", rep["detail"])
                hit = rep["rule"].drop_nulls()
                if hit.len():
                    stats["repetition_rules"] = dict(hit.value_counts().rows())
        if c.tokenizer and (c.min_tokens is not None or c.max_tokens is not None):
            idx = alive_idx()
            if idx.len():
                toks = token_counts(text.gather(idx), c.tokenizer)
                tf = pl.DataFrame({"n": toks})
                if c.min_tokens is not None:
                    mark_subset(idx, toks < c.min_tokens, "too_few_tokens",
                                tf.select(pl.format("{} tokens < {}", "n", pl.lit(c.min_tokens))).to_series())
                if c.max_tokens is not None:
                    mark_subset(idx, toks > c.max_tokens, "too_many_tokens",
                                tf.select(pl.format("{} tokens > {}", "n", pl.lit(c.max_tokens))).to_series())
        if c.languages:
            self._language(text, alive_idx(), mark_subset, stats)
        return reason, detail

    def _language(self, text: pl.Series, idx: pl.Series, mark_subset, stats: dict[str, Any]) -> None:
        from curate.steps import _clean_lang as L

        c = self.config
        sub = text.gather(idx)
        long_enough = (sub.str.len_chars() >= c.min_lang_chars).arg_true()
        idx, sub = idx.gather(long_enough), sub.gather(long_enough)
        if not idx.len():
            return
        cands = tuple(c.language_candidates) if c.language_candidates else None
        langs = L.detect(sub, cands, c.language_low_accuracy)
        stats["languages_detected"] = {(k or "undetected"): v for k, v in langs.value_counts().rows()}
        fail = ~langs.is_in(c.languages).fill_null(False)
        if not c.reject_undetected:
            fail = fail & langs.is_not_null()
        low_conf = pl.Series([False] * len(langs))
        if c.language_min_confidence > 0:
            conf = L.confidences(sub, langs, cands, c.language_low_accuracy)
            low_conf = ~fail & langs.is_not_null() & (conf < c.language_min_confidence).fill_null(False)
            fail = fail | low_conf
        fidx = fail.arg_true()
        if not fidx.len():
            return
        if c.language_min_confidence > 0:
            conf_f = conf.gather(fidx)
        else:
            conf_f = L.confidences(sub.gather(fidx), langs.gather(fidx), cands, c.language_low_accuracy)
        det = pl.DataFrame({"l": langs.gather(fidx), "c": conf_f, "low": low_conf.gather(fidx)}).select(
            pl.when(pl.col("l").is_null()).then(pl.lit("undetected"))
            .when(pl.col("low")).then(pl.format("detected {} ({}) < {}", "l", pl.col("c").round(2),
                                                pl.lit(c.language_min_confidence)))
            .otherwise(pl.format("detected {} ({})", "l", pl.col("c").round(2)))).to_series()
        mark_subset(idx.gather(fidx), pl.Series([True] * fidx.len()), "language", det)

    # ------------------------------------------------------------------ step
    def process(self, df: pl.DataFrame, ctx: StepContext) -> StepResult:
        c = self.config
        self._check_columns(df)
        stats: dict[str, Any] = {"rows_in": df.height}
        out = df.with_columns(self.clean_series(df.get_column(col), stats).alias(col)
                              for col in c.columns)
        reason, detail = self._filter(out, c.filter_column or c.columns[0], stats)
        work = out.with_columns(reason.alias("_reason"), detail.alias("_detail"))
        kept = work.filter(pl.col("_reason").is_null()).drop("_reason", "_detail")
        rej = work.filter(pl.col("_reason").is_not_null())
        rej = R.reject(rej, self.name, pl.col("_reason"), pl.col("_detail")).drop("_reason", "_detail")
        stats["rows_kept"] = kept.height
        stats["rejected_by_reason"] = dict(rej.group_by(R.REASON).len().rows()) if rej.height else {}
        return StepResult(kept=kept, rejected=rej, stats=stats)
