"""verify's default checks catch junk without an LLM (random bytes, mashing, loops, homoglyphs,
garbled words) and keep real text (informal SMS, dialogue, numbers, code, other languages); the
optional language and perplexity checks record their own reasons."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from curate import Pipeline
from curate.steps.synth._junk import JunkOptions, junk_reasons

REPO = Path(__file__).resolve().parents[2]
EVAL = REPO / "tests" / "data" / "verify_eval.jsonl"


def _sms() -> list[str]:
    lines = (REPO / "pipelines/data/sms_spam_collection.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return [ln.split("\t", 1)[1] for ln in lines]


def _verify(tmp_path, rows, **opts):
    p = Pipeline(name="junk", sources=[{"synth_rows": {"rows": rows}}],
                 steps=[{"verify": {"novelty": False, **opts}}],
                 workdir=str(tmp_path / ".curate"), out_dir=str(tmp_path / "out"))
    return p.run()


def test_default_verify_rejects_random_bytes_and_keeps_real_answers(tmp_path):
    r = random.Random(7)
    junk = [bytes(r.randrange(256) for _ in range(40)).decode("latin-1") for _ in range(7)]
    junk += [bytes(r.randrange(256) for _ in range(40)).decode("utf-8", "replace") for _ in range(7)]
    real = ["Paris is the capital of France.", "lol ok c u at 8", "x = (3*4) + 2 = 14",
            "def f(x):\n    return x + 1", "Le chat dort.", "Call 09061701461 to claim your £900 prize!"]
    rows = [{"prompt": "Say something.", "response": t, "name": f"junk{i}"} for i, t in enumerate(junk)]
    rows += [{"prompt": "Say something.", "response": t, "name": f"real{i}"} for i, t in enumerate(real)]
    res = _verify(tmp_path, rows)
    assert sorted(res.data()["name"].to_list()) == sorted(f"real{i}" for i in range(len(real)))
    rej = res.rejects()
    assert set(rej["reason"].to_list()) == {"junk"}
    assert all(d.startswith("junk: answer: ") for d in rej["detail"].to_list())
    assert res.manifest["steps"][0]["stats"]["checks"]["junk"] == {"applied": 20, "passed": 6,
                                                                   "acceptance_rate": 0.3}


@pytest.mark.parametrize("text,reason", [
    ("hello\x00world, how are you", "control_chars"),
    ("the answer is \ufffd\ufffd here", "replacement_char"),
    ("pаypal login now", "mixed_script_word"),                        # Cyrillic а inside a Latin word
    ("abc абв αβγ אבג", "script_mixing"),
    ("#$%^&*()_+|<>?~!@#$%^&", "symbol_ratio"),
    ("Wellllllllllllllllllllllllll", "repeated_chars"),
    ("buy now buy now buy now buy now buy now", "repeated_words"),
    ("asdkjh qwe lkjsdf jkfdsla", "gibberish"),
    ("I tAF DnFFJRW out, jRSRjMh out to x$Kl off my q$IdG now", "garbled_words"),
])
def test_each_rule_names_its_reason(text, reason):
    assert junk_reasons([text]) == [reason]


def test_real_text_is_kept():
    sms = _sms()
    assert [t for t, r in zip(sms, junk_reasons(sms)) if r] == []
    hh = [json.loads(ln)["chosen"] for ln in (REPO / "pipelines/data/hh_rlhf_harmless_base_test_first300.jsonl")
          .read_text(encoding="utf-8").splitlines()]
    assert [t for t, r in zip(hh, junk_reasons(hh)) if r] == []
    assert junk_reasons([None, "", "ok", "Der Zug nach Berlin hat zehn Minuten Verspätung."]) == [None] * 4


def test_labelled_set_f1_and_thresholds_are_options():
    rows = [json.loads(ln) for ln in EVAL.read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 300 and {r["label"] for r in rows} == {"good", "junk"}
    got = junk_reasons([r["text"] for r in rows])
    tp = sum(1 for r, g in zip(rows, got) if g and r["label"] == "junk")
    fp = sum(1 for r, g in zip(rows, got) if g and r["label"] == "good")
    fn = sum(1 for r, g in zip(rows, got) if not g and r["label"] == "junk")
    f1 = 2 * tp / (2 * tp + fp + fn)
    assert f1 >= 0.9, (tp, fp, fn)
    # a stricter character model flags more; a looser one fewer
    strict, loose = JunkOptions(min_char_logprob=-2.0), JunkOptions(min_char_logprob=-9.0, min_word_logprob=-9.0)
    texts = ["Paris is lovely in spring", "asdkjh qwe lkjsdf jkfdsla"]
    assert junk_reasons(texts, strict) == ["gibberish", "gibberish"]
    assert junk_reasons(texts, loose) == [None, None]


def test_language_floor_and_perplexity_checks(tmp_path, tiny_model):
    rows = [{"prompt": "Describe the weather.", "response": "It is sunny and warm in the city today.", "name": "en"},
            {"prompt": "Describe the weather.", "response": "Il fait beau et chaud en ville aujourd'hui.", "name": "fr"},
            {"prompt": "Describe the weather.", "response": "Sunny.", "name": "short"}]
    res = _verify(tmp_path, rows, languages=["en"], min_language_confidence=0.5)
    assert sorted(res.data()["name"].to_list()) == ["en", "short"]          # too short to judge: kept
    assert res.rejects()["reason"].to_list() == ["language"]
    assert res.data().sort("name")["check_language"].to_list() == [True, None]
    # perplexity under a (random) tiny LM: every answer gets a finite value; the bound decides
    from curate.steps.synth._textcheck import perplexities
    ppl = perplexities([r["response"] for r in rows] + [None], str(tiny_model))
    assert ppl[-1] is None and all(p is not None and 1 < p < 1e6 for p in ppl[:-1])
    low = _verify(tmp_path / "a", rows, perplexity_model=str(tiny_model), max_perplexity=1.5)
    assert low.data().height == 0 and set(low.rejects()["reason"]) == {"perplexity"}
    high = _verify(tmp_path / "b", rows, perplexity_model=str(tiny_model), max_perplexity=1e9)
    assert high.data().height == 3
