"""Per-run folders and step selection for ``--only``.

Every build (full, ``--only`` or failed) leaves ``out/<name>/runs/<UTC time>/`` with its own
manifest and rejects, and ``runs/latest`` (a symlink, plus ``runs/latest.json`` where links are not
possible) points at the newest. A full run also writes ``out/<name>/manifest.json`` and the rejects
file beside it; an ``--only`` run never touches those, so the last full run stays readable.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
from pathlib import Path
from typing import Any

from curate.errors import CurateError

KEEP_RUNS = 20          # older run folders are pruned (the top-level manifest is never pruned)


def step_labels(steps: list) -> list[str]:
    """Display label per step: its name, or ``name#k`` when several steps share the name."""
    names = [s.name for s in steps]
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(f"{n}#{seen[n]}" if names.count(n) > 1 else n)
    return out


def resolve_only(steps: list, only: str | int | None) -> int | None:
    """Turn ``--only`` (``NAME``, ``NAME#K`` or a 1-based position ``N``) into a 0-based index.

    A bare name shared by several steps means its first occurrence (the message then says which
    ran and how to pick another)."""
    if only is None:
        return None
    names = [s.name for s in steps]
    labels = step_labels(steps)
    listing = ", ".join(f"{i + 1}={lab}" for i, lab in enumerate(labels)) or "none"
    text = str(only).strip()
    if text.isdigit():
        n = int(text)
        if 1 <= n <= len(steps):
            return n - 1
        raise CurateError(f"--only {text}: this pipeline has {len(steps)} steps; give a position "
                          f"from 1 to {len(steps)} or a name (steps: {listing})")
    name, _, k = text.partition("#")
    if k:
        if not k.isdigit() or int(k) < 1:
            raise CurateError(f"--only {text!r}: write NAME#K with K = 1, 2, ... (steps: {listing})")
        hits = [i for i, nm in enumerate(names) if nm == name]
        if int(k) <= len(hits):
            return hits[int(k) - 1]
        raise CurateError(f"--only {text!r}: there {'is' if len(hits) == 1 else 'are'} {len(hits)} "
                          f"step(s) named {name!r} (steps: {listing})")
    if name in names:
        return names.index(name)
    raise CurateError(f"--only {text!r}: no such step in this pipeline (steps: {listing}; "
                      "use NAME, NAME#K or a position)")


def only_description(steps: list, index: int) -> str:
    """One line saying which step ``--only`` ran, e.g. ``step 3 of 4: clean#2``."""
    labels = step_labels(steps)
    text = f"step {index + 1} of {len(steps)}: {labels[index]}"
    same = sum(1 for s in steps if s.name == steps[index].name)
    if same > 1:
        text += f" ({same} steps are named {steps[index].name!r}; pick one with NAME#K or a position)"
    return text


def new_run_dir(out_dir: Path) -> Path:
    """Create ``out_dir/runs/<UTC time>/`` (with a ``-N`` suffix if that second is taken)."""
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    root = Path(out_dir) / "runs"
    root.mkdir(parents=True, exist_ok=True)
    for n in range(10_000):
        d = root / (stamp if n == 0 else f"{stamp}-{n}")
        try:
            d.mkdir()
            return d
        except FileExistsError:
            continue
    raise CurateError(f"cannot create a run folder under {root}")


def point_latest(run_dir: Path, info: dict[str, Any]) -> None:
    """Make ``runs/latest`` (symlink) and ``runs/latest.json`` name ``run_dir``; prune old runs."""
    root = run_dir.parent
    from curate.cache import write_json
    write_json({"run": run_dir.name, "path": str(run_dir), **info}, root / "latest.json")
    link = root / "latest"
    tmp = root / f".latest.{os.getpid()}"
    try:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(run_dir.name, tmp)
        os.replace(tmp, link)
    except OSError:             # no symlinks on this file system: latest.json is the pointer
        if tmp.is_symlink():
            tmp.unlink()
    runs = sorted((d for d in root.iterdir() if d.is_dir() and not d.is_symlink()), key=lambda d: d.name)
    for old in runs[:-KEEP_RUNS]:
        shutil.rmtree(old, ignore_errors=True)


def latest_run(out_dir: Path) -> Path | None:
    """The newest run folder under ``out_dir/runs`` (via latest.json), or None."""
    pointer = Path(out_dir) / "runs" / "latest.json"
    if not pointer.exists():
        return None
    d = Path(out_dir) / "runs" / json.loads(pointer.read_text())["run"]
    return d if d.exists() else None


def link_or_copy(src: Path, dst: Path) -> None:
    """Place ``src`` at ``dst`` (hard link when possible: rejects can be large)."""
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    if tmp.exists():
        tmp.unlink()
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def write_rejects(frames: list, path: Path, fmt: str) -> Path | None:
    """Write every rejected row (frames, or ``("cache", StepCache)`` entries read from the cache)
    to ``path``, bookkeeping columns first; no rejects: remove a stale file, return None."""
    import polars as pl

    from curate import records as R
    from curate.cache import atomic_path, read_entry, write_parquet
    loaded = []
    for f in frames:
        if isinstance(f, tuple):
            rej = read_entry(f[1].dir, "rejected")
            if rej is not None and rej.width:
                loaded.append(rej)
        else:
            loaded.append(f)
    if not loaded:
        if path.exists():
            path.unlink()
        return None
    df = R.concat(loaded)
    lead = [c for c in (R.STEP, R.REASON, R.DETAIL, R.ID, R.SOURCE, R.ORIGIN) if c in df.columns]
    df = df.select(lead + [c for c in df.columns if c not in lead])
    if fmt == "parquet":
        write_parquet(df, path)
    else:
        with atomic_path(path) as tmp:
            df.write_ndjson(tmp)
    return path
