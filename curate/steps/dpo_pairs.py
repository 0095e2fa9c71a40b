"""The ``dpo_pairs`` step: normalise preference pairs into explicit ``prompt``/``chosen``/``rejected``
columns and reject the pairs a DPO trainer cannot use, each with its reason. The pair rules are the
DPO format's own (:mod:`curate.schemas.dpo`)."""
from __future__ import annotations

import polars as pl
from pydantic import Field

from curate import records as R
from curate.registry import register_step
from curate.schemas.dpo import (HH_HUMAN, PairColumns, PairError, column_values, pairs_frame,
                                is_messages, normalise_pair)
from curate.step import Step, StepConfig, StepContext, StepResult
from curate.steps._labels import add_warnings, removal_warning, split_missing_labels


class DpoPairsConfig(StepConfig, PairColumns):
    """Options of the ``dpo_pairs`` step."""

    single_turn: bool = Field(default=True, description="Reject hh-style completions that continue the "
                                                        "dialogue (they cannot become conversational DPO).")


@register_step("dpo_pairs")
class DpoPairs(Step):
    """Normalise preference pairs into explicit `prompt`/`chosen`/`rejected` columns; reject unusable pairs."""

    Config = DpoPairsConfig
    scope = "global"          # from_labels needs the whole label set
    version = "2"

    def process(self, df: pl.DataFrame, ctx: StepContext) -> StepResult:
        cfg = self.config
        missing = R.empty_rejects(df)
        if cfg.from_labels is not None:      # an empty label is not a class: no pair from it
            R.require_column(df, cfg.from_labels.label, "step dpo_pairs from_labels", "label column")
            df, missing = split_missing_labels(df, cfg.from_labels.label, self.name)
        work, cols = pairs_frame(df, cfg, ctx.seed)
        if cfg.from_labels is not None:
            n_labels = work[cfg.from_labels.label].drop_nulls().n_unique()
        prompts, chosen, rejected = (column_values(work, cols[k]) for k in ("prompt", "chosen", "rejected"))
        out_p, out_c, out_r, reasons, details = [], [], [], [], []
        implicit = 0
        for p, c, r in zip(prompts, chosen, rejected):
            reason = detail = None
            try:
                if p is None or p == "" or p == []:
                    implicit += 1
                np_, nc, nr = normalise_pair(p, c, r, cfg.split_at)
                if cfg.single_turn:
                    for which, comp in (("chosen", nc), ("rejected", nr)):
                        if isinstance(comp, str) and HH_HUMAN in comp:
                            raise PairError("multi_turn_completion", f"{which} continues the dialogue")
                        if is_messages(comp) and any(m.get("role") != "assistant" for m in comp):
                            raise PairError("multi_turn_completion", f"{which} holds a non-assistant turn")
            except PairError as e:
                reason, detail = e.reason, e.detail or None
                if cfg.from_labels is not None and reason == "empty_rejected" and c is not None:
                    reason, detail = "no_other_label", f"label set has {n_labels} value(s)"
                np_, nc, nr = p, c, r
            out_p.append(np_)
            out_c.append(nc)
            out_r.append(nr)
            reasons.append(reason)
            details.append(detail)
        conv = any(is_messages(x) for x in out_c if x is not None)
        dtype = None if conv else pl.String
        work = work.with_columns(pl.Series("prompt", out_p, dtype=dtype, strict=False),
                                 pl.Series("chosen", out_c, dtype=dtype, strict=False),
                                 pl.Series("rejected", out_r, dtype=dtype, strict=False),
                                 pl.Series("_reason", reasons, dtype=pl.String),
                                 pl.Series("_detail", details, dtype=pl.String))
        kept = work.filter(pl.col("_reason").is_null()).drop("_reason", "_detail")
        rej = work.filter(pl.col("_reason").is_not_null())
        rej = R.reject(rej, self.name, pl.col("_reason"), pl.col("_detail")).drop("_reason", "_detail")
        rej = R.concat([r for r in (rej, missing) if r.height]) if missing.height else rej
        by_reason = dict(rej.group_by(R.REASON).len().rows()) if rej.height else {}
        stats = {"pairs": kept.height, "implicit_converted": implicit, "rejected_by_reason": by_reason}
        add_warnings(stats, removal_warning("dpo_pairs", kept.height + rej.height, rej.height))
        return StepResult(kept=kept, rejected=rej, stats=stats)
