"""Junk detection without an LLM, for ``verify``'s default ``junk`` check: control and replacement
characters, script mixing inside a word or across many scripts, symbol-heavy strings, runs and
loops of repetition, and text a character-trigram model finds implausible (keyboard mashing,
random strings). Each rule is a polars expression; the first rule a text breaks is its reason.
"""
from __future__ import annotations

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

CONTROL = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F]"
C1 = r"[\x80-\x9F]"      # C1 controls: one is usually a cp1252 quote read as Latin-1 (mojibake), many is junk
_SCRIPTS = {"latin": r"\p{Latin}", "cyrillic": r"\p{Cyrillic}", "greek": r"\p{Greek}", "arabic": r"\p{Arabic}",
            "hebrew": r"\p{Hebrew}", "cjk": r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]",
            "devanagari": r"\p{Devanagari}", "thai": r"\p{Thai}", "armenian": r"\p{Armenian}",
            "georgian": r"\p{Georgian}"}
# one word whose letters come from two of the scripts that share look-alike glyphs (homoglyph junk)
_MIXED_WORD = "|".join(rf"{_SCRIPTS[a]}+{_SCRIPTS[b]}" for a in ("latin", "cyrillic", "greek")
                       for b in ("latin", "cyrillic", "greek") if a != b)
_REPEAT_RUN = "|".join(f"{c}{{16,}}" for c in "abcdefghijklmnopqrstuvwxyz0123456789") + r"|[!?.\-_=*#~]{24,}"


class JunkOptions(BaseModel):
    """Thresholds of the junk check (defaults reject random bytes and keyboard mashing, keep real
    short informal text, numbers, URLs and code)."""

    model_config = ConfigDict(extra="forbid")
    max_scripts: int = Field(default=2, ge=1, description="Most writing systems (with ≥2 letters each) in one text.")
    max_symbol_ratio: float = Field(default=0.5, gt=0, le=1,
                                    description="Most symbols (not letter, digit or space) per visible character, "
                                                "for texts of 12+ visible characters.")
    max_duplicate_word_ratio: float = Field(default=0.7, gt=0, le=1,
                                            description="Most repeated words (1 - distinct/all) in texts of 8+ words.")
    min_char_logprob: float = Field(default=-4.0, description="Least mean log-probability per character under the "
                                                              "shipped character-trigram model (Latin-script texts "
                                                              "of 4+ letters; real text scores above -3.5, mashing "
                                                              "below -4.5).")
    min_word_logprob: float = Field(default=-5.0, description="A word (3+ characters) scoring below this under the "
                                                              "character model counts as garbled.")
    max_garbled_word_ratio: float = Field(default=0.25, gt=0, le=1,
                                          description="Most garbled words per word of 3+ characters (at least two "
                                                      "garbled words to reject).")


def junk_reason(text: pl.Expr, opts: JunkOptions | None = None) -> pl.Expr:
    """Expression giving the first junk rule ``text`` breaks (e.g. ``control_chars``) or null."""
    o = opts or JunkOptions()
    t = text.fill_null("")
    counts = [t.str.count_matches(rx) for rx in _SCRIPTS.values()]
    other = t.str.count_matches(r"\p{L}") - pl.sum_horizontal(counts)     # letters of scripts not listed
    n_scripts = pl.sum_horizontal([(c >= 2).cast(pl.Int32) for c in counts])
    n_present = pl.sum_horizontal([(c >= 1).cast(pl.Int32) for c in [*counts, other]])
    collapsed = t.str.replace_all(r"!+", "!").str.replace_all(r"\?+", "?").str.replace_all(r"\.+", ".")
    visible = collapsed.str.replace_all(r"\s", "").str.len_chars()
    symbols = collapsed.str.count_matches(r"[^\p{L}\p{N}\s\"'()\[\]{}:,.;]")   # structural punctuation of code/JSON is not soup
    words = t.str.to_lowercase().str.extract_all(r"\w+").list.head(100)   # loops show in any window
    n_words = words.list.len()
    dup_ratio = 1 - words.list.n_unique() / n_words.cast(pl.Float64)
    return (pl.when(t.str.contains(CONTROL)).then(pl.lit("control_chars"))
            .when(t.str.count_matches(C1) > 0.1 * t.str.len_chars()).then(pl.lit("control_chars"))
            .when(t.str.contains("\ufffd")).then(pl.lit("replacement_char"))
            .when(t.str.contains(_MIXED_WORD)).then(pl.lit("mixed_script_word"))
            .when((n_scripts > o.max_scripts) | (n_present > o.max_scripts + 1)).then(pl.lit("script_mixing"))
            .when((visible >= 12) & (symbols / visible.cast(pl.Float64) > o.max_symbol_ratio)).then(pl.lit("symbol_ratio"))
            .when(t.str.to_lowercase().str.contains(_REPEAT_RUN)).then(pl.lit("repeated_chars"))
            .when((n_words >= 8) & (dup_ratio > o.max_duplicate_word_ratio)).then(pl.lit("repeated_words"))
            .otherwise(pl.lit(None, pl.String)))


_BROKEN = r"\p{L}.*[^\p{L}\s'’.,!?:;\-]|[^\p{L}\s'’.,!?:;\-(\"].*\p{L}|\p{Ll}\p{Lu}"


def gibberish(texts: list[str | None], opts: JunkOptions | None = None) -> list[str | None]:
    """``gibberish`` where a mostly-Latin text of 8+ visible characters and 4+ letters scores below
    ``min_char_logprob`` under the character-trigram model (keyboard mashing, random letters);
    ``garbled_words`` where a share of its words (3+ characters) score below ``min_word_logprob``
    and look broken (a digit or symbol inside letters, a capital after a small letter) — real text
    with words overwritten by noise. Plain foreign words and rare names never count as garbled."""
    from curate.steps.synth._charlm import mean_logprob
    o = opts or JunkOptions()
    s = pl.Series("t", texts, dtype=pl.String).fill_null("")
    words = pl.col("t").str.split(" ").list.eval(pl.element().filter(pl.element().str.len_chars() >= 3))
    frame = pl.DataFrame({"t": s}).select(
        latin=pl.col("t").str.count_matches(r"\p{Latin}"), letters=pl.col("t").str.count_matches(r"\p{L}"),
        visible=pl.col("t").str.count_matches(r"\S"), n_words=words.list.len(),
        suspects=words.list.eval(pl.element().filter(pl.element().str.contains(_BROKEN))))
    latin = ((frame["latin"] >= 4) & (frame["latin"] >= 0.8 * frame["letters"])).to_numpy()
    whole = latin & (frame["visible"] >= 8).to_numpy() & (mean_logprob(s.to_list()) < o.min_char_logprob)
    n_suspects = frame["suspects"].list.len().to_numpy().astype(np.int64)
    flat = frame["suspects"].explode().drop_nulls().to_list()
    low = (mean_logprob(flat) < o.min_word_logprob).astype(np.int64) if flat else np.zeros(0, np.int64)
    starts = np.concatenate([[0], np.cumsum(n_suspects)[:-1]]).astype(np.int64)
    n_bad = np.where(n_suspects > 0, np.add.reduceat(np.append(low, 0), np.minimum(starts, len(low))), 0) \
        if len(starts) else np.zeros(0, np.int64)
    n_words = frame["n_words"].to_numpy()
    garbled = latin & (n_bad >= 2) & (n_bad >= o.max_garbled_word_ratio * np.maximum(n_words, 1))
    return ["gibberish" if w else ("garbled_words" if g else None) for w, g in zip(whole, garbled)]


def junk_reasons(texts: list[str | None], opts: JunkOptions | None = None) -> list[str | None]:
    """The junk reason of every text (null = looks like real text)."""
    df = pl.DataFrame({"t": pl.Series(texts, dtype=pl.String)})
    reasons = df.select(junk_reason(pl.col("t"), opts).alias("r"))["r"].to_list()
    return [r if r is not None else g for r, g in zip(reasons, gibberish(texts, opts))]
