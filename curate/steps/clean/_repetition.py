r"""Repetition and boilerplate checks for the ``clean`` step, vectorised in polars.

Repetition follows Gopher (Rae et al. 2021, table A1) as implemented by DataTrove's
``GopherRepetitionFilter`` — same rules, order and default thresholds:

* duplicated paragraphs / lines: fraction of elements, and fraction of characters, that repeat
  an earlier element of the same document;
* top n-gram (n = 2, 3, 4): characters covered by the most frequent n-gram ÷ document length;
* duplicated n-grams (n = 5 … 10): characters of words covered by n-grams that repeat an earlier
  n-gram of the same document ÷ document length.

Documents are exploded into one row per line / word with their row index; n-grams are built by
shifting word hashes, and counted per document with hashed keys — no per-document Python.
Deliberate differences from DataTrove: (1) a "top" n-gram must occur at least twice, so short
texts whose n-grams are all unique (SMS, titles) are not rejected for "repetition" (DataTrove
rejects most texts under ~15 words for top_2/3_gram); (2) duplicated n-gram characters are the
union of words covered by repeated occurrences (Gopher's "not counting overlaps twice") instead
of DataTrove's greedy skip-ahead scan; (3) words are ``\w+`` runs rather than an NLP tokenizer.
"""
from __future__ import annotations

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

_SEED = 0x5EED
_PARA_SEP = "\x1e"

#: DataTrove / Gopher defaults.
DEFAULT_TOP_N = {2: 0.20, 3: 0.18, 4: 0.16}
DEFAULT_DUP_N = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}

DEFAULT_BOILERPLATE = [
    r"lorem ipsum",
    r"javascript (is )?(disabled|required)|enable javascript",
    r"all rights reserved",
    r"cookie policy|(we|this (site|website)) uses? cookies",
    r"click here to (subscribe|unsubscribe|read more)",
    r"terms of (use|service)|privacy policy",
    r"sign up for our newsletter|subscribe to our newsletter",
]


class RepetitionConfig(BaseModel):
    """Gopher repetition thresholds (a rule is skipped when its threshold is null)."""

    model_config = ConfigDict(extra="forbid")
    dup_para_frac: float | None = Field(default=0.3, ge=0, le=1, description="Max fraction of duplicated paragraphs.")
    dup_para_char_frac: float | None = Field(default=0.2, ge=0, le=1, description="Max fraction of characters in duplicated paragraphs.")
    dup_line_frac: float | None = Field(default=0.3, ge=0, le=1, description="Max fraction of duplicated lines.")
    dup_line_char_frac: float | None = Field(default=0.2, ge=0, le=1, description="Max fraction of characters in duplicated lines.")
    top_n_grams: dict[int, float] = Field(
        default_factory=lambda: dict(DEFAULT_TOP_N),
        description="n -> max fraction of characters in the most frequent (repeated) n-gram.")
    dup_n_grams: dict[int, float] = Field(
        default_factory=lambda: dict(DEFAULT_DUP_N),
        description="n -> max fraction of characters in duplicated n-grams.")
    min_words: int = Field(default=0, ge=0, description="Skip the n-gram rules for texts with fewer words.")


def _element_dups(base: pl.DataFrame, split: pl.Expr) -> pl.DataFrame:
    """Per row: number of elements, duplicated elements and their characters."""
    ex = (base.select("row", split.alias("e")).explode("e")
          .filter(pl.col("e").str.len_chars() > 0))
    ex = ex.with_columns(dup=~pl.struct("row", "e").is_first_distinct())
    agg = ex.group_by("row").agg(
        n=pl.len(), dups=pl.col("dup").sum(),
        dup_chars=pl.col("e").str.len_chars().filter(pl.col("dup")).sum())
    return base.select("row").join(agg, on="row", how="left").sort("row").fill_null(0)


def _ngram_fracs(base: pl.DataFrame, cfg: RepetitionConfig) -> pl.DataFrame:
    """Per row: characters of the top repeated n-gram (``top{n}``) and of words covered by
    duplicated n-grams (``dup{n}``), over the exploded words of every row.

    The key of the n-gram starting at a word is built incrementally,
    ``k_n = hash(k_{n-1}, word_hash[+n-1])`` with ``k_1 = hash(row, word)``, so each n costs one
    two-field hash; ``v`` marks n-grams that stay inside their row. A repeated n-gram has a
    repeated (n-1)-gram prefix, so after each n only rows that still repeat something are kept:
    short or varied texts leave the loop after one or two rounds."""
    words = (base.select("row", pl.col("t").str.extract_all(r"\w+").alias("w")).explode("w")
             .drop_nulls("w")
             .select("row", h=pl.col("w").hash(_SEED), l=pl.col("w").str.len_chars().cast(pl.Int64)))
    if cfg.min_words:
        words = words.filter(pl.len().over("row") >= cfg.min_words)
    top, dup = set(cfg.top_n_grams), set(cfg.dup_n_grams)
    max_n = max(top | dup)
    w = words.with_columns(k=pl.struct("row", "h").hash(_SEED), v=pl.lit(True), g=pl.col("l"))
    parts: list[pl.DataFrame] = []
    for n in range(1, max_n + 1):
        if n > 1:
            w = w.with_columns(
                k=pl.struct(pl.col("k"), pl.col("h").shift(-(n - 1))).hash(_SEED),
                v=pl.col("v") & (pl.col("row").shift(-(n - 1)) == pl.col("row")).fill_null(False),
                g=pl.col("g") + pl.col("l").shift(-(n - 1)) + 1)
        w = w.with_columns(kk=pl.when(pl.col("v")).then(pl.col("k")))
        w = w.with_columns(rep=pl.col("v") & ~pl.col("kk").is_first_distinct())
        # window/shift columns are computed on the frame first; the group_by only sums/maxes
        cols: list[pl.Expr] = []
        aggs: list[pl.Expr] = []
        if n in top:
            cnt = pl.len().over("kk")
            cols.append(pl.when(pl.col("v") & (cnt >= 2)).then(pl.col("g") * cnt).otherwise(0)
                        .alias(f"top{n}"))
            aggs.append(pl.col(f"top{n}").max())
        if n in dup:
            cols.append(pl.any_horizontal([pl.col("rep").shift(j).fill_null(False) for j in range(n)])
                        .alias("cov"))
            aggs.append(pl.col("l").filter(pl.col("cov")).sum().alias(f"dup{n}"))
        if aggs:
            parts.append(w.with_columns(cols).group_by("row").agg(aggs))
        repeating = w.filter(pl.col("rep")).get_column("row").unique()
        if repeating.len() == 0:
            break
        w = w.filter(pl.col("row").is_in(repeating.implode()))
    out = base.select("row")
    for part in parts:
        out = out.join(part, on="row", how="left")
    for n in top | dup:
        for name in ((f"top{n}",) if n in top else ()) + ((f"dup{n}",) if n in dup else ()):
            if name not in out.columns:
                out = out.with_columns(pl.lit(0, dtype=pl.Int64).alias(name))
    return out.sort("row").fill_null(0)


def repetition_fractions(texts: pl.Series, cfg: RepetitionConfig) -> tuple[pl.DataFrame, list[tuple[str, float]]]:
    """One row per text with one Float64 column per enabled rule (its measured fraction), and
    the ``(rule, threshold)`` pairs in the order they are checked."""
    base = pl.DataFrame({"t": texts}).with_row_index("row")
    length = texts.str.len_chars().fill_null(0).cast(pl.Float64)
    denom = pl.Series(length).replace(0, None)
    rules: list[tuple[str, float, pl.Series]] = []

    if cfg.dup_para_frac is not None or cfg.dup_para_char_frac is not None:
        p = _element_dups(base, pl.col("t").str.strip_chars().str.replace_all(r"\n{2,}", _PARA_SEP)
                          .str.split(_PARA_SEP))
        if cfg.dup_para_frac is not None:
            rules.append(("dup_para_frac", cfg.dup_para_frac, p["dups"] / p["n"].replace(0, None)))
        if cfg.dup_para_char_frac is not None:
            rules.append(("dup_para_char_frac", cfg.dup_para_char_frac, p["dup_chars"] / denom))
    if cfg.dup_line_frac is not None or cfg.dup_line_char_frac is not None:
        ln = _element_dups(base, pl.col("t").str.split("\n"))
        if cfg.dup_line_frac is not None:
            rules.append(("dup_line_frac", cfg.dup_line_frac, ln["dups"] / ln["n"].replace(0, None)))
        if cfg.dup_line_char_frac is not None:
            rules.append(("dup_line_char_frac", cfg.dup_line_char_frac, ln["dup_chars"] / denom))

    if cfg.top_n_grams or cfg.dup_n_grams:
        per_row = _ngram_fracs(base, cfg)
        for n, thr in sorted(cfg.top_n_grams.items()):
            rules.append((f"top_{n}_gram", thr, per_row[f"top{n}"] / denom))
        for n, thr in sorted(cfg.dup_n_grams.items()):
            rules.append((f"dup_{n}_gram", thr, per_row[f"dup{n}"] / denom))

    frame = pl.DataFrame({name: vals.fill_null(0.0).cast(pl.Float64) for name, _, vals in rules}) \
        if rules else pl.DataFrame({"_": [0.0] * len(texts)})
    return frame, [(name, thr) for name, thr, _ in rules]


def repetition(texts: pl.Series, cfg: RepetitionConfig) -> pl.DataFrame:
    """One row per text: ``rule`` (first Gopher rule broken, or null) and a ``detail`` string."""
    frame, rules = repetition_fractions(texts, cfg)
    rule = pl.coalesce([pl.when(pl.col(name) > thr).then(pl.lit(name)) for name, thr in rules]
                       + [pl.lit(None, dtype=pl.String)])
    value = pl.coalesce([pl.when(pl.col(name) > thr).then(
        pl.format("{} {} > {}", pl.lit(name), pl.col(name).round(3), pl.lit(thr)))
        for name, thr in rules] + [pl.lit(None, dtype=pl.String)])
    return frame.select(rule.alias("rule"), value.alias("detail"))


def boilerplate_fraction(texts: pl.Series, patterns: list[str]) -> pl.Series:
    """Fraction of non-empty lines that match any of ``patterns`` (case-insensitive)."""
    alt = "|".join(f"(?:{p})" for p in patterns)
    lines = texts.str.count_matches(r"(?m)^.*\S.*$")
    hits = texts.str.count_matches(rf"(?im)^.*(?:{alt}).*$")
    return (hits / lines.replace(0, None)).fill_null(0.0)
