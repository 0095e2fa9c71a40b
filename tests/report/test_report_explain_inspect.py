"""The HTML report's content, `curate explain` lineage and `curate inspect` on every format."""
from __future__ import annotations

import json
import re
import textwrap

import polars as pl
import pytest
from typer.testing import CliRunner

from curate import Pipeline
from curate.cli import app
from curate.report.inspect import inspect_file
from curate.report.lineage import explain
from curate.report.report import write_report

from ._pipe import pipeline_text

runner = CliRunner()
pytest.importorskip("plotly", reason="the report needs the [report] extra (plotly)")

NI_AND_JSONL = """\
  - jsonl: {{path: {t}/out/rep/data.jsonl}}
  - natural_instructions:
      dir: {t}/out/rep/ni
      definition: Classify the message as spam or ham.
      auto_examples: {{positive: 2, negative: 1}}
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One full build with NI + JSONL outputs (module-wide: the report tests only read it)."""
    t = tmp_path_factory.mktemp("rep")
    pf = t / "p.yaml"
    pf.write_text(pipeline_text(t, NI_AND_JSONL.format(t=t)))
    res = runner.invoke(app, ["build", str(pf), "-q"])
    assert res.exit_code == 0, res.output
    return t, pf, res.output


def test_build_writes_the_report_and_prints_its_path(built):
    t, _, output = built
    assert f"report:   {t}/out/rep/report.html" in output.replace("\n", "")
    assert (t / "out/rep/report.html").stat().st_size > 1_000_000          # plotly.js inlined


def test_report_is_self_contained_with_funnel_numbers(built):
    t, _, _ = built
    page = (t / "out/rep/report.html").read_text()
    assert not re.search(r"<script[^>]+src=", page, re.IGNORECASE)                   # no CDN, no external JS
    assert not re.search(r"<link[^>]+href=[\"']?https?://", page, re.IGNORECASE)
    funnel = {m[0]: (int(m[1]), int(m[2]), int(m[3])) for m in re.findall(
        r'data-step="([^"]+)" data-in="(\d+)" data-out="(\d+)" data-rejected="(\d+)"', page)}
    assert funnel == {"source sms": (61, 61, 0), "1. clean": (61, 57, 4), "2. dedup": (57, 51, 6),
                      "3. balance": (51, 48, 3)}
    for section in ("Step funnel", "Label distribution", "Lengths", "Near-duplicates",
                    "Sample rows of every output", "Rejects per reason", "Config, seed, versions"):
        assert section in page
    assert "too_few_words 4" in page and "exact_duplicate 6" in page and "undersampled 3" in page
    assert page.count('class="plotly-graph-div"') >= 5


def test_report_of_a_failed_build_shows_the_error(tmp_path):
    pf = tmp_path / "p.yaml"
    pf.write_text(pipeline_text(tmp_path, steps="- clean: {min_words: 3}\n- balance: {method: undersample, label: nope}\n"))
    res = runner.invoke(app, ["build", str(pf), "-q"])
    assert res.exit_code == 1
    page = (tmp_path / "out/rep/runs/latest/report.html").read_text()
    assert 'id="status">failed<' in page and "label column &#x27;nope&#x27; not found" in page


def test_report_command_on_a_pipeline_file(built, tmp_path):
    t, pf, _ = built
    res = runner.invoke(app, ["report", str(pf), "-o", str(tmp_path / "r.html")])
    assert res.exit_code == 0 and (tmp_path / "r.html").exists()
    res = runner.invoke(app, ["report", str(tmp_path / "nothing-here")])
    assert res.exit_code == 1 and "not found" in res.output


def test_explain_a_duplicate_a_kept_row_and_an_undersampled_row(built):
    t, pf, _ = built
    rej = pl.read_ndjson(t / "out/rep/rejects.jsonl")
    dup = rej.filter(pl.col("reason") == "exact_duplicate").row(0, named=True)
    info = explain(pf, dup["id"])
    assert info["source"] == dup["source"] and info["source"].startswith("csv:") and "data.tsv:" in info["source"]
    assert [e["decision"] for e in info["steps"]] == ["kept", "rejected"]
    assert info["ended"] == {"rejected": "exact_duplicate", "step": "2. dedup", "detail": dup["detail"]}
    assert info["steps"][-1]["duplicate_of"] == dup["duplicate_of"]
    kept = json.loads((t / "out/rep/data.jsonl").read_text().splitlines()[4])
    info = explain(t / "out/rep", kept["id"])
    assert [e["decision"] for e in info["steps"]] == ["kept"] * 3
    outs = {o["output"]: o for o in info["ended"]["outputs"]}
    assert outs["jsonl"]["line"] == 5 and outs["jsonl"]["file"].endswith("data.jsonl")
    res = runner.invoke(app, ["explain", kept["id"], "--run", str(pf)])
    assert res.exit_code == 0 and "ended: jsonl" in res.output and ":5" in res.output
    under = rej.filter(pl.col("reason") == "undersampled").row(0, named=True)
    res = runner.invoke(app, ["explain", under["id"], "--run", str(pf), "--json"])
    assert json.loads(res.output)["ended"]["rejected"] == "undersampled"
    res = runner.invoke(app, ["explain", "no-such-id", "--run", str(pf)])
    assert res.exit_code == 1 and "not in the run" in res.output


def test_explain_names_parents_of_copies(tmp_path):
    pf = tmp_path / "p.yaml"
    pf.write_text(pipeline_text(tmp_path, steps="- balance: {method: oversample, label: label}\n"))
    r = Pipeline.from_yaml(pf).run()
    copy = r.data().filter(pl.col("parent_id").is_not_null()).row(0, named=True)
    info = explain(pf, copy["id"])
    assert info["steps"][0]["decision"] == "created"
    assert info["parents"][0]["id"] == copy["parent_id"]
    assert "data.tsv:" in info["parents"][0]["lineage"]["source"]


def test_inspect_every_format(built, tmp_path):
    t, _, _ = built
    ni = next((t / "out/rep/ni").glob("*.json"))
    info = inspect_file(ni)
    assert info["kind"] == "natural_instructions task" and info["rows"] == 45
    assert 'field="Instances"' in info["load_with"] and info["task"]["positive_examples"] == 2
    info = inspect_file(t / "out/rep/data.jsonl")
    assert info["rows"] == 48 and info["labels"]["top"] == {"ham": 24, "spam": 24}
    assert info["words"]["text"]["min"] >= 3 and len(info["sample"]) == 3
    info = inspect_file(t / "data.tsv")
    assert info["format"] == "tsv" and info["rows"] == 61 and info["labels"]["column"] == "category"
    pl.read_ndjson(t / "out/rep/data.jsonl").write_parquet(tmp_path / "d.parquet")
    assert inspect_file(tmp_path / "d.parquet")["rows"] == 48
    dpo = tmp_path / "dpo.jsonl"
    dpo.write_text(json.dumps({"prompt": "hi", "chosen": "hello there", "rejected": "go away"}) + "\n")
    assert inspect_file(dpo)["kind"] == "dpo pairs (explicit prompt)"
    res = runner.invoke(app, ["inspect", str(ni)])
    assert res.exit_code == 0 and "natural_instructions task" in res.output and "Instances" in res.output
    res = runner.invoke(app, ["inspect", str(dpo), "--json"])
    assert json.loads(res.output)["rows"] == 1
    res = runner.invoke(app, ["inspect", str(tmp_path / "missing.csv")])
    assert res.exit_code == 1 and "no such file" in res.output


def test_report_sections_from_step_stats(tmp_path):
    # PII by type and languages come from clean's stats; verification from verify-like stats.
    from curate.report.report import Report
    from curate.report.rundata import RunData
    pf = tmp_path / "p.yaml"
    pf.write_text(pipeline_text(tmp_path, steps=textwrap.dedent("""\
        - clean: {min_words: 3, pii: true}
        """)))
    r = Pipeline.from_yaml(pf).run()
    run = RunData.load(r.manifest_path)
    run.manifest["steps"][0]["stats"].update(
        pii_redacted={"email": 3, "phone": 2}, languages_detected={"en": 50, "de": 7},
        checks={"format": {"applied": 10, "passed": 9, "acceptance_rate": 0.9}})
    page = Report(run).render()
    for title in ("Languages detected (clean)", "PII redactions by type (clean)", "Acceptance per check (clean)"):
        assert title in page


def test_token_histogram_when_a_tokenizer_is_configured(tmp_path):
    pytest.importorskip("transformers", reason="token counts need the [ml] extra")
    from curate.testing import tiny_tokenizer
    tok = tmp_path / "tok"
    tiny_tokenizer(tok)
    pf = tmp_path / "p.yaml"
    pf.write_text(pipeline_text(tmp_path, steps=f"- clean: {{min_words: 3, tokenizer: {tok}, max_tokens: 500}}\n"))
    r = Pipeline.from_yaml(pf).run()
    page = (write_report(r.manifest_path)).read_text()
    assert "Model tokens per row (" in page and "token histogram skipped" not in page
