"""Human review round-trip: export the rows that need review to Label Studio JSON (with the
automatic label as a prediction) and to a CSV a person can edit; import the reviewed file back,
matched by row id, with agreement statistics. A partial file loses nothing: rows it does not
cover keep their automatic label and stay ``needs_review``.

    outputs:
      - review_export: {dir: out/review, label_column: weak_label, labels: [ham, spam]}
    # ... people label out/review/review.csv (column `label`, or label_<name> per annotator)
    #     or import out/review/tasks.json into Label Studio and export JSON when done
    steps:
      - review_import: {path: out/review/review.csv, label_column: weak_label}

Import stats: ``reviewed``, ``pending``, ``changed`` (human ≠ automatic), ``unknown_ids``,
``invalid_labels``, ``agreement_with_auto`` and ``kappa_with_auto``; with two or more annotators
``annotators``, ``annotator_agreement`` and ``cohen_kappa`` (sklearn, first two annotators, on the
rows both labelled). Annotators who disagree leave the row pending (``review_conflicts``).
"""
from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from curate import records as R
from curate.errors import StepError
from curate.registry import register_output, register_step
from curate.sink import Sink, SinkConfig
from curate.step import Mapper, StepConfig

try:
    from curate.io import write_text
except ImportError:                       # pragma: no cover - before curate.io existed
    from curate.cache import write_text

TASKS, CSV_NAME, XML = "tasks.json", "review.csv", "label_config.xml"


class ReviewColumns(BaseModel):
    """Column names shared by export and import."""

    model_config = ConfigDict(extra="forbid")
    text_column: str = Field(default="text", description="Text shown to reviewers.")
    label_column: str = Field(default="auto_label", description="Automatic label (suggested; replaced by the human label on import).")
    confidence_column: str = Field(default="confidence", description="Confidence of the automatic label.")
    review_column: str = Field(default="needs_review", description="Boolean flag: the row needs a person.")


# ------------------------------------------------------------------------------ export
def label_config_xml(labels: list[str]) -> str:
    """A Label Studio labelling interface: the text and one choice per label."""
    from xml.sax.saxutils import quoteattr
    choices = "\n".join(f"    <Choice value={quoteattr(lab)}/>" for lab in labels)
    return (f'<View>\n  <Text name="text" value="$text"/>\n  <Choices name="label" toName="text" choice="single">\n'
            f"{choices}\n  </Choices>\n</View>\n")


def export_review(df: pl.DataFrame, out_dir: str | Path, cfg: ReviewColumns, labels: list[str] | None = None,
                  only_needs_review: bool = True, extra_columns: list[str] | None = None) -> tuple[list[Path], int]:
    """Write ``tasks.json`` (Label Studio), ``review.csv`` and ``label_config.xml``."""
    for col in (R.ID, cfg.text_column, cfg.label_column):
        R.require_column(df, col, "review_export")
    rows = df
    if only_needs_review and cfg.review_column in df.columns:
        rows = df.filter(pl.col(cfg.review_column).fill_null(True))
    conf = rows.get_column(cfg.confidence_column) if cfg.confidence_column in rows.columns else pl.Series([None] * rows.height)
    extra = [c for c in (extra_columns or []) if c in rows.columns]
    tasks, buf = [], io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["id", "text", "suggested_label", "confidence", *extra, "label"])
    for i, (rid, text, lab, cf, *ex) in enumerate(zip(
            rows[R.ID], rows[cfg.text_column], rows[cfg.label_column], conf, *(rows[c] for c in extra))):
        task: dict[str, Any] = {"id": i + 1, "data": {"row_id": rid, "text": text, **dict(zip(extra, ex))}}
        if lab is not None:
            task["predictions"] = [{"model_version": "curate", "score": cf, "result": [
                {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [lab]}}]}]
        tasks.append(task)
        writer.writerow([rid, text, lab or "", "" if cf is None else cf, *ex, ""])
    out = Path(out_dir)
    labels = labels or sorted(df.get_column(cfg.label_column).drop_nulls().unique().to_list())
    write_text(json.dumps(tasks, ensure_ascii=False, indent=1), out / TASKS)
    write_text(buf.getvalue(), out / CSV_NAME)
    write_text(label_config_xml(labels), out / XML)
    return [out / TASKS, out / CSV_NAME, out / XML], rows.height


class ReviewExportConfig(SinkConfig, ReviewColumns):
    """Where the review files go."""

    dir: str = Field(description="Folder for tasks.json, review.csv and label_config.xml.")
    labels: list[str] | None = Field(default=None, description="The label set offered to reviewers (default: labels seen).")
    all_rows: bool = Field(default=False, description="Export every row, not only those needing review.")
    extra_columns: list[str] = Field(default_factory=list, description="More columns shown to reviewers.")


@register_output("review_export")
class ReviewExport(Sink):
    """Rows needing review → Label Studio tasks + editable CSV."""

    Config = ReviewExportConfig

    def targets(self) -> list[Path]:
        return [Path(self.config.dir)]

    def write(self, df: pl.DataFrame, seed: int) -> list[Path]:
        c = self.config
        paths, n = export_review(df, c.dir, c, c.labels, not c.all_rows, c.extra_columns)
        self.stats = {"exported": n}
        return paths


# ------------------------------------------------------------------------------ import
def read_reviews(path: str | Path) -> dict[str, dict[str, str]]:
    """``row id -> {annotator: label}`` from a reviewed CSV (``label`` / ``label_<name>`` columns)
    or a Label Studio JSON export (``annotations`` per task, ``data.row_id``)."""
    p = Path(path)
    if not p.is_file():
        raise StepError(f"review_import: reviewed file {str(p)!r} not found")
    out: dict[str, dict[str, str]] = {}
    if p.suffix.lower() == ".json":
        try:
            tasks = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise StepError(f"review_import: {p}:{e.lineno}: not valid JSON ({e.msg})") from None
        for t in tasks if isinstance(tasks, list) else []:
            rid = (t.get("data") or {}).get("row_id")
            if rid is None:
                continue
            for a_i, ann in enumerate(t.get("annotations") or []):
                if ann.get("was_cancelled"):
                    continue
                who = ann.get("completed_by", a_i)
                who = str(who.get("email", who.get("id", a_i)) if isinstance(who, dict) else who)
                for res in ann.get("result") or []:
                    choices = (res.get("value") or {}).get("choices") or []
                    if choices:
                        out.setdefault(str(rid), {})[who] = str(choices[0])
        return out
    with p.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "id" not in reader.fieldnames:
            raise StepError(f"review_import: {p}: the CSV needs an `id` column (columns: {reader.fieldnames})")
        cols = [c for c in reader.fieldnames if c == "label" or c.startswith("label_")]
        if not cols:
            raise StepError(f"review_import: {p}: no `label` (or `label_<annotator>`) column")
        for row in reader:
            got = {("label" if c == "label" else c[len("label_"):]): (row.get(c) or "").strip() for c in cols}
            got = {k: v for k, v in got.items() if v}
            if got and row.get("id"):
                out[row["id"]] = got
    return out


class ReviewImportConfig(StepConfig, ReviewColumns):
    """The reviewed file and the columns to update."""

    path: str = Field(description="Reviewed review.csv, or a Label Studio JSON export.")
    labels: list[str] | None = Field(default=None, description="Valid labels (others are counted invalid and left pending).")
    source_column: str = Field(default="label_source", description="Column saying where the final label came from (human/auto).")


@register_step("review_import")
class ReviewImport(Mapper):
    """Apply reviewed labels by row id; report agreement (Cohen's kappa) with the automatic
    labels and between annotators."""

    Config = ReviewImportConfig

    def __init__(self, config=None, **kw) -> None:
        super().__init__(config, **kw)
        from curate.steps.quality._base import file_digests
        self.raw_config = {**self.raw_config, "_files": file_digests([self.config.path])}

    def map(self, df, ctx):
        c = self.config
        for col in (R.ID, c.label_column):
            R.require_column(df, col, "step review_import")
        reviews = read_reviews(c.path)
        ids = df.get_column(R.ID).to_list()
        auto = df.get_column(c.label_column).to_list()
        need = df.get_column(c.review_column).to_list() if c.review_column in df.columns else [True] * df.height
        srcs = df.get_column(c.source_column).to_list() if c.source_column in df.columns else ["auto"] * df.height
        known = set(ids)
        valid = set(c.labels) if c.labels else None
        final, flags, invalid, conflicts, changed = list(auto), list(need), 0, 0, 0
        pairs_auto: list[tuple[str, str]] = []
        for i, rid in enumerate(ids):
            got = reviews.get(rid)
            if not got:
                continue
            if valid is not None and any(v not in valid for v in got.values()):
                invalid += 1
                continue
            votes = Counter(got.values()).most_common()
            if len(votes) > 1 and votes[0][1] == votes[1][1]:
                conflicts += 1
                continue
            human = votes[0][0]
            if auto[i] is not None:
                pairs_auto.append((auto[i], human))
            changed += human != auto[i]
            final[i], flags[i], srcs[i] = human, False, "human"
        reviewed = sum(1 for s in srcs if s == "human")
        stats: dict[str, Any] = {"reviewed": reviewed, "pending": int(sum(bool(f) for f in flags)),
                                 "changed": changed, "unknown_ids": len(set(reviews) - known),
                                 "invalid_labels": invalid, "review_conflicts": conflicts}
        stats.update(agreement(pairs_auto, reviews, known))
        out = df.with_columns(pl.Series(c.label_column, final, dtype=pl.String),
                              pl.Series(c.review_column, flags, dtype=pl.Boolean),
                              pl.Series(c.source_column, srcs, dtype=pl.String))
        return out, stats

    def merge_stats(self, stats):
        return stats[0] if len(stats) == 1 else super().merge_stats(stats)


def agreement(pairs_auto: list[tuple[str, str]], reviews: dict[str, dict[str, str]], known: set) -> dict[str, Any]:
    """Agreement of human labels with the automatic ones, and between the first two annotators."""
    from sklearn.metrics import cohen_kappa_score
    out: dict[str, Any] = {}
    if pairs_auto:
        a, h = zip(*pairs_auto)
        out["agreement_with_auto"] = round(sum(x == y for x, y in pairs_auto) / len(pairs_auto), 4)
        out["kappa_with_auto"] = _kappa(cohen_kappa_score, a, h)
    names = sorted({who for r in reviews.values() for who in r})
    if len(names) >= 2:
        first, second = names[:2]
        both = [(r[first], r[second]) for rid, r in reviews.items() if rid in known and first in r and second in r]
        out["annotators"] = names
        out["annotator_pairs"] = len(both)
        if both:
            x, y = zip(*both)
            out["annotator_agreement"] = round(sum(p == q for p, q in both) / len(both), 4)
            out["cohen_kappa"] = _kappa(cohen_kappa_score, x, y)
    return out


def _kappa(fn, a, b) -> float | None:
    import math
    k = fn(list(a), list(b))
    return None if math.isnan(k) else round(float(k), 4)
