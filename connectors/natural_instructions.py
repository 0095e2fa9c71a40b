"""The ``natural_instructions`` source: NI task files, one row per instance. The format's rules
(reading, normalising, checking an instance) live in :mod:`curate.schemas.natural_instructions`."""
from __future__ import annotations

import glob as _glob
import json
import os
from pathlib import Path
from typing import Iterator

import polars as pl
from pydantic import Field

from curate import records as R
from curate.errors import DataError
from curate.registry import register_source
from curate.schemas.natural_instructions import META_COLUMN, is_str_list, load_task, meta_json, validate_instance
from curate.source import Source, SourceBatch, SourceConfig, quarantine


class NISourceConfig(SourceConfig):
    """Options of the ``natural_instructions`` source."""

    path: str | list[str] = Field(description="Task file(s): a path, a glob, or a list of them.")
    task_meta: bool = Field(
        default=True, description="Carry each task's header (definition, examples, Contributors, Source, "
                                  "Categories, ...) as JSON in a `task_meta` column, so the "
                                  "natural_instructions output writes the same task back.")


@register_source("natural_instructions")
class NaturalInstructionsSource(Source):
    """Natural Instructions task files: one row per instance (text, output, label, task, definition,
    instance_id and, by default, the task's header as JSON in ``task_meta``)."""

    Config = NISourceConfig
    version = "2"

    def files(self) -> list[Path]:
        pats = self.config.path if isinstance(self.config.path, list) else [self.config.path]
        out: list[Path] = []
        for p in map(os.path.expanduser, pats):
            hits = sorted(_glob.glob(p, recursive=True)) if _glob.has_magic(p) else [p]
            if not hits:
                raise DataError(f"natural_instructions source: no file matches {p!r}")
            out += [Path(h) for h in hits]
        return out

    def fingerprint(self) -> str | None:
        parts = []
        for f in self.files():
            try:
                st = f.stat()
            except FileNotFoundError:
                return None
            parts.append(f"{f}:{st.st_size}:{st.st_mtime_ns}")
        return "|".join(parts)

    def read(self) -> Iterator[SourceBatch]:
        for path in self.files():
            task = load_task(path)
            definition = task.get("Definition")
            definition = "\n".join(definition) if is_str_list(definition) else None
            inst = task.get("Instances")
            if not isinstance(inst, list):
                raise DataError(f"natural_instructions source: {path}: `Instances` is missing or not a list")
            good, locs, bad_locs, reasons, details = [], [], [], [], []
            for j, x in enumerate(inst):
                loc = f"natural_instructions:{path}:{j}"
                problem = validate_instance(x)
                if problem:
                    bad_locs.append(loc)
                    reasons.append(problem)
                    details.append(json.dumps(x, ensure_ascii=False, default=str)[:200])
                else:
                    good.append(x)
                    locs.append(loc)
            rows = pl.DataFrame({
                R.SOURCE: pl.Series(locs, dtype=pl.String),
                "text": pl.Series([x["input"] for x in good], dtype=pl.String),
                "output": pl.Series([x["output"] for x in good], dtype=pl.List(pl.String)),
                "label": pl.Series([x["output"][0] for x in good], dtype=pl.String),
                "task": pl.Series([path.stem] * len(good), dtype=pl.String),
                "definition": pl.Series([definition] * len(good), dtype=pl.String),
                "instance_id": pl.Series([x["id"] for x in good], dtype=pl.String),
            })
            if self.config.task_meta:
                rows = rows.with_columns(pl.lit(meta_json(task, path.stem), dtype=pl.String).alias(META_COLUMN))
            rejected = quarantine(bad_locs, reasons, details, self.origin) if bad_locs else pl.DataFrame()
            yield SourceBatch(rows, rejected)
