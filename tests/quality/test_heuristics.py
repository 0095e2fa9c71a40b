"""Heuristic filters: planted rows go with the right reason, real rows stay, the vectorised
steps decide exactly like the plain-Python reference, thresholds per language and per field."""
from __future__ import annotations

import polars as pl
import pytest

from curate import Pipeline
from curate.steps.clean._repetition import RepetitionConfig
from curate.steps.quality import heuristics as H
from curate.steps.quality._reference import decide

from .conftest import frame, reasons, run_step

PROSE = ("The committee met on Tuesday to review the budget and to discuss the plan that the city "
         "will have to adopt with care. Members of the public spoke about the parks, the roads and "
         "the schools, and the chair thanked them for coming.")

PLANTED = {   # step -> (config, planted text, expected reason)
    "quality_word_count": (H.WordCount, {"min_words": 5, "max_words": 5000}, ["hi there", "word " * 5001], ["too_few_words", "too_many_words"]),
    "quality_word_length": (H.WordLength, {}, ["a b c d e f g h i j k l m n o p q r s t u v w x y z " * 3,
                                               "supercalifragilistic antidisestablishmentarianism " * 10],
                            ["short_mean_word_length", "long_mean_word_length"]),
    "quality_symbols": (H.Symbols, {}, ["#deal #win #free #now #sale #cheap " * 3], ["symbol_ratio"]),
    "quality_lines": (H.Lines, {}, ["- one\n- two\n- three\n- four", "so...\nthen...\nand then...\nfine"],
                      ["bullet_lines", "ellipsis_lines"]),
    "quality_stop_words": (H.StopWords, {}, ["buy cheap pills online now best price fast delivery guaranteed"],
                           ["few_stop_words"]),
    "quality_alpha": (H.Alpha, {}, ["12 34 56 78 90 11 22 33 44 55 66 77 88 99 price"], ["low_alpha_frac"]),
    "quality_repetition": (H.Repetition, {}, ["buy now " * 40, "Home\nAbout\nHome\nContact\nHome\nAbout\nHome"],
                           ["top_2_gram", "dup_line_frac"]),
}


@pytest.mark.parametrize("name", list(PLANTED))
def test_planted_rows_go_and_real_dialogues_stay(name, hh):
    cls, cfg, planted, expected = PLANTED[name]
    real = hh.filter(pl.col("text").str.count_matches(r"\w+") >= 50).get_column("text").to_list()
    df = frame(planted + [PROSE] + real)
    res = run_step(cls(**cfg), df)
    got = reasons(res)
    assert [got.get(f"r{i}") for i in range(len(planted))] == expected
    assert f"r{len(planted)}" not in got                       # the prose paragraph stays
    kept_real = sum(f"r{i}" not in got for i in range(len(planted) + 1, df.height))
    assert kept_real >= 0.9 * len(real), (name, kept_real, len(real))
    assert res.kept.height + res.rejected.height == df.height
    assert res.stats["rejected_by_reason"] == {r: expected.count(r) + sum(
        1 for i in range(len(planted), df.height) if got.get(f"r{i}") == r) for r in set(got.values())}
    assert not [c for c in res.kept.columns if c.startswith("_")]


def test_sms_thresholds_keep_ordinary_messages(sms):
    """SMS-length texts need their own bounds: with min_words 3 and one stop word, ordinary ham
    messages stay while the planted junk goes."""
    ham = sms.filter(pl.col("label") == "ham").head(400).get_column("text").to_list()
    df = frame(["ok", "#win #win #win #win", "1 2 3 4 5 6 7 8"] + ham)
    steps = [H.WordCount(min_words=3), H.Symbols(max_symbol_ratio=0.5), H.Alpha(min_alpha_frac=0.5)]
    kept = df
    rejected = {}
    for s in steps:
        res = run_step(s, kept)
        kept = res.kept
        rejected.update(reasons(res))
    assert rejected["r0"] == "too_few_words" and rejected["r1"] == "symbol_ratio" and rejected["r2"] == "low_alpha_frac"
    assert kept.height >= 0.85 * len(ham)


def test_vectorised_decisions_equal_the_reference(sms, hh):
    texts = [t for v in PLANTED.values() for t in v[2]] + [PROSE, "", None] + \
        sms.get_column("text").head(1500).to_list() + hh.get_column("text").to_list()
    texts = [t for t in texts]
    df = frame(texts)
    ref = [decide(t, {"min_words": 3}, "en", RepetitionConfig()) for t in texts]
    got: dict[str, str] = {}
    for s in [H.WordCount(min_words=3), H.WordLength(), H.Symbols(), H.Lines(), H.StopWords(), H.Alpha(), H.Repetition()]:
        res = run_step(s, df)
        df = res.kept
        got.update(reasons(res))
    assert [got.get(f"r{i}") for i in range(len(texts))] == ref
    assert len(set(ref)) >= 8          # many different rules fired


def test_language_defaults_and_per_field_thresholds():
    german = ("Die Bundesregierung beschloss gestern umfangreiche Gesetzesänderungen zur "
              "Krankenversicherung")                       # mean word length 10.75
    assert reasons(run_step(H.WordLength(), frame([german])))["r0"] == "long_mean_word_length"
    assert reasons(run_step(H.WordLength(language="de"), frame([german]))) == {}
    assert run_step(H.WordCount(language="zh"), frame(["这是一个很短的句子"])).rejected.height == 0
    df = pl.DataFrame({"id": ["a", "b"], "prompt": ["Hi there?", "Why?"],
                       "response": ["Hello, I am fine and glad to help you.", "ok"]})
    step = H.WordCount(columns=["prompt", "response"], min_words=3, fields={"prompt": {"min_words": 1}})
    assert reasons(run_step(step, df)) == {"b": "too_few_words[response]"}
    with pytest.raises(ValueError, match="unknown threshold"):
        H.WordCount(columns=["text"], fields={"text": {"min_stop_words": 1}})
    with pytest.raises(ValueError, match="no defaults for language"):
        H.WordCount(language="xx")


def test_details_and_manifest_counts_through_the_engine(tmp_path):
    rows = [{"t": PROSE}, {"t": "hi"}, {"t": "- a b c\n- d e f\n- g h i"}, {"t": "#a #b #c #d"}]
    p = Pipeline(name="q", sources=[{"inline": {"rows": rows, "text": "t"}}],
                 steps=[{"quality_word_count": {"min_words": 3}}, {"quality_lines": {}}, {"quality_symbols": {}}],
                 workdir=str(tmp_path / ".curate"), out_dir=str(tmp_path / "out"))
    r = p.run()
    counts = {s["name"] if "name" in s else s["step"]: s["stats"]["rejected_by_reason"] for s in r.manifest["steps"]}
    assert list(counts.values()) == [{"too_few_words": 1}, {"bullet_lines": 1}, {"symbol_ratio": 1}]
    rej = r.rejects()
    assert sorted(rej["reason"].to_list()) == ["bullet_lines", "symbol_ratio", "too_few_words"]
    assert rej.filter(pl.col("reason") == "too_few_words")["detail"][0] == "1.0 < 3"
    assert r.data()["text"].to_list() == [PROSE]


def test_pipeline_file_errors_name_file_line_and_key(tmp_path):
    from curate.errors import PipelineErrors
    from curate.pipeline import load_yaml
    f = tmp_path / "p.yaml"
    f.write_text("name: q\nsources:\n  - inline: {rows: [{text: a}]}\nsteps:\n"
                 "  - quality_word_count:\n      fields: {text: {min_stop_words: 1}}\n"
                 "  - quality_alpha: {language: xx}\n")
    with pytest.raises(PipelineErrors) as e:
        load_yaml(f)
    msg = str(e.value)
    assert f"{f}:5" in msg and "unknown threshold(s) ['min_stop_words']" in msg
    assert f"{f}:7" in msg and "no defaults for language 'xx'" in msg


def test_fineweb_line_rules():
    menu = "Home\nNews\nSport\nWeather\n\n   \nContact us\nA much longer line of text ending without a stop"
    prose = "The first line of the story ends with a full stop.\nThe second one ends likewise, quite plainly."
    step = H.Lines(min_punct_lines_frac=0.12, max_short_lines_frac=0.67)
    got = reasons(run_step(step, frame([menu, prose])))
    assert got == {"r0": "few_punct_lines"}
    got = reasons(run_step(H.Lines(max_short_lines_frac=0.67), frame([menu, prose])))
    assert got == {"r0": "short_lines"}
    res = run_step(H.Lines(max_short_lines_frac=0.5), frame(["ok\n" + " " * 40 + "\n" + "x" * 40]))
    assert res.rejected.height == 0          # 1 short line of 2 non-blank lines; blank lines never count
