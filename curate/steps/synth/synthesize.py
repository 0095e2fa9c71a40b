"""The ``synthesize`` step: LLM data generation of one ``kind`` — ``instructions``
(Self-Instruct tasks + instances), ``responses`` (SFT answers to prompts) or ``preferences``
(DPO pairs from judged candidates) or ``evol`` (Evol-Instruct rewrites that deepen
instructions). Generation runs in resumable shards."""
from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import Field, model_validator

from curate import records as R
from curate.registry import register_step
from curate.step import Step, StepContext, StepResult
from curate.steps.synth._llm_options import LLMOptions
from curate.steps.synth.preferences import ProgrammaticChecks

DEFAULT_ORIGIN = {"instructions": "self_instruct", "preferences": "preferences", "responses": None, "evol": "evol"}


class SynthesizeConfig(LLMOptions):
    """Options of the ``synthesize`` step (LLM options plus the chosen kind's options)."""

    kind: Literal["instructions", "responses", "preferences", "evol"] = Field(description="What to generate.")
    origin: str | None = Field(default=None, description="`origin` of created rows (default: self_instruct / "
                                                         "preferences) so outputs can select them.")
    keep_inputs: bool = Field(default=True, description="instructions/preferences: pass input rows through "
                                                        "(else they are rejected as `consumed`).")
    # ---- instructions
    n: int = Field(default=100, ge=1, description="instructions: number of new tasks to generate.")
    seeds: str | None = Field(default=None, description="instructions: Self-Instruct seed_tasks.jsonl (default: input rows).")
    seed_column: str = Field(default="instruction", description="instructions: input column with seed instructions.")
    prompts_per_round: int = Field(default=16, ge=1, description="instructions: generation prompts per round (one shard).")
    prompt_instructions: int = Field(default=8, ge=1, le=32, description="instructions: tasks shown in each prompt.")
    machine_in_prompt: int = Field(default=2, ge=0, description="instructions: of those, how many are generated ones.")
    max_rounds: int = Field(default=100, ge=1, description="instructions: stop after this many rounds.")
    rouge_threshold: float = Field(default=0.7, gt=0.0, le=1.0, description="instructions: reject if ROUGE-L ≥ this vs any kept task.")
    min_words: int = Field(default=3, ge=1, description="instructions: shortest instruction (words).")
    max_words: int = Field(default=150, ge=1, description="instructions: longest instruction (words).")
    blocklist: list[str] | None = Field(default=None, description="instructions: keywords that reject a task (default: Self-Instruct's).")
    classify: Literal["llm", "heuristic"] = Field(default="llm", description="instructions: how to decide classification vs generation.")
    instances_per_task: int = Field(default=4, ge=1, le=500, description="instructions: instances generated per task.")
    max_labels: int = Field(default=10, ge=2, description="instructions: most labels of a classification task.")
    max_input_tokens: int = Field(default=128, ge=1, description="instructions: tokens for a generated instance input.")
    # ---- responses / preferences
    prompt_column: str | None = Field(default=None, description="responses/preferences: prompt column (default: prompt, "
                                                                "else instruction + text).")
    output_column: str = Field(default="response", description="responses: column for the generated response.")
    candidates: int = Field(default=4, ge=2, le=64, description="preferences: candidates sampled per prompt.")
    scorer: Literal["judge", "reward", "checks"] = Field(default="judge", description="preferences: how candidates are scored.")
    judge_model: str | None = Field(default=None, description="preferences: judge model (default: the generating model).")
    judge_max_new_tokens: int = Field(default=64, ge=1, description="preferences: tokens for each judgement.")
    rubric: str | None = Field(default=None, description="preferences: judge rubric ({low}/{high} placeholders).")
    score_range: tuple[float, float] = Field(default=(1, 10), description="preferences: judge scale [low, high].")
    reward_model: str | None = Field(default=None, description="preferences (scorer: reward): sequence-classification model.")
    checks: ProgrammaticChecks = Field(default_factory=ProgrammaticChecks, description="preferences (scorer: checks).")
    min_margin: float = Field(default=1.0, ge=0.0, description="preferences: least chosen−rejected score difference.")
    # ---- evol
    evol_rounds: int = Field(default=1, ge=1, le=10, description="evol: rewrites per instruction (each builds on the last).")
    evol_operations: list[Literal["constraints", "deepen", "concretize", "reasoning", "breadth"]] | None = Field(
        default=None, description="evol: operations to sample from (default: all).")
    evol_max_similarity: float = Field(default=0.9, gt=0.0, le=1.0,
                                       description="evol: reject a rewrite this close (ROUGE-L) to its parent.")

    @model_validator(mode="after")
    def _check(self) -> "SynthesizeConfig":
        if self.scorer == "reward" and self.kind == "preferences" and not self.reward_model:
            raise ValueError("scorer: reward needs `reward_model` (a sequence-classification model path or name)")
        if self.score_range[0] >= self.score_range[1]:
            raise ValueError("score_range must be [low, high] with low < high")
        return self


@register_step("synthesize")
class Synthesize(Step):
    """Generate instructions, responses or preference pairs with an LLM (resumable shards)."""

    Config = SynthesizeConfig
    scope = "global"
    version = "1"
    memory = ("its input rows as one frame (Self-Instruct rounds sample seeds and earlier tasks from "
              "the whole pool; evol and preferences pair rows); generation runs in resumable shards "
              "written to its cache folder.")

    def process(self, df: pl.DataFrame, ctx: StepContext) -> StepResult:
        cfg: SynthesizeConfig = self.config  # type: ignore[assignment]
        if cfg.origin is None and DEFAULT_ORIGIN[cfg.kind]:
            cfg = cfg.model_copy(update={"origin": DEFAULT_ORIGIN[cfg.kind]})
        if cfg.kind == "responses":
            from curate.steps.synth.responses import generate_responses
            kept, rej, stats = generate_responses(df, cfg, ctx)
            return StepResult(R.concat(kept) if kept else df.clear(), _rejects(rej), stats)
        if cfg.kind == "instructions":
            from curate.steps.synth.instructions import SelfInstruct, load_seed_file, seeds_from_frame
            seeds = load_seed_file(cfg.seeds) if cfg.seeds else seeds_from_frame(df, cfg.seed_column)
            kept, rej, stats = SelfInstruct(cfg, ctx, seeds, f"synth:{ctx.index}:instructions").run()
        elif cfg.kind == "evol":
            from curate.steps.synth.evol import evolve
            kept, rej, stats = evolve(df, cfg, ctx)
        else:
            from curate.steps.synth.preferences import build_preferences
            kept, rej, stats = build_preferences(df, cfg, ctx)
        rejected = _rejects(rej)
        kept_df = R.concat([k for k in kept if k.height])
        if cfg.keep_inputs:
            kept_df = R.concat([df, kept_df])
        elif df.height:
            rejected = R.concat([R.reject(df, self.name, "consumed", f"used as {cfg.kind} input"), rejected])
        if kept_df.width == 0:
            kept_df = df.clear()
        stats["rows_generated"] = sum(k.height for k in kept)
        return StepResult(kept_df, rejected, stats)


def _rejects(frames: list[pl.DataFrame]) -> pl.DataFrame:
    frames = [f for f in frames if f.height]
    if not frames:
        return pl.DataFrame()
    return R.concat(frames).with_columns(pl.lit("synthesize").alias(R.STEP))
