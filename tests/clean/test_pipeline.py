"""The clean step through the engine: accounting, manifest stats, YAML, caching, batches."""
from __future__ import annotations

import json
import textwrap

import pytest

from curate import Pipeline
from curate.errors import PipelineErrors
from curate.steps.clean import Clean

ROWS = [
    {"t": "cafÃ© opens at 8, mail owner@cafe.example.com", "label": "a"},
    {"t": "<p>Call me on +1 415-555-2671</p>", "label": "b"},
    {"t": "card 4111 1111 1111 1111 vs order 1234 5678 9012 3456", "label": "a"},
    {"t": "   ", "label": "b"},
    {"t": "buy now " * 40, "label": "a"},
    {"t": "server 10.1.2.3 restarted fine", "label": "b"},
    {"t": "hi", "label": "a"},
]


def _pipeline(tmp_path, steps, rows=ROWS, **kw):
    return Pipeline(name="clean-test", sources=[{"inline": {"rows": rows, "text": "t"}}],
                    steps=steps, workdir=str(tmp_path / ".curate"), out_dir=str(tmp_path / "out"), **kw)


def test_accounting_and_manifest_counts(tmp_path):
    p = _pipeline(tmp_path, [Clean(strip_html=True, pii=True, repetition=True, min_words=2)])
    r = p.run()
    step = r.manifest["steps"][0]
    assert step["rows_in"] == 7
    assert step["rows_out"] + step["rows_rejected"] == step["rows_in"]
    assert step["rows_created"] == 0
    stats = step["stats"]
    assert stats["pii_redacted"] == {"email": 1, "phone": 1, "ip": 1, "credit_card": 1}
    assert stats["unicode_fixed"] == 1 and stats["html_stripped"] == 1
    assert stats["rejected_by_reason"] == {"empty_text": 1, "repetition": 1, "too_few_words": 1}
    # the manifest on disk carries the same numbers
    on_disk = json.loads(r.manifest_path.read_text())
    assert on_disk["steps"][0]["stats"]["pii_redacted"]["credit_card"] == 1
    data = r.data()
    assert data["text"].to_list() == [
        "café opens at 8, mail <EMAIL>", "Call me on <PHONE>",
        "card <CREDIT_CARD> vs order 1234 5678 9012 3456", "server <IP> restarted fine"]
    assert set(data.columns) >= {"id", "source", "origin", "text", "label"}
    rej = r.rejects()
    assert sorted(rej["reason"].to_list()) == ["empty_text", "repetition", "too_few_words"]
    assert set(rej["step"].to_list()) == {"clean"}
    # every input id leaves exactly once
    assert sorted(data["id"].to_list() + rej["id"].to_list()) == sorted(
        _pipeline(tmp_path / "again", []).run().data()["id"].to_list())


def test_stats_sum_across_batches_and_rerun_is_cached(tmp_path):
    rows = [{"t": f"row {i} mail u{i}@example.com", "label": "x"} for i in range(25)]
    p = _pipeline(tmp_path, [{"clean": {"pii": True}}], rows=rows, batch_size=10)
    r = p.run()
    assert r.manifest["steps"][0]["stats"]["pii_redacted"]["email"] == 25
    assert r.manifest["steps"][0]["stats"]["rows_in"] == 25
    again = p.run()
    assert again.manifest["steps"][0]["cached"] and again.data()["text"].to_list() == r.data()["text"].to_list()


def test_apply_to_other_sources_pass_through(tmp_path):
    p = Pipeline(name="clean-apply", sources=[
        {"inline": {"name": "web", "rows": [{"t": "<b>x y</b>"}], "text": "t"}},
        {"inline": {"name": "raw", "rows": [{"t": "<b>kept as is</b>"}], "text": "t"}}],
        steps=[{"clean": {"strip_html": True, "apply_to": ["web"]}}],
        workdir=str(tmp_path / ".curate"), out_dir=str(tmp_path / "out"))
    out = dict(p.run().data().select("origin", "text").rows())
    assert out == {"web": "x y", "raw": "<b>kept as is</b>"}


def test_yaml_pipeline_and_config_errors(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(textwrap.dedent(f"""
        name: clean-yaml
        sources:
          - inline: {{rows: [{{t: "a  b c"}}, {{t: "x"}}], text: t}}
        steps:
          - clean: {{min_words: 2, pii: {{phones: false}}, repetition: {{dup_line_frac: 0.5}}}}
        workdir: {tmp_path / '.curate'}
        out_dir: {tmp_path / 'out'}
    """))
    r = Pipeline.from_yaml(good).run()
    assert r.data()["text"].to_list() == ["a b c"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(textwrap.dedent("""
        name: clean-bad
        sources:
          - inline: {rows: [{t: a}], text: t}
        steps:
          - clean:
              min_word: 3
              max_tokens: 10
    """))
    with pytest.raises(PipelineErrors) as e:
        Pipeline.from_yaml(bad)
    msg = str(e.value)
    assert "bad.yaml:7" in msg and "min_word" in msg


def test_missing_text_column_names_step_and_column(tmp_path):
    from curate.errors import DataError
    p = Pipeline(name="clean-missing", sources=[{"inline": {"rows": [{"body": "x"}]}}],
                 steps=[Clean()], workdir=str(tmp_path / ".curate"), out_dir=str(tmp_path / "out"))
    with pytest.raises(DataError, match="clean: column 'text' not found"):
        p.run()


def test_sms_corpus_end_to_end(tmp_path, sms):
    rows = sms.head(800).rename({"text": "t"}).to_dicts()
    p = _pipeline(tmp_path, [Clean(strip_html=True, pii=True, repetition=True, boilerplate=True,
                                   min_words=2)], rows=rows)
    r = p.run()
    step = r.manifest["steps"][0]
    assert step["rows_in"] == 800 and step["rows_out"] + step["rows_rejected"] == 800
    assert step["stats"]["pii_redacted"]["phone"] > 5           # spam texts carry premium numbers
    assert step["rows_out"] > 700
    kept = r.data()["text"]
    assert not kept.str.contains(r"\b09[0-9]{9}\b").any()
    assert not kept.str.contains("&lt;").any()                   # entities were unescaped
