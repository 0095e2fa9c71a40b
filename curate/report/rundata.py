"""What a finished (or failed) run left on disk, read back: its manifest, rejects, and each step's
cached table. The report and ``curate explain`` both read runs through here."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from curate import records as R
from curate.errors import CurateError


def find_manifest(target: str | Path) -> Path:
    """A manifest from a manifest path, a run/output folder, or a pipeline file."""
    p = Path(target)
    if p.is_dir():
        for cand in (p / "manifest.json", p / "runs" / "latest" / "manifest.json"):
            if cand.exists():
                return cand
        from curate.runs import latest_run
        run = latest_run(p)
        if run is not None and (run / "manifest.json").exists():
            return run / "manifest.json"
        raise CurateError(f"{p}: no manifest.json here (run `curate build PIPELINE` first)")
    if p.suffix in (".yaml", ".yml"):
        from curate.pipeline import load_yaml
        pipe = load_yaml(p, resolve=False)
        return find_manifest(pipe.out_dir)
    if p.name.endswith(".json") and p.exists():
        return p
    raise CurateError(f"{p}: not found; give a pipeline file, an output folder (out/<name>) "
                      "or a manifest.json")


@dataclass
class StepData:
    """One step of a run, with lazy access to its cached kept/rejected tables."""

    index: int
    name: str
    entry: dict[str, Any]
    dir: Path | None

    def kept(self, columns: list[str] | None = None, limit: int | None = None) -> pl.DataFrame | None:
        return _read(self.dir, "kept", columns, limit) if self.dir else None

    def rejected(self, columns: list[str] | None = None, limit: int | None = None) -> pl.DataFrame | None:
        return _read(self.dir, "rejected", columns, limit) if self.dir else None

    def texts(self, ids: list[str], column: str) -> dict[str, Any]:
        """``column`` of the rows (kept or rejected here) whose id is in ``ids``, read part by
        part (only the id and that column)."""
        from curate.cache import entry_table
        out: dict[str, Any] = {}
        for kind in ("kept", "rejected"):
            t = entry_table(self.dir, kind) if self.dir else None
            if t is None or column not in t.schema():
                continue
            for f in t.iter_frames([R.ID, column]):
                sel = f.filter(pl.col(R.ID).is_in(ids))
                out.update(zip(sel[R.ID].to_list(), sel[column].to_list()))
        return out


def _read(entry: Path, kind: str, columns: list[str] | None,
          limit: int | None = None) -> pl.DataFrame | None:
    """A cache entry's kept/rejected table (Parquet parts; see curate.cache), or None; only its
    first ``limit`` rows when given (parts read until there are enough; 0: the columns only)."""
    from curate.cache import entry_table, read_entry
    if limit is None:
        return read_entry(entry, kind, columns)
    t = entry_table(entry, kind)
    if t is None:
        return None
    if columns is not None:
        have = set(t.schema())
        columns = [c for c in columns if c in have]
    frames, n = [], 0
    for seg in t.segments:
        frames.append(t.read_segment(seg, columns, limit=limit - n))
        n += frames[-1].height
        if n >= limit:
            break
    return R.concat(frames) if len(frames) > 1 else frames[0] if frames else pl.DataFrame()


@dataclass
class RunData:
    """A run's manifest plus handles on its caches and rejects."""

    manifest_path: Path
    manifest: dict[str, Any]
    cache_root: Path
    steps: list[StepData] = field(default_factory=list)

    @classmethod
    def load(cls, target: str | Path) -> RunData:
        mp = find_manifest(target)
        m = json.loads(mp.read_text())
        root = Path(m.get("workdir") or ".curate") / m["pipeline"]
        steps = []
        for e in m.get("steps", []):
            d = root / f"{e['index']:02d}-{e['name']}-{e['fingerprint']}"
            steps.append(StepData(e["index"], e["name"], e, d if d.exists() else None))
        return cls(mp, m, root, steps)

    def rejects(self) -> pl.DataFrame:
        """Every rejected row of the run (empty frame when there were none)."""
        rej = self.manifest.get("rejects") or {}
        path = Path(rej.get("path", "")) if rej else None
        if path is None or not path.exists():
            run_dir = self.manifest.get("run_dir")
            cands = list(Path(run_dir).glob("rejects.*")) if run_dir else []
            path = cands[0] if cands else None
        if path is None or not path.exists():
            return pl.DataFrame(schema={R.STEP: pl.String, R.REASON: pl.String})
        if path.suffix == ".parquet":
            return pl.read_parquet(path)
        return pl.read_ndjson(path, infer_schema_length=None)

    def source_table(self, columns: list[str] | None = None,
                     limit: int | None = None) -> pl.DataFrame | None:
        """Rows as read from the sources (their cached tables), or None when not cached; only
        ``columns`` and the first ``limit`` rows of each source when given."""
        frames = []
        for s in self.manifest.get("sources", []):
            if not s.get("fingerprint"):
                return None
            df = _read(self.cache_root / f"source-{s['name']}-{s['fingerprint']}", "kept", columns, limit)
            if df is None:
                return None
            frames.append(df)
        if not frames:
            return None
        both = R.concat(frames)
        return both.head(limit) if limit is not None else both

    def input_table(self, columns: list[str] | None = None,
                    limit: int | None = None) -> pl.DataFrame | None:
        """The table the first step saw: its kept + rejected rows, less rows it created (parent_id).
        Only ``columns`` when given; with ``limit``, a sample of about that many rows: the first
        kept and the first rejected rows, in the step's proportions."""
        if not self.steps:
            return self.final_table(columns, limit)
        first = self.steps[0]
        cols = None if columns is None else list(dict.fromkeys([*columns, "parent_id"]))
        k_lim = r_lim = None
        if limit is not None:
            k, r = first.entry.get("rows_out") or 0, first.entry.get("rows_rejected") or 0
            r_lim = limit * r // (k + r) if k + r else 0
            k_lim = limit - r_lim
        kept = first.kept(cols, k_lim)
        if kept is None:
            return self.source_table(columns, limit)
        rej = first.rejected(cols, r_lim) if r_lim != 0 else None
        both = R.concat([kept, rej.drop([c for c in R.REJECT_COLUMNS if c in rej.columns])
                         if rej is not None else None])
        if "parent_id" in both.columns:
            src = self.source_table(limit=0)            # its columns only
            if src is None or "parent_id" not in src.columns:
                both = both.filter(pl.col("parent_id").is_null())     # rows the first step created
        if columns is not None:
            both = both.select([c for c in columns if c in both.columns])
        return both

    def final_table(self, columns: list[str] | None = None,
                    limit: int | None = None) -> pl.DataFrame | None:
        """The table after the last step that finished (``columns``, first ``limit`` rows)."""
        for s in reversed(self.steps):
            k = s.kept(columns, limit)
            if k is not None:
                return k
        return self.source_table(columns, limit)
