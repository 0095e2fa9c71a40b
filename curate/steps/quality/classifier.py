"""``classifier_filter``: run any sequence-classification model (a toxicity, quality or topic
classifier; a HF name or a local path) over a column, batched, and reject rows whose
probability for one label crosses a threshold. The score is kept as a column.

    steps:
      - classifier_filter:
          model: unitary/toxic-bert          # any AutoModelForSequenceClassification
          label: toxic                       # label name (config.id2label) or index
          threshold: 0.5
          reject: above                      # or `below` (e.g. an "educational" score)
          score_column: toxicity

Reason ``classifier_<label>``, detail the score. Tests use a tiny random model.
"""
from __future__ import annotations

import polars as pl
from pydantic import Field

from curate import records as R
from curate.errors import StepError
from curate.registry import register_step
from curate.step import Filter, StepConfig


class ClassifierFilterConfig(StepConfig):
    """Which model, which label, where the line is."""

    model: str = Field(description="HF model name or local path of a sequence-classification model.")
    column: str = Field(default="text", description="Column classified.")
    label: str | int = Field(default=1, description="Label whose probability is compared (name from id2label, or index).")
    threshold: float = Field(default=0.5, ge=0, le=1, description="Probability threshold.")
    reject: str = Field(default="above", pattern="^(above|below)$", description="Reject rows scoring above (or below) the threshold.")
    multi_label: bool = Field(default=False, description="Sigmoid per label instead of softmax over labels.")
    score_column: str | None = Field(default=None, description="Keep the probability in this column (default: `<label>_score`).")
    batch_size: int = Field(default=32, ge=1, description="Texts per forward pass (sorted by length).")
    max_length: int = Field(default=512, ge=8, description="Tokens per text (longer texts are truncated).")
    device: str | None = Field(default=None, description="cpu, cuda, ... (default: cuda if available).")


@register_step("classifier_filter")
class ClassifierFilter(Filter):
    """Reject rows a classifier scores above (or below) a threshold for one label."""

    Config = ClassifierFilterConfig
    costly = True

    def _label(self) -> tuple[int, str]:
        from curate.steps.quality._models import label_names
        names = label_names(self.config.model, self.config.device)
        lab = self.config.label
        if isinstance(lab, int) or (isinstance(lab, str) and lab.isdigit() and lab not in names):
            i = int(lab)
            if not 0 <= i < len(names):
                raise StepError(f"classifier_filter: label index {i} out of range; the model has {names}")
            return i, names[i]
        if lab not in names:
            raise StepError(f"classifier_filter: label {lab!r} not among the model's labels {names}")
        return names.index(lab), lab

    @property
    def score_column(self) -> str:
        return self.config.score_column or f"{self._label()[1]}_score".lower()

    def prepare(self, df, ctx):
        from curate.steps.quality._models import classify
        c = self.config
        R.require_column(df, c.column, "step classifier_filter")
        i, _ = self._label()
        probs = classify(df.get_column(c.column).fill_null("").to_list(), c.model, batch_size=c.batch_size,
                         max_length=c.max_length, device=c.device, multi_label=c.multi_label)
        return df.with_columns(pl.Series(self.score_column, probs[:, i], dtype=pl.Float64))

    def filters(self):
        s, t = pl.col(self.score_column), self.config.threshold
        keep = s <= t if self.config.reject == "above" else s >= t
        return [(f"classifier_{self._label()[1]}", keep)]

    def details(self):
        return {f"classifier_{self._label()[1]}": pl.col(self.score_column).round(4)}
