"""Split leakage: eval rows with exact/near twins in train are reported or removed; clean eval
rows and train rows are never touched."""
from __future__ import annotations

import random

import pytest

from ._planted import variant, words


def rows_with_leaks():
    rng = random.Random(21)
    train = [" ".join(words(rng, 80)) for _ in range(30)]
    rows = [{"text": t, "split": "train"} for t in train]
    rows += [{"text": train[0].upper(), "split": "test"},                         # exact (case)
             {"text": " ".join(variant(rng, train[1].split(), 1)), "split": "test"},   # near, J≈0.88
             {"text": " ".join(words(rng, 80)), "split": "test"},                # clean
             {"text": " ".join(variant(rng, train[2].split(), 1)), "split": "validation"},
             {"text": " ".join(words(rng, 80)), "split": "validation"}]          # clean
    rows.append({"text": train[3], "split": "train"})                           # train-train: not a leak
    return rows


def test_leakage_report(run_steps):
    rows = rows_with_leaks()
    res = run_steps(rows, [{"leakage": {"near": {"threshold": 0.8, "bands": 32, "rows": 4}}}])
    out = res.data()
    assert out.height == len(rows)
    leaks = out.filter(out["leak_of"].is_not_null())
    assert sorted(leaks["split"].to_list()) == ["test", "test", "validation"]
    ids = dict(zip(out["text"], out["id"]))
    exact = leaks.filter(leaks["text"] == rows[0]["text"].upper())
    assert exact["leak_of"][0] == ids[rows[0]["text"]] and exact["leak_similarity"][0] == 1.0
    st = res.manifest["steps"][0]["stats"]
    assert st["leaks"] == 3 and st["exact_leaks"] == 1 and st["near_leaks"] == 2
    assert st["leaks_by_split"] == {"test": 2, "validation": 1}


def test_leakage_remove(run_steps):
    rows = rows_with_leaks()
    res = run_steps(rows, [{"leakage": {"action": "remove",
                                        "near": {"threshold": 0.8, "bands": 32, "rows": 4}}}])
    rej = res.rejects()
    assert rej.height == 3 and set(rej["reason"]) == {"split_leakage"}
    assert set(res.data()["split"].to_list()) == {"train", "test", "validation"}
    assert res.data().filter(res.data()["split"] == "train").height == 31
    train_ids = set(res.data().filter(res.data()["split"] == "train")["id"])
    assert set(rej["duplicate_of"]) <= train_ids
    assert all("train row" in d for d in rej["detail"])
    assert (rej["similarity"] >= 0.8).all()


def test_leakage_exact_only_and_missing_split(run_steps):
    rows = rows_with_leaks()
    res = run_steps(rows, [{"leakage": {"near": None, "action": "remove"}}], name="exact")
    assert res.rejects()["text"].to_list() == [rows[0]["text"].upper()]
    with pytest.raises(Exception, match="fold"):
        run_steps(rows, [{"leakage": {"split_column": "fold"}}], name="bad")
