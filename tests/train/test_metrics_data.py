"""Metric implementations against hand-computed values, and the NI prompt encoding."""
from __future__ import annotations

import pytest

from curate.train.config import DataConfig, NIEncoding
from curate.train.data import load_splits, ni_prompt
from curate.train.metrics import bleu, classification_metrics, exact_match, rouge_l


def test_exact_match_normalises_and_uses_any_reference():
    assert exact_match(["The Paris.", "rome"], [["paris"], ["Milan", "Rome"]]) == 1.0
    assert exact_match(["Lyon"], [["Paris"]]) == 0.0


def test_rouge_l_is_lcs_f1():
    # LCS("a b c d", "a c d e") = 3 → P = 3/4, R = 3/4, F = 0.75
    assert rouge_l(["a b c d"], [["a c d e"]]) == pytest.approx(0.75)
    assert rouge_l(["x"], [["y"]]) == 0.0


def test_bleu_perfect_and_disjoint():
    assert bleu(["the cat sat on the mat"], [["the cat sat on the mat"]]) == pytest.approx(100.0)
    assert bleu(["dog"], [["the cat sat on the mat"]]) < 1.0


def test_classification_metrics_per_class():
    m = classification_metrics([0, 0, 1, 1], [0, 1, 1, 1], ["a", "b"])
    assert m["accuracy"] == 0.75
    assert m["per_class"]["a"]["f1"] == pytest.approx(2 / 3)
    assert m["per_class"]["b"]["f1"] == pytest.approx(0.8)


def test_ni_encoding_orders_definition_examples_instance(ni_dir):
    enc = NIEncoding(num_pos_examples=2, num_neg_examples=1, add_explanation=True)
    s = load_splits(DataConfig(train=str(ni_dir), val_fraction=0.0, ni=enc), "sft", 0)
    p = s.train[0]["prompt"]
    order = [p.index(x) for x in ("Definition: In this task", "Positive Example 1 -", "Positive Example 2 -",
                                  "Negative Example 1 -", "Explanation:", "Now complete the following example -")]
    assert order[:4] == sorted(order[:4]) and p.endswith("Output:")
    assert "Positive Example 3" not in p and "Negative Example 2" not in p
    assert s.train[0]["completion"] == " " + s.train[0]["references"][0] and len(s.train) == 26
    assert ni_prompt("D", [], [], "x", NIEncoding(add_definition=False)).startswith("Now complete")


def test_formats_detected_and_split(tmp_path, jsonl):
    chat = jsonl(tmp_path / "c.jsonl", [{"messages": [{"role": "user", "content": f"hi {i}"},
                                                            {"role": "assistant", "content": f"yo {i}"}]}
                                              for i in range(10)])
    s = load_splits(DataConfig(train=str(chat), val_fraction=0.2), "sft", 1)
    assert s.format == "chat" and len(s.train) == 8 and len(s.validation) == 2
    assert s.train[0]["completion"][0]["role"] == "assistant"
    alp = jsonl(tmp_path / "a.jsonl", [{"instruction": "Add", "input": "1 1", "output": "2"}])
    s = load_splits(DataConfig(train=str(alp), val_fraction=0.0), "sft", 0)
    assert s.format == "alpaca" and "### Input:\n1 1" in s.train[0]["prompt"] and s.train[0]["completion"] == "2"


def test_hh_style_pairs_get_their_prompt(data_dir):
    s = load_splits(DataConfig(train=str(data_dir / "hh_rlhf_harmless_base_test_first300.jsonl"),
                               val_fraction=0.0, max_rows=5), "dpo", 0)
    r = s.train[0]
    assert s.format == "dpo" and r["prompt"].rstrip().endswith("Assistant:") and r["chosen"] != r["rejected"]


def test_model_card_carries_pipeline_provenance(tmp_path):
    import json

    from curate.train.callbacks import model_card
    from curate.train.config import TrainConfig
    man = tmp_path / "manifest.json"
    man.write_text(json.dumps({
        "pipeline": "tickets", "curate_version": "0.1", "seed": 13, "finished_at": "2026-11-26T00:00:00+00:00",
        "sources": [{"name": "sms", "connector": "csv", "config": {"path": "data/sms.tsv"}, "rows": 100,
                     "rejected": 2, "fingerprint": "abc"}],
        "steps": [{"name": "dedup", "rows_in": 100, "rows_out": 90, "rows_rejected": 10, "rows_created": 0}],
        "totals": {"rows_read": 102, "rows_final": 90, "rows_rejected": 12}}))
    cfg = TrainConfig(model="base/m", data={"train": "x"}, output_dir=str(tmp_path / "run"), provenance=str(man))
    res = {"trainable_params": 10, "total_params": 1000, "trainable_fraction": 0.01, "global_step": 5, "epoch": 1.0,
           "data_format": "ni", "train_rows": 90, "validation_rows": 0, "is_peft": True,
           "final_eval": {"eval_loss": 1.5, "eval_runtime": 0.3}}
    card = model_card(cfg, res, ["out/ni/task1.json"], tmp_path / "README.md").read_text()
    assert "Pipeline `tickets`" in card and "source `sms` (csv) data/sms.tsv: 100 rows, 2 rejected" in card
    assert "step `dedup`: 100 in → 90 out" in card and "`out/ni/task1.json`" in card
    assert "| eval_loss | 1.5 |" in card and "eval_runtime" not in card
