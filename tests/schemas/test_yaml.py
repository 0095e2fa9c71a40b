"""The schema outputs and the dpo_pairs step from a YAML pipeline file (the declarative path)."""
from __future__ import annotations

import json

import pytest

from curate.errors import PipelineErrors
from curate.pipeline import load_yaml
from curate.schemas.natural_instructions import validate_task

YAML = """\
name: capitals
seed: 3
workdir: {tmp}/.curate
out_dir: {tmp}/out
sources:
  - natural_instructions: {{path: {task}}}
steps:
  - dpo_pairs:
      from_labels: {{prompt_template: "What is the capital of {{text}}?\\nAnswer:"}}
outputs:
  - natural_instructions:
      dir: {tmp}/ni
      task_number: 1146
      task_name: country_capital
      definition: "Given a country name, return its capital city."
      source: country_capital_city_dataset
      categories: [Misc.]
      domains: [Countries]
      output: output
      auto_examples: {{positive: 2}}
      negative_examples:
        - {{input: France, output: Rome, explanation: "Rome is not the capital of France; Paris is."}}
  - chat: {{path: {tmp}/chat.jsonl, instruction: definition, input: text, output: label}}
  - alpaca: {{path: {tmp}/alpaca.jsonl, instruction: definition, input: text, output: label}}
  - dpo: {{path: {tmp}/dpo.jsonl, format: conversational}}
"""


def test_yaml_pipeline_writes_every_format(tmp_path, ni_task_path):
    f = tmp_path / "p.yaml"
    f.write_text(YAML.format(tmp=tmp_path, task=ni_task_path))
    res = load_yaml(f).run()
    assert res.manifest["steps"][0]["rows_rejected"] == 0
    task_file = tmp_path / "ni" / "task1146_country_capital.json"
    task = json.loads(task_file.read_text())
    assert validate_task(task, task_file.stem) == [] and len(task["Instances"]) == 231 - 2
    assert task["Definition"] == ["Given a country name, return its capital city."]
    chat = [json.loads(x) for x in (tmp_path / "chat.jsonl").read_text().splitlines()]
    assert chat[0]["messages"][1] == {"role": "assistant", "content": "Kabul"}
    dpo = [json.loads(x) for x in (tmp_path / "dpo.jsonl").read_text().splitlines()]
    assert dpo[0]["prompt"] == [{"role": "user", "content": "What is the capital of Afghanistan?\nAnswer:"}]
    assert dpo[0]["chosen"] == [{"role": "assistant", "content": "Kabul"}]
    assert dpo[0]["rejected"][0]["content"] != "Kabul"
    again = load_yaml(f).run()
    assert again.all_cached and task_file.read_text() == json.dumps(task, indent=4, ensure_ascii=False)


def test_yaml_typo_is_named(tmp_path, ni_task_path):
    bad = YAML.replace("      definition: ", "      definiton: ")
    f = tmp_path / "p.yaml"
    f.write_text(bad.format(tmp=tmp_path, task=ni_task_path))
    with pytest.raises(PipelineErrors, match="definiton"):
        load_yaml(f)
