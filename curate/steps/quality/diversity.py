"""``diversity_report``: measure how varied the data is, without removing anything — distinct-n
(unique n-grams ÷ n-grams, over the whole table), and embedding clusters: how evenly the rows
cover them and which clusters are rarest (so rare cases are visible before ``balance``).

    steps:
      - diversity_report:
          column: text
          n: [1, 2, 3]
          clusters: 20              # k-means on MiniLM embeddings (0 = skip embeddings)
          rarest: 5                 # clusters listed with their size and example rows
          cluster_column: cluster   # optional: keep each row's cluster id

Manifest stats: ``distinct_1`` …, ``clusters`` (k), ``cluster_sizes`` (largest first),
``cluster_coverage`` (effective number of clusters, exp(entropy), ÷ k: 1.0 = even),
``small_clusters`` (clusters under ``min_cluster_share`` of the rows) and ``rarest_clusters``.
"""
from __future__ import annotations

import math

import numpy as np
import polars as pl
from pydantic import Field, model_validator

from curate import records as R
from curate.embed import EmbedConfig, fold_embed_keys
from curate.registry import register_step
from curate.step import Step, StepConfig, StepContext, StepResult

_SEED = 0x5EED


class DiversityConfig(StepConfig):
    """What to measure."""

    column: str = Field(default="text", description="Column measured.")
    n: list[int] = Field(default_factory=lambda: [1, 2, 3], description="n-gram sizes for distinct-n.")
    clusters: int = Field(default=20, ge=0, description="k of k-means over embeddings (0 = no embeddings).")
    rarest: int = Field(default=5, ge=0, description="How many of the smallest clusters to list.")
    examples: int = Field(default=2, ge=0, description="Example rows listed per rare cluster.")
    min_cluster_share: float = Field(default=0.01, ge=0, le=1, description="Clusters below this share of rows count as small.")
    cluster_column: str | None = Field(default=None, description="Keep each row's cluster id in this column.")
    embedding: EmbedConfig = Field(default_factory=EmbedConfig, description="Encoder: model, backend, "
                                   "batch_size, device (flat `model`/`batch_size` also accepted).")

    @model_validator(mode="before")
    @classmethod
    def _flat_embed_keys(cls, data):
        return fold_embed_keys(data, {"model": "model", "batch_size": "batch_size"})


def distinct_n(texts: pl.Series, ns: list[int]) -> dict[str, float]:
    """Unique n-grams ÷ n-grams over all texts (lower-cased ``\\w+`` words), per n."""
    words = (pl.DataFrame({"t": texts.fill_null("").str.to_lowercase()}).with_row_index("row")
             .select("row", w=pl.col("t").str.extract_all(r"\w+")).explode("w").drop_nulls("w")
             .with_columns(h=pl.col("w").hash(_SEED)))
    out = {}
    for n in sorted(set(ns)):
        keys = [pl.col("h").shift(-j).alias(f"h{j}") for j in range(n)]
        same = pl.all_horizontal([(pl.col("row").shift(-j) == pl.col("row")) for j in range(1, n)]) if n > 1 else pl.lit(True)
        g = words.select(k=pl.struct(keys).hash(_SEED), ok=same.fill_null(False)).filter(pl.col("ok"))
        out[f"distinct_{n}"] = round(g["k"].n_unique() / g.height, 4) if g.height else 0.0
    return out


@register_step("diversity_report")
class DiversityReport(Step):
    """Report distinct-n and embedding-cluster coverage; every row passes through."""

    Config = DiversityConfig
    scope = "global"

    def process(self, df: pl.DataFrame, ctx: StepContext) -> StepResult:
        c = self.config
        R.require_column(df, c.column, "step diversity_report")
        texts = df.get_column(c.column).fill_null("")
        stats: dict = {"rows": df.height, **distinct_n(texts, c.n)}
        if c.clusters and df.height:
            labels, cstats = self._clusters(df, texts, ctx)
            stats.update(cstats)
            if c.cluster_column:
                df = df.with_columns(pl.Series(c.cluster_column, labels, dtype=pl.Int32))
        return StepResult(kept=df, rejected=R.empty_rejects(df), stats=stats)

    def merge_stats(self, stats):
        return stats[0] if len(stats) == 1 else super().merge_stats(stats)

    def _clusters(self, df: pl.DataFrame, texts: pl.Series, ctx: StepContext):
        from sklearn.cluster import KMeans

        c = self.config
        vecs = c.embedding.embed(texts.to_list())
        k = min(c.clusters, df.height)
        labels = KMeans(n_clusters=k, n_init=3, random_state=ctx.seed).fit_predict(vecs) if k > 1 \
            else np.zeros(df.height, dtype=np.int64)
        sizes = np.bincount(labels, minlength=k)
        p = sizes[sizes > 0] / sizes.sum()
        coverage = math.exp(float(-(p * np.log(p)).sum())) / k
        order = np.argsort(sizes, kind="stable")
        rare = []
        ids = df.get_column(R.ID).to_list() if R.ID in df.columns else [str(i) for i in range(df.height)]
        tx = texts.to_list()
        for cl in order[:c.rarest]:
            members = np.flatnonzero(labels == cl)[:c.examples]
            rare.append({"cluster": int(cl), "size": int(sizes[cl]),
                         "share": round(float(sizes[cl]) / df.height, 4),
                         "examples": [{"id": ids[i], "text": tx[i][:120]} for i in members]})
        return labels, {"clusters": int(k), "cluster_sizes": sorted(map(int, sizes), reverse=True),
                        "cluster_coverage": round(coverage, 4),
                        "small_clusters": int((sizes < c.min_cluster_share * df.height).sum()),
                        "rarest_clusters": rare}
