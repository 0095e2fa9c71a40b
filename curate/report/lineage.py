"""``curate explain ROW_ID``: one row's lineage, read back from the run's per-step cache and
rejects — where it came from (source locator), what every step decided (kept, changed which
columns, created it, passed it through, rejected it and why), its parents with their weights
(copies, SMOTE, augmentation, synthesis), the checks and scores it carries, and where it ended
(output file and line, or reject reason)."""
from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import polars as pl

from curate import records as R
from curate.errors import CurateError
from curate.report.rundata import RunData

PARENT_COLUMNS = ("parent_id", "parents")
#: Columns that say how a row was made or judged (shown as "checks and scores").
PROVENANCE_PREFIXES = ("check_", "judge", "score", "similarity", "margin", "augmenter", "smote_",
                       "chosen_score", "rejected_score", "leak_", "duplicate_of", "split", "kind")


def _find(df: pl.DataFrame | None, row_id: str) -> dict[str, Any] | None:
    if df is None or R.ID not in df.columns:
        return None
    hit = df.filter(pl.col(R.ID).cast(pl.String) == row_id)
    return hit.row(0, named=True) if hit.height else None


def _parents(row: dict[str, Any]) -> list[dict[str, Any]]:
    """Parent ids with weights: SMOTE rows interpolate two parents (1 − w, w)."""
    pair = row.get("parents")
    w = row.get("smote_weight")
    if isinstance(pair, list) and len(pair) == 2 and w is not None:
        return [{"id": pair[0], "weight": round(1 - float(w), 6)}, {"id": pair[1], "weight": float(w)}]
    if isinstance(pair, list) and pair:
        return [{"id": p, "weight": None} for p in pair]
    if row.get("parent_id"):
        return [{"id": row["parent_id"], "weight": None}]
    return []


def _provenance(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if v is not None and k not in (R.ID, "parent_id", "parents")
            and any(k.startswith(p) for p in PROVENANCE_PREFIXES)}


def _changed(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    if before is None:
        return []
    return [k for k, v in after.items() if k in before and before[k] != v] + \
           [k for k in after if k not in before]


def _decide(step, row_id: str, prev: dict[str, Any] | None) -> tuple[str, dict[str, Any] | None, dict]:
    """What ``step`` did with ``row_id``: (decision, row after the step, event)."""
    event: dict[str, Any] = {"step": f"{step.index + 1}. {step.name}"}
    if step.dir is None:
        event["decision"] = "unknown (this step's cache is gone; rerun the build)"
        return "unknown", prev, event
    rej = _find(step.rejected(), row_id)
    if rej is not None:
        event.update(decision="rejected", reason=rej.get(R.REASON), detail=rej.get(R.DETAIL))
        event.update({k: v for k, v in _provenance(rej).items()})
        return "rejected", rej, event
    kept = _find(step.kept(), row_id)
    if kept is None:
        event["decision"] = "not present"
        return "absent", prev, event
    apply_to = (step.entry.get("config") or {}).get("apply_to")
    if prev is None:
        event["decision"] = "created"
        event["parents"] = _parents(kept)
    elif apply_to and prev.get(R.ORIGIN) not in apply_to:
        event["decision"] = f"passed through (apply_to: {', '.join(apply_to)})"
    else:
        ch = [c for c in _changed(prev, kept) if c not in (R.STEP, R.REASON, R.DETAIL)]
        event["decision"] = "kept" + (f", changed {', '.join(ch)}" if ch else "")
    return "kept", kept, event


def _ended_in_outputs(run: RunData, row: dict[str, Any], row_id: str) -> list[dict[str, Any]]:
    """Output files (and 1-based lines) holding the row: by its id, its NI instance id or its text."""
    from curate.schemas.natural_instructions import ID_NAMESPACE
    needles = [json.dumps(row_id), uuid.uuid5(ID_NAMESPACE, row_id).hex]
    text = next((row[c] for c in ("text", "prompt", "instruction", "input") if isinstance(row.get(c), str)), None)
    if text:
        needles.append(json.dumps(text, ensure_ascii=False)[1:-1])
    found = []
    for o in run.manifest.get("outputs", []):
        for f in o.get("files", []):
            p = Path(f["path"])
            if not p.is_file() or p.suffix not in (".json", ".jsonl", ".csv", ".tsv"):
                continue
            with open(p, encoding="utf-8", errors="replace") as fh:
                for n, line in enumerate(fh, 1):
                    if any(nd and nd in line for nd in needles):
                        found.append({"output": o["name"], "file": str(p), "line": n})
                        break
    return found


def explain(target: str | Path, row_id: str, depth: int = 2) -> dict[str, Any]:
    """The lineage of ``row_id`` in the run at ``target`` (pipeline file, out folder or manifest)."""
    run = RunData.load(target)
    return _explain(run, row_id, depth)


def _explain(run: RunData, row_id: str, depth: int) -> dict[str, Any]:
    start = run.input_table()
    row = _find(start, row_id)
    first = row
    events, status = [], "kept"
    for step in run.steps:
        status, row, event = _decide(step, row_id, row)
        if status == "absent" and row is None:
            continue                       # not created yet
        if first is None and row is not None:
            first = row
        events.append(event)
        if status == "rejected":
            break
    if first is None:
        raise CurateError(f"row {row_id!r} is not in the run of {run.manifest['pipeline']} "
                          f"({run.manifest_path}); ids are in the `id` column of outputs and rejects")
    out: dict[str, Any] = {"id": row_id, "pipeline": run.manifest["pipeline"],
                           "manifest": str(run.manifest_path), "source": first.get(R.SOURCE),
                           "origin": first.get(R.ORIGIN), "steps": events}
    if row is not None:
        out["checks"] = _provenance(row)
        out["fields"] = {k: v for k, v in row.items() if k not in out["checks"] and k not in (R.ID,)}
    parents = next((e["parents"] for e in events if e.get("parents")), None) or _parents(first)
    if parents:
        out["parents"] = []
        for p in parents:
            entry = dict(p)
            if depth > 0:
                try:
                    entry["lineage"] = _explain(run, str(p["id"]), depth - 1)
                except CurateError:
                    entry["lineage_missing"] = True
            out["parents"].append(entry)
    if status == "rejected":
        out["ended"] = {"rejected": events[-1].get("reason"), "step": events[-1]["step"],
                        "detail": events[-1].get("detail")}
    elif run.manifest.get("only"):
        out["ended"] = {"kept": True, "note": "an --only run writes no outputs"}
    else:
        out["ended"] = {"kept": True, "outputs": _ended_in_outputs(run, row or first, row_id)}
    return out


def render(info: dict[str, Any], indent: str = "") -> list[str]:
    """Plain-text lines for the terminal."""
    lines = [f"{indent}row {info['id']}  (pipeline {info['pipeline']})",
             f"{indent}  source: {info.get('source')}  origin: {info.get('origin')}"]
    for e in info["steps"]:
        extra = "".join(f"; {k}: {v}" for k, v in e.items() if k not in ("step", "decision", "parents") and v is not None)
        lines.append(f"{indent}  {e['step']}: {e['decision']}{extra}")
    if info.get("checks"):
        lines.append(f"{indent}  checks/scores: " + ", ".join(f"{k}={v}" for k, v in info["checks"].items()))
    end = info["ended"]
    if "rejected" in end:
        lines.append(f"{indent}  ended: rejected by {end['step']}: {end['rejected']}"
                     + (f" ({end['detail']})" if end.get("detail") else ""))
    elif end.get("outputs"):
        for o in end["outputs"]:
            lines.append(f"{indent}  ended: {o['output']} {o['file']}:{o['line']}")
    else:
        lines.append(f"{indent}  ended: kept in the final table" + (f" ({end['note']})" if end.get("note") else
                                                                   " (no output file holds it)"))
    for p in info.get("parents", []):
        w = f" weight {p['weight']}" if p.get("weight") is not None else ""
        lines.append(f"{indent}  parent {p['id']}{w}")
        if "lineage" in p:
            lines += render(p["lineage"], indent + "    ")
    return lines
