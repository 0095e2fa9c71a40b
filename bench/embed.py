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
  cache by ``curate setup embeddings --static``, or with ``--static``: the distillation takes
  minutes and is not timed).
* ``curate:onnx/2x1t``, ``curate:onnx-int8/2x1t`` — two one-thread ONNX Runtime sessions fed
  alternate batches (``CURATE_EMBED_SESSIONS=2``); ``curate:onnx/nospin`` — idle threads do not
  spin (``CURATE_EMBED_SPIN=0``). Same vectors as their backend; opt-in, not in the ratio.
* ``curate:auto`` is the default users get; the ratio uses it.

    python bench/embed.py [--small] [--pairs N] [--repeats R] [--static]
    python bench/embed.py --thresholds [--small]   # static thresholds matching MiniLM's defaults

``--thresholds`` times nothing: it embeds MRPC, the SMS collection and tests/data/gate_eval.jsonl
with the default (ONNX fp32) and the static model and prints, for semantic dedup (0.9), the gate's
``min_similarity`` (0.75) and ``domain_relevance`` (0.3), the static threshold that gives the same
F1 (and pair counts / shares where F1 is not the whole story); the numbers quoted in the steps'
docstrings and the README come from it.

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
    ap.add_argument("--no-variants", action="store_true", help="skip the ONNX threading variant rows")
    ap.add_argument("--thresholds", action="store_true", help="no timing: the static model's thresholds "
                    "that match MiniLM's defaults (semantic dedup, relevance, gate)")
    args = ap.parse_args()
    if args.thresholds:
        return thresholds(args)
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
        static_cached = (E.static_model_dir(None) / "meta.json").is_file()
    except Exception:
        static_cached = False
    if args.static and not static_cached:
        t = time.perf_counter()
        E.static_model(None, build=True)          # minutes; not timed (like `curate setup embeddings --static`)
        print(f"static model distilled in {time.perf_counter() - t:.0f} s")
        static_cached = True
    if static_cached:
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
    # ONNX Runtime threading variants (same vectors; opt-in via environment variables)
    for name, env in (("onnx", {"CURATE_EMBED_SESSIONS": "2"}), ("onnx-int8", {"CURATE_EMBED_SESSIONS": "2"}),
                      ("onnx", {"CURATE_EMBED_SPIN": "0"})):
        if args.no_variants or f"curate:{name}" not in runners:
            continue
        row = f"curate:{name}/" + ("2x1t" if "CURATE_EMBED_SESSIONS" in env else "nospin")
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            E.load_encoder.cache_clear()
            enc = E.load_encoder(None, None, name)
            runners[row] = (lambda enc: lambda xs: enc.encode(xs, 64))(enc)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
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
    print(f"\n{'row':<22}{'rows/s':>9}{'x st':>7}{'F1':>8}{'cos vs st':>17}{'load s':>8}")
    for k in runners:
        if k == "curate:static":
            drift = "(other space)"
        else:
            c = (vecs[k] * ref).sum(1)
            drift = f"{c.mean():.4f}/{c.min():.4f}"
        star = " <- default (auto)" if k == default_row else ""
        print(f"{k:<22}{rate[k]:>9.1f}{rate[k] / rate['st']:>7.2f}{100 * f1[k]:>8.2f}{drift:>17}"
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


# ----------------------------------------------------------------------------- --thresholds
def _f1(pred: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    tp = int((pred & y).sum())
    return 2 * tp / max(int(pred.sum() + y.sum()), 1), tp / max(int(pred.sum()), 1), tp / max(int(y.sum()), 1)


def same_f1(ref: np.ndarray, cand: np.ndarray, y: np.ndarray, t0: float, above: bool = True):
    """The threshold on ``cand`` whose F1 (predict positive when cos ≥ t, or < t when not
    ``above``) is closest to ``ref``'s at ``t0``, on the same side of ``cand``'s F1 peak as
    ``t0`` is of ``ref``'s. Returns (F1/P/R of ref at t0, t, F1/P/R of cand at t)."""
    grid = np.round(np.arange(-0.2, 1.0005, 0.001), 3)
    pred = (lambda c, t: c >= t) if above else (lambda c, t: c < t)
    fr = np.array([_f1(pred(ref, t), y)[0] for t in grid])
    fc = np.array([_f1(pred(cand, t), y)[0] for t in grid])
    want = _f1(pred(ref, t0), y)
    side = grid >= grid[fc.argmax()] if t0 >= grid[fr.argmax()] else grid <= grid[fc.argmax()]
    idx = np.flatnonzero(side)
    t = float(grid[idx[np.argmin(np.abs(fc[idx] - want[0]))]])
    return want, t, _f1(pred(cand, t), y)


def thresholds(args) -> None:
    """Per-backend thresholds: MiniLM (ONNX fp32, the default) vs the static model."""
    import json

    import curate.embed as E
    from sklearn.metrics import roc_auc_score
    if args.static:
        E.static_model(None, build=True)
    enc = {b: E.load_encoder(None, None, b) for b in ("onnx", "static")}
    a, b, y = mrpc_pairs(args.pairs or (400 if args.small else None))
    sents = list(dict.fromkeys(a + b))
    pos = {s: i for i, s in enumerate(sents)}
    ia, ib = np.array([pos[s] for s in a]), np.array([pos[s] for s in b])
    cos = {}
    for k, e in enc.items():
        v = e.encode(sents, 64)
        cos[k] = (v[ia] * v[ib]).sum(1)
    y1 = y == 1
    print(f"MRPC train: {len(y)} pairs (paraphrase = positive, predicted when cos >= t)")
    for t0, what in ((0.9, "semantic dedup threshold"), (0.75, "gate min_similarity")):
        (f, p, r), t, (fs, ps, rs) = same_f1(cos["onnx"], cos["static"], y1, t0)
        print(f"  {what}: onnx {t0}: F1 {f:.4f} (P {p:.3f}, R {r:.3f}) -> static same F1 at {t:.3f}: "
              f"{fs:.4f} (P {ps:.3f}, R {rs:.3f})")
    lines = (DATA / "sms_spam_collection.tsv").read_text(encoding="utf-8").splitlines()[1:]
    lab, txt = zip(*(ln.split("\t", 1) for ln in lines))
    n = 1500 if args.small else len(txt)
    txt, spam = list(txt[:n]), np.array([x == "spam" for x in lab[:n]])
    distinct = sorted({t: i for i, t in reversed(list(enumerate(txt)))}.values())
    sms = {k: e.encode(txt, 64) for k, e in enc.items()}
    pairs = {}
    for k, v in sms.items():
        v = v[distinct]
        out = []
        for lo in range(0, len(v), 1024):
            sim = v[lo:lo + 1024] @ v.T
            r, c = np.nonzero(sim >= 0.8)
            keep = c > r + lo
            out.append(sim[r[keep], c[keep]])
        pairs[k] = np.sort(np.concatenate(out))[::-1]
    m = int((pairs["onnx"] >= 0.9).sum())
    print(f"SMS, {len(distinct)} distinct texts: pairs with cos >= 0.9: onnx {m}, static "
          f"{int((pairs['static'] >= 0.9).sum())}; static at 0.913: {int((pairs['static'] >= 0.913).sum())}; "
          f"static threshold with as many pairs as onnx at 0.9: {pairs['static'][max(m - 1, 0)]:.3f}")
    exemplars = ["WINNER! You have won a free prize, call now to claim",
                 "Free entry in a weekly competition to win cash",
                 "URGENT: your mobile number has been awarded a bonus"]
    rel = {k: (sms[k] @ e.encode(exemplars, 64).T).max(1) for k, e in enc.items()}
    (f, p, r), t, (fs, ps, rs) = same_f1(rel["onnx"], rel["static"], spam, 0.3)
    print(f"domain_relevance, SMS spam as the domain (3 exemplars), {n} texts: AUC onnx "
          f"{roc_auc_score(spam, rel['onnx']):.3f}, static {roc_auc_score(spam, rel['static']):.3f}; onnx at 0.3: "
          f"F1 {f:.4f} (P {p:.3f}, R {r:.3f}); static's best F1 {fs:.4f} at {t:.3f} (P {ps:.3f}, R {rs:.3f})")
    rows = [json.loads(x) for x in (REPO / "tests/data/gate_eval.jsonl").read_text(encoding="utf-8").splitlines()]
    rows = [r for r in rows if r["kind"] not in ("augmenter:keyboard", "augmenter:char_noise", "augmenter:ocr")]
    changed = np.array([r["label"] == "changed" for r in rows])
    g = {}
    for k, e in enc.items():
        g[k] = (e.encode([r["original"] for r in rows], 64) * e.encode([r["edited"] for r in rows], 64)).sum(1)
    (f, p, r), t, (fs, ps, rs) = same_f1(g["onnx"], g["static"], changed, 0.75, above=False)
    share = float((g["onnx"][~changed] < 0.75).mean())
    print(f"gate (tests/data/gate_eval.jsonl, {len(rows)} word-level pairs; meaning changed = positive, "
          f"predicted when cos < t): onnx 0.75: F1 {f:.4f} (P {p:.3f}, R {r:.3f}), rejects {share:.1%} of kept "
          f"pairs -> static same F1 at {t:.3f}; same share of kept pairs at "
          f"{np.quantile(g['static'][~changed], share):.3f}; copies (cos >= 0.99) among kept pairs: onnx "
          f"{(g['onnx'][~changed] >= 0.99).mean():.1%}, static {(g['static'][~changed] >= 0.99).mean():.1%}")


if __name__ == "__main__":
    main()
