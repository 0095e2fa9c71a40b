"""Decontamination: training rows sharing a 13-gram with an eval set are rejected with the eval
set and the n-gram named; rows sharing shorter spans are spared. Eval sets from files, folders,
NI task files and Hugging Face dataset folders."""
from __future__ import annotations

import json
import random

import polars as pl
import pytest

from ._planted import words

EVAL_Q = ("Natalia sold clips to forty eight of her friends in April and then she sold half as "
          "many clips in May how many clips did she sell altogether")


@pytest.fixture
def eval_files(tmp_path):
    (tmp_path / "gsm.jsonl").write_text(json.dumps({"question": EVAL_Q, "answer": "72"}) + "\n"
                                        + json.dumps({"question": "too short to match", "answer": "1"}) + "\n")
    return tmp_path


def training_rows():
    rng = random.Random(4)
    q = EVAL_Q.split()
    return [
        {"text": " ".join(words(rng, 10) + q[3:16] + words(rng, 10))},        # 13-gram: contaminated
        {"text": "Solve: " + EVAL_Q.upper().replace(" HOW ", ", how ") + "?"},  # case/punct: contaminated
        {"text": " ".join(words(rng, 10) + q[3:15] + words(rng, 10))},        # only 12 words: clean
        {"text": " ".join(words(rng, 40))},                                   # clean
        {"text": "too short to match"},                                       # clean (short)
    ]


def test_decontaminate_jsonl(run_steps, eval_files):
    rows = training_rows()
    cfg = {"eval_sets": [{"path": str(eval_files / "gsm.jsonl"), "name": "gsm8k", "columns": ["question"]}]}
    res = run_steps(rows, [{"decontaminate": cfg}])
    rej = res.rejects()
    assert sorted(rej["text"].to_list()) == sorted([rows[0]["text"], rows[1]["text"]])
    assert set(rej["reason"]) == {"contamination"} and set(rej["eval_set"]) == {"gsm8k"}
    first = rej.filter(pl.col("text") == rows[0]["text"])
    gram = " ".join(EVAL_Q.lower().split()[3:16])
    assert first["matched_ngram"][0] == gram
    assert gram in first["detail"][0] and "gsm8k" in first["detail"][0]
    st = res.manifest["steps"][0]["stats"]
    assert st["contaminated"] == 2 and st["by_eval_set"] == {"gsm8k": 2}
    assert st["eval_sets"]["gsm8k"]["too_short"] >= 1
    assert res.data().height == 3


def test_decontaminate_hf_folder(run_steps, tmp_path):
    from datasets import Dataset
    Dataset.from_dict({"prompt": [EVAL_Q], "label": [1]}).save_to_disk(str(tmp_path / "hf_eval"))
    rows = training_rows()
    res = run_steps(rows, [{"decontaminate": {"eval_sets": [{"path": str(tmp_path / "hf_eval"),
                                                              "name": "hf"}]}}])
    got = dict(zip(res.rejects()["text"], res.rejects()["eval_set"]))
    assert got == {rows[0]["text"]: "hf", rows[1]["text"]: "hf"}


def test_decontaminate_ni_task_folder(run_steps, data_dir):
    """NI task files: instance inputs and list outputs are eval text; short n for short items."""
    rows = [{"text": "what is the capital of papua new guinea"},
            {"text": "capital of bosnia and herzegovina, please"},
            {"text": "papua new zealand is not a country"}]
    cfg = {"ngram": 3, "eval_sets": [{"path": str(data_dir / "ni_tasks"), "name": "ni"}]}
    res = run_steps(rows, [{"decontaminate": cfg}])
    rej = res.rejects()
    assert sorted(rej["matched_ngram"].to_list()) == ["bosnia and herzegovina", "papua new guinea"]
    assert res.data()["text"].to_list() == [rows[2]["text"]]


def test_decontaminate_errors(run_steps, tmp_path):
    rows = training_rows()
    with pytest.raises(Exception, match="does not exist"):
        run_steps(rows, [{"decontaminate": {"eval_sets": [{"path": str(tmp_path / "nope.jsonl")}]}}], name="a")
    (tmp_path / "e.jsonl").write_text(json.dumps({"q": EVAL_Q}) + "\n")
    with pytest.raises(Exception, match="question"):
        run_steps(rows, [{"decontaminate": {"eval_sets": [{"path": str(tmp_path / "e.jsonl"),
                                                            "columns": ["question"]}]}}], name="b")
