"""The runner honours the pipeline's split (a split column, or one file per split), never lets a
test row or anything derived from one reach training, and counts every row it drops."""
from __future__ import annotations

import json

import pytest

from curate.errors import DataError
from curate.train.config import DataConfig
from curate.train.data import load_splits

WORDS = {"spam": "free prize call now win cash", "ham": "meeting at noon see you later"}


def _cls_rows(n: int, seed: int = 0) -> list[dict]:
    import random
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        lab = "spam" if i % 3 == 0 else "ham"
        rows.append({"id": f"r{i}", "text": " ".join(rng.choices(WORDS[lab].split(), k=5)) + f" {i}",
                     "label": lab})
    return rows


def _with_split(rows: list[dict]) -> list[dict]:
    names = ["train"] * 6 + ["validation", "test"] * 2
    return [{**r, "split": names[i % len(names)]} for i, r in enumerate(rows)]


def test_split_column_is_honoured_no_random_split(tmp_path, jsonl):
    rows = _with_split(_cls_rows(30))
    f = jsonl(tmp_path / "all.jsonl", rows)
    s = load_splits(DataConfig(train=str(f), val_fraction=0.3), "classification", 0)
    want = {k: sum(r["split"] == k for r in rows) for k in ("train", "validation", "test")}
    assert (len(s.train), len(s.validation), len(s.test)) == (want["train"], want["validation"], want["test"])
    assert s.split_source == "pipeline"
    test_texts = {r["text"] for r in rows if r["split"] == "test"}
    assert not test_texts & set(s.train["text"])
    assert set(s.test["text"]) == test_texts
    assert "split" not in s.train.column_names and "_split" not in s.train.column_names


def test_per_split_files_found_from_the_output_path(tmp_path, jsonl):
    rows = _with_split(_cls_rows(30))
    for part in ("train", "validation", "test"):
        jsonl(tmp_path / f"x.{part}.jsonl", [r for r in rows if r["split"] == part])
    # the path the user wrote in the pipeline's output, not the file it became
    s = load_splits(DataConfig(train=str(tmp_path / "x.jsonl")), "classification", 0)
    assert (len(s.train), len(s.validation), len(s.test)) == (18, 6, 6)
    assert s.split_source == "pipeline"
    s2 = load_splits(DataConfig(train=str(tmp_path / "x.train.jsonl")), "classification", 0)
    assert len(s2.test) == 6 and len(s2.validation) == 6


def test_config_file_conflicting_with_pipeline_split_is_an_error(tmp_path, jsonl):
    rows = _with_split(_cls_rows(30))
    f = jsonl(tmp_path / "all.jsonl", rows)
    other = jsonl(tmp_path / "other.jsonl", _cls_rows(5, seed=3))
    with pytest.raises(DataError, match="already holds a test split"):
        load_splits(DataConfig(train=str(f), test=str(other)), "classification", 0)


def test_unknown_or_missing_split_value_names_the_row(tmp_path, jsonl):
    rows = _with_split(_cls_rows(12))
    rows[4]["split"] = "holdout"
    f = jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError, match=r"bad.jsonl:5: unknown split value 'holdout'"):
        load_splits(DataConfig(train=str(f)), "classification", 0)


def test_training_row_derived_from_a_test_row_is_refused(tmp_path, jsonl):
    rows = _with_split(_cls_rows(30))
    test_row = next(r for r in rows if r["split"] == "test")
    # an augmentation of a test row that ended up in train (split ran before augment without lineage)
    rows.append({**test_row, "id": test_row["id"] + "-keyboard1", "parent_id": test_row["id"],
                 "text": test_row["text"] + "!", "split": "train"})
    f = jsonl(tmp_path / "leaky.jsonl", rows)
    with pytest.raises(DataError, match=r"1 training row\(s\) are test rows or derive from one"):
        load_splits(DataConfig(train=str(f)), "classification", 0)


@pytest.mark.slow
def test_pipeline_split_then_oversample_and_augment_never_leaks_test(tmp_path):
    """split → oversample → augment → per-split files: the runner's train never holds a test row
    or any copy/augmentation of one, and derived rows are left out of the test metrics' rows."""
    from curate import Pipeline
    rows = [{k: v for k, v in r.items() if k != "id"} for r in _cls_rows(60)]
    out = tmp_path / "data.jsonl"
    p = Pipeline(name="leak", seed=3, sources=[{"inline": {"rows": rows}}],
                 steps=[{"split": {"test": 0.2, "validation": 0.2}},
                        {"balance": {"method": "oversample"}},
                        {"augment": {"keyboard": {}}}],
                 outputs=[{"jsonl": {"path": str(out)}}],
                 workdir=str(tmp_path / ".curate"), out_dir=str(tmp_path / "out"))
    result = p.run()
    df = result.data()
    s = load_splits(DataConfig(train=str(out)), "classification", 0)
    assert s.split_source == "pipeline" and s.test is not None and s.validation is not None

    # lineage roots of the whole table: every test original and everything derived from it
    parent = {r["id"]: r["parent_id"] for r in df.iter_rows(named=True) if r.get("parent_id")}

    def root(i):
        while i in parent:
            i = parent[i]
        return i
    test_roots = {root(r["id"]) for r in df.iter_rows(named=True) if r["split"] == "test"}
    test_family_texts = {r["text"] for r in df.iter_rows(named=True) if root(r["id"]) in test_roots}
    assert test_family_texts, "the pipeline made a test split"
    assert not test_family_texts & set(s.train["text"])
    # evaluation is on real rows only: copies/augmentations of test rows are left out and counted
    n_test_real = sum(1 for r in df.iter_rows(named=True) if r["split"] == "test" and not r.get("parent_id"))
    assert len(s.test) == n_test_real
    assert s.report["test_derived_rows_left_out"] > 0


@pytest.mark.slow
def test_classifier_reports_test_metrics_and_early_stops_on_pipeline_validation(tiny_cls, tmp_path, jsonl):
    from curate.train import run_training
    rows = _with_split(_cls_rows(36))
    f = jsonl(tmp_path / "all.jsonl", rows)
    cfg = {"model": str(tiny_cls), "objective": "classification", "output_dir": str(tmp_path / "run"),
           "data": {"train": str(f)}, "method": {"kind": "full"},
           "classification": {"labels": ["ham", "other", "spam"]},
           "training": {"epochs": 2, "batch_size": 8, "max_length": 32, "learning_rate": 1e-3,
                        "save_total_limit": 1, "resume": False}}
    r = run_training(cfg)
    m = r.metrics
    assert m["test_rows"] == sum(x["split"] == "test" for x in rows)
    assert "test_f1_macro" in m["test"] and "test_recall_spam" in m["test"]
    assert m["test_per_class"]["spam"]["recall"] is not None
    assert m["data"]["split_source"] == "pipeline" and m["data"]["early_stopping"].startswith("auto")
    assert m["data"]["train"]["rows_in"] == m["data"]["train"]["rows_used"] == m["train_rows"]
    assert json.loads(r.metrics_path.read_text())["test"]["test_f1_macro"] == m["test"]["test_f1_macro"]


def _pc_rows(n_long: int, n_short: int) -> list[dict]:
    long_prompt = "Definition: " + " ".join(["the reply is good ."] * 40) + " Input: France Output:"
    rows = [{"prompt": long_prompt, "completion": " Paris"} for _ in range(n_long)]
    rows += [{"prompt": f"Input: country {i} Output:", "completion": " Paris"} for i in range(n_short)]
    return rows


@pytest.mark.slow
def test_sft_rows_cut_by_truncation_are_counted(tiny_lm, tmp_path, jsonl, make_config):
    from curate.train import run_training
    f = jsonl(tmp_path / "pc.jsonl", _pc_rows(n_long=3, n_short=5))
    cfg = make_config(tiny_lm, f, tmp_path / "run", data={"train": str(f), "val_fraction": 0.0},
                      training={"max_steps": 2, "max_length": 32, "generation_eval_samples": 0,
                                "eval_every_epoch": False, "save_steps": 1000})
    m = run_training(cfg).metrics
    tr = m["data"]["train"]
    assert tr["rows_in"] == 8 and tr["rows_used"] == 5 and tr["dropped"] == 3
    assert tr["dropped_by_reason"] == {"answer_truncated_away": 3}
    assert tr["token_lengths"]["max"] > 32 and tr["suggested_max_length"] % 64 == 0


def test_sft_everything_dropped_fails_with_a_max_length(tiny_lm, tmp_path, jsonl, make_config):
    from curate.train import run_training
    f = jsonl(tmp_path / "pc.jsonl", _pc_rows(n_long=6, n_short=0))
    cfg = make_config(tiny_lm, f, tmp_path / "run", data={"train": str(f), "val_fraction": 0.0},
                      training={"max_steps": 2, "max_length": 32, "generation_eval_samples": 0})
    with pytest.raises(DataError) as e:
        run_training(cfg)
    msg = str(e.value)
    assert "every train row (6) was dropped with training.max_length 32" in msg
    assert "6 answer truncated away" in msg and "Set training.max_length to" in msg and "p99" in msg
    assert "num_samples" not in msg


def test_pipeline_train_section_with_manifest_weights_and_env_out_dir(tmp_path, monkeypatch):
    """`class_weights: manifest` in a pipeline's train: section is valid (the manifest is the
    pipeline's own), and an ${env:} out_dir is resolved when the manifest path is derived."""
    from curate.train import load_train_config
    monkeypatch.setenv("RUN_DIR", str(tmp_path / "run"))
    p = tmp_path / "p.yaml"
    p.write_text("name: t\nout_dir: ${env:RUN_DIR}/out\nsources:\n  - jsonl: {path: x.jsonl}\n"
                 "train:\n  model: m\n  objective: classification\n  data: {train: x.jsonl}\n"
                 "  classification: {class_weights: manifest}\n", encoding="utf-8")
    cfg = load_train_config(p)
    assert cfg.provenance == str(tmp_path / "run" / "out" / "manifest.json")


def test_ni_folder_with_one_task_file_per_split(tmp_path):
    """The NI output writes task<N>_<name>_<split>.json per split: the runner reads them by role."""
    from pathlib import Path
    repo = Path(__file__).resolve().parents[2]
    task = json.loads((repo / "pipelines/data/ni_tasks/task1146_country_capital.json").read_text(encoding="utf-8"))
    d = tmp_path / "ni"
    d.mkdir()
    for part, sl in (("train", slice(0, 30)), ("test", slice(30, 40))):
        t = dict(task, Instances=task["Instances"][sl])
        (d / f"task1146_country_capital_{part}.json").write_text(json.dumps(t), encoding="utf-8")
    s = load_splits(DataConfig(train=str(d)), "sft", 0)
    assert (len(s.train), len(s.test), s.validation) == (30, 10, None)
    assert s.split_source == "pipeline"
    assert all("_train.json" in r for r in s.train["row_source"])
    assert all("_test.json" in r for r in s.test["row_source"])
