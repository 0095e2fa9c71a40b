"""bench/downstream.py's building blocks on a tiny subset, so the benchmark cannot rot: the fixed
held-out split, the leakage guard, the low-resource sampler, the mess injector, and one variant
built by its pipeline file and trained with the real MiniLM encoder."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_downstream", REPO / "bench" / "downstream.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_downstream"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_every_variant_has_a_pipeline_file(bench):
    for v in bench.VARIANTS + ["holdout"]:
        assert (bench.PIPELINES / f"{v}.yaml").exists(), v


def test_holdout_is_fixed_stratified_and_disjoint(bench):
    rows = bench.read_sms()
    assert len(rows) > 5000
    t1, p1 = bench.holdout(rows, 200)
    t2, _ = bench.holdout(rows, 200)
    assert t1 == t2 and len(t1) == 200 and len(p1) == len(rows) - 200
    spam = sum(r["label"] == "spam" for r in t1)
    assert 20 <= spam <= 34                     # the data's ~13% spam share


def test_leakage_step_removes_pool_copies_of_test_rows(bench, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rows = bench.read_sms()[:400]
    test, pool = bench.holdout(rows, 60)
    long = max(test, key=lambda r: len(r["text"].split()))          # a near copy: one word more
    near = {"text": long["text"] + " today", "label": long["label"]}
    pool = pool + [dict(test[0]), near]
    kept, removed = bench.leak_free_pool(test, pool, tmp_path)
    assert removed >= 2
    texts = {bench._norm(r["text"]) for r in kept}
    assert bench._norm(test[0]["text"]) not in texts and bench._norm(near["text"]) not in texts


def test_low_resource_sample_and_mess(bench):
    rows = bench.read_sms()
    train, val = bench.low_resource(rows, seed=1, n=100, spam_share=0.1, n_val=20)
    assert len(train) == 100 and sum(r["label"] == "spam" for r in train) == 10
    assert len(val) == 20 and sum(r["label"] == "spam" for r in val) == 2
    assert not {r["text"] for r in train} & {r["text"] for r in val}
    messy = bench.make_messy(train, seed=1)
    assert len(messy) > len(train)                                  # duplicates injected
    assert any("<" in r["text"] and ">" in r["text"] for r in messy)
    assert any("â€" in r["text"] or "Â" in r["text"] for r in messy)   # mojibake
    assert sum(r["label"] == "spam" for r in messy) >= 10
    assert bench._mojibake("it's £5") == "itâ€™s Â£5"


@pytest.mark.slow
def test_one_variant_builds_and_trains_on_a_tiny_subset(bench, tmp_path):
    rows = bench.read_sms()
    test, pool = bench.holdout(rows, 40)
    train, val = bench.low_resource(pool, seed=0, n=40, spam_share=0.25, n_val=12)
    src = bench.write_jsonl(tmp_path / "train_in.jsonl", bench.make_messy(train, 0))
    job = {"setting": "messy", "seed": 0, "variant": "class_weights", "threads": 1, "env": {
        "DOWNSTREAM_IN": src, "DOWNSTREAM_RUN": tmp_path / "run",
        "DOWNSTREAM_TEST": bench.write_jsonl(tmp_path / "test.jsonl", test),
        "DOWNSTREAM_MODEL": bench.model_path(), "DOWNSTREAM_SEED": 0, "DOWNSTREAM_EPOCHS": 1}}
    r = bench.run_variant(job)
    assert 0.0 <= r["macro_f1"] <= 1.0 and 0.0 <= r["spam_recall"] <= 1.0
    assert r["train_rows"] < len(bench.make_messy(train, 0))          # clean + dedup removed the copies
    assert r["class_weights"][1] > r["class_weights"][0]              # spam (minority) weighs more
    lines, summary = bench.table([r, {**r, "variant": "raw"}], "messy")
    assert "class weights" in "\n".join(lines) and summary["class_weights"]["gain"][0] == 0.0
