"""Near-duplicate dedup benchmark: curate vs datasketch MinHashLSH vs DataTrove MinHash (and a
rensa reference line), plus semantic dedup vs a plain embedding-cosine baseline on MRPC.

    python bench/dedup.py            # full: 200,200 documents, all 4,076 MRPC pairs
    python bench/dedup.py --small    # CI-sized: 20,020 documents, 1,000 MRPC pairs (< 5 min)

Every tool runs in its own fresh child process (so peak RSS is its own) on the same corpus
(bench/_corpus.py) with the same setup: lowercased whitespace 5-word shingles, 128
permutations, 16 bands × 8 rows, union-find clusters. "End to end" = documents in memory (files
for DataTrove, which reads files by design) → signatures → LSH → clusters → kept/removed rows.
A planted pair counts as "predicted duplicate" when both documents end in the same cluster; the
ground truth is the true 5-shingle Jaccard ≥ 0.8. The last two lines are
``f1 curate=<x> best_peer=<y>`` and ``speedup_vs_fastest_peer=<ratio>``.
Peers need `pip install datasketch "datatrove[processing]"` (DataTrove pins xxhash<4; curate
works with xxhash 3.x too).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = HERE / ".cache"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

NGRAM, BANDS, ROWS, THRESHOLD, SEED = 5, 16, 8, 0.8, 1


def _rss_mb() -> float:
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (self_kb + kids_kb) / 1024


def _rss_now_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _word_shingles(text: str) -> list[bytes]:
    w = text.lower().split()
    return [" ".join(w[i:i + NGRAM]).encode() for i in range(max(1, len(w) - NGRAM + 1))]


# ------------------------------------------------------------------------------------ curate
def run_curate(texts: list[str], verify: str = "jaccard") -> dict:
    import polars as pl
    from curate.step import StepContext
    from curate.steps.dedup.step import Dedup
    import rensa  # noqa: F401  (import outside the timed region, like the peers' imports)
    import scipy.sparse.csgraph  # noqa: F401
    df = pl.DataFrame({"id": [str(i) for i in range(len(texts))], "text": texts})
    step = Dedup(exact=False, normalize={"lowercase": True, "unicode": None},
                 near={"threshold": THRESHOLD, "ngram": NGRAM, "bands": BANDS, "rows": ROWS,
                       "num_perm": BANDS * ROWS, "verify": verify})
    ctx = StepContext("dedup", 0, SEED, CACHE / "curate-work")
    t0 = time.perf_counter()
    res = step.process(df, ctx)
    secs = time.perf_counter() - t0
    labels = np.arange(len(texts))
    rej = res.rejected
    labels[rej["id"].cast(pl.Int64).to_numpy()] = rej["duplicate_of"].cast(pl.Int64).to_numpy()
    return {"seconds": secs, "labels": labels, "rss_mb": _rss_mb(), "kept": res.kept.height,
            "stats": res.stats["near"]}


# ------------------------------------------------------------------------------------ datasketch
def _ds_signatures(texts: list[str]) -> tuple[np.ndarray, str]:
    from datasketch import MinHash
    # permutations generated once and shared (as text-dedup does): ~2.7x faster than a fresh
    # MinHash(seed=...) per document, so the peer runs at its best
    base = MinHash(num_perm=BANDS * ROWS, seed=SEED)
    out = []
    for t in texts:
        m = MinHash(num_perm=BANDS * ROWS, seed=SEED, permutations=base.permutations, scheme=base.scheme)
        m.update_batch(_word_shingles(t))
        out.append(m.hashvalues)
    return np.stack(out), base.scheme


def _union_find(n: int, pairs) -> np.ndarray:
    parent = list(range(n))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x
    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return np.array([find(i) for i in range(n)])


def run_datasketch(texts: list[str], workers: int = 2) -> dict:
    from datasketch import LeanMinHash, MinHashLSH
    t0 = time.perf_counter()
    chunks = [texts[i::workers] for i in range(workers)]
    if workers > 1:
        with mp.get_context("fork").Pool(workers) as pool:
            parts = pool.map(_ds_signatures, chunks)
    else:
        parts = [_ds_signatures(texts)]
    sig = np.empty((len(texts), BANDS * ROWS), dtype=parts[0][0].dtype)
    for i, (p, scheme) in enumerate(parts):
        sig[i::workers] = p
    lsh = MinHashLSH(num_perm=BANDS * ROWS, params=(BANDS, ROWS))
    mhs = [LeanMinHash(seed=SEED, hashvalues=sig[i], scheme=scheme) for i in range(len(texts))]
    with lsh.insertion_session() as sess:
        for i, m in enumerate(mhs):
            sess.insert(i, m, check_duplication=False)
    pairs = ((i, j) for i, m in enumerate(mhs) for j in lsh.query(m) if j != i)
    labels = _union_find(len(texts), pairs)
    kept = [t for i, t in enumerate(texts) if labels[i] == i]
    secs = time.perf_counter() - t0
    return {"seconds": secs, "labels": labels, "rss_mb": _rss_mb(), "kept": len(kept)}


# ------------------------------------------------------------------------------------ DataTrove
def _dt_tokenizer():
    from datatrove.utils.word_tokenizers import WordTokenizer

    class Whitespace(WordTokenizer):
        def word_tokenize(self, text: str) -> list[str]:
            return text.split()

        def sent_tokenize(self, text: str) -> list[str]:
            return [text]

        def span_tokenize(self, text: str) -> list[tuple[int, int]]:
            return [(0, len(text))]
    return Whitespace("en")


def run_datatrove(texts: list[str], workers: int = 2, tag: str = "speed") -> dict:
    import shutil
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (MinhashConfig, MinhashDedupBuckets,
                                                  MinhashDedupCluster, MinhashDedupFilter,
                                                  MinhashDedupSignature)
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import HashConfig
    from datatrove.utils.text import TextNormConfig
    base = CACHE / f"datatrove-{tag}-{len(texts)}"
    shutil.rmtree(base, ignore_errors=True)
    (base / "input").mkdir(parents=True)
    for r in range(workers):                       # input files: written before the clock starts
        with open(base / "input" / f"part{r}.jsonl", "w") as f:
            for i in range(r, len(texts), workers):
                f.write(json.dumps({"id": str(i), "text": texts[i]}) + "\n")
    cfg = MinhashConfig(n_grams=NGRAM, num_buckets=BANDS, hashes_per_bucket=ROWS, seed=SEED,
                        hash_config=HashConfig(precision=64),
                        norm_config=TextNormConfig(lowercase=True, norm_whitespace=True,
                                                   remove_punctuation=False,
                                                   norm_unicode_diacritics=False, norm_numbers=False))
    tok = _dt_tokenizer()
    reader = lambda: JsonlReader(str(base / "input"), compression=None, glob_pattern="*.jsonl")  # noqa: E731
    logs = str(base / "logs")
    t0 = time.perf_counter()
    LocalPipelineExecutor([reader(), MinhashDedupSignature(str(base / "sigs"), config=cfg, language=tok)],
                          tasks=workers, workers=workers, logging_dir=logs + "/1").run()
    LocalPipelineExecutor([MinhashDedupBuckets(str(base / "sigs"), str(base / "buckets"), config=cfg)],
                          tasks=BANDS, workers=workers, logging_dir=logs + "/2").run()
    LocalPipelineExecutor([MinhashDedupCluster(str(base / "buckets"), str(base / "remove"), config=cfg,
                                               save_cluster_id=True)],
                          tasks=1, logging_dir=logs + "/3").run()
    LocalPipelineExecutor([reader(), MinhashDedupFilter(str(base / "remove"), load_cluster_ids=True,
                                                        exclusion_writer=JsonlWriter(str(base / "removed"),
                                                                                     compression=None)),
                           JsonlWriter(str(base / "kept"), compression=None)],
                          tasks=workers, workers=workers, logging_dir=logs + "/4").run()
    secs = time.perf_counter() - t0
    labels = np.arange(len(texts))
    cluster_rep: dict[int, int] = {}
    kept = 0
    for folder in ("kept", "removed"):
        for fp in sorted((base / folder).glob("*.jsonl")):
            for line in open(fp):
                d = json.loads(line)
                kept += folder == "kept"
                c = d["metadata"].get("minhash_cluster_id", -1)
                if c >= 0:
                    labels[int(d["id"])] = cluster_rep.setdefault(c, int(d["id"]))
    return {"seconds": secs, "labels": labels, "rss_mb": _rss_mb(), "kept": kept}


# ------------------------------------------------------------------------------------ rensa (ref)
def run_rensa(texts: list[str]) -> dict:
    import rensa
    t0 = time.perf_counter()
    sets = [[s.decode() for s in _word_shingles(t)] for t in texts]
    rensa.RMinHash.digests_from_token_sets(sets, BANDS * ROWS, SEED)
    return {"seconds": time.perf_counter() - t0, "labels": None, "rss_mb": _rss_mb(), "kept": None}


def run_memory(n_docs: int, corpus_file: str) -> dict:
    """curate on ``n_docs`` short documents: the benchmark corpus plus random documents of 20–60
    words drawn from its word stream (a Zipf-like real distribution)."""
    docs = json.loads(Path(corpus_file).read_text())["docs"]
    stream = " ".join(docs).split()
    rng = np.random.default_rng(SEED)
    lens = rng.integers(20, 61, max(0, n_docs - len(docs))).tolist()
    picks = rng.integers(0, len(stream), int(sum(lens))).tolist()
    pos = 0
    for n in lens:
        docs.append(" ".join([stream[i] for i in picks[pos:pos + n]]))
        pos += n
    del stream, picks
    import gc
    gc.collect()
    before = _rss_now_mb()
    out = run_curate(docs[:n_docs])
    return {"seconds": out["seconds"], "rss_mb": out["rss_mb"], "docs": min(n_docs, len(docs)),
            "rss_before_mb": before,
            "duplicates": out["stats"]["duplicates"]}


# ------------------------------------------------------------------------------------ harness
def _child(fn_name: str, args: tuple, q) -> None:
    log = os.open(CACHE / f"{fn_name}.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(log, 1)          # DataTrove logs every stage; keep the report readable
    os.dup2(log, 2)
    try:
        q.put(globals()[fn_name](*args))
    except BaseException as e:  # report, don't hang the parent
        import traceback
        q.put({"error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()})


def in_child(fn_name: str, *args) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(fn_name, args, q))
    p.start()
    out = q.get()
    p.join()
    if "error" in out:
        print(out["trace"], file=sys.stderr)
    return out


def prf(pred: set, truth: set) -> tuple[float, float, float]:
    """Precision (0 when nothing is predicted), recall, F1."""
    tp = len(pred & truth)
    p = tp / len(pred) if pred else 0.0
    r = tp / len(truth) if truth else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def predicted(labels: np.ndarray, pairs) -> set:
    return {(min(a, b), max(a, b)) for a, b in pairs if labels[a] == labels[b]}


def mrpc_minhash(tools: dict, limit: int | None, workers: int) -> list:
    from _corpus import mrpc_pairs
    pairs = mrpc_pairs(limit=limit)
    sents = [s for a, b, _ in pairs for s in (a, b)]
    idx = [(2 * i, 2 * i + 1) for i in range(len(pairs))]
    truth = {p for p, (_, _, y) in zip(idx, pairs) if y == 1}
    print(f"\n== MRPC ({len(pairs)} pairs, {len(truth)} paraphrases): MinHash 5-word shingles, J ≥ {THRESHOLD}")
    for name, fn in tools.items():
        extra = {"run_datatrove": (workers, "mrpc"), "run_datasketch": (workers,)}.get(fn, ())
        out = in_child(fn, sents, *extra)
        if "error" in out:
            print(f"{name:12s} failed: {out['error']}")
            continue
        pred = predicted(out["labels"], idx)
        p, r, f = prf(pred, truth)
        print(f"{name:12s} precision={p:.3f} recall={r:.3f} f1={f:.3f} predicted_pairs={len(pred)}")
    return pairs


def mrpc_semantic(pairs, threshold: float) -> None:
    import polars as pl
    from curate.embed import embed
    from curate.step import StepContext
    from curate.steps.dedup.step import Dedup
    sents = [s for a, b, _ in pairs for s in (a, b)]
    idx = [(2 * i, 2 * i + 1) for i in range(len(pairs))]
    truth = {p for p, (_, _, y) in zip(idx, pairs) if y == 1}
    t0 = time.perf_counter()
    emb = embed(sents)
    t_emb = time.perf_counter() - t0
    cos = np.einsum("ij,ij->i", emb[0::2], emb[1::2])
    base = {p for p, c in zip(idx, cos) if c >= threshold}
    df = pl.DataFrame({"id": [str(i) for i in range(len(sents))], "text": sents,
                       "vec": emb.tolist()})
    t0 = time.perf_counter()
    res = Dedup(exact=False, semantic={"threshold": threshold, "embedding_column": "vec"}).process(
        df, StepContext("dedup", 0, SEED, CACHE / "curate-work"))
    t_dedup = time.perf_counter() - t0
    labels = np.arange(len(sents))
    rej = res.rejected
    labels[rej["id"].cast(pl.Int64).to_numpy()] = rej["duplicate_of"].cast(pl.Int64).to_numpy()
    print(f"\n== MRPC semantic (all-MiniLM-L6-v2, cosine ≥ {threshold}; embeddings {t_emb:.1f}s for "
          f"{len(sents)} sentences, shared by both)")
    for name, pred in (("cosine-pair", base), ("curate", predicted(labels, idx))):
        p, r, f = prf(pred, truth)
        print(f"{name:12s} precision={p:.3f} recall={r:.3f} f1={f:.3f} predicted_pairs={len(pred)}")
    print(f"curate semantic dedup over all {len(sents)} sentences: {t_dedup:.2f}s, "
          f"{res.rejected.height} removed")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", action="store_true", help="CI-sized run (< 5 minutes)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="peer worker processes")
    ap.add_argument("--semantic-threshold", type=float, default=0.85)
    ap.add_argument("--skip-mrpc", action="store_true")
    ap.add_argument("--memory", type=int, default=0, metavar="N",
                    help="also dedup N short documents with curate and report peak RSS (e.g. 1000000)")
    args = ap.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    from _corpus import build
    n_base = 18_200 if args.small else 182_000
    cache = CACHE / f"corpus-{n_base}.json"
    t0 = time.perf_counter()
    if cache.exists():
        c = json.loads(cache.read_text())
        docs, pairs = c["docs"], [tuple(p) for p in c["pairs"]]
    else:
        corpus = build(n_base=n_base, seed=0)
        docs, pairs = corpus.docs, corpus.pairs
        cache.write_text(json.dumps({"docs": docs, "pairs": pairs}))
    truth = {(min(a, b), max(a, b)) for a, b, _, j in pairs if j >= THRESHOLD}
    planted = [(a, b) for a, b, _, _ in pairs]
    words = sum(len(d.split()) for d in docs) / len(docs)
    print(f"corpus: {len(docs)} documents (mean {words:.1f} words), {len(pairs)} planted copies, "
          f"{len(truth)} with true J ≥ {THRESHOLD} ({time.perf_counter() - t0:.1f}s)")
    print(f"setup: {NGRAM}-word lowercased whitespace shingles, {BANDS * ROWS} permutations, "
          f"{BANDS} bands × {ROWS} rows, union-find; peers with {args.workers} workers; cpus={os.cpu_count()}")
    tools = {"curate": "run_curate", "datasketch": "run_datasketch", "datatrove": "run_datatrove"}
    results = {}
    print(f"\n== speed + quality on the planted pairs\n{'tool':22s} {'docs/s':>9s} {'seconds':>8s} "
          f"{'peak_MB':>8s} {'precision':>9s} {'recall':>7s} {'f1':>6s}")
    runs = [("curate", "run_curate", (docs,)), ("curate(verify=sig)", "run_curate", (docs, "signature")),
            ("datasketch", "run_datasketch", (docs, args.workers)),
            ("datatrove", "run_datatrove", (docs, args.workers)),
            ("rensa(sigs only, ref)", "run_rensa", (docs,))]
    for name, fn, fargs in runs:
        out = in_child(fn, *fargs)
        if "error" in out:
            print(f"{name:22s} failed: {out['error']}")
            continue
        dps = len(docs) / out["seconds"]
        if out["labels"] is not None:
            p, r, f = prf(predicted(out["labels"], planted), truth)
            results[name] = (dps, f)
            print(f"{name:22s} {dps:9.0f} {out['seconds']:8.2f} {out['rss_mb']:8.0f} {p:9.3f} {r:7.3f} {f:6.3f}")
        else:
            print(f"{name:22s} {dps:9.0f} {out['seconds']:8.2f} {out['rss_mb']:8.0f}")
        if name == "curate":
            print(f"{'':22s} stats: {json.dumps({k: v for k, v in out['stats'].items() if k != 'similarity_histogram'})}")
    if args.memory:
        out = in_child("run_memory", args.memory, str(cache))
        if "error" in out:
            print(f"memory run failed: {out['error']}")
        else:
            print(f"\n== memory: curate near dedup of {out['docs']} documents: {out['seconds']:.1f}s "
                  f"({out['docs'] / out['seconds']:.0f} docs/s), peak RSS {out['rss_mb']:.0f} MB "
                  f"(input already in memory: {out['rss_before_mb']:.0f} MB), {out['duplicates']} removed")
    if not args.skip_mrpc:
        mpairs = mrpc_minhash(tools, 1000 if args.small else None, args.workers)
        mrpc_semantic(mpairs[:500] if args.small else mpairs, args.semantic_threshold)
    peers = {k: v for k, v in results.items() if k in ("datasketch", "datatrove")}
    best_f1 = max((f for _, f in peers.values()), default=float("nan"))
    fastest = max((d for d, _ in peers.values()), default=float("nan"))
    cur_dps, cur_f1 = results.get("curate", (float("nan"), float("nan")))
    print(f"\nf1 curate={cur_f1:.3f} best_peer={best_f1:.3f}")
    print(f"speedup_vs_fastest_peer={cur_dps / fastest:.2f}")


if __name__ == "__main__":
    main()
