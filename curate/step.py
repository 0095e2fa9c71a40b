"""The step protocol: one small class per step, a pydantic config, polars batches in,
kept rows + rejected rows (with a ``reason``) out.

Three shapes cover almost every step:

* :class:`Filter` — return ``(reason, keep_expression)`` pairs; the base class evaluates them
  vectorised and records the first failing reason per row.
* :class:`Mapper` — return the batch with new or rewritten columns (same rows, same ids).
* :class:`Step` with ``scope = "global"`` — sees the whole table (dedup, balance, split, synth).
  A global step may also implement :meth:`Step.process_table`: it reads the input
  :class:`curate.cache.Table` part by part (only the columns it needs) and returns row
  *positions* (:class:`TableResult`); the engine then takes the kept and rejected rows from the
  parts as it writes them, so the step never holds the whole table. Each global step states its
  memory model in ``memory`` (``curate show`` prints it).

The engine owns accounting (every input id leaves exactly once, as kept or rejected; new ids are
counted as created), timing, caching and the reject files.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from curate import records as R
from curate.component import Component


class StepConfig(BaseModel):
    """Options every step accepts."""

    model_config = ConfigDict(extra="forbid")
    apply_to: list[str] | None = Field(
        default=None,
        description="Names of sources (the `origin` of rows) this step applies to; other rows pass "
                    "through untouched. Default: all rows.")


@dataclass
class StepResult:
    """What a step returns: kept rows, rejected rows (with step/reason/detail) and stats."""

    kept: pl.DataFrame
    rejected: pl.DataFrame = field(default_factory=pl.DataFrame)
    stats: dict[str, Any] = field(default_factory=dict)

    def __iter__(self):
        """``kept, rejected = step.run(df)``."""
        return iter((self.kept, self.rejected))


@dataclass
class TableResult:
    """What :meth:`Step.process_table` returns: positions (row numbers of the input table).

    ``kept``: sorted positions of the kept rows (values unchanged). ``rejected``: groups of
    ``(positions, columns)``, written in group order; within a group the positions are sorted and
    ``columns`` (one row per position: ``step``/``reason``/``detail`` and any step columns such as
    ``duplicate_of``) is added to the input row with ``with_columns``."""

    kept: np.ndarray
    rejected: list[tuple[np.ndarray, pl.DataFrame]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    #: columns added to (or rewritten in) the kept rows, one row per kept position (``split``);
    #: None: the kept rows are unchanged (stored as row numbers)
    kept_columns: pl.DataFrame | None = None
    #: rows the step made as copies of input rows (``balance`` oversampling), written after the
    #: kept rows: the positions they copy (non-decreasing; a row copied k times appears k times)
    #: and the columns set on each copy (its new ``id``, ``parent_id``, ...), one row per copy
    created: tuple[np.ndarray, pl.DataFrame] | None = None

    def check(self, rows: int, step: str) -> None:
        """Accounting: every input row is kept or rejected exactly once, each rejection with a reason."""
        from curate.errors import StepError
        if self.kept_columns is not None and self.kept_columns.height != len(self.kept):
            raise StepError(f"step {step}: kept columns do not match the kept rows")
        if self.created is not None:
            pos, cols = np.asarray(self.created[0]), self.created[1]
            if cols.height != len(pos) or R.ID not in cols.columns or cols[R.ID].null_count():
                raise StepError(f"step {step}: created rows need one row of columns each, with an id")
            if len(pos) and (pos.min() < 0 or pos.max() >= rows or (np.diff(pos) < 0).any()):
                raise StepError(f"step {step}: created rows' parent positions out of range or not sorted")
        seen = np.zeros(rows, dtype=np.int8)
        for pos, cols in [(self.kept, None)] + list(self.rejected):
            pos = np.asarray(pos)
            if len(pos) and (pos.min() < 0 or pos.max() >= rows or (np.diff(pos) <= 0).any()):
                raise StepError(f"step {step}: positions out of range or not sorted")
            if cols is not None and (cols.height != len(pos) or R.REASON not in cols.columns
                                     or cols[R.REASON].null_count()):
                raise StepError(f"step {step}: rejected rows must all carry a `reason`")
            seen[pos] += 1            # strictly increasing: no repeated index
        if (seen != 1).any():
            bad = int(np.flatnonzero(seen != 1)[0])
            raise StepError(f"step {step}: accounting broken: input row {bad} leaves the step "
                            f"{int(seen[bad])} times")


@dataclass
class StepContext:
    """What the engine hands a step while it runs."""

    step_name: str
    index: int
    seed: int
    workdir: Path                      # scratch space private to this step's fingerprint
    batch_size: int = 50_000
    progress: Callable[[int, int | None], None] = lambda advance, total=None: None
    shards: "Any" = None               # curate.cache.ShardStore for resumable work
    log: Callable[[str], None] = lambda msg: None
    extras: dict[str, Any] = field(default_factory=dict)


class Step(Component, ABC):
    """Base class. Subclasses set ``Config`` and implement :meth:`process`."""

    name: ClassVar[str] = "step"
    Config: ClassVar[type[StepConfig]] = StepConfig
    scope: ClassVar[Literal["batch", "global"]] = "batch"
    #: Batch steps that are slow (LLM calls, translation) set this: each finished batch is
    #: written as a shard, so a killed run resumes without losing or repeating rows.
    resumable: ClassVar[bool] = False
    #: How the step's memory grows with its input (global steps say it; ``curate show`` prints it).
    memory: ClassVar[str] = ""

    @abstractmethod
    def process(self, df: pl.DataFrame, ctx: StepContext) -> StepResult:
        """Process one batch (or the whole table when ``scope == "global"``)."""

    def process_table(self, table: "Any", ctx: StepContext) -> TableResult | None:
        """Optional, for global steps: process the input table (a :class:`curate.cache.Table`,
        read part by part, only the needed columns) and return row positions, or None to get the
        whole table as one frame in :meth:`process` instead (the default, and what the Ray
        executor always does)."""
        return None

    def merge_stats(self, stats: list[dict[str, Any]]) -> dict[str, Any]:
        """Combine per-batch stats; default sums numbers and nested number dicts."""
        return merge_numeric(stats)

    def describe(self) -> str:
        return self.name

    def run(self, data: Any, *, seed: int = 0, batch_size: int = 50_000) -> StepResult:
        """Run this step alone on ``data`` (a polars/pandas DataFrame, Arrow table,
        ``datasets.Dataset`` or list of dicts): ``kept, rejected = Clean(min_words=3).run(df)``.

        Rows without ``id``/``source`` get them (content ids, ``memory:<row>`` locators); the
        context, scratch folder and accounting check are the engine's, so the result is what the
        step would give inside a pipeline."""
        from curate.standalone import run_step
        return run_step(self, data, seed=seed, batch_size=batch_size)


_POS = "__curate_pos"


def narrow_process(step: "Step", table: Any, ctx: StepContext, columns: list[str],
                   hashed: list[str] = ()) -> TableResult | None:
    """:meth:`Step.process_table` for a global step that reads only ``columns`` (ids, labels,
    groups: not the texts): runs :meth:`Step.process` on those columns plus a row number, and
    maps its kept and rejected rows back to positions, the columns it added riding along.
    ``hashed`` columns (texts the step only compares or counts) are read part by part and
    replaced by a 64-bit hash of each value (nulls stay null), never written back. Kept rows the
    step made as copies of input rows (a new ``id`` on a row whose row number it kept) become
    ``TableResult.created``. None (the whole-frame path) when a column is missing (so its error
    names every column) or when the step reordered rows or created others."""
    have = table.unified_schema()
    if any(c not in have for c in columns):
        return None
    hashed = [c for c in hashed if c in have and c not in columns and c != R.ID]
    cols = list(dict.fromkeys([R.ID, *columns, *hashed]))
    frames = [f.with_columns(pl.int_range(off, off + f.height, dtype=pl.Int64).alias(_POS),
                             *[pl.when(pl.col(c).is_null()).then(None).otherwise(pl.col(c).hash(seed=0x7E))
                               .alias(c) for c in hashed])
              for off, f in table.iter_parts(cols)]
    df = R.concat(frames) if len(frames) > 1 else frames[0]
    del frames
    res = step.process(df, ctx)
    kept = res.kept if res.kept.width else df.clear()
    rej = res.rejected if res.rejected.width and res.rejected.height else None
    parts = [kept] + ([rej] if rej is not None else [])
    if any(_POS not in f.columns or f[_POS].null_count() for f in parts):
        return None
    # copies: kept rows whose id is not the id of the input row at their row number
    orig_id = df[R.ID].gather(kept[_POS])
    copy = (kept[R.ID] != orig_id).fill_null(True).to_numpy() if kept.height else np.zeros(0, bool)
    n_orig = int((~copy).sum())
    if copy[:n_orig].any():                       # copies must follow every kept original
        return None
    made, kept = kept.slice(n_orig), kept.slice(0, n_orig)
    kpos = kept[_POS].to_numpy()
    rpos = rej[_POS].to_numpy() if rej is not None else np.zeros(0, np.int64)
    cpos = made[_POS].to_numpy()
    if ((np.diff(kpos) <= 0).any() or (np.diff(rpos) <= 0).any() or (np.diff(cpos) < 0).any()
            or len(kpos) + len(rpos) != df.height):
        return None
    added = kept.drop(_POS)
    added = added.select([c for c in added.columns if c not in df.columns or c in columns])
    out = TableResult(kept=kpos, stats=res.stats,
                      kept_columns=added if added.width else None)
    if made.height:        # what differs from the copied row: its id and the columns the step set
        out.created = (cpos, made.select([c for c in made.columns if c != _POS and c not in hashed]))
    if rej is not None:
        out.rejected = [(rpos, rej.drop(_POS).select([c for c in rej.columns
                                                     if c != _POS and c not in df.columns]))]
    return out


def merge_numeric(stats: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for s in stats:
        for k, v in s.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and isinstance(out.get(k, 0), (int, float)):
                out[k] = out.get(k, 0) + v
            elif isinstance(v, dict):
                out[k] = merge_numeric([out.get(k, {}), v]) if isinstance(out.get(k, {}), dict) else v
            else:
                out[k] = v
    return out


def cascade(checks: list[tuple[str, pl.Expr]], details: dict[str, pl.Expr]) -> tuple[pl.Expr, pl.Expr]:
    """``(reason, detail)`` expressions: the first failing check's reason per row (null = kept)
    and that reason's detail expression. Nulls in a keep expression count as failing."""
    # a flat coalesce, not a nested when/then chain: the same first failing reason, and polars
    # plans it in time linear in the number of checks
    reason = pl.coalesce([pl.when(~keep.fill_null(False)).then(pl.lit(rs)) for rs, keep in checks]
                         + [pl.lit(None, dtype=pl.String)])
    return reason, detail_of(reason, details)


def detail_of(reason: pl.Expr, details: dict[str, pl.Expr]) -> pl.Expr:
    """The detail expression of each row's ``reason`` (null where no detail is defined)."""
    detail: pl.Expr = pl.lit(None, dtype=pl.String)
    for rs, expr in details.items():
        detail = pl.when(reason == rs).then(expr.cast(pl.String)).otherwise(detail)
    return detail


class Filter(Step):
    """A step that keeps or rejects rows by vectorised boolean expressions.

    ``prepare`` may add helper columns (names starting with ``_``) that ``filters``, ``details``,
    ``annotations`` and ``filter_stats`` read; they never leave the step. A filter whose
    ``prepare`` is slow (a model, a tokenizer, Python per row) sets ``costly = True``: a composite
    such as ``clean`` then runs it only on the rows that the cheaper filters before it kept.
    """

    costly: ClassVar[bool] = False

    def prepare(self, df: pl.DataFrame, ctx: StepContext) -> pl.DataFrame:
        """Optionally add helper columns (prefixed ``_``) the filters read; dropped afterwards."""
        return df

    @abstractmethod
    def filters(self) -> list[tuple[str, pl.Expr]]:
        """``(reason, keep_expr)`` pairs, checked in order; the first failing one is recorded."""

    def details(self) -> dict[str, pl.Expr]:
        """Optional ``reason -> detail expression`` to explain a rejection (e.g. the length)."""
        return {}

    def annotations(self) -> dict[str, pl.Expr]:
        """Optional ``column -> expression`` added to the kept rows (e.g. a ``language_uncertain``
        flag for rows the filter kept without being sure)."""
        return {}

    def filter_stats(self, prepared: pl.DataFrame) -> dict[str, Any]:
        """Optional manifest stats computed from the prepared batch (e.g. languages detected)."""
        return {}

    def process(self, df: pl.DataFrame, ctx: StepContext) -> StepResult:
        work = self.prepare(df, ctx)
        # The reason chain is evaluated once; details only for the rows it rejects.
        reason, _ = cascade(self.filters(), {})
        work = work.with_columns(reason.alias("_reason"))
        stats = self.filter_stats(work)
        helper = [c for c in work.columns if c.startswith("_") and c not in df.columns]
        kept = work.filter(pl.col("_reason").is_null())
        kept = kept.with_columns(**self.annotations()).drop(helper, strict=False)
        rej = work.filter(pl.col("_reason").is_not_null())
        rej = rej.with_columns(detail_of(pl.col("_reason"), self.details()).alias("_detail"))
        rej = R.reject(rej, self.name, pl.col("_reason"), pl.col("_detail")).drop(
            helper + ["_detail"], strict=False)
        counts = rej.group_by(R.REASON).len().rows() if rej.height else []
        return StepResult(kept=kept, rejected=rej, stats={**stats, "rejected_by_reason": dict(counts)})


class Mapper(Step):
    """A step that rewrites or adds columns; keeps every row and its id."""

    @abstractmethod
    def map(self, df: pl.DataFrame, ctx: StepContext) -> pl.DataFrame | tuple[pl.DataFrame, dict[str, Any]]:
        """Return ``df`` with columns rewritten/added (same height and row order), or
        ``(df, stats)`` to add numbers (e.g. rows changed) to the manifest."""

    def process(self, df: pl.DataFrame, ctx: StepContext) -> StepResult:
        got = self.map(df, ctx)
        out, stats = got if isinstance(got, tuple) else (got, {})
        if out.height != df.height:
            from curate.errors import StepError
            raise StepError(f"mapper {self.name} changed the row count ({df.height} -> {out.height})")
        return StepResult(kept=out, rejected=R.empty_rejects(df), stats=stats)
