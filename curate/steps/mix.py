"""`mix`: task mixing for multi-task instruction data (T5-style, Raffel et al. 2020 §3.5.2).

Each task ``m`` with ``e_m`` examples gets a sampling rate

* ``proportional``: ``r_m ∝ min(e_m, cap)`` (examples-proportional mixing with an artificial
  size limit ``cap``, so huge tasks do not drown small ones);
* ``temperature``: ``r_m ∝ min(e_m, cap) ** (1 / temperature)`` (T > 1 flattens towards equal
  mixing; T = 1 is proportional);
* ``equal``: ``r_m ∝ 1``.

The mixture has ``total`` rows (default: ``Σ min(e_m, cap)``), split by largest remainder. A task
whose share is below its size is sampled without replacement (the rest is rejected with reason
``mix_downsampled``); a task whose share exceeds its size keeps every row and adds seeded
copies (id ``<parent id>-mx<k>``, ``parent_id``). Stats: rows per task before/after and rates.
"""
from __future__ import annotations

from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field

from curate import records as R
from curate.registry import register_step
from curate.step import Step, StepConfig, StepContext, StepResult
from curate.steps.balance import with_copies


class MixConfig(StepConfig):
    task: str = Field(default="task", description="Column naming each row's task.")
    method: Literal["proportional", "temperature", "equal"] = Field(
        default="proportional", description="How task sampling rates are set.")
    cap: int | None = Field(default=None, ge=1, description="Examples-proportional size limit K per task.")
    temperature: float = Field(default=2.0, gt=0, le=100, description="Temperature T (method: temperature).")
    total: int | None = Field(default=None, ge=1, description="Rows in the mixture (default Σ min(e_m, cap)).")


def mixing_rates(counts: dict[str, int], method: str, cap: int | None, temperature: float) -> dict[str, float]:
    """Sampling rate of each task (sums to 1)."""
    e = np.asarray(list(counts.values()), dtype=float)
    capped = np.minimum(e, cap) if cap else e
    if method == "equal":
        w = np.ones_like(capped)
    elif method == "temperature":
        w = capped ** (1.0 / temperature)
    else:
        w = capped
    return {t: float(x) for t, x in zip(counts, w / w.sum())}


def allocate(rates: dict[str, float], total: int) -> dict[str, int]:
    """Largest-remainder rounding of ``total * rate``."""
    raw = {t: r * total for t, r in rates.items()}
    out = {t: int(np.floor(v)) for t, v in raw.items()}
    left = total - sum(out.values())
    for t in sorted(raw, key=lambda t: (raw[t] - out[t], t), reverse=True)[:left]:
        out[t] += 1
    return out


@register_step("mix")
class Mix(Step):
    """Re-sample a multi-task table to a chosen task mixture."""

    Config = MixConfig
    scope = "global"
    version = "1"

    def process(self, df: pl.DataFrame, ctx: StepContext) -> StepResult:
        cfg: MixConfig = self.config  # type: ignore[assignment]
        R.require_column(df, cfg.task, "step mix", "task column")
        if df.height == 0:
            return StepResult(kept=df, rejected=R.empty_rejects(df))
        tasks = df[cfg.task].cast(pl.String).fill_null("<null>").to_numpy()
        names, counts_arr = np.unique(tasks, return_counts=True)
        counts = {str(t): int(c) for t, c in zip(names, counts_arr)}
        rates = mixing_rates(counts, cfg.method, cfg.cap, cfg.temperature)
        total = cfg.total or int(sum(min(c, cfg.cap) if cfg.cap else c for c in counts.values()))
        goal = allocate(rates, total)
        rng = np.random.default_rng(ctx.seed)
        keep: list[int] = []
        extra: list[int] = []
        for t in counts:
            idx = np.flatnonzero(tasks == t)
            n = goal[t]
            if n <= len(idx):
                keep += sorted(rng.choice(idx, size=n, replace=False).tolist())
            else:
                keep += idx.tolist()
                extra += rng.choice(idx, size=n - len(idx), replace=True).tolist()
        mask = np.zeros(df.height, dtype=bool)
        mask[keep] = True
        m = pl.Series("_m", mask)
        kept = with_copies(df.filter(m), np.asarray([], dtype=np.int64), "mx")
        if extra:
            kept = R.concat([kept, with_copies(df, np.asarray(extra, dtype=np.int64), "mx", by="mix (weight > 1)")
                             .filter(pl.col("parent_id").is_not_null())])
        rejected = R.reject(df.filter(~m), self.name, "mix_downsampled",
                            pl.format("task {} sampled down", pl.col(cfg.task).cast(pl.String)))
        stats: dict[str, Any] = {"before": counts, "after": goal, "rates": {t: round(r, 6) for t, r in rates.items()},
                                 "total": total, "method": cfg.method}
        return StepResult(kept=kept, rejected=rejected if rejected.height else R.empty_rejects(df), stats=stats)
