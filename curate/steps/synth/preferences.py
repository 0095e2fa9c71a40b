"""Preference (DPO) pairs: sample n candidates per prompt, score them with an LLM judge (rubric),
a reward model (sequence-classification head) or programmatic checks, and emit
chosen = best / rejected = worst when the score margin reaches a threshold. Ties, small margins
and unscorable prompts (unparsable judgements) become rejected rows with the reason."""
from __future__ import annotations

import re
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from curate import records as R
from curate.step import StepContext
from curate.steps.synth._llm_options import run_shards
from curate.steps.synth.responses import prompt_expr


class ProgrammaticChecks(BaseModel):
    """Programmatic scoring: one point per satisfied check."""

    model_config = ConfigDict(extra="forbid")
    min_words: int | None = Field(default=None, ge=0, description="Response has at least this many words.")
    max_words: int | None = Field(default=None, ge=1, description="Response has at most this many words.")
    require: list[str] = Field(default_factory=list, description="Regexes the response must match (a point each).")
    forbid: list[str] = Field(default_factory=lambda: [r"(?i)\bas an ai\b", r"(?i)\bi cannot\b"],
                              description="Regexes the response must not match (a point each).")

    def score(self, text: str) -> float:
        words = len(text.split())
        pts = 0
        if self.min_words is not None:
            pts += words >= self.min_words
        if self.max_words is not None:
            pts += words <= self.max_words
        pts += sum(bool(re.search(p, text)) for p in self.require)
        pts += sum(not re.search(p, text) for p in self.forbid)
        return float(pts)


def score_candidates(cfg, ctx: StepContext, prompts: list[str], cands: list[list[str]], state: dict) -> tuple[list[list[float | None]], list[list[str | None]]]:
    """Scores (None = unscorable) and parse errors for every candidate of every prompt."""
    flat_p = [p for p, cs in zip(prompts, cands) for _ in cs]
    flat_c = [c for cs in cands for c in cs]
    errors: list[str | None] = [None] * len(flat_c)
    if cfg.scorer == "judge":
        from curate.llm.judge import judge_prompt, parse_score
        lo, hi = cfg.score_range
        judge = state.setdefault("judge", cfg.llm(cfg.judge_model))
        jp = [judge_prompt(p, c, cfg.rubric, lo, hi) for p, c in zip(flat_p, flat_c)]
        gens = judge.generate(jp, cfg.sampling(ctx, temperature=0.0, max_new_tokens=cfg.judge_max_new_tokens))
        scores: list[float | None] = []
        for i, (g,) in enumerate(gens):
            res = parse_score(g.text, lo, hi)
            scores.append(res.score)
            errors[i] = res.error
    elif cfg.scorer == "reward":
        from curate.llm.reward import RewardModel
        if "reward" not in state:
            state["reward"] = RewardModel(cfg.reward_model, cfg.device, cfg.batch_tokens)
        rm = state["reward"]
        scores = list(rm.score(flat_p, flat_c))
    else:
        scores = [cfg.checks.score(c) for c in flat_c]
    out_s, out_e, k = [], [], 0
    for cs in cands:
        out_s.append(scores[k:k + len(cs)])
        out_e.append(errors[k:k + len(cs)])
        k += len(cs)
    return out_s, out_e


def build_preferences(df: pl.DataFrame, cfg, ctx: StepContext) -> tuple[list, list, dict[str, Any]]:
    prompts = df.select(prompt_expr(df, cfg.prompt_column).alias("p"))["p"].fill_null("").to_list()
    ids = df[R.ID].cast(pl.String).to_list()
    sources = df[R.SOURCE].to_list() if R.SOURCE in df.columns else [None] * df.height
    seed = cfg.seed if cfg.seed is not None else ctx.seed
    state: dict[str, Any] = {}

    def work(key: int, start: int, stop: int):
        llm = state.setdefault("llm", cfg.llm())
        ps = prompts[start:stop]
        gens = llm.generate(ps, cfg.sampling(ctx, n=cfg.candidates, seed=seed * 1_000 + key))
        cands = [[g.text.strip() for g in gs] for gs in gens]
        scores, errors = score_candidates(cfg, ctx, ps, cands, state)
        kept, rej = [], []
        stats: dict[str, Any] = {"prompts": len(ps), "pairs": 0, "rejected_by_reason": {},
                                 "candidates": sum(len(c) for c in cands),
                                 "unparsable_judgements": sum(e is not None for es in errors for e in es),
                                 "completion_tokens": sum(g.completion_tokens for gs in gens for g in gs)}
        for j, (p, cs, ss, es) in enumerate(zip(ps, cands, scores, errors)):
            i = start + j
            row = {R.ID: f"{ids[i]}-pref", R.SOURCE: sources[i], "parent_id": ids[i], "prompt": p,
                   "chosen": None, "rejected": None, "chosen_score": None, "rejected_score": None,
                   "margin": None, "scores": [s for s in ss], "scorer": cfg.scorer}
            good = [(s, c) for s, c in zip(ss, cs) if s is not None and c]
            reason = detail = None
            if len(good) < 2:
                reason = "unscorable"
                errs = [e for e in es if e]
                detail = (f"{len(good)} of {len(cs)} candidates scored"
                          + (f"; judge: {errs[0]}" if errs else "; empty candidates"))
            else:
                best = max(range(len(good)), key=lambda t: (good[t][0], -t))
                worst = min(range(len(good)), key=lambda t: (good[t][0], t))
                margin = good[best][0] - good[worst][0]
                row.update(chosen=good[best][1], rejected=good[worst][1], chosen_score=float(good[best][0]),
                           rejected_score=float(good[worst][0]), margin=float(margin))
                if margin == 0:
                    reason, detail = "tie", f"all {len(good)} scored candidates have score {good[best][0]:g}"
                elif margin < cfg.min_margin:
                    reason, detail = "margin_below_threshold", f"margin {margin:g} < {cfg.min_margin:g}"
                elif good[best][1] == good[worst][1]:
                    reason, detail = "chosen_equals_rejected", "best and worst candidates are the same text"
            if reason is None:
                kept.append(row)
                stats["pairs"] += 1
            else:
                row.update({R.REASON: reason, R.DETAIL: detail})
                rej.append(row)
                stats["rejected_by_reason"][reason] = stats["rejected_by_reason"].get(reason, 0) + 1
        schema = {R.ID: pl.String, R.SOURCE: pl.String, "parent_id": pl.String, "prompt": pl.String,
                  "chosen": pl.String, "rejected": pl.String, "chosen_score": pl.Float64,
                  "rejected_score": pl.Float64, "margin": pl.Float64, "scores": pl.List(pl.Float64),
                  "scorer": pl.String}
        extra = [pl.lit(cfg.origin).alias(R.ORIGIN), pl.lit("preferences").alias("synth_kind"),
                 pl.lit(cfg.model).alias("synth_model")]
        k_df = pl.DataFrame(kept, schema=schema).with_columns(extra)
        r_df = pl.DataFrame(rej, schema={**schema, R.REASON: pl.String, R.DETAIL: pl.String}).with_columns(extra)
        return k_df, r_df, stats

    kept, rej, stats = run_shards(ctx, df.height, cfg.shard_size, work, prefix="pref")
    from curate.step import merge_numeric
    total = merge_numeric(stats)
    total["pair_acceptance_rate"] = round(total["pairs"] / total["prompts"], 4) if total.get("prompts") else None
    return kept, rej, total
