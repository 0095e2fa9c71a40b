"""Flagged words (word boundaries, per-language lists, shipped list) and the classifier filter
(a tiny random sequence-classification model, batched)."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from curate.errors import StepError
from curate.steps.quality.flagged import WORDLISTS, FlaggedWords, read_wordlist

from .conftest import frame, reasons, run_step


def test_flagged_words_word_boundaries_and_real_rows(sms, hh):
    planted = ["what the FUCK is this", "total bullshit, mate", "you absolute wanker!"]
    innocent = ["a classic class act", "Scunthorpe United won", "cocktail hour at the assessment centre",
                "Therapist appointment in Essex"]
    ham = sms.filter(pl.col("label") == "ham").head(300).get_column("text").to_list()
    df = frame(planted + innocent + ham)
    res = run_step(FlaggedWords(), df)
    got = reasons(res)
    assert all(got.get(f"r{i}") == "flagged_words" for i in range(len(planted)))
    assert not any(f"r{i}" in got for i in range(len(planted), len(planted) + len(innocent)))
    assert len(got) - len(planted) <= 0.03 * len(ham)        # ordinary messages stay
    assert res.rejected.filter(pl.col("id") == "r0")["detail"][0] == "1 match(es): fuck"
    # the red-teaming dialogues: some are flagged, most are not
    hres = run_step(FlaggedWords(), hh)
    assert 0 < hres.rejected.height < hh.height / 2


def test_per_language_lists_column_and_ratio(tmp_path):
    de = tmp_path / "de.txt"
    de.write_text("# comment\nScheiße\nMist\n\n", encoding="utf-8")
    assert read_wordlist(de) == ["Scheiße", "Mist"]
    df = frame(["So ein Mist heute", "so a mist morning", "fuck", "fuck"], lang=["de", "en", "de", "fr"])
    step = FlaggedWords(language_column="lang", lists={"de": str(de)})
    res = run_step(step, df)
    assert reasons(res) == {"r0": "flagged_words"}     # en 'mist' is fine; de list lacks 'fuck'; no fr list
    assert res.stats["unchecked_rows"] == 1
    ratio = FlaggedWords(words={"en": ["damn"]}, max_ratio=0.2)
    got = reasons(run_step(ratio, frame(["damn this long sentence has many other words in it", "damn it"])))
    assert got == {"r1": "flagged_words"}
    with pytest.raises(ValueError, match="no word list for language"):
        FlaggedWords(language="fr")
    with pytest.raises(StepError, match="cannot read word list"):
        run_step(FlaggedWords(lists={"en": str(tmp_path / "missing.txt")}), frame(["x"]))
    assert (WORDLISTS / "en.txt").read_text().startswith("# curate's default English")


@pytest.fixture(scope="module")
def tiny_cls(tmp_path_factory):
    from curate.testing import tiny_classifier
    return str(tiny_classifier(tmp_path_factory.mktemp("qcls"), num_labels=2))


@pytest.mark.slow
def test_classifier_filter_rejects_by_threshold(tiny_cls, sms):
    from curate.steps.quality._models import classify
    from curate.steps.quality.classifier import ClassifierFilter
    texts = sms.get_column("text").head(40).to_list()
    probs = classify(texts, tiny_cls, batch_size=7)
    one_by_one = np.vstack([classify([t], tiny_cls) for t in texts[:5]])
    assert np.allclose(probs[:5], one_by_one, atol=1e-5)            # batching changes nothing
    thr = float(np.median(probs[:, 1]))
    step = ClassifierFilter(model=tiny_cls, label="LABEL_1", threshold=thr, batch_size=8, score_column="p")
    res = run_step(step, frame(texts))
    expect = {f"r{i}" for i in range(len(texts)) if probs[i, 1] > thr}
    assert set(reasons(res)) == expect and expect
    assert set(reasons(res).values()) == {"classifier_LABEL_1"}
    assert res.kept["p"].max() <= thr
    below = run_step(ClassifierFilter(model=tiny_cls, label=1, threshold=thr, reject="below"), frame(texts))
    assert below.rejected.height == sum(probs[:, 1] < thr)
    with pytest.raises(StepError, match="not among the model's labels"):
        run_step(ClassifierFilter(model=tiny_cls, label="toxic"), frame(["x"]))
