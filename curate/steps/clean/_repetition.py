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

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from curate.steps.clean._words import spans

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


_SMALL = 1 << 15              # below this many keys, numpy's sort-based set operations beat a polars query
_MIX = 0x9E3779B97F4A7C15      # odd 64-bit multipliers for the wrapping n-gram key chain
_ROW = 0xC2B2AE3D27D4EB4F


def _per_row_sum(rows: np.ndarray, values: np.ndarray, n_rows: int) -> np.ndarray:
    """Integer sum of ``values`` per row index (0 where a row has none)."""
    if not len(rows):
        return np.zeros(n_rows, dtype=np.int64)
    return np.bincount(rows, weights=values, minlength=n_rows).round().astype(np.int64)


def _repeated(key: np.ndarray) -> np.ndarray:
    """``is_duplicated`` of UInt64 keys: membership in the set of repeated values found by a
    (SIMD) sort, cheaper than one big hash table of every key when most keys are distinct."""
    srt = np.sort(key)
    same = srt[1:] == srt[:-1]
    if not same.any():
        return np.zeros(len(key), dtype=bool)
    dup = srt[1:][same]                                     # sorted; keep one of each value
    dup = dup[np.concatenate(([True], dup[1:] != dup[:-1]))]
    if len(key) <= _SMALL:                                  # a query's fixed cost would dominate
        at = np.searchsorted(dup, key)
        return dup[np.minimum(at, len(dup) - 1)] == key
    return pl.Series(key).is_in(pl.Series(dup).implode()).to_numpy()


def _occurrences(key: np.ndarray) -> np.ndarray:
    """How often each key's value occurs (``pl.len().over(key)``)."""
    if len(key) <= _SMALL:
        _, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
        return cnt[inv]
    return pl.DataFrame({"k": key}).select(pl.len().over("k")).to_series().to_numpy()


def _first_occurrence(key: np.ndarray) -> np.ndarray:
    """True at the first occurrence of each value (``is_first_distinct``)."""
    if len(key) <= _SMALL:
        first = np.zeros(len(key), dtype=bool)
        first[np.unique(key, return_index=True)[1]] = True
        return first
    return pl.Series(key).is_first_distinct().to_numpy()


def _element_dups(texts: pl.Series, split: pl.Expr, sep: str, whole: pl.Expr) -> dict[str, np.ndarray]:
    """Per row: number of non-empty elements (``split`` of the text), duplicated elements (an
    element equal to an earlier one of the same row) and their characters.

    A row where the regex ``sep`` finds nothing is one element, ``whole`` (no duplicates); the
    other rows are exploded once and keyed by a 64-bit hash of (row, element), and the per-row
    counts are ``bincount`` over the row index, so no group-by, join or sort is needed."""
    n_rows = len(texts)
    frame = pl.DataFrame({"t": texts})
    n = frame.select((whole.str.len_chars() > 0).fill_null(False).cast(pl.Int64)).to_series().to_numpy().copy()
    dups = np.zeros(n_rows, dtype=np.int64)
    dup_chars = np.zeros(n_rows, dtype=np.int64)
    split_rows = texts.str.contains(sep).fill_null(False).arg_true().to_numpy()
    if len(split_rows):
        ex = (frame[split_rows].with_row_index("row").select("row", split.alias("e"))
              .explode("e").filter(pl.col("e").str.len_chars() > 0)
              .select("row", chars=pl.col("e").str.len_chars(),
                      dup=~(pl.col("e").hash(_SEED) ^ (pl.col("row").cast(pl.UInt64) * _ROW)).is_first_distinct()))
        rows = ex.get_column("row").to_numpy()
        dup = ex.get_column("dup").to_numpy()
        m = len(split_rows)
        n[split_rows] = np.bincount(rows, minlength=m)
        dups[split_rows] = _per_row_sum(rows[dup], np.ones(int(dup.sum())), m)
        dup_chars[split_rows] = _per_row_sum(rows[dup], ex.get_column("chars").to_numpy()[dup], m)
    return {"n": n, "dups": dups, "dup_chars": dup_chars}


def _ngram_fracs(texts: pl.Series, cfg: RepetitionConfig, min_rows: int = 4096) -> dict[str, np.ndarray]:
    """:func:`_ngram_fracs_rows` over slices of rows on threads (rows are independent, and numpy
    releases the GIL inside its array operations), results concatenated in row order."""
    k = min(pl.thread_pool_size(), len(texts) // min_rows)
    if k < 2:
        return _ngram_fracs_rows(texts, cfg)
    from concurrent.futures import ThreadPoolExecutor
    step = -(-len(texts) // k)
    with ThreadPoolExecutor(k) as pool:
        parts = list(pool.map(lambda i: _ngram_fracs_rows(texts.slice(i, step), cfg), range(0, len(texts), step)))
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def _ngram_fracs_rows(texts: pl.Series, cfg: RepetitionConfig) -> dict[str, np.ndarray]:
    """Per row: characters of the top repeated n-gram (``top{n}``) and of words covered by
    duplicated n-grams (``dup{n}``), as Int64 arrays indexed by row.

    Words (``\\w+`` runs, found by ``clean._words``' byte scan) become flat arrays: word hash ``h``,
    length ``l``, row, and ``rem`` (words left in the row from there, the word included).
    The key of the n-gram starting at position ``i`` is the wrapping chain
    ``k_n = k_{n-1} * M + h[i+n-1]`` with ``k_1 = h[i] ^ row * R``: one multiply-add per n.

    Pruning: an n-gram that occurs twice in a row has a prefix ((n-1)-gram) that occurs twice, so
    round n only looks at positions whose (n-1)-gram is repeated; the rest can neither be a
    repeated n-gram nor the top one. Every occurrence of a repeated n-gram survives, so counts and
    first occurrences are exact, and long varied texts shrink to a few positions after n = 2."""
    n_rows = len(texts)
    top, dup = set(cfg.top_n_grams), set(cfg.dup_n_grams)
    out = {f"top{n}": np.zeros(n_rows, dtype=np.int64) for n in top}
    out.update({f"dup{n}": np.zeros(n_rows, dtype=np.int64) for n in dup})
    if not (top | dup) or not n_rows:
        return out
    max_n = max(top | dup)
    min_words = max(2, cfg.min_words)          # one word cannot repeat an n-gram
    sp = spans(texts)
    counts = sp.counts()
    row, h, length = sp.row, sp.hashes(), sp.length
    # words left in the row from each word on, the word included
    rem = counts[row] - (np.arange(len(row)) - (np.cumsum(counts) - counts)[row])
    short = counts < min_words
    if short.any():                             # rows too short for any n-gram rule
        keep = ~short[row]
        row, h, length, rem = row[keep], h[keep], length[keep], rem[keep]
    if not len(row):
        return out
    row = row.astype(np.uint64)
    # round 1 keys are the words; they carry the row, so equal n-grams of two rows differ
    pos = np.arange(len(h), dtype=np.int64)
    key, g = h ^ (row * np.uint64(_ROW)), length
    # Round 1 (words) only prunes unless a 1-gram rule is set: start at n = 2 then.
    for n in range(1 if 1 in top | dup else 2, max_n + 1):
        if n > 1:
            alive = rem[pos] >= n
            pos, key, g = pos[alive], key[alive], g[alive]
            if not len(pos):
                break
            nxt = pos + (n - 1)
            key = key * np.uint64(_MIX) + h[nxt]           # wraps mod 2^64
            g = g + length[nxt] + 1
        repeated = _repeated(key)
        pos, key, g = pos[repeated], key[repeated], g[repeated]
        if not len(pos):
            break
        if n in top:
            # characters of an n-gram x its count, maximised per row over repeated n-grams
            np.maximum.at(out[f"top{n}"], row[pos], g * _occurrences(key))
        if n in dup:
            # words covered by occurrences after the first of an n-gram
            starts = pos[~_first_occurrence(key)]
            covered = np.unique((starts[:, None] + np.arange(n)).ravel())
            out[f"dup{n}"] = _per_row_sum(row[covered].astype(np.int64), length[covered], n_rows)
    return out


def repetition_fractions(texts: pl.Series, cfg: RepetitionConfig) -> tuple[pl.DataFrame, list[tuple[str, float]]]:
    """One row per text with one Float64 column per enabled rule (its measured fraction), and
    the ``(rule, threshold)`` pairs in the order they are checked. The divisions run in numpy
    (0 where a text has no characters or elements), one frame built at the end."""
    length = texts.str.len_chars().fill_null(0).to_numpy()
    rules: list[tuple[str, float, np.ndarray]] = []

    if cfg.dup_para_frac is not None or cfg.dup_para_char_frac is not None:
        p = _element_dups(texts, pl.col("t").str.strip_chars().str.replace_all(r"\n{2,}", _PARA_SEP)
                          .str.split(_PARA_SEP), "\n\n|" + _PARA_SEP, pl.col("t").str.strip_chars())
        if cfg.dup_para_frac is not None:
            rules.append(("dup_para_frac", cfg.dup_para_frac, _frac(p["dups"], p["n"])))
        if cfg.dup_para_char_frac is not None:
            rules.append(("dup_para_char_frac", cfg.dup_para_char_frac, _frac(p["dup_chars"], length)))
    if cfg.dup_line_frac is not None or cfg.dup_line_char_frac is not None:
        ln = _element_dups(texts, pl.col("t").str.split("\n"), "\n", pl.col("t"))
        if cfg.dup_line_frac is not None:
            rules.append(("dup_line_frac", cfg.dup_line_frac, _frac(ln["dups"], ln["n"])))
        if cfg.dup_line_char_frac is not None:
            rules.append(("dup_line_char_frac", cfg.dup_line_char_frac, _frac(ln["dup_chars"], length)))

    if cfg.top_n_grams or cfg.dup_n_grams:
        per_row = _ngram_fracs(texts, cfg)
        for n, thr in sorted(cfg.top_n_grams.items()):
            rules.append((f"top_{n}_gram", thr, _frac(per_row[f"top{n}"], length)))
        for n, thr in sorted(cfg.dup_n_grams.items()):
            rules.append((f"dup_{n}_gram", thr, _frac(per_row[f"dup{n}"], length)))

    frame = pl.DataFrame({name: vals for name, _, vals in rules}) \
        if rules else pl.DataFrame({"_": [0.0] * len(texts)})
    return frame, [(name, thr) for name, thr, _ in rules]


def _frac(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` as float64, 0 where ``den`` is 0."""
    out = np.zeros(len(num), dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def repetition(texts: pl.Series, cfg: RepetitionConfig) -> pl.DataFrame:
    """One row per text: ``rule`` (first Gopher rule broken, or null) and a ``detail`` string
    (formatted for the rows that break a rule only)."""
    frame, rules = repetition_fractions(texts, cfg)
    rule = pl.coalesce([pl.when(pl.col(name) > thr).then(pl.lit(name)) for name, thr in rules]
                       + [pl.lit(None, dtype=pl.String)])
    value = pl.coalesce([pl.when(pl.col(name) > thr).then(
        pl.format("{} {} > {}", pl.lit(name), pl.col(name).round(3), pl.lit(thr)))
        for name, thr in rules] + [pl.lit(None, dtype=pl.String)])
    out = frame.select(rule.alias("rule"))
    detail = pl.Series("detail", [None] * frame.height, dtype=pl.String)
    idx = out.get_column("rule").is_not_null().arg_true()
    if idx.len():
        detail = detail.scatter(idx, frame[idx].select(value).to_series())
    return out.with_columns(detail)


def boilerplate_fraction(texts: pl.Series, patterns: list[str]) -> pl.Series:
    """Fraction of non-empty lines that match any of ``patterns`` (case-insensitive)."""
    alt = "|".join(f"(?:{p})" for p in patterns)
    lines = texts.str.count_matches(r"(?m)^.*\S.*$")
    hits = texts.str.count_matches(rf"(?im)^.*(?:{alt}).*$")
    return (hits / lines.replace(0, None)).fill_null(0.0)
