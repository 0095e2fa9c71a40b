"""split: stratified, seeded, group-aware, multi-label; rows are never dropped."""
from __future__ import annotations

import polars as pl
import pytest

from curate.errors import DataError


def stats(res) -> dict:
    return res.manifest["steps"][0]["stats"]


def test_stratified_split_on_real_imbalanced_data_keeps_ratios(run_rows, sms):
    res = run_rows(sms.to_dicts(), [{"split": {"test": 0.1, "validation": 0.1}}])
    df = res.data()
    assert df.height == sms.height and res.rejects().height == 0
    st = stats(res)
    assert st["max_share_deviation_pp"] <= 1.0
    overall = (sms["label"] == "spam").mean()
    for name in ("train", "validation", "test"):
        part = df.filter(pl.col("split") == name)
        assert abs((part["label"] == "spam").mean() - overall) <= 0.01
    assert abs(st["rows"]["test"] / df.height - 0.1) < 0.002
    assert abs(st["rows"]["validation"] / df.height - 0.1) < 0.002


def test_split_is_seeded(run_rows):
    rows = [{"text": f"t{i}", "label": "a" if i % 3 else "b"} for i in range(60)]
    a = run_rows(rows, [{"split": {}}], seed=1, name="a").data()
    b = run_rows(rows, [{"split": {}}], seed=1, name="b").data()
    c = run_rows(rows, [{"split": {}}], seed=2, name="c").data()
    assert a["split"].to_list() == b["split"].to_list()
    assert a["split"].to_list() != c["split"].to_list()


def test_groups_never_straddle(run_rows):
    rows = [{"text": f"t{i}", "label": "a" if i % 4 else "b", "doc": f"d{i // 3}"} for i in range(120)]
    res = run_rows(rows, [{"split": {"group": "doc", "test": 0.2, "validation": 0.1}}])
    df = res.data()
    assert df.group_by("doc").agg(pl.col("split").n_unique().alias("k"))["k"].max() == 1
    assert stats(res)["groups_straddling"] == 0
    assert set(df["split"]) == {"train", "validation", "test"}


def test_group_without_label(run_rows):
    rows = [{"text": f"t{i}", "doc": f"d{i // 2}"} for i in range(40)]
    df = run_rows(rows, [{"split": {"group": "doc", "stratify": None}}]).data()
    assert df.group_by("doc").agg(pl.col("split").n_unique().alias("k"))["k"].max() == 1


def test_multilabel_split(run_rows):
    labs = [["x"], ["y"], ["x", "y"], ["z"]]
    rows = [{"text": f"t{i}", "label": labs[i % 4]} for i in range(200)]
    res = run_rows(rows, [{"split": {"test": 0.2, "validation": 0.1}}])
    df = res.data()
    assert df.height == 200
    assert stats(res)["max_share_deviation_pp"] <= 3.0
    test = df.filter(pl.col("split") == "test")
    assert 35 <= test.height <= 45


def test_multilabel_with_groups(run_rows):
    labs = [["x"], ["y"], ["x", "y"], ["z"]]
    rows = [{"text": f"t{i}", "label": labs[i % 4], "doc": f"d{i // 2}"} for i in range(200)]
    df = run_rows(rows, [{"split": {"group": "doc"}}]).data()
    assert df.group_by("doc").agg(pl.col("split").n_unique().alias("k"))["k"].max() == 1


def test_bad_input(run_rows):
    rows = [{"text": "a", "category": "x"}] * 3
    with pytest.raises(DataError, match="stratify column 'label' not found"):
        run_rows(rows, [{"split": {}}])
    with pytest.raises(DataError, match="group column 'doc' not found"):
        run_rows([{"text": "a", "label": "x"}], [{"split": {"group": "doc"}}], name="g")
    with pytest.raises(Exception, match="must be below 1"):
        run_rows(rows, [{"split": {"test": 0.6, "validation": 0.5}}], name="h")
    few = [{"text": f"t{i}", "label": "a", "doc": f"d{i % 3}"} for i in range(9)]
    with pytest.raises(DataError, match="needs at least 10"):
        run_rows(few, [{"split": {"group": "doc"}}], name="few")


def test_tiny_classes_and_nulls_are_handled(run_rows):
    rows = [{"text": f"t{i}", "label": "a"} for i in range(30)] + [{"text": "lone", "label": "b"},
                                                                   {"text": "nolabel", "label": None}]
    rows += [{"text": "blank", "label": " "}]
    res = run_rows(rows, [{"split": {}}])
    # no label (null or empty) is not a stratum: those rows are rejected as missing_label
    assert res.data().height == 31 and res.data()["split"].null_count() == 0
    rej = res.rejects()
    assert sorted(rej["text"]) == ["blank", "nolabel"] and set(rej["reason"]) == {"missing_label"}
    assert stats(res)["rejected_missing_label"] == 2 and "warnings" not in stats(res)
    assert stats(res)["rare_classes_pooled"] == ["b"]
    none = run_rows(rows, [{"split": {"stratify": None}}], name="plain")      # no label needed
    assert none.data().height == 33


@pytest.mark.slow
def test_copies_and_variants_stay_with_their_original(run_rows):
    rows = [{"text": f"message number {i} about some ordinary things", "label": "a" if i % 5 else "b"}
            for i in range(100)]
    res = run_rows(rows, [{"balance": {"method": "oversample"}},
                          {"augment": {"word_dropout": {"aug_p": 0.5}, "check_language": False}},
                          {"split": {"test": 0.2, "validation": 0.1}}])
    df = res.data()
    st = res.manifest["steps"][2]["stats"]
    assert st["groups_straddling"] == 0 and st["lineage_groups"] == 100
    from curate.steps.split import root_lineage
    df = df.with_columns(root_lineage(df).alias("root"))
    assert df.group_by("root").agg(pl.col("split").n_unique().alias("k"))["k"].max() == 1
    # the chain is followed through two generations (augmented copy of an oversampled copy)
    assert df.filter(pl.col("id").str.contains("-os.*-word_dropout")).height > 0
    assert st["max_share_deviation_pp"] <= 5.0


def test_yaml_pipeline_on_real_data_balances_and_splits(tmp_path, data_dir):
    """The same steps from a pipeline file (tsv connector) on the shipped SMS collection."""
    from curate import Pipeline
    yml = tmp_path / "p.yaml"
    yml.write_text(f"""
name: sms-balance
seed: 13
workdir: {tmp_path}/.curate
out_dir: {tmp_path}/out
sources:
  - tsv: {{name: sms, path: {data_dir}/sms_spam_collection.tsv, text: SMS, label: Label}}
steps:
  - balance: {{method: oversample, target: 0.5}}
  - split: {{test: 0.1, validation: 0.1}}
""")
    res = Pipeline.from_yaml(yml).run()
    bal, spl = res.manifest["steps"][0]["stats"], res.manifest["steps"][1]["stats"]
    assert bal["before"] == {"ham": 4827, "spam": 747}
    assert bal["after"] == {"ham": 4827, "spam": 2414}
    assert bal["class_weights"]["spam"] == pytest.approx(5574 / (2 * 747), rel=1e-5)
    assert spl["groups_straddling"] == 0
    assert spl["max_share_deviation_pp"] <= 1.0
