"""Language identification for the ``clean`` step with lingua (models ship in the wheel).

Detection runs batched and multi-threaded in lingua's Rust core
(``detect_languages_in_parallel_of``); confidences are computed only for rejected rows, grouped
by detected language, to write the ``detected de (0.93)`` detail.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import polars as pl


def iso_codes(codes: list[str]) -> list[Any]:
    """ISO 639-1 codes ("en") to lingua ``IsoCode639_1`` members; unknown codes raise ValueError."""
    from lingua import IsoCode639_1

    out, bad = [], []
    for c in codes:
        member = getattr(IsoCode639_1, c.strip().upper(), None)
        (out.append(member) if member is not None and len(c.strip()) == 2 else bad.append(c))
    if bad:
        raise ValueError(f"unknown ISO 639-1 language code(s) {bad}; lingua supports e.g. "
                         "en, de, fr, es, it, nl, pt, ru, zh, ja")
    return out


@lru_cache(maxsize=4)
def detector(candidates: tuple[str, ...] | None, low_accuracy: bool):
    """A cached lingua detector over ``candidates`` (ISO 639-1 codes) or all languages."""
    from lingua import LanguageDetectorBuilder

    builder = (LanguageDetectorBuilder.from_iso_codes_639_1(*iso_codes(list(candidates)))
               if candidates else LanguageDetectorBuilder.from_all_languages())
    if low_accuracy:
        builder = builder.with_low_accuracy_mode()
    return builder.build()


def detect(texts: pl.Series, candidates: tuple[str, ...] | None, low_accuracy: bool) -> pl.Series:
    """ISO 639-1 code (lower case) of each text, null where lingua cannot decide."""
    det = detector(candidates, low_accuracy)
    langs = det.detect_languages_in_parallel_of(texts.fill_null("").to_list())
    codes = {lang: lang.iso_code_639_1.name.lower() for lang in set(langs) if lang is not None}
    return pl.Series("lang", [codes.get(lang) for lang in langs], dtype=pl.String)


def confidences(texts: pl.Series, langs: pl.Series, candidates: tuple[str, ...] | None,
                low_accuracy: bool) -> pl.Series:
    """Confidence of each text's detected language (null where none), batched per language."""
    from lingua import Language

    det = detector(candidates, low_accuracy)
    out = pl.Series("conf", [None] * len(texts), dtype=pl.Float64)
    for code in langs.drop_nulls().unique().to_list():
        idx = (langs == code).fill_null(False).arg_true()
        lang = Language.from_iso_code_639_1(iso_codes([code])[0])
        vals = det.compute_language_confidence_in_parallel(texts.gather(idx).to_list(), lang)
        out = out.scatter(idx, pl.Series(vals, dtype=pl.Float64))
    return out
