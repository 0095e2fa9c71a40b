"""The Ray executor's time against the local engine's, on one machine, same pipeline file.

Pipeline: clean (min_words 3) → dedup (exact + MinHash-LSH near, threshold 0.8) → JSONL output,
over a generated corpus (``--docs`` documents of 30–90 words from a 20k-word Zipf vocabulary; 5 %
exact copies, 5 % near copies with ~5 % of the words replaced), written as 4 JSONL files read
through one glob source.

Both executors run in this process, on the same files, with ``--force`` (nothing cached), the
timed region being ``Pipeline.run`` (read, steps, output, manifest). Rows:

* ``local``         — the local engine (``executor: local``);
* ``ray cold``      — ``ray.init`` (a local Ray with ``--cpus`` CPUs) plus the first run: what
  ``curate build --executor ray`` without an address pays on this machine. **The ratio uses it.**
* ``ray first run`` — the same run without ``ray.init`` (a cluster already up, workers not yet);
* ``ray warm``      — a second run on the same Ray (workers started, modules imported).

Also printed: each step's (and the sources') seconds per million documents on both executors (the per-document costs
the README's throughput model starts from). The local engine uses all cores in polars; Ray's
tasks are one CPU each (``--cpus`` of them), so on a 2-core machine Ray can only lose: its gain
is the cluster, not this box.

    python bench/ray_overhead.py --small          # 20k docs
    python bench/ray_overhead.py --docs 200000

Last line: ``ray_time_ratio_vs_local=<ray cold seconds / local seconds>``.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def make_corpus(folder: Path, n: int, seed: int = 0, files: int = 4) -> int:
    """``n`` documents (plus 10 % copies) as JSONL files; returns the number of rows written."""
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(20_000)])
    p = 1.0 / np.arange(1, len(vocab) + 1)
    p /= p.sum()
    lens = rng.integers(30, 91, n)
    words = vocab[rng.choice(len(vocab), size=int(lens.sum()), p=p)]
    cuts = np.cumsum(lens)[:-1]
    docs = [" ".join(w) for w in np.split(words, cuts)]
    n_copy = n // 20
    exact = [docs[i] for i in rng.integers(0, n, n_copy)]
    near = []
    for i in rng.integers(0, n, n_copy):
        w = docs[i].split(" ")
        for j in rng.integers(0, len(w), max(1, len(w) // 20)):
            w[j] = vocab[rng.integers(0, len(vocab))]
        near.append(" ".join(w))
    rows = docs + exact + near
    order = rng.permutation(len(rows))
    folder.mkdir(parents=True, exist_ok=True)
    for k, part in enumerate(np.array_split(order, files)):
        with open(folder / f"part{k}.jsonl", "w") as f:
            for i in part:
                f.write(json.dumps({"text": rows[i], "label": "abc"[i % 3]}) + "\n")
    return len(rows)


def pipeline_doc(corpus: Path, out: Path, executor: str, batch_size: int, cpus: int) -> dict:
    return {
        "name": "ray_overhead", "seed": 0, "batch_size": batch_size, "executor": executor,
        "workdir": str(out / ".curate"), "out_dir": str(out / "out"),
        "ray": {"num_cpus": cpus},
        "sources": [{"jsonl": {"name": "docs", "path": str(corpus / "part*.jsonl")}}],
        "steps": [{"clean": {"min_words": 3}},
                  {"dedup": {"exact": True, "near": {"threshold": 0.8}}}],
        "outputs": [{"jsonl": {"path": str(out / "docs.jsonl")}}],
    }


def run(doc: dict, folder: Path):
    import yaml

    from curate.pipeline import load_yaml
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    t0 = time.perf_counter()
    res = load_yaml(path).run(force=True)
    return time.perf_counter() - t0, res.manifest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=200_000)
    ap.add_argument("--small", action="store_true", help="20k documents")
    ap.add_argument("--batch-size", type=int, default=None, help="rows per block (default: docs / 8)")
    ap.add_argument("--cpus", type=int, default=os.cpu_count() or 2, help="CPUs of the local Ray")
    args = ap.parse_args()
    n = 20_000 if args.small else args.docs
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    with tempfile.TemporaryDirectory(prefix="ray_overhead-") as tmp:
        tmp = Path(tmp)
        rows = make_corpus(tmp / "corpus", n)
        bs = args.batch_size or max(1000, rows // 8)
        print(f"corpus: {rows:,} rows ({n:,} documents + copies), blocks of {bs:,} rows, Ray CPUs {args.cpus}, "
              f"machine CPUs {os.cpu_count()}")
        t_local, m_local = run(pipeline_doc(tmp / "corpus", tmp / "local", "local", bs, args.cpus), tmp / "local")

        import ray
        t0 = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, logging_level="warning")
        t_init = time.perf_counter() - t0
        t_first, m_ray = run(pipeline_doc(tmp / "corpus", tmp / "ray", "ray", bs, args.cpus), tmp / "ray")
        t_warm, m_warm = run(pipeline_doc(tmp / "corpus", tmp / "ray2", "ray", bs, args.cpus), tmp / "ray2")
        ray.shutdown()

        same = ([(s["rows_out"], s["rows_rejected"]) for s in m_local["steps"]] ==
                [(s["rows_out"], s["rows_rejected"]) for s in m_ray["steps"]])
        print(f"same counts on both executors: {same}")
        print(f"{'run':<16}{'seconds':>10}{'x local':>10}")
        for name, t in (("local", t_local), ("ray cold", t_init + t_first), ("ray first run", t_first),
                        ("ray warm", t_warm)):
            print(f"{name:<16}{t:>10.2f}{t / t_local:>10.2f}")
        print(f"(ray.init alone: {t_init:.2f} s)")
        print("\nper step, seconds per million input rows (local | ray first run | ray warm):")
        for a, b, c in zip(m_local["steps"], m_ray["steps"], m_warm["steps"]):
            per = lambda s: 1e6 * s["seconds"] / max(s["rows_in"], 1)  # noqa: E731
            print(f"  {a['name']:<8}{per(a):>10.1f}{per(b):>10.1f}{per(c):>10.1f}   rows_in {a['rows_in']:,}")
        src = [sum(s["seconds"] for s in m["sources"]) for m in (m_local, m_ray, m_warm)]
        pieces = [s["stats"].get("ray", {}).get("pieces") for s in m_ray["sources"]]
        print(f"  {'sources':<8}" + "".join(f"{1e6 * t / rows:>10.1f}" for t in src)
              + f"   (parsing; on Ray one task per file: {pieces} pieces)")
        for name, m in (("first run", m_ray), ("warm", m_warm)):
            d = m["steps"][1]["stats"].get("ray", {})
            print(f"  dedup on Ray ({name}): {d.get('candidate_rows')} candidate rows in {d.get('groups')} "
                  f"group(s); keys + shuffle {d.get('keys_seconds')} s, components {d.get('components_seconds')} s, "
                  f"groups resolved {d.get('resolve_seconds')} s")
        if not same:
            raise SystemExit("the executors disagree")
        print(f"ray_time_ratio_vs_local={(t_init + t_first) / t_local:.2f}")


if __name__ == "__main__":
    main()
