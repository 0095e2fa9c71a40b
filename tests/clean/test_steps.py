"""The clean parts as registered steps of their own (on the Filter/Mapper bases), the `clean`
composite giving the same rows and reasons as the parts chained, the PII type switches and the
language filter's `language_uncertain` floor on real SMS."""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from curate import Pipeline, registry
from curate.step import Filter, Mapper, StepContext

PARTS = {"strip_html": Mapper, "fix_unicode": Mapper, "normalize_whitespace": Mapper,
         "redact_pii": Mapper, "length_filter": Filter, "boilerplate_filter": Filter,
         "repetition_filter": Filter, "token_filter": Filter, "language_filter": Filter}

MESSY = ["<p>cafÃ© at 8, mail a@b.example.com</p>", "   ", "buy now " * 40, "hi",
         "Lorem ipsum dolor.\nAll rights reserved.", "Call +1 415-555-2671 about the order today",
         "So u gonna get deus ex?", "Das Wetter ist heute herrlich und wir gehen im Park spazieren."]


def _ctx() -> StepContext:
    return StepContext("t", 0, 0, Path("/tmp"))


def _df(texts: list[str]) -> pl.DataFrame:
    return pl.DataFrame({"id": [f"r{i}" for i in range(len(texts))], "text": texts})


def test_built_in_parts_are_registered_filters_and_mappers():
    for name, base in PARTS.items():
        cls = registry.get("step", name)
        assert cls is not None and issubclass(cls, base), name


def test_parts_run_standalone(run):
    cls = registry.get("step", "redact_pii")
    res = cls(emails=True).process(_df(["mail a@b.example.com or 415-555-2671"]), _ctx())
    assert res.kept["text"].to_list() == ["mail <EMAIL> or 415-555-2671"]
    assert res.stats == {"pii_redacted": {"email": 1}, "pii_rows": 1}
    length = registry.get("step", "length_filter")(min_words=2)
    res = length.process(_df(["one", "one two", ""]), _ctx())
    assert dict(res.rejected.select("id", "reason").rows()) == {"r0": "too_few_words", "r2": "empty_text"}
    assert res.rejected.filter(pl.col("id") == "r0")["detail"][0] == "1 words < 2"


def test_clean_equals_its_parts_chained(tmp_path):
    """The composite and the same parts as separate pipeline steps keep the same rows with the
    same texts and reject the same rows with the same reasons."""
    opts = dict(strip_html=True, pii=True, min_words=2, boilerplate=True, repetition=True)
    parts = [{"strip_html": {}}, {"fix_unicode": {}}, {"normalize_whitespace": {}}, {"redact_pii": {}},
             {"length_filter": {"min_words": 2}}, {"boilerplate_filter": {}}, {"repetition_filter": {}}]
    rows = [{"t": t} for t in MESSY]
    res = {}
    for key, steps in (("composite", [{"clean": opts}]), ("parts", parts)):
        p = Pipeline(name=f"eq-{key}", sources=[{"inline": {"rows": rows, "text": "t"}}], steps=steps,
                     workdir=str(tmp_path / key / ".curate"), out_dir=str(tmp_path / key / "out"))
        r = p.run()
        res[key] = (sorted(r.data().select("id", "text").rows()), sorted(r.rejects().select("id", "reason").rows()))
    assert res["composite"] == res["parts"]
    assert {reason for _, reason in res["composite"][1]} == {"empty_text", "repetition", "too_few_words",
                                                             "boilerplate"}


def test_pii_naming_types_means_only_those(run):
    text = "mail a.b@example.org, call +44 20 7946 0958, card 4111 1111 1111 1111, host 10.0.0.1"
    only_mail = run([text], pii={"emails": True}).kept["text"][0]
    assert only_mail == "mail <EMAIL>, call +44 20 7946 0958, card 4111 1111 1111 1111, host 10.0.0.1"
    two = run([text], pii={"emails": True, "ips": True})
    assert two.kept["text"][0] == "mail <EMAIL>, call +44 20 7946 0958, card 4111 1111 1111 1111, host <IP>"
    assert two.stats["pii_redacted"] == {"email": 1, "ip": 1}
    everything = run([text], pii=True).kept["text"][0]
    assert everything == "mail <EMAIL>, call <PHONE>, card <CREDIT_CARD>, host <IP>"
    all_but_phone = run([text], pii={"phones": False}).kept["text"][0]
    assert all_but_phone == "mail <EMAIL>, call +44 20 7946 0958, card <CREDIT_CARD>, host <IP>"


@pytest.mark.slow
def test_short_informal_english_sms_kept_as_language_uncertain(run, sms):
    """Real English SMS that lingua calls French/German/Spanish with low confidence are kept and
    flagged; confident other-language text is still rejected; too-short texts are flagged."""
    informal = ["So u gonna get deus ex?", "You still at grand prix?", "Huh so late... Fr dinner?",
                "Siva is in hostel aha:-."]
    assert set(informal) <= set(sms["text"].to_list())
    texts = informal + ["Das Wetter ist heute herrlich und wir gehen im Park spazieren.", "ok lor",
                        "The weather is lovely today and we are going for a long walk in the park."]
    cands = ["en", "de", "fr", "es"]
    res = run(texts, languages=["en"], language_candidates=cands)
    assert dict(res.rejected.select("id", "reason").rows()) == {"r4": "language"}
    assert res.kept["language_uncertain"].to_list() == [True, True, True, True, True, False]
    assert res.stats["language_uncertain"] == 5
    # without the floor the same SMS are rejected: the floor is what keeps them
    strict = run(texts, languages=["en"], language_candidates=cands, language_uncertain_below=0)
    assert set(dict(strict.rejected.select("id", "reason").rows())) == {"r0", "r1", "r2", "r3", "r4"}
    assert "language_uncertain" not in run(texts, languages=["en"], language_candidates=cands,
                                           language_flag_column=None).kept.columns


@pytest.mark.slow
def test_language_default_candidates_on_sms_ham(run, sms):
    """With the default candidate set (no `language_candidates`), at most 1% of 1,000 English ham
    SMS are rejected; with all 75 languages and no floor it was 3-4% (issue #12)."""
    ham = sms.filter(pl.col("label") == "ham").head(1000)["text"].to_list()
    res = run(ham, languages=["en"])
    assert res.rejected.height <= 10
    assert res.stats["languages_detected"]["en"] > 900
