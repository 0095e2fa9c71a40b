"""SMOTE variants on real sentence embeddings, turned into text rows honestly (slow: loads MiniLM)."""
from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from curate.augmenters._base import Augmenter, AugmenterConfig, register_augmenter, _AUGMENTERS
from curate import Pipeline
from curate.errors import DataError

pytestmark = pytest.mark.slow


if "test_constant" not in _AUGMENTERS:
    class ConstantConfig(AugmenterConfig):
        text: str = "ok see you at home later tonight"

    @register_augmenter("test_constant")
    class Constant(Augmenter):
        """Returns the same text for every input (drifts away from spam parents)."""

        Config = ConstantConfig

        def augment(self, texts, seed):
            return [self.config.text for _ in texts]

    @register_augmenter("test_identity")
    class Identity(Augmenter):
        """Returns its input unchanged (a copy of the parent)."""

        def augment(self, texts, seed):
            return list(texts)

    @register_augmenter("test_fixed_suffix")
    class FixedSuffix(Augmenter):
        """One fixed text per parent whatever the seed (the old failure: 17 texts for 76 points)."""

        def augment(self, texts, seed):
            return [t + " ok" for t in texts]


@pytest.fixture(scope="module")
def rows(sms) -> list[dict]:
    df = sms
    ham = df.filter(pl.col("label") == "ham").head(14)
    spam = df.filter(pl.col("label") == "spam").head(5)
    rare = pl.DataFrame({"text": ["Your parcel is held at the depot, pay the fee online"], "label": ["rare"]})
    return pl.concat([ham, spam, rare]).to_dicts()


def run(tmp, name, steps, rows):
    p = Pipeline(name=name, seed=5, sources=[{"inline": {"rows": rows}}], steps=steps,
                 workdir=str(tmp / name / ".curate"), out_dir=str(tmp / name / "out"))
    return p.run()


@pytest.fixture(scope="module")
def smote_run(tmp_path_factory, rows):
    tmp = tmp_path_factory.mktemp("smote")
    return run(tmp, "smote", [{"balance": {"method": "smote", "target": {"spam": 9, "rare": 3}}}], rows)


def test_smote_rows_carry_parents_weight_and_pass_the_gate(smote_run):
    from curate.embed import embed
    df = smote_run.data()
    st = smote_run.manifest["steps"][0]["stats"]
    syn = df.filter(pl.col("smote_weight").is_not_null())
    assert syn.height >= 1
    assert st["smote"]["parents_recovered"] == st["smote"]["synthetic_points"]["spam"]
    spam_ids = set(df.filter((pl.col("label") == "spam") & pl.col("parent_id").is_null())["id"])
    text_of = dict(zip(df["id"], df["text"]))
    for row in syn.iter_rows(named=True):
        a, b = row["parents"]
        assert {a, b} <= spam_ids and row["label"] == "spam"
        assert row["parent_id"] in (a, b) and row["id"].startswith(row["parent_id"] + "-sm")
        assert 0 <= row["smote_weight"] <= 1
        assert row["text"] != text_of[row["parent_id"]]
        assert json.loads(row["augmenter"])["augmenter"] == "embedding_swap"
    # Honesty: the recorded parents and weight rebuild the point the text was checked against.
    r = syn.row(0, named=True)
    ea, eb, et = embed([text_of[r["parents"][0]], text_of[r["parents"][1]], r["text"]])
    point = ea + r["smote_weight"] * (eb - ea)
    sim = float(et @ point / np.linalg.norm(point))
    assert sim == pytest.approx(r["point_similarity"], abs=2e-3)
    assert sim >= 0.7


def test_smote_small_classes_reduce_k_and_fall_back(smote_run):
    st = smote_run.manifest["steps"][0]["stats"]
    assert st["smote"]["k_neighbors"]["spam"] == 4          # 5 rows -> k = 4
    assert "rare" in st["smote"]["fallbacks"]                # 1 row -> random copies
    df = smote_run.data()
    assert df.filter(pl.col("label") == "rare").height == 3
    assert st["before"]["spam"] == 5 and st["after"]["spam"] + st["smote"]["rejected"] == 9


def test_smote_accounting_and_rejects(smote_run):
    m = smote_run.manifest["steps"][0]
    assert m["rows_in"] + m["rows_created"] == m["rows_out"] + m["rows_rejected"]
    rej = smote_run.rejects()
    if rej.height:
        assert (rej["reason"].str.starts_with("smote_") | (rej["reason"] == "duplicate_realisation")).all()


def test_smote_realises_distinct_texts(smote_run):
    """Every accepted point has its own text: none repeats another synthetic row or an input row."""
    df = smote_run.data()
    st = smote_run.manifest["steps"][0]["stats"]
    syn = df.filter(pl.col("smote_weight").is_not_null())
    originals = set(df.filter(pl.col("parent_id").is_null())["text"])
    assert syn["text"].n_unique() == syn.height == st["smote"]["unique_texts"]
    assert not set(syn["text"]) & originals
    assert 0 < st["unique_text_ratio"] <= 1 and "created_unique_ratio" in st
    params = [json.loads(a) for a in syn["augmenter"]]
    assert all({"edit_strength", "seed_offset", "aug_p"} <= set(p) for p in params)
    # the edit strength follows the interpolation weight (farther from the parent = more words swapped)
    for p, w in zip(params, syn["smote_weight"]):
        assert p["edit_strength"] == pytest.approx(round((0.5 + 2 * min(w, 1 - w)) * 4) / 4)


def test_repeated_realisations_are_rejected_with_a_reason(tmp_path, rows):
    """A generator that gives one fixed text per parent cannot fill the class with copies: the
    second point of a parent is rejected as duplicate_realisation."""
    res = run(tmp_path, "dup", [{"balance": {"method": "smote", "target": {"spam": 25}, "attempts": 2,
                                             "generator": {"test_fixed_suffix": {}}, "label_check": "none",
                                             "min_point_similarity": -1}}], rows)
    df, rej = res.data(), res.rejects()
    syn = df.filter(pl.col("smote_weight").is_not_null())
    assert syn.height == syn["text"].n_unique() <= 5                 # at most one text per spam parent
    assert "duplicate_realisation" in set(rej["reason"])
    assert (rej.filter(pl.col("reason") == "duplicate_realisation")["detail"]
            .str.contains("equals an input row or another synthetic row").all())


def test_small_class_error_mode(tmp_path, rows):
    with pytest.raises(DataError, match="k_neighbors=5.*'rare'"):
        run(tmp_path, "err", [{"balance": {"method": "smote", "small_class": "error"}}], rows)


def test_gate_rejects_drifted_and_copied_texts(tmp_path, rows):
    res = run(tmp_path, "drift", [{"balance": {"method": "smote", "target": {"spam": 8},
                                               "generator": {"test_constant": {}}, "attempts": 1}}], rows)
    rej = res.rejects()
    assert rej.height == 3
    assert set(rej["reason"]) <= {"smote_far_from_point", "smote_label_changed"}
    res = run(tmp_path, "copy", [{"balance": {"method": "smote", "target": {"spam": 8},
                                              "generator": {"test_identity": {}}, "attempts": 1}}], rows)
    assert set(res.rejects()["reason"]) == {"smote_copy_of_parent"}
    assert res.data().filter(pl.col("label") == "spam").height == 5


@pytest.mark.parametrize("method", ["borderline_smote", "adasyn"])
def test_smote_variants(tmp_path, method, rows):
    res = run(tmp_path, method, [{"balance": {"method": method, "target": {"spam": 9}, "attempts": 1}}], rows)
    st = res.manifest["steps"][0]["stats"]
    # Each variant either generated points itself or recorded its fallback to plain SMOTE.
    assert st["smote"]["synthetic_points"].get("spam", 0) > 0 or "spam" in st["smote"]["fallbacks"]
    syn = res.data().filter(pl.col("smote_weight").is_not_null())
    assert (syn["smote_method"] == method).all()
    assert st["smote"]["parents_recovered"] == sum(st["smote"]["synthetic_points"].values())


def test_smote_llm_generator_writes_from_both_parents(tmp_path, rows):
    """With `llm` set, a curate.llm backend writes each text from both parents; a tiny random
    Llama writes gibberish, which the gate must reject (never keep silently)."""
    from curate.testing import tiny_llama
    model = str(tiny_llama(tmp_path / "llm"))
    res = run(tmp_path, "llm", [{"balance": {"method": "smote", "target": {"spam": 7}, "attempts": 1,
                                             "llm": {"model": model, "backend": "transformers",
                                                     "device": "cpu", "max_new_tokens": 12}}}], rows)
    rej = res.rejects()
    st = res.manifest["steps"][0]["stats"]["smote"]
    assert st["synthetic_points"]["spam"] == 2
    assert st["accepted"] + st["rejected"] == 2
    assert rej["reason"].str.starts_with("smote_").all()
    assert (rej["parents"].list.len() == 2).all()
    assert all(json.loads(a)["generator"] == "llm" for a in rej["augmenter"])


def test_smote_label_check_with_a_classifier(tmp_path, rows):
    """`label_check` may name a text-classification model; its labels map onto the data's."""
    from curate.testing import tiny_classifier
    clf = str(tiny_classifier(tmp_path / "clf"))
    both = {"LABEL_0": "spam", "LABEL_1": "spam"}
    ok = run(tmp_path, "clf-ok", [{"balance": {"method": "smote", "target": {"spam": 7}, "attempts": 1,
                                               "label_check": clf, "label_map": both}}], rows)
    reasons = set(ok.rejects()["reason"]) if ok.rejects().height else set()
    assert "smote_label_changed" not in reasons
    assert ok.manifest["steps"][0]["stats"]["smote"]["accepted"] > 0
    never = {"LABEL_0": "ham", "LABEL_1": "ham"}
    bad = run(tmp_path, "clf-bad", [{"balance": {"method": "smote", "target": {"spam": 7}, "attempts": 1,
                                                 "label_check": clf, "label_map": never}}], rows)
    st = bad.manifest["steps"][0]["stats"]["smote"]
    assert st["accepted"] == 0
    assert set(bad.rejects()["reason"]) <= {"smote_label_changed", "smote_far_from_point",
                                            "smote_copy_of_parent", "smote_no_text"}
    assert "smote_label_changed" in set(bad.rejects()["reason"])
