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


# Non-ASCII characters that NFC and NFKC leave alone and that never compose with a neighbour
# (Latin-1 letters, curly quotes, dashes, common symbols); checked against unicodedata below.
_STABLE = "\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u00FF\u2018\u2019\u201C\u201D\u2013\u2014\u00A3\u20AC\u00A9\u00AE\u00B0\u00B1\u00D7\u00F7\u2022"
_NEEDS_NFC = f"[^\\x00-\\x7F{_STABLE}]"


def _check_stable() -> None:
    import re
    import unicodedata
    chars = [chr(c) for c in range(0x80, 0x2100) if re.fullmatch(f"[{_STABLE}]", chr(c))]
    chars += [chr(c) for c in range(0x2000, 0x2100) if re.fullmatch(f"[{_STABLE}]", chr(c))]
    for ch in chars:
        assert unicodedata.normalize("NFKC", ch) == ch == unicodedata.normalize("NFC", ch), ch
        assert unicodedata.combining(ch) == 0, ch


def _rows(s: pl.Series, mask: pl.Series, fn) -> pl.Series:
    """``fn`` applied to the rows of ``s`` where ``mask`` holds, the others left as they are."""
    mask = mask.fill_null(False)
    if not mask.any():
        return s
    idx = mask.arg_true()
    return s.scatter(idx, fn(s.gather(idx)))


def normalize_series(s: pl.Series, norm: Normalize) -> pl.Series:
    """``norm`` applied to a string Series, with the same result as :func:`normalized`, but the
    slow parts only where they can change something: the Unicode normal form only on rows with a
    character outside ASCII (for NFC/NFKC: outside ASCII and a set of characters both forms keep,
    such as Latin-1 letters and curly quotes), the whitespace regex only on rows that still
    have a run of spaces or a whitespace character other than space after newlines became spaces."""
    s = s.cast(pl.String)
    # rows with a character outside ASCII (a byte count above the character count): only they
    # can need a normal form or hold a Unicode space, so the slow regexes look at them alone
    wide = s.str.len_bytes() != s.str.len_chars()
    if norm.unicode:
        needs = _contains(s, wide, _NEEDS_NFC) if norm.unicode in ("NFC", "NFKC") else wide
        s = _rows(s, needs, lambda x: x.str.normalize(norm.unicode))
    rest = norm.model_copy(update={"unicode": None, "collapse_whitespace": False})
    s = s.to_frame("t").select(normalized(pl.col("t"), rest)).to_series()
    if norm.collapse_whitespace:
        s = s.str.replace_all("\n", " ", literal=True)
        # an ASCII row (it stays ASCII through the normal form and lowercasing) holds a run of
        # whitespace only with two spaces in a row or a tab, CR, VT or FF: literal scans
        runs = s.str.contains("  ", literal=True)
        for ch in "\t\r\x0b\x0c":
            runs = runs | s.str.contains(ch, literal=True)
        runs = runs | _contains(s, wide, _WS_RUN)
        s = _rows(s, runs, lambda x: x.str.replace_all(_WS_RUN, " "))
        s = s.str.strip_chars()
    return s


def _contains(s: pl.Series, mask: pl.Series, pattern: str) -> pl.Series:
    """``s.str.contains(pattern)`` where ``mask`` holds, False elsewhere (the regex runs on the
    masked rows only)."""
    mask = mask.fill_null(False)
    out = pl.repeat(False, len(s), dtype=pl.Boolean, eager=True).alias(s.name)
    if not mask.any():
        return out
    idx = mask.arg_true()
    return out.scatter(idx, s.gather(idx).str.contains(pattern).fill_null(False))


def normalizer(norm: Normalize):
    """A Series → Series function applying ``norm`` (for per-batch normalisation)."""
    def apply(s: pl.Series) -> pl.Series:
        return normalize_series(s, norm)
    return apply
