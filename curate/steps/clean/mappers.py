"""Text repair steps built on :class:`curate.step.Mapper`: ``strip_html``, ``fix_unicode``,
``normalize_whitespace`` and ``redact_pii``. Each rewrites the string ``columns`` it is given
(rows, ids and order unchanged) and counts the rows it changed. ``clean`` chains them in this order.

    steps:
      - strip_html: {}
      - redact_pii: {emails: true}            # only emails; `redact_pii: {}` = every type
"""
from __future__ import annotations

from typing import Any, ClassVar, Literal

import polars as pl
from pydantic import Field

from curate.errors import DataError
from curate.registry import register_step
from curate.step import Mapper, StepConfig, StepContext, merge_numeric
from curate.steps.clean import _text as T
from curate.steps.clean._pii import PiiConfig, redact


def check_text_columns(df: pl.DataFrame, columns: list[str], step: str) -> None:
    """Raise a DataError naming the step when a column is missing or not text."""
    for col in columns:
        if col not in df.columns:
            raise DataError(f"step {step}: column {col!r} not found (columns: {', '.join(df.columns)}); "
                            "set `columns:` / `filter_column:` or map it with the source's `text:`")
        if df.schema[col] not in (pl.String, pl.Null):
            raise DataError(f"step {step}: column {col!r} has type {df.schema[col]}, expected text")


class TextMapperConfig(StepConfig):
    """Options every text repair step accepts."""

    columns: list[str] = Field(default_factory=lambda: ["text"], min_length=1,
                               description="String columns to rewrite.")


class TextMapper(Mapper):
    """A mapper that rewrites each of ``columns`` with :meth:`transform`, summing its stats."""

    Config: ClassVar[type[TextMapperConfig]] = TextMapperConfig

    def transform(self, s: pl.Series) -> tuple[pl.Series, dict[str, Any]]:
        """Rewrite one String column; return it and stats such as rows changed."""
        raise NotImplementedError

    def map(self, df: pl.DataFrame, ctx: StepContext | None = None) -> tuple[pl.DataFrame, dict[str, Any]]:
        check_text_columns(df, self.config.columns, self.name)
        stats: list[dict[str, Any]] = []
        cols = []
        for col in self.config.columns:
            s, st = self.transform(df.get_column(col).cast(pl.String))
            cols.append(s.alias(col))
            stats.append(st)
        return df.with_columns(cols), merge_numeric(stats)


class StripHtmlConfig(TextMapperConfig):
    """``strip_html`` has no options beyond ``columns``."""


@register_step("strip_html")
class StripHtml(TextMapper):
    """HTML to visible text (BeautifulSoup + lxml) on rows with tags; entities unescaped elsewhere."""

    Config = StripHtmlConfig

    def transform(self, s: pl.Series) -> tuple[pl.Series, dict[str, Any]]:
        s, n = T.strip_html(s)
        return s, {"html_stripped": n}


class FixUnicodeConfig(TextMapperConfig):
    """Mojibake repair and Unicode normal form."""

    mojibake: bool = Field(default=True, description="Repair mojibake with ftfy on rows with mojibake markers.")
    normalize: Literal["NFC", "NFKC", "none"] = Field(default="NFC", description="Unicode normal form (or none).")


@register_step("fix_unicode")
class FixUnicode(TextMapper):
    """Repair mojibake (ftfy, only on rows a regex flags) and apply a Unicode normal form."""

    Config = FixUnicodeConfig

    def transform(self, s: pl.Series) -> tuple[pl.Series, dict[str, Any]]:
        c, st = self.config, {}
        if c.mojibake:
            s, st["unicode_fixed"] = T.fix_unicode(s)
        if c.normalize != "none":
            s, st["normalized"] = T.normalize(s, c.normalize)
        return s, st


class WhitespaceConfig(TextMapperConfig):
    """``normalize_whitespace`` has no options beyond ``columns``."""


@register_step("normalize_whitespace")
class NormalizeWhitespace(TextMapper):
    """Newlines to ``\\n``, control/zero-width characters dropped, runs collapsed, ends stripped."""

    Config = WhitespaceConfig

    def transform(self, s: pl.Series) -> tuple[pl.Series, dict[str, Any]]:
        s, n = T.clean_whitespace(s)
        return s, {"whitespace_fixed": n}


class RedactPiiConfig(TextMapperConfig, PiiConfig):
    """Which PII types to redact (naming types with `true` redacts only those) and placeholders."""


@register_step("redact_pii")
class RedactPii(TextMapper):
    """Replace emails, IP addresses, Luhn-valid card numbers and phone numbers with placeholders."""

    Config = RedactPiiConfig

    def transform(self, s: pl.Series) -> tuple[pl.Series, dict[str, Any]]:
        s, counts, n = redact(s, self.config)
        return s, {"pii_redacted": counts, "pii_rows": n}
