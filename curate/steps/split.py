"""`split`: assign every row to train / validation / test (a ``split`` column; no row is dropped).

* Stratified by a label column with scikit-learn (``train_test_split(stratify=...)``), seeded.
* ``group``: rows sharing the key (a source document, a duplicate cluster) never straddle splits —
  scikit-learn's ``StratifiedGroupKFold`` (or ``GroupShuffleSplit`` without a label).
* Multi-label (a list column): iterative stratification (``iterative-stratification``'s
  ``MultilabelStratifiedShuffleSplit``), per group when a group key is set (a group's labels are
  the union of its rows' labels).

With ``lineage`` (default) and a ``parent_id`` column, rows are grouped by their original (the end
of the ``parent_id`` chain), so copies and augmented variants never land in another split than the
row they came from (a SMOTE row follows the parent it rewrote).

With ``stratify``, rows without a label (null, or an empty string) are rejected as
``missing_label``: an empty label is not a class. Classes too small to stratify (fewer than 3 rows)
are pooled into one stratum and recorded in the stats. Stats: rows per split, label shares per split and the largest
deviation (percentage points) of any class share from the overall share.

Memory: in the local engine the step reads only the ids, the label, group and ``parent_id``
columns (no texts) and returns row positions; the engine adds the ``split`` column to each part's
rows as it writes them (:meth:`Split.process_table`).
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import polars as pl
from pydantic import Field, model_validator

from curate import records as R
from curate.errors import DataError
from curate.registry import register_step
from curate.step import Step, StepConfig, StepContext, StepResult, TableResult, narrow_process
from curate.steps._labels import add_warnings, removal_warning, split_missing_labels


class SplitConfig(StepConfig):
    test: float = Field(default=0.1, ge=0, lt=1, description="Share of rows for the test split.")
    validation: float = Field(default=0.1, ge=0, lt=1, description="Share of rows for the validation split.")
    stratify: str | None = Field(default="label", description="Label column to stratify on (list column = "
                                                              "multi-label); null for a plain shuffle split.")
    group: str | None = Field(default=None, description="Column whose equal values must land in one split "
                                                        "(e.g. `source`, a dedup cluster id).")
    lineage: bool = Field(default=True, description="Keep rows derived from one original (`parent_id`: "
                                                    "oversampled copies, augmentations, SMOTE rows) in "
                                                    "their original's split, so no variant leaks across.")
    column: str = Field(default="split", description="Name of the column written.")
    names: dict[str, str] = Field(default_factory=lambda: {"train": "train", "validation": "validation",
                                                           "test": "test"},
                                  description="Value written for each split.")

    @model_validator(mode="after")
    def _check(self) -> "SplitConfig":
        if self.test + self.validation >= 1:
            raise ValueError(f"test ({self.test}) + validation ({self.validation}) must be below 1")
        return self


def _strata(labels: list[Any]) -> tuple[np.ndarray, list[str]]:
    """Single-label strata: str(label), nulls as their own stratum, classes < 3 rows pooled."""
    y = np.asarray(["\x00null" if v is None else str(v) for v in labels], dtype=object)
    vals, counts = np.unique(y, return_counts=True)
    rare = [str(v) for v, c in zip(vals, counts) if c < 3]
    if rare:
        y = np.where(np.isin(y, rare), "\x00rare", y)
        if (y == "\x00rare").sum() < 2:                  # a lone rare row joins the largest class
            big = vals[np.argmax(counts)]
            y = np.where(y == "\x00rare", big, y)
    return y, [r.replace("\x00null", "<null>") for r in rare]


def root_lineage(df: pl.DataFrame, max_depth: int = 32) -> pl.Series:
    """For each row, the id at the end of its ``parent_id`` chain (itself if it has no parent)."""
    from curate import records as R
    links = df.select(pl.col(R.ID).cast(pl.String).alias("child"), pl.col("parent_id").cast(pl.String).alias("up"))
    cur = df.select(pl.coalesce(pl.col("parent_id").cast(pl.String), pl.col(R.ID).cast(pl.String)).alias("root"))
    for _ in range(max_depth):
        nxt = cur.join(links, left_on="root", right_on="child", how="left", maintain_order="left").select(
            pl.coalesce("up", "root").alias("root"))
        if nxt["root"].equals(cur["root"]):
            break
        cur = nxt
    return cur["root"]


def _multi_hot(labels: list[Any]) -> np.ndarray:
    from sklearn.preprocessing import MultiLabelBinarizer
    return MultiLabelBinarizer().fit_transform([[str(x) for x in (v or [])] for v in labels])


def _n_folds(test: float, val: float) -> int:
    """Smallest fold count k such that test*k and val*k are (close to) whole folds."""
    for k in range(2, 101):
        if all(abs(f * k - round(f * k)) < 1e-6 for f in (test, val)):
            return k
    return int(Fraction(test).limit_denominator(20).denominator)


@register_step("split")
class Split(Step):
    """Stratified, seeded, group-aware train/validation/test assignment."""

    Config = SplitConfig
    scope = "global"
    version = "2"
    memory = ("reads only the id, label, group and parent_id columns of its input, part by part "
              "(no texts), and holds those for every row; the engine then writes each part's rows "
              "with their split (curate.step.narrow_process).")

    def process_table(self, table, ctx: StepContext) -> TableResult | None:
        """:meth:`process` on the columns it reads (:func:`curate.step.narrow_process`)."""
        cfg: SplitConfig = self.config  # type: ignore[assignment]
        cols = [c for c in (cfg.stratify, cfg.group) if c is not None]
        if cfg.lineage and "parent_id" in table.unified_schema():
            cols.append("parent_id")
        return narrow_process(self, table, ctx, cols)

    def process(self, df: pl.DataFrame, ctx: StepContext) -> StepResult:
        cfg: SplitConfig = self.config  # type: ignore[assignment]
        for col, what in ((cfg.stratify, "stratify"), (cfg.group, "group")):
            R.require_column(df, col, "step split", f"{what} column")
        stats: dict[str, Any] = {}
        rejected = R.empty_rejects(df)
        if cfg.stratify is not None:
            n_in = df.height
            df, rejected = split_missing_labels(df, cfg.stratify, self.name)
            if rejected.height:
                stats["rejected_missing_label"] = rejected.height
                add_warnings(stats, removal_warning("split", n_in, rejected.height,
                                                    f"most rows have no {cfg.stratify!r}: check the mapping"))
        n = df.height
        if n == 0:
            return StepResult(kept=df.with_columns(pl.lit(None, dtype=pl.String).alias(cfg.column)),
                              rejected=rejected, stats=stats)
        multi = cfg.stratify is not None and isinstance(df.schema[cfg.stratify], (pl.List, pl.Array))
        labels = df[cfg.stratify].to_list() if cfg.stratify else None
        group_col = cfg.group
        work = df
        if cfg.lineage and "parent_id" in df.columns and df["parent_id"].null_count() < n:
            work = df.with_columns(root_lineage(df).alias("_lineage"))
            if cfg.group is not None:     # variants share their original's group value
                work = work.with_columns(pl.col(cfg.group).cast(pl.String).first().over("_lineage")
                                         .alias("_lineage"))
            group_col = "_lineage"
            stats["lineage_groups"] = int(work["_lineage"].n_unique())
        if group_col is not None:
            codes = work[group_col].cast(pl.String).fill_null("\x00null").to_numpy()
            _, groups = np.unique(codes, return_inverse=True)
            assign = self._grouped(labels, groups, multi, cfg, ctx.seed, stats, group_col)
        else:
            assign = self._rows(labels, n, multi, cfg, ctx.seed, stats)
        names = np.asarray([cfg.names["train"], cfg.names["validation"], cfg.names["test"]], dtype=object)
        out = df.with_columns(pl.Series(cfg.column, names[assign].tolist(), dtype=pl.String))
        stats.update(self._report(out, cfg, multi))
        if group_col is not None:
            straddle = out.with_columns(work[group_col].alias("_g")).group_by("_g").agg(
                pl.col(cfg.column).n_unique().alias("k")).filter(pl.col("k") > 1)
            stats["groups_straddling"] = straddle.height
        return StepResult(kept=out, rejected=rejected, stats=stats)

    # ------------------------------------------------------------------ row-level
    def _rows(self, labels, n: int, multi: bool, cfg: SplitConfig, seed: int, stats: dict) -> np.ndarray:
        from sklearn.model_selection import train_test_split
        idx = np.arange(n)
        assign = np.zeros(len(idx), dtype=np.int64)
        if multi:
            return self._multilabel_units(_multi_hot(labels), cfg, seed)
        strata = None
        if labels is not None:
            strata, rare = _strata(labels)
            if rare:
                stats["rare_classes_pooled"] = rare
        rest = idx
        for code, frac in ((2, cfg.test), (1, cfg.validation)):
            share = frac / (1 - (cfg.test if code == 1 else 0))
            if frac == 0 or len(rest) < 2:
                continue
            strat = strata[rest] if strata is not None else None
            try:
                rest, took = train_test_split(rest, test_size=share, random_state=seed, stratify=strat)
            except ValueError:               # a stratum too small for this split: plain shuffle
                stats.setdefault("unstratified_splits", []).append(["train", "validation", "test"][code])
                rest, took = train_test_split(rest, test_size=share, random_state=seed)
            assign[took] = code
        return assign

    def _multilabel_units(self, Y: np.ndarray, cfg: SplitConfig, seed: int) -> np.ndarray:
        from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit
        units = np.arange(len(Y))
        assign = np.zeros(len(Y), dtype=np.int64)
        rest = units
        for code, frac in ((2, cfg.test), (1, cfg.validation)):
            share = frac / (1 - (cfg.test if code == 1 else 0))
            if frac == 0 or len(rest) < 2:
                continue
            sp = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=share, random_state=seed)
            keep, took = next(sp.split(rest.reshape(-1, 1), Y[rest]))
            assign[rest[took]] = code
            rest = rest[keep]
        return assign

    # ------------------------------------------------------------------ group-level
    def _grouped(self, labels, groups: np.ndarray, multi: bool, cfg: SplitConfig, seed: int,
                 stats: dict, group_col: str) -> np.ndarray:
        n_groups = int(groups.max()) + 1
        stats["groups"] = n_groups
        if multi:
            Yrow = _multi_hot(labels)
            Yg = np.zeros((n_groups, Yrow.shape[1]), dtype=np.int64)
            np.maximum.at(Yg, groups, Yrow)
            return self._multilabel_units(Yg, cfg, seed)[groups]
        if labels is None:
            from sklearn.model_selection import GroupShuffleSplit
            assign = np.zeros(len(groups), dtype=np.int64)
            rest = np.arange(len(groups))
            for code, frac in ((2, cfg.test), (1, cfg.validation)):
                share = frac / (1 - (cfg.test if code == 1 else 0))
                if frac == 0 or len(np.unique(groups[rest])) < 2:
                    continue
                keep, took = next(GroupShuffleSplit(n_splits=1, test_size=share, random_state=seed)
                                  .split(rest, groups=groups[rest]))
                assign[rest[took]] = code
                rest = rest[keep]
            return assign
        from sklearn.model_selection import StratifiedGroupKFold
        k = _n_folds(cfg.test, cfg.validation)
        if n_groups < k:
            raise DataError(f"step split: group column {cfg.group or group_col!r} has {n_groups} distinct values; "
                            f"splitting {cfg.test:g}/{cfg.validation:g} by group needs at least {k}")
        y, rare = _strata(labels)
        if rare:
            stats["rare_classes_pooled"] = rare
        folds = np.empty(len(groups), dtype=np.int64)
        for f, (_, te) in enumerate(StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
                                    .split(np.zeros(len(y)), y, groups)):
            folds[te] = f
        n_test, n_val = round(cfg.test * k), round(cfg.validation * k)
        assign = np.zeros(len(groups), dtype=np.int64)
        assign[folds < n_test] = 2
        assign[(folds >= n_test) & (folds < n_test + n_val)] = 1
        stats["folds"] = k
        return assign

    # ------------------------------------------------------------------ stats
    def _report(self, out: pl.DataFrame, cfg: SplitConfig, multi: bool) -> dict[str, Any]:
        col = cfg.column
        rows = {str(k): int(v) for k, v in out.group_by(col).len().rows()}
        rep: dict[str, Any] = {"rows": rows}
        if cfg.stratify is None:
            return rep
        lab = out.select(col, pl.col(cfg.stratify).alias("_l"))
        if multi:
            lab = lab.explode("_l")
        lab = lab.with_columns(pl.col("_l").cast(pl.String).fill_null("null"))
        overall = lab.group_by("_l").len().with_columns(share=pl.col("len") / out.height)
        per = lab.group_by(col, "_l").len().join(
            out.group_by(col).len().rename({"len": "n"}), on=col).with_columns(share=pl.col("len") / pl.col("n"))
        per = per.join(overall.select("_l", pl.col("share").alias("all")), on="_l")
        rep["label_share"] = {str(s): {str(l): round(float(v), 4) for _, l, v in
                                       per.filter(pl.col(col) == s).select(col, "_l", "share").rows()}
                              for s in rows}
        # Classes absent from a split count as share 0 there.
        dev = 0.0
        shares = {l: a for l, a in overall.select("_l", "share").rows()}
        for s in rows:
            got = rep["label_share"][s]
            dev = max(dev, max(abs(got.get(l, 0.0) - a) for l, a in shares.items()))
        rep["max_share_deviation_pp"] = round(100 * dev, 3)
        return rep
