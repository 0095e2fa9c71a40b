"""The vectorised Gopher measures equal a plain-Python reference, row by row."""
from __future__ import annotations

import re

import polars as pl
import pytest

from curate.steps.clean._repetition import RepetitionConfig, repetition_fractions
from curate.steps.quality import _reference as ref


def reference(text: str) -> dict[str, float]:
    """Gopher/DataTrove definitions, written the obvious way (see the module docstring for the
    two documented differences: top n-grams must repeat; duplicate n-gram characters are the
    union of words covered by repeated occurrences)."""
    L = len(text)
    out = dict(ref.element_checks(text))
    words = re.findall(r"\w+", text)
    for n in (2, 3, 4):
        out[f"top_{n}_gram"] = ref.top_ngram_chars(words, n) / L if L else 0.0
    for n in range(5, 11):
        out[f"dup_{n}_gram"] = ref.dup_ngram_chars(words, n) / L if L else 0.0
    return out


def test_matches_reference_on_sms_and_planted_texts(sms):
    planted = ["buy now " * 50, "a\n\nb\n\na\n\na", "x y z " * 3 + "\n" + "p q r s t u v w " * 4,
               "one two three four five six seven one two three four five six seven eight",
               "", "   ", "word", "Home\nAbout\nHome\n\nHome\nContact\n"]
    texts = planted + sms["text"].head(1500).to_list()
    frame, rules = repetition_fractions(pl.Series(texts), RepetitionConfig())
    assert [r for r, _ in rules][:4] == ["dup_para_frac", "dup_para_char_frac", "dup_line_frac",
                                         "dup_line_char_frac"]
    got = frame.to_dicts()
    for text, row in zip(texts, got):
        ref = reference(text)
        for k, v in ref.items():
            assert row[k] == pytest.approx(v, abs=1e-9), (text[:80], k)
    assert got[0]["top_2_gram"] > 0.8 and got[1]["dup_para_frac"] == pytest.approx(0.5)
