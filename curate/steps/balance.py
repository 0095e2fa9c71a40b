"""`balance`: re-sample a labelled table towards a target class distribution.

Methods (all through imbalanced-learn):

* ``oversample`` — RandomOverSampler. Copies get id ``<parent id>-os<k>`` and ``parent_id``.
* ``undersample`` — RandomUnderSampler; ``tomek`` — TomekLinks and ``cluster_centroids`` —
  ClusterCentroids (hard voting, so real rows are kept) on sentence embeddings. Dropped rows
  are *rejected* with reason ``undersampled`` (detail names the method and class).
* ``smote`` / ``borderline_smote`` / ``adasyn`` — computed on sentence embeddings
  (:func:`curate.embed.embed`); each synthetic vector becomes a *distinct* real text row
  (:mod:`curate.steps._smote`: parents, weight, generator seeded per point, gate,
  ``duplicate_realisation``).
* ``none`` — no resampling, only the statistics.

Rows without a label (null or empty) are rejected as ``missing_label`` first: an empty string is
not a class. Every run records ``before``/``after`` label distributions, sklearn's balanced
``class_weights`` (of the input distribution, for cost-sensitive training instead of or on top of
re-sampling) and ``unique_text_ratio`` (distinct texts / rows after the step; oversampled copies
lower it) in the step stats, which the engine puts in the manifest. A run that removes more than
half of the rows adds a warning; ``min_per_class`` and ``max_ratio`` make such runs fail.
"""
from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Union

import numpy as np
import polars as pl
from pydantic import Discriminator, Field, Tag, model_validator

from curate import records as R
from curate.augmenters.spec import (BUILTIN_CONFIGS, AugmenterSpec, CustomAugmenterSpec, LLMSpec,
                                    _spec_name)
from curate.embed import EmbedConfig, fold_embed_keys
from curate.errors import DataError
from curate.registry import register_step
from curate.step import Step, StepConfig, StepContext, StepResult, TableResult, narrow_process
from curate.steps._labels import add_warnings, removal_warning, split_missing_labels, unique_ratio

OVER = ("oversample", "smote", "borderline_smote", "adasyn")
UNDER = ("undersample", "tomek", "cluster_centroids")
EMBEDDING_METHODS = ("tomek", "cluster_centroids", "smote", "borderline_smote", "adasyn")

Ratio = Annotated[float, Field(gt=0, le=1)]
#: A built-in augmenter (typed options, schema) or a registered plug-in one (checked by its Config).
GeneratorSpec = Annotated[
    Union[Annotated[AugmenterSpec, Tag("builtin")], Annotated[CustomAugmenterSpec, Tag("plugin")]],
    Discriminator(lambda v: "builtin" if _spec_name(v) in BUILTIN_CONFIGS else "plugin")]


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
                                  "(for SMOTE it must come from `embedding`'s model: generated texts are "
                                  "embedded with it and compared to the synthetic points).")
    embedding: EmbedConfig = Field(
        default_factory=EmbedConfig, description="Encoder: model, backend, batch_size, device (flat "
                                                 "`embed_model` also accepted).")
    k_neighbors: int = Field(default=5, ge=1, le=100, description="Neighbours for SMOTE variants.")
    small_class: Literal["reduce_k", "error"] = Field(
        default="reduce_k",
        description="SMOTE on a class with <= k_neighbors rows: `reduce_k` uses k = rows - 1 and, for a "
                    "single-row class, falls back to random copies (recorded in stats); `error` raises.")
    generator: GeneratorSpec = Field(
        default_factory=lambda: {"embedding_swap": {}},
        description="SMOTE text generator when no `llm` is set: an augmenter spec applied to the nearer parent "
                    "(a built-in, or any registered plug-in augmenter).")
    llm: LLMSpec | None = Field(
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
    min_per_class: int | None = Field(
        default=None, ge=1, description="Fail when a class ends with fewer rows than this (e.g. "
                                        "undersampling everything down to a tiny minority).")
    max_ratio: float | None = Field(
        default=None, gt=1, description="Fail when a class grows or shrinks by more than this factor "
                                        "(e.g. 10: no class is copied/synthesised past 10x, nor cut below 1/10).")

    @model_validator(mode="before")
    @classmethod
    def _flat_embed_keys(cls, data):
        return fold_embed_keys(data, {"embed_model": "model"})


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
    version = "3"        # 3: oversampled copies follow their parents' order
    memory = ("oversample, undersample, none: reads only the id and label columns (plus parent_id / "
              "derived_by when present) and a 64-bit hash of each text (for the unique-text ratios), "
              "part by part, and holds those for every row; the engine then takes the kept rows and "
              "writes the copies from the parts (curate.step.narrow_process). Embedding methods "
              "(smote, tomek, ...): the whole input frame and its embeddings.")

    def process_table(self, table, ctx: StepContext) -> TableResult | None:
        """:meth:`process` on ids, labels and text hashes (:func:`curate.step.narrow_process`)
        when the method needs no texts; None (the whole frame) for the embedding methods."""
        cfg: BalanceConfig = self.config  # type: ignore[assignment]
        if cfg.method in EMBEDDING_METHODS:
            return None
        have = table.unified_schema()
        cols = [cfg.label] + [c for c in ("parent_id", "derived_by") if c in have and c != cfg.label]
        return narrow_process(self, table, ctx, cols, hashed=[cfg.text])

    def process(self, df: pl.DataFrame, ctx: StepContext) -> StepResult:
        cfg: BalanceConfig = self.config  # type: ignore[assignment]
        R.require_column(df, cfg.label, "step balance", "label column")
        if isinstance(df.schema[cfg.label], (pl.List, pl.Array)):
            raise DataError(f"step balance: label column {cfg.label!r} holds lists (multi-label); "
                            "balance needs one label per row")
        labelled, missing = split_missing_labels(df, cfg.label, self.name)
        before = label_counts(labelled[cfg.label])
        stats: dict[str, Any] = {"method": cfg.method, "before": before,
                                 "class_weights": class_weights(labelled[cfg.label])}
        if missing.height:
            stats["rejected_missing_label"] = missing.height
        if cfg.method == "none" or len(before) < 2:
            if cfg.method != "none":
                stats["note"] = "fewer than two classes: nothing to balance"
            return self._finish(df, labelled, [missing], stats)
        if cfg.method == "tomek" and cfg.target != "auto":
            raise DataError("step balance: method tomek removes Tomek links from the non-minority "
                            "classes and only accepts target: auto")
        goal = target_counts(before, cfg.target, cfg.method)
        if cfg.method != "tomek":
            stats["target"] = goal
        y = labelled[cfg.label].cast(pl.String).to_numpy()

        self._info: dict[str, Any] = {}
        rejected = R.empty_rejects(df)
        if cfg.method in UNDER:
            keep_idx = self._undersample(labelled, y, goal, cfg, ctx)
            stats.update(self._info)
            mask = np.zeros(labelled.height, dtype=bool)
            mask[keep_idx] = True
            mask_s = pl.Series("_keep", mask)
            kept = labelled.filter(mask_s)
            after = label_counts(kept[cfg.label])
            lab = pl.col(cfg.label).cast(pl.String)
            rejected = R.reject(labelled.filter(~mask_s), self.name, "undersampled", pl.format(
                f"{cfg.method}: class {{}} {{}} -> {{}} rows", lab,
                lab.replace_strict(before, return_dtype=pl.String),
                lab.replace_strict(after, default=0, return_dtype=pl.String)))
        elif cfg.method == "oversample":
            kept = self._oversample(labelled, y, goal, ctx)
        else:
            new_rows, rejected, smote_stats = smote_rows(labelled, y, goal, cfg, ctx, self.name)
            stats.update(smote_stats)
            kept = R.concat([labelled, new_rows])
        return self._finish(df, kept, [missing, rejected], stats)

    def _finish(self, df: pl.DataFrame, kept: pl.DataFrame, rejects: list[pl.DataFrame],
                stats: dict[str, Any]) -> StepResult:
        """After-stats (distribution, weights, unique-text ratios), guards and warnings."""
        cfg: BalanceConfig = self.config  # type: ignore[assignment]
        stats["after"] = label_counts(kept[cfg.label])
        stats["class_weights_after"] = class_weights(kept[cfg.label])
        self._guards(stats["before"], stats["after"])
        stats["unique_text_ratio"] = unique_ratio(kept, cfg.text)
        created = kept.filter(pl.col(R.ID).is_in(df[R.ID].implode()).not_()) if kept.height else kept
        if created.height and cfg.text in kept.columns:
            new_texts = created[cfg.text].filter(~created[cfg.text].is_in(df[cfg.text].implode()))
            stats["created_unique_ratio"] = round(new_texts.n_unique() / created.height, 4)
            if stats["created_unique_ratio"] < 1:
                add_warnings(stats, [
                    f"balance ({cfg.method}) created {created.height} rows but only {new_texts.n_unique()} new "
                    "distinct texts; outputs that need unique inputs (natural_instructions) will stop — "
                    "use smote, undersample, or method: none with class_weights"])
        rejected = R.concat([r for r in rejects if r.height])
        removed = rejected.height
        add_warnings(stats, removal_warning(f"balance ({cfg.method})", df.height, removed,
                                            "set min_per_class or max_ratio to make this fatal"))
        return StepResult(kept=kept, rejected=rejected if removed else R.empty_rejects(df), stats=stats)

    def _guards(self, before: dict[str, int], after: dict[str, int]) -> None:
        """``min_per_class`` / ``max_ratio``: stop the build instead of a silent, drastic resample."""
        cfg: BalanceConfig = self.config  # type: ignore[assignment]
        for c, n in after.items():
            if cfg.min_per_class is not None and n < cfg.min_per_class:
                raise DataError(f"step balance ({cfg.method}): class {c!r} ends with {n} rows "
                                f"(from {before.get(c, 0)}), below min_per_class={cfg.min_per_class}")
            b = before.get(c, 0)
            if cfg.max_ratio is not None and b and max(n / b, b / max(n, 1)) > cfg.max_ratio:
                raise DataError(f"step balance ({cfg.method}): class {c!r} goes from {b} to {n} rows, "
                                f"a factor above max_ratio={cfg.max_ratio:g}")

    # -------------------------------------------------------------- samplers
    def _oversample(self, df: pl.DataFrame, y: np.ndarray, goal: dict[str, int],
                    ctx: StepContext) -> pl.DataFrame:
        from imblearn.over_sampling import RandomOverSampler
        strategy = {c: n for c, n in goal.items()}
        sampler = RandomOverSampler(sampling_strategy=strategy, random_state=ctx.seed)
        sampler.fit_resample(np.arange(len(y)).reshape(-1, 1), y)
        # copies in their parents' order (so the engine can take them part by part)
        extra = np.sort(np.asarray(sampler.sample_indices_[len(y):], dtype=np.int64), kind="stable")
        return with_copies(df, extra, "os", "balance (oversample)")

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


def with_copies(df: pl.DataFrame, parent_idx: np.ndarray, tag: str, by: str | None = None) -> pl.DataFrame:
    """Originals (``parent_id`` null) followed by copies of ``df[parent_idx]`` with ids
    ``<parent id>-<tag><k>`` (k counts the copies of each parent from 1) and ``derived_by`` =
    ``by`` (the step that made them: outputs needing unique inputs name it)."""
    base = df.with_columns(pl.lit(None, dtype=pl.String).alias("parent_id")) if "parent_id" not in df.columns else df
    if by is not None and "derived_by" not in base.columns:
        base = base.with_columns(pl.lit(None, dtype=pl.String).alias("derived_by"))
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
    if by is not None:
        copies = copies.with_columns(pl.lit(by, dtype=pl.String).alias("derived_by"))
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
    return cached_embed(texts, cfg.embedding)


_EMBED_CACHE: dict[tuple[str, str], np.ndarray] = {}


def cached_embed(texts: list[str], emb: EmbedConfig) -> np.ndarray:
    """:func:`curate.embed.embed`, memoised per process for the last few text lists (several
    balance runs over the same table, e.g. comparing methods, embed it once)."""
    import xxhash

    key = (f"{emb.model}|{emb.effective_backend()}|{emb.device}",
           xxhash.xxh3_128_hexdigest("\x1f".join(texts).encode()))
    if key not in _EMBED_CACHE:
        if len(_EMBED_CACHE) >= 4:
            _EMBED_CACHE.pop(next(iter(_EMBED_CACHE)))
        _EMBED_CACHE[key] = emb.embed(texts)
    return _EMBED_CACHE[key]


# SMOTE lives in its own module (points -> distinct realised texts); re-exported here.
from curate.steps._smote import recover_parents, smote_rows  # noqa: E402,F401
