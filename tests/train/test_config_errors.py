"""Train configs validate like pipeline files, and bad inputs fail before any training starts."""
from __future__ import annotations

import json

import pytest

from curate.errors import CurateError, DataError, PipelineErrors
from curate.train import TrainConfig, load_train_config, run_training


def test_yaml_errors_name_line_and_key(tmp_path):
    f = tmp_path / "train.yaml"
    f.write_text("model: m\nobjective: sft\ndata:\n  train: x.jsonl\n  val_fracton: 0.1\n"
                 "training:\n  learning_rate: 5\n", encoding="utf-8")
    with pytest.raises(PipelineErrors) as e:
        load_train_config(f)
    msg = str(e.value)
    assert f"{f}:5 data.val_fracton: unknown key; did you mean 'val_fraction'?" in msg
    assert f"{f}:7 training.learning_rate" in msg


def test_train_section_of_pipeline_file_and_env(tmp_path, monkeypatch):
    monkeypatch.setenv("BASE_MODEL", "/models/tiny")
    f = tmp_path / "p.yaml"
    f.write_text("name: p\nsources:\n  - csv: {path: a.csv}\ntrain:\n  model: ${env:BASE_MODEL}\n"
                 "  objective: dpo\n  data: {train: out/dpo.jsonl}\n  dpo: {beta: 0.2}\n", encoding="utf-8")
    cfg = load_train_config(f)
    assert cfg.model == "/models/tiny" and cfg.objective == "dpo" and cfg.dpo.beta == 0.2
    f.write_text("name: p\nsources:\n  - csv: {path: a.csv}\ntrain:\n  model: m\n  objective: rl\n"
                 "  data: {train: x}\n", encoding="utf-8")
    with pytest.raises(PipelineErrors, match=r"p.yaml:6 train.objective"):
        load_train_config(f)


def test_missing_env_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("NO_SUCH_MODEL_VAR", raising=False)
    f = tmp_path / "t.yaml"
    f.write_text("model: ${env:NO_SUCH_MODEL_VAR}\ndata: {train: x}\n", encoding="utf-8")
    with pytest.raises(PipelineErrors, match=r"t.yaml:1 model: environment variable NO_SUCH_MODEL_VAR is not set"):
        load_train_config(f)


def _no_training(out):
    assert not (out / "checkpoints").exists() and not (out / "metrics.json").exists()


def test_dpo_with_empty_chosen_fails_early(tiny_lm, tmp_path, make_config, jsonl):
    f = jsonl(tmp_path / "d.jsonl", [{"prompt": "Q?", "chosen": "yes", "rejected": "no"},
                                           {"prompt": "Q2?", "chosen": "  ", "rejected": "no"}])
    out = tmp_path / "run"
    with pytest.raises(DataError, match=r"d.jsonl:2: empty chosen \(field `chosen`\)"):
        run_training(make_config(tiny_lm, f, out, objective="dpo"))
    _no_training(out)


def test_ni_file_failing_schema_fails_early(tiny_lm, tmp_path, ni_dir, make_config):
    task_file = next(ni_dir.iterdir())
    task = json.loads(task_file.read_text())
    del task["Definition"]
    task_file.write_text(json.dumps(task))
    out = tmp_path / "run"
    with pytest.raises(DataError, match=r"task1146_country_capital.json: NI task fails the schema: .*Definition"):
        run_training(make_config(tiny_lm, ni_dir, out))
    _no_training(out)


def test_missing_model_path_fails_early(tmp_path, ni_dir, make_config):
    out = tmp_path / "run"
    with pytest.raises(CurateError, match=r"model path .*/nope/model does not exist"):
        run_training(make_config(tmp_path / "nope" / "model", ni_dir, out))
    _no_training(out)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this check is about machines without a CUDA GPU")
def test_qlora_on_cpu_fails_early(tiny_lm, tmp_path, ni_dir, make_config):
    out = tmp_path / "run"
    with pytest.raises(CurateError, match="method qlora needs a CUDA GPU"):
        run_training(make_config(tiny_lm, ni_dir, out, method={"kind": "qlora"}))
    _no_training(out)


def test_objective_and_format_must_match(tiny_lm, tmp_path, dpo_file, make_config):
    with pytest.raises(DataError, match=r"objective 'sft' needs .* but the data is 'dpo'"):
        run_training(make_config(tiny_lm, dpo_file, tmp_path / "run"))


def test_config_cross_checks():
    with pytest.raises(Exception, match="prompt_tuning is for causal LMs"):
        TrainConfig(model="m", objective="classification", data={"train": "x"}, method={"kind": "prompt_tuning"})
