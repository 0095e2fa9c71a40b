"""Filters: empty, chars, words, tokens (tiny tokenizer), language, repetition, boilerplate."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from curate.steps.clean import CleanConfig

NORMAL = ("The committee met on Tuesday to discuss the new budget. After a long debate, members "
          "agreed to fund the library renovation and to postpone the road repairs until spring. "
          "The mayor thanked everyone for their patience and promised a report next month.")


def test_empty_after_cleaning(run, rejected_reasons):
    res = run(["  \x00 \t", None, "<p> </p>", "ok"], strip_html=True)
    assert rejected_reasons(res) == {"r0": "empty_text", "r1": "empty_text", "r2": "empty_text"}
    assert res.kept["text"].to_list() == ["ok"]
    assert res.stats["rejected_by_reason"] == {"empty_text": 3}


def test_min_max_words(run, rejected_reasons):
    res = run(["one two", "one two three", "a b c d e f"], min_words=3, max_words=5)
    assert rejected_reasons(res) == {"r0": "too_few_words", "r2": "too_many_words"}
    det = dict(res.rejected.select("id", "detail").rows())
    assert det == {"r0": "2 words < 3", "r2": "6 words > 5"}


def test_min_max_chars(run, rejected_reasons):
    res = run(["abc", "abcdef", "abcdefghijk"], min_chars=4, max_chars=10)
    assert rejected_reasons(res) == {"r0": "too_few_chars", "r2": "too_many_chars"}


@pytest.mark.slow
def test_min_max_tokens_with_tiny_tokenizer(run, rejected_reasons, tiny_tok_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_tok_path)
    texts = ["hello", "What is the capital of France?", NORMAL]
    counts = [len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts]
    assert counts[0] < counts[1] < counts[2]
    res = run(texts, tokenizer=tiny_tok_path, min_tokens=counts[0] + 1, max_tokens=counts[2] - 1)
    assert rejected_reasons(res) == {"r0": "too_few_tokens", "r2": "too_many_tokens"}
    det = dict(res.rejected.select("id", "detail").rows())
    assert det["r2"] == f"{counts[2]} tokens > {counts[2] - 1}"
    assert res.kept["text"].to_list() == [texts[1]]


def test_tokens_need_a_tokenizer():
    with pytest.raises(ValidationError, match="need `tokenizer`"):
        CleanConfig(max_tokens=10)


def test_first_failing_reason_wins(run, rejected_reasons, tiny_tok_path):
    # too short in words is checked before tokens, so tokens are not even computed for it
    res = run(["hi", NORMAL], min_words=2, tokenizer=tiny_tok_path, max_tokens=5)
    assert rejected_reasons(res) == {"r0": "too_few_words", "r1": "too_many_tokens"}


@pytest.mark.slow
def test_language_keep_list(run, rejected_reasons):
    texts = [
        "The weather is lovely today and we are going for a long walk in the park.",
        "Das Wetter ist heute herrlich und wir machen einen langen Spaziergang im Park.",
        "Il fait très beau aujourd'hui et nous allons faire une longue promenade au parc.",
        "Ok see u",  # shorter than min_lang_chars: not language-filtered
    ]
    res = run(texts, languages=["en"], language_candidates=["en", "de", "fr", "es"])
    assert rejected_reasons(res) == {"r1": "language", "r2": "language"}
    det = dict(res.rejected.select("id", "detail").rows())
    assert det["r1"].startswith("detected de (") and det["r2"].startswith("detected fr (")
    assert 0.5 < float(det["r1"].split("(")[1].rstrip(")")) <= 1.0
    assert res.stats["languages_detected"] == {"en": 1, "de": 1, "fr": 1}
    assert res.kept["text"].to_list() == [texts[0], texts[3]]


def test_unknown_language_code_is_a_config_error():
    with pytest.raises(ValidationError, match="unknown ISO 639-1"):
        CleanConfig(languages=["english"])


def test_repetition_rejects_spam_keeps_paragraph(run, rejected_reasons):
    res = run(["buy now " * 50, NORMAL, "hello there"], repetition=True)
    assert rejected_reasons(res) == {"r0": "repetition"}
    assert res.rejected["detail"][0].startswith("top_2_gram ")
    assert res.stats["repetition_rules"] == {"top_2_gram": 1}


def test_repetition_line_and_ngram_rules(run, rejected_reasons):
    lines = "Home\nAbout us\nHome\nHome\nContact"
    long_dup = ("the quick brown fox jumps over the lazy dog near the river bank "
                "and then the quick brown fox jumps over the lazy dog near the river bank again")
    res = run([lines, long_dup], repetition={"top_n_grams": {}})
    det = dict(res.rejected.select("id", "detail").rows())
    assert det["r0"].startswith("dup_line_frac 0.4")
    assert det["r1"].startswith("dup_5_gram ")
    # thresholds are respected: loosen the 5..10-gram rules and the second text passes
    loose = {n: 0.9 for n in range(5, 11)}
    res2 = run([long_dup], repetition={"top_n_grams": {}, "dup_n_grams": loose})
    assert res2.rejected.height == 0


def test_repetition_off_by_default(run):
    assert run(["buy now " * 50]).rejected.height == 0


def test_boilerplate(run, rejected_reasons):
    texts = ["Lorem ipsum dolor sit amet.\nAll rights reserved.\nA real sentence.",
             "JavaScript is disabled in your browser.",
             "A real paragraph of text.\nAnother real line.\nCopyright notice: all rights reserved.",
             NORMAL]
    res = run(texts, boilerplate=True)
    assert rejected_reasons(res) == {"r0": "boilerplate", "r1": "boilerplate"}
    assert res.rejected.filter(res.rejected["id"] == "r0")["detail"][0] == "0.67 of lines are boilerplate"
    res2 = run(texts, boilerplate=True, boilerplate_patterns=[r"real"], boilerplate_threshold=0.6)
    assert rejected_reasons(res2) == {"r2": "boilerplate"}


def test_bad_boilerplate_regex_is_a_config_error():
    with pytest.raises(ValidationError, match="invalid regex"):
        CleanConfig(boilerplate=True, boilerplate_patterns=["(unclosed"])


def test_filter_column_and_missing_column(run):
    from pathlib import Path

    import polars as pl
    from curate.errors import DataError
    from curate.step import StepContext
    from curate.steps.clean import Clean

    df = pl.DataFrame({"id": ["a", "b"], "text": ["x", "y"], "response": ["one two three", "one"]})
    res = Clean(columns=["text", "response"], filter_column="response", min_words=2).process(
        df, StepContext("clean", 0, 0, Path("/tmp")))
    assert res.kept["id"].to_list() == ["a"] and res.rejected["reason"].to_list() == ["too_few_words"]
    with pytest.raises(DataError, match="column 'body' not found"):
        Clean(columns=["body"]).process(df, StepContext("clean", 0, 0, Path("/tmp")))


@pytest.mark.slow
def test_language_confidence_undetected_and_short_texts(run, rejected_reasons):
    texts = ["The weather is lovely today and we are going for a long walk in the park.",
             "1234567890 ?!?! 0987654321 ... 42",     # no letters: lingua cannot decide
             "Das Wetter ist schön."]                 # 21 chars: below min_lang_chars=25
    cands = ["en", "de", "fr", "es"]
    res = run(texts, languages=["en"], language_candidates=cands, min_lang_chars=25)
    assert rejected_reasons(res) == {}
    res = run(texts, languages=["en"], language_candidates=cands, min_lang_chars=25,
              reject_undetected=True)
    assert rejected_reasons(res) == {"r1": "language"}
    assert res.rejected["detail"].to_list() == ["undetected"]
    res = run(texts, languages=["en"], language_candidates=cands, language_min_confidence=1.0)
    det = dict(res.rejected.select("id", "detail").rows())
    assert det["r0"].startswith("detected en (") and det["r0"].endswith(") < 1.0")
    assert det["r2"].startswith("detected de (")


@pytest.mark.slow
def test_unloadable_tokenizer_names_it(run, tmp_path):
    from curate.errors import StepError

    missing = str(tmp_path / "no-such-tokenizer")
    with pytest.raises(StepError, match="cannot load tokenizer .*no-such-tokenizer"):
        run(["some text here"], tokenizer=missing, max_tokens=3)
