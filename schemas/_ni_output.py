"""The ``natural_instructions`` output: rows -> NI task file(s), one per task and per split.

Tasks come from ``split_by`` (one per value), else from the NI source's ``task_meta`` (one per
source task, its header, ids and examples reused), else one task from the config. Each task is
written once per split of the rows (``_train``, ``_validation``, ``_test`` file-name suffixes;
see :mod:`curate.sink`), with the same examples everywhere, picked from the train split only so
no test row becomes a demonstration.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import Field

from curate.errors import CurateError, DataError
from curate.registry import register_output
from curate.schemas.natural_instructions import (META_COLUMN, Examples, TaskSpec, build_task,
                                                 choose_examples, infer_labels, merge_instances,
                                                 spec_from_meta, task_file_name, task_header,
                                                 validate_task, write_task)
from curate import records as R
from curate.sink import Sink, SplitSinkConfig

log = logging.getLogger("curate.schemas.natural_instructions")


class NIOutputConfig(SplitSinkConfig, TaskSpec):
    """Options of the ``natural_instructions`` output."""

    dir: str = Field(description="Folder for the task file(s) `task<N>_<name>.json`.")
    split_by: str | None = Field(default=None,
                                 description="Write one task per value of this column (task numbers N, N+1, ...).")
    definition_column: str | None = Field(
        default=None, description="Take each task's Definition from this column (its first non-empty value "
                                  "in the task's rows, e.g. a generated `instruction`); `definition` is the fallback.")
    use_task_meta: bool = Field(
        default=True, description="Rows read by the natural_instructions source carry their task's header "
                                  "(`task_meta`): reuse its name, number, definition, examples, metadata and "
                                  "instance ids wherever this config sets none (a lossless round trip).")


class _Task:
    """One task to write: its rows (with a ``_part`` index), spec, source header and name base."""

    def __init__(self, value: str | None, rows: pl.DataFrame, spec: TaskSpec,
                 meta: dict[str, Any] | None, default_base: str | None = None) -> None:
        self.value, self.rows, self.spec, self.meta, self.default_base = value, rows, spec, meta, default_base


@register_output("natural_instructions")
class NaturalInstructionsOutput(Sink):
    """Natural Instructions v2 task file(s), checked against the upstream test_all.py rules."""

    Config = NIOutputConfig
    version = "2"

    def targets(self) -> list[Path]:
        return [self.path(self.config.dir)]

    def _spec(self) -> TaskSpec:
        return TaskSpec(**self.config.model_dump(include=set(TaskSpec.model_fields)))

    def _overrides(self) -> set[str]:
        return set(self.config.model_fields_set)

    # ------------------------------------------------------------------ tasks
    def _tasks(self, df: pl.DataFrame) -> list[_Task]:
        cfg, spec, over = self.config, self._spec(), self._overrides()
        if cfg.split_by is not None:
            R.require_column(df, cfg.split_by, "natural_instructions", "split_by column")
            values = sorted(df[cfg.split_by].cast(pl.String).drop_nulls().unique().to_list())
            self.stats["rows_without_split_value"] = df[cfg.split_by].null_count()
            if spec.labels is None and spec.output in df.columns:     # one label set for every part
                spec = spec.model_copy(update={"labels": infer_labels(df[spec.output])})
            tasks = [_Task(v, df.filter(pl.col(cfg.split_by).cast(pl.String) == v),
                           spec.model_copy(update={"task_number": spec.task_number + i}), None)
                     for i, v in enumerate(values)]
        elif cfg.use_task_meta and META_COLUMN in df.columns and df[META_COLUMN].null_count() < df.height:
            tasks = []
            for m in df[META_COLUMN].unique(maintain_order=True).to_list():
                rows = df.filter(pl.col(META_COLUMN).is_null() if m is None else pl.col(META_COLUMN) == m)
                if m is None:
                    tasks.append(_Task(None, rows, spec, None))
                    continue
                meta = json.loads(m)
                sp = spec_from_meta(spec, meta, over)
                if "output" not in over and "output" in df.columns and isinstance(df.schema["output"], pl.List):
                    sp = sp.model_copy(update={"output": "output"})
                tasks.append(_Task(None, rows, sp, meta))
        else:
            tasks = [_Task(None, df, spec, None)]
        if cfg.definition_column is not None:
            R.require_column(df, cfg.definition_column, "natural_instructions", "definition_column")
            for t in tasks:
                vals = t.rows[cfg.definition_column].cast(pl.String).str.strip_chars()
                vals = vals.filter(vals.is_not_null() & (vals != ""))
                if vals.len():
                    t.spec = t.spec.model_copy(update={"definition": [vals[0]]})
        for t in tasks:                  # one label set per task, shared by its split files
            if t.spec.labels is None and t.spec.output in t.rows.columns:
                t.spec = t.spec.model_copy(update={"labels": infer_labels(t.rows[t.spec.output])})
            if t.meta is None and "task_name" not in over and "source" not in over and self.pipeline_name:
                t.default_base = self.pipeline_name
        return tasks

    def _examples(self, task: _Task, names: list[str | None], seed: int) -> Examples:
        """Examples of one task, picked from its train split — else from any split but test, so a
        test row never becomes a demonstration — else from all its rows (no splits)."""
        sp, over, meta = task.spec, self._overrides(), task.meta or {}
        for col in (sp.input, sp.output):
            R.require_column(task.rows, col, "natural_instructions", "column",
                             hint=" (set `input:`/`output:` in the output config)")
        part = pl.col("_part")
        rows = task.rows
        for pick in ([i for i, s in enumerate(names) if s == "train"],
                     [i for i, s in enumerate(names) if s is not None and s != "test"]):
            if pick and rows.filter(part.is_in(pick)).height:
                rows = rows.filter(part.is_in(pick))
                break
        merged, _, _ = merge_instances(rows, sp.input, sp.output)
        # The config's examples, or its explicit auto_examples, win over the source task's examples.
        mine = "auto_examples" in over and sp.auto_examples is not False
        pos = meta.get("Positive Examples") if not ({"positive_examples"} & over or mine) else None
        neg = meta.get("Negative Examples") if not ({"negative_examples"} & over or mine) else None
        return choose_examples(merged, sp, sp.labels, seed, pos if isinstance(pos, list) else None,
                               neg if isinstance(neg, list) else None, "task_meta")

    # ------------------------------------------------------------------ write
    def write_parts(self, parts: list[tuple[str | None, pl.DataFrame]], seed: int) -> list[list[Path]]:
        cfg = self.config
        self.stats = {"tasks": {}}
        whole = pl.concat([p.with_columns(pl.lit(i, dtype=pl.Int32).alias("_part")) for i, (_, p) in enumerate(parts)],
                          how="diagonal_relaxed")
        names = [s for s, _ in parts]
        built: list[tuple[int, str, dict[str, Any]]] = []
        warnings: list[str] = []
        for t in self._tasks(whole):
            examples = self._examples(t, names, seed)
            header = task_header(t.spec, t.meta, self._overrides())
            for i, split in enumerate(names):
                part = t.rows.filter(pl.col("_part") == i).drop("_part")
                if part.height == 0:
                    continue
                where = "natural_instructions output" + (f" ({cfg.split_by}={t.value!r})" if t.value else "") \
                    + (f" (split {split})" if split else "")
                try:
                    task, stats = build_task(part, t.spec, seed, examples, header)
                except CurateError as e:
                    if type(e) not in (DataError, CurateError):
                        raise
                    raise type(e)(f"{where}: {str(e).removeprefix('natural_instructions: ')}") from None
                fname = task_file_name(t.spec, stats["classification"], t.value, split,
                                       default_base=t.default_base)
                if fname in self.stats["tasks"]:
                    raise CurateError(f"{where}: two tasks would both be written to {fname}; set task_number "
                                      "or task_name, or split_by")
                if t.default_base:
                    stats["file_name_from"] = "pipeline name (set task_name to choose)"
                    log.info("natural_instructions: task file %s named after the pipeline %r (set task_name "
                             "to choose)", fname, t.default_base)
                problems = validate_task(task, Path(fname).stem)
                stats["problems"], stats["split"] = problems, split
                self.stats["tasks"][fname] = stats
                warnings += [f"{fname}: {w}" for w in stats.pop("warnings", [])]
                if problems:
                    where = f"{where.replace('natural_instructions output', 'natural_instructions output ' + fname)}"
                    if cfg.strict:
                        raise CurateError(f"{where}: " + "; ".join(problems) + " [set strict: false to write anyway]")
                    for p in problems:
                        log.warning("%s: %s", where, p)
                    warnings += [f"{fname}: {p}" for p in problems]
                built.append((i, fname, task))
        if warnings:
            self.stats["warnings"] = warnings
        out: list[list[Path]] = [[] for _ in parts]
        for i, fname, task in built:
            out[i].append(write_task(task, self.path(cfg.dir) / fname))
        return out
