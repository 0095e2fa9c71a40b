"""DPO with LoRA (reward margin rises) and weighted classification (per-class F1)."""
from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_dpo_lora_margin_rises(tiny_lm, dpo_file, tmp_path, make_config):
    from curate.train import run_training
    cfg = make_config(tiny_lm, dpo_file, tmp_path / "run", objective="dpo",
                      data={"train": str(dpo_file), "val_fraction": 0.0},
                      training={"max_steps": 16, "batch_size": 4, "learning_rate": 1e-2, "save_steps": 1000},
                      dpo={"beta": 0.1})
    r = run_training(cfg)
    margins = [h["rewards/margins"] for h in r.log_history if "rewards/margins" in h]
    assert len(margins) >= 10
    first, last = sum(margins[:3]) / 3, sum(margins[-3:]) / 3
    assert last > first + 0.05, margins
    assert r.metrics["reward_margins"]["last_margin"] == margins[-1]
    assert r.trainable_fraction < 0.05


@pytest.mark.slow
def test_dpo_full_with_reference_model_path(tiny_lm, dpo_file, tmp_path, make_config):
    from curate.train import run_training
    cfg = make_config(tiny_lm, dpo_file, tmp_path / "run", objective="dpo", method={"kind": "full"},
                      data={"train": str(dpo_file), "val_fraction": 0.25},
                      training={"max_steps": 2, "batch_size": 4, "save_steps": 1000},
                      dpo={"beta": 0.5, "reference": str(tiny_lm)})
    r = run_training(cfg)
    assert r.trainable_fraction == 1.0 and r.model_dir.name == "model" and r.global_step == 2
    assert "eval_rewards/margins" in r.metrics["final_eval"]
    missing = make_config(tiny_lm, dpo_file, tmp_path / "run2", objective="dpo", method={"kind": "full"},
                          dpo={"reference": str(tmp_path / "no" / "ref")})
    from curate.errors import CurateError
    with pytest.raises(CurateError, match="model path .* does not exist"):
        run_training(missing)


@pytest.mark.slow
def test_classification_with_class_weights_reports_f1_per_class(tiny_cls, cls_file, tmp_path, make_config):
    from curate.train import run_training
    cfg = make_config(tiny_cls, cls_file, tmp_path / "run", objective="classification",
                      data={"train": str(cls_file), "val_fraction": 0.3},
                      training={"max_steps": -1, "epochs": 2, "batch_size": 8, "learning_rate": 5e-3},
                      merge_adapter=True)
    r = run_training(cfg)
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["labels"] == ["ham", "other", "spam"]
    w = dict(zip(m["labels"], m["class_weights"]))
    assert w["ham"] < w["spam"] and w["ham"] < w["other"]        # majority class weighs less
    assert set(m["per_class_f1"]) == {"ham", "other", "spam"}
    assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in m["per_class_f1"].values())
    assert "eval_accuracy" in m["final_eval"] and len(m["evaluations"]) >= 2     # evaluated every epoch
    assert r.model_dir.name == "adapter"
    # merged model = base + adapter folded in: same logits as the in-memory peft model
    import torch
    from transformers import AutoModelForSequenceClassification
    merged = AutoModelForSequenceClassification.from_pretrained(r.merged_dir).eval()
    ids = r.tokenizer(["free prize call now"], return_tensors="pt")
    r.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(merged(**ids).logits, r.model(**ids).logits, rtol=1e-4, atol=1e-4)
    assert merged.config.id2label == {0: "ham", 1: "other", 2: "spam"}


def test_class_weights_from_balance_manifest(tmp_path):
    from curate.train.classify import inverse_frequency, weights_from_manifest
    man = tmp_path / "manifest.json"
    man.write_text(json.dumps({"steps": [{"name": "clean", "stats": {}},
                                         {"name": "balance", "stats": {"after": {"ham": 30, "spam": 10}}}]}))
    assert weights_from_manifest(str(man), ["ham", "spam"]) == pytest.approx([40 / 60, 40 / 20])
    man.write_text(json.dumps({"steps": [{"name": "balance", "stats": {  # as curate.steps.balance writes them
        "before": {"ham": 30, "spam": 10}, "after": {"ham": 30, "spam": 30},
        "class_weights": {"ham": 0.666667, "spam": 2.0}, "class_weights_after": {"ham": 1.0, "spam": 1.0}}}]}))
    assert weights_from_manifest(str(man), ["ham", "spam"]) == [1.0, 1.0]   # weights of what we train on
    man.write_text(json.dumps({"steps": [{"name": "balance", "stats": {"class_weights": {"ham": 1, "spam": 3}}}]}))
    assert weights_from_manifest(str(man), ["ham", "spam"]) == [1.0, 3.0]
    assert inverse_frequency([1, 0]) == [0.5, 0.0]


@pytest.mark.slow
def test_pipeline_balance_manifest_feeds_class_weights(tiny_cls, cls_file, tmp_path, make_config):
    """One flow: a pipeline balances the labels and writes JSONL + manifest; training reads both."""
    from curate import Pipeline
    from curate.train import run_training
    out = tmp_path / "out"
    res = Pipeline(name="cls", sources=[{"jsonl": {"path": str(cls_file), "text": "text", "label": "label"}}],
                   steps=[{"balance": {"method": "none"}}],
                   outputs=[{"jsonl": {"path": str(out / "train.jsonl"), "columns": ["text", "label"]}}],
                   workdir=str(tmp_path / ".curate"), out_dir=str(out)).run()
    stats = res.manifest["steps"][0]["stats"]
    cfg = make_config(tiny_cls, out / "train.jsonl", tmp_path / "run", objective="classification",
                      data={"train": str(out / "train.jsonl"), "val_fraction": 0.0},
                      classification={"class_weights": "manifest"}, provenance=str(res.manifest_path),
                      training={"max_steps": 2, "batch_size": 8, "save_steps": 1000})
    r = run_training(cfg)
    assert r.metrics["class_weights"] == pytest.approx([stats["class_weights_after"][lab] for lab in r.metrics["labels"]])
    card = (tmp_path / "run" / "README.md").read_text()
    assert "Pipeline `cls`" in card and "step `balance`" in card
