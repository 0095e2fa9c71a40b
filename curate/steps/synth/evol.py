"""Evol-Instruct style rewriting (Xu et al. 2023): each instruction is rewritten ``evol_rounds``
times with a randomly chosen in-depth operation (add constraints, deepen, concretise, add
reasoning steps) or in-breadth mutation; evolutions that fail (empty, unchanged, copied the
prompt's scaffolding, too similar to their parent) are rejected with a reason."""
from __future__ import annotations

import random
import re
from typing import Any

import polars as pl

from curate import records as R
from curate.step import StepContext
from curate.steps.synth._llm_options import run_shards
from curate.steps.synth._rouge import rouge_l
from curate.steps.synth.responses import prompt_expr

_HEAD = ("I want you to act as a Prompt Rewriter. Rewrite the given prompt into a more complex "
         "version that a human can still understand and answer. Do not omit the non-text parts of "
         "the given prompt. {how} The rewritten prompt may add only 10 to 20 words.\n\n"
         "#The Given Prompt#:\n{instruction}\n\n#Rewritten Prompt#:\n")
OPERATIONS = {
    "constraints": "Add one more constraint or requirement to the prompt.",
    "deepen": "If the prompt asks about a specific issue, increase the depth and breadth of the inquiry.",
    "concretize": "Replace general concepts with more specific concepts.",
    "reasoning": "If the prompt can be solved with a few simple steps, rewrite it to explicitly ask for "
                 "multiple-step reasoning.",
    "breadth": "Instead of rewriting, create a brand new prompt in the same domain but rarer, of "
               "similar length and difficulty.",
}
_LEAK = re.compile(r"#?\s*(given|rewritten|created) prompt\s*#?|prompt rewriter", re.I)


def evolution_problem(parent: str, child: str, op: str, max_similarity: float) -> tuple[str, str] | None:
    """Why an evolution is eliminated (reason, detail), or None."""
    if not child.strip():
        return "empty_evolution", "the rewrite is empty"
    if _LEAK.search(child):
        return "prompt_leak", "the rewrite copies the rewriter's scaffolding"
    if op != "breadth":
        sim = rouge_l(parent, child)
        if sim >= max_similarity:
            return "not_evolved", f"rouge_l={sim:.3f} vs parent >= {max_similarity}"
        if len(child.split()) < len(parent.split()):
            return "not_deeper", f"{len(child.split())} words < parent's {len(parent.split())}"
    return None


def evolve(df: pl.DataFrame, cfg, ctx: StepContext) -> tuple[list, list, dict[str, Any]]:
    parents = df.select(prompt_expr(df, cfg.prompt_column).alias("p"))["p"].fill_null("").to_list()
    ids = df[R.ID].cast(pl.String).to_list()
    sources = df[R.SOURCE].to_list() if R.SOURCE in df.columns else [None] * df.height
    seed = cfg.seed if cfg.seed is not None else ctx.seed
    ops = cfg.evol_operations or list(OPERATIONS)

    def work(key: int, start: int, stop: int):
        llm = cfg.llm()
        rng = random.Random(f"{seed}:evol:{key}")
        current = list(parents[start:stop])
        kept, rej = [], []
        stats: dict[str, Any] = {"evolutions": 0, "kept": 0, "rejected_by_reason": {}}
        alive = list(range(stop - start))
        for rnd in range(cfg.evol_rounds):
            chosen = [rng.choice(ops) for _ in alive]
            gens = llm.generate([_HEAD.format(how=OPERATIONS[o], instruction=current[j]) for o, j in zip(chosen, alive)],
                                cfg.sampling(ctx, seed=seed * 1_000 + key * 31 + rnd))
            nxt = []
            for j, op, (g,) in zip(alive, chosen, gens):
                i = start + j
                child = g.text.strip().split("\n\n")[0].strip()
                stats["evolutions"] += 1
                row = {R.ID: f"{ids[i]}-evol{rnd + 1}", R.SOURCE: sources[i], "parent_id": ids[i],
                       "instruction": child, "evolved_from": current[j], "evol_operation": op, "evol_round": rnd + 1}
                bad = evolution_problem(current[j], child, op, cfg.evol_max_similarity)
                if bad is None:
                    kept.append(row)
                    stats["kept"] += 1
                    current[j] = child
                    nxt.append(j)
                else:
                    row.update({R.REASON: bad[0], R.DETAIL: bad[1]})
                    rej.append(row)
                    stats["rejected_by_reason"][bad[0]] = stats["rejected_by_reason"].get(bad[0], 0) + 1
            alive = nxt                  # a failed lineage stops evolving
        schema = {R.ID: pl.String, R.SOURCE: pl.String, "parent_id": pl.String, "instruction": pl.String,
                  "evolved_from": pl.String, "evol_operation": pl.String, "evol_round": pl.Int64}
        extra = [pl.lit(cfg.origin).alias(R.ORIGIN), pl.lit("evol").alias("synth_kind"),
                 pl.lit(cfg.model).alias("synth_model")]
        return (pl.DataFrame(kept, schema=schema).with_columns(extra),
                pl.DataFrame(rej, schema={**schema, R.REASON: pl.String, R.DETAIL: pl.String}).with_columns(extra),
                stats)

    kept, rej, stats = run_shards(ctx, df.height, cfg.shard_size, work, prefix="evol")
    from curate.step import merge_numeric
    return kept, rej, merge_numeric(stats)
