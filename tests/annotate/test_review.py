"""Human review round-trip: export (Label Studio JSON + CSV) → edit → import by row id, with
agreement statistics; a partial file loses nothing."""
from __future__ import annotations

import csv
import json

import polars as pl
import pytest
from sklearn.metrics import cohen_kappa_score

from curate import Pipeline
from curate.errors import StepError
from curate.steps.annotate.review import ReviewColumns, ReviewImport, export_review

from .conftest import run_step

COLS = ReviewColumns(label_column="auto_label")


def _labelled(sms, n=12):
    df = sms.head(n)
    auto = ["spam" if i % 3 == 0 else "ham" for i in range(n)]
    conf = [0.55 if i % 2 == 0 else 0.95 for i in range(n)]
    return df.with_columns(pl.Series("auto_label", auto), pl.Series("confidence", conf),
                           pl.Series("needs_review", [c < 0.7 for c in conf]))


def test_csv_round_trip_partial_two_annotators(sms, tmp_path):
    df = _labelled(sms)
    paths, n = export_review(df, tmp_path / "review", COLS, labels=["ham", "spam"])
    assert n == 6 and {p.name for p in paths} == {"tasks.json", "review.csv", "label_config.xml"}
    assert '<Choice value="spam"/>' in (tmp_path / "review/label_config.xml").read_text()
    with (tmp_path / "review/review.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == [f"sms{i}" for i in range(0, 12, 2)]
    assert rows[0]["suggested_label"] == "spam" and rows[0]["confidence"] == "0.55"
    # two people review the first four rows (leaving two untouched); they disagree once
    # automatic labels: sms0 spam, sms2 ham, sms4 ham, sms6 spam
    human_a = {"sms0": "spam", "sms2": "spam", "sms4": "spam", "sms6": "ham"}
    human_b = {"sms0": "spam", "sms2": "ham", "sms4": "spam", "sms6": "ham"}
    with (tmp_path / "reviewed.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["id", "text", "suggested_label", "confidence", "label_ann", "label_bob"])
        w.writeheader()
        for r in rows:
            w.writerow({**{k: r[k] for k in ("id", "text", "suggested_label", "confidence")},
                        "label_ann": human_a.get(r["id"], ""), "label_bob": human_b.get(r["id"], "")})
    res = run_step(ReviewImport(path=str(tmp_path / "reviewed.csv"), label_column="auto_label",
                                labels=["ham", "spam"]), df)
    out = res.kept
    assert out.height == df.height and out["id"].to_list() == df["id"].to_list()     # nothing lost
    by_id = {r["id"]: r for r in out.iter_rows(named=True)}
    assert by_id["sms2"]["auto_label"] == "ham" and by_id["sms2"]["needs_review"]   # annotators disagree
    assert by_id["sms4"]["auto_label"] == "spam" and by_id["sms4"]["label_source"] == "human"
    assert by_id["sms6"]["auto_label"] == "ham" and not by_id["sms6"]["needs_review"]
    assert by_id["sms8"]["needs_review"] and by_id["sms8"]["label_source"] == "auto"    # not reviewed yet
    assert by_id["sms1"] == {**df.row(1, named=True), "label_source": "auto"}            # untouched
    st = res.stats
    assert st["reviewed"] == 3 and st["pending"] == 3 and st["review_conflicts"] == 1
    assert st["changed"] == 2 and st["agreement_with_auto"] == round(1 / 3, 4)   # sms4, sms6 changed
    x = [human_a[i] for i in sorted(human_a)]
    y = [human_b[i] for i in sorted(human_a)]
    assert st["annotators"] == ["ann", "bob"] and st["annotator_pairs"] == 4
    assert st["cohen_kappa"] == round(cohen_kappa_score(x, y), 4) and st["annotator_agreement"] == 0.75


def test_label_studio_json_round_trip(sms, tmp_path):
    df = _labelled(sms)
    export_review(df, tmp_path, COLS)
    tasks = json.loads((tmp_path / "tasks.json").read_text())
    assert tasks[0]["data"]["row_id"] == "sms0"
    assert tasks[0]["predictions"][0]["result"][0]["value"]["choices"] == ["spam"]
    for t, (a, b) in zip(tasks, [("ham", "ham"), ("ham", "spam"), ("spam", "spam")]):   # 3 of 6 tasks done
        t["annotations"] = [
            {"completed_by": {"id": 1, "email": "a@x"}, "result": [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [a]}}]},
            {"completed_by": {"id": 2, "email": "b@x"}, "result": [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [b]}}]}]
    tasks.append({"id": 99, "data": {"row_id": "not-a-row", "text": "?"}, "annotations": []})
    (tmp_path / "export.json").write_text(json.dumps(tasks))
    res = run_step(ReviewImport(path=str(tmp_path / "export.json"), label_column="auto_label"), df)
    st = res.stats
    assert st["reviewed"] == 2 and st["review_conflicts"] == 1 and st["pending"] == 4
    assert st["annotators"] == ["a@x", "b@x"] and st["cohen_kappa"] == round(cohen_kappa_score(["ham", "ham", "spam"], ["ham", "spam", "spam"]), 4)
    assert st["agreement_with_auto"] == 0.0 and st["changed"] == 2    # sms0 spam → ham; sms4 ham → spam
    assert res.kept.filter(pl.col("id") == "sms0")["auto_label"][0] == "ham"


def test_import_errors_and_cache_key(sms, tmp_path):
    df = _labelled(sms)
    with pytest.raises(StepError, match="not found"):
        run_step(ReviewImport(path=str(tmp_path / "none.csv"), label_column="auto_label"), df)
    bad = tmp_path / "bad.csv"
    bad.write_text("row,label\nsms0,ham\n")
    with pytest.raises(StepError, match="needs an `id` column"):
        run_step(ReviewImport(path=str(bad), label_column="auto_label"), df)
    ok = tmp_path / "ok.csv"
    ok.write_text("id,label\nsms0,ham\nsms2,eggs\n")
    first = ReviewImport(path=str(ok), label_column="auto_label", labels=["ham", "spam"])
    st = run_step(first, df).stats
    assert st["reviewed"] == 1 and st["invalid_labels"] == 1
    ok.write_text("id,label\nsms0,spam\n")
    again = ReviewImport(path=str(ok), label_column="auto_label", labels=["ham", "spam"])
    assert again.raw_config != first.raw_config           # an edited file is a new cache key


def test_review_step_in_a_pipeline(tmp_path):
    rows = [{"t": "free prize now"}, {"t": "see you later"}, {"t": "hello"}]
    fns = [{"name": "free", "label": "spam", "keywords": ["free"]}, {"name": "later", "label": "ham", "keywords": ["later"]}]
    common = {"sources": [{"inline": {"rows": rows, "text": "t"}}], "workdir": str(tmp_path / ".c"),
              "out_dir": str(tmp_path / "o")}
    p = Pipeline(name="rv", steps=[{"weak_label": {"functions": fns, "combine": "majority"}}],
                 outputs=[{"review_export": {"dir": str(tmp_path / "rv"), "label_column": "weak_label"}}], **common)
    r = p.run()
    assert r.manifest["steps"][0]["stats"]["needs_review"] == 1
    text = (tmp_path / "rv/review.csv").read_text().splitlines()
    assert len(text) == 2 and text[1].startswith(r.data().filter(pl.col("text") == "hello")["id"][0])
    rid = text[1].split(",")[0]
    (tmp_path / "done.csv").write_text(f"id,label\n{rid},ham\n")
    p2 = Pipeline(name="rv", steps=[{"weak_label": {"functions": fns, "combine": "majority"}},
                                    {"review_import": {"path": str(tmp_path / "done.csv"), "label_column": "weak_label"}}], **common)
    out = p2.run().data()
    assert out["weak_label"].to_list() == ["spam", "ham", "ham"] and not any(out["needs_review"].to_list())
