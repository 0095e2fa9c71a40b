"""A build that explains itself: failed builds leave a manifest and a table, --only keeps the full
run's files, per-run folders, step selection by position, messages, CLI basics."""
from __future__ import annotations

import io
import json
import textwrap

import pytest
from rich.console import Console
from typer.testing import CliRunner

from curate import Pipeline
from curate.cli import app
from curate.engine import Engine
from curate.errors import CurateError, DataError
from curate.report.table import closing_table

from ._pipe import pipeline_text

runner = CliRunner()


def cli(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_failed_output_leaves_manifest_table_and_hint(tmp_path):
    # NI needs >= 26 instances: 48 rows minus 40 taken as examples leave 8.
    outputs = textwrap.dedent(f"""\
          - jsonl: {{path: {tmp_path}/out/rep/data.jsonl}}
          - natural_instructions:
              dir: {tmp_path}/out/rep/ni
              definition: Classify the message as spam or ham.
              auto_examples: {{positive: 20, negative: 20}}
        """)
    pf = tmp_path / "p.yaml"
    pf.write_text(pipeline_text(tmp_path, outputs))
    res = cli("build", pf, "-q", "--no-report")
    assert res.exit_code == 1
    assert "FAILED" in res.output and "natural_instructions" in res.output
    assert "what to do" in res.output and f"{pf}:" in res.output        # names the file:line to change
    # a failed run holds partial data: it goes to runs/<time>/, never over out/rep/manifest.json
    assert not (tmp_path / "out/rep/manifest.json").exists()
    m = json.loads((tmp_path / "out/rep/runs/latest/manifest.json").read_text())
    assert f"manifest: {tmp_path}/out/rep/runs/" in res.output.replace("\n", "")
    assert m["status"] == "failed" and m["error"]["at"] == "outputs[1].natural_instructions"
    assert m["error"]["line"] == 13 and m["error"]["message"]
    assert [s["rows_out"] for s in m["steps"]] == [57, 51, 48]          # counts so far
    assert m["outputs"][0]["rows"] == 48                                 # the jsonl output finished
    assert (tmp_path / "out/rep/runs/latest/rejects.jsonl").exists()
    latest = json.loads((tmp_path / "out/rep/runs/latest.json").read_text())
    assert latest["status"] == "failed"


def test_failed_step_is_in_the_table_and_the_exception_carries_the_partial_result(tmp_path):
    pf = tmp_path / "p.yaml"
    pf.write_text(pipeline_text(tmp_path, steps="- clean: {min_words: 3}\n- balance: {method: undersample, label: nope}\n"))
    with pytest.raises(DataError) as ei:
        Pipeline.from_yaml(pf).run()
    partial = ei.value.result
    assert partial.failed and [r.failed for r in partial.reports] == [False, False, True]
    assert partial.manifest["status"] == "failed" and partial.manifest["steps"][0]["rows_out"] == 57
    text = _render(closing_table(partial))
    assert "FAILED" in text and "2. balance" in text


def _render(table, width=80) -> str:
    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None).print(table)
    return buf.getvalue()


def test_only_keeps_the_full_runs_manifest_and_rejects(pipeline_file, tmp_path):
    full = Pipeline.from_yaml(pipeline_file).run()
    top = tmp_path / "out/rep/manifest.json"
    before_m, before_r = top.read_bytes(), (tmp_path / "out/rep/rejects.jsonl").read_bytes()
    assert full.run_dir.parent == tmp_path / "out/rep/runs" and (full.run_dir / "manifest.json").exists()
    r = Pipeline.from_yaml(pipeline_file).run(only="dedup")
    assert top.read_bytes() == before_m and (tmp_path / "out/rep/rejects.jsonl").read_bytes() == before_r
    assert r.manifest_path == r.run_dir / "manifest.json" and r.run_dir != full.run_dir
    assert r.manifest["only"]["label"] == "dedup" and len(r.manifest["steps"]) == 2
    rej = r.rejects()
    assert set(rej["step"]) == {"clean", "dedup"} and r.rejects_path.parent == r.run_dir
    runs = tmp_path / "out/rep/runs"
    assert json.loads((runs / "latest.json").read_text())["run"] == r.run_dir.name
    assert (runs / "latest").resolve() == r.run_dir.resolve()


def test_only_by_position_and_by_name_with_index(tmp_path):
    pf = tmp_path / "p.yaml"
    pf.write_text(pipeline_text(tmp_path, steps="- clean: {min_words: 3}\n- dedup: {columns: [text]}\n"
                                                 "- clean: {min_words: 8}\n"))
    p = Pipeline.from_yaml(pf)
    p.run()
    for sel in ("clean#2", "3", 3):
        r = Pipeline.from_yaml(pf).run(only=sel)
        assert [x.cached for x in r.reports if x.kind == "step"] == [True, True, False]
        assert r.manifest["only"]["position"] == 3 and r.manifest["only"]["label"] == "clean#2"
    r = Pipeline.from_yaml(pf).run(only="clean")
    assert [x.cached for x in r.reports if x.kind == "step"] == [False]
    assert "2 steps are named 'clean'" in r.manifest["only"]["description"]
    res = cli("build", pf, "-q", "--only", "clean#2", "--no-report")
    assert res.exit_code == 0 and "step 3 of 3: clean#2" in res.output
    for bad in ("clean#3", "4", "cleen"):
        with pytest.raises(CurateError, match=r"1=clean#1, 2=dedup, 3=clean#2"):
            Pipeline.from_yaml(pf).run(only=bad)


def test_cached_message_only_when_nothing_was_rewritten(pipeline_file, tmp_path):
    assert cli("build", pipeline_file, "-q", "--no-report").exit_code == 0
    res = cli("build", pipeline_file, "-q", "--no-report")
    assert "every step cached: nothing recomputed" in res.output
    (tmp_path / "out/rep/data.jsonl").unlink()
    res = cli("build", pipeline_file, "-q", "--no-report")
    assert "nothing recomputed" not in res.output
    assert "every step cached; rewrote 1 output(s): jsonl" in res.output


def test_closing_table_fits_80_columns(tmp_path):
    pf = tmp_path / "p.yaml"
    pf.write_text(pipeline_text(tmp_path, name="a-rather-long-pipeline-name-for-the-table"))
    r = Pipeline.from_yaml(pf).run()
    text = _render(closing_table(r))
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "57" in text and "tsv:sms" in text
    bigger = _render(closing_table(r), width=60)          # narrower still: the name column folds
    assert max(len(line) for line in bigger.splitlines()) <= 60


def test_progress_counts_match_the_table_with_apply_to(tmp_path):
    pf = tmp_path / "p.yaml"
    text = pipeline_text(tmp_path, steps="- clean: {min_words: 3, apply_to: [sms]}\n- dedup: {columns: [text], apply_to: [other]}\n")
    text = text.replace("sources:\n", "sources:\n  - inline: {name: other, rows: [{text: a b c d}, {text: e f g h}]}\n")
    pf.write_text(text)
    eng = Engine(Pipeline.from_yaml(pf), progress=True, console=Console(file=io.StringIO(), width=100))
    r = eng.run()
    steps = {t.description: t for t in eng._progress.tasks if t.description.startswith("step")}
    reps = [x for x in r.reports if x.kind == "step"]
    assert len(steps) == 2
    assert [rep.rows_in for rep in reps] == [63, 59]
    for task, rep in zip(steps.values(), reps):
        assert task.total == rep.rows_in == task.completed


def test_misspelled_mapped_column_names_file_and_line(tmp_path):
    pf = tmp_path / "p.yaml"
    pf.write_text(pipeline_text(tmp_path).replace("text: message", "text: mesage"))
    with pytest.raises(DataError) as ei:
        Pipeline.from_yaml(pf).run()
    msg = str(ei.value)
    assert msg.startswith(f"{pf}:6 sources[0].tsv.text: column 'mesage' (mapped in source 'sms') not found")
    assert "'mesage'" in msg and "'message'" in msg and "'category'" in msg


def test_version():
    from curate import __version__
    res = cli("--version")
    assert res.exit_code == 0 and res.output.strip() == f"curate {__version__}"


def test_validate_lists_env_variables_without_needing_them(tmp_path, monkeypatch):
    monkeypatch.delenv("CURATE_T_DB", raising=False)
    pf = tmp_path / "p.yaml"
    pf.write_text(pipeline_text(tmp_path) + "  - sql: {url: '${env:CURATE_T_DB}', table: t}\n")
    res = cli("validate", pf)
    assert res.exit_code == 0, res.output
    assert "requires environment variables: CURATE_T_DB (not set)" in res.output
    assert "CURATE_T_DB" not in __import__("os").environ


def test_validate_checks_train_files(tmp_path):
    good = tmp_path / "train.yaml"
    good.write_text("model: some/model\nobjective: sft\ndata: {train: out/x.jsonl}\nmethod: {kind: lora}\n")
    res = cli("validate", good)
    assert res.exit_code == 0 and "train file: sft on some/model" in res.output, res.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: some/model\nobjective: sft\ndata: {train: out/x.jsonl}\nmethod: {kind: lorra}\n")
    res = cli("validate", bad)
    assert res.exit_code == 2 and f"{bad}:4 method.kind" in res.output
    pf = tmp_path / "p.yaml"
    pf.write_text(pipeline_text(tmp_path) + "train: {model: m, objective: sft, data: {train: x}, method: {kind: nope}}\n")
    res = cli("validate", pf)
    assert res.exit_code == 2 and "train.method.kind" in res.output


def test_a_failed_run_keeps_the_last_full_runs_manifest(pipeline_file, tmp_path):
    good = Pipeline.from_yaml(pipeline_file).run()
    top = tmp_path / "out/rep/manifest.json"
    before = top.read_bytes()
    pipeline_file.write_text(pipeline_file.read_text().replace("label: label}", "label: nope}"))
    with pytest.raises(DataError) as ei:
        Pipeline.from_yaml(pipeline_file).run()
    assert top.read_bytes() == before and json.loads(before)["status"] == "ok"
    failed = ei.value.result
    assert failed.manifest_path == failed.run_dir / "manifest.json" != good.manifest_path
    assert [s["cached"] for s in json.loads(failed.manifest_path.read_text())["steps"]] == [True, True]
