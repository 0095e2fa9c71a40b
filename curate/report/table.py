"""The closing table of ``curate build``: one line per source, step and output, fitting an
80-column terminal (the name column folds; numbers never do)."""
from __future__ import annotations

from typing import Any

from rich.table import Table


def _status(r: Any, planned: bool) -> str:
    if r.failed:
        return "[bold red]FAILED[/]"
    if r.cached:
        return "cached"
    if planned:
        return "would run" if r.extra.get("would_run") else "planned"
    return "ran"


def closing_table(result: Any) -> Table:
    """Rows per source/step/output of a :class:`curate.engine.RunResult` (also a failed one)."""
    m = result.manifest
    title = f"curate build: {m['pipeline']}"
    if m.get("status") in ("failed", "interrupted"):
        title += f" ({m['status']})"
    elif m.get("only"):
        title += f" (--only {m['only']['label']})"
    t = Table(title=title, pad_edge=False, collapse_padding=True)
    t.add_column("kind", no_wrap=True)
    t.add_column("name", overflow="fold", ratio=1, min_width=8)
    for col in ("in", "out", "rejected", "created"):
        t.add_column(col, justify="right", no_wrap=True)
    t.add_column("sec", justify="right", no_wrap=True)
    t.add_column("status", no_wrap=True)
    step_no = 0
    for r in result.reports:
        name = r.name
        if r.kind == "step":
            step_no += 1
            name = f"{step_no}. {r.name}"
        t.add_row(r.kind, name, f"{r.rows_in:,}" if r.kind != "source" and (r.rows_in or not r.failed) else "",
                  f"{r.rows_out:,}" if r.kind != "output" and not r.failed else "",
                  f"{r.rows_rejected:,}" if not r.failed else "",
                  f"{r.rows_created:,}" if r.rows_created else "", f"{r.seconds:.2f}",
                  _status(r, result.planned))
    return t


def closing_warnings(result: Any) -> list[str]:
    """One line per warning of the run (steps that removed more than half their input, copies
    an output merged, ...), for under the closing table."""
    return [f"{w['at']}: {w['message']}" for w in result.manifest.get("warnings") or []]
