"""Natural Instructions format rules: constants, the upstream ``test_all.py`` checks, and the
task-file reader/writer (upstream layout). Re-exported by :mod:`curate.schemas.natural_instructions`;
see ``/work/shared/reference/natural-instructions-schema.md``."""
from __future__ import annotations

import json
import math
import re
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from curate.errors import DataError

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


def output_balance(outputs: list[list[str]]) -> tuple[int, float | None, Counter]:
    """Distinct output count, normalised entropy (``-Σ p ln p / ln K``; None when K < 2) and counts."""
    counts = Counter(o for outs in outputs for o in outs)
    k = len(counts)
    if k < 2:
        return k, None, counts
    total = sum(counts.values())
    h = -sum((c / total) * math.log(c / total) for c in counts.values())
    return k, h / math.log(k), counts


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
    """Serialise like upstream: 4-space indent, non-ASCII unescaped, keys in upstream order, no
    final newline (so a task read and written back with no steps is the same file, byte for byte)."""
    ordered = {k: task[k] for k in TOP_KEYS if k in task}
    ordered.update({k: v for k, v in task.items() if k not in ordered})
    return json.dumps(_no_nan(ordered), indent=4, ensure_ascii=False, allow_nan=False)


def write_task(task: dict[str, Any], path: str | Path) -> Path:
    """Write a task dict atomically in the upstream layout (see :func:`task_json`); ``path`` may
    be a URL or UPath (see :mod:`curate.storage`)."""
    from curate import storage
    target = storage.path(path)
    with storage.atomic_path(target) as tmp:
        tmp.write_bytes(task_json(task).encode("utf-8"))
    return target


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
    except RecursionError:
        raise DataError(f"natural_instructions: {path}: not a task file (JSON nested too deeply)") from None
    except OSError as e:
        raise DataError(f"natural_instructions: {path}: cannot read it ({e.strerror or e})") from None
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
