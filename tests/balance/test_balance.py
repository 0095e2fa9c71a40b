"""balance: random over/under-sampling, informed undersampling, targets, stats and bad input."""
from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from curate.errors import DataError
from curate.steps.balance import Balance, recover_parents, target_counts


def imbalanced(n_major: int = 20, n_minor: int = 5) -> list[dict]:
    rows = [{"text": f"ordinary message number {i}", "label": "ham"} for i in range(n_major)]
    rows += [{"text": f"win a prize now {i}", "label": "spam"} for i in range(n_minor)]
    return rows


def step_stats(res) -> dict:
    return res.manifest["steps"][0]["stats"]


def test_oversample_auto_marks_copies_with_parent(run_rows):
    res = run_rows(imbalanced(), [{"balance": {"method": "oversample"}}])
    df, st = res.data(), step_stats(res)
    assert st["before"] == {"ham": 20, "spam": 5}
    assert st["after"] == {"ham": 20, "spam": 20}
    assert df.filter(pl.col("label") == "spam").height == 20
    copies = df.filter(pl.col("parent_id").is_not_null())
    assert copies.height == 15
    # ids are <parent id>-os<k>, unique, and the copy has its parent's content.
    assert copies["id"].is_unique().all()
    assert (copies["id"].str.replace(r"-os\d+$", "") == copies["parent_id"]).all()
    parents = df.filter(pl.col("parent_id").is_null()).select("id", pl.col("text").alias("ptext"))
    joined = copies.join(parents, left_on="parent_id", right_on="id")
    assert joined.height == 15 and (joined["text"] == joined["ptext"]).all()
    assert res.manifest["steps"][0]["rows_created"] == 15


def test_class_weights_are_sklearn_balanced(run_rows):
    res = run_rows(imbalanced(), [{"balance": {"method": "oversample"}}])
    w = step_stats(res)["class_weights"]
    assert w["ham"] == pytest.approx(25 / (2 * 20))
    assert w["spam"] == pytest.approx(25 / (2 * 5))


def test_oversample_ratio_and_dict_targets(run_rows):
    st = step_stats(run_rows(imbalanced(), [{"balance": {"method": "oversample", "target": 0.5}}]))
    assert st["after"] == {"ham": 20, "spam": math.ceil(0.5 * 20)}
    st = step_stats(run_rows(imbalanced(), [{"balance": {"method": "oversample", "target": {"spam": 12}}}],
                             name="t2"))
    assert st["after"] == {"ham": 20, "spam": 12}


def test_undersample_rejects_with_reason(run_rows):
    res = run_rows(imbalanced(), [{"balance": {"method": "undersample"}}])
    df, rej = res.data(), res.rejects()
    assert step_stats(res)["after"] == {"ham": 5, "spam": 5}
    assert rej.height == 15 and set(rej["reason"]) == {"undersampled"}
    assert set(rej["label"]) == {"ham"}
    # accounting: every input id leaves exactly once
    assert sorted(df["id"].to_list() + rej["id"].to_list()) == sorted(set(df["id"]) | set(rej["id"]))
    assert df.height + rej.height == 25


def test_undersample_ratio(run_rows):
    st = step_stats(run_rows(imbalanced(), [{"balance": {"method": "undersample", "target": 0.5}}]))
    assert st["after"] == {"ham": 10, "spam": 5}


def test_seeded_and_reproducible(run_rows, tmp_path):
    a = run_rows(imbalanced(), [{"balance": {"method": "undersample"}}], seed=1, name="a").data()
    b = run_rows(imbalanced(), [{"balance": {"method": "undersample"}}], seed=1, name="b").data()
    c = run_rows(imbalanced(), [{"balance": {"method": "undersample"}}], seed=2, name="c").data()
    assert sorted(a["id"]) == sorted(b["id"])
    assert sorted(a["id"]) != sorted(c["id"])


def test_target_validation():
    assert target_counts({"a": 10, "b": 2}, "auto", "oversample") == {"a": 10, "b": 10}
    assert target_counts({"a": 10, "b": 2}, "auto", "undersample") == {"a": 2, "b": 2}
    with pytest.raises(DataError, match="cannot reduce class 'a'"):
        target_counts({"a": 10, "b": 2}, {"a": 5}, "oversample")
    with pytest.raises(DataError, match="cannot grow class 'b'"):
        target_counts({"a": 10, "b": 2}, {"b": 5}, "undersample")
    with pytest.raises(DataError, match="class 'zzz'"):
        target_counts({"a": 10, "b": 2}, {"zzz": 5}, "oversample")
    with pytest.raises(Exception):
        Balance(method="oversample", target=1.5)     # ratio must be in (0, 1]
    with pytest.raises(Exception):
        Balance(method="magic")


def test_missing_label_column_is_a_clear_error(run_rows):
    rows = [{"text": "a", "category": "x"}, {"text": "b", "category": "y"}]
    with pytest.raises(DataError, match="label column 'label' not found.*'category'"):
        run_rows(rows, [{"balance": {"method": "oversample"}}])


def test_multilabel_lists_rejected(run_rows):
    rows = [{"text": "a", "label": ["x", "y"]}, {"text": "b", "label": ["y"]}]
    with pytest.raises(DataError, match="multi-label"):
        run_rows(rows, [{"balance": {"method": "oversample"}}])


def test_missing_labels_are_rejected_not_a_class(run_rows):
    """Null and empty labels are rejected as missing_label before balancing; "" is not a class."""
    rows = imbalanced(6, 2) + [{"text": "no label here", "label": None}, {"text": "blank", "label": "  "},
                               {"text": "empty", "label": ""}]
    res = run_rows(rows, [{"balance": {"method": "oversample"}}])
    st = step_stats(res)
    assert st["rejected_missing_label"] == 3 and st["before"] == {"ham": 6, "spam": 2}
    rej = res.rejects()
    assert sorted(rej["text"]) == ["blank", "empty", "no label here"] and set(rej["reason"]) == {"missing_label"}
    assert res.data()["label"].null_count() == 0 and "" not in res.data()["label"].to_list()
    one = run_rows(imbalanced(4, 0), [{"balance": {"method": "oversample"}}], name="one")
    assert step_stats(one)["note"].startswith("fewer than two classes")
    assert one.data().height == 4


def test_drastic_undersampling_warns_and_guards_make_it_fatal(run_rows):
    """The issue's case: a class of empty labels no longer drags undersampling down, and cutting
    most rows is a warning in the manifest (min_per_class / max_ratio make it an error)."""
    rows = imbalanced(40, 4) + [{"text": f"x{i}", "label": ""} for i in range(2)]
    res = run_rows(rows, [{"balance": {"method": "undersample"}}])
    st = step_stats(res)
    assert st["after"] == {"ham": 4, "spam": 4} and st["rejected_missing_label"] == 2
    assert any(w.startswith("balance (undersample) removed 38 of 46 rows") for w in st["warnings"])
    with pytest.raises(DataError, match=r"class 'ham' ends with 4 rows \(from 40\), below min_per_class=10"):
        run_rows(rows, [{"balance": {"method": "undersample", "min_per_class": 10}}], name="g1")
    with pytest.raises(DataError, match=r"class 'spam' goes from 4 to 40 rows, a factor above max_ratio=5"):
        run_rows(rows, [{"balance": {"method": "oversample", "max_ratio": 5}}], name="g2")


def test_oversample_reports_unique_text_ratio_and_names_itself(run_rows):
    res = run_rows(imbalanced(), [{"balance": {"method": "oversample"}}])
    st, df = step_stats(res), res.data()
    assert st["unique_text_ratio"] == round(25 / 40, 4) and st["created_unique_ratio"] == 0.0
    assert any("natural_instructions" in w for w in st["warnings"])
    copies = df.filter(pl.col("parent_id").is_not_null())
    assert set(copies["derived_by"]) == {"balance (oversample)"}
    assert df.filter(pl.col("parent_id").is_null())["derived_by"].null_count() == 25


def test_none_method_only_records_stats(run_rows):
    res = run_rows(imbalanced(), [{"balance": {"method": "none"}}])
    assert res.data().height == 25
    assert step_stats(res)["class_weights"]["spam"] == pytest.approx(2.5)


# ---------------------------------------------------------------- informed undersampling
def points_rows() -> list[dict]:
    """2-D 'embeddings': a majority cloud, a minority cloud, and one majority point sitting on a
    minority point (a Tomek link)."""
    rng = np.random.default_rng(0)
    rows = [{"text": f"maj {i}", "label": "maj", "emb": (rng.normal(size=2) * 0.3).tolist()} for i in range(30)]
    rows += [{"text": f"min {i}", "label": "min", "emb": (rng.normal(size=2) * 0.3 + [5, 5]).tolist()}
             for i in range(6)]
    rows.append({"text": "intruder", "label": "maj", "emb": [5.0, 5.001]})
    rows.append({"text": "min anchor", "label": "min", "emb": [5.0, 5.0]})
    return rows


def test_tomek_removes_majority_side_of_links(run_rows):
    res = run_rows(points_rows(), [{"balance": {"method": "tomek", "embedding_column": "emb"}}])
    rej = res.rejects()
    assert "intruder" in rej["text"].to_list()
    assert set(rej["label"]) == {"maj"} and set(rej["reason"]) == {"undersampled"}
    assert "min anchor" in res.data()["text"].to_list()


def test_tomek_only_accepts_auto(run_rows):
    with pytest.raises(DataError, match="tomek"):
        run_rows(points_rows(), [{"balance": {"method": "tomek", "target": 0.5, "embedding_column": "emb"}}])


def test_cluster_centroids_keeps_real_rows(run_rows):
    rows = points_rows()
    res = run_rows(rows, [{"balance": {"method": "cluster_centroids", "embedding_column": "emb"}}])
    df, rej = res.data(), res.rejects()
    assert step_stats(res)["after"] == {"maj": 7, "min": 7}
    assert df.height + rej.height == len(rows)
    assert set(df["text"]) <= {r["text"] for r in rows}


# ---------------------------------------------------------------- SMOTE parent recovery
def test_recover_parents_finds_the_interpolated_pair():
    """Pairs as SMOTE draws them (a row and one of its k nearest), including far-apart ones."""
    from sklearn.neighbors import NearestNeighbors
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 16))
    nn = NearestNeighbors(n_neighbors=6).fit(X).kneighbors(X, return_distance=False)[:, 1:]
    a = rng.integers(0, 300, 200)
    b = nn[a, rng.integers(0, 5, 200)]
    w = rng.uniform(0.05, 0.95, 200)
    S = X[a] + w[:, None] * (X[b] - X[a])
    A, B, W, res = recover_parents(S, X, k=5)
    same = (A == a) & (B == b) & np.isclose(W, w)
    swapped = (A == b) & (B == a) & np.isclose(W, 1 - w)
    assert (same | swapped).all()
    assert res.max() < 1e-6


def test_recover_parents_on_imblearn_smote_output():
    from imblearn.over_sampling import SMOTE
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(80, 8)), rng.normal(size=(15, 8)) + 2])
    y = np.array(["a"] * 80 + ["b"] * 15)
    Xr, _ = SMOTE(k_neighbors=5, random_state=0).fit_resample(X, y)
    S = Xr[len(X):]
    A, B, W, res = recover_parents(S, X[80:], k=5)
    assert res.max() < 1e-6
    rebuilt = X[80:][A] + W[:, None] * (X[80:][B] - X[80:][A])
    assert np.allclose(rebuilt, S)


def test_two_balance_steps_keep_ids_unique(run_rows):
    res = run_rows(imbalanced(), [{"balance": {"method": "oversample", "target": 0.5}},
                                  {"balance": {"method": "oversample"}}])
    df = res.data()
    assert df["id"].is_unique().all() and df.filter(pl.col("label") == "spam").height == 20


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_cluster_centroids_exact_counts_with_duplicate_points(run_rows):
    """Duplicated vectors and shared nearest rows must not lose or invent rows."""
    rows = [{"text": f"maj {i}", "label": "maj", "emb": [float(i % 4), 0.0]} for i in range(40)]
    rows += [{"text": f"min {i}", "label": "min", "emb": [9.0, float(i)]} for i in range(12)]
    res = run_rows(rows, [{"balance": {"method": "cluster_centroids", "embedding_column": "emb"}}])
    st = step_stats(res)
    assert st["after"] == {"maj": 12, "min": 12}
    assert res.data()["id"].is_unique().all()


def test_missing_label_expression_by_dtype():
    from curate.steps._labels import missing_label
    df = pl.DataFrame({"s": ["a", "", " ", None], "n": [1, None, 0, 2],
                       "c": pl.Series(["x", "", None, "y"], dtype=pl.Categorical),
                       "l": [["a"], [], None, ["b"]]})
    got = {c: df.select(missing_label(df, c))[c].to_list() for c in df.columns}
    assert got == {"s": [False, True, True, True], "n": [False, True, False, False],
                   "c": [False, True, True, False], "l": [False, False, True, False]}
