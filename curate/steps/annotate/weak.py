"""``weak_label``: labelling functions (keyword lists, regexes, or Python callables) vote on each
row; votes are combined by majority or by a Dawid-Skene label model; every function gets
coverage / overlap / conflict (and accuracy, when a gold column exists) in the manifest.

    steps:
      - weak_label:
          column: text
          functions:
            - {name: prize, label: spam, keywords: [prize, winner, "claim now"]}
            - {name: shortcode, label: spam, regex: '\\b8\\d{4}\\b'}
            - {name: mine, python: "my_lfs.py:looks_personal"}   # or "package.module:function"
          combine: label_model         # or majority
          min_confidence: 0.7          # lower → needs_review
          gold_column: label           # optional: accuracy against true labels

A Python function takes the row's text and returns a label or None (abstain); with
``batched: true`` it takes the batch (a polars DataFrame) and returns one label-or-None per row.
Output columns: ``weak_label``, ``confidence``, ``needs_review`` (names configurable); rows
without any vote get a null label and ``needs_review`` (or the prior's label with
``uncovered: prior``). Nothing is removed.
"""
from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from curate import records as R
from curate.errors import StepError
from curate.registry import register_step
from curate.step import Step, StepConfig, StepContext, StepResult
from curate.steps.annotate import _label_model as LM


class LabelFunction(BaseModel):
    """One labelling function: keywords, a regex or a Python callable."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="Name shown in the stats.")
    label: str | None = Field(default=None, description="Label voted when the keywords/regex match.")
    keywords: list[str] | None = Field(default=None, description="Whole words/phrases, case-insensitive.")
    regex: str | None = Field(default=None, description="Rust-syntax regex (add (?i) for case-insensitive).")
    python: str | None = Field(default=None, description='"package.module:function" or "path/file.py:function".')
    batched: bool = Field(default=False, description="python: the function takes the batch and returns one value per row.")
    column: str | None = Field(default=None, description="Column read (default: the step's column).")

    @model_validator(mode="after")
    def _one_kind(self) -> LabelFunction:
        kinds = [k for k in ("keywords", "regex", "python") if getattr(self, k)]
        if len(kinds) != 1:
            raise ValueError(f"labelling function {self.name!r}: give exactly one of keywords, regex, python")
        if kinds[0] != "python" and not self.label:
            raise ValueError(f"labelling function {self.name!r}: keywords/regex need `label`")
        if self.regex:
            try:
                pl.Series([""]).str.contains(self.regex)
            except Exception as e:  # noqa: BLE001 - polars raises ComputeError for bad regexes
                raise ValueError(f"labelling function {self.name!r}: invalid regex: {str(e).splitlines()[0]}") from None
        return self


class WeakLabelConfig(StepConfig):
    """Functions, how to combine them, and where the results go."""

    column: str = Field(default="text", description="Column the functions read.")
    functions: list[LabelFunction] = Field(min_length=1, description="The labelling functions.")
    labels: list[str] | None = Field(default=None, description="The label set (default: the functions' labels, plus gold labels).")
    combine: Literal["majority", "label_model"] = Field(default="label_model", description="How votes become a label.")
    uncovered: Literal["abstain", "prior"] = Field(default="abstain", description="Rows without votes: null label, or the label model's most likely class.")
    min_confidence: float = Field(default=0.7, ge=0, le=1, description="Rows below are flagged needs_review.")
    label_column: str = Field(default="weak_label", description="Output label column.")
    confidence_column: str = Field(default="confidence", description="Output confidence column.")
    review_column: str = Field(default="needs_review", description="Output review flag column.")
    gold_column: str | None = Field(default=None, description="True labels, for accuracy in the stats.")
    max_iter: int = Field(default=100, ge=1, description="label_model: EM iterations at most.")

    @model_validator(mode="after")
    def _unique_names(self) -> WeakLabelConfig:
        names = [f.name for f in self.functions]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"labelling function names must be unique; repeated: {dup}")
        return self


def load_callable(spec: str, where: str) -> Callable:
    """``package.module:function`` or ``path/to/file.py:function`` → the function."""
    mod_name, sep, fn_name = spec.rpartition(":")
    if not sep or not mod_name or not fn_name:
        raise StepError(f"{where}: python must look like 'package.module:function' or 'file.py:function', got {spec!r}")
    try:
        if mod_name.endswith(".py"):
            path = Path(mod_name)
            if not path.is_file():
                raise StepError(f"{where}: file {mod_name!r} not found")
            s = importlib.util.spec_from_file_location(f"curate_lf_{path.stem}", path)
            module = importlib.util.module_from_spec(s)
            s.loader.exec_module(module)
        else:
            module = importlib.import_module(mod_name)
    except StepError:
        raise
    except Exception as e:  # noqa: BLE001 - the user's module may raise anything on import
        raise StepError(f"{where}: cannot import {mod_name!r}: {type(e).__name__}: {e}") from None
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise StepError(f"{where}: {mod_name!r} has no function {fn_name!r}")
    return fn


def _votes(lf: LabelFunction, df: pl.DataFrame, column: str) -> pl.Series:
    """One label-or-null per row."""
    col = lf.column or column
    R.require_column(df, col, f"weak_label function {lf.name!r}")
    t = pl.col(col).fill_null("")
    if lf.keywords:
        from curate.steps.quality._stats import word_pattern
        hit = t.str.contains(word_pattern(lf.keywords))
    elif lf.regex:
        hit = t.str.contains(lf.regex)
    else:
        fn = load_callable(lf.python, f"weak_label function {lf.name!r}")
        try:
            vals = fn(df) if lf.batched else [fn(x) for x in df.get_column(col).fill_null("").to_list()]
        except Exception as e:  # noqa: BLE001 - a user function may raise anything
            raise StepError(f"weak_label function {lf.name!r} raised {type(e).__name__}: {e}") from None
        vals = list(vals)
        if len(vals) != df.height:
            raise StepError(f"weak_label function {lf.name!r} returned {len(vals)} values for {df.height} rows")
        return pl.Series(lf.name, [None if v is None else str(v) for v in vals], dtype=pl.String)
    return df.select(pl.when(hit).then(pl.lit(lf.label)).otherwise(None).cast(pl.String).alias(lf.name)).to_series()


@register_step("weak_label")
class WeakLabel(Step):
    """Label rows by combining labelling-function votes; report per-function statistics."""

    Config = WeakLabelConfig
    scope = "global"

    def __init__(self, config=None, **kw) -> None:
        super().__init__(config, **kw)
        from curate.steps.quality._base import file_digests
        files = [f.python.rpartition(":")[0] for f in self.config.functions if f.python]
        digests = file_digests([p for p in files if p.endswith(".py")])
        if digests:
            self.raw_config = {**self.raw_config, "_files": digests}

    def process(self, df: pl.DataFrame, ctx: StepContext) -> StepResult:
        c = self.config
        R.require_column(df, c.column, "step weak_label")
        R.require_column(df, c.gold_column, "step weak_label", "gold_column")
        votes = pl.DataFrame([_votes(f, df, c.column) for f in c.functions]) if df.height else \
            pl.DataFrame({f.name: [] for f in c.functions}, schema={f.name: pl.String for f in c.functions})
        labels = list(c.labels) if c.labels else sorted(
            {v for s in votes.iter_columns() for v in s.drop_nulls().unique().to_list()}
            | {f.label for f in c.functions if f.label}
            | (set(df.get_column(c.gold_column).drop_nulls().cast(pl.String).unique().to_list()) if c.gold_column else set()))
        unknown = sorted({v for s in votes.iter_columns() for v in s.drop_nulls().unique().to_list()} - set(labels))
        if unknown:
            raise StepError(f"weak_label: functions voted labels not in `labels` {labels}: {unknown}")
        if not labels and df.height:
            raise StepError("weak_label: no labels (no function voted and no `labels` given)")
        labels = labels or ["_"]
        index = {lab: i for i, lab in enumerate(labels)}
        L = np.column_stack([s.replace_strict(index, default=-1, return_dtype=pl.Int64).to_numpy()
                             for s in votes.iter_columns()]) if df.height else np.zeros((0, len(c.functions)), dtype=np.int64)
        probs, extra = self._combine(L, len(labels))
        covered = (L >= 0).any(axis=1)
        best = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=np.int64)
        conf = probs.max(axis=1) if len(probs) else np.zeros(0)
        top_tie = (probs == conf[:, None]).sum(axis=1) > 1 if len(probs) else np.zeros(0, dtype=bool)
        has_label = (covered | (c.uncovered == "prior" and c.combine == "label_model")) & ~top_tie
        label_out = [labels[b] if ok else None for b, ok in zip(best, has_label)]
        conf_out = np.where(has_label, conf, 0.0)
        out = df.with_columns(pl.Series(c.label_column, label_out, dtype=pl.String),
                              pl.Series(c.confidence_column, np.round(conf_out, 4), dtype=pl.Float64),
                              pl.Series(c.review_column, (~has_label) | (conf_out < c.min_confidence), dtype=pl.Boolean))
        gold = None
        if c.gold_column:
            g = df.get_column(c.gold_column).cast(pl.String)
            gold = g.replace_strict(index, default=-1, return_dtype=pl.Int64).to_numpy()
        stats = self._stats(L, labels, gold, out, covered, extra)
        return StepResult(kept=out, rejected=R.empty_rejects(df), stats=stats)

    def merge_stats(self, stats):
        return stats[0] if len(stats) == 1 else super().merge_stats(stats)

    def _combine(self, L: np.ndarray, k: int) -> tuple[np.ndarray, dict[str, Any]]:
        if self.config.combine == "majority" or L.shape[0] == 0:
            return LM.majority(L, k), {}
        post, prior, _conf, it = LM.dawid_skene(L, k, max_iter=self.config.max_iter)
        if self.config.uncovered == "abstain":
            post[~(L >= 0).any(axis=1)] = 0.0
        learned = {}
        for j, f in enumerate(self.config.functions):
            fired = (L[:, j] >= 0)
            if fired.any():   # P(true class = its vote | it fired), from the learned model
                votes = L[fired, j]
                learned[f.name] = round(float(post[np.flatnonzero(fired), votes].mean()), 4)
        return post, {"priors": [round(float(p), 4) for p in prior], "iterations": it,
                      "learned_accuracy": learned}

    def _stats(self, L, labels, gold, out, covered, extra) -> dict[str, Any]:
        c = self.config
        n = max(L.shape[0], 1)
        counts = LM.vote_counts(L, len(labels))
        conflicted = (counts > 0).sum(axis=1) > 1
        per_fn = LM.analysis(L, [f.name for f in c.functions], labels, gold)
        for name, acc in extra.get("learned_accuracy", {}).items():
            per_fn[name]["learned_accuracy"] = acc
        dist = out.get_column(c.label_column).value_counts().rows()
        stats: dict[str, Any] = {
            "rows": L.shape[0], "labels": labels, "combine": c.combine,
            "coverage": round(float(covered.sum()) / n, 4),
            "conflict_rate": round(float(conflicted.sum()) / n, 4),
            "needs_review": int(out.get_column(c.review_column).sum()),
            "label_counts": {str(k): int(v) for k, v in dist},
            "functions": per_fn}
        if "priors" in extra:
            stats["label_model"] = {"priors": dict(zip(labels, extra["priors"])), "iterations": extra["iterations"]}
        if gold is not None:
            pred = out.get_column(c.label_column).to_list()
            g = out.get_column(c.gold_column).cast(pl.String).to_list()
            known = [(p, t) for p, t in zip(pred, g) if t is not None]
            labelled = [(p, t) for p, t in known if p is not None]
            stats["accuracy"] = round(sum(p == t for p, t in known) / max(len(known), 1), 4)
            stats["accuracy_on_labelled"] = round(sum(p == t for p, t in labelled) / max(len(labelled), 1), 4)
        return stats
