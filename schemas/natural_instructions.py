"""Natural Instructions (Super-NaturalInstructions v2) task files: build, check, write and read.

The pure functions (:func:`build_task`, :func:`validate_task`, :func:`load_task`,
:func:`task_json`) hold the format rules so the train runner and synth steps can reuse them; the
``natural_instructions`` output here and the source in :mod:`curate.connectors.natural_instructions`
are thin wrappers around them. Rules follow the upstream ``src/test_all.py`` (see
``/work/shared/reference/natural-instructions-schema.md``); the checks and the file reader/writer
live in :mod:`curate.schemas._ni_rules` and are re-exported here.

Round trip: the NI source puts each task's header (everything but ``Instances``) in a
``task_meta`` column and keeps the instance ids; this output reuses both unless the config sets a
field, so reading a task and writing it back with no steps gives back the same task.
"""
from __future__ import annotations

import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator

from curate import records as R
from curate.errors import CurateError, DataError
from curate.schemas._ni_rules import (  # noqa: F401  (re-exported: the format's public API)
    BALANCE_MAX_DISTINCT, BALANCE_MIN_ENTROPY, FILE_RE, ID_NAMESPACE, ID_RE, LANGUAGE_KEYS, LANGUAGES,
    LIST_OF_STR_KEYS, MAX_INSTANCES, MIN_INSTANCES, SCHEMA_PATH, TOP_KEYS, _no_nan, is_str_list,
    load_task, output_balance, task_json, validate_instance, validate_task, write_task)

log = logging.getLogger(__name__)

POSITIVE_EXPLANATION = "The correct answer is '{output}'."
NEGATIVE_EXPLANATION = "'{wrong}' is incorrect; the correct answer is '{output}'."
#: Column the NI source fills with each task's header as JSON (``_name`` = the file stem).
META_COLUMN = "task_meta"
#: TaskSpec field for each upstream header key.
HEADER_FIELDS = {"Contributors": "contributors", "Source": "source", "URL": "url",
                 "Categories": "categories", "Reasoning": "reasoning", "Definition": "definition",
                 "Input_language": "input_language", "Output_language": "output_language",
                 "Instruction_language": "instruction_language", "Domains": "domains",
                 "Instance License": "instance_license"}


# ============================================================================ config models
class Example(BaseModel):
    """A positive or negative demonstration: ``output`` is a single string."""

    model_config = ConfigDict(extra="forbid")
    input: str = Field(description="The example's input.")
    output: str = Field(description="Its output (a correct one for positives, a wrong one for negatives).")
    explanation: str = Field(description="Why the output is right (or wrong).")


class AutoExamples(BaseModel):
    """How many demonstrations to pick from the data (negatives need a classification task)."""

    model_config = ConfigDict(extra="forbid")
    positive: int | None = Field(
        default=None, ge=0, le=20,
        description="Positive examples picked (seeded) from the rows, covering each label first; "
                    "default one per label (at least 2).")
    negative: int = Field(default=1, ge=0, le=20,
                          description="Negative examples: a picked row paired with a wrong label.")
    positive_explanation: str = Field(default=POSITIVE_EXPLANATION,
                                      description="Template; fields {input}, {output}.")
    negative_explanation: str = Field(default=NEGATIVE_EXPLANATION,
                                      description="Template; fields {input}, {output}, {wrong}.")


def _as_list(v: Any) -> Any:
    return [v] if isinstance(v, str) else v


class TaskSpec(BaseModel):
    """Everything that describes one NI task apart from its rows (reusable outside the sink)."""

    model_config = ConfigDict(extra="forbid")
    task_number: int = Field(default=9000, ge=1, description="The N of `task<N>_...`.")
    task_name: str | None = Field(
        default=None, description="The `<name>_<type>` part of the file name (lowercased, slugged); "
                                  "default `<source>_<type>` when `source` is set, else "
                                  "`<pipeline name>_<type>` (type: classification or generation).")
    definition: list[str] | None = Field(
        default=None, description="Task instruction(s) (`Definition`); required unless the rows come "
                                  "from the natural_instructions source or `definition_column` is set.")
    contributors: list[str] = Field(default_factory=lambda: ["curate"], description="`Contributors` header.")
    source: list[str] = Field(default_factory=lambda: ["synthetic"], description="Source dataset name(s).")
    url: list[str] = Field(default_factory=list, description="`URL` header: where the data comes from.")
    categories: list[str] = Field(default_factory=lambda: ["Misc."], description="`Categories` header (NI task categories).")
    reasoning: list[str] = Field(default_factory=list, description="`Reasoning` header (kinds of reasoning needed).")
    domains: list[str] = Field(default_factory=lambda: ["Misc."], description="`Domains` header.")
    input_language: list[str] = Field(default_factory=lambda: ["English"], description="`Input_language` header.")
    output_language: list[str] = Field(default_factory=lambda: ["English"], description="`Output_language` header.")
    instruction_language: list[str] = Field(default_factory=lambda: ["English"], description="`Instruction_language` header.")
    instance_license: list[str] = Field(default_factory=lambda: ["Unknown"], description="`Instance License` header.")
    input: str = Field(default="text", description="Column holding the instance input.")
    output: str = Field(default="label", description="Column holding the output (a list column = several references).")
    labels: list[str] | None = Field(
        default=None, description="The label set of a classification task (default: inferred when "
                                  f"the data has fewer than {BALANCE_MAX_DISTINCT} distinct outputs).")
    positive_examples: list[Example] | None = Field(
        default=None, description="`Positive Examples` written by hand (input, output, explanation).")
    negative_examples: list[Example] | None = Field(
        default=None, description="`Negative Examples` written by hand (input, a wrong output, explanation).")
    auto_examples: AutoExamples | bool | None = Field(
        default=None, description="Pick examples from the data and remove them from the instances. "
                                  "Default (null): on for classification tasks without explicit examples "
                                  "(one positive per label, one negative); false: off; {positive: 2, negative: 1}.")
    max_instances: int = Field(default=MAX_INSTANCES, ge=1, le=MAX_INSTANCES,
                               description="Seeded sample down to this many instances.")
    repeated_inputs: Literal["error", "merge"] = Field(
        default="error", description="NI needs unique inputs. `error`: stop and name the step that made "
                                     "the copies; `merge`: merge their outputs into one instance (counted "
                                     "in the stats and warned about).")
    strict: bool = Field(default=True, description="Fail on a broken upstream rule (else warn and write).")

    @field_validator("definition", "contributors", "source", "url", "categories", "reasoning",
                     "domains", "input_language", "output_language", "instruction_language",
                     "instance_license", mode="before")
    @classmethod
    def _str_to_list(cls, v: Any) -> Any:
        return _as_list(v)


@dataclass
class Examples:
    """The demonstrations of a task and the inputs to remove from its instances."""

    positive: list[dict[str, Any]] = field(default_factory=list)
    negative: list[dict[str, Any]] = field(default_factory=list)
    drop: set[str] = field(default_factory=set)
    origin: str = "none"               # "config", "task_meta", "auto" or a mix


# ============================================================================ pure functions
def slug(text: str) -> str:
    """Lowercase ``[a-z0-9_]`` form of ``text`` for file names."""
    s = re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_")
    return s or "task"


def instance_id(task_number: int, row_id: str) -> str:
    """Deterministic ``task<N>-<32 hex>`` id from a row id (uuid5), so reruns are byte-identical."""
    return f"task{task_number}-{uuid.uuid5(ID_NAMESPACE, str(row_id)).hex}"


def task_file_name(spec: TaskSpec, classification: bool, *suffixes: str | None,
                   default_base: str | None = None) -> str:
    """``task<N>_<name>[_<suffix>...].json``; the name is ``task_name``, else
    ``<default_base or source>_<classification|generation>``."""
    base = default_base or (spec.source[0] if spec.source else "synthetic")
    name = slug(spec.task_name or f"{base}_{'classification' if classification else 'generation'}")
    for s in suffixes:
        if s is not None:
            name = f"{name}_{slug(s)}"
    return f"task{spec.task_number}_{name}.json"


def _outputs_column(df: pl.DataFrame, col: str) -> pl.Series:
    """The output column as ``list[str]`` (a scalar column becomes one-element lists)."""
    s = df[col]
    if isinstance(s.dtype, (pl.List, pl.Array)):
        return s.cast(pl.List(pl.String)).list.drop_nulls()
    return s.to_frame().select(pl.concat_list(pl.col(col).cast(pl.String)).list.drop_nulls())[col]


def merge_instances(df: pl.DataFrame, input_col: str, output_col: str) -> tuple[pl.DataFrame, int, int]:
    """One row per distinct input: outputs of repeated inputs merged (unique, first-seen order),
    the first original row (no ``parent_id``) kept as the representative. Rows with no input or
    no output are skipped. Returns ``(frame, rows merged away, rows skipped)``; the frame has
    ``id``, ``input``, ``output``, ``instance_id`` (from the NI source, or null) and ``_derived``."""
    ids = df[R.ID].cast(pl.String) if R.ID in df.columns else pl.Series(R.ID, [str(i) for i in range(df.height)])
    inst = df["instance_id"].cast(pl.String) if "instance_id" in df.columns else pl.repeat(None, df.height, dtype=pl.String, eager=True)
    derived = df["parent_id"].is_not_null() if "parent_id" in df.columns else pl.repeat(False, df.height, eager=True)
    work = pl.DataFrame({R.ID: ids, "input": df[input_col].cast(pl.String),
                         "output": _outputs_column(df, output_col), "instance_id": inst,
                         "_derived": derived}).with_row_index("_pos")
    n_all = work.height
    work = work.filter(pl.col("input").is_not_null() & (pl.col("input") != "")
                       & (pl.col("output").list.len() > 0))
    merged = (work.sort("_derived", "_pos").group_by("input", maintain_order=True)
              .agg(pl.col(R.ID).first(), pl.col("_pos").first(), pl.col("instance_id").first(),
                   pl.col("_derived").first(),
                   pl.col("output").list.explode(keep_nulls=False, empty_as_null=False).unique(maintain_order=True)))
    return merged.sort("_pos").drop("_pos"), work.height - merged.height, n_all - work.height


def describe_repeats(df: pl.DataFrame, input_col: str) -> str:
    """Which rows repeat an input, and which step made them (``parent_id`` lineage and the
    ``derived_by`` column balance and augment write)."""
    cols = df.columns
    has_parent = pl.col("parent_id").is_not_null() if "parent_id" in cols else pl.lit(False)
    maker = pl.col("derived_by") if "derived_by" in cols else pl.lit(None, dtype=pl.String)
    if "augmenter" in cols:              # the augment step names its variants by augmenter
        maker = pl.coalesce(maker, pl.lit("augment (") + pl.col("augmenter").cast(pl.String) + pl.lit(")"))
    work = (df.filter(pl.col(input_col).is_not_null() & (pl.col(input_col).cast(pl.String) != ""))
            .with_row_index("_pos").with_columns(has_parent.alias("_derived"))
            .sort("_derived", "_pos")
            .with_columns((pl.int_range(pl.len()).over(input_col) > 0).alias("_repeat")))
    reps = work.filter("_repeat").with_columns(
        pl.when(~pl.col("_derived")).then(pl.lit("the sources (no dedup step before this output)"))
        .otherwise(pl.coalesce(pl.lit("step ") + maker.cast(pl.String),
                               pl.lit("a step that sets parent_id"))).alias("_by"))
    parts = []
    for by, n in reps.group_by("_by").len().sort("len", descending=True).rows():
        ex = reps.filter(pl.col("_by") == by).row(0, named=True)
        eg = f"id {ex.get(R.ID)!r}" + (f" copies {ex['parent_id']!r}" if ex.get("parent_id") else "")
        parts.append(f"{n} made by {by} (e.g. {eg}: {str(ex[input_col])[:60]!r})")
    return (f"{reps.height} rows repeat an instance input (NI needs unique inputs): " + "; ".join(parts)
            + ". Make the rows unique before this output — balance with a method that makes distinct "
              "rows (smote, undersample, or method: none and train with its class_weights), or a dedup "
              "step — or set `repeated_inputs: merge` to merge their outputs into one instance")


def infer_labels(outputs: pl.Series) -> list[str] | None:
    """The label set when ``outputs`` (str or list[str]) look like classification: 2 to
    14 distinct values (the NI balance-rule threshold); else None."""
    flat = outputs.explode() if isinstance(outputs.dtype, pl.List) else outputs
    distinct = flat.drop_nulls().cast(pl.String).unique().to_list()
    return sorted(distinct) if 2 <= len(distinct) < BALANCE_MAX_DISTINCT else None


def _auto_examples(rows: pl.DataFrame, auto: AutoExamples, labels: list[str] | None,
                   seed: int) -> tuple[list[dict], list[dict]]:
    """Pick positive examples (one per label first) and negatives with a wrong label."""
    import random
    rng = random.Random(seed)
    order = list(range(rows.height))
    rng.shuffle(order)
    inputs, outputs = rows["input"].to_list(), rows["output"].to_list()
    n_pos = auto.positive if auto.positive is not None else max(2, len(labels or []))
    pos_idx: list[int] = []
    seen: set[str] = set()
    for i in order:                       # first pass: one per distinct label
        if len(pos_idx) >= n_pos:
            break
        if outputs[i] and outputs[i][0] not in seen:
            pos_idx.append(i)
            seen.add(outputs[i][0])
    for i in order:                       # then fill up
        if len(pos_idx) >= n_pos:
            break
        if i not in pos_idx and outputs[i]:
            pos_idx.append(i)
    pos = [{"input": inputs[i], "output": outputs[i][0],
            "explanation": auto.positive_explanation.format(input=inputs[i], output=outputs[i][0])}
           for i in pos_idx]
    neg: list[dict] = []
    if auto.negative:
        if not labels or len(labels) < 2:
            raise CurateError(
                "natural_instructions: auto_examples.negative needs a classification task (a label set "
                f"of at least 2 values; found {len(labels or [])}, and {rows.height} rows with fewer than "
                f"{BALANCE_MAX_DISTINCT} distinct outputs count as classification, or set `labels:`); "
                "for generation tasks give `negative_examples` explicitly, "
                "e.g. [{input: ..., output: <a wrong answer>, explanation: <why it is wrong>}]")
        chosen = set(pos_idx)
        for i in order:
            if len(neg) >= auto.negative:
                break
            if i in chosen or not outputs[i]:
                continue
            wrong_choices = [lab for lab in labels if lab not in outputs[i]]
            if not wrong_choices:
                continue
            wrong = rng.choice(wrong_choices)
            chosen.add(i)
            neg.append({"input": inputs[i], "output": wrong,
                        "explanation": auto.negative_explanation.format(
                            input=inputs[i], output=outputs[i][0], wrong=wrong)})
    return pos, neg


def choose_examples(rows: pl.DataFrame, spec: TaskSpec, labels: list[str] | None, seed: int,
                    given_pos: list[dict] | None = None, given_neg: list[dict] | None = None,
                    given_from: str = "config") -> Examples:
    """The task's examples: given ones (the config's, else the source task's) first, the rest picked
    from ``rows`` (merged instances) when ``auto_examples`` is on — by default for classification.
    Positive inputs and every auto-picked input are removed from the instances."""
    if given_pos is None and spec.positive_examples is not None:
        given_pos = [e.model_dump() for e in spec.positive_examples]
    if given_neg is None and spec.negative_examples is not None:
        given_neg = [e.model_dump() for e in spec.negative_examples]
    auto = spec.auto_examples
    if auto is None:
        auto = AutoExamples() if labels is not None else None
    elif auto is True:
        auto = AutoExamples()
    elif auto is False:
        auto = None
    ex = Examples(list(given_pos or []), list(given_neg or []))
    picked = []
    if auto is not None and (given_pos is None or given_neg is None):
        auto = auto.model_copy(update={"positive": 0 if given_pos is not None else auto.positive,
                                       "negative": 0 if given_neg is not None else auto.negative})
        apos, aneg = _auto_examples(rows, auto, labels, seed)
        ex.positive = ex.positive if given_pos is not None else apos
        ex.negative = ex.negative if given_neg is not None else aneg
        picked = [e["input"] for e in (apos if given_pos is None else []) + (aneg if given_neg is None else [])]
    ex.drop = {e["input"] for e in ex.positive if isinstance(e, dict)} | set(picked)
    kinds = ([given_from] if given_pos is not None or given_neg is not None else []) + (["auto"] if picked else [])
    ex.origin = "+".join(kinds) or "none"
    return ex


def task_header(spec: TaskSpec, meta: dict[str, Any] | None = None,
                overrides: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
    """The task's top-level keys but examples and instances: the spec's values, or — for fields
    the config does not set — the source task's (``meta``), including keys NI does not define."""
    head = {key: getattr(spec, f) for key, f in HEADER_FIELDS.items()}
    if head["Definition"] is None:
        head["Definition"] = []
    if meta:
        for key, f in HEADER_FIELDS.items():
            if key in meta and f not in overrides:
                head[key] = meta[key]
        head.update({k: v for k, v in meta.items() if k not in TOP_KEYS and not k.startswith("_")})
    return head


def _instances(rows: pl.DataFrame, task_number: int) -> list[dict[str, Any]]:
    """Instance objects; an original row's id from the NI source is kept when it fits the task
    number (and is not taken), every other id is derived from the row id."""
    prefix, out, taken = f"task{task_number}-", [], set()
    for rid, inp, outs, iid, derived in rows.select(R.ID, "input", "output", "instance_id", "_derived").iter_rows():
        if not (iid and not derived and iid.startswith(prefix) and ID_RE.match(iid) and iid not in taken):
            iid = instance_id(task_number, rid)
        taken.add(iid)
        out.append({"id": iid, "input": inp, "output": outs})
    return out


def build_task(df: pl.DataFrame, spec: TaskSpec, seed: int = 0, examples: Examples | None = None,
               header: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Build an NI task dict (upstream key order) from rows; returns ``(task, stats)``.

    Repeated inputs stop the build (or are merged with ``repeated_inputs: merge``), example inputs
    are removed from the instances, and the rest is sampled (seeded) down to ``max_instances``.
    ``examples``/``header`` default to :func:`choose_examples`/:func:`task_header` of ``spec``.
    Rules are not checked here: call :func:`validate_task`.
    """
    for col in (spec.input, spec.output):
        R.require_column(df, col, "natural_instructions", "column", hint=" (set `input:`/`output:` in the output config)")
    header = header if header is not None else task_header(spec)
    if not header.get("Definition"):
        raise DataError("natural_instructions: `definition` is required (the task instruction), unless the "
                        "rows come from the natural_instructions source or `definition_column` is set")
    rows, merged, skipped = merge_instances(df, spec.input, spec.output)
    if merged and spec.repeated_inputs == "error":
        raise DataError(f"natural_instructions: {describe_repeats(df, spec.input)}")
    stats: dict[str, Any] = {"rows_in": df.height, "merged_duplicate_inputs": merged,
                             "skipped_empty_input_or_output": skipped}
    if merged:
        stats["warnings"] = [f"{merged} rows with a repeated input were merged into other instances "
                             "(repeated_inputs: merge)"]
    labels = spec.labels if spec.labels is not None else infer_labels(rows["output"])
    stats["classification"] = labels is not None
    if examples is None:
        examples = choose_examples(rows, spec, labels, seed)
    before = rows.height
    rows = rows.filter(~pl.col("input").is_in(list(examples.drop)))
    stats["removed_example_inputs"] = before - rows.height
    stats["examples_from"] = examples.origin
    if rows.height > spec.max_instances:
        n = rows.height
        rows = rows.with_row_index("_pos").sample(spec.max_instances, seed=seed, shuffle=False).sort("_pos").drop("_pos")
        stats["sampled_out"] = n - rows.height
    instances = _instances(rows, spec.task_number)
    task = {**header, "Positive Examples": examples.positive, "Negative Examples": examples.negative,
            "Instances": instances}
    # Upstream key order; a bare NaN from the source task (not JSON) becomes "" as it will be written.
    task = _no_nan({k: task[k] for k in TOP_KEYS if k in task} | {k: v for k, v in task.items() if k not in TOP_KEYS})
    stats["instances"] = len(instances)
    stats["positive_examples"], stats["negative_examples"] = len(examples.positive), len(examples.negative)
    k, ent, counts = output_balance([i["output"] for i in instances])
    stats["distinct_outputs"] = k
    if ent is not None:
        stats["normalised_entropy"] = round(ent, 4)
    if k < BALANCE_MAX_DISTINCT:
        stats["output_counts"] = dict(counts.most_common())
    return task, stats


def meta_json(task: dict[str, Any], name: str) -> str:
    """A task's header (all but ``Instances``) as JSON for the ``task_meta`` column."""
    head = {k: v for k, v in task.items() if k != "Instances"}
    return json.dumps({"_name": name, **head}, ensure_ascii=False)


def spec_from_meta(spec: TaskSpec, meta: dict[str, Any], overrides: set[str]) -> TaskSpec:
    """``spec`` with the source task's number, name and definition where the config sets none."""
    upd: dict[str, Any] = {}
    m = re.match(r"^task(\d+)_(.+)$", str(meta.get("_name", "")))
    if m and "task_number" not in overrides:
        upd["task_number"] = int(m.group(1))
    if m and "task_name" not in overrides:
        upd["task_name"] = m.group(2)
    if "definition" not in overrides and is_str_list(meta.get("Definition")):
        upd["definition"] = meta["Definition"]
    return spec.model_copy(update=upd)


from curate.schemas._ni_output import NIOutputConfig, NaturalInstructionsOutput  # noqa: E402,F401
