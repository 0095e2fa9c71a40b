"""Robust judge-score parsing: accepted forms and rejected (unparsable) answers."""
from __future__ import annotations

import pytest

from curate.llm.judge import judge_prompt, parse_score


@pytest.mark.parametrize("text,score", [
    ("Score: 8/10", 8.0), ("[[4]]", 4.0), ('{"score": 3, "why": "ok"}', 3.0), ("**Rating:** 4.5", 4.5),
    ("7", 7.0), ("Final score: eight", 8.0), ("Rating: [[9]]", 9.0),
    ("First I thought Score: 3, but on reflection Score: 6", 6.0),   # the last labelled score wins
    ("Score: 4 out of 5", 1 + 0.8 * 9),                                # rescaled to 1..10
])
def test_parses(text, score):
    assert parse_score(text).score == pytest.approx(score)


@pytest.mark.parametrize("text,why", [
    ("", "empty"), (None, "empty"), ("I refuse to grade this.", "no score"),
    ("Score: 11", "outside"), ("Score: 0", "outside"), ("It has 3 parts and 7 words", "no score"),
    ('{"score": "high"}', "no score"), ("Score: 3/0", "bad scale"),
])
def test_unparsable_gives_none_and_a_reason(text, why):
    res = parse_score(text)
    assert res.score is None and why in res.error


def test_custom_scale_and_prompt():
    assert parse_score("Score: 5", low=1, high=5).score == 5
    assert parse_score("Score: 6", low=1, high=5).score is None
    p = judge_prompt("Say hi", "hi", low=1, high=5)
    assert "Say hi" in p and "Score: <number>" in p and "1-5" in p
