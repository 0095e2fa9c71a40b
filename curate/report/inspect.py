"""``curate inspect FILE``: what is in a dataset file curate reads or writes — CSV/TSV, JSONL,
JSON, Parquet, a Natural Instructions task, a DPO or chat file: its kind, schema, row count,
label and length stats and a few rows, as a Rich table or JSON.

An NI task file is one JSON object whose rows sit under ``Instances``:
``datasets.load_dataset("json", data_files=PATH, field="Instances")`` loads them (without
``field=`` it fails), and ``inspect`` says so."""
from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import polars as pl

from curate.errors import DataError

TEXT_COLUMNS = ("text", "prompt", "input", "instruction", "question", "body", "chosen", "messages")
LABEL_COLUMNS = ("label", "output", "category", "class")
NI_HINT = 'datasets.load_dataset("json", data_files=PATH, field="Instances")'


def _suffixes(path: Path) -> list[str]:
    s = [x.lower() for x in path.suffixes]
    return [x for x in s if x not in (".gz",)]


def _ni_rows(task: dict[str, Any], n: int | None) -> pl.DataFrame:
    inst = task.get("Instances") or []
    inst = inst if n is None else inst[:n]
    return pl.DataFrame({"id": [i.get("id") for i in inst], "input": [i.get("input") for i in inst],
                         "output": [i.get("output") for i in inst]},
                        schema={"id": pl.String, "input": pl.String, "output": pl.List(pl.String)})


def read_rows(path: Path, n: int | None = None) -> tuple[str, pl.DataFrame]:
    """Read (the first ``n``) rows of a dataset file; returns ``(format, table)``."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    suf = _suffixes(path)
    ext = suf[-1] if suf else ""
    if ext == ".parquet":
        return "parquet", (pl.read_parquet(path, n_rows=n))
    if ext in (".csv", ".tsv"):
        return ext[1:], pl.read_csv(path, separator="\t" if ext == ".tsv" else ",", n_rows=n,
                                    infer_schema_length=10_000, quote_char='"' if ext == ".csv" else None)
    opener = gzip.open if path.name.endswith(".gz") else open
    if ext in (".jsonl", ".ndjson"):
        with opener(path, "rt", encoding="utf-8") as f:
            lines = []
            for line in f:
                if line.strip():
                    lines.append(json.loads(line))
                if n is not None and len(lines) >= n:
                    break
        return "jsonl", pl.DataFrame(lines, infer_schema_length=None) if lines else pl.DataFrame()
    if ext == ".json":
        with opener(path, "rt", encoding="utf-8") as f:
            doc = json.load(f)
        if isinstance(doc, dict) and "Instances" in doc:
            return "natural_instructions", _ni_rows(doc, n)
        if isinstance(doc, list):
            doc = doc if n is None else doc[:n]
            return "json", pl.DataFrame(doc, infer_schema_length=None) if doc else pl.DataFrame()
        raise DataError(f"{path}: a JSON object that is not an NI task (no `Instances` key)")
    if path.is_dir():
        raise DataError(f"{path}: a folder; give one file inside it")
    raise DataError(f"{path}: unknown format {ext or '(no suffix)'}; inspect reads csv, tsv, jsonl, "
                    "json (NI tasks too), parquet (optionally .gz)")


def kind_of(fmt: str, df: pl.DataFrame) -> str:
    cols = set(df.columns)
    if fmt == "natural_instructions":
        return "natural_instructions task"
    if {"chosen", "rejected"} <= cols:
        return "dpo pairs (explicit prompt)" if "prompt" in cols else "dpo pairs (implicit prompt)"
    if "messages" in cols:
        return "chat (messages)"
    if {"instruction", "output"} <= cols:
        return "alpaca"
    return "table"


def _as_text(df: pl.DataFrame, col: str) -> pl.Series:
    s = df[col]
    if s.dtype == pl.String:
        return s
    return s.map_elements(lambda v: json.dumps(v, ensure_ascii=False, default=str), return_dtype=pl.String) \
        if s.dtype != pl.Null else s.cast(pl.String)


def stats(df: pl.DataFrame) -> dict[str, Any]:
    """Label counts and length (words) stats of the text-like columns."""
    out: dict[str, Any] = {}
    label = next((c for c in LABEL_COLUMNS if c in df.columns), None)
    if label is not None and df.height:
        lab = df[label]
        if isinstance(lab.dtype, pl.List):
            lab = lab.list.join("|")
        counts = lab.cast(pl.String).value_counts(sort=True).head(20).rows()
        out["labels"] = {"column": label, "distinct": int(lab.n_unique()),
                         "top": {str(k): int(v) for k, v in counts}}
    lengths = {}
    for c in TEXT_COLUMNS:
        if c in df.columns and df.height:
            w = _as_text(df, c).str.count_matches(r"\S+").drop_nulls()
            if len(w):
                lengths[c] = {"min": int(w.min()), "mean": round(float(w.mean()), 1),
                              "median": float(w.median()), "max": int(w.max())}
    if lengths:
        out["words"] = lengths
    return out


def inspect_file(path: str | Path, rows: int = 3) -> dict[str, Any]:
    """Everything ``curate inspect`` shows, as a JSON-ready dict."""
    path = Path(path)
    fmt, df = read_rows(path)
    info: dict[str, Any] = {"path": str(path), "format": fmt, "kind": kind_of(fmt, df),
                            "bytes": path.stat().st_size, "rows": df.height,
                            "schema": {c: str(t) for c, t in df.schema.items()}}
    if fmt == "natural_instructions":
        with (gzip.open if path.name.endswith(".gz") else open)(path, "rt", encoding="utf-8") as f:
            task = json.load(f)
        info["task"] = {"definition": (task.get("Definition") or [""])[0][:300],
                        "positive_examples": len(task.get("Positive Examples") or []),
                        "negative_examples": len(task.get("Negative Examples") or []),
                        "categories": task.get("Categories"), "keys": list(task)}
        info["load_with"] = NI_HINT.replace("PATH", repr(str(path)))
    info.update(stats(df))
    info["sample"] = json.loads(df.head(rows).write_json()) if df.height else []
    return info


def rich_view(info: dict[str, Any]):
    """Rich renderables for :func:`inspect_file`'s dict."""
    from rich.console import Group
    from rich.table import Table
    head = Table(title=f"{info['path']}", show_header=False)
    head.add_column("key", style="bold")
    head.add_column("value", overflow="fold")
    for k in ("format", "kind", "rows", "bytes"):
        head.add_row(k, f"{info[k]:,}" if isinstance(info[k], int) else str(info[k]))
    if "load_with" in info:
        head.add_row("load with", info["load_with"])
    if "task" in info:
        t = info["task"]
        head.add_row("examples", f"{t['positive_examples']} positive, {t['negative_examples']} negative")
        head.add_row("definition", t["definition"])
    schema = Table(title="schema")
    schema.add_column("column")
    schema.add_column("type")
    for c, t in info["schema"].items():
        schema.add_row(c, t)
    parts = [head, schema]
    if "labels" in info:
        lt = Table(title=f"labels ({info['labels']['column']}, {info['labels']['distinct']} distinct)")
        lt.add_column("label", overflow="fold")
        lt.add_column("rows", justify="right")
        for k, v in info["labels"]["top"].items():
            lt.add_row(k, f"{v:,}")
        parts.append(lt)
    if "words" in info:
        wt = Table(title="length (words)")
        for c in ("column", "min", "mean", "median", "max"):
            wt.add_column(c, justify="left" if c == "column" else "right")
        for c, s in info["words"].items():
            wt.add_row(c, str(s["min"]), str(s["mean"]), str(s["median"]), str(s["max"]))
        parts.append(wt)
    if info["sample"]:
        st = Table(title="first rows")
        cols = list(info["sample"][0])[:6]
        for c in cols:
            st.add_column(c, overflow="fold", max_width=40)
        for r in info["sample"]:
            st.add_row(*[(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))[:200] for v in (r.get(c) for c in cols)])
        parts.append(st)
    return Group(*parts)
