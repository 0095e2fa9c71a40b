"""The ``dedup`` step: exact, near (MinHash-LSH) and semantic duplicates, in that order.

```yaml
- dedup: {columns: [text], keep: longest}                          # exact only
- dedup: {exact: true, near: {method: minhash, threshold: 0.8}}    # + near duplicates
- dedup: {semantic: {threshold: 0.92}}                             # + embedding duplicates
```
Each stage runs on the rows the previous one kept. Every rejected row carries ``duplicate_of``
(the kept row's id), ``similarity`` (1.0 exact; estimated or true Jaccard; cosine) and a reason
``exact_duplicate`` / ``near_duplicate`` / ``semantic_duplicate`` with a readable ``detail``.

Memory: with exact and near stages only, the engine hands the step its input table and the step
reads it part by part (:meth:`Dedup.process_table`, :mod:`.streamed`): a part's texts become a
128-bit exact key, a rank for the keep policy and OPH band keys (spilled to disk), and are
dropped; verification re-reads the texts of candidate rows only. About 50 bytes per row in
memory, none of them text, and the same decisions as :meth:`Dedup.process`, which the Ray
executor and ``semantic`` (embeddings of every row) still use on one frame.
"""
from __future__ import annotations

import time
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field

from curate import records as R
from curate.registry import register_step
from curate.step import Step, StepConfig, StepContext, StepResult, TableResult

from ._clusters import connected_components, keepers, split_rows
from ._text import Normalize, check_columns, joined, normalize_series
from .exact import exact_key, exact_labels
from .minhash import NearConfig, near_pairs
from .semantic import SemanticConfig, cosine_pairs, embeddings


class DedupConfig(StepConfig):
    """Options of the ``dedup`` step."""

    columns: list[str] = Field(default_factory=lambda: ["text"], min_length=1,
                               description="Columns compared (joined with a newline).")
    normalize: Normalize = Field(default_factory=Normalize,
                                 description="Canonicalisation applied before comparing.")
    keep: Literal["first", "longest", "score"] = Field(
        default="first", description="Which member of a duplicate cluster survives: the first in "
        "row order, the longest text, or the highest `score_column` (ties: first).")
    score_column: str | None = Field(default=None, description="Numeric quality column for keep: score.")
    exact: bool = Field(default=True, description="Remove exact duplicates (after normalisation).")
    near: NearConfig | None = Field(default=None, description="Near duplicates by MinHash-LSH "
                                    "(e.g. `{method: minhash, threshold: 0.8}`); off when unset.")
    semantic: SemanticConfig | None = Field(default=None, description="Duplicates by sentence-"
                                            "embedding cosine (e.g. `{threshold: 0.92}`); off when unset.")


def _point_to_survivors(rej: pl.DataFrame) -> pl.DataFrame:
    """When a later stage removes the row an earlier duplicate pointed to, re-point the earlier
    duplicate to the surviving row (chains are at most one hop per stage) and say so."""
    hop = rej.select(pl.col(R.ID).alias("duplicate_of"), pl.col("duplicate_of").alias("_next"))
    out = rej.with_columns(pl.lit(None, dtype=pl.String).alias("_via"))
    for _ in range(3):
        out = out.join(hop, on="duplicate_of", how="left", maintain_order="left")
        moved = pl.col("_next").is_not_null()
        out = out.with_columns(
            pl.when(moved).then(pl.col("duplicate_of")).otherwise(pl.col("_via")).alias("_via"),
            pl.when(moved).then(pl.col("_next")).otherwise(pl.col("duplicate_of")).alias("duplicate_of"),
        ).drop("_next")
    return out.with_columns(
        pl.when(pl.col("_via").is_not_null())
        .then(pl.format("{}; kept row is now {} (row {} was removed later)", pl.col(R.DETAIL),
                        pl.col("duplicate_of"), pl.col("_via")))
        .otherwise(pl.col(R.DETAIL)).alias(R.DETAIL)).drop("_via")


@register_step("dedup")
class Dedup(Step):
    """Remove duplicates and explain each removal (see module docstring)."""

    Config = DedupConfig
    scope = "global"
    version = "1"
    memory = ("exact + near: the input is read part by part and never held; per row a 128-bit "
              "exact key, the keep policy's rank and a few masks and indices (~50 bytes), band keys spilled to "
              "disk in key ranges, texts re-read only for candidate pairs (below 128 MiB of signatures, "
              "i.e. ~250k rows, signatures and shingles are kept instead; curate.steps.dedup.streamed). With semantic: the whole input frame, texts and embeddings included.")

    def process_table(self, table, ctx: StepContext) -> TableResult | None:
        """Exact and near dedup over the table part by part (:mod:`.streamed`); None (the whole
        frame, :meth:`process`) when ``semantic`` is set or the near backend is not OPH."""
        from .streamed import StreamedDedup, supported
        if not supported(self.config):
            return None
        return StreamedDedup(self, table, ctx).run()

    def process(self, df: pl.DataFrame, ctx: StepContext) -> StepResult:
        cfg = self.config
        check_columns(df, cfg.columns, self.name)
        if cfg.keep == "score":
            check_columns(df, [cfg.score_column or "<score_column unset>"], self.name)
        stats: dict[str, Any] = {"duplicates": 0, "clusters": 0}
        rejected: list[pl.DataFrame] = []
        kept = df
        t0 = time.time()
        # the compared text is normalised once, here, and shared by the exact and near stages
        norm = (normalize_series(df.select(exact_key(cfg.columns).alias("t"))["t"], cfg.normalize)
                if cfg.exact or cfg.near is not None else None)
        stats["normalize_seconds"] = round(time.time() - t0, 3)
        for stage in self._stages():
            t0 = time.time()
            kept, rej, st, keep_mask = stage(kept, ctx, norm)
            if norm is not None and keep_mask is not None:
                norm = norm.filter(keep_mask)
            st["seconds"] = round(time.time() - t0, 3)
            stats[st.pop("stage")] = st
            stats["duplicates"] += st["duplicates"]
            stats["clusters"] += st["clusters"]
            if rej.height:
                rejected.append(rej)
        rej = R.concat(rejected) if rejected else R.empty_rejects(df)
        if len(rejected) > 1:
            rej = _point_to_survivors(rej)
        return StepResult(kept=kept, rejected=rej, stats=stats)

    def _stages(self) -> list:
        cfg = self.config
        stages = []
        if cfg.exact:
            stages.append(self._exact)
        if cfg.near is not None:
            stages.append(self._near)
        if cfg.semantic is not None:
            stages.append(self._semantic)
        return stages

    # ------------------------------------------------------------------ stages
    def _resolve(self, df: pl.DataFrame, labels, reason: str, sim: np.ndarray | None,
                 detail: pl.Expr) -> tuple[pl.DataFrame, pl.DataFrame, np.ndarray]:
        cfg = self.config
        keep_idx = keepers(df, labels, cfg.keep, cfg.columns, cfg.score_column, self.name)
        kept, rej = split_rows(df, keep_idx, self.name, reason, sim, detail)
        return kept, rej, keep_idx

    def _exact(self, df: pl.DataFrame, ctx: StepContext, norm: pl.Series):
        labels = exact_labels(df, self.config.columns, self.config.normalize, key=norm)
        detail = pl.format("exact duplicate of {} (cluster of {})", pl.col("duplicate_of"), pl.col("_size"))
        kept, rej, keep_idx = self._resolve(df, labels, "exact_duplicate", None, detail)
        clusters = labels.drop_nulls().n_unique()
        return (kept, rej, {"stage": "exact", "duplicates": rej.height, "clusters": clusters},
                pl.Series(keep_idx == np.arange(df.height)))

    def _near(self, df: pl.DataFrame, ctx: StepContext, norm: pl.Series):
        cfg, near = self.config, self.config.near
        text = norm
        single = cfg.normalize.collapse_whitespace
        if len(cfg.columns) > 1:       # column boundaries (\x1f in the exact key) are word breaks here
            text = norm.str.replace_all("\x1f", " ", literal=True)
            single = False
        res = near_pairs(text, near, ctx.seed, single_spaced=single)
        labels = connected_components(df.height, res.left, res.right)
        keep_idx = keepers(df, labels, cfg.keep, cfg.columns, cfg.score_column, self.name)
        dup = np.flatnonzero(keep_idx != np.arange(df.height))
        sim = np.ones(df.height)
        sim[dup] = res.score(dup, keep_idx[dup], near.verify)
        how = {"jaccard": "Jaccard", "signature": "estimated Jaccard", "none": "estimated Jaccard"}[near.verify]
        detail = pl.format(f"near duplicate of {{}} ({how} {{}} over {near.ngram}-{near.unit} shingles, "
                           "cluster of {})", pl.col("duplicate_of"), pl.col("similarity").round(3),
                           pl.col("_size"))
        kept, rej = split_rows(df, keep_idx, self.name, "near_duplicate", sim, detail)
        bands, rows = res.layout
        clusters = int(np.unique(labels[labels >= 0]).size)
        hist = np.histogram(sim[dup], bins=[0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0000001])[0] if len(dup) else None
        st = {"stage": "near", "duplicates": rej.height, "clusters": clusters,
              "candidate_pairs": int(res.candidates), "verified_pairs": int(len(res.left)),
              "bands": bands, "rows": rows, "backend": res.backend, "verify": near.verify}
        if hist is not None:
            st["similarity_histogram"] = {f"{lo}-{hi}": int(c) for lo, hi, c in
                                          zip(["0", "0.5", "0.6", "0.7", "0.8", "0.9"],
                                              ["0.5", "0.6", "0.7", "0.8", "0.9", "1.0"], hist)}
        return kept, rej, st, pl.Series(keep_idx == np.arange(df.height))

    def _semantic(self, df: pl.DataFrame, ctx: StepContext, norm: pl.Series | None):
        cfg, sem = self.config, self.config.semantic
        if sem.embedding_column:
            check_columns(df, [sem.embedding_column], self.name)
        texts = df.select(joined(cfg.columns).fill_null("").alias("t"))["t"].to_list()
        emb = embeddings(df, texts, sem)
        left, right, info = cosine_pairs(emb, sem, ctx.seed)
        labels = connected_components(df.height, left, right)
        keep_idx = keepers(df, labels, cfg.keep, cfg.columns, cfg.score_column, self.name)
        sim = np.einsum("ij,ij->i", emb, emb[keep_idx]).astype(np.float64)
        detail = pl.format("semantic duplicate of {} (cosine {}, cluster of {})", pl.col("duplicate_of"),
                           pl.col("similarity").round(3), pl.col("_size"))
        kept, rej = split_rows(df, keep_idx, self.name, "semantic_duplicate", np.clip(sim, -1, 1), detail)
        clusters = int(np.unique(labels[labels >= 0]).size)
        return kept, rej, {"stage": "semantic", "duplicates": rej.height, "clusters": clusters,
                           "pairs": int(len(left)), "model": sem.model or "all-MiniLM-L6-v2", **info}, None
