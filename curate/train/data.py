"""Load curate's outputs (NI task files, chat / Alpaca / prompt-completion / DPO JSONL, labelled
tables) into HF ``datasets`` in the shapes TRL and transformers expect, failing early and precisely
on rows that cannot be trained on."""
from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.errors import DataError
from curate.train.config import DataConfig, NIEncoding
from curate.train.splits import file_role
from curate.extras import require

ALPACA_WITH_INPUT = ("Below is an instruction that describes a task, paired with an input that provides further "
                     "context. Write a response that appropriately completes the request.\n\n"
                     "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n")
ALPACA_NO_INPUT = ("Below is an instruction that describes a task. Write a response that appropriately "
                   "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n")
TABLE_SUFFIXES = {".csv", ".tsv", ".parquet"}


@dataclass
class Splits:
    """Training and validation rows plus what they were read from (for the model card)."""

    train: Any                      # datasets.Dataset
    validation: Any | None
    format: str
    files: list[str] = field(default_factory=list)
    labels: list[str] | None = None
    test: Any | None = None
    #: where the split came from: "pipeline" (split column / per-split files), "files" (validation/test
    #: named in the config), "random" (a seeded share of train), "none"
    split_source: str = "none"
    report: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------- file readers
def _files(path: Path) -> list[Path]:
    if not path.exists():
        raise DataError(f"training data not found: {path}")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in {".json", ".jsonl", *TABLE_SUFFIXES})
        if not files:
            raise DataError(f"{path}: folder holds no .json/.jsonl/.csv/.tsv/.parquet files")
        return files
    return [path]


def _read_rows(path: Path) -> list[tuple[str, dict]]:
    """Rows of a JSONL / JSON-list / CSV / TSV / Parquet file as (locator, dict)."""
    suf = path.suffix.lower()
    if suf in TABLE_SUFFIXES:
        import polars as pl
        try:
            df = (pl.read_parquet(path) if suf == ".parquet"
                  else pl.read_csv(path, separator="\t" if suf == ".tsv" else ",", infer_schema_length=None,
                                   quote_char=None if suf == ".tsv" else '"'))
        except Exception as e:  # polars raises several error types
            raise DataError(f"{path}: cannot read table: {e}") from None
        # +2: header line and 1-based numbering for the locator
        return [(f"{path}:{i + 2}", r) for i, r in enumerate(df.to_dicts())]
    text = path.read_text(encoding="utf-8")
    if suf == ".json":
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None
        if isinstance(obj, dict):
            return [(str(path), obj)]
        if isinstance(obj, list):
            return [(f"{path}[{i}]", r) for i, r in enumerate(obj)]
        raise DataError(f"{path}: expected a JSON object or list")
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{n}: invalid JSON line: {e.msg}") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{n}: each line must be a JSON object")
        rows.append((f"{path}:{n}", obj))
    return rows


def detect_format(path: Path, first: dict) -> str:
    """Guess the row format from a file's first row."""
    keys = set(first)
    if "Instances" in keys:
        return "ni"
    if "messages" in keys:
        return "chat"
    if {"chosen", "rejected"} <= keys:
        return "dpo"
    if {"instruction", "output"} <= keys:
        return "alpaca"
    if {"prompt", "completion"} <= keys:
        return "prompt_completion"
    if "label" in keys:
        return "classification"
    raise DataError(f"{path}: cannot tell the data format from keys {sorted(keys)}; set data.format")


# ---------------------------------------------------------------------------- NI
def _ni_loader():
    """curate.schemas.natural_instructions when present (the project's schema), else a local reader."""
    try:
        from curate.schemas.natural_instructions import load_task, validate_task  # type: ignore
        return load_task, validate_task
    except ImportError:
        return (lambda p: json.loads(Path(p).read_text(encoding="utf-8"))), _validate_ni


def _validate_ni(task: Any) -> list[str]:
    """Minimal NI schema check used when curate.schemas.natural_instructions is not available."""
    errs: list[str] = []
    if not isinstance(task, dict):
        return ["task must be a JSON object"]
    d = task.get("Definition")
    if not (isinstance(d, list) and d and all(isinstance(x, str) and x.strip() for x in d)):
        errs.append("Definition: must be a non-empty list of non-empty strings")
    for key in ("Positive Examples", "Negative Examples"):
        exs = task.get(key, [])
        if not isinstance(exs, list):
            errs.append(f"{key}: must be a list")
            continue
        for i, ex in enumerate(exs):
            if not (isinstance(ex, dict) and isinstance(ex.get("input"), str) and isinstance(ex.get("output"), str)):
                errs.append(f"{key}[{i}]: needs string `input` and `output`")
    inst = task.get("Instances")
    if not (isinstance(inst, list) and inst):
        errs.append("Instances: must be a non-empty list")
    else:
        for i, x in enumerate(inst):
            out = x.get("output") if isinstance(x, dict) else None
            if not (isinstance(x, dict) and isinstance(x.get("input"), str) and isinstance(out, list) and out
                    and all(isinstance(o, str) for o in out)):
                errs.append(f"Instances[{i}]: needs string `input` and a non-empty list of string `output`")
                if len(errs) > 5:
                    break
    return errs


def _field(task: Any, key: str) -> Any:
    """Read an NI field from a dict or an object with attributes (the schema module's model)."""
    if isinstance(task, dict):
        return task.get(key)
    attr = key.lower().replace(" ", "_")
    return getattr(task, attr, None)


def ni_prompt(definition: str, pos: list[dict], neg: list[dict], instance_input: str, enc: NIEncoding) -> str:
    """Tk-Instruct encoding: definition, positive/negative examples, then the instance."""
    parts = []
    if enc.add_definition and definition:
        parts.append(f"Definition: {definition.strip()}\n\n")
    for i, ex in enumerate(pos[:enc.num_pos_examples], 1):
        s = f"Positive Example {i} -\nInput: {ex['input'].strip()}\nOutput: {ex['output'].strip()}\n"
        if enc.add_explanation and ex.get("explanation"):
            s += f"Explanation: {ex['explanation'].strip()}\n"
        parts.append(s + "\n")
    for i, ex in enumerate(neg[:enc.num_neg_examples], 1):
        s = f"Negative Example {i} -\nInput: {ex['input'].strip()}\nOutput: {ex['output'].strip()}\n"
        if enc.add_explanation and ex.get("explanation"):
            s += f"Explanation: {ex['explanation'].strip()}\n"
        parts.append(s + "\n")
    # The prompt ends on "Output:" and the completion starts with the space, so the prompt's tokens
    # are a prefix of prompt+completion's tokens (byte-level BPE merges a space into the next word).
    parts.append(f"Now complete the following example -\nInput: {instance_input.strip()}\nOutput:")
    return "".join(parts)


def _as_dict(x: Any) -> dict:
    if isinstance(x, dict):
        return x
    if hasattr(x, "model_dump"):
        return x.model_dump()
    return dict(vars(x))


def load_ni(files: list[Path], enc: NIEncoding) -> list[dict]:
    """Every instance of every NI task file as a prompt/completion row (completion = first output)."""
    load_task, validate_task = _ni_loader()
    rows = []
    for f in files:
        if f.suffix != ".json":
            raise DataError(f"{f}: NI tasks are .json files")
        try:
            task = load_task(f)
        except DataError:
            raise
        except Exception as e:
            raise DataError(f"{f}: NI task fails the schema: {e}") from None
        errs = validate_task(task)
        if file_role(f) in ("validation", "test"):     # a split of a task may hold fewer than 26 instances
            errs = [e for e in errs if not str(e).startswith("instance count")]
        if errs:
            raise DataError(f"{f}: NI task fails the schema: " + "; ".join(map(str, errs[:5])))
        definition = " ".join(_field(task, "Definition") or [])
        pos = [_as_dict(x) for x in (_field(task, "Positive Examples") or [])]
        neg = [_as_dict(x) for x in (_field(task, "Negative Examples") or [])]
        for x in _field(task, "Instances") or []:
            x = _as_dict(x)
            outs = x["output"] if isinstance(x["output"], list) else [x["output"]]
            rows.append({"prompt": ni_prompt(definition, pos, neg, x["input"], enc),
                         "completion": " " + str(outs[0]).strip(), "references": [str(o) for o in outs],
                         "row_source": f"{f}#{x.get('id', '')}", "_split": file_role(f),
                         "_id": str(x["id"]) if x.get("id") else None, "_parent": None})
    return rows


# ---------------------------------------------------------------------------- other formats
def _need_str(loc: str, row: dict, key: str) -> str:
    v = row.get(key)
    if not isinstance(v, str) or not v.strip():
        got = "missing" if key not in row else ("empty" if isinstance(v, str) or v is None else type(v).__name__)
        raise DataError(f"{loc}: field `{key}` is {got}; every row needs a non-empty string `{key}`")
    return v


def _chat_row(loc: str, row: dict) -> dict:
    msgs = row.get("messages")
    if not isinstance(msgs, list) or len(msgs) < 2:
        raise DataError(f"{loc}: field `messages` needs at least a user and an assistant message")
    for i, m in enumerate(msgs):
        if not (isinstance(m, dict) and m.get("role") in ("system", "user", "assistant")
                and isinstance(m.get("content"), str)):
            raise DataError(f"{loc}: messages[{i}] needs `role` (system/user/assistant) and string `content`")
    if msgs[-1]["role"] != "assistant" or not msgs[-1]["content"].strip():
        raise DataError(f"{loc}: the last message must be a non-empty assistant reply (it is the completion)")
    msgs = [{"role": m["role"], "content": m["content"]} for m in msgs]
    return {"prompt": msgs[:-1], "completion": [msgs[-1]], "references": [msgs[-1]["content"]], "row_source": loc}


def _split_implicit(chosen: str, rejected: str) -> tuple[str, str, str]:
    """HH-RLHF style pairs (no prompt): the prompt is the shared prefix up to the last assistant turn."""
    n = 0
    for a, b in zip(chosen, rejected):
        if a != b:
            break
        n += 1
    cut = chosen.rfind("Assistant:", 0, n + 1)
    cut = cut + len("Assistant:") if cut >= 0 else n
    return chosen[:cut], chosen[cut:], rejected[cut:]


def _dpo_rules():
    """curate.schemas.dpo's pair rules (shared with the dpo output) when available."""
    try:
        from curate.schemas.dpo import pair_problem, split_implicit  # type: ignore
        return pair_problem, split_implicit
    except ImportError:
        return None, None


def _dpo_row(loc: str, row: dict) -> dict:
    chosen, rejected = row.get("chosen"), row.get("rejected")
    pair_problem, split_implicit = _dpo_rules()
    if pair_problem is not None:
        problem = pair_problem(row.get("prompt"), chosen, rejected)
        if problem:
            field_ = "chosen" if "chosen" in problem else ("rejected" if "rejected" in problem else "prompt")
            raise DataError(f"{loc}: {problem.replace('_', ' ')} (field `{field_}`); every DPO row needs a "
                            "non-empty `chosen` and `rejected` that differ")
        if row.get("prompt") is None:
            try:
                prompt, chosen, rejected = split_implicit(chosen, rejected)
            except Exception as e:
                raise DataError(f"{loc}: no prompt given and none shared by chosen/rejected ({e})") from None
            return {"prompt": prompt, "chosen": chosen, "rejected": rejected, "row_source": loc}
        return {"prompt": row["prompt"], "chosen": chosen, "rejected": rejected, "row_source": loc}
    if isinstance(chosen, list) or isinstance(rejected, list):  # conversational pairs
        for key in ("chosen", "rejected"):
            v = row.get(key)
            if not (isinstance(v, list) and v and all(isinstance(m, dict) and str(m.get("content", "")).strip() for m in v)):
                raise DataError(f"{loc}: field `{key}` is empty; every row needs a non-empty `{key}`")
        prompt = row.get("prompt")
        return {"prompt": prompt, "chosen": chosen, "rejected": rejected, "row_source": loc}
    chosen = _need_str(loc, row, "chosen")
    rejected = _need_str(loc, row, "rejected")
    if "prompt" in row:
        prompt = _need_str(loc, row, "prompt")
    else:
        prompt, chosen, rejected = _split_implicit(chosen, rejected)
        if not chosen.strip() or not rejected.strip():
            raise DataError(f"{loc}: chosen and rejected are identical after their shared prompt")
    if chosen == rejected:
        raise DataError(f"{loc}: `chosen` and `rejected` are identical")
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected, "row_source": loc}


def _row(fmt: str, loc: str, row: dict, cfg: DataConfig) -> dict:
    """One training row in the trainer's shape, plus its split, id and parent_id (see splits.META)."""
    out = _shape_row(fmt, loc, row, cfg)
    split = row.get(cfg.split_field)
    out.update(_split=None if split is None else str(split), _id=None if row.get("id") is None else str(row["id"]),
               _parent=None if row.get("parent_id") is None else str(row["parent_id"]))
    return out


def _shape_row(fmt: str, loc: str, row: dict, cfg: DataConfig) -> dict:
    if fmt == "chat":
        return _chat_row(loc, row)
    if fmt == "dpo":
        return _dpo_row(loc, row)
    if fmt == "alpaca":
        ins, out = _need_str(loc, row, "instruction"), _need_str(loc, row, "output")
        inp = row.get("input") or ""
        tpl = ALPACA_WITH_INPUT if str(inp).strip() else ALPACA_NO_INPUT
        return {"prompt": tpl.format(instruction=ins, input=inp), "completion": out, "references": [out],
                "row_source": loc}
    if fmt == "prompt_completion":
        c = _need_str(loc, row, "completion")
        return {"prompt": _need_str(loc, row, "prompt"), "completion": c, "references": [c], "row_source": loc}
    if fmt == "classification":
        text = _need_str(loc, row, cfg.text_field)
        label = row.get(cfg.label_field)
        if label is None or (isinstance(label, str) and not label.strip()):
            raise DataError(f"{loc}: field `{cfg.label_field}` is missing or empty")
        return {"text": text, "label": str(label), "row_source": loc}
    raise DataError(f"unsupported format {fmt!r}")


EXPECTED = {"sft": {"ni", "chat", "alpaca", "prompt_completion"}, "dpo": {"dpo"},
            "classification": {"classification"}}


def load_rows(path: str, cfg: DataConfig, objective: str) -> tuple[list[dict], str, list[str]]:
    """Read and validate every row of ``path``; returns (rows, format, files)."""
    files = _files(Path(path))
    fmt = cfg.format
    if fmt == "auto":
        first = files[0]
        if first.suffix == ".json":
            try:
                obj = json.loads(first.read_text(encoding="utf-8"))
            except json.JSONDecodeError as e:
                raise DataError(f"{first}:{e.lineno}: invalid JSON: {e.msg}") from None
            sample = obj if isinstance(obj, dict) else (obj[0] if obj else {})
        else:
            rows = _read_rows(first)
            if not rows:
                raise DataError(f"{first}: no rows")
            sample = rows[0][1]
        fmt = detect_format(first, sample)
    if fmt not in EXPECTED[objective]:
        raise DataError(f"{path}: objective {objective!r} needs {' or '.join(sorted(EXPECTED[objective]))} rows, "
                        f"but the data is {fmt!r}")
    if fmt == "ni":
        return load_ni(files, cfg.ni), fmt, [str(f) for f in files]
    out = []
    for f in files:
        for loc, row in _read_rows(f):
            out.append(_row(fmt, loc, row, cfg))
    if not out:
        raise DataError(f"{path}: no rows")
    return out, fmt, [str(f) for f in files]


def _role_files(path: Path) -> dict[str, list[Path]] | None:
    """A folder whose files are tagged by split (NI ``task..._train.json``, ``x.test.jsonl``)."""
    if not path.is_dir():
        return None
    files = _files(path)
    roles = [file_role(f) for f in files]
    if not any(r in ("validation", "test") for r in roles):
        return None
    out: dict[str, list[Path]] = {}
    for f, r in zip(files, roles):
        out.setdefault(r or "train", []).append(f)
    return out


def _load_many(paths: list[Path], cfg: DataConfig, objective: str) -> tuple[list[dict], str, list[str]]:
    rows, fmt, files = [], "", []
    for p in paths:
        r, fmt, f = load_rows(str(p), cfg, objective)
        rows += r
        files += f
    return rows, fmt, files


def _pipeline_roles(cfg: DataConfig, objective: str) -> tuple[dict[str, list[dict]], str, list[str], str]:
    """Rows by role (train/validation/test) and where the split came from."""
    from curate.train.splits import partition, resolve_train_path, sibling_files
    train_path = resolve_train_path(cfg.train)
    tagged = _role_files(train_path)
    source = "none"
    if tagged:
        roles_rows, files, fmt = {}, [], ""
        for role, paths in tagged.items():
            roles_rows[role], fmt, f = _load_many(paths, cfg, objective)
            files += f
        source = "pipeline"
    else:
        rows, fmt, files = load_rows(str(train_path), cfg, objective)
        roles_rows = {"train": rows}
        siblings = {} if (cfg.validation or cfg.test) else sibling_files(train_path)
        for role, p in siblings.items():
            roles_rows[role], _, f = load_rows(str(p), cfg, objective)
            files += f
        if siblings:
            source = "pipeline"
    parts = partition(roles_rows["train"], cfg.train)
    if parts is not None:                # rows carry the split the pipeline made
        for role in ("validation", "test"):
            if parts[role] and roles_rows.get(role):
                raise DataError(f"{cfg.train}: rows marked {role} in the split column and a separate {role} file")
            roles_rows[role] = roles_rows.get(role) or parts[role]
        roles_rows["train"] = parts["train"]
        source = "pipeline"
        if not roles_rows["train"]:
            raise DataError(f"{cfg.train}: no row has split `train` (column `{cfg.split_field}`)")
    for role in ("validation", "test"):
        given = getattr(cfg, role)
        if given:
            if roles_rows.get(role):
                raise DataError(f"data.{role}: {given} is given, but the pipeline's data already holds a {role} "
                                f"split ({len(roles_rows[role])} rows); remove data.{role} to use the pipeline's")
            roles_rows[role], _, f = load_rows(given, cfg, objective)
            files += f
            source = "files" if source == "none" else source
    return roles_rows, fmt, files, source


def load_splits(cfg: DataConfig, objective: str, seed: int) -> Splits:
    """Train/validation/test datasets: the pipeline's split when the rows carry one (or the outputs
    wrote one file per split), files named in the config, else a seeded share of train as validation."""
    require("datasets", extra="train")
    from datasets import Dataset

    from curate.train.splits import drop_derived_eval_rows, leak_check, strip_meta

    roles, fmt, files, source = _pipeline_roles(cfg, objective)
    rows, val_rows, test_rows = roles["train"], roles.get("validation") or None, roles.get("test") or None
    report: dict[str, Any] = {"split_source": source}
    if val_rows is None and source != "pipeline" and cfg.val_fraction > 0 and len(rows) >= 4:
        rng = random.Random(seed)
        idx = list(range(len(rows)))
        rng.shuffle(idx)
        n_val = max(1, int(round(len(rows) * cfg.val_fraction)))
        val_set = set(idx[:n_val])
        val_rows = [r for i, r in enumerate(rows) if i in val_set]
        rows = [r for i, r in enumerate(rows) if i not in val_set]
        report["validation_source"] = "random"
        source = "random" if source == "none" else source
    evals = {k: v for k, v in (("validation", val_rows), ("test", test_rows)) if v}
    report.update(leak_check(rows, evals))
    if val_rows:
        val_rows, n = drop_derived_eval_rows(val_rows)
        report["validation_derived_rows_left_out"] = n
    if test_rows:
        test_rows, n = drop_derived_eval_rows(test_rows)
        report["test_derived_rows_left_out"] = n
    if cfg.max_rows:
        rows = rows[:cfg.max_rows]
    labels = None
    if fmt == "classification":
        labels = sorted({r["label"] for r in rows} | {r["label"] for r in (val_rows or [])}
                        | {r["label"] for r in (test_rows or [])})

    def ds(rs):
        return Dataset.from_list(strip_meta(rs)) if rs else None
    return Splits(Dataset.from_list(strip_meta(rows)), ds(val_rows), fmt, files, labels, ds(test_rows),
                  source, report)


def load_texts(path: str, text_field: str = "text", max_rows: int = 64) -> list[str]:
    """Plain texts for the forgetting check (.txt: one per line; else a column)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"forgetting-check data not found: {p}")
    if p.suffix == ".txt":
        texts = [ln for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]
    else:
        texts = []
        for loc, row in _read_rows(p):
            texts.append(_need_str(loc, row, text_field))
    return texts[:max_rows]
