"""The verify step: every check rejects a planted bad row, good rows pass, per-row check columns
and per-check acceptance rates are recorded."""
from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from curate import Pipeline

SEEDS = Path(__file__).resolve().parents[2] / "pipelines" / "data" / "self_instruct_seed_tasks.jsonl"
SEED0 = json.loads(SEEDS.read_text().splitlines()[0])["instruction"]
CLS = {"instruction": "Classify the sentiment of the review.", "is_classification": True,
       "labels": ["positive", "negative"]}
GEN = {"is_classification": False, "labels": None, "text": ""}

ROWS = {
    "good_cls": {**CLS, "text": "I love it", "output": "positive", "label": "positive"},
    "bad_label": {**CLS, "text": "I hate it", "output": "neutral", "label": "neutral"},
    "bad_format": {**GEN, "instruction": "Summarise the text in one line.", "output": "", "label": None},
    "bad_length": {**GEN, "instruction": "List some fruit names please.", "output": "apple " * 40, "label": None},
    "bad_novelty": {**GEN, "instruction": SEED0, "output": "Oatmeal with protein powder.", "label": None},
    "judge_low": {**GEN, "instruction": "Write a motto for a bakery.", "output": "SCORE2 bread is okay", "label": None},
    "judge_unparsable": {**GEN, "instruction": "Invent a short slogan for my gym.", "output": "UNPARSABLE lift things",
                         "label": None},
    "sc_bad": {**GEN, "instruction": "What is the capital of France?", "output": "London", "label": None},
    "sc_good": {**GEN, "instruction": "Name the capital city of France.", "output": "Paris", "label": None},
    "rt_bad": {**GEN, "instruction": "Explain photosynthesis briefly.",
               "output": "Bananas are yellow and grow in bunches on tall plants.", "label": None},
    "rt_good": {**GEN, "instruction": "Describe how plants make food.",
                "output": "Plants turn light into chemical energy.", "label": None},
}
EXPECTED = {"bad_label": "label", "bad_format": "format", "bad_length": "length", "bad_novelty": "novelty",
            "dup": "novelty", "judge_low": "judge", "judge_unparsable": "judge_unparsable",
            "sc_bad": "self_consistency", "rt_bad": "round_trip", "pref_same": "format"}


def model_answer(judge_by_marker):
    def answer(prompt: str, j: int) -> str:
        if "### Response" in prompt:
            return judge_by_marker(prompt, j)
        if "capital" in prompt:
            return "Paris"
        if "plants" in prompt.lower() or "photosynthesis" in prompt:
            return "Plants turn light into chemical energy."
        if "love" in prompt:
            return "positive"
        return "something else entirely"
    return answer


def rows():
    out = [{"name": k, **v} for k, v in ROWS.items()]
    out.append({"name": "dup", **ROWS["good_cls"]})
    out.append({"name": "pref_same", "prompt": "Say hi", "chosen": "hi", "rejected": "hi"})
    return out


def test_every_check_rejects_its_planted_row(tmp_path, scripted_server, judge_marker):
    srv = scripted_server(model_answer(judge_marker))
    llm = {"backend": "http", "base_url": srv.url}
    p = Pipeline(name="verify", sources=[{"synth_rows": {"rows": rows()}}],
                 steps=[{"verify": {"judge": "scripted", "model": "scripted", **llm, "min_score": 5,
                                    "max_words": 20, "seeds": str(SEEDS), "self_consistency": 3,
                                    "round_trip": True}}],
                 workdir=str(tmp_path / ".curate"), out_dir=str(tmp_path / "out"))
    r = p.run()
    kept, rej = r.data(), r.rejects()
    got = dict(zip(rej["name"].to_list(), rej["reason"].to_list()))
    assert got == EXPECTED
    assert sorted(kept["name"].to_list()) == ["good_cls", "rt_good", "sc_good"]
    assert kept["check_judge"].to_list() == [True] * 3 and kept["judge_score"].to_list() == [8.0] * 3
    assert "London" not in rej.filter(pl.col("name") == "sc_bad")["detail"][0]
    assert "0.00 of 3 samples agree" in rej.filter(pl.col("name") == "sc_bad")["detail"][0]
    assert "vs seed" in rej.filter(pl.col("name") == "bad_novelty")["detail"][0]
    # label applies only to classification rows; LLM checks only ran on rows that passed the cheap ones
    assert kept.filter(pl.col("name") == "rt_good")["check_label"][0] is None
    assert rej.filter(pl.col("name") == "bad_length")["check_judge"][0] is None
    st = r.manifest["steps"][0]["stats"]
    assert st["checks"]["label"] == {"applied": 3, "passed": 2, "acceptance_rate": 0.6667}
    assert st["checks"]["format"]["passed"] == 11 and st["checks"]["judge"]["applied"] == 7
    assert st["judge_unparsable"] == 1 and st["rejected_by_reason"]["novelty"] == 2
    assert st["acceptance_rate"] == pytest.approx(3 / 13, abs=1e-4)


def test_cheap_checks_without_a_model_and_json_fields(tmp_path):
    data = [{"instruction": "Return the data as JSON.", "text": "", "output": '{"a": 1}'},
            {"instruction": "Return other data as JSON now.", "text": "", "output": "{a: 1}"}]
    p = Pipeline(name="verify2", sources=[{"synth_rows": {"rows": data}}],
                 steps=[{"verify": {"json_fields": ["output"]}}],
                 workdir=str(tmp_path / ".curate"), out_dir=str(tmp_path / "out"))
    r = p.run()
    assert r.data()["output"].to_list() == ['{"a": 1}']
    rej = r.rejects()
    assert rej["reason"].to_list() == ["format"] and "not valid JSON" in rej["detail"][0]
    assert set(r.manifest["steps"][0]["stats"]["checks"]) == {"format", "label", "length", "junk", "novelty"}


def test_same_model_needs_synth_model(tmp_path):
    from curate.errors import CurateError
    p = Pipeline(name="verify3", sources=[{"synth_rows": {"rows": [{"prompt": "q", "response": "a"}]}}],
                 steps=[{"verify": {"judge": "same-model"}}],
                 workdir=str(tmp_path / ".curate"), out_dir=str(tmp_path / "out"))
    with pytest.raises(CurateError, match="synth_model"):
        p.run()
