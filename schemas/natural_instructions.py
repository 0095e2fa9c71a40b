"""Natural Instructions (Super-NaturalInstructions v2) task files: build, check, write and read.

The pure functions (:func:`build_task`, :func:`validate_task`, :func:`load_task`,
:func:`task_json`) hold the format rules so the train runner and synth steps can reuse them; the
``natural_instructions`` output here and the source in :mod:`curate.connectors.natural_instructions`
are thin wrappers around them. Rules follow the
upstream ``src/test_all.py`` (see ``/work/shared/reference/natural-instructions-schema.md``).
"""
from __future__ import annotations

import json
import logging
import math
import re
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator

from curate import records as R
from curate.cache import write_text
from curate.errors import CurateError, DataError
from curate.registry import register_output
from curate.sink import Sink, SinkConfig

log = logging.getLogger(__name__)

SCHEMA_PATH = Path(__file__).with_name("natural_instructions.schema.json")

#: Top-level keys in upstream order (final v2 layout). Note the spaces and the case.
TOP_KEYS = ("Contributors", "Source", "URL", "Categories", "Reasoning", "Definition",
            "Input_language", "Output_language", "Instruction_language", "Domains",
            "Positive Examples", "Negative Examples", "Instances", "Instance License")
LIST_OF_STR_KEYS = ("Contributors", "Source", "URL", "Categories", "Reasoning", "Definition",
                    "Input_language", "Output_language", "Instruction_language", "Domains",
                    "Instance License")
LANGUAGE_KEYS = ("Input_language", "Output_language", "Instruction_language")
MIN_INSTANCES, MAX_INSTANCES = 26, 6500
BALANCE_MAX_DISTINCT, BALANCE_MIN_ENTROPY = 15, 0.8
ID_RE = re.compile(r"^task\d+-[0-9a-f]{32}$")
FILE_RE = re.compile(r"^task(\d+)_[a-z0-9_]+$")
#: Namespace for deterministic instance ids (uuid5 of the row id).
ID_NAMESPACE = uuid.UUID("6f1c3a52-8d0e-5b7a-9c41-2e7d5b0a9f13")

#: Language names as the ``iso639`` package spells them (with "(individual language)" and
#: " languages" removed). A subset covering the languages NI tasks use; extend as needed.
LANGUAGES = frozenset("""
Afrikaans Albanian Amharic Arabic Armenian Assamese Azerbaijani Basque Belarusian Bengali Bosnian
Bulgarian Burmese Catalan Cebuano Chinese Croatian Czech Danish Dutch English Esperanto Estonian
Filipino Finnish French Galician Georgian German Greek Gujarati Hausa Hebrew Hindi Hungarian
Icelandic Igbo Indonesian Irish Italian Japanese Javanese Kannada Kazakh Khmer Kinyarwanda Korean
Kurdish Kyrgyz Lao Latin Latvian Lithuanian Luxembourgish Macedonian Malagasy Malay Malayalam
Maltese Marathi Mongolian Nepali Norwegian Oriya Panjabi Persian Polish Portuguese Pushto Romanian
Russian Serbian Sindhi Sinhala Slovak Slovenian Somali Spanish Swahili Swedish Tagalog Tajik Tamil
Telugu Thai Tigrinya Turkish Turkmen Ukrainian Urdu Uzbek Vietnamese Welsh Xhosa Yoruba Zulu
""".split()) | {"Modern Greek (1453-)", "Central Khmer", "Scottish Gaelic", "Haitian",
                "Western Frisian", "Northern Sami", "Standard Arabic"}

POSITIVE_EXPLANATION = "The correct answer is '{output}'."
NEGATIVE_EXPLANATION = "'{wrong}' is incorrect; the correct answer is '{output}'."


# ============================================================================ config models
class Example(BaseModel):
    """A positive or negative demonstration: ``output`` is a single string."""

    model_config = ConfigDict(extra="forbid")
    input: str
    output: str
    explanation: str


class AutoExamples(BaseModel):
    """How many demonstrations to pick from the data (classification tasks only for negatives)."""

    model_config = ConfigDict(extra="forbid")
    positive: int = Field(default=2, ge=0, le=20, description="Positive examples picked (seeded) from the rows.")
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
        default=None, description="The `<source>_<type>` part of the file name (lowercased, slugged); "
                                  "default `<source>_classification` or `<source>_generation`.")
    definition: list[str] = Field(description="Task instruction(s) (`Definition`).")
    contributors: list[str] = Field(default_factory=lambda: ["curate"])
    source: list[str] = Field(default_factory=lambda: ["synthetic"], description="Source dataset name(s).")
    url: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=lambda: ["Misc."])
    reasoning: list[str] = Field(default_factory=list)
    domains: list[str] = Field(default_factory=lambda: ["Misc."])
    input_language: list[str] = Field(default_factory=lambda: ["English"])
    output_language: list[str] = Field(default_factory=lambda: ["English"])
    instruction_language: list[str] = Field(default_factory=lambda: ["English"])
    instance_license: list[str] = Field(default_factory=lambda: ["Unknown"])
    input: str = Field(default="text", description="Column holding the instance input.")
    output: str = Field(default="label", description="Column holding the output (a list column = several references).")
    labels: list[str] | None = Field(
        default=None, description="The label set of a classification task (default: inferred when "
                                  f"the data has fewer than {BALANCE_MAX_DISTINCT} distinct outputs).")
    positive_examples: list[Example] | None = None
    negative_examples: list[Example] | None = None
    auto_examples: AutoExamples | None = Field(
        default=None, description="Pick examples from the data: {positive: 2, negative: 1}.")
    max_instances: int = Field(default=MAX_INSTANCES, ge=1, le=MAX_INSTANCES,
                               description="Seeded sample down to this many instances.")
    strict: bool = Field(default=True, description="Fail on a broken upstream rule (else warn and write).")

    @field_validator("definition", "contributors", "source", "url", "categories", "reasoning",
                     "domains", "input_language", "output_language", "instruction_language",
                     "instance_license", mode="before")
    @classmethod
    def _str_to_list(cls, v: Any) -> Any:
        return _as_list(v)


# ============================================================================ pure functions
def slug(text: str) -> str:
    """Lowercase ``[a-z0-9_]`` form of ``text`` for file names."""
    s = re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_")
    return s or "task"


def instance_id(task_number: int, row_id: str) -> str:
    """Deterministic ``task<N>-<32 hex>`` id from a row id (uuid5), so reruns are byte-identical."""
    return f"task{task_number}-{uuid.uuid5(ID_NAMESPACE, str(row_id)).hex}"


def task_file_name(spec: TaskSpec, classification: bool, suffix: str | None = None) -> str:
    name = spec.task_name or f"{spec.source[0] if spec.source else 'synthetic'}_" \
                             f"{'classification' if classification else 'generation'}"
    name = slug(name)
    if suffix is not None:
        name = f"{name}_{slug(suffix)}"
    return f"task{spec.task_number}_{name}.json"


def _outputs_column(df: pl.DataFrame, col: str) -> pl.Series:
    """The output column as ``list[str]`` (a scalar column becomes one-element lists)."""
    s = df[col]
    if isinstance(s.dtype, (pl.List, pl.Array)):
        return s.cast(pl.List(pl.String)).list.drop_nulls()
    return s.to_frame().select(pl.concat_list(pl.col(col).cast(pl.String)).list.drop_nulls())[col]


def merge_instances(df: pl.DataFrame, input_col: str, output_col: str) -> tuple[pl.DataFrame, int, int]:
    """One row per distinct input: outputs of repeated inputs merged (unique, first-seen order),
    id of the first row kept (NI rule: inputs unique within a task). Rows with no input or no
    output are skipped. Returns ``(frame, rows merged away, rows skipped)``."""
    ids = df[R.ID].cast(pl.String) if R.ID in df.columns else pl.Series(R.ID, [str(i) for i in range(df.height)])
    work = pl.DataFrame({R.ID: ids, "input": df[input_col].cast(pl.String),
                         "output": _outputs_column(df, output_col)}).with_row_index("_pos")
    n_all = work.height
    work = work.filter(pl.col("input").is_not_null() & (pl.col("input") != "")
                       & (pl.col("output").list.len() > 0))
    merged = (work.group_by("input", maintain_order=True)
              .agg(pl.col(R.ID).first(), pl.col("_pos").first(),
                   pl.col("output").list.explode(keep_nulls=False, empty_as_null=False).unique(maintain_order=True)))
    return merged.sort("_pos").drop("_pos"), work.height - merged.height, n_all - work.height


def infer_labels(outputs: pl.Series) -> list[str] | None:
    """The label set when ``outputs`` (str or list[str]) look like classification: 2 to
    14 distinct values (the NI balance-rule threshold); else None."""
    flat = outputs.explode() if isinstance(outputs.dtype, pl.List) else outputs
    distinct = flat.drop_nulls().cast(pl.String).unique().to_list()
    return sorted(distinct) if 2 <= len(distinct) < BALANCE_MAX_DISTINCT else None


def output_balance(outputs: list[list[str]]) -> tuple[int, float | None, Counter]:
    """Distinct output count, normalised entropy (``-Σ p ln p / ln K``; None when K < 2) and counts."""
    counts = Counter(o for outs in outputs for o in outs)
    k = len(counts)
    if k < 2:
        return k, None, counts
    total = sum(counts.values())
    h = -sum((c / total) * math.log(c / total) for c in counts.values())
    return k, h / math.log(k), counts


def _auto_examples(rows: pl.DataFrame, auto: AutoExamples, labels: list[str] | None,
                   seed: int) -> tuple[list[dict], list[dict]]:
    """Pick positive examples (covering different labels first) and negatives with a wrong label."""
    import random
    rng = random.Random(seed)
    order = list(range(rows.height))
    rng.shuffle(order)
    inputs, outputs = rows["input"].to_list(), rows["output"].to_list()
    pos_idx: list[int] = []
    seen: set[str] = set()
    for i in order:                       # first pass: one per distinct label
        if len(pos_idx) >= auto.positive:
            break
        if outputs[i] and outputs[i][0] not in seen:
            pos_idx.append(i)
            seen.add(outputs[i][0])
    for i in order:                       # then fill up
        if len(pos_idx) >= auto.positive:
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


def build_task(df: pl.DataFrame, spec: TaskSpec, seed: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    """Build an NI task dict (upstream key order) from rows; returns ``(task, stats)``.

    Inputs are merged (several outputs per input), positive-example inputs are removed from the
    instances, and the rest is sampled (seeded) down to ``max_instances``. Rules are not checked
    here: call :func:`validate_task`.
    """
    for col in (spec.input, spec.output):
        R.require_column(df, col, "natural_instructions", "column", hint=" (set `input:`/`output:` in the output config)")
    rows, merged, skipped = merge_instances(df, spec.input, spec.output)
    stats: dict[str, Any] = {"rows_in": df.height, "merged_duplicate_inputs": merged,
                             "skipped_empty_input_or_output": skipped}
    labels = spec.labels if spec.labels is not None else infer_labels(rows["output"])
    classification = labels is not None
    stats["classification"] = classification

    pos = [e.model_dump() for e in spec.positive_examples] if spec.positive_examples is not None else None
    neg = [e.model_dump() for e in spec.negative_examples] if spec.negative_examples is not None else None
    if spec.auto_examples is not None and (pos is None or neg is None):
        auto = spec.auto_examples
        if neg is not None:                  # explicit negatives: only positives are picked
            auto = auto.model_copy(update={"negative": 0})
        apos, aneg = _auto_examples(rows, auto, labels, seed)
        pos = apos if pos is None else pos
        neg = aneg if neg is None else neg
    pos, neg = pos or [], neg or []

    pos_inputs = {e["input"] for e in pos}
    before = rows.height
    rows = rows.filter(~pl.col("input").is_in(list(pos_inputs)))
    stats["removed_positive_example_inputs"] = before - rows.height
    if rows.height > spec.max_instances:
        keep = rows.with_row_index("_pos").sample(spec.max_instances, seed=seed, shuffle=False)
        rows = keep.sort("_pos").drop("_pos")
        stats["sampled_out"] = before - stats["removed_positive_example_inputs"] - rows.height
    instances = [{"id": instance_id(spec.task_number, rid), "input": inp, "output": out}
                 for rid, inp, out in zip(rows[R.ID].to_list(), rows["input"].to_list(),
                                          rows["output"].to_list())]
    task = {
        "Contributors": spec.contributors, "Source": spec.source, "URL": spec.url,
        "Categories": spec.categories, "Reasoning": spec.reasoning, "Definition": spec.definition,
        "Input_language": spec.input_language, "Output_language": spec.output_language,
        "Instruction_language": spec.instruction_language, "Domains": spec.domains,
        "Positive Examples": pos, "Negative Examples": neg, "Instances": instances,
        "Instance License": spec.instance_license,
    }
    stats["instances"] = len(instances)
    stats["positive_examples"], stats["negative_examples"] = len(pos), len(neg)
    k, ent, counts = output_balance([i["output"] for i in instances])
    stats["distinct_outputs"] = k
    if ent is not None:
        stats["normalised_entropy"] = round(ent, 4)
    if k < BALANCE_MAX_DISTINCT:
        stats["output_counts"] = dict(counts.most_common())
    return task, stats


def is_str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def validate_instance(inst: Any) -> str | None:
    """The problem with one instance object (``{id?, input, output: [str, ...]}``), or None."""
    if not isinstance(inst, dict):
        return "instance is not an object"
    if "input" not in inst:
        return "missing_input"
    if not isinstance(inst["input"], str) or not inst["input"]:
        return "input_not_string" if not isinstance(inst["input"], str) else "empty_input"
    if "output" not in inst:
        return "missing_output"
    out = inst["output"]
    if not isinstance(out, list):
        return "output_not_list"
    if not out or not is_str_list(out):
        return "output_not_list_of_strings" if out else "empty_output"
    return None


def validate_task(task: dict[str, Any], name: str | None = None) -> list[str]:
    """Problems with an NI task dict (upstream ``test_all.py`` rules); empty when it passes.

    Each message starts with the rule name, e.g. ``"balance rule: ..."``. ``name`` is the file
    stem (``task<N>_...``) for the id-prefix and file-name checks.
    """
    problems: list[str] = []
    if not isinstance(task, dict):
        return ["structure: a task file must be a JSON object"]
    for k in TOP_KEYS:
        if k not in task:
            problems.append(f"required key: {k!r} is missing")
    for k in task:
        if k not in TOP_KEYS:
            hint = next((t for t in TOP_KEYS if t.lower() == k.lower()), None)
            problems.append(f"unknown key: {k!r}" + (f" (did you mean {hint!r}?)" if hint else ""))
    for k in LIST_OF_STR_KEYS:
        if k in task and not is_str_list(task[k]):
            bad = "NaN" if isinstance(task[k], list) and any(isinstance(x, float) and math.isnan(x)
                                                              for x in task[k]) else type(task[k]).__name__
            problems.append(f"type: {k!r} must be a list of strings (got {bad})")
    if is_str_list(task.get("Definition")) and not any(d.strip() for d in task["Definition"]):
        problems.append("definition: 'Definition' needs at least one non-empty instruction")
    for k in LANGUAGE_KEYS:
        if is_str_list(task.get(k)):
            for lang in task[k]:
                if lang not in LANGUAGES:
                    problems.append(f"language names: {k} value {lang!r} is not an iso639 language name "
                                    "(e.g. 'English', 'Spanish')")
    langs = task.get("Input_language") if is_str_list(task.get("Input_language")) else []
    for lang in langs:
        if lang != "English" and is_str_list(task.get("Definition")) and \
                not all(lang in d for d in task["Definition"]):
            problems.append(f"definition language: input language {lang!r} must be named in every Definition")
    for key, minimum in (("Positive Examples", 2), ("Negative Examples", 1)):
        ex = task.get(key)
        if not isinstance(ex, list):
            if key in task:
                problems.append(f"type: {key!r} must be a list")
            continue
        if len(ex) < minimum:
            problems.append(f"examples: {key!r} has {len(ex)}; at least {minimum} required")
        for j, e in enumerate(ex):
            fields = ("input", "output", "explanation")
            if not isinstance(e, dict) or any(not isinstance(e.get(f), str) for f in fields):
                problems.append(f"examples: {key}[{j}] needs string `input`, `output` and `explanation`")
    inst = task.get("Instances")
    if not isinstance(inst, list):
        if "Instances" in task:
            problems.append("type: 'Instances' must be a list")
        return problems
    n = len(inst)
    if not (MIN_INSTANCES <= n <= MAX_INSTANCES):
        problems.append(f"instance count: {n} instances; NI requires {MIN_INSTANCES}..{MAX_INSTANCES}")
    bad = [(j, p) for j, p in ((j, validate_instance(x)) for j, x in enumerate(inst)) if p]
    for j, p in bad[:5]:
        problems.append(f"instance: Instances[{j}]: {p}")
    if len(bad) > 5:
        problems.append(f"instance: ... and {len(bad) - 5} more malformed instances")
    good = [x for x in inst if validate_instance(x) is None]
    ids = [x.get("id") for x in good]
    prefix = None
    if name and FILE_RE.match(name):
        prefix = f"task{FILE_RE.match(name).group(1)}-"
    if name is not None and not FILE_RE.match(name):
        problems.append(f"file name: {name!r} must look like task<N>_<source>_<type> in lowercase")
    missing_ids = sum(1 for i in ids if not isinstance(i, str))
    if missing_ids:
        problems.append(f"instance ids: {missing_ids} instances have no string `id`")
    bad_ids = [i for i in ids if isinstance(i, str) and (not ID_RE.match(i) or (prefix and not i.startswith(prefix)))]
    if bad_ids:
        problems.append(f"instance ids: {len(bad_ids)} ids do not match "
                        f"{(prefix or 'task<N>-')}<32 hex> (e.g. {bad_ids[0]!r})")
    dup_ids = [i for i, c in Counter(i for i in ids if isinstance(i, str)).items() if c > 1]
    if dup_ids:
        problems.append(f"instance ids: {len(dup_ids)} ids repeat (e.g. {dup_ids[0]!r})")
    inputs = Counter(x["input"] for x in good)
    dups = [i for i, c in inputs.items() if c > 1]
    if dups:
        problems.append(f"unique inputs: {len(dups)} inputs repeat (e.g. {dups[0]!r}); merge their "
                        "outputs into one instance")
    pos_inputs = {e.get("input") for e in task.get("Positive Examples") or [] if isinstance(e, dict)}
    overlap = [i for i in inputs if i in pos_inputs]
    if overlap:
        problems.append(f"positive examples: {len(overlap)} instance inputs equal a positive example "
                        f"input (e.g. {overlap[0]!r}); remove them from Instances")
    k, ent, counts = output_balance([x["output"] for x in good])
    if k < 2:
        problems.append(f"distinct outputs: {k} distinct output value(s); at least 2 required")
    elif k < BALANCE_MAX_DISTINCT and ent is not None and ent <= BALANCE_MIN_ENTROPY:
        dist = ", ".join(f"{o} {c}" for o, c in counts.most_common())
        problems.append(f"balance rule: normalised output entropy {ent:.2f} ≤ {BALANCE_MIN_ENTROPY} "
                        f"({dist}); balance the labels first, e.g. with a `balance` step")
    return problems


def _no_nan(obj: Any) -> Any:
    """Replace float NaN/inf (not valid JSON) by empty strings — never write a bare NaN."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return ""
    if isinstance(obj, list):
        return [_no_nan(x) for x in obj]
    if isinstance(obj, dict):
        return {k: _no_nan(v) for k, v in obj.items()}
    return obj


def task_json(task: dict[str, Any]) -> str:
    """Serialise like upstream: 4-space indent, non-ASCII unescaped, keys in upstream order."""
    ordered = {k: task[k] for k in TOP_KEYS if k in task}
    ordered.update({k: v for k, v in task.items() if k not in ordered})
    return json.dumps(_no_nan(ordered), indent=4, ensure_ascii=False, allow_nan=False) + "\n"


def write_task(task: dict[str, Any], path: str | Path) -> Path:
    """Write a task dict atomically in the upstream layout (see :func:`task_json`)."""
    write_text(task_json(task), path)
    return Path(path)


def load_task(path: str | Path, normalize: bool = True) -> dict[str, Any]:
    """Read a task file (bare ``NaN`` tolerated). With ``normalize``: a string ``Definition``
    becomes a list and instances without ``id`` get a deterministic one (older layout)."""
    path = Path(path)
    try:
        task = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"natural_instructions: {path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"natural_instructions: {path}: not valid JSON ({e})") from None
    if not isinstance(task, dict):
        raise DataError(f"natural_instructions: {path}: a task file must be a JSON object")
    if not normalize:
        return task
    if isinstance(task.get("Definition"), str):
        task["Definition"] = [task["Definition"]]
    m = re.match(r"task(\d+)", path.stem)
    prefix = f"task{m.group(1)}" if m else "task0"
    if isinstance(task.get("Instances"), list):
        for j, inst in enumerate(task["Instances"]):
            if isinstance(inst, dict) and not isinstance(inst.get("id"), str):
                key = f"{path.stem}:{j}:{inst.get('input')}"
                inst["id"] = f"{prefix}-{uuid.uuid5(ID_NAMESPACE, key).hex}"
    return task


# ============================================================================ output
class NIOutputConfig(SinkConfig, TaskSpec):
    """Options of the ``natural_instructions`` output."""

    dir: str = Field(description="Folder for the task file(s) `task<N>_<source>_<type>.json`.")
    split_by: str | None = Field(default=None,
                                 description="Write one task per value of this column (task numbers N, N+1, ...).")
    definition_column: str | None = Field(
        default=None, description="Take each task's Definition from this column (its first non-empty value "
                                  "in the task's rows, e.g. a generated `instruction`); `definition` is the fallback.")


@register_output("natural_instructions")
class NaturalInstructionsOutput(Sink):
    """Natural Instructions v2 task file(s), checked against the upstream test_all.py rules."""

    Config = NIOutputConfig
    version = "1"

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        #: Per-task stats and warnings of the last write (sinks cannot add to the manifest).
        self.stats: dict[str, Any] = {}

    def _spec(self) -> TaskSpec:
        return TaskSpec(**self.config.model_dump(include=set(TaskSpec.model_fields)))

    def targets(self) -> list[Path]:
        return [Path(self.config.dir)]

    def _with_definition(self, part: pl.DataFrame, spec: TaskSpec) -> TaskSpec:
        vals = part[self.config.definition_column].cast(pl.String).str.strip_chars()
        vals = vals.filter(vals.is_not_null() & (vals != ""))
        return spec.model_copy(update={"definition": [vals[0]]}) if vals.len() else spec

    def write(self, df: pl.DataFrame, seed: int) -> list[Path]:
        cfg = self.config
        spec = self._spec()
        if cfg.split_by is not None:
            if cfg.split_by not in df.columns:
                raise DataError(f"natural_instructions: split_by column {cfg.split_by!r} not found; "
                                f"columns are: {', '.join(map(repr, df.columns))}")
            values = sorted(df[cfg.split_by].cast(pl.String).drop_nulls().unique().to_list())
            if spec.labels is None and spec.output in df.columns:     # one label set for every part
                spec = spec.model_copy(update={"labels": infer_labels(df[spec.output])})
            parts = [(v, df.filter(pl.col(cfg.split_by).cast(pl.String) == v),
                      spec.model_copy(update={"task_number": spec.task_number + i}))
                     for i, v in enumerate(values)]
        else:
            parts = [(None, df, spec)]
        if cfg.definition_column is not None:
            if cfg.definition_column not in df.columns:
                raise DataError(f"natural_instructions: definition_column {cfg.definition_column!r} not found; "
                                f"columns are: {', '.join(map(repr, df.columns))}")
            parts = [(v, part, self._with_definition(part, sp)) for v, part, sp in parts]
        built = []
        self.stats = {"tasks": {}}
        if cfg.split_by is not None:
            self.stats["rows_without_split_value"] = df[cfg.split_by].null_count()
        for value, part, sp in parts:
            task, stats = build_task(part, sp, seed)
            fname = task_file_name(sp, stats["classification"], value)
            problems = validate_task(task, Path(fname).stem)
            stats["problems"] = problems
            self.stats["tasks"][fname] = stats
            if problems:
                where = f"natural_instructions output {fname}" + (f" ({cfg.split_by}={value!r})" if value else "")
                if cfg.strict:
                    raise CurateError(f"{where}: " + "; ".join(problems)
                                      + " [set strict: false to write anyway]")
                for p in problems:
                    log.warning("%s: %s", where, p)
            built.append((fname, task))
        out = []
        for fname, task in built:
            out.append(write_task(task, Path(cfg.dir) / fname))
        return out
