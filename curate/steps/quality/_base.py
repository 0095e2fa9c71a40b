"""The base of the heuristic quality filters: which columns, which language's defaults, and
per-field threshold overrides — so each rule family is one small class."""
from __future__ import annotations

from typing import Any, ClassVar

import polars as pl
from pydantic import Field, field_validator, model_validator

from curate import records as R
from curate.step import Filter, StepConfig, StepResult, cascade, detail_of
from curate.steps.clean._parallel import with_columns_parallel
from curate.steps.quality._stats import LANG_DEFAULTS


class HeuristicConfig(StepConfig):
    """Columns, language and per-field overrides shared by every heuristic filter."""

    columns: list[str] = Field(default_factory=lambda: ["text"], min_length=1,
                               description="String columns checked (each against its own thresholds).")
    language: str = Field(default="en", description="Which defaults apply: " + ", ".join(LANG_DEFAULTS)
                          + " (`any` = language-neutral rules only).")
    fields: dict[str, dict[str, float | int | None]] = Field(
        default_factory=dict,
        description="Per-column threshold overrides, e.g. {prompt: {min_words: 3}} (null turns a rule off).")

    #: The threshold names of the subclass (filled by each config).
    thresholds: ClassVar[tuple[str, ...]] = ()

    @field_validator("language")
    @classmethod
    def _known_language(cls, v: str) -> str:
        v = v.strip().lower()
        if v not in LANG_DEFAULTS:
            raise ValueError(f"no defaults for language {v!r}; known: {', '.join(LANG_DEFAULTS)} "
                             "(use `any` and set thresholds yourself)")
        return v

    @model_validator(mode="after")
    def _fields_known(self) -> HeuristicConfig:
        for col, over in self.fields.items():
            if col not in self.columns:
                raise ValueError(f"fields: {col!r} is not one of columns {self.columns}")
            bad = set(over) - set(self.thresholds)
            if bad:
                raise ValueError(f"fields.{col}: unknown threshold(s) {sorted(bad)}; "
                                 f"this step has {list(self.thresholds)}")
        return self

    def threshold(self, name: str, column: str) -> Any:
        """Override for ``column`` if given, else this config's value, else the language default."""
        over = self.fields.get(column, {})
        if name in over:
            return over[name]
        value = getattr(self, name)
        return value if value is not None else LANG_DEFAULTS[self.language].get(name)


class HeuristicFilter(Filter):
    """Subclasses implement :meth:`rules` for one column. Each measure is computed once per
    batch (in :meth:`prepare`, as a ``_q_*`` helper column) and compared to its threshold;
    reasons get ``[column]`` appended when more than one column is checked."""

    Config: ClassVar[type[HeuristicConfig]] = HeuristicConfig

    def rules(self, col: str) -> list[tuple[str, str, pl.Expr, str, Any]]:
        """``(reason, measure_name, measure_expr, "min" | "max", threshold)`` for ``col``;
        rules whose threshold is None are left out."""
        raise NotImplementedError

    def _all(self) -> list[tuple[str, str, pl.Expr, str, Any]]:
        """Every rule of every column (built once per step: the filters, details and reasons
        all read it, and building polars expressions is a fixed cost on every batch)."""
        cached = self.__dict__.get("_all_rules")
        if cached is None:
            cached = self.__dict__["_all_rules"] = self._build_all()
        return cached

    def _build_all(self) -> list[tuple[str, str, pl.Expr, str, Any]]:
        out = []
        multi = len(self.config.columns) > 1
        for col in self.config.columns:
            for reason, measure, expr, op, thr in self.rules(col):
                if thr is not None:
                    out.append((f"{reason}[{col}]" if multi else reason, f"_q_{col}_{measure}", expr, op, thr))
        return out

    def prepare(self, df, ctx):
        from curate import records as R
        for col in self.config.columns:
            R.require_column(df, col, f"step {self.name}")
        measures = {name: expr for _, name, expr, _, _ in self._all()}
        return self.with_detail(with_columns_parallel(df, measures)) if measures else df

    def with_detail(self, work: pl.DataFrame) -> pl.DataFrame:
        """Add ``_q_reason`` (the first rule each row breaks, null = kept) and ``_q_detail`` (its
        detail string, formatted for those rows only: a ``cascade`` with one ``format`` per rule
        would format every row once per rule)."""
        rules = self._all()
        detail = pl.Series("_q_detail", [None] * work.height, dtype=pl.String)
        reason, _ = cascade(self.filters(), {})
        work = work.with_columns(reason.alias("_q_reason"))
        idx = work.get_column("_q_reason").is_not_null().arg_true()
        if rules and idx.len():
            fmts = {r: fmt(pl.col(m), "<" if op == "min" else ">", thr) for r, m, _, op, thr in rules}
            text = detail_of(pl.col("_q_reason"), fmts)     # the reason column, computed above
            measures = work.select(list(dict.fromkeys(["_q_reason"] + [m for _, m, *_ in rules])))
            detail = detail.scatter(idx, measures[idx].select(text).to_series())
        return work.with_columns(detail)

    def process(self, df: pl.DataFrame, ctx) -> StepResult:
        """:meth:`Filter.process`, reading the reason and detail that :meth:`with_detail`
        computed once (the generic cascade re-evaluates the reason chain for every rule's
        detail); same kept rows, rejects and stats."""
        work = self.prepare(df, ctx)
        if "_q_reason" not in work.columns:
            return super().process(df, ctx)
        work = work.with_columns(pl.col("_q_reason").alias("_reason"), pl.col("_q_detail").alias("_detail"))
        stats = self.filter_stats(work)
        helper = [c for c in work.columns if c.startswith("_") and c not in df.columns]
        kept = work.filter(pl.col("_reason").is_null())
        kept = kept.with_columns(**self.annotations()).drop(helper)
        rej = work.filter(pl.col("_reason").is_not_null())
        rej = R.reject(rej, self.name, pl.col("_reason"), pl.col("_detail")).drop(helper)
        counts = rej.group_by(R.REASON).len().rows() if rej.height else []
        return StepResult(kept=kept, rejected=rej, stats={**stats, "rejected_by_reason": dict(counts)})

    def filters(self) -> list[tuple[str, pl.Expr]]:
        return [(r, (pl.col(m) >= thr) if op == "min" else (pl.col(m) <= thr))
                for r, m, _, op, thr in self._all()]

    def details(self) -> dict[str, pl.Expr]:
        return {r: pl.col("_q_detail") for r, *_ in self._all()}


def fmt(value: pl.Expr, op: str, thr: Any) -> pl.Expr:
    """A detail string such as ``"12 < 50"`` (values rounded to 3 decimals)."""
    return pl.format("{} " + op + " {}", value.cast(pl.Float64).round(3), pl.lit(str(thr)))


def file_digests(paths: list[str | None]) -> dict[str, str]:
    """sha256 of each existing file in ``paths`` — added to a step's ``raw_config`` so the cache
    key changes when a word list, exemplar file or reviewed file changes."""
    import hashlib
    from pathlib import Path
    out = {}
    for p in paths:
        if p and Path(p).is_file():
            out[str(p)] = hashlib.sha256(Path(p).read_bytes()).hexdigest()[:20]
    return out
