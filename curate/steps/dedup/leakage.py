"""The ``leakage`` step: after a train/test split, find evaluation rows (test/validation) that
have an exact or near duplicate in train; report them, and optionally remove them.

```yaml
- split: {test: 0.1}
- leakage: {split_column: split, near: {threshold: 0.8}, action: remove}
```
``action: report`` keeps every row and adds ``leak_of`` (the train id) / ``leak_similarity`` to
leaking eval rows; ``action: remove`` rejects them with reason ``split_leakage``,
``duplicate_of`` = the train row and ``similarity``.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl
from pydantic import Field

from curate import records as R
from curate.registry import register_step
from curate.step import Step, StepConfig, StepContext, StepResult

from ._text import Normalize, check_columns, joined, normalized
from .minhash import NearConfig, near_pairs


class LeakageConfig(StepConfig):
    """Options of the ``leakage`` step."""

    columns: list[str] = Field(default_factory=lambda: ["text"], min_length=1,
                               description="Columns compared (joined with a newline).")
    split_column: str = Field(default="split", description="Column holding each row's split name.")
    train: list[str] = Field(default_factory=lambda: ["train"], description="Split values that are training data.")
    eval: list[str] = Field(default_factory=lambda: ["test", "validation", "valid", "dev"],
                            description="Split values checked for leakage.")
    normalize: Normalize = Field(default_factory=Normalize, description="Canonicalisation before comparing.")
    exact: bool = Field(default=True, description="Check exact duplicates (after normalisation).")
    near: NearConfig | None = Field(default_factory=NearConfig,
                                    description="Near-duplicate check (MinHash-LSH); null to disable.")
    action: Literal["report", "remove"] = Field(default="report", description="Only report leaks, or "
                                                "reject leaking eval rows.")


@register_step("leakage")
class Leakage(Step):
    """Report or remove eval rows duplicated in train (see module docstring)."""

    Config = LeakageConfig
    scope = "global"
    version = "1"

    def process(self, df: pl.DataFrame, ctx: StepContext) -> StepResult:
        cfg = self.config
        check_columns(df, cfg.columns + [cfg.split_column], self.name)
        split = df[cfg.split_column].cast(pl.String)
        is_train = split.is_in(cfg.train).fill_null(False).to_numpy()
        is_eval = split.is_in(cfg.eval).fill_null(False).to_numpy()
        n = df.height
        leak_of = np.full(n, -1, dtype=np.int64)
        leak_sim = np.zeros(n)
        kind = np.full(n, "", dtype=object)
        stats: dict = {"train_rows": int(is_train.sum()), "eval_rows": int(is_eval.sum())}
        norm = df.select(normalized(joined(cfg.columns), cfg.normalize).alias("t"))["t"]
        if cfg.exact:
            key = pl.DataFrame({"k": norm, "i": np.arange(n), "tr": is_train})
            first_train = (key.filter(pl.col("tr") & pl.col("k").is_not_null())
                           .group_by("k").agg(pl.col("i").min().alias("j")))
            hit = key.join(first_train, on="k", how="inner").select("i", "j")
            i, j = hit["i"].to_numpy(), hit["j"].to_numpy()
            sel = is_eval[i]
            leak_of[i[sel]], leak_sim[i[sel]], kind[i[sel]] = j[sel], 1.0, "exact"
            stats["exact_leaks"] = int(sel.sum())
        if cfg.near is not None:
            res = near_pairs(norm, cfg.near, ctx.seed, single_spaced=cfg.normalize.collapse_whitespace)
            a, b, s = res.left, res.right, res.similarity
            # orient pairs eval -> train
            ev = np.where(is_eval[a] & is_train[b], a, np.where(is_eval[b] & is_train[a], b, -1))
            tr = np.where(ev == a, b, a)
            ok = ev >= 0
            ev, tr, s = ev[ok], tr[ok], s[ok]
            if len(ev):
                # best train match per eval row; exact hits take precedence
                order = np.lexsort((-s, ev))
                ev, tr, s = ev[order], tr[order], s[order]
                first = np.r_[True, ev[1:] != ev[:-1]]
                ev, tr, s = ev[first], tr[first], s[first]
                new = leak_of[ev] < 0
                leak_of[ev[new]], leak_sim[ev[new]], kind[ev[new]] = tr[new], s[new], "near"
            stats["near_leaks"] = int((kind == "near").sum())
        leaking = leak_of >= 0
        stats["leaks"] = int(leaking.sum())
        stats["leak_rate"] = round(float(leaking.sum() / max(1, is_eval.sum())), 4)
        by_split = pl.DataFrame({"s": split.to_numpy()[leaking]}).group_by("s").len().rows() if leaking.any() else []
        stats["leaks_by_split"] = {str(k): int(v) for k, v in by_split}
        ids = df[R.ID]
        lk = pl.Series(leaking)
        of = pl.select(pl.when(lk).then(ids.gather(np.maximum(leak_of, 0)).cast(pl.String))
                       .otherwise(None).alias("leak_of"))["leak_of"]
        simcol = pl.select(pl.when(lk).then(pl.Series(np.round(leak_sim, 4)))
                           .otherwise(None).alias("leak_similarity"))["leak_similarity"]
        kindcol = pl.Series("_kind", kind.astype(str).tolist(), dtype=pl.String)
        if cfg.action == "report":
            return StepResult(kept=df.with_columns(of, simcol), rejected=R.empty_rejects(df), stats=stats)
        mask = pl.Series(leaking)
        rej = (df.with_columns(of.alias("duplicate_of"), simcol.alias("similarity"), kindcol)
               .filter(mask))
        detail = pl.format("{} row matches {} row {} ({} duplicate, similarity {})",
                           pl.col(cfg.split_column), pl.lit("/".join(cfg.train)),
                           pl.col("duplicate_of"), pl.col("_kind"), pl.col("similarity").round(3))
        rej = R.reject(rej, self.name, "split_leakage", detail).drop("_kind")
        return StepResult(kept=df.filter(~mask), rejected=rej, stats=stats)
