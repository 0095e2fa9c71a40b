"""SMOTE on sentence embeddings, realised as distinct text rows (the ``balance`` step's
``smote`` / ``borderline_smote`` / ``adasyn`` methods).

imbalanced-learn makes synthetic vectors ``s = x_a + w (x_b - x_a)``; :func:`recover_parents`
finds ``a``, ``b`` and ``w`` exactly. Each point then becomes a real text:

* with ``llm`` set, a prompt shows both parents and asks for a text ``w`` of the way between them;
* otherwise the ``generator`` augmenter rewrites the *nearer* parent. Points are realised
  *distinctly*: each generator call gets its own seed per point (the k-th point drawn from a
  parent gets seed offset k, and every retry a new one), and the edit strength follows the
  interpolation weight — a point far from its parent (w near 0.5) gets more words swapped
  (``aug_p`` scaled by 0.5 + 2 min(w, 1-w)) than one next to it.

A text is kept only if it is non-empty, not its parent (exactly or by cosine >=
``max_parent_similarity``), not equal to any input row or another synthetic row
(``duplicate_realisation``), close to its point (cosine >= ``min_point_similarity``) and keeps its
label (``label_check``). Points that never pass within ``attempts`` tries are rejected with the
reason of the last try.

Rows and generated texts are embedded with the step's ``embedding`` block. Both bounds are
MiniLM's; with the static backend they were not re-measured (its cosines run higher at the low
end: 1% of MRPC pairs fall below 0.54 under static, below 0.40 under MiniLM), and ``onnx-int8``
makes a text's vector depend slightly on its batch, which the point-similarity check does not
expect: keep auto / onnx / torch for SMOTE.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import polars as pl

from curate import records as R
from curate.errors import DataError
from curate.step import StepContext

if TYPE_CHECKING:
    from curate.steps.balance import BalanceConfig

SMOTE_PROMPT = (
    "Here are two examples of the class \"{label}\".\n\nExample 1:\n{a}\n\nExample 2:\n{b}\n\n"
    "Write one new example of the same class that lies between them in meaning and style "
    "(about {w:.0%} of the way from example 1 to example 2). Reply with the example only.")
DUPLICATE = "duplicate_realisation"


def _smote_sampler(method: str, cls: str, goal: int, k: int, seed: int):
    from imblearn.over_sampling import ADASYN, SMOTE, BorderlineSMOTE
    strategy = {cls: goal}
    if method == "smote":
        return SMOTE(sampling_strategy=strategy, k_neighbors=k, random_state=seed)
    if method == "borderline_smote":
        return BorderlineSMOTE(sampling_strategy=strategy, k_neighbors=k, m_neighbors=max(k, 10),
                               kind="borderline-1", random_state=seed)
    return ADASYN(sampling_strategy=strategy, n_neighbors=k, random_state=seed)


def recover_parents(S: np.ndarray, Xc: np.ndarray, k: int = 5, tol: float = 1e-6
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For each synthetic point ``s`` (a SMOTE interpolation ``x_a + w (x_b - x_a)`` of two rows
    of ``Xc``), find ``(a, b, w)``; imbalanced-learn does not expose them, but the point lies on
    the segment, so the pair with zero distance to the line through it is the answer.

    First pass: all pairs among the 32 rows nearest to each point. Points left unexplained
    (parents far apart) are matched against every (row, one of its ``k`` nearest rows) pair —
    the pairs SMOTE draws from. Returns indices into ``Xc`` (a, b), weights w and the relative
    residual (≈0 when found)."""
    S = np.asarray(S, dtype=np.float64)
    Xc = np.asarray(Xc, dtype=np.float64)
    m, n = len(S), len(Xc)
    p = min(n, 32)
    A = np.zeros(m, dtype=np.int64)
    B = np.zeros(m, dtype=np.int64)
    W = np.zeros(m)
    RES = np.full(m, np.inf)
    sq = (Xc ** 2).sum(1)
    for lo in range(0, m, 256):
        s = S[lo:lo + 256]
        d2 = sq[None, :] - 2 * s @ Xc.T + (s ** 2).sum(1)[:, None]
        cand = np.argpartition(d2, p - 1, axis=1)[:, :p] if p < n else np.tile(np.arange(n), (len(s), 1))
        U = Xc[cand] - s[:, None, :]                     # (b, p, d): candidates relative to s
        G = U @ U.transpose(0, 2, 1)                     # Gram matrix
        ga = np.diagonal(G, axis1=1, axis2=2)            # |s - a|^2
        seg = ga[:, :, None] + ga[:, None, :] - 2 * G   # |b - a|^2
        num = ga[:, :, None] - G                         # <s - a, b - a>
        with np.errstate(divide="ignore", invalid="ignore"):
            w = num / seg
            res = ga[:, :, None] - num * w               # squared distance of s to the line
            rel = res / seg
        bad = ~np.isfinite(rel) | (w < -1e-9) | (w > 1 + 1e-9)
        idx = np.arange(p)
        rel[bad] = np.inf
        rel[:, idx, idx] = np.inf
        flat = rel.reshape(len(s), -1).argmin(1)
        ia, ib = np.divmod(flat, p)
        r = np.arange(len(s))
        A[lo:lo + 256] = cand[r, ia]
        B[lo:lo + 256] = cand[r, ib]
        W[lo:lo + 256] = np.clip(w[r, ia, ib], 0, 1)
        RES[lo:lo + 256] = rel[r, ia, ib]
        # s equal to a row (w = 0 or 1): the pair is degenerate; take that row and its nearest.
        exact = np.take_along_axis(d2, cand, 1).min(1) <= tol
        if exact.any():
            j = np.take_along_axis(cand, np.argsort(np.take_along_axis(d2, cand, 1), 1)[:, :2], 1)
            A[lo:lo + 256][exact] = j[exact, 0]
            B[lo:lo + 256][exact] = j[exact, 1] if p > 1 else j[exact, 0]
            W[lo:lo + 256][exact] = 0.0
            RES[lo:lo + 256][exact] = 0.0
    left = np.flatnonzero(RES > 1e-10)
    if len(left) and n > 2:
        from sklearn.neighbors import NearestNeighbors
        kk = min(k, n - 1)
        nn = NearestNeighbors(n_neighbors=kk + 1).fit(Xc).kneighbors(Xc, return_distance=False)[:, 1:]
        pa_ = np.repeat(np.arange(n), kk)
        pb_ = nn.reshape(-1)
        Xa, E = Xc[pa_], Xc[pb_] - Xc[pa_]
        seg_ = (E ** 2).sum(1)
        xae, xa2 = (Xa * E).sum(1), (Xa ** 2).sum(1)
        for lo in range(0, len(left), 256):
            li = left[lo:lo + 256]
            s = S[li]
            num_ = s @ E.T - xae[None, :]
            d2_ = (s ** 2).sum(1)[:, None] - 2 * s @ Xa.T + xa2[None, :]
            with np.errstate(divide="ignore", invalid="ignore"):
                w_ = num_ / seg_[None, :]
                rel_ = (d2_ - num_ * w_) / seg_[None, :]
            rel_[~np.isfinite(rel_) | (w_ < -1e-9) | (w_ > 1 + 1e-9)] = np.inf
            best = rel_.argmin(1)
            r = np.arange(len(li))
            better = rel_[r, best] < RES[li]
            A[li[better]] = pa_[best[better]]
            B[li[better]] = pb_[best[better]]
            W[li[better]] = np.clip(w_[r, best][better], 0, 1)
            RES[li[better]] = rel_[r, best][better]
    return A, B, W, np.sqrt(np.maximum(RES, 0))



def _llm_generate(llm_cfg: dict[str, Any], prompts: list[str], seed: int) -> list[str | None]:
    """Generate with a curate LLM backend (:mod:`curate.llm`): one completion per prompt."""
    from curate.llm import BackendSpec, SamplingParams, load_backend
    cfg = dict(llm_cfg)
    sp = {k: cfg.pop(k) for k in ("max_new_tokens", "temperature", "top_p") if k in cfg}
    llm = load_backend(BackendSpec(**cfg))
    outs = llm.generate(prompts, SamplingParams(seed=seed, **sp))
    return [(g[0].text.strip() or None) if g else None for g in outs]


def _label_predictor(cfg: "BalanceConfig", X: np.ndarray, y: np.ndarray):
    """``f(embeddings, texts) -> labels`` used to check that a generated text kept its class."""
    if cfg.label_check == "none":
        return None
    if cfg.label_check == "knn":
        from sklearn.neighbors import KNeighborsClassifier
        knn = KNeighborsClassifier(n_neighbors=min(5, len(y))).fit(X, y)
        return lambda E, texts: knn.predict(E)
    from curate.augmenters.gate import _classifier
    clf = _classifier(cfg.label_check)
    lmap = cfg.label_map or {}
    return lambda E, texts: np.asarray([lmap.get(str(o["label"]), str(o["label"]))
                                        for o in clf(list(texts), truncation=True)])


# ============================================================== points
@dataclass
class Points:
    """Synthetic points: parents ``A``/``B`` (row indices), weight ``W``, vector ``P``, class
    ``C``, parent-recovery residual ``RES``; ``copies`` = rows copied for single-row classes."""

    A: np.ndarray
    B: np.ndarray
    W: np.ndarray
    P: np.ndarray
    C: np.ndarray
    RES: np.ndarray
    copies: list[int] = field(default_factory=list)

    @property
    def near(self) -> np.ndarray:
        """The parent each point is nearer to (the one an augmenter rewrites)."""
        return np.where(self.W < 0.5, self.A, self.B)

    def __len__(self) -> int:
        return len(self.W)


def synthesize_points(X: np.ndarray, y: np.ndarray, goal: dict[str, int], cfg: "BalanceConfig",
                      seed: int, sm: dict[str, Any]) -> Points:
    """Run the sampler per class that must grow; recover each point's parents and weight."""
    from curate.steps.balance import label_counts
    counts = label_counts(pl.Series(y))
    pa, pb, pw, pts, pcls, pres, copies = [], [], [], [], [], [], []
    for c, want in goal.items():
        have = counts.get(c, 0)
        if want <= have:
            continue
        cls_idx = np.flatnonzero(y == c)
        k = min(cfg.k_neighbors, have - 1)
        if k < cfg.k_neighbors and cfg.small_class == "error":
            raise DataError(f"step balance: {cfg.method} needs more than k_neighbors={cfg.k_neighbors} rows "
                            f"of class {c!r} (it has {have}); lower k_neighbors or set small_class: reduce_k")
        if k < 1:
            copies += np.random.default_rng(seed).choice(cls_idx, size=want - have, replace=True).tolist()
            sm["fallbacks"][c] = "random_copies (single-row class)"
            continue
        sm["k_neighbors"][c] = k
        try:
            Xr, _ = _smote_sampler(cfg.method, c, want, k, seed).fit_resample(X, y)
        except (ValueError, RuntimeError) as e:
            if cfg.method == "smote":
                raise
            sm["fallbacks"][c] = f"smote ({cfg.method} failed: {str(e)[:120]})"
            Xr, _ = _smote_sampler("smote", c, want, k, seed).fit_resample(X, y)
        S = Xr[len(X):]
        sm["synthetic_points"][c] = int(len(S))
        if not len(S):
            continue
        a, b, w, res = recover_parents(S, X[cls_idx], k)
        pa.append(cls_idx[a]); pb.append(cls_idx[b]); pw.append(w); pts.append(S)
        pcls += [c] * len(S); pres.append(res)
    if not pts:
        e = np.zeros(0)
        return Points(e.astype(np.int64), e.astype(np.int64), e, np.zeros((0, X.shape[1])),
                      np.asarray([], dtype=object), e, copies)
    return Points(np.concatenate(pa), np.concatenate(pb), np.concatenate(pw), np.concatenate(pts),
                  np.asarray(pcls), np.concatenate(pres), copies)


def edit_strength(W: np.ndarray) -> np.ndarray:
    """How strongly to edit the nearer parent: 0.5 next to it, 1.5 half-way (quarter steps)."""
    return np.round((0.5 + 2 * np.minimum(W, 1 - W)) * 4) / 4


# ============================================================== generators
class Realiser:
    """Candidate texts for points. Augmenter: one call per (strength, repeat) group, so points
    sharing a parent get different seeds and farther points get stronger edits. LLM: one call."""

    def __init__(self, cfg: "BalanceConfig", texts: list[str], pts: Points) -> None:
        self.cfg, self.texts, self.pts = cfg, texts, pts
        near = pts.near
        order = np.argsort(near, kind="stable")
        rep = np.empty(len(near), dtype=np.int64)
        _, starts = np.unique(near[order], return_index=True)
        run = np.arange(len(near)) - np.repeat(starts, np.diff(np.append(starts, len(near))))
        rep[order] = run
        self.repeat = rep                       # k-th point drawn from the same parent
        self.level = edit_strength(pts.W)
        self._augs: dict[float, Any] = {}

    def _augmenter(self, level: float):
        """The generator augmenter with ``aug_p`` scaled by ``level`` (when it has one)."""
        from curate.augmenters._base import build_augmenter
        if level not in self._augs:
            spec = self.cfg.generator
            base = build_augmenter(spec)
            p = getattr(base.config, "aug_p", None)
            if p is None or not (isinstance(spec, dict) and len(spec) == 1):
                self._augs[level] = base
            else:
                (name, opts), = spec.items()
                self._augs[level] = build_augmenter({name: {**(opts or {}), "aug_p": float(min(1.0, p * level))}})
        return self._augs[level]

    def generate(self, idx: np.ndarray, seed: int) -> tuple[dict[int, str | None], dict[int, str]]:
        """``({point: text}, {point: generator parameters as JSON})`` for the points ``idx``."""
        pts, texts = self.pts, self.texts
        if self.cfg.llm is not None:
            params = json.dumps({"generator": "llm", **{k: v for k, v in self.cfg.llm.items() if "key" not in k}},
                                sort_keys=True, default=str)
            prompts = [SMOTE_PROMPT.format(label=pts.C[i], a=texts[pts.A[i]], b=texts[pts.B[i]], w=pts.W[i])
                       for i in idx]
            out = _llm_generate(self.cfg.llm, prompts, seed)
            return dict(zip(idx.tolist(), out)), {int(i): params for i in idx}
        near = pts.near
        texts_out: dict[int, str | None] = {}
        params_out: dict[int, str] = {}
        groups: dict[tuple[float, int], list[int]] = {}
        for i in idx.tolist():
            groups.setdefault((float(self.level[i]), int(self.repeat[i])), []).append(i)
        for (level, rep), members in sorted(groups.items()):
            aug = self._augmenter(level)
            made = aug.augment([texts[near[i]] for i in members], seed + 7919 * rep)
            pj = json.dumps({"generator": "augmenter", **aug.params(), "edit_strength": level,
                             "seed_offset": rep}, sort_keys=True, default=str)
            for i, t in zip(members, made):
                texts_out[i], params_out[i] = t, pj
        return texts_out, params_out


# ============================================================== checks
@dataclass
class Realised:
    """Per point: the accepted text (or None), point similarity, why it failed, tries, params."""

    text: list[str | None]
    sim: np.ndarray
    why: list[str]
    tries: np.ndarray
    params: list[str]


def _judge(todo: np.ndarray, cand: dict[int, str | None], pts: Points, X: np.ndarray,
           texts: list[str], seen: set[str], out: Realised, cfg: "BalanceConfig",
           predict: Callable | None) -> None:
    """Check one attempt's candidates in point order; accepted texts join ``seen``."""
    near = pts.near
    ok: list[int] = []
    for j in todo.tolist():
        t = (cand.get(j) or "").strip()
        if not t:
            out.why[j] = "smote_no_text (the generator produced no variant of the parent)"
        elif t == texts[near[j]].strip():
            out.why[j] = "smote_copy_of_parent (similarity 1.000)"
        elif t in seen:
            out.why[j] = f"{DUPLICATE} (the text equals an input row or another synthetic row)"
        else:
            ok.append(j)
    if not ok:
        return
    oi = np.asarray(ok)
    E = cfg.embedding.embed([cand[j] for j in ok]).astype(np.float64)
    P_hat = pts.P[oi] / np.maximum(np.linalg.norm(pts.P[oi], axis=1, keepdims=True), 1e-12)
    point_sim = (E * P_hat).sum(1)
    par = X[near[oi]]
    parent_sim = (E * par).sum(1) / np.maximum(np.linalg.norm(par, axis=1), 1e-12)
    labels = predict(E.astype(np.float32), [cand[j] for j in ok]) if predict else pts.C[oi]
    for r, j in enumerate(ok):
        out.sim[j] = point_sim[r]
        t = cand[j].strip()
        if parent_sim[r] >= cfg.max_parent_similarity:
            out.why[j] = f"smote_copy_of_parent (similarity {parent_sim[r]:.3f})"
        elif point_sim[r] < cfg.min_point_similarity:
            out.why[j] = f"smote_far_from_point (similarity {point_sim[r]:.3f} < {cfg.min_point_similarity})"
        elif str(labels[r]) != pts.C[j]:
            out.why[j] = f"smote_label_changed (predicted {labels[r]!r}, expected {pts.C[j]!r})"
        elif t in seen:                 # two points of this attempt wrote the same text
            out.why[j] = f"{DUPLICATE} (the text equals another synthetic row)"
        else:
            out.why[j], out.text[j] = "", cand[j]
            seen.add(t)


def realise(pts: Points, X: np.ndarray, texts: list[str], cfg: "BalanceConfig", seed: int,
            predict: Callable | None) -> Realised:
    """Up to ``cfg.attempts`` generator tries per point (new seeds each), checked by :func:`_judge`."""
    m = len(pts)
    out = Realised([None] * m, np.full(m, np.nan), ["not generated"] * m, np.zeros(m, dtype=np.int64), [""] * m)
    gen = Realiser(cfg, texts, pts)
    seen = {t.strip() for t in texts}
    todo = np.arange(m)
    for attempt in range(cfg.attempts):
        if not len(todo):
            break
        cand, params = gen.generate(todo, seed * 1000 + attempt * 104729)
        out.tries[todo] += 1
        for j, pj in params.items():
            out.params[j] = pj
        _judge(todo, cand, pts, X, texts, seen, out, cfg, predict)
        todo = np.asarray([j for j in todo if out.why[j]], dtype=np.int64)
    return out


# ============================================================== rows
def _rows(df: pl.DataFrame, pts: Points, res: Realised, cfg: "BalanceConfig", step: str
          ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Accepted points as rows (ids ``<parent>-sm<k>``) and the failed ones as rejects."""
    ids = df[R.ID].to_list()
    k = pl.int_range(1, pl.len() + 1).over("parent_id")
    rows = df[pts.near.tolist()].with_columns(
        pl.col(R.ID).alias("parent_id"),
        pl.Series("parents", [[ids[a], ids[b]] for a, b in zip(pts.A, pts.B)], dtype=pl.List(pl.String)),
        pl.Series("smote_weight", pts.W.round(6)),
        pl.Series("smote_method", [cfg.method] * len(pts)),
        pl.Series("augmenter", res.params, dtype=pl.String),
        pl.lit(f"balance ({cfg.method})").alias("derived_by"),
        pl.Series("point_similarity", res.sim.round(6)),
        pl.Series("_text", [t if t is not None else "" for t in res.text]),
        pl.Series("_why", res.why),
    ).with_columns((pl.col("parent_id") + "-sm" + k.cast(pl.String)).alias(R.ID),
                   pl.col("_text").alias(cfg.text))
    good = rows.filter(pl.col("_why") == "").drop("_text", "_why")
    bad = rows.filter(pl.col("_why") != "")
    rejected = R.reject(bad, step, pl.col("_why").str.extract(r"^(\S+)", 1), pl.col("_why")).drop("_text", "_why")
    return good, rejected


def smote_rows(df: pl.DataFrame, y: np.ndarray, goal: dict[str, int], cfg: "BalanceConfig",
               ctx: StepContext, step: str) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]]:
    """SMOTE (or a variant) on sentence embeddings, then one distinct real text row per point
    (module doc). Rows carry ``parent_id`` (the rewritten parent), ``parents`` [a, b],
    ``smote_weight`` (w), ``augmenter`` (generator, parameters, strength, seed offset),
    ``derived_by`` and ``point_similarity``. Returns ``(new rows, rejected, stats)``."""
    from curate.steps.balance import embeddings, label_counts, with_copies
    X = embeddings(df, cfg).astype(np.float64)
    stats: dict[str, Any] = {"smote": {"synthetic_points": {}, "fallbacks": {}, "k_neighbors": {}}}
    sm = stats["smote"]
    pts = synthesize_points(X, y, goal, cfg, ctx.seed, sm)
    copies = with_copies(df, np.asarray(pts.copies, dtype=np.int64), "os", f"balance ({cfg.method}, single-row class)") \
        .filter(pl.col("parent_id").is_not_null()) if pts.copies else pl.DataFrame()
    if not len(pts):
        return copies, R.empty_rejects(df), stats
    sm["parents_recovered"] = int((pts.RES < 1e-3).sum())
    sm["max_parent_residual"] = float(pts.RES.max())
    texts = df[cfg.text].cast(pl.String).fill_null("").to_list()
    res = realise(pts, X, texts, cfg, ctx.seed, _label_predictor(cfg, X.astype(np.float32), y))
    good, rejected = _rows(df, pts, res, cfg, step)
    sm["attempts_used"] = {str(t): int((res.tries == t).sum()) for t in np.unique(res.tries)}
    sm["accepted"] = good.height
    sm["rejected"] = rejected.height
    sm["acceptance_rate"] = round(good.height / len(pts), 4)
    sm["unique_texts"] = int(good[cfg.text].n_unique()) if good.height else 0
    sm["rejected_by_reason"] = label_counts(rejected[R.REASON]) if rejected.height else {}
    return (R.concat([good, copies]) if copies.height else good), rejected, stats
