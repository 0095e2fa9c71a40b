"""Automatic labelling: a classifier (tiny random model), an LLM scored by label log-likelihood
(tiny random Llama, transformers backend) and an LLM voting through the real HTTP server
(scripted answers), each with a confidence per row and low-confidence rows flagged for review."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import polars as pl
import pytest

from curate.llm.base import LLM, BackendSpec, Generation, SamplingParams
from curate.steps.annotate.auto_label import AutoLabel, build_prompt, parse_label

from .conftest import run_step

TEXTS = ["WIN a FREE prize, call now", "see you at six", "maybe later?", "I don't know what this is"]


def _df(texts=TEXTS):
    return pl.DataFrame({"id": [f"r{i}" for i in range(len(texts))], "text": texts})


def test_prompt_and_parse():
    cfg = AutoLabel(model="x", labels=["spam", "ham"], examples=[{"text": "free cash", "label": "spam"}]).config
    p = build_prompt(cfg, "hello there")
    assert p.startswith("Classify the text into exactly one of these labels: spam, ham.")
    assert "Text: free cash\nLabel: spam\n" in p and p.endswith("Text: hello there\nLabel:")
    assert parse_label(" Spam.", ["spam", "ham"]) == "spam"
    assert parse_label("I think it is ham, not spam", ["spam", "ham"]) == "ham"
    assert parse_label("hammer time", ["spam", "ham"]) is None
    with pytest.raises(ValueError, match="not in `labels`"):
        AutoLabel(model="x", labels=["a", "b"], examples=[{"text": "t", "label": "c"}])


@pytest.mark.slow
def test_classifier_confidence_and_review(tmp_path):
    from curate.steps.quality._models import classify
    from curate.testing import tiny_classifier
    path = str(tiny_classifier(tmp_path / "cls", num_labels=2))
    probs = classify(TEXTS, path)
    thr = float(np.sort(probs.max(axis=1))[1]) + 1e-6          # two rows fall below
    res = run_step(AutoLabel(method="classifier", model=path, labels=["ham", "spam"], min_confidence=thr), _df())
    out = res.kept
    assert out["auto_label"].to_list() == [["ham", "spam"][i] for i in probs.argmax(axis=1)]
    assert np.allclose(out["confidence"].to_numpy(), probs.max(axis=1), atol=1e-4)
    assert out["needs_review"].sum() == 2 and res.stats["needs_review"] == 2
    assert res.stats["confidence_mode"] == {"classifier": 4}


@pytest.mark.slow
def test_llm_logprob_confidence_with_tiny_model(tmp_path):
    from curate.llm.base import BackendSpec, load_backend
    from curate.testing import tiny_llama
    path = str(tiny_llama(tmp_path / "lm"))
    step = AutoLabel(model=path, labels=["spam", "ham"], device="cpu", min_confidence=0.99)
    res = run_step(step, _df())
    out = res.kept
    assert res.stats["confidence_mode"] == {"logprob": 4}
    llm = load_backend(BackendSpec(model=path, device="cpu", chat=True))
    prompt = [{"role": "user", "content": build_prompt(step.config, TEXTS[0])}]
    s = np.array(llm.score([prompt, prompt], ["spam", "ham"]))
    p = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
    assert out["auto_label"][0] == ["spam", "ham"][int(p.argmax())]
    assert out["confidence"][0] == pytest.approx(p.max(), abs=1e-3)
    assert all(0.5 <= c <= 1 for c in out["confidence"].to_list())
    assert out["needs_review"].to_list() == [c < 0.99 for c in out["confidence"].to_list()]


class Scripted(LLM):
    def __init__(self, answer: Callable[[str, int], str]) -> None:
        self.spec = BackendSpec(model="scripted")
        self.answer = answer

    def generate(self, prompts: Sequence, params: SamplingParams):
        out = []
        for p in prompts:
            text = p if isinstance(p, str) else p[-1]["content"]
            out.append([Generation(self.answer(text.rsplit("Text: ", 1)[-1], j), 3, 3, "stop") for j in range(params.n)])
        return out


def _answer(text: str, j: int) -> str:
    if "prize" in text:
        return "spam"
    if "six" in text:
        return "Ham."
    if "maybe" in text:
        return ["spam", "ham"][j % 2]              # 3 of 5 say spam
    return "No idea, sorry."


def test_llm_votes_through_http_server():
    from curate.llm.server import serve
    srv = serve(Scripted(_answer))
    try:
        step = AutoLabel(model="scripted", backend="http", base_url=srv.url, labels=["spam", "ham"],
                         votes=5, min_confidence=0.7)
        res = run_step(step, _df())
    finally:
        srv.stop()
    out = res.kept
    assert out["auto_label"].to_list() == ["spam", "ham", "spam", None]
    assert out["confidence"].to_list() == [1.0, 1.0, 0.6, 0.0]
    assert out["needs_review"].to_list() == [False, False, True, True]
    assert res.stats["confidence_mode"] == {"vote": 4} and res.stats["label_counts"] == {"spam": 2, "ham": 1}
    merged = AutoLabel.merge_stats(step, [res.stats, res.stats])
    assert merged["mean_confidence"] == round(2.6 / 4, 4) and merged["labelled"] == 6


def test_auto_label_through_the_engine_in_batches(tmp_path):
    from curate import Pipeline
    from curate.llm.server import serve
    srv = serve(Scripted(_answer))
    try:
        rows = [{"t": t} for t in TEXTS * 2]
        p = Pipeline(name="al", sources=[{"inline": {"rows": rows, "text": "t"}}], batch_size=3,
                     steps=[{"auto_label": {"model": "scripted", "backend": "http", "base_url": srv.url,
                                            "labels": ["spam", "ham"], "votes": 5}}],
                     workdir=str(tmp_path / ".c"), out_dir=str(tmp_path / "o"))
        r = p.run()
    finally:
        srv.stop()
    st = r.manifest["steps"][0]
    assert st["rows_in"] == st["rows_out"] == 8 and st["rows_rejected"] == 0
    assert st["stats"]["labelled"] == 6 and st["stats"]["needs_review"] == 4
    assert st["stats"]["mean_confidence"] == round(2 * 2.6 / 8, 4)
    assert sorted(r.data()["auto_label"].drop_nulls().to_list()) == ["ham", "ham", "spam", "spam", "spam", "spam"]
