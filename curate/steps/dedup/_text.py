"""Text normalisation shared by every dedup check: one polars expression, so exact keys, MinHash
shingles and n-gram lookups all see the same canonical text."""
from __future__ import annotations

from typing import Literal

import polars as pl

from curate import records as R
from pydantic import BaseModel, ConfigDict, Field



# Unicode White_Space minus the plain space, spelled out: Rust's Unicode-aware `\s` class is ~6×
# slower on large columns than an explicit class.
_WS = "\\t\\n\\x0B\\f\\r\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
_WS_RUN = f"[ {_WS}]{{2,}}|[{_WS}]"        # a run of ≥ 2 whitespace chars, or one non-space one


class Normalize(BaseModel):
    """How text is canonicalised before it is compared."""

    model_config = ConfigDict(extra="forbid")
    lowercase: bool = Field(default=True, description="Compare case-insensitively.")
    strip_punctuation: bool = Field(default=False, description="Drop Unicode punctuation and symbols.")
    collapse_whitespace: bool = Field(default=True, description="Runs of whitespace count as one space; "
                                      "leading/trailing whitespace is ignored.")
    unicode: Literal["NFC", "NFKC", "NFD", "NFKD"] | None = Field(
        default="NFKC", description="Unicode normal form applied first (None: leave as is).")


def check_columns(df: pl.DataFrame, columns: list[str], step: str) -> None:
    """Fail with a message naming the step and the missing column."""
    for c in columns:
        R.require_column(df, c, f"step {step}")


def joined(columns: list[str], sep: str = "\n") -> pl.Expr:
    """The compared text: the columns cast to string and joined (nulls count as empty unless all are null)."""
    if len(columns) == 1:
        return pl.col(columns[0]).cast(pl.String)
    parts = [pl.col(c).cast(pl.String).fill_null("") for c in columns]
    all_null = pl.all_horizontal([pl.col(c).is_null() for c in columns])
    return pl.when(all_null).then(None).otherwise(pl.concat_str(parts, separator=sep))


def normalized(expr: pl.Expr, norm: Normalize) -> pl.Expr:
    """Apply ``norm`` to a string expression, vectorised in polars."""
    if norm.unicode:
        expr = expr.str.normalize(norm.unicode)
    if norm.lowercase:
        expr = expr.str.to_lowercase()
    if norm.strip_punctuation:
        expr = expr.str.replace_all(r"[\p{P}\p{S}]+", "")
    if norm.collapse_whitespace:
        expr = expr.str.replace_all(_WS_RUN, " ").str.strip_chars()
    return expr


def text_length(columns: list[str]) -> pl.Expr:
    """Total characters over ``columns`` (for ``keep: longest``)."""
    return pl.sum_horizontal([pl.col(c).cast(pl.String).str.len_chars().fill_null(0) for c in columns])


def normalize_series(s: pl.Series, norm: Normalize) -> pl.Series:
    """``norm`` applied to a string Series, with the Unicode normal form computed only on rows
    that are not pure ASCII (ASCII text is invariant under NFC/NFD/NFKC/NFKD, and the normal
    form is the slow part of the defaults). Same result as :func:`normalized`."""
    s = s.cast(pl.String)
    if norm.unicode:
        ascii_ = (s.str.len_bytes() == s.str.len_chars()).fill_null(True)
        if not ascii_.all():
            idx = (~ascii_).arg_true()
            s = s.scatter(idx, s.gather(idx).str.normalize(norm.unicode))
        norm = norm.model_copy(update={"unicode": None})
    return s.to_frame("t").select(normalized(pl.col("t"), norm)).to_series()


def normalizer(norm: Normalize):
    """A Series → Series function applying ``norm`` (for per-batch normalisation)."""
    def apply(s: pl.Series) -> pl.Series:
        return normalize_series(s, norm)
    return apply
