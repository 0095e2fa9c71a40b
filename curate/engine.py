"""Runs a pipeline: reads sources, runs each step with caching and accounting, writes outputs,
the rejects file and the run manifest.

The local executor streams. Tables live on disk as Parquet parts in the cache (see
:mod:`curate.cache`), never whole in memory between steps:

* a source writes a part of ``batch_size`` rows as it reads; ids are then given part by part
  (the repeat numbering of identical rows is global, kept in 8 bytes per distinct row) and stored
  beside the source's parts, so the text is stored once;
* a batch step (``scope = "batch"``: filters, mappers, augment, synthesize, verify) reads
  ``batch_size`` rows at a time, runs, and writes that batch's kept and rejected rows as a shard
  before the next: peak memory is set by ``batch_size``, and a killed run resumes at the first
  unfinished shard (nothing lost, nothing repeated);
* a global step (dedup, balance, split) that implements ``process_table`` (dedup with exact and
  near stages, split) reads its input table part by part itself, only the columns it needs, and
  returns row positions (:class:`curate.step.TableResult`): the kept rows are stored as row
  numbers over the input's parts, not as a copy, and the rejected rows are taken from the parts
  as they are written (a streamed take). Its memory is its own (each step's ``memory`` says it;
  dedup: fixed-size numbers per row, no texts). Other global steps (and dedup with
  ``semantic``) get their whole input as one frame; when such a step only removes rows, its
  result is stored as row numbers too. Split reads only ids, labels, groups and ``parent_id``
  (:func:`curate.step.narrow_process`; the engine adds its ``split`` column part by part);
  balance (without embeddings) reads ids, labels and text hashes, and the engine writes its
  oversampled copies from the parts (``TableResult.created``);
* outputs read the final table part by part where the output says it streams
  (``Sink.streams``/``write_stream``: every built-in output but two); NI task files (a whole
  task at once) and DPO (pairs across the table) get one frame.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
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
import numpy as np

from curate.cache import (ShardStore, StepCache, Table, TableWriter, fingerprint, schema_text,
                          sha256_file, write_json)
from curate.errors import CurateError, DataError
from curate.io import canonical_json, mask_obj, sweep_temp_files
from curate.runs import (link_or_copy, new_run_dir, only_description, point_latest, resolve_only,
                         step_labels, write_rejects)
from curate.step import Step, StepContext
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
    table: Table | None = None             # the current table (on disk), None in a dry run
    entry: StepCache | None = None         # the cache entry holding it
    digests: dict[str, str] = field(default_factory=dict)   # checksums of every file seen
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
        #: content hashes of the source parts written this run (part checksum -> (column types,
        #: hashes)), taken while each part was in memory, so giving ids need not read it back
        self._part_hashes: dict[str, tuple[dict[str, str], np.ndarray]] = {}

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
        """Read every source (or its cache), then give the rows ids (see :meth:`_with_ids`)."""
        tables, src_fps = [], []
        for i, src in enumerate(self.p.sources):
            st.where = (f"sources[{i}].{src.name}", ("sources", i))
            st.current = StepReport("source", f"{src.name}:{src.origin}")
            entry, rejected, rep, fp = self._read_source(i, src, force, dry_run)
            st.current = None
            st.reports.append(rep)
            tables.append(entry)
            src_fps.append(fp)
            if entry is not None:
                st.digests.update(entry.digests())
            if rejected is not None and rejected.height:
                st.reject_frames.append(rejected)
            st.manifest["sources"].append({
                "name": src.origin, "connector": src.name, "config": src.raw_config,
                "rows": rep.rows_out, "rejected": rep.rows_rejected, "fingerprint": fp,
                "cached": rep.cached, "seconds": round(rep.seconds, 3), "stats": rep.extra})
        st.current_fp = fingerprint("sources", src_fps)
        if dry_run and any(t is None for t in tables):
            st.table, st.entry = None, None
            return
        entry = StepCache(self.cache_root, "sources", st.current_fp)
        if force or not entry.done:
            entry.clear()
            self._with_ids([t.table("kept") for t in tables], entry, st.digests)
        self._part_hashes = {}
        st.entry, st.table = entry, entry.table("kept")
        st.digests.update(entry.digests())

    def _with_ids(self, tables: list[Table], entry: StepCache, digests: dict[str, str]) -> None:
        """Write the combined sources entry: each source part, read in order, conformed to the
        columns every source gives together, and its content ids (``<hash>``, repeats
        ``<hash>-k`` numbered over the whole table as :func:`curate.records.with_ids` would),
        stored as an ids file beside a reference to the part (no copy of the rows)."""
        segs = [(t, s) for t in tables for s in t.segments]
        empties = [pl.DataFrame(schema=pl.read_parquet_schema(t.base / s["file"])) for t, s in segs]
        union = R.concat(empties) if empties else pl.DataFrame()
        lead = [c for c in (R.SOURCE, R.ORIGIN) if c in union.columns]
        schema = schema_text(union.select(lead + [c for c in union.columns if c not in lead]).schema) \
            if union.width else {R.SOURCE: "String", R.ORIGIN: "String"}
        w = TableWriter(entry.dir, "kept")
        entry.dir.mkdir(parents=True, exist_ok=True)
        repeats = _Repeats()
        known = self._part_hashes
        want = _content_types(union.schema) if union.width else {}
        for k, (t, seg) in enumerate(segs):
            if not seg["rows"]:
                continue
            ref = t.resolved()[t.segments.index(seg)]
            types, hashes = known.get(digests.get(ref["file"], ""), (None, None))
            if hashes is None or types != want or types != _content_types(empties[k].schema) \
                    or len(hashes) != seg["rows"] or seg.get("conform") or seg.get("take"):
                from curate.cache import conform
                hashes = R.content_hash_ints(conform(t.read_segment(seg), schema))
            ids = repeats.number(hashes)
            name, digest = w.add_aux(pl.DataFrame({R.ID: ids}), f"ids-{k:06d}.parquet")
            w.add_segment({**ref, "ids": os.path.normpath(entry.dir / name), "conform": schema},
                          {**digests, os.path.normpath(entry.dir / name): digest})
        if not w.segments:            # no rows at all: an empty table that still has its columns
            from curate.cache import _dtype
            w.add(pl.DataFrame(schema={R.ID: pl.String, **{c: _dtype(d) for c, d in schema.items()}}))
        entry.save(w, None, {"rows": sum(x["rows"] for x in w.segments)})

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
                st.entry, st.table = None, None
            else:
                if force or only == i:
                    cache.clear()             # also drops resumable shards of an earlier run
                rep = self._run_step(i, step, st, cache, rep)
                st.entry, st.table = cache, cache.table("kept")
                st.digests.update(cache.digests())
            st.current = None
            if rep.rows_rejected and not dry_run:
                st.reject_frames.append(("cache", cache))
            self._record_step(st, entry, rep, fp)
            if only == i:
                break

    @staticmethod
    def _record_step(st: "_RunState", entry: dict[str, Any], rep: StepReport, fp: str) -> None:
        """A finished (or cached) step's counts, stats and warnings into the manifest and the table."""
        rep.warnings = step_warnings(rep)
        entry.update(rows_in=rep.rows_in, rows_out=rep.rows_out, rows_rejected=rep.rows_rejected,
                     rows_created=rep.rows_created, seconds=round(rep.seconds, 3),
                     cached=rep.cached, stats=rep.extra, warnings=rep.warnings)
        st.manifest["steps"].append(entry)
        st.reports.append(rep)
        st.current_fp = fp

    @staticmethod
    def _from_cache(st: "_RunState", cache: StepCache, rep: StepReport) -> None:
        meta = cache.meta()
        rep.cached = True
        rep.rows_in, rep.rows_out = meta["rows_in"], meta["rows_out"]
        rep.rows_rejected, rep.rows_created = meta["rows_rejected"], meta["rows_created"]
        rep.seconds = meta["seconds"]
        rep.extra = meta.get("stats", {})
        st.entry, st.table = cache, cache.table("kept")
        st.digests.update(cache.digests())

    def _final_table(self, st: "_RunState") -> Path:
        """The cache entry folder of the table after the last step (``RunResult.final_path``)."""
        assert st.entry is not None
        return st.entry.dir

    def _write_outputs(self, st: "_RunState", final_path: Path, force: bool) -> list[Path]:
        final = st.table
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
                                           "seconds": round(rep.seconds, 3),
                                           "stats": rep.extra, "warnings": rep.warnings})
        return written

    def _totals(self, st: "_RunState") -> dict[str, Any]:
        reports = st.reports
        step_reps = [r for r in reports if r.kind == "step"]
        return {
            "rows_read": sum(r.rows_out + r.rows_rejected for r in reports if r.kind == "source"),
            "rows_final": step_reps[-1].rows_out if step_reps else (st.table.rows if st.table is not None else None),
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
    def _read_source(self, i: int, src, force: bool, dry_run: bool):
        """Read one source into its cache entry, a part of ``batch_size`` rows at a time (a source
        without a cheap fingerprint is read every run; its entry is named by its content)."""
        rep = StepReport("source", f"{src.name}:{src.origin}")
        cheap = src.fingerprint()
        fp = fingerprint("source", src.name, src.version, src.raw_config, src.origin, cheap) if cheap else None
        cache = StepCache(self.cache_root, f"source-{src.origin}", fp) if fp else None
        if cache is not None and cache.done and not force:
            meta = cache.meta()
            rep.cached, rep.seconds = True, meta["seconds"]
            rep.rows_out, rep.rows_rejected = meta["rows"], meta["rejected"]
            rep.extra = meta.get("stats", {})
            return cache, cache.table("rejected").read(), rep, fp
        if dry_run:
            rep.extra = {"would_run": True}
            return None, None, rep, fp
        t0 = time.time()
        src.workdir = self.cache_root
        update = self._task(f"source {src.origin}", None)
        staging = cache or StepCache(self.cache_root, f"source-{src.origin}", f"reading-{os.getpid()}")
        staging.clear()
        staging.dir.mkdir(parents=True, exist_ok=True)
        w = TableWriter(staging.dir, "kept")
        content = hashlib.sha256() if cache is None else None
        bs = self.p.batch_size
        rejects = []
        where = f"sources[{i}].{src.name} ({src.describe()})"
        n = 0
        parts = _SourceParts(w, bs, content, self._part_hashes)

        limit = src.config.limit
        for batch in src.read():
            rows = batch.rows
            if rows.height or rows.width:
                rows = self._mapped(i, src, rows, where)
                # An input column named like a bookkeeping column is kept under another name.
                clash = {c: f"input_{c}" for c in (R.ID, R.ORIGIN) if c in rows.columns}
                if clash:
                    rows = rows.rename(clash)
                rows = rows.with_columns(pl.lit(src.origin, dtype=pl.String).alias(R.ORIGIN))
                if limit:
                    rows = rows.head(max(limit - n, 0))
                parts.add(rows)
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
            if limit and n >= limit:
                break
        parts.flush(True)
        rejected = R.concat(rejects) if rejects else pl.DataFrame()
        cache, fp = self._store_source(src, w, rejected, n, t0, rep, cache, fp, content, staging)
        return cache, rejected, rep, fp

    def _store_source(self, src, w: TableWriter, rejected: pl.DataFrame, n: int, t0: float,
                      rep: StepReport, cache: StepCache | None, fp: str, content, staging: StepCache):
        """Close a source's cache entry: an empty part when nothing was read, the report's
        counts, and (read fresh) the staging folder moved under the content fingerprint."""
        if not w.segments:
            w.add(pl.DataFrame(schema={R.SOURCE: pl.String, R.ORIGIN: pl.String}))
        rep.seconds = time.time() - t0
        rep.rows_out, rep.rows_rejected = n, rejected.height
        rep.extra = dict(src.stats)
        if cache is None:
            fp = content.hexdigest()[:20]
            cache = StepCache(self.cache_root, f"source-{src.origin}", fp)
            cache.clear()
            os.replace(staging.dir, cache.dir)
        cache.save(w, rejected, {"rows": n, "rejected": rejected.height,
                                 "seconds": rep.seconds, "stats": rep.extra})
        return cache, fp

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

    def _run_step(self, i: int, step: Step, st: "_RunState", cache: StepCache,
                  rep: StepReport) -> StepReport:
        """Run one step over the current table and record its entry (see the module doc)."""
        p = self.p
        t0 = time.time()
        table = st.table
        assert table is not None
        rep.rows_in = table.rows
        apply_to = getattr(step.config, "apply_to", None)
        # The bar counts every row the step receives (as the table does); rows outside apply_to
        # pass straight through and are counted as they pass.
        update = self._task(f"step {i + 1} {step_labels(p.steps)[i]}", table.rows)
        cache.dir.mkdir(parents=True, exist_ok=True)
        (cache.dir / "meta.json").unlink(missing_ok=True)
        ctx = StepContext(step_name=step.name, index=i, seed=p.seed, workdir=cache.scratch,
                          batch_size=p.batch_size, progress=update,
                          shards=ShardStore(cache.scratch / "shards"),
                          log=(self.console.log if self.console is not None else (lambda m: None)))
        kw, rw = TableWriter(cache.dir, "kept"), TableWriter(cache.dir, "rejected")
        run = self._global_step if step.scope == "global" else self._batch_step
        stats, created = run(step, table, ctx, cache, apply_to, update, kw, rw, st.digests)
        rep.rows_created = created
        rep.rows_out = sum(s["rows"] for s in kw.segments)
        rep.rows_rejected = sum(s["rows"] for s in rw.segments)
        assert rep.rows_in + rep.rows_created == rep.rows_out + rep.rows_rejected
        rep.seconds = time.time() - t0
        rep.extra = stats
        cache.save(kw, rw, {"rows_in": rep.rows_in, "rows_out": rep.rows_out,
                            "rows_rejected": rep.rows_rejected, "rows_created": rep.rows_created,
                            "seconds": rep.seconds, "stats": stats})
        return rep

    def _global_step(self, step: Step, table: Table, ctx: StepContext, cache: StepCache,
                     apply_to: list[str] | None, update, kw: TableWriter, rw: TableWriter,
                     digests: dict[str, str]) -> tuple[dict[str, Any], int]:
        """A global step sees its whole input as one frame. When it only removed rows (same
        columns, same values, input order), the kept rows are stored as row numbers over the
        input's parts; otherwise as parts of ``batch_size`` rows. The frame is made contiguous
        first (one copy, before the step allocates): dedup ran ~7% faster at 1M documents on one
        chunk than on the 20 parts' chunks.

        A step whose :meth:`~curate.step.Step.process_table` answers (dedup today) reads the table
        part by part itself and returns row positions: the kept rows are stored as row numbers,
        rows it created as copies (``TableResult.created``) are taken from the parts after them,
        and the rejected rows are taken from the parts, one part at a time, with the step's
        reject columns added."""
        res = step.process_table(table, ctx) if apply_to is None and table.rows else None
        if res is not None:
            res.check(table.rows, step.name)
            update(table.rows)
            if res.kept_columns is not None:          # kept rows with the step's new columns
                for rows, lo, hi in table.iter_take(res.kept):
                    kw.add(rows.with_columns(res.kept_columns.slice(lo, hi - lo).get_columns()))
            if res.kept_columns is None and len(res.kept):
                _take(kw, table, np.asarray(res.kept, dtype=np.int64), digests)
            elif not len(res.kept):
                empty = table.read_segment(table.segments[0], limit=0)
                kw.add(empty if res.kept_columns is None else empty.with_columns(res.kept_columns.get_columns()))
            created = 0
            if res.created is not None and len(res.created[0]):    # copies, after the kept rows
                parents, cols = res.created
                for rows, lo, hi in table.iter_take(parents):
                    kw.add(rows.with_columns(cols.slice(lo, hi - lo).get_columns()))
                created = len(parents)
            # one rejected part per input part (gathered rows share the part's string buffers,
            # so buffering them across parts would hold those parts whole)
            for pos, cols in res.rejected:
                for rows, lo, hi in table.iter_take(pos):
                    rw.add(_mark(rows.with_columns(cols.slice(lo, hi - lo).get_columns()), step.name))
            return step.merge_stats([res.stats]), created
        data = table.read()
        if data.n_chunks() > 1:
            data = data.rechunk()
        scope_df, passthrough = data, None
        if apply_to is not None:
            inside = pl.col(R.ORIGIN).is_in(apply_to)
            scope_df, passthrough = data.filter(inside), data.filter(~inside)
            update(passthrough.height)
        res = step.process(scope_df, ctx)
        update(scope_df.height)
        kept = res.kept if res.kept.width else scope_df.clear()
        rejected = res.rejected if res.rejected.width else pl.DataFrame()
        pos = _kept_rows(data, kept) if passthrough is None or not passthrough.height else None
        created = check_accounting(step.name, scope_df, kept, rejected, kept_pos=pos)
        stats = step.merge_stats([res.stats])
        del res
        if pos is not None:
            _take(kw, table, pos, digests)
        else:
            if passthrough is not None and passthrough.height:
                kept = R.concat([kept, passthrough])
            _write_chunks(kw, kept, self.p.batch_size)
        del data, scope_df, kept
        if rejected.height:
            _write_chunks(rw, _mark(rejected, step.name), self.p.batch_size)
        return stats, created

    def _batch_step(self, step: Step, table: Table, ctx: StepContext, cache: StepCache,
                    apply_to: list[str] | None, update, kw: TableWriter, rw: TableWriter,
                    digests: dict[str, str]) -> tuple[dict[str, Any], int]:
        """A batch step streams: ``batch_size`` rows in, that batch's kept and rejected rows
        written as shard ``k`` (``StepCache.parts``) before the next batch is read. A killed
        run resumes at the first unfinished shard."""
        parts = cache.parts
        stats, created = [], 0
        for b, batch in enumerate(_batches(table, self.p.batch_size, apply_to)):
            if parts.done(b):
                s = parts.stats(b)
                eng = s.pop("_engine")
            else:
                res = step.process(batch, ctx)
                kept = res.kept if res.kept.width else batch.clear()
                rej = res.rejected if res.rejected.width else pl.DataFrame()
                c = check_accounting(step.name, batch, kept, rej)
                s = res.stats
                eng = {"rows_in": batch.height, "kept": kept.height, "rejected": rej.height, "created": c}
                parts.write(b, kept, _mark(rej, step.name) if rej.height else None, {**s, "_engine": eng})
                del res, kept, rej
            sums = parts.digests(b)
            for kind, w in (("kept", kw), ("rejected", rw)):
                path = parts.path(b, kind)
                if path.name in sums and (kind == "kept" or eng["rejected"]):
                    w.add_file(path, eng[kind], sums[path.name])
            stats.append(s)
            created += eng["created"]
            update(eng["rows_in"])
        if apply_to is not None:               # rows outside the scope follow the step's own
            for frame in table.iter_frames():
                rest = frame.filter(~pl.col(R.ORIGIN).is_in(apply_to))
                if rest.height:
                    _write_chunks(kw, rest, self.p.batch_size)
                    update(rest.height)
        return step.merge_stats(stats), created

    def _write_output(self, i: int, sink, final: Table, data_fp: str, force: bool):
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
        sink.pipeline_name = self.p.name      # formats derive default names from it (NI task file)
        sink.digests = {}                     # set by a sink that hashes its files as it writes
        schema = final.unified_schema()
        if sink.streams(list(schema)):
            from curate.cache import conform
            text = schema_text(schema)
            paths, rows = sink.write_stream((sink.select(conform(f, text)) for f in final.iter_frames()),
                                            self.p.seed)
        else:
            df = sink.select(final.read())
            paths, rows = sink.write(df, self.p.seed), df.height
            del df
        known = getattr(sink, "digests", None) or {}      # hashed while written (PartWriter)
        files = [{"path": str(pth), "sha256": known.get(str(pth)) or storage.sha256(pth),
                  "bytes": storage.size(pth)} for pth in paths]       # local or remote (curate.storage)
        rep.rows_in = rows
        rep.seconds = time.time() - t0
        rep.extra = dict(getattr(sink, "stats", None) or {})
        write_json({"rows": rows, "files": files, "stats": rep.extra}, record)
        return rep, files

    def _write_rejects(self, frames: list, out_dir: Path) -> Path | None:
        return write_rejects(frames, out_dir / f"rejects.{self.p.rejects_format}", self.p.rejects_format)


# ------------------------------------------------------------------------------ helpers
def _mark(rejected: pl.DataFrame, step: str) -> pl.DataFrame:
    """Rejected rows with the step's name in ``step`` (a step may have set its own)."""
    if R.STEP not in rejected.columns:
        return rejected.with_columns(pl.lit(step).alias(R.STEP))
    return rejected.with_columns(pl.col(R.STEP).fill_null(step))


def _write_chunks(w: TableWriter, df: pl.DataFrame, size: int) -> None:
    for start in range(0, max(df.height, 1), size):
        w.add(df.slice(start, size))


def _batches(table: Table, size: int, apply_to: list[str] | None):
    """The table's rows (those whose origin is in ``apply_to``, when given) in batches of
    ``size``, reading one part at a time; an empty scope gives one empty batch."""
    buf: list[pl.DataFrame] = []
    have, sent, empty = 0, False, None
    for frame in table.iter_frames():
        if apply_to is not None:
            frame = frame.filter(pl.col(R.ORIGIN).is_in(apply_to))
        if empty is None:
            empty = frame.clear()
        while frame.height:
            take = min(size - have, frame.height)
            buf.append(frame.slice(0, take))
            frame = frame.slice(take)
            have += take
            if have == size:
                yield R.concat(buf)
                buf, have, sent = [], 0, True
    if buf:
        yield R.concat(buf)
    elif not sent:
        yield empty if empty is not None else pl.DataFrame()


def _kept_rows(data: pl.DataFrame, kept: pl.DataFrame) -> np.ndarray | None:
    """Positions of ``kept``'s rows in ``data`` when ``kept`` is ``data`` with rows removed (same
    columns and values, same order); else None. Compared one column at a time."""
    if not kept.height or kept.schema != data.schema or R.ID not in kept.columns:
        return None
    # candidates by 64-bit hashes of the ids (a collision only adds a position: then None);
    # the comparison below checks every column, ids included, exactly
    pos = np.flatnonzero(data[R.ID].hash().is_in(kept[R.ID].hash().implode()).to_numpy())
    if len(pos) != kept.height:
        return None
    idx = pl.Series(pos, dtype=pl.UInt32)
    for c in data.columns:
        if not data[c].gather(idx).equals(kept[c], check_names=True):
            return None
    return pos


def _take(w: TableWriter, table: Table, pos: np.ndarray, digests: dict[str, str]) -> None:
    """Segments of ``table`` restricted to the rows at ``pos`` (row numbers, not copies)."""
    off = 0
    for k, seg in enumerate(table.resolved()):
        n = seg["rows"]
        lo, hi = np.searchsorted(pos, [off, off + n])
        local = pos[lo:hi] - off
        off += n
        if not len(local):
            continue
        if seg.get("take"):
            local = pl.read_parquet(seg["take"])["row"].to_numpy()[local]
        name, digest = w.add_aux(pl.DataFrame({"row": pl.Series(local, dtype=pl.UInt32)}),
                                 f"take-{k:06d}.parquet")
        full = os.path.normpath(w.dir / name)
        w.add_segment({**seg, "take": full, "rows": len(local)}, {**digests, full: digest})


def _content_types(schema) -> dict[str, str]:
    """The user columns of a schema and their types (what a row's content id depends on)."""
    return {c: repr(t) for c, t in schema.items() if c not in R.RESERVED and c not in R.REJECT_COLUMNS}


class _SourceParts:
    """A source's batches cut into parts of ``size`` rows as they arrive: each part is written,
    fed to the content fingerprint (when the source is named by its content) and, given
    ``hashes``, its content hashes kept while it is in memory (``Engine._with_ids`` uses them
    instead of reading the part back). A part is written on a thread while the next batch is
    read (one write in flight, in order; its error is raised by the next call)."""

    def __init__(self, w: TableWriter, size: int, content, hashes: dict | None = None) -> None:
        self.w, self.size, self.content, self.hashes = w, size, content, hashes
        self.buf: list[pl.DataFrame] = []
        self._pool = None
        self._pending = None

    def add(self, rows: pl.DataFrame) -> None:
        self.buf.append(rows)
        if sum(f.height for f in self.buf) >= self.size:
            self.flush(False)

    def flush(self, final: bool) -> None:
        part = R.concat(self.buf) if self.buf else pl.DataFrame()
        while part.height >= self.size or (final and (part.height or (part.width and not self._written()))):
            self._submit(part.slice(0, self.size))
            part = part.slice(self.size)
            if not part.height:
                break
        self.buf = [part] if part.height else []
        if final:
            self._wait()
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None

    def _written(self) -> bool:
        self._wait()
        return bool(self.w.segments)

    def _submit(self, piece: pl.DataFrame) -> None:
        self._wait()
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="curate-part-writer")
        self._pending = self._pool.submit(self._write, piece)

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def _write(self, piece: pl.DataFrame) -> None:
        w = self.w
        w.add(piece)
        if self.hashes is not None:
            self.hashes[w.digests[w.segments[-1]["file"]]] = (_content_types(piece.schema),
                                                              R.content_hash_ints(piece))
        if self.content is not None:
            self.content.update(canonical_json(schema_text(piece.schema)).encode())
            self.content.update(piece.write_ndjson().encode())


class _Repeats:
    """Numbers repeated content ids over a whole table read part by part: the k-th repeat of a
    row (in table order) gets ``<id>-k``, as one :func:`curate.records.content_ids` call over
    the whole table would give. Memory: 8 bytes per distinct row (sorted runs of 64-bit hashes,
    merged as they grow) plus a dict of the repeated ones."""

    def __init__(self) -> None:
        self.runs: list[np.ndarray] = []
        self.counts: dict[int, int] = {}

    def number(self, hashes: np.ndarray | pl.Series) -> pl.Series:
        """Ids of the next part's rows from their content hashes (:func:`R.content_hash_ints`,
        or the hex of :func:`R.content_hashes`)."""
        if isinstance(hashes, pl.Series):
            h, base = hashes.str.to_integer(base=16, dtype=pl.UInt64).to_numpy(), hashes
        else:
            h, base = hashes, None
        uniq, inv, cnt = np.unique(h, return_inverse=True, return_counts=True)
        order = np.argsort(inv, kind="stable")        # occurrence number of each row in its group
        starts = np.concatenate(([0], np.cumsum(cnt)[:-1]))
        local_k = np.empty(len(h), dtype=np.int64)
        local_k[order] = np.arange(len(h)) - np.repeat(starts, cnt)
        seen_u = np.zeros(len(uniq), dtype=bool)
        for run in self.runs:                      # sorted queries into sorted runs
            at = np.minimum(np.searchsorted(run, uniq), len(run) - 1)
            seen_u |= run[at] == uniq
        prior_u = np.zeros(len(uniq), dtype=np.int64)
        for j in np.flatnonzero(seen_u):           # repeats of earlier parts only
            prior_u[j] = self.counts.get(int(uniq[j]), 1)
        for j in np.flatnonzero((cnt > 1) | seen_u):
            self.counts[int(uniq[j])] = int(prior_u[j]) + int(cnt[j])
        fresh = uniq[~seen_u]
        if len(fresh):
            self.runs.append(fresh)
            while len(self.runs) > 1 and len(self.runs[-2]) <= 2 * len(self.runs[-1]):
                last = self.runs.pop()      # disjoint sorted runs: timsort merges them in one pass
                self.runs[-1] = np.sort(np.concatenate((self.runs[-1], last)), kind="stable")
        k = local_k + prior_u[inv]
        base = R.hex_ids(h) if base is None else base
        if not k.any():
            return base.alias(R.ID)
        ks = pl.Series(k)
        return pl.select(pl.when(ks == 0).then(base).otherwise(base + "-" + ks.cast(pl.String))
                         .alias(R.ID)).to_series()
