"""`balance`: re-sample a labelled table towards a target class distribution.

Methods (all through imbalanced-learn):

* ``oversample`` — RandomOverSampler. Copies get id ``<parent id>-os<k>`` and ``parent_id``.
* ``undersample`` — RandomUnderSampler; ``tomek`` — TomekLinks and ``cluster_centroids`` —
  ClusterCentroids (hard voting, so real rows are kept) on sentence embeddings. Dropped rows
  are *rejected* with reason ``undersampled`` (detail names the method and class).
* ``smote`` / ``borderline_smote`` / ``adasyn`` — computed on sentence embeddings
  (:func:`curate.embed.embed`). See :func:`smote_rows` for how each synthetic vector becomes a
  real text row (parents, weight, generator, gate).
* ``none`` — no resampling, only the statistics.

Every run records ``before``/``after`` label distributions and sklearn's balanced
``class_weights`` (of the input distribution, for cost-sensitive training instead of or on top of
re-sampling) in the step stats, which the engine puts in the manifest.
"""
from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import numpy as np
import polars as pl
from pydantic import Field

from curate import records as R
from curate.errors import DataError
from curate.registry import register_step
from curate.step import Step, StepConfig, StepContext, StepResult

OVER = ("oversample", "smote", "borderline_smote", "adasyn")
UNDER = ("undersample", "tomek", "cluster_centroids")
EMBEDDING_METHODS = ("tomek", "cluster_centroids", "smote", "borderline_smote", "adasyn")

Ratio = Annotated[float, Field(gt=0, le=1)]


class BalanceConfig(StepConfig):
    method: Literal["oversample", "undersample", "smote", "borderline_smote", "adasyn", "tomek",
                    "cluster_centroids", "none"] = Field(
        default="oversample", description="Resampling method (imbalanced-learn sampler).")
    label: str = Field(default="label", description="Column holding the class label.")
    target: Literal["auto"] | Ratio | dict[str, Annotated[int, Field(ge=1)]] = Field(
        default="auto",
        description="`auto`: every class to the majority size (oversampling) or the minority size "
                    "(undersampling); a ratio r in (0, 1]: each class to at least r x majority "
                    "(oversampling) or the majority classes down to at most minority / r "
                    "(undersampling); or {class: count}. `tomek` only accepts `auto`.")
    text: str = Field(default="text", description="Text column embedded for embedding methods.")
    embedding_column: str | None = Field(
        default=None, description="Use this list[float] column as embeddings instead of embedding `text` "
                                  "(for SMOTE it must come from `embed_model`: generated texts are embedded "
                                  "with it and compared to the synthetic points).")
    embed_model: str | None = Field(
        default=None, description="sentence-transformers model name/path; default all-MiniLM-L6-v2 (offline).")
    k_neighbors: int = Field(default=5, ge=1, le=100, description="Neighbours for SMOTE variants.")
    small_class: Literal["reduce_k", "error"] = Field(
        default="reduce_k",
        description="SMOTE on a class with <= k_neighbors rows: `reduce_k` uses k = rows - 1 and, for a "
                    "single-row class, falls back to random copies (recorded in stats); `error` raises.")
    generator: dict[str, Any] = Field(
        default_factory=lambda: {"embedding_swap": {}},
        description="SMOTE text generator when no `llm` is set: an augmenter spec applied to the nearer parent.")
    llm: dict[str, Any] | None = Field(
        default=None, description="SMOTE text generator via a curate LLM backend (writes from both parents).")
    min_point_similarity: float = Field(
        default=0.7, ge=-1, le=1,
        description="Keep a SMOTE text only if cos(embedding(text), synthetic point) >= this.")
    max_parent_similarity: float = Field(
        default=0.995, ge=-1, le=1, description="Reject SMOTE texts this similar to their parent (copies).")
    label_check: Literal["knn", "none"] | str = Field(
        default="knn",
        description="How SMOTE texts prove their label: `knn` (majority of the 5 nearest input rows "
                    "in embedding space), `none`, or a path/name of a text-classification model.")
    label_map: dict[str, str] | None = Field(
        default=None, description="With a classifier `label_check`: model label -> data label.")
    attempts: int = Field(default=3, ge=1, le=20, description="Generator tries per synthetic point.")


def label_counts(labels: pl.Series) -> dict[str, int]:
    """``{str(label): count}`` sorted by label (nulls excluded)."""
    vc = labels.drop_nulls().cast(pl.String).value_counts(sort=False)
    return {str(k): int(v) for k, v in sorted(vc.rows())}


def class_weights(labels: pl.Series) -> dict[str, float]:
    """sklearn's ``compute_class_weight('balanced')``: n / (n_classes * count_c)."""
    from sklearn.utils.class_weight import compute_class_weight
    y = labels.drop_nulls().cast(pl.String).to_numpy()
    if len(y) == 0:
        return {}
    classes = np.unique(y)
    w = compute_class_weight("balanced", classes=classes, y=y)
    return {str(c): round(float(x), 6) for c, x in zip(classes, w)}


def target_counts(counts: dict[str, int], target: Any, method: str) -> dict[str, int]:
    """Resolve ``target`` into the number of rows each class should have after resampling."""
    if not counts:
        return {}
    big, small = max(counts.values()), min(counts.values())
    over = method in OVER
    if target == "auto":
        return {c: (big if over else small) for c in counts}
    if isinstance(target, (int, float)) and not isinstance(target, bool):
        if over:
            return {c: max(n, math.ceil(target * big)) for c, n in counts.items()}
        return {c: min(n, math.floor(small / target)) for c, n in counts.items()}
    out = dict(counts)
    for c, n in target.items():
        if c not in counts:
            raise DataError(f"balance: target names class {c!r}, which is not in the data "
                            f"(classes: {', '.join(counts)})")
        if over and n < counts[c]:
            raise DataError(f"balance: {method} cannot reduce class {c!r} from {counts[c]} to {n} rows; "
                            "use an undersampling method")
        if not over and n > counts[c]:
            raise DataError(f"balance: {method} cannot grow class {c!r} from {counts[c]} to {n} rows; "
                            "use an oversampling method")
        out[c] = int(n)
    return out


@register_step("balance")
class Balance(Step):
    """Resample the table towards a class distribution; record distributions and class weights."""

    Config = BalanceConfig
    scope = "global"
    version = "1"

    def process(self, df: pl.DataFrame, ctx: StepContext) -> StepResult:
        cfg: BalanceConfig = self.config  # type: ignore[assignment]
        R.require_column(df, cfg.label, "step balance", "label column")
        if isinstance(df.schema[cfg.label], (pl.List, pl.Array)):
            raise DataError(f"step balance: label column {cfg.label!r} holds lists (multi-label); "
                            "balance needs one label per row")
        labelled = df.filter(pl.col(cfg.label).is_not_null())
        unlabelled = df.filter(pl.col(cfg.label).is_null())
        before = label_counts(df[cfg.label])
        stats: dict[str, Any] = {"method": cfg.method, "before": before,
                                 "class_weights": class_weights(df[cfg.label])}
        if unlabelled.height:
            stats["unlabelled_passed_through"] = unlabelled.height
        if cfg.method == "none" or len(before) < 2:
            if cfg.method != "none":
                stats["note"] = "fewer than two classes: nothing to balance"
            stats["after"] = before
            stats["class_weights_after"] = stats["class_weights"]
            return StepResult(kept=df, rejected=R.empty_rejects(df), stats=stats)
        if cfg.method == "tomek" and cfg.target != "auto":
            raise DataError("step balance: method tomek removes Tomek links from the non-minority "
                            "classes and only accepts target: auto")
        goal = target_counts(before, cfg.target, cfg.method)
        if cfg.method != "tomek":
            stats["target"] = goal
        y = labelled[cfg.label].cast(pl.String).to_numpy()

        self._info: dict[str, Any] = {}
        if cfg.method in UNDER:
            keep_idx = self._undersample(labelled, y, goal, cfg, ctx)
            stats.update(self._info)
            mask = np.zeros(labelled.height, dtype=bool)
            mask[keep_idx] = True
            mask_s = pl.Series("_keep", mask)
            kept = R.concat([labelled.filter(mask_s), unlabelled])
            drop = labelled.filter(~mask_s)
            after = label_counts(kept[cfg.label])
            lab = pl.col(cfg.label).cast(pl.String)
            rejected = R.reject(drop, self.name, "undersampled", pl.format(
                f"{cfg.method}: class {{}} {{}} -> {{}} rows", lab,
                lab.replace_strict(before, return_dtype=pl.String),
                lab.replace_strict(after, default=0, return_dtype=pl.String)))
        elif cfg.method == "oversample":
            kept = R.concat([self._oversample(labelled, y, goal, ctx), unlabelled])
            rejected = R.empty_rejects(df)
        else:
            new_rows, rejected, smote_stats = smote_rows(labelled, y, goal, cfg, ctx, self.name)
            stats.update(smote_stats)
            kept = R.concat([labelled, new_rows, unlabelled])
        stats["after"] = label_counts(kept[cfg.label])
        stats["class_weights_after"] = class_weights(kept[cfg.label])
        return StepResult(kept=kept, rejected=rejected if rejected.height else R.empty_rejects(df),
                          stats=stats)

    # -------------------------------------------------------------- samplers
    def _oversample(self, df: pl.DataFrame, y: np.ndarray, goal: dict[str, int],
                    ctx: StepContext) -> pl.DataFrame:
        from imblearn.over_sampling import RandomOverSampler
        strategy = {c: n for c, n in goal.items()}
        sampler = RandomOverSampler(sampling_strategy=strategy, random_state=ctx.seed)
        sampler.fit_resample(np.arange(len(y)).reshape(-1, 1), y)
        extra = np.asarray(sampler.sample_indices_[len(y):], dtype=np.int64)
        return with_copies(df, extra, "os")

    def _undersample(self, df: pl.DataFrame, y: np.ndarray, goal: dict[str, int],
                     cfg: BalanceConfig, ctx: StepContext) -> np.ndarray:
        if cfg.method == "undersample":
            from imblearn.under_sampling import RandomUnderSampler
            s = RandomUnderSampler(sampling_strategy=goal, random_state=ctx.seed)
            s.fit_resample(np.arange(len(y)).reshape(-1, 1), y)
            return np.asarray(s.sample_indices_)
        X = embeddings(df, cfg)
        if cfg.method == "tomek":
            from imblearn.under_sampling import TomekLinks
            s = TomekLinks(sampling_strategy="auto")
            s.fit_resample(X, y)
            return np.asarray(s.sample_indices_)
        from imblearn.under_sampling import ClusterCentroids
        from sklearn.cluster import KMeans
        X64 = X.astype(np.float64)
        have = label_counts(pl.Series(y))
        reduce = {c: n for c, n in goal.items() if n < have.get(c, 0)}
        keep = np.flatnonzero(~np.isin(y, list(reduce))).tolist()
        if not reduce:
            return np.asarray(keep, dtype=np.int64)
        s = ClusterCentroids(sampling_strategy=reduce, voting="hard", random_state=ctx.seed,
                             estimator=KMeans(n_init=3, random_state=ctx.seed))
        Xr, yr = s.fit_resample(X64, y)
        # Hard voting returns real rows (the nearest to each centroid); map them back to their
        # indices by exact vector match. Two centroids can share a nearest row: the shortfall is
        # topped up with random rows of the class (seeded) and counted in the stats.
        lookup: dict[bytes, list[int]] = {}
        for i in np.flatnonzero(np.isin(y, list(reduce))):
            lookup.setdefault(X64[i].tobytes(), []).append(int(i))
        chosen: dict[str, list[int]] = {c: [] for c in reduce}
        for row, c in zip(Xr, yr):
            bucket = lookup.get(row.tobytes())
            if c in reduce and bucket:
                chosen[c].append(bucket.pop(0))
        rng = np.random.default_rng(ctx.seed)
        for c, n in reduce.items():
            short = n - len(chosen[c])
            if short > 0:
                rest = np.setdiff1d(np.flatnonzero(y == c), chosen[c])
                chosen[c] += rng.choice(rest, size=short, replace=False).tolist()
                self._info["cluster_centroids_topped_up"] = {
                    **self._info.get("cluster_centroids_topped_up", {}), c: int(short)}
            keep += chosen[c]
        return np.asarray(sorted(keep), dtype=np.int64)


def with_copies(df: pl.DataFrame, parent_idx: np.ndarray, tag: str) -> pl.DataFrame:
    """Originals (``parent_id`` null) followed by copies of ``df[parent_idx]`` with ids
    ``<parent id>-<tag><k>`` (k counts the copies of each parent from 1)."""
    base = df.with_columns(pl.lit(None, dtype=pl.String).alias("parent_id")) if "parent_id" not in df.columns else df
    if len(parent_idx) == 0:
        return base
    copies = df[parent_idx.tolist()]
    # Number after copies made earlier (e.g. by a previous balance step), so ids stay unique.
    prev = (df.select(pl.col(R.ID).str.extract_groups(rf"^(?<p>.*)-{tag}(?<k>\d+)$").alias("m"))
            .unnest("m").drop_nulls().group_by("p").agg(pl.col("k").cast(pl.Int64).max().alias("_k0")))
    k = pl.int_range(1, pl.len() + 1).over(R.ID)
    copies = (copies.join(prev, left_on=R.ID, right_on="p", how="left", maintain_order="left")
              .with_columns(pl.col(R.ID).alias("parent_id"))
              .with_columns((pl.col(R.ID) + f"-{tag}" + (k + pl.col("_k0").fill_null(0)).cast(pl.String))
                            .alias(R.ID))
              .drop("_k0"))
    return R.concat([base, copies])


def embeddings(df: pl.DataFrame, cfg: BalanceConfig) -> np.ndarray:
    """Row embeddings: the ``embedding_column`` if given, else :func:`curate.embed.embed` of text."""
    if cfg.embedding_column:
        if cfg.embedding_column not in df.columns:
            raise DataError(f"step balance: embedding_column {cfg.embedding_column!r} not found")
        return np.asarray(df[cfg.embedding_column].to_list(), dtype=np.float32)
    if cfg.text not in df.columns:
        raise DataError(f"step balance: method {cfg.method} embeds column {cfg.text!r}, which is missing; "
                        f"columns are: {', '.join(map(repr, df.columns))}")
    texts = df[cfg.text].cast(pl.String).fill_null("").to_list()
    return cached_embed(texts, cfg.embed_model)


_EMBED_CACHE: dict[tuple[str | None, str], np.ndarray] = {}


def cached_embed(texts: list[str], model: str | None) -> np.ndarray:
    """:func:`curate.embed.embed`, memoised per process for the last few text lists (several
    balance runs over the same table, e.g. comparing methods, embed it once)."""
    import xxhash

    from curate.embed import embed
    key = (model, xxhash.xxh3_128_hexdigest("\x1f".join(texts).encode()))
    if key not in _EMBED_CACHE:
        if len(_EMBED_CACHE) >= 4:
            _EMBED_CACHE.pop(next(iter(_EMBED_CACHE)))
        _EMBED_CACHE[key] = embed(texts, model)
    return _EMBED_CACHE[key]


# ============================================================== SMOTE -> text rows
SMOTE_PROMPT = (
    "Here are two examples of the class \"{label}\".\n\nExample 1:\n{a}\n\nExample 2:\n{b}\n\n"
    "Write one new example of the same class that lies between them in meaning and style "
    "(about {w:.0%} of the way from example 1 to example 2). Reply with the example only.")


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


def _label_predictor(cfg: BalanceConfig, X: np.ndarray, y: np.ndarray):
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


def smote_rows(df: pl.DataFrame, y: np.ndarray, goal: dict[str, int], cfg: BalanceConfig,
               ctx: StepContext, step: str) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]]:
    """SMOTE (or a variant) on sentence embeddings, then one real text row per synthetic point.

    For each synthetic vector ``s = x_a + w (x_b - x_a)`` imbalanced-learn produced, the parents
    ``a``/``b`` and ``w`` are recovered exactly (:func:`recover_parents`). The text comes from the
    configured generator: with ``llm`` set, a prompt showing both parents asks for a new example
    between them; otherwise the ``generator`` augmenter rewrites the *nearer* parent
    (``a`` if ``w < 0.5``). The text is kept only if (1) it is non-empty and differs from its
    parent (cosine < ``max_parent_similarity``), (2) its embedding is close to the synthetic point
    (cosine >= ``min_point_similarity``) and (3) its label is preserved (``label_check``). Up to
    ``attempts`` tries (new seeds) per point; points that never pass are rejected with the reason.
    Rows carry ``parent_id`` (the rewritten parent), ``parents`` [a, b], ``smote_weight`` (w),
    ``augmenter`` (the generator and its parameters) and ``point_similarity``.
    """
    X = embeddings(df, cfg).astype(np.float64)
    ids = df[R.ID].to_list()
    counts = label_counts(pl.Series(y))
    stats: dict[str, Any] = {"smote": {"synthetic_points": {}, "fallbacks": {}, "k_neighbors": {}}}
    sm = stats["smote"]
    pa, pb, pw, pts, pcls, pres = [], [], [], [], [], []
    copies_idx: list[int] = []
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
            rng = np.random.default_rng(ctx.seed)
            copies_idx += rng.choice(cls_idx, size=want - have, replace=True).tolist()
            sm["fallbacks"][c] = "random_copies (single-row class)"
            continue
        sm["k_neighbors"][c] = k
        method = cfg.method
        try:
            sampler = _smote_sampler(method, c, want, k, ctx.seed)
            Xr, _ = sampler.fit_resample(X, y)
        except (ValueError, RuntimeError) as e:
            if method == "smote":
                raise
            sm["fallbacks"][c] = f"smote ({method} failed: {str(e)[:120]})"
            Xr, _ = _smote_sampler("smote", c, want, k, ctx.seed).fit_resample(X, y)
        S = Xr[len(X):]
        sm["synthetic_points"][c] = int(len(S))
        if not len(S):
            continue
        a, b, w, res = recover_parents(S, X[cls_idx], k)
        pa.append(cls_idx[a]); pb.append(cls_idx[b]); pw.append(w); pts.append(S)
        pcls += [c] * len(S); pres.append(res)
    copies = with_copies(df, np.asarray(copies_idx, dtype=np.int64), "os").filter(pl.col("parent_id").is_not_null()) \
        if copies_idx else pl.DataFrame()
    if not pts:
        return copies, R.empty_rejects(df), stats
    A, B, W, P, RES = (np.concatenate(pa), np.concatenate(pb), np.concatenate(pw),
                       np.concatenate(pts), np.concatenate(pres))
    C = np.asarray(pcls)
    sm["parents_recovered"] = int((RES < 1e-3).sum())
    sm["max_parent_residual"] = float(RES.max())
    near = np.where(W < 0.5, A, B)
    texts = df[cfg.text].cast(pl.String).fill_null("").to_list()
    P_hat = P / np.maximum(np.linalg.norm(P, axis=1, keepdims=True), 1e-12)
    predict = _label_predictor(cfg, X.astype(np.float32), y)

    if cfg.llm is not None:
        gen_params = {"generator": "llm", **{k: v for k, v in cfg.llm.items() if "key" not in k}}
        generate = lambda idx, seed: _llm_generate(  # noqa: E731
            cfg.llm, [SMOTE_PROMPT.format(label=C[i], a=texts[A[i]], b=texts[B[i]], w=W[i]) for i in idx], seed)
    else:
        from curate.augmenters._base import build_augmenter
        aug = build_augmenter(cfg.generator)
        gen_params = {"generator": "augmenter", **aug.params()}
        generate = lambda idx, seed: aug.augment([texts[near[i]] for i in idx], seed)  # noqa: E731
    from curate.embed import embed

    m = len(P)
    out_text: list[str | None] = [None] * m
    out_sim = np.full(m, np.nan)
    why: list[str] = ["not generated"] * m
    todo = np.arange(m)
    tries = np.zeros(m, dtype=np.int64)
    for attempt in range(cfg.attempts):
        if not len(todo):
            break
        cand = generate(todo.tolist(), ctx.seed * 1000 + attempt)
        tries[todo] += 1
        ok_idx = [j for j, t in zip(todo, cand) if t and t.strip()]
        for j, t in zip(todo, cand):
            if not (t and t.strip()):
                why[j] = "smote_no_text (the generator produced no variant of the parent)"
        if ok_idx:
            ctext = {j: t for j, t in zip(todo, cand)}
            E = embed([ctext[j] for j in ok_idx], cfg.embed_model).astype(np.float64)
            oi = np.asarray(ok_idx)
            point_sim = (E * P_hat[oi]).sum(1)
            par = X[near[oi]]
            parent_sim = (E * par).sum(1) / np.maximum(np.linalg.norm(par, axis=1), 1e-12)
            labels = predict(E.astype(np.float32), [ctext[j] for j in ok_idx]) if predict else C[oi]
            for r, j in enumerate(oi):
                out_sim[j] = point_sim[r]
                if parent_sim[r] >= cfg.max_parent_similarity or ctext[j].strip() == texts[near[j]].strip():
                    why[j] = f"smote_copy_of_parent (similarity {parent_sim[r]:.3f})"
                elif point_sim[r] < cfg.min_point_similarity:
                    why[j] = f"smote_far_from_point (similarity {point_sim[r]:.3f} < {cfg.min_point_similarity})"
                elif str(labels[r]) != C[j]:
                    why[j] = f"smote_label_changed (predicted {labels[r]!r}, expected {C[j]!r})"
                else:
                    why[j] = ""
                    out_text[j] = ctext[j]
        todo = np.asarray([j for j in todo if why[j]], dtype=np.int64)
    # ------------------------------------------------------------ build rows
    base = df[near.tolist()]
    k = pl.int_range(1, pl.len() + 1).over("parent_id")
    gen_json = __import__("json").dumps(gen_params, sort_keys=True, default=str)
    rows = base.with_columns(
        pl.col(R.ID).alias("parent_id"),
        pl.Series("parents", [[ids[a], ids[b]] for a, b in zip(A, B)], dtype=pl.List(pl.String)),
        pl.Series("smote_weight", W.round(6)),
        pl.Series("smote_method", [cfg.method] * m),
        pl.lit(gen_json).alias("augmenter"),
        pl.Series("point_similarity", out_sim.round(6)),
        pl.Series("_text", [t if t is not None else "" for t in out_text]),
        pl.Series("_why", why),
    ).with_columns((pl.col("parent_id") + "-sm" + k.cast(pl.String)).alias(R.ID),
                   pl.col("_text").alias(cfg.text))
    # Failed points are rejected with the candidate text (empty if none) and why they failed.
    good = rows.filter(pl.col("_why") == "").drop("_text", "_why")
    bad = rows.filter(pl.col("_why") != "")
    rejected = R.reject(bad, step, pl.col("_why").str.extract(r"^(\S+)", 1), pl.col("_why")
                        ).drop("_text", "_why")
    sm["attempts_used"] = {str(t): int((tries == t).sum()) for t in np.unique(tries)}
    sm["accepted"] = good.height
    sm["rejected"] = rejected.height
    sm["acceptance_rate"] = round(good.height / m, 4)
    sm["rejected_by_reason"] = label_counts(rejected[R.REASON]) if rejected.height else {}
    new = R.concat([good, copies]) if copies.height else good
    return new, rejected, stats
