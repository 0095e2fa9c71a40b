"""Benchmark: curate's sentence embeddings (curate.embed) vs plain ``SentenceTransformer.encode``.

Data: the MRPC paraphrase train file in the shared data folder (read there, never copied into the
repo): each pair's two sentences are embedded, and the pair's cosine decides "paraphrase".
Quality is the F1 of that decision with a threshold chosen on one half of the pairs (best F1
there) and scored on the other half, both ways round (two folds, F1 averaged): the same protocol,
halves and sentences for every row.

Every row embeds the same distinct sentences of the chosen pairs. The timed region is the same for
everyone: encoding all sentences into L2-normalised vectors, after loading and after a short warm-up
call; loading (and, for curate's ONNX/static backends, the one-time export cached on disk) is
reported separately. The 2-core box is shared and its load comes in bursts, so the sentences are
cut into chunks (256); every row encodes a chunk in turn, three times, and a row's time is the sum
over chunks of its best time: the same rule for every row.

Rows:
* ``st`` — the peer in the ratio: ``SentenceTransformer(model).encode(texts,
  normalize_embeddings=True)`` with default batch size (32) on torch, the usual user code. (Its
  own ONNX backend needs optimum-onnx, which pins transformers<4.58 and cannot be installed next
  to transformers 5 here; see README.)
* ``curate:torch`` — the same network through curate.embed on torch.
* ``curate:onnx`` / ``curate:onnx-int8`` — exported once to ONNX (fused), fp32 / int8 weights.
* ``curate:static`` — model2vec distilled from the same model (only when already distilled in the
  cache, or with ``--static``: the distillation takes minutes and is not timed).
* ``curate:auto`` is the default users get; the ratio uses it.

    python bench/embed.py [--small] [--pairs N] [--repeats R] [--static]

Last line: ``embed_speedup_vs_st=<rows/s of curate's default ÷ rows/s of st> f1_drop=<points>``
(F1 of st minus F1 of curate's default, in points of 100).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = Path(os.environ.get("CURATE_SHARED_DATA", REPO.parent / "shared" / "data"))

import numpy as np  # noqa: E402


def mrpc_pairs(n: int | None) -> tuple[list[str], list[str], np.ndarray]:
    files = sorted(DATA.glob("*mrpc*train*")) or sorted(DATA.rglob("*mrpc*train*"))
    if not files:
        sys.exit(f"MRPC train file not found under {DATA} (set CURATE_SHARED_DATA)")
    lines = files[0].read_text(encoding="utf-8-sig").splitlines()[1:]
    rows = [ln.split("\t") for ln in lines if ln.count("\t") >= 4]
    rows = rows[:n] if n else rows
    return [r[3] for r in rows], [r[4] for r in rows], np.array([int(r[0]) for r in rows])


def best_threshold(cos: np.ndarray, y: np.ndarray) -> float:
    """Threshold t (predict paraphrase when cos ≥ t) with the best F1 on these pairs."""
    order = np.argsort(-cos, kind="stable")
    c, yy = cos[order], y[order]
    tp = np.cumsum(yy)
    k = np.arange(1, len(c) + 1)
    f1 = 2 * tp / (k + yy.sum())
    last = np.r_[c[1:] != c[:-1], True]            # only cut between distinct cosines
    i = int(np.argmax(np.where(last, f1, -1)))
    return float(c[i])


def f1_at(cos: np.ndarray, y: np.ndarray, t: float) -> float:
    pred = cos >= t
    tp = int((pred & (y == 1)).sum())
    return 2 * tp / max(int(pred.sum()) + int((y == 1).sum()), 1)


def two_fold_f1(cos: np.ndarray, y: np.ndarray, seed: int = 13) -> float:
    perm = np.random.default_rng(seed).permutation(len(y))
    a, b = perm[: len(y) // 2], perm[len(y) // 2:]
    return float(np.mean([f1_at(cos[e], y[e], best_threshold(cos[c], y[c])) for c, e in ((a, b), (b, a))]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", action="store_true", help="400 pairs (under 5 minutes)")
    ap.add_argument("--pairs", type=int, default=None, help="pairs of MRPC train (default all)")
    ap.add_argument("--repeats", type=int, default=None, help="timed runs per row (best kept)")
    ap.add_argument("--static", action="store_true", help="distil the static model if not cached")
    ap.add_argument("--chunk", type=int, default=256, help="sentences per timed chunk")
    ap.add_argument("--no-torch-row", action="store_true", help="skip the curate:torch row")
    args = ap.parse_args()
    pairs = args.pairs or (400 if args.small else None)
    repeats = args.repeats or 3
    a, b, y = mrpc_pairs(pairs)
    sents = list(dict.fromkeys(a + b))
    pos = {s: i for i, s in enumerate(sents)}
    ia, ib = np.array([pos[s] for s in a]), np.array([pos[s] for s in b])

    import torch
    from sentence_transformers import SentenceTransformer

    import curate.embed as E

    print(f"MRPC train: {len(y)} pairs ({y.mean():.0%} paraphrases), {len(sents)} distinct sentences; "
          f"torch threads={torch.get_num_threads()}, cpu_count={os.cpu_count()}, chunks of {args.chunk}, best of {repeats} per chunk")
    path = E.resolve_model_path(None)

    # --- loading (not timed in the ratio; reported)
    runners: dict[str, object] = {}
    load_s: dict[str, float] = {}
    t = time.perf_counter()
    st = SentenceTransformer(path, device="cpu")
    load_s["st"] = time.perf_counter() - t
    runners["st"] = lambda xs: st.encode(xs, normalize_embeddings=True, convert_to_numpy=True)

    wanted = [] if args.no_torch_row else ["torch"]
    wanted += ["onnx", "onnx-int8"]
    try:
        static_cached = (E.cache_dir() / E._model_key(Path(path), "static-v1") / "static" / "meta.json").is_file()
    except Exception:
        static_cached = False
    if args.static or static_cached:
        wanted.append("static")
    notes: dict[str, str] = {}
    for name in wanted:
        E.load_encoder.cache_clear()
        t = time.perf_counter()
        try:
            enc = E.load_encoder(None, None, name)
        except Exception as e:  # missing extra, export failure: report and go on
            notes[f"curate:{name}"] = f"unavailable: {e}"
            continue
        load_s[f"curate:{name}"] = time.perf_counter() - t
        runners[f"curate:{name}"] = (lambda enc: lambda xs: enc.encode(xs, 64))(enc)
        meta = getattr(enc, "meta", None) or {}
        if meta.get("drift_vs_fp32"):
            notes[f"curate:{name}"] = f"int8 drift vs fp32 on probe texts: {meta['drift_vs_fp32']}"
    E.load_encoder.cache_clear()
    auto = E.load_encoder(None, None, "auto")
    default_row = f"curate:{auto.backend}"
    if default_row not in runners:
        runners[default_row] = lambda xs: auto.encode(xs, 64)
    static_note = "" if "curate:static" in runners else " (static: not distilled here; --static builds it)"

    # --- warm-up, then timed runs (same region for all: encode every sentence). The box is shared
    # and its load comes in bursts, so the sentences are cut into chunks; each chunk is encoded by
    # every row in turn, `repeats` times, and a row's time is the sum over chunks of its best run.
    for f in runners.values():
        f(sents[:16])
    chunks = [sents[i:i + args.chunk] for i in range(0, len(sents), args.chunk)]
    best: dict[str, float] = {k: 0.0 for k in runners}
    parts: dict[str, list[np.ndarray]] = {k: [] for k in runners}
    for chunk in chunks:
        times = {k: float("inf") for k in runners}
        last: dict[str, np.ndarray] = {}
        for _ in range(repeats):
            for k, f in runners.items():
                t = time.perf_counter()
                last[k] = f(chunk)
                times[k] = min(times[k], time.perf_counter() - t)
        for k in runners:
            best[k] += times[k]
            parts[k].append(np.asarray(last[k], dtype=np.float32))
    vecs = {k: np.vstack(v) for k, v in parts.items()}

    ref = vecs["st"]
    f1 = {k: two_fold_f1((v[ia] * v[ib]).sum(1), y) for k, v in vecs.items()}
    rate = {k: len(sents) / best[k] for k in runners}
    print(f"\n{'row':<18}{'rows/s':>9}{'x st':>7}{'F1':>8}{'cos vs st':>17}{'load s':>8}")
    for k in runners:
        if k == "curate:static":
            drift = "(other space)"
        else:
            c = (vecs[k] * ref).sum(1)
            drift = f"{c.mean():.4f}/{c.min():.4f}"
        star = " <- default (auto)" if k == default_row else ""
        print(f"{k:<18}{rate[k]:>9.1f}{rate[k] / rate['st']:>7.2f}{100 * f1[k]:>8.2f}{drift:>17}"
              f"{load_s.get(k, float('nan')):>8.1f}{star}")
    print("cos vs st = mean/min cosine between the row's vector and st's for the same sentence; "
          "load s includes a one-time export when the cache was empty" + static_note)
    for k, n in notes.items():
        print(f"{k}: {n}")
    if "curate:static" in rate and default_row != "curate:static":
        print(f"static backend (opt-in, backend='static'; its cosines live in another space, so "
              f"thresholds tuned on MiniLM do not carry over): speedup_vs_st="
              f"{rate['curate:static'] / rate['st']:.1f} f1_drop={100 * (f1['st'] - f1['curate:static']):.2f}")
    speed = rate[default_row] / rate["st"]
    drop = 100 * (f1["st"] - f1[default_row])
    print(f"embed_speedup_vs_st={speed:.2f} f1_drop={drop:.2f}")


if __name__ == "__main__":
    main()
