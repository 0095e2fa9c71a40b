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
from curate import storage
from curate.cache import (ShardStore, StepCache, fingerprint, frame_fingerprint, sha256_file,
                          write_json, write_parquet)
from curate.errors import CurateError, DataError
from curate.io import mask_obj, sweep_temp_files
from curate.runs import (link_or_copy, new_run_dir, only_description, point_latest, resolve_only,
                         step_labels, write_rejects)
from curate.step import Step, StepContext, StepResult
from curate.runresult import (LIBRARIES, RunResult, StepReport, check_accounting,  # noqa: F401
                              library_versions)
from curate.yamlfile import key_path, line_for

@dataclass
class _RunState:
    """What one run has done so far (kept together so a failure can still be written down)."""

    manifest: dict[str, Any]
    started: float
    reports: list[StepReport] = field(default_factory=list)
    reject_frames: list = field(default_factory=list)
    data: pl.DataFrame | None = None
    pending: StepCache | None = None      # the current table lives in this cache entry
    current_fp: str | None = None
    where: tuple[str, tuple] | None = None   # ("steps[2].clean", key path) of the running part
    current: StepReport | None = None        # its report, until it finishes


def step_warnings(rep: StepReport) -> list[str]:
    """What a user should look at: the warnings a step or output put in its stats, and any step
    that removed more than half of its input (an empty-label class or a harsh filter does that)."""
    out = [str(w) for w in (rep.extra or {}).get("warnings", [])]
    if rep.kind == "step" and rep.rows_in and rep.rows_rejected * 2 > rep.rows_in:
        msg = f"removed {rep.rows_rejected:,} of {rep.rows_in:,} rows ({100 * rep.rows_rejected / rep.rows_in:.1f}%)"
        if not any("removed " in w for w in out):     # the step already said it, in its own terms
            out.append(msg)
    return out


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
                key = str(t) if storage.is_url(t) else Path(os.path.abspath(t))
                if key in targets:
                    raise CurateError(f"outputs[{i}].{sink.name}: path {t} is also written by "
                                      f"{targets[key]}; each output needs its own path")
                targets[key] = f"outputs[{i}].{sink.name}"
        for d in {Path(self.p.out_dir)} | {Path(t).parent for t in targets if isinstance(t, Path)}:
            self._check_writable(d)

    def sweep_temp_files(self) -> list[Path]:
        """Remove temp files of our own naming that killed runs left in the output folders and the
        cache (only ``.NAME.<pid>-<hex>.tmp`` of dead pids; see :func:`curate.io.sweep_temp_files`)."""
        dirs = {Path(self.p.out_dir)} | {Path(t).parent for s in self.p.outputs for t in s.targets()
                                         if not storage.is_url(t)}      # remote targets leave no temp files
        for root in (self.cache_root, Path(self.p.out_dir)):   # run folders, shards, entries
            if root.is_dir():
                dirs |= {Path(d) for d, _, _ in os.walk(root)}
        self.swept = sweep_temp_files(dirs)
        if self.swept and self.console is not None:
            self.console.print(f"removed {len(self.swept)} temp file(s) left by an interrupted run")
        return self.swept

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
    def run(self, force: bool = False, only: str | int | None = None, dry_run: bool = False) -> RunResult:
        """Run (or plan) the pipeline. ``only`` is a step name, ``NAME#K`` or a 1-based position."""
        only_idx = resolve_only(self.p.steps, only)
        self.preflight()
        if not dry_run:
            self.sweep_temp_files()
        if self.progress_enabled:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn)
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                      MofNCompleteColumn(), TimeElapsedColumn(),
                                      console=self.console, transient=False)
            self._progress.start()
        try:
            return self._run(force, only_idx, dry_run)
        finally:
            if self._progress is not None:
                self._progress.stop()

    def _run(self, force: bool, only: int | None, dry_run: bool) -> RunResult:
        st = _RunState(manifest=self._new_manifest(only), started=time.time())
        try:
            self._read_sources(st, force, dry_run)
            self._run_steps(st, force, only, dry_run)
            if dry_run:
                st.manifest["dry_run"] = True
                return RunResult(st.manifest, None, [], None, st.reports, None, planned=True)
            final_path = self._final_table(st)
            written = self._write_outputs(st, final_path, force) if only is None else []
        except BaseException as e:
            if not dry_run:
                self._record_failure(st, e, only)
            raise
        return self._finish(st, final_path, written, only)

    def _new_manifest(self, only: int | None) -> dict[str, Any]:
        p = self.p
        m: dict[str, Any] = {
            "pipeline": p.name, "file": p.path, "seed": p.seed, "curate_version": __version__,
            "status": "running",
            "started_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "libraries": library_versions(), "platform": platform.platform(),
            "executor": p.executor, "workdir": str(p.workdir), "out_dir": str(p.out_dir),
            "sources": [], "steps": [], "outputs": [],
        }
        if only is not None:
            m["only"] = {"position": only + 1, "label": step_labels(p.steps)[only],
                         "description": only_description(p.steps, only)}
        return m

    def _read_sources(self, st: "_RunState", force: bool, dry_run: bool) -> None:
        """Read every source (or its cache) and build the first table with ids."""
        src_frames, src_fps = [], []
        for i, src in enumerate(self.p.sources):
            st.where = (f"sources[{i}].{src.name}", ("sources", i))
            st.current = StepReport("source", f"{src.name}:{src.origin}")
            rows, rejected, rep, fp = self._read_source(i, src, force, dry_run)
            st.current = None
            st.reports.append(rep)
            src_frames.append(rows)
            src_fps.append(fp)
            if rejected is not None and rejected.height:
                st.reject_frames.append(rejected)
            st.manifest["sources"].append({
                "name": src.origin, "connector": src.name, "config": src.raw_config,
                "rows": rep.rows_out, "rejected": rep.rows_rejected, "fingerprint": fp,
                "cached": rep.cached, "seconds": round(rep.seconds, 3), "stats": rep.extra})
        if dry_run and any(f is None for f in src_frames):
            st.data, st.current_fp = None, fingerprint("sources", src_fps)
            return
        data = R.concat(src_frames) if src_frames else pl.DataFrame()
        if data.width == 0:
            data = pl.DataFrame(schema={R.SOURCE: pl.String, R.ORIGIN: pl.String})
        data = R.with_ids(data)
        lead = [R.ID, R.SOURCE, R.ORIGIN]
        st.data = data.select(lead + [c for c in data.columns if c not in lead])
        st.current_fp = frame_fingerprint(st.data) if None in src_fps else fingerprint("sources", src_fps)

    def _run_steps(self, st: "_RunState", force: bool, only: int | None, dry_run: bool) -> None:
        """Run each step from its cache or for real, up to ``only`` when given."""
        p = self.p
        for i, step in enumerate(p.steps):
            st.where = (f"steps[{i}].{step.name}", ("steps", i))
            fp = fingerprint("step", step.name, step.version, step.raw_config, st.current_fp, p.seed)
            cache = StepCache(self.cache_root, f"{i:02d}-{step.name}", fp)
            rep = st.current = StepReport("step", step.name)
            entry = {"index": i, "name": step.name, "config": step.raw_config,
                     "config_hash": fingerprint(step.name, step.raw_config),
                     "input_fingerprint": st.current_fp, "fingerprint": fp}
            if cache.done and not (force or only == i):
                self._from_cache(st, cache, rep)
            elif dry_run:
                rep.extra = {"would_run": True}
                st.pending, st.data = None, None
            else:
                if st.data is None:
                    st.data = self._materialize(st.pending)
                if force or only == i:
                    cache.clear()             # also drops resumable shards of an earlier run
                st.data, _, rep = self._run_step(i, step, st.data, cache, rep)
                st.pending = cache
            st.current = None
            if rep.rows_rejected and not dry_run:
                st.reject_frames.append(("cache", cache))
            rep.warnings = step_warnings(rep)
            entry.update(rows_in=rep.rows_in, rows_out=rep.rows_out, rows_rejected=rep.rows_rejected,
                         rows_created=rep.rows_created, seconds=round(rep.seconds, 3),
                         cached=rep.cached, stats=rep.extra, warnings=rep.warnings)
            st.manifest["steps"].append(entry)
            st.reports.append(rep)
            st.current_fp = fp
            if only == i:
                break

    @staticmethod
    def _from_cache(st: "_RunState", cache: StepCache, rep: StepReport) -> None:
        meta = cache.meta()
        rep.cached = True
        rep.rows_in, rep.rows_out = meta["rows_in"], meta["rows_out"]
        rep.rows_rejected, rep.rows_created = meta["rows_rejected"], meta["rows_created"]
        rep.seconds = meta["seconds"]
        rep.extra = meta.get("stats", {})
        st.pending, st.data = cache, None

    def _final_table(self, st: "_RunState") -> Path:
        """Path of the table after the last step (written for a pipeline without steps)."""
        if st.pending is not None:
            return st.pending.dir / "kept.parquet"
        final_path = StepCache(self.cache_root, "sources", st.current_fp).dir / "kept.parquet"
        if not final_path.exists():
            write_parquet(st.data, final_path)
        return final_path

    def _write_outputs(self, st: "_RunState", final_path: Path, force: bool) -> list[Path]:
        final = st.data if st.data is not None else pl.read_parquet(final_path)
        written: list[Path] = []
        for i, sink in enumerate(self.p.outputs):
            st.where = (f"outputs[{i}].{sink.name}", ("outputs", i))
            st.current = StepReport("output", sink.name)
            rep, files = self._write_output(i, sink, final, st.current_fp, force)
            st.current = None
            rep.warnings = step_warnings(rep)
            st.reports.append(rep)
            written += [sink.path(f["path"]) for f in files]
            st.manifest["outputs"].append({"name": sink.name, "config": sink.raw_config,
                                           "rows": rep.rows_in, "cached": rep.cached, "files": files,
                                           "stats": rep.extra, "warnings": rep.warnings})
        return written

    def _totals(self, st: "_RunState") -> dict[str, Any]:
        reports = st.reports
        step_reps = [r for r in reports if r.kind == "step"]
        return {
            "rows_read": sum(r.rows_out + r.rows_rejected for r in reports if r.kind == "source"),
            "rows_final": step_reps[-1].rows_out if step_reps else (st.data.height if st.data is not None else None),
            "rows_rejected": sum(r.rows_rejected for r in reports),
            "rows_created": sum(r.rows_created for r in reports),
        }

    def _save_run(self, st: "_RunState", only: int | None) -> tuple[Path, Path | None, Path]:
        """Write rejects + manifest into a new run folder (and, for full runs, into out_dir)."""
        out_dir = Path(self.p.out_dir)
        run_dir = new_run_dir(out_dir)
        m = st.manifest
        m["run_dir"] = str(run_dir)
        rejects_path = self._write_rejects(st.reject_frames, run_dir)
        # Only a full run that finished replaces out/<name>/manifest.json and rejects: an --only or
        # failed run holds partial data, and the outputs on disk still belong to the last full run.
        full = only is None and m["status"] == "ok"
        top_rejects = out_dir / f"rejects.{self.p.rejects_format}"
        if full:
            if rejects_path is not None:
                link_or_copy(rejects_path, top_rejects)
            elif top_rejects.exists():
                top_rejects.unlink()
        shown = (top_rejects if full else rejects_path) if rejects_path is not None else None
        m["rejects"] = None
        if rejects_path is not None:
            m["rejects"] = {"path": str(shown), "rows": sum(r.rows_rejected for r in st.reports),
                            "sha256": sha256_file(rejects_path)}
        m["totals"] = self._totals(st)
        m["warnings"] = [{"at": f"{r.kind} {r.name}", "message": w} for r in st.reports for w in r.warnings]
        m["finished_at"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        m["seconds"] = round(time.time() - st.started, 3)
        m["all_cached"] = all(r.cached for r in st.reports if r.kind in ("source", "step"))
        st.manifest = m = mask_obj(m)          # no credentials in manifests, whatever a config held
        write_json(m, run_dir / "manifest.json")
        manifest_path = run_dir / "manifest.json"
        if full:
            manifest_path = out_dir / "manifest.json"
            write_json(m, manifest_path)
        point_latest(run_dir, {"status": m["status"], "only": m.get("only")})
        if getattr(self.p, "out_url", None):
            self.upload_out_dir(run_dir, full)
        return manifest_path, shown, run_dir

    def upload_out_dir(self, run_dir: Path, full: bool = True) -> None:
        """Mirror a run's manifest and rejects (and a full run's top-level copies) to a URL out_dir."""
        base = storage.path(self.p.out_url)
        out_dir = Path(self.p.out_dir)
        files = [f for f in run_dir.iterdir() if f.is_file()]
        for f in files:
            storage.put_file(f, base / "runs" / run_dir.name / f.name)
        if full:
            for f in (out_dir / "manifest.json", out_dir / f"rejects.{self.p.rejects_format}",
                      out_dir / "report.html"):
                if f.exists():
                    storage.put_file(f, base / f.name)

    def _finish(self, st: "_RunState", final_path: Path, written: list[Path],
                only: int | None) -> RunResult:
        st.manifest["status"] = "ok"
        manifest_path, rejects_path, run_dir = self._save_run(st, only)
        return RunResult(st.manifest, manifest_path, written, rejects_path, st.reports, final_path,
                         run_dir=run_dir)

    def _record_failure(self, st: "_RunState", e: BaseException, only: int | None) -> None:
        """Leave a manifest (status failed, the error, counts so far) and attach the partial result
        to the exception, so the CLI can print the table up to the failing step."""
        try:
            where, loc = st.where or ("", ())
            if st.current is not None:
                st.current.failed = True
                st.reports.append(st.current)
            line = line_for(getattr(self.p, "_lines", None) or {}, loc) if loc else None
            at = f"{self.p.path}:{line}" if self.p.path and line else (self.p.path or "")
            interrupted = isinstance(e, (KeyboardInterrupt, SystemExit))
            hint = ("the run was interrupted; run the same command again: finished steps are cached"
                    if interrupted else
                    f"change {where}" + (f" ({at})" if at else "") + " or its input as the error says, "
                    "then run again: steps that finished are cached and are not recomputed")
            st.manifest["status"] = "interrupted" if interrupted else "failed"
            st.manifest["error"] = {"type": type(e).__name__, "message": str(e), "at": where,
                                    "file": self.p.path, "line": line, "hint": hint}
            manifest_path, rejects_path, run_dir = self._save_run(st, only)
            e.result = RunResult(st.manifest, manifest_path, [], rejects_path, st.reports, None,
                                 run_dir=run_dir, failed=True)
            e.hint = hint
        except Exception:             # never hide the real error behind a bookkeeping one
            pass

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
                rows = self._mapped(i, src, rows, where)
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

    def _mapped(self, i: int, src, rows: pl.DataFrame, where: str) -> pl.DataFrame:
        """Apply the source's column mapping; a missing column names the file:line that mapped it."""
        try:
            return src.apply_mapping(rows, where)
        except DataError as e:
            lines = getattr(self.p, "_lines", None) or {}
            mapping = {v: k for k, v in src.mapping().items()}
            missing = next((c for c in mapping if c not in rows.columns), None)
            key = mapping.get(missing)
            if key is None or not self.p.path:
                raise
            loc = ("sources", i, src.name) + ((key,) if key in ("text", "label") else ("fields", key))
            line = line_for(lines, loc) or line_for(lines, ("sources", i))
            msg = str(e)[len(where) + 2:] if str(e).startswith(f"{where}: ") else str(e)
            raise DataError(f"{self.p.path}:{line} {key_path(loc)}: {msg} (reading {src.describe()})") from None

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
        # The bar counts every row the step receives (as the table does); rows outside apply_to
        # pass straight through and are counted at once.
        update = self._task(f"step {i + 1} {step_labels(p.steps)[i]}", data.height)
        if passthrough is not None:
            update(passthrough.height)
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
            if files["files"] and all(storage.exists(sink.path(f["path"]))
                                      and storage.sha256(sink.path(f["path"])) == f["sha256"] for f in files["files"]):
                rep.cached, rep.rows_in = True, files["rows"]
                rep.extra = files.get("stats", {})
                return rep, files["files"]
        t0 = time.time()
        df = sink.select(final)
        sink.pipeline_name = self.p.name      # formats derive default names from it (NI task file)
        paths = sink.write(df, self.p.seed)
        files = [{"path": str(pth), "sha256": storage.sha256(pth), "bytes": storage.size(pth)}
                 for pth in paths]       # local or remote (curate.storage)
        rep.rows_in = df.height
        rep.seconds = time.time() - t0
        rep.extra = dict(getattr(sink, "stats", None) or {})
        write_json({"rows": df.height, "files": files, "stats": rep.extra}, record)
        return rep, files

    def _write_rejects(self, frames: list, out_dir: Path) -> Path | None:
        return write_rejects(frames, out_dir / f"rejects.{self.p.rejects_format}", self.p.rejects_format)
