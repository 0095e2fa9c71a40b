"""One pipeline file from raw source to trained adapter: `curate build` runs its `train:` section,
and a second build reuses the finished run."""
from __future__ import annotations

import json
import textwrap

import pytest
from typer.testing import CliRunner

from curate.cli import app

from .conftest import NI_TASK


@pytest.mark.slow
def test_build_runs_train_section_and_caches_it(tiny_lm, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.yaml").write_text(textwrap.dedent(f"""
        name: capitals
        seed: 3
        sources:
          - natural_instructions: {{path: "{NI_TASK}"}}
        steps:
          - dedup: {{columns: [text]}}
        outputs:
          - natural_instructions:
              dir: out/ni
              task_number: 1146
              task_name: country_capital
              definition: "Given a country name, return its capital city."
              output: label
              positive_examples:
                - {{input: France, output: Paris, explanation: "Paris is the capital of France."}}
                - {{input: Japan, output: Tokyo, explanation: "Tokyo is the capital of Japan."}}
              negative_examples:
                - {{input: Italy, output: Milan, explanation: "Rome is the capital of Italy."}}
              strict: false
        train:
          model: "{tiny_lm}"
          objective: sft
          data: {{train: out/ni, max_rows: 24, val_fraction: 0.25}}
          method: {{kind: lora, r: 4}}
          training: {{max_steps: 3, batch_size: 4, max_length: 128, generation_eval_samples: 0}}
          output_dir: runs/capitals
    """))
    runner = CliRunner()
    res = runner.invoke(app, ["build", "p.yaml", "--quiet"])
    assert res.exit_code == 0, res.output
    manifest = json.loads((tmp_path / "out/capitals/manifest.json").read_text())
    assert manifest["train"]["global_step"] == 3 and manifest["train"]["cached"] is False
    card = (tmp_path / "runs/capitals/README.md").read_text()
    assert "natural_instructions" in card            # provenance from the pipeline manifest
    res2 = runner.invoke(app, ["build", "p.yaml", "--quiet"])
    assert res2.exit_code == 0 and "(cached)" in res2.output
    assert json.loads((tmp_path / "out/capitals/manifest.json").read_text())["train"]["cached"] is True


def test_train_section_errors_carry_pipeline_lines(tmp_path):
    (tmp_path / "p.yaml").write_text("name: x\nsources:\n  - jsonl: {path: a.jsonl}\ntrain:\n  model: m\n  objective: sfft\n  data: {train: out}\n")
    res = CliRunner().invoke(app, ["validate", str(tmp_path / "p.yaml")])
    assert res.exit_code == 2
    assert f"{tmp_path / 'p.yaml'}:6 train.objective:" in res.output
