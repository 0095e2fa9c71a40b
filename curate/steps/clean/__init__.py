"""Text cleaning: repair and normalise text, redact PII, and drop rows that are empty, of the
wrong length, in the wrong language, repetitive or boilerplate.

Each part is a registered step of its own, built on :class:`curate.step.Mapper` or
:class:`curate.step.Filter` (:mod:`.mappers`, :mod:`.filters`, :mod:`.language`). ``clean`` is the
composite that runs them in one step with one set of options:

Mappers (in order): ``strip_html`` → ``fix_unicode`` (mojibake, normal form) →
``normalize_whitespace`` → ``redact_pii``, applied to every column in ``columns``. Filters (in
order, first failure is the row's reason): ``length_filter`` (``empty_text``, chars, words) →
``boilerplate_filter`` → ``repetition_filter`` → ``token_filter`` → ``language_filter``. The
cheap polars checks are evaluated together as one expression; the costly ones (repetition,
tokenizer, lingua) only see the rows that survived them. Rejected rows carry the cleaned text (so
redacted PII never reaches the rejects file).

    steps:
      - clean:
          strip_html: true
          pii: {emails: true}                  # only emails; `pii: true` for every type
          min_words: 3
          max_tokens: 2048
          tokenizer: Qwen/Qwen2.5-0.5B-Instruct
          languages: [en]
          language_candidates: [en, de, fr, es] # default: en + 15 common languages; `all` = 75
          repetition: true                     # Gopher / DataTrove thresholds
          boilerplate: true

Manifest stats: ``rejected_by_reason``, rows changed per mapper (``html_stripped``,
``unicode_fixed``, ``normalized``, ``whitespace_fixed``, ``pii_rows``), ``pii_redacted`` per type,
``repetition_rules`` (which Gopher rule fired), ``languages_detected``, ``language_uncertain``.
"""
from __future__ import annotations

from typing import Any, Literal

import polars as pl
from pydantic import Field, field_validator, model_validator

from curate import records as R
from curate.registry import register_step
from curate.step import Filter, Mapper, Step, StepConfig, StepContext, StepResult, cascade, merge_numeric
from curate.steps.clean._pii import PiiConfig
from curate.steps.clean._repetition import DEFAULT_BOILERPLATE, RepetitionConfig
from curate.steps.clean.filters import (BoilerplateFilter, LengthFilter, RepetitionFilter,
                                        TokenFilter, token_counts)
from curate.steps.clean.language import DEFAULT_CANDIDATES, LanguageFilter
from curate.steps.clean.mappers import (FixUnicode, NormalizeWhitespace, RedactPii, StripHtml,
                                        check_text_columns)

__all__ = ["Clean", "CleanConfig", "PiiConfig", "RepetitionConfig", "StripHtml", "FixUnicode",
           "NormalizeWhitespace", "RedactPii", "LengthFilter", "BoilerplateFilter",
           "RepetitionFilter", "TokenFilter", "LanguageFilter", "token_counts", "DEFAULT_CANDIDATES"]


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
    pii: PiiConfig | bool | None = Field(
        default=None, description="Redact PII: `true` for every type; `{emails: true}` for only the types named true; "
                                  "`{phones: false}` for every type but those named false.")
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
    language_candidates: list[str] | Literal["all"] | None = Field(
        default=None, description="Languages lingua chooses among (ISO 639-1), or `all` (75: slower, more false "
                                  "rejects of short texts). Default: `languages` plus " + ", ".join(DEFAULT_CANDIDATES) + ".")
    language_low_accuracy: bool = Field(default=False, description="lingua's low-accuracy mode: faster, weaker on short texts.")
    min_lang_chars: int = Field(default=20, ge=0, description="Texts shorter than this are not language-filtered: kept and marked language_uncertain.")
    language_uncertain_below: float = Field(
        default=0.5, ge=0, le=1,
        description="Rows detected as another language with confidence below this are kept and marked "
                    "language_uncertain, not rejected (0 = reject them all).")
    language_flag_column: str | None = Field(
        default="language_uncertain",
        description="Boolean column added to kept rows when `languages` is set: true where the language was "
                    "not checked (too short) or not sure (null = no column; the count is in the stats).")
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
    def _iso(cls, v: Any) -> Any:
        from curate.steps.clean.language import _codes
        return _codes(v)

    @field_validator("boilerplate_patterns")
    @classmethod
    def _regex(cls, v: list[str]) -> list[str]:
        from curate.steps.clean.filters import check_regexes
        return check_regexes(v)

    @model_validator(mode="after")
    def _consistent(self) -> "CleanConfig":
        if (self.min_tokens is not None or self.max_tokens is not None) and not self.tokenizer:
            raise ValueError("min_tokens/max_tokens need `tokenizer` (an HF tokenizer name or path)")
        for lo, hi in (("min_chars", "max_chars"), ("min_words", "max_words"), ("min_tokens", "max_tokens")):
            a, b = getattr(self, lo), getattr(self, hi)
            if a is not None and b is not None and a > b:
                raise ValueError(f"{lo} ({a}) is larger than {hi} ({b})")
        if self.languages and isinstance(self.language_candidates, list) \
                and not set(self.languages) & set(self.language_candidates):
            raise ValueError("none of `languages` is among `language_candidates`")
        return self



@register_step("clean")
class Clean(Step):
    """Unicode/HTML/whitespace repair, PII redaction and text-quality filters in one step."""

    Config = CleanConfig
    version = "2"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mappers, self.filter_steps = self.parts()

    def parts(self) -> tuple[list[Mapper], list[Filter]]:
        """The registered mappers and filters this configuration turns on, in run order."""
        c = self.config
        cols, col = {"columns": c.columns}, {"column": c.filter_column or c.columns[0]}
        maps: list[Mapper] = []
        if c.strip_html:
            maps.append(StripHtml(**cols))
        if c.fix_unicode or c.normalize != "none":
            maps.append(FixUnicode(mojibake=c.fix_unicode, normalize=c.normalize, **cols))
        if c.whitespace:
            maps.append(NormalizeWhitespace(**cols))
        if c.pii is not None:
            maps.append(RedactPii(**c.pii.model_dump(), **cols))
        fils: list[Filter] = []
        length = {k: getattr(c, k) for k in ("min_chars", "max_chars", "min_words", "max_words")}
        if c.empty or any(v is not None for v in length.values()):
            fils.append(LengthFilter(empty=c.empty, **length, **col))
        if c.boilerplate:
            fils.append(BoilerplateFilter(patterns=c.boilerplate_patterns, threshold=c.boilerplate_threshold, **col))
        if c.repetition is not None:
            fils.append(RepetitionFilter(**c.repetition.model_dump(), **col))
        if c.tokenizer and (c.min_tokens is not None or c.max_tokens is not None):
            fils.append(TokenFilter(tokenizer=c.tokenizer, min_tokens=c.min_tokens, max_tokens=c.max_tokens, **col))
        if c.languages:
            fils.append(LanguageFilter(
                languages=c.languages, candidates=c.language_candidates, low_accuracy=c.language_low_accuracy,
                min_chars=c.min_lang_chars, uncertain_below=c.language_uncertain_below,
                reject_undetected=c.reject_undetected, min_confidence=c.language_min_confidence,
                flag_column=c.language_flag_column, **col))
        return maps, fils

    def run_filters(self, df: pl.DataFrame, ctx: StepContext, stats: dict[str, Any]
                    ) -> tuple[pl.Series, pl.Series, dict[str, pl.Series]]:
        """Reason and detail per row (null = kept) and the filters' annotation columns.

        Consecutive cheap filters form one stage evaluated as a single expression over the rows
        still alive; each costly filter is a stage of its own, so it only sees the survivors."""
        n = df.height
        reason = pl.Series("_reason", [None] * n, dtype=pl.String)
        detail = pl.Series("_detail", [None] * n, dtype=pl.String)
        notes: dict[str, pl.Series] = {}
        stages: list[list[Filter]] = []
        for f in self.filter_steps:
            if stages and not f.costly and not stages[-1][-1].costly:
                stages[-1].append(f)
            else:
                stages.append([f])
        for stage in stages:
            idx = reason.is_null().arg_true()
            if not idx.len():
                break
            sub = df if idx.len() == n else df[idx]
            checks, dets, anns = [], {}, {}
            for f in stage:
                sub = f.prepare(sub, ctx)
                checks += f.filters()
                dets.update(f.details())
                anns.update(f.annotations())
            r, d = cascade(checks, dets)
            # reason on every row (lazy, so checks shared by several filters run once); details
            # (formatted numbers) only on the rows this stage rejects
            res = sub.lazy().select(r.alias("_reason"), **anns).collect()
            for f in stage:
                stats.update(merge_numeric([stats, f.filter_stats(sub)]))
            hit = res.get_column("_reason").is_not_null().arg_true()
            reason = reason.scatter(idx, res["_reason"])
            if hit.len():
                detail = detail.scatter(idx.gather(hit), sub[hit].lazy().select(d).collect().to_series())
            for name in anns:
                base = notes.get(name, pl.Series(name, [None] * n, dtype=res.schema[name]))
                notes[name] = base.scatter(idx, res[name])
        return reason, detail, notes

    def process(self, df: pl.DataFrame, ctx: StepContext) -> StepResult:
        c = self.config
        check_text_columns(df, list(dict.fromkeys(c.columns + ([c.filter_column] if c.filter_column else []))),
                           self.name)
        stats: dict[str, Any] = {"rows_in": df.height}
        out = df
        for m in self.mappers:
            out, st = m.map(out, ctx)
            stats = merge_numeric([stats, st])
        reason, detail, notes = self.run_filters(out, ctx, stats)
        work = out.with_columns(reason, detail, *notes.values())
        kept = work.filter(pl.col("_reason").is_null()).drop("_reason", "_detail")
        rej = work.filter(pl.col("_reason").is_not_null()).drop(list(notes))
        rej = R.reject(rej, self.name, pl.col("_reason"), pl.col("_detail")).drop("_reason", "_detail")
        stats["rows_kept"] = kept.height
        stats["rejected_by_reason"] = dict(rej.group_by(R.REASON).len().rows()) if rej.height else {}
        return StepResult(kept=kept, rejected=rej, stats=stats)
