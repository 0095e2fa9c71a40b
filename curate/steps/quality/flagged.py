"""``flagged_words``: reject rows holding words from a blocklist, matched case-insensitively on
word boundaries, with a list per language (yours, or the short English list shipped in
``wordlists/en.txt``, written for curate; see that file for its provenance and licence).

    steps:
      - flagged_words:
          lists: {en: lists/en.txt, de: lists/de.txt}   # files, one word or phrase per line
          words: {en: [extra, phrases]}                  # inline additions
          language_column: lang                          # pick the list per row (default: `language`)
          max_count: 0                                   # reject at the first match (C4)
          max_ratio: null                                # also require matches ÷ words > this

Reason ``flagged_words``; the detail lists the distinct words matched (in the rejects file).
Manifest stats: ``rejected_by_reason``, and ``unchecked_rows`` (rows whose language has no list).
"""
from __future__ import annotations

from pathlib import Path

import polars as pl
from pydantic import Field, model_validator

from curate import records as R
from curate.errors import StepError
from curate.registry import register_step
from curate.step import Filter, StepConfig
from curate.steps.quality._stats import n_words, text, word_pattern

WORDLISTS = Path(__file__).with_name("wordlists")


def read_wordlist(path: str | Path) -> list[str]:
    """Entries of a word-list file: one per line, blank lines and ``#`` comments skipped."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise StepError(f"flagged_words: cannot read word list {str(path)!r}: {e.strerror or e}") from None
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def shipped_languages() -> list[str]:
    return sorted(p.stem for p in WORDLISTS.glob("*.txt"))


class FlaggedWordsConfig(StepConfig):
    """Which lists, which column, and how many matches a row may hold."""

    columns: list[str] = Field(default_factory=lambda: ["text"], min_length=1, description="Columns searched.")
    language: str = Field(default="en", description="Language of rows without a language column.")
    language_column: str | None = Field(default=None, description="Column naming each row's language (ISO 639-1).")
    lists: dict[str, str] = Field(default_factory=dict, description="language -> word-list file (one entry per line).")
    words: dict[str, list[str]] = Field(default_factory=dict, description="language -> inline entries (added to the list).")
    use_default: bool = Field(default=True, description="Also use the shipped list of the language, where one exists (en).")
    max_count: int = Field(default=0, ge=0, description="Reject rows with more matches than this.")
    max_ratio: float | None = Field(default=None, ge=0, le=1, description="When set, a row is rejected only if its matches ÷ words also exceed this.")

    @model_validator(mode="after")
    def _some_list(self) -> FlaggedWordsConfig:
        langs = set(self.lists) | set(self.words) | ({*shipped_languages()} if self.use_default else set())
        if not langs:
            raise ValueError("no word list: give `lists` or `words`, or keep `use_default: true`")
        if self.language_column is None and self.language not in langs:
            raise ValueError(f"no word list for language {self.language!r} (lists for: {sorted(langs)})")
        return self


@register_step("flagged_words")
class FlaggedWords(Filter):
    """Reject rows that hold blocklisted words or phrases."""

    Config = FlaggedWordsConfig

    def __init__(self, config=None, **kw) -> None:
        super().__init__(config, **kw)
        from curate.steps.quality._base import file_digests
        digests = file_digests(list(self.config.lists.values()))
        if digests:
            self.raw_config = {**self.raw_config, "_files": digests}

    def _patterns(self) -> dict[str, str]:
        if getattr(self, "_pat", None) is None:
            c = self.config
            langs = set(c.lists) | set(c.words) | (set(shipped_languages()) if c.use_default else set())
            pats = {}
            for lang in sorted(langs):
                entries = list(c.words.get(lang, []))
                if lang in c.lists:
                    entries += read_wordlist(c.lists[lang])
                if c.use_default and (WORDLISTS / f"{lang}.txt").exists():
                    entries += read_wordlist(WORDLISTS / f"{lang}.txt")
                pats[lang] = word_pattern(entries)
            self._pat = pats
        return self._pat

    def _per_lang(self, fn) -> pl.Expr:
        """``fn(pattern)`` evaluated with each row's language's pattern (null: no list)."""
        pats = self._patterns()
        if self.config.language_column is None:
            return fn(pats[self.config.language])
        lang = pl.col(self.config.language_column).fill_null(self.config.language).str.to_lowercase()
        expr = pl.lit(None)
        for code, pat in pats.items():
            expr = pl.when(lang == code).then(fn(pat)).otherwise(expr)
        return expr

    def prepare(self, df, ctx):
        c = self.config
        for col in c.columns + ([c.language_column] if c.language_column else []):
            R.require_column(df, col, "step flagged_words")
        hits = pl.sum_horizontal([self._per_lang(lambda p, col=col: text(col).str.count_matches(p))
                                  for col in c.columns]).fill_null(0)
        words = pl.sum_horizontal([n_words(col) for col in c.columns])
        found = pl.concat_list([self._per_lang(lambda p, col=col: text(col).str.to_lowercase().str.extract_all(p))
                                for col in c.columns]).list.unique().list.sort().list.join(", ")
        listed = (pl.col(c.language_column).fill_null(c.language).str.to_lowercase().is_in(list(self._patterns()))
                  if c.language_column else pl.lit(True))
        return df.with_columns(_hits=hits, _ratio=(hits / words.replace(0, None)).fill_null(0.0), _found=found,
                               _listed=listed)

    def filter_stats(self, prepared):
        """Rows whose language has no list pass unchecked: count them (``unchecked_rows``)."""
        return {"unchecked_rows": int((~prepared.get_column("_listed")).sum())}

    def filters(self):
        c = self.config
        keep = pl.col("_hits") <= c.max_count
        if c.max_ratio is not None:        # both must be exceeded to reject
            keep = keep | (pl.col("_ratio") <= c.max_ratio)
        return [("flagged_words", keep)]

    def details(self):
        return {"flagged_words": pl.format("{} match(es): {}", pl.col("_hits"), pl.col("_found"))}
