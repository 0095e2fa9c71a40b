"""Runs a pipeline: reads sources, runs each step with caching and accounting, writes outputs,
the rejects file and the run manifest."""
from __future__ import annotations

import datetime as _dt
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from curate import __version__
from curate import records as R
from curate.cache import (ShardStore, StepCache, fingerprint, frame_fingerprint, sha256_file,
                          write_json, write_parquet, atomic_path)
from curate.errors import CurateError, DataError, StepError
from curate.step import Step, StepContext, StepResult

LIBRARIES = ("polars", "pyarrow", "pandas", "numpy", "pydantic", "datasets", "transformers", "torch",
             "tokenizers", "spacy", "nltk", "nlpaug", "scikit-learn", "imbalanced-learn", "ftfy",
             "lingua-language-detector", "sqlalchemy", "boto3", "beautifulsoup4", "peft", "trl",
             "sentence-transformers", "rensa")


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


@dataclass
class StepReport:
    """One line of the closing table."""

    kind: str                      # "source", "step" or "output"
    name: str
    rows_in: int = 0
    rows_out: int = 0
    rows_rejected: int = 0
    rows_created: int = 0
    seconds: float = 0.0
    cached: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    """What :meth:`Pipeline.run` returns: the manifest, paths written and per-step reports."""

    manifest: dict[str, Any]
    manifest_path: Path | None
    outputs: list[Path]
    rejects_path: Path | None
    reports: list[StepReport]
    final_path: Path | None = None
    planned: bool = False
    training: Any = None           # curate.train.TrainResult when a train: section ran

    def data(self) -> pl.DataFrame:
        """The final table (after the last step)."""
        if self.final_path is None:
            raise CurateError("no data: the run was a dry run")
        return pl.read_parquet(self.final_path)

    def rejects(self) -> pl.DataFrame:
        if self.rejects_path is None or not self.rejects_path.exists():
            return pl.DataFrame()
        if self.rejects_path.suffix == ".parquet":
            return pl.read_parquet(self.rejects_path)
        return pl.read_ndjson(self.rejects_path, infer_schema_length=None)

    @property
    def all_cached(self) -> bool:
        return all(r.cached for r in self.reports if r.kind in ("source", "step"))


def check_accounting(step: str, df_in: pl.DataFrame, kept: pl.DataFrame,
                     rejected: pl.DataFrame) -> int:
    """Every input id must leave exactly once (kept or rejected); returns rows created."""
    parts = [f.select(pl.col(R.ID).cast(pl.String)) for f in (kept, rejected) if f.height]
    out_ids = pl.concat(parts) if parts else pl.DataFrame({R.ID: []}, schema={R.ID: pl.String})
    for f, what in ((kept, "kept"), (rejected, "rejected")):
        if f.height and R.ID not in f.columns:
            raise StepError(f"step {step}: {what} rows have no `id` column")
    if rejected.height:
        if R.REASON not in rejected.columns or rejected[R.REASON].null_count():
            raise StepError(f"step {step}: rejected rows must all carry a `reason`")
    dup = out_ids.filter(pl.col(R.ID).is_duplicated())
    if dup.height:
        raise StepError(f"step {step}: accounting broken: id {dup[R.ID][0]!r} leaves the step "
                        f"{dup.filter(pl.col(R.ID) == dup[R.ID][0]).height} times")
    in_ids = df_in.select(pl.col(R.ID).cast(pl.String))
    lost = in_ids.join(out_ids, on=R.ID, how="anti")
    if lost.height:
        raise StepError(f"step {step}: accounting broken: {lost.height} input rows neither kept nor "
                        f"rejected (e.g. id {lost[R.ID][0]!r})")
    created = out_ids.height - in_ids.height
    assert df_in.height + created == kept.height + rejected.height
    return created


class Engine:
    """Local executor: polars in memory, Parquet cache on disk, one step after another."""

    def __init__(self, pipeline, progress: bool = False, console: Any = None) -> None:
        self.p = pipeline
        self.progress_enabled = progress
        self.console = console
        self.cache_root = Path(pipeline.workdir) / pipeline.name
        self._progress = None

    # ------------------------------------------------------------------ checks before running
    def preflight(self) -> None:
        targets: dict[Path, str] = {}
        for i, sink in enumerate(self.p.outputs):
            for t in sink.targets():
                key = Path(os.path.abspath(t))
                if key in targets:
                    raise CurateError(f"outputs[{i}].{sink.name}: path {t} is also written by "
                                      f"{targets[key]}; each output needs its own path")
                targets[key] = f"outputs[{i}].{sink.name}"
        for d in {Path(self.p.out_dir)} | {Path(t).parent for t in targets}:
            self._check_writable(d)

    @staticmethod
    def _check_writable(d: Path) -> None:
        probe = d
        while not probe.exists():
            probe = probe.parent
        if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
            raise CurateError(f"output directory {d} is not writable (checked {probe}); "
                              "choose another path or fix its permissions")

    # ------------------------------------------------------------------ progress plumbing
    def _task(self, label: str, total: int | None):
        if self._progress is None:
            return lambda advance, total=None: None
        tid = self._progress.add_task(label, total=total)

        def update(advance: int, total: int | None = None) -> None:
            if total is not None:
                self._progress.update(tid, total=total)
            self._progress.advance(tid, advance)
        return update

    # ------------------------------------------------------------------ run
    def run(self, force: bool = False, only: str | None = None, dry_run: bool = False) -> RunResult:
        p = self.p
        if only is not None and only not in [s.name for s in p.steps]:
            raise CurateError(f"--only {only!r}: no such step in this pipeline "
                              f"(steps: {', '.join(s.name for s in p.steps)})")
        self.preflight()
        if self.progress_enabled:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn)
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                      MofNCompleteColumn(), TimeElapsedColumn(),
                                      console=self.console, transient=False)
            self._progress.start()
        try:
            return self._run(force, only, dry_run)
        finally:
            if self._progress is not None:
                self._progress.stop()

    def _run(self, force: bool, only: str | None, dry_run: bool) -> RunResult:
        p = self.p
        started = time.time()
        reports: list[StepReport] = []
        manifest: dict[str, Any] = {
            "pipeline": p.name, "file": p.path, "seed": p.seed, "curate_version": __version__,
            "started_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "libraries": library_versions(), "platform": platform.platform(),
            "executor": p.executor, "sources": [], "steps": [], "outputs": [],
        }
        reject_frames: list[pl.DataFrame] = []

        # ---------------- sources
        src_frames, src_fps = [], []
        for i, src in enumerate(p.sources):
            rows, rejected, rep, fp = self._read_source(i, src, force, dry_run)
            reports.append(rep)
            src_frames.append(rows)
            src_fps.append(fp)
            if rejected is not None and rejected.height:
                reject_frames.append(rejected)
            manifest["sources"].append({
                "name": src.origin, "connector": src.name, "config": src.raw_config,
                "rows": rep.rows_out, "rejected": rep.rows_rejected, "fingerprint": fp,
                "cached": rep.cached, "seconds": round(rep.seconds, 3), "stats": rep.extra})
        if dry_run and any(f is None for f in src_frames):
            data = None
            data_fp = fingerprint("sources", src_fps)
        else:
            data = R.concat(src_frames) if src_frames else pl.DataFrame()
            if data.width == 0:
                data = pl.DataFrame(schema={R.SOURCE: pl.String, R.ORIGIN: pl.String})
            data = R.with_ids(data)
            lead = [R.ID, R.SOURCE, R.ORIGIN]
            data = data.select(lead + [c for c in data.columns if c not in lead])
            data_fp = frame_fingerprint(data) if None in src_fps else fingerprint("sources", src_fps)

        # ---------------- steps
        final_path: Path | None = None
        current_fp = data_fp
        pending: StepCache | None = None     # result lives in a cache entry not yet loaded
        for i, step in enumerate(p.steps):
            label = f"{i:02d}-{step.name}"
            fp = fingerprint("step", step.name, step.version, step.raw_config, current_fp, p.seed)
            cache = StepCache(self.cache_root, label, fp)
            forced = force or (only == step.name)
            rep = StepReport("step", step.name)
            entry = {"index": i, "name": step.name, "config": step.raw_config,
                     "config_hash": fingerprint(step.name, step.raw_config),
                     "input_fingerprint": current_fp, "fingerprint": fp}
            if cache.done and not forced:
                meta = cache.meta()
                rep.cached = True
                rep.rows_in, rep.rows_out = meta["rows_in"], meta["rows_out"]
                rep.rows_rejected, rep.rows_created = meta["rows_rejected"], meta["rows_created"]
                rep.seconds = meta["seconds"]
                rep.extra = meta.get("stats", {})
                pending, data = cache, None
            elif dry_run:
                rep.extra = {"would_run": True}
                pending, data = None, None
            else:
                if data is None:
                    data = self._materialize(pending)
                if forced:
                    cache.clear()             # also drops resumable shards of an earlier run
                data, rejected, rep = self._run_step(i, step, data, cache, rep)
                pending = cache
            if rep.rows_rejected and not dry_run:
                reject_frames.append(("cache", cache))
            entry.update(rows_in=rep.rows_in, rows_out=rep.rows_out, rows_rejected=rep.rows_rejected,
                         rows_created=rep.rows_created, seconds=round(rep.seconds, 3),
                         cached=rep.cached, stats=rep.extra)
            manifest["steps"].append(entry)
            reports.append(rep)
            current_fp = fp
            if only == step.name:
                break

        if dry_run:
            manifest["dry_run"] = True
            return RunResult(manifest, None, [], None, reports, None, planned=True)

        # ---------------- final table
        if pending is not None:
            final_path = pending.dir / "kept.parquet"
        else:
            final_path = StepCache(self.cache_root, "sources", current_fp).dir / "kept.parquet"
            if not final_path.exists():
                write_parquet(data, final_path)

        out_dir = Path(p.out_dir)
        written: list[Path] = []
        if only is None:
            final = data if data is not None else pl.read_parquet(final_path)
            for i, sink in enumerate(p.outputs):
                rep, files = self._write_output(i, sink, final, current_fp, force)
                reports.append(rep)
                written += [Path(f["path"]) for f in files]
                manifest["outputs"].append({"name": sink.name, "config": sink.raw_config,
                                            "rows": rep.rows_in, "cached": rep.cached, "files": files,
                                            "stats": rep.extra})

        # ---------------- rejects + manifest
        rejects_path = self._write_rejects(reject_frames, out_dir)
        manifest["rejects"] = None
        if rejects_path is not None:
            manifest["rejects"] = {"path": str(rejects_path), "rows": sum(r.rows_rejected for r in reports),
                                   "sha256": sha256_file(rejects_path)}
        step_reps = [r for r in reports if r.kind == "step"]
        manifest["totals"] = {
            "rows_read": sum(r.rows_out + r.rows_rejected for r in reports if r.kind == "source"),
            "rows_final": step_reps[-1].rows_out if step_reps else (data.height if data is not None else None),
            "rows_rejected": sum(r.rows_rejected for r in reports),
            "rows_created": sum(r.rows_created for r in reports),
        }
        manifest["finished_at"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        manifest["seconds"] = round(time.time() - started, 3)
        manifest["all_cached"] = all(r.cached for r in reports if r.kind in ("source", "step"))
        manifest_path = out_dir / "manifest.json"
        write_json(manifest, manifest_path)
        return RunResult(manifest, manifest_path, written, rejects_path, reports, final_path)

    # ------------------------------------------------------------------ pieces
    def _materialize(self, cache: StepCache | None) -> pl.DataFrame:
        assert cache is not None
        return pl.read_parquet(cache.dir / "kept.parquet")

    def _read_source(self, i: int, src, force: bool, dry_run: bool):
        rep = StepReport("source", f"{src.name}:{src.origin}")
        cheap = src.fingerprint()
        fp = fingerprint("source", src.name, src.version, src.raw_config, src.origin, cheap) if cheap else None
        cache = StepCache(self.cache_root, f"source-{src.origin}", fp) if fp else None
        if cache is not None and cache.done and not force:
            rows, rejected, meta = cache.load()
            rep.cached, rep.seconds = True, meta["seconds"]
            rep.rows_out, rep.rows_rejected = rows.height, rejected.height
            rep.extra = meta.get("stats", {})
            return rows, rejected, rep, fp
        if dry_run:
            rep.extra = {"would_run": True}
            return None, None, rep, fp
        t0 = time.time()
        src.workdir = self.cache_root
        update = self._task(f"source {src.origin}", None)
        frames, rejects = [], []
        where = f"sources[{i}].{src.name} ({src.describe()})"
        n = 0
        for batch in src.read():
            rows = batch.rows
            if rows.height or rows.width:
                rows = src.apply_mapping(rows, where)
                # An input column named like a bookkeeping column is kept under another name.
                clash = {c: f"input_{c}" for c in (R.ID, R.ORIGIN) if c in rows.columns}
                if clash:
                    rows = rows.rename(clash)
                rows = rows.with_columns(pl.lit(src.origin, dtype=pl.String).alias(R.ORIGIN))
                frames.append(rows)
            if batch.rejected is not None and batch.rejected.height:
                rej = batch.rejected
                if src.config.strict:
                    first = rej.row(0, named=True)
                    raise DataError(f"{where}: {first[R.SOURCE]}: {first[R.REASON]}"
                                    + (f" ({first[R.DETAIL]})" if first.get(R.DETAIL) else "")
                                    + " [strict: true]")
                rejects.append(rej)
            n += rows.height
            update(rows.height)
            if src.config.limit and n >= src.config.limit:
                break
        rows = R.concat(frames) if frames else pl.DataFrame(schema={R.SOURCE: pl.String, R.ORIGIN: pl.String})
        if src.config.limit:
            rows = rows.head(src.config.limit)
        rejected = R.concat(rejects) if rejects else pl.DataFrame()
        rep.seconds = time.time() - t0
        rep.rows_out, rep.rows_rejected = rows.height, rejected.height
        rep.extra = dict(src.stats)
        if cache is not None:
            cache.save(rows, rejected, {"rows": rows.height, "rejected": rejected.height,
                                        "seconds": rep.seconds, "stats": rep.extra})
        if fp is None:
            fp = frame_fingerprint(rows)
        return rows, rejected, rep, fp

    def _run_step(self, i: int, step: Step, data: pl.DataFrame, cache: StepCache,
                  rep: StepReport):
        p = self.p
        t0 = time.time()
        rep.rows_in = data.height
        scope_df, passthrough = data, None
        apply_to = getattr(step.config, "apply_to", None)
        if apply_to is not None:
            scope_df = data.filter(pl.col(R.ORIGIN).is_in(apply_to))
            passthrough = data.filter(~pl.col(R.ORIGIN).is_in(apply_to))
        update = self._task(f"step {i} {step.name}", scope_df.height)
        ctx = StepContext(step_name=step.name, index=i, seed=p.seed, workdir=cache.scratch,
                          batch_size=p.batch_size, progress=update,
                          shards=ShardStore(cache.scratch / "shards"),
                          log=(self.console.log if self.console is not None else (lambda m: None)))
        if step.scope == "global":
            res = step.process(scope_df, ctx)
            update(scope_df.height)
            results = [res]
        else:
            results = []
            for b, start in enumerate(range(0, max(scope_df.height, 1), p.batch_size)):
                batch = scope_df.slice(start, p.batch_size)
                if step.resumable and ctx.shards.done(b):
                    k, r, s = ctx.shards.read(b)
                    results.append(StepResult(k, r, s))
                else:
                    res = step.process(batch, ctx)
                    if step.resumable:
                        ctx.shards.write(b, res.kept, res.rejected, res.stats)
                    results.append(res)
                update(batch.height)
        kept = R.concat([r.kept for r in results if r.kept.height or r.kept.width])
        if kept.width == 0:
            kept = scope_df.clear()
        rejected = R.concat([r.rejected for r in results if r.rejected.height])
        if rejected.width == 0:
            rejected = pl.DataFrame()
        rep.rows_created = check_accounting(step.name, scope_df, kept, rejected)
        if rejected.height:
            rejected = rejected.with_columns(pl.lit(step.name).alias(R.STEP)) if R.STEP not in rejected.columns \
                else rejected.with_columns(pl.col(R.STEP).fill_null(step.name))
        stats = step.merge_stats([r.stats for r in results])
        if passthrough is not None and passthrough.height:
            kept = R.concat([kept, passthrough])
        rep.rows_out, rep.rows_rejected = kept.height, rejected.height
        rep.seconds = time.time() - t0
        rep.extra = stats
        cache.save(kept, rejected, {"rows_in": rep.rows_in, "rows_out": rep.rows_out,
                                    "rows_rejected": rep.rows_rejected,
                                    "rows_created": rep.rows_created, "seconds": rep.seconds,
                                    "stats": stats})
        return kept, rejected, rep

    def _write_output(self, i: int, sink, final: pl.DataFrame, data_fp: str, force: bool):
        rep = StepReport("output", sink.name)
        fp = fingerprint("output", sink.name, sink.version, sink.raw_config, data_fp, self.p.seed)
        record = self.cache_root / "outputs" / f"{i:02d}-{sink.name}-{fp}.json"
        import json
        if record.exists() and not force:
            files = json.loads(record.read_text())
            if files["files"] and all(Path(f["path"]).exists() and sha256_file(Path(f["path"])) == f["sha256"] for f in files["files"]):
                rep.cached, rep.rows_in = True, files["rows"]
                rep.extra = files.get("stats", {})
                return rep, files["files"]
        t0 = time.time()
        df = sink.select(final)
        paths = sink.write(df, self.p.seed)
        files = [{"path": str(pth), "sha256": sha256_file(Path(pth)), "bytes": Path(pth).stat().st_size}
                 for pth in paths]
        rep.rows_in = df.height
        rep.seconds = time.time() - t0
        rep.extra = dict(getattr(sink, "stats", None) or {})
        write_json({"rows": df.height, "files": files, "stats": rep.extra}, record)
        return rep, files

    def _write_rejects(self, frames: list, out_dir: Path) -> Path | None:
        loaded = []
        for f in frames:
            if isinstance(f, tuple):
                _, cache = f
                rp = cache.dir / "rejected.parquet"
                if rp.exists():
                    loaded.append(pl.read_parquet(rp))
            else:
                loaded.append(f)
        path = out_dir / f"rejects.{self.p.rejects_format}"
        if not loaded:
            if path.exists():
                path.unlink()
            return None
        df = R.concat(loaded)
        lead = [c for c in (R.STEP, R.REASON, R.DETAIL, R.ID, R.SOURCE, R.ORIGIN) if c in df.columns]
        df = df.select(lead + [c for c in df.columns if c not in lead])
        if self.p.rejects_format == "parquet":
            write_parquet(df, path)
        else:
            with atomic_path(path) as tmp:
                df.write_ndjson(tmp)
        return path
