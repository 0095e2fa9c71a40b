"""Helpers of the Ray executor tests: a generated corpus with exact and near duplicates, pipeline
files with placeholders, and the comparison of a local run with a Ray run."""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import polars as pl
import yaml

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "pipelines" / "data"


WORDS = ("alpha beta gamma delta river stone cloud paper market ticket order refund printer screen "
         "battery charger window garden coffee train station morning evening letter answer").split()


def make_corpus(d: Path, n: int = 420) -> Path:
    """~1.4·n labelled rows: unique sentences, exact copies, near copies (one word changed), some
    too short for clean, split over two files (read as a glob)."""
    rng = random.Random(5)
    rows = []
    for i in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(8, 18))]
        rows.append({"text": " ".join(words) + f" number {i}", "label": rng.choice(["a", "b", "c"])})
    for r in rng.sample(rows, n // 7):                     # exact copies (and whitespace variants)
        rows.append({"text": r["text"].replace(" ", "  ", 1) if rng.random() < 0.5 else r["text"],
                     "label": r["label"]})
    for r in rng.sample(rows[:n], n // 5):               # near copies
        w = r["text"].split(" ")
        w[rng.randrange(len(w))] = rng.choice(WORDS)
        rows.append({"text": " ".join(w), "label": r["label"]})
    for i in range(n // 14):
        rows.append({"text": rng.choice(WORDS), "label": "a"})     # too short
    rng.shuffle(rows)
    d.mkdir(parents=True, exist_ok=True)
    half = len(rows) // 2
    for k, part in enumerate((rows[:half], rows[half:])):
        (d / f"part{k}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    return d


def _fill(obj: Any, out: Path) -> Any:
    if isinstance(obj, str):
        return obj.replace("{out}", str(out)).replace("{data}", str(DATA))
    if isinstance(obj, dict):
        return {k: _fill(v, out) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_fill(v, out) for v in obj]
    return obj


def write_pipeline(doc: dict, folder: Path, executor: str, **extra) -> Path:
    """The pipeline ``doc`` with ``{out}`` placeholders pointing into ``folder``, as a YAML file."""
    folder.mkdir(parents=True, exist_ok=True)
    d = _fill(doc, folder)
    d.update(executor=executor, workdir=str(folder / ".curate"), out_dir=str(folder / "out"), **extra)
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    return path


def _rows(path: Path) -> list[dict]:
    if path.suffix == ".jsonl":
        return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    if path.suffix == ".parquet":
        return pl.read_parquet(path).to_dicts()
    return [json.loads(path.read_text())]


def _canon(rows: list[dict]) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)


def _ni_canon(task: dict) -> dict:
    """An NI task with its instances in a fixed order (they are a set of rows)."""
    t = dict(task)
    t["Instances"] = sorted(t.get("Instances", []), key=lambda x: json.dumps(x, sort_keys=True))
    return t


COUNTS = ("rows_in", "rows_out", "rows_rejected", "rows_created")


def assert_same_run(local, ray) -> None:
    """Same final rows (order-insensitive, same ids), same output files, same rejects (as sets of
    rows) and the same counts in the manifests."""
    fa, fb = local.data(), ray.data()
    assert fa.height == fb.height
    assert sorted(fa["id"].to_list()) == sorted(fb["id"].to_list())
    assert _canon(fa.to_dicts()) == _canon(fb.select(fa.columns).to_dicts())
    ma, mb = local.manifest, ray.manifest
    assert mb["executor"] == "ray" and ma["executor"] == "local"
    assert [(s["name"], *(s[c] for c in COUNTS)) for s in ma["steps"]] == \
           [(s["name"], *(s[c] for c in COUNTS)) for s in mb["steps"]]
    assert [(s["name"], s["rows"], s["rejected"]) for s in ma["sources"]] == \
           [(s["name"], s["rows"], s["rejected"]) for s in mb["sources"]]
    assert ma["totals"] == mb["totals"]
    assert [(o["name"], o["rows"]) for o in ma["outputs"]] == [(o["name"], o["rows"]) for o in mb["outputs"]]
    base_a, base_b = Path(ma["out_dir"]).parent, Path(mb["out_dir"]).parent
    files_a = sorted(Path(f["path"]).relative_to(base_a) for o in ma["outputs"] for f in o["files"])
    files_b = sorted(Path(f["path"]).relative_to(base_b) for o in mb["outputs"] for f in o["files"])
    assert files_a == files_b and files_a
    for rel in files_a:
        a, b = _rows(base_a / rel), _rows(base_b / rel)
        if rel.suffix == ".json":
            assert _ni_canon(a[0]) == _ni_canon(b[0]), rel
        else:
            assert _canon(a) == _canon(b), rel
    ra = _rows(Path(ma["rejects"]["path"])) if ma["rejects"] else []
    rb = _rows(Path(mb["rejects"]["path"])) if mb["rejects"] else []
    assert _canon(ra) == _canon(rb)
