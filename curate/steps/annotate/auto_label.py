"""``auto_label``: label rows with an LLM (a zero/few-shot prompt built from the label set and
examples) or a sequence classifier, with a confidence per row; rows below ``min_confidence``
are flagged ``needs_review`` (export them with the ``review_export`` output).

    steps:
      - auto_label:
          method: llm                        # or classifier
          model: Qwen/Qwen2.5-0.5B-Instruct  # backend/base_url/... as in synthesize
          labels: [spam, ham]
          examples: [{text: "WIN a free prize, call 0800", label: spam}, {text: "see you at 6", label: ham}]
          confidence: auto                   # logprob (transformers) | vote (any backend)
          min_confidence: 0.7

Confidence: ``logprob`` scores every label as the completion of the prompt (one batched
``score`` call) and softmaxes the log-likelihoods; ``vote`` samples ``votes`` answers and takes
the share of the most frequent parsed label (works with HTTP servers, which cannot score);
``classifier`` takes the model's probability. Output columns: ``auto_label``, ``confidence``,
``needs_review`` (names configurable). Nothing is removed; batches are resumable.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from curate import records as R
from curate.errors import StepError
from curate.registry import register_step
from curate.step import Step, StepContext, StepResult
from curate.steps.synth._llm_options import LLMOptions


class Example(BaseModel):
    """A labelled example shown in the prompt."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(description="The example text.")
    label: str = Field(description="Its label.")


class AutoLabelConfig(LLMOptions):
    """Model, labels, prompt and the review threshold."""

    method: Literal["llm", "classifier"] = Field(default="llm", description="An LLM prompt, or a sequence-classification model.")
    column: str = Field(default="text", description="Column labelled.")
    labels: list[str] | None = Field(default=None, description="The label set (classifier: default the model's id2label; "
                                     "with generic LABEL_i names, labels[i] renames class i).")
    examples: list[Example] = Field(default_factory=list, description="Few-shot examples (llm).")
    instruction: str | None = Field(default=None, description="Task description (default: built from the labels).")
    confidence: Literal["auto", "logprob", "vote"] = Field(default="auto", description="llm: how confidence is measured (auto: logprob when the backend can score).")
    votes: int = Field(default=5, ge=1, le=64, description="vote: answers sampled per row.")
    answer_tokens: int = Field(default=8, ge=1, le=256, description="vote: tokens generated per answer.")
    min_confidence: float = Field(default=0.7, ge=0, le=1, description="Rows below are flagged needs_review.")
    label_column: str = Field(default="auto_label", description="Output label column.")
    confidence_column: str = Field(default="confidence", description="Output confidence column.")
    review_column: str = Field(default="needs_review", description="Output review flag.")
    max_length: int = Field(default=512, ge=8, description="classifier: tokens per text.")
    batch_size: int = Field(default=32, ge=1, description="classifier: texts per forward pass.")

    @model_validator(mode="after")
    def _labels(self) -> AutoLabelConfig:
        if self.method == "llm" and (not self.labels or len(self.labels) < 2):
            raise ValueError("method llm needs `labels` (at least two)")
        bad = [e.label for e in self.examples if self.labels and e.label not in self.labels]
        if bad:
            raise ValueError(f"examples use labels not in `labels`: {sorted(set(bad))}")
        return self


def build_prompt(cfg: AutoLabelConfig, text: str) -> str:
    """The zero/few-shot classification prompt for one text."""
    labels = cfg.labels or []
    head = cfg.instruction or f"Classify the text into exactly one of these labels: {', '.join(labels)}."
    parts = [head, "Answer with the label only.", ""]
    for ex in cfg.examples:
        parts += [f"Text: {ex.text}", f"Label: {ex.label}", ""]
    parts += [f"Text: {text}", "Label:"]
    return "\n".join(parts)


def parse_label(answer: str, labels: list[str]) -> str | None:
    """The label an answer names: an exact match of its first line, else the first label that
    occurs as a whole word (longest labels tried first)."""
    first = answer.strip().splitlines()[0].strip().strip(".:'\"").lower() if answer.strip() else ""
    low = {lab.lower(): lab for lab in labels}
    if first in low:
        return low[first]
    best = None
    for lab in sorted(labels, key=len, reverse=True):
        m = re.search(rf"(?<!\w){re.escape(lab.lower())}(?!\w)", answer.lower())
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), lab)
    return best[1] if best else None


@register_step("auto_label")
class AutoLabel(Step):
    """Label each row (LLM or classifier) with a confidence; flag low-confidence rows."""

    Config = AutoLabelConfig
    resumable = True

    def process(self, df: pl.DataFrame, ctx: StepContext) -> StepResult:
        c = self.config
        R.require_column(df, c.column, "step auto_label")
        texts = df.get_column(c.column).fill_null("").to_list()
        if not texts:
            labels, conf, mode = [], np.zeros(0), c.method
        elif c.method == "classifier":
            labels, conf, mode = self._classifier(texts) + ("classifier",)
        else:
            labels, conf, mode = self._llm(texts, ctx)
        conf = np.round(np.asarray(conf, dtype=np.float64), 4)
        review = [bool((lab is None) or (cf < c.min_confidence)) for lab, cf in zip(labels, conf)]
        out = df.with_columns(pl.Series(c.label_column, labels, dtype=pl.String),
                              pl.Series(c.confidence_column, conf, dtype=pl.Float64),
                              pl.Series(c.review_column, review, dtype=pl.Boolean))
        stats = {"labelled": sum(lab is not None for lab in labels), "needs_review": int(sum(review)),
                 "label_counts": dict(Counter(lab for lab in labels if lab is not None)),
                 "confidence_sum": float(conf.sum()), "confidence_mode": {mode: len(texts)}}
        return StepResult(kept=out, rejected=R.empty_rejects(df), stats=stats)

    def _classifier(self, texts: list[str]) -> tuple[list[str], np.ndarray]:
        from curate.steps.quality._models import classify, label_names
        c = self.config
        names = label_names(c.model, c.device)
        if c.labels:
            if len(c.labels) != len(names):
                raise StepError(f"auto_label: {len(c.labels)} labels given but the model has {len(names)} classes {names}")
            names = list(c.labels)
        probs = classify(texts, c.model, batch_size=c.batch_size, max_length=c.max_length, device=c.device)
        return [names[i] for i in probs.argmax(axis=1)], probs.max(axis=1)

    def _llm(self, texts: list[str], ctx: StepContext):
        c = self.config
        llm = c.llm()
        prompts = [build_prompt(c, t) for t in texts]
        if c.chat:
            prompts = [[{"role": "user", "content": p}] for p in prompts]
        mode = c.confidence
        if mode == "auto":
            mode = "logprob" if _can_score(llm) else "vote"
        if mode == "logprob":
            labels = c.labels or []
            sep = "" if c.chat else " "
            try:
                scores = llm.score([p for p in prompts for _ in labels], [sep + lab for _ in prompts for lab in labels])
            except NotImplementedError:
                raise StepError(f"auto_label: backend {c.backend!r} cannot score completions; use confidence: vote") from None
            s = np.asarray(scores, dtype=np.float64).reshape(len(prompts), len(labels))
            p = np.exp(s - s.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            return [labels[i] for i in p.argmax(axis=1)], p.max(axis=1), "logprob"
        params = c.sampling(ctx, n=c.votes, max_new_tokens=c.answer_tokens)
        gens = llm.generate(prompts, params)
        out_l, out_c = [], []
        for row in gens:
            parsed = [parse_label(g.text, c.labels or []) for g in row]
            counts = Counter(x for x in parsed if x is not None)
            if not counts:
                out_l.append(None)
                out_c.append(0.0)
                continue
            lab, k = counts.most_common(1)[0]
            out_l.append(lab)
            out_c.append(k / len(row))
        return out_l, np.asarray(out_c), "vote"

    def merge_stats(self, stats: list[dict[str, Any]]) -> dict[str, Any]:
        out = super().merge_stats(stats)
        total = sum(sum(s.get("confidence_mode", {}).values()) for s in stats)
        out["mean_confidence"] = round(out.pop("confidence_sum", 0.0) / total, 4) if total else None
        return out


def _can_score(llm) -> bool:
    """Whether the backend overrides ``LLM.score`` (the base raises NotImplementedError)."""
    from curate.llm.base import LLM
    return type(llm).score is not LLM.score
