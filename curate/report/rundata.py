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

    def kept(self, columns: list[str] | None = None) -> pl.DataFrame | None:
        return _read(self.dir, "kept", columns) if self.dir else None

    def rejected(self, columns: list[str] | None = None) -> pl.DataFrame | None:
        return _read(self.dir, "rejected", columns) if self.dir else None


def _read(entry: Path, kind: str, columns: list[str] | None) -> pl.DataFrame | None:
    """A cache entry's kept/rejected table (Parquet parts; see curate.cache), or None."""
    from curate.cache import read_entry
    return read_entry(entry, kind, columns)


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

    def source_table(self) -> pl.DataFrame | None:
        """Rows as read from the sources (their cached tables), or None when not cached."""
        frames = []
        for s in self.manifest.get("sources", []):
            if not s.get("fingerprint"):
                return None
            from curate.cache import read_entry
            df = read_entry(self.cache_root / f"source-{s['name']}-{s['fingerprint']}")
            if df is None:
                return None
            frames.append(df)
        return R.concat(frames) if frames else None

    def input_table(self) -> pl.DataFrame | None:
        """The table the first step saw: its kept + rejected rows, less rows it created (parent_id)."""
        if not self.steps:
            return self.final_table()
        first = self.steps[0]
        kept, rej = first.kept(), first.rejected()
        if kept is None:
            return self.source_table()
        both = R.concat([kept, rej.drop([c for c in R.REJECT_COLUMNS if c in rej.columns])
                         if rej is not None else None])
        src = self.source_table()
        if "parent_id" in both.columns and (src is None or "parent_id" not in src.columns):
            both = both.filter(pl.col("parent_id").is_null())     # rows the first step created
        return both

    def final_table(self) -> pl.DataFrame | None:
        """The table after the last step that finished."""
        for s in reversed(self.steps):
            k = s.kept()
            if k is not None:
                return k
        return self.source_table()
