"""`augment`: add quality-gated variants of each row made by the augmenters in augmenters/.

Originals are kept unchanged. For every row, each configured augmenter makes ``multiply``
variants (seeds differ per variant); each variant is a new row with id
``<parent id>-<augmenter><k>``, ``parent_id``, ``augmenter``, ``augment_params`` (JSON of the
augmenter's configuration), ``similarity`` and ``length_ratio``. Variants that fail the gate
(:mod:`curate.augmenters.gate`) — or that the augmenter could not make (empty text, no word it knows),
or whose parent is not in a language the augmenter supports — are rejected with the reason.
Batches are written as resumable shards (slow back-translation survives a kill). The stats report
``unique_text_ratio`` (distinct texts / rows out) and ``created_unique_ratio`` (variants whose
text is new / variants kept), as balance does.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import polars as pl
from pydantic import Field

from curate.augmenters.gate import GateConfig
from curate.augmenters.spec import (BacktranslateConfig, CharNoiseConfig, CustomAugmenterSpec,
                                    EmbeddingSwapConfig, NoiseConfig, WordDropoutConfig, WordNetConfig)
from curate import records as R
from curate.errors import DataError
from curate.registry import register_step
from curate.step import Step, StepConfig, StepContext, StepResult

BUILTIN = ("backtranslate", "embedding_swap", "wordnet", "char_noise", "keyboard", "ocr", "word_dropout")


class AugmentConfig(StepConfig):
    backtranslate: BacktranslateConfig | None = Field(default=None, description="MarianMT/LLM back-translation options.")
    embedding_swap: EmbeddingSwapConfig | None = Field(default=None, description="Word-vector neighbour swap options.")
    wordnet: WordNetConfig | None = Field(default=None, description="WordNet synonym swap options.")
    char_noise: CharNoiseConfig | None = Field(default=None, description="Random character noise options.")
    keyboard: NoiseConfig | None = Field(default=None, description="Keyboard typo noise options.")
    ocr: NoiseConfig | None = Field(default=None, description="OCR confusion noise options.")
    word_dropout: WordDropoutConfig | None = Field(default=None, description="Word dropout options.")
    custom: list[CustomAugmenterSpec] = Field(
        default_factory=list, description="Further registered augmenters (plug-ins too) as {name: {options}}, "
                                          "checked against their config.")
    multiply: int = Field(default=1, ge=1, le=50, description="Variants per row per augmenter.")
    text: str = Field(default="text", description="Column to augment.")
    label: str | None = Field(default="label", description="Label column checked by the gate (if present).")
    gate: GateConfig = Field(default_factory=GateConfig, description="Quality gate bounds.")
    noise_gate: bool = Field(default=False, description="Apply the similarity/length gate to noise augmenters "
                                                        "too (off: noise is meant to damage text; only the "
                                                        "label check applies).")
    check_language: bool = Field(default=True, description="Reject variants of rows whose detected language "
                                                           "an English-only augmenter does not support.")

    def specs(self) -> list[dict[str, Any]]:
        out = [{name: getattr(self, name)} for name in BUILTIN if getattr(self, name) is not None]
        return out + list(self.custom)


NOISE = {"char_noise", "keyboard", "ocr", "word_dropout"}


@lru_cache(maxsize=1)
def _detector():
    from lingua import LanguageDetectorBuilder
    return LanguageDetectorBuilder.from_all_languages().with_low_accuracy_mode().build()


def detect_languages(texts: list[str]) -> list[str | None]:
    """ISO 639-1 code per text (lingua, low-accuracy mode; ``None`` if undetectable)."""
    out = []
    for lang in _detector().detect_languages_in_parallel_of(texts):
        out.append(lang.iso_code_639_1.name.lower() if lang is not None else None)
    return out


@register_step("augment")
class Augment(Step):
    """Add gated augmented variants next to the original rows."""

    Config = AugmentConfig
    scope = "batch"
    resumable = True
    version = "1"

    def process(self, df: pl.DataFrame, ctx: StepContext) -> StepResult:
        from curate.augmenters._base import build_augmenter
        from curate.augmenters.gate import check
        cfg: AugmentConfig = self.config  # type: ignore[assignment]
        if df.height == 0:
            return StepResult(kept=df, rejected=R.empty_rejects(df))
        R.require_column(df, cfg.text, "step augment", "text column")
        specs = cfg.specs()
        if not specs:
            raise DataError("step augment: no augmenter configured (e.g. `embedding_swap: {}`)")
        texts = df[cfg.text].cast(pl.String).fill_null("").to_list()
        labels = df[cfg.label].to_list() if cfg.label and cfg.label in df.columns else None
        langs: list[str | None] | None = None
        new_frames, rej_frames = [], []
        stats: dict[str, Any] = {"augmenters": {}}
        for spec in specs:
            aug = build_augmenter(spec)
            name = aug.name
            params = aug.params_json()
            unsupported = np.zeros(len(texts), dtype=bool)
            if cfg.check_language and aug.languages:
                if langs is None:
                    langs = detect_languages(texts)
                unsupported = np.asarray([lg is not None and lg not in aug.languages for lg in langs])
            gcfg: GateConfig = cfg.gate
            if name in NOISE and not cfg.noise_gate:
                gcfg = gcfg.model_copy(update={"min_similarity": -1.0, "max_similarity": 1.0,
                                               "min_length_ratio": 1e-9, "max_length_ratio": 1e9})
            st = {"made": 0, "accepted": 0, "rejected_by_reason": {}}
            for k in range(1, cfg.multiply + 1):
                todo = [i for i in range(len(texts)) if not unsupported[i]]
                made = aug.augment([texts[i] for i in todo], seed=ctx.seed * 7919 + k)
                children: list[str | None] = [None] * len(texts)
                for i, t in zip(todo, made):
                    children[i] = t
                res = check(texts, children, gcfg, labels, word_level=getattr(aug, "swaps_words", True))
                reasons = list(res.reasons)
                details = list(res.details)
                for i in np.flatnonzero(unsupported):
                    reasons[i] = "language_unsupported"
                    details[i] = f"detected {langs[i]}; {name} supports {', '.join(aug.languages)}"
                frame = df.with_columns(
                    pl.col(R.ID).alias("parent_id"),
                    (pl.col(R.ID) + f"-{name}{k}").alias(R.ID),
                    pl.Series(cfg.text, [c if c is not None else None for c in children], dtype=pl.String),
                    pl.lit(name).alias("augmenter"),
                    pl.lit(params).alias("augment_params"),
                    pl.Series("similarity", np.round(res.similarity, 6)),
                    pl.Series("length_ratio", np.round(res.length_ratio, 4)),
                    pl.Series("_reason", reasons, dtype=pl.String),
                    pl.Series("_detail", details, dtype=pl.String),
                )
                ok = frame.filter(pl.col("_reason").is_null()).drop("_reason", "_detail")
                bad = frame.filter(pl.col("_reason").is_not_null())
                new_frames.append(ok)
                if bad.height:
                    rej_frames.append(R.reject(bad, self.name, pl.col("_reason"), pl.col("_detail"))
                                      .drop("_reason", "_detail"))
                st["made"] += sum(c is not None for c in children)
                st["accepted"] += ok.height
                for r_ in reasons:
                    if r_:
                        st["rejected_by_reason"][r_] = st["rejected_by_reason"].get(r_, 0) + 1
            stats["augmenters"][name] = st
        kept = R.concat([df] + new_frames)
        rejected = R.concat(rej_frames) if rej_frames else R.empty_rejects(df)
        variants = R.concat([f for f in new_frames if f.height])
        new_texts = variants[cfg.text].filter(~variants[cfg.text].is_in(df[cfg.text].implode())) \
            if variants.height else pl.Series([], dtype=pl.String)
        stats.update(texts_out=kept.height, unique_texts_out=kept[cfg.text].n_unique(),
                     variants_out=variants.height, new_unique_variants=new_texts.n_unique())
        return StepResult(kept=kept, rejected=rejected, stats=stats)

    def merge_stats(self, stats: list[dict[str, Any]]) -> dict[str, Any]:
        """Sums per batch, then ``unique_text_ratio`` (distinct texts / rows out, per batch) and
        ``created_unique_ratio`` (variants with a text no original has and no other variant has)."""
        out = super().merge_stats(stats)
        if out.get("texts_out"):
            out["unique_text_ratio"] = round(out["unique_texts_out"] / out["texts_out"], 4)
        if out.get("variants_out"):
            out["created_unique_ratio"] = round(out["new_unique_variants"] / out["variants_out"], 4)
        return out
