"""``executor: ray`` — the same pipeline file on Ray Data.

How each part runs:

* **Sources** with several pieces are read by parallel Ray tasks, one per file of a file source
  (a glob or list), per object of an S3 source, per range of a SQL table's integer key
  (:mod:`curate.executors._ray_read`); the driver puts the pieces' batches back in the local
  reader's order into the same source cache entry, then gives ids as the local engine does
  (``_read_sources``: same mapping, ids and rejects). A source with one piece or a ``limit`` is
  read by the driver. The rows are then cut into Parquet blocks of ``batch_size`` rows.
* **Batch steps** (``scope == "batch"``: every Filter/Mapper, clean, augment ...) run as
  ``Dataset.map_batches`` over block descriptors, one task per block: the task reads its rows
  (polars over Parquet), runs the step, writes kept and rejected rows as Parquet and a marker.
  Block ``k`` holds the local engine's batch ``k``, so outputs are the local ones row for row.
  Model steps (``resumable`` steps such as augment, or any step given ``actors`` / ``num_gpus``
  in ``ray.steps``) run as an actor pool (class-based ``map_batches`` with an ``ActorPoolStrategy`` and
  ``num_gpus`` per actor), so each actor loads its model once.
* **dedup** links rows sharing an exact key or an LSH band key by a distributed shuffle on the
  keys (Ray Data), finds connected components of those links with a tree of union-find tasks
  (:mod:`curate.executors._ray_cc`), and runs the step on groups of whole components in parallel
  tasks (see :mod:`curate.executors._ray_dedup`; the semantic stage is gathered to the driver).
* **Other global steps** (balance, split, mix, synthesize, verify, dpo_pairs ...) are gathered:
  the driver reads the step's input into one frame and runs the local step on it (they need the
  whole table or its labels; balance/split need only labels + ids, but are not yet streamed).
* **Outputs** are written by the driver from the final blocks, by the same sinks.

The engine reuses the local engine's run bookkeeping (``Engine._new_manifest``, ``_read_sources``,
``_write_outputs``, ``_finish``, ``_record_failure`` and its ``_RunState``), so manifests, run
folders, rejects files and failure reports are the same; it replaces only how steps run.

Faults: a task whose worker dies is retried (``ray.max_retries``; actors restart) and rewrites
the same files atomically. Every finished block leaves a marker under
``<workdir>/<name>/ray/<step>-<fingerprint>/``; a rerun after the driver died skips finished
steps and finished blocks, so nothing is lost or repeated.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import polars as pl

from curate import records as R
from curate.cache import StepCache, fingerprint, write_json
from curate.engine import Engine, _RunState, _SourceParts
from curate.executors import _blocks as B
from curate.executors.config import RayStepOptions
from curate.extras import require
from curate.runs import step_labels
from curate.runresult import RunResult, StepReport, check_accounting
from curate.step import StepContext

#: Test faults (JSON), read by the driver and handed to tasks; see :func:`_blocks.fault_hook`.
FAULTS_ENV = "CURATE_RAY_FAULTS"


def connect(opts, log=lambda m: None):
    """Import Ray and join ``opts.address`` or start a local Ray; returns ``(ray, started)``
    where ``started`` says this call started it (and the run should stop it)."""
    ray = require("ray", extra="ray", what="executor: ray")
    require("ray.data", extra="ray", what="executor: ray")
    if ray.is_initialized():
        return ray, False
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                          "configure_logging": True, "logging_level": "warning"}
    if opts.address:
        ray.init(address=opts.address, **kw)
    else:
        ray.init(num_cpus=opts.num_cpus, **kw)
        log(f"started a local Ray ({ray.cluster_resources().get('CPU', 0):g} CPUs)")
    return ray, True


def _quiet_data(ray) -> None:
    import warnings
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray\.data\.context")
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.execution_options.preserve_order = True
    try:
        ctx.enable_operator_progress_bars = False
    except Exception:
        pass
    import logging
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)   # "Progress bars disabled"


def _retry_args(n: int | None) -> dict[str, dict[str, int]]:
    """Remote args for a retry count other than Ray's defaults (tasks retry a dead worker 3 times,
    Ray Data's actors restart without limit)."""
    if n is None:
        return {}
    import warnings
    warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")   # still honoured in 2.x
    return {"task": {"max_retries": n}, "actor": {"max_restarts": n, "max_task_retries": n}}


class _BlockActor:
    """An actor of a model step's pool: holds the step (and so its loaded model) across blocks."""

    def __init__(self, step, folder, schema, ctx_args, hooks):
        self.step, self.folder, self.schema, self.ctx_args, self.hooks = step, folder, schema, ctx_args, hooks

    def __call__(self, batch):
        import pyarrow as pa
        out = [B.run_block_safe(self.step, json.loads(s), self.folder, self.schema, self.ctx_args, self.hooks)
               for s in batch.column("block").to_pylist()]
        return pa.table({"summary": out})


class RayEngine(Engine):
    """Runs a pipeline on Ray Data (see the module docstring); manifest, rejects, outputs and the
    run folder are the local engine's."""

    def __init__(self, pipeline, progress: bool = False, console: Any = None) -> None:
        super().__init__(pipeline, progress=progress, console=console)
        self.ray_root = (self.cache_root / "ray").resolve()      # tasks run in other folders
        self.opts = pipeline.ray
        self._ray = None
        self.hooks = json.loads(os.environ[FAULTS_ENV]) if os.environ.get(FAULTS_ENV) else None

    def _log(self, msg: str) -> None:
        if self.console is not None:
            self.console.log(msg)

    # ------------------------------------------------------------------ run
    def _run(self, force: bool, only: int | None, dry_run: bool) -> RunResult:
        if dry_run:
            return super()._run(force, only, dry_run)
        ray, started = connect(self.opts, self._log)
        self._ray = ray
        _quiet_data(ray)
        try:
            return self._run_ray(force, only)
        finally:
            if started:
                ray.shutdown()

    def _run_ray(self, force: bool, only: int | None) -> RunResult:
        st = _RunState(manifest=self._new_manifest(only), started=time.time())
        res = self._ray.cluster_resources()
        st.manifest["ray"] = {"address": self.opts.address or "local", "cpus": res.get("CPU", 0),
                              "gpus": res.get("GPU", 0), "nodes": len([n for n in self._ray.nodes() if n.get("Alive")])}
        try:
            files, schema = self._sources(st, force)
            files, schema, last = self._steps(st, files, schema, force, only)
            st.where = None
            final_path = self._set_final(st, files, schema, last)
            written = self._write_outputs(st, final_path, force) if only is None else []
        except BaseException as e:
            self._record_failure(st, e, only)
            raise
        return self._finish(st, final_path, written, only)

    # ------------------------------------------------------------------ sources and outputs
    def _read_source(self, i: int, src, force: bool, dry_run: bool):
        """One source into its cache entry (the local engine's :meth:`Engine._read_source`), its
        pieces read by parallel Ray tasks where it has several (see :mod:`._ray_read`); a source
        with one piece, a ``limit`` or a failing piece is read by the driver as locally."""
        from curate.executors import _ray_read as RR
        local = lambda: super(RayEngine, self)._read_source(i, src, force, dry_run)  # noqa: E731
        if dry_run or self._ray is None:
            return local()
        cheap = src.fingerprint()
        fp = fingerprint("source", src.name, src.version, src.raw_config, src.origin, cheap) if cheap else None
        cache = StepCache(self.cache_root, f"source-{src.origin}", fp) if fp else None
        if cache is not None and cache.done and not force:
            return local()
        cpus = int(self._ray.cluster_resources().get("CPU", 1))
        pieces = RR.plan(src, cpus)
        if not pieces:
            return local()
        t0 = time.time()
        src.workdir = self.cache_root
        where = f"sources[{i}].{src.name} ({src.describe()})"
        tmp = self.ray_root / f"read-{src.origin}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        retry = _retry_args(self.opts.max_retries).get("task", {})
        task = self._ray.remote(RR.read_pieces).options(num_cpus=1, **retry)
        ship = RR.shippable(src)
        if cache is not None:              # the tasks write their parts into the entry itself
            cache.clear()
            cache.dir.mkdir(parents=True, exist_ok=True)
        parts_dir = str(cache.dir) if cache is not None else None
        try:
            runs = RR.batches_of(pieces, 4 * cpus)
            refs = [task.remote(ship, run, where, str(tmp), k, parts_dir, self.p.batch_size) for k, run in runs]
            outs = [o for r in self._ray.get(refs) for o in r]
            if any("error" in o for o in outs) or (parts_dir and not sum(o["rows"] for o in outs)):
                if any("error" in o for o in outs):
                    self._log(f"source {src.origin}: a piece failed on Ray; reading it on the driver")
                return local()             # (no rows at all: the local reader keeps the columns)
            return self._assemble_source(src, cache, fp, outs, t0)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _assemble_source(self, src, cache, fp, outs: list[dict[str, Any]], t0: float):
        """The source's entry from the pieces, in order: the parts the tasks wrote into it, or
        (a source named by its content) their batch files cut into parts as the local reader
        cuts its batches (same parts, same content fingerprint); the pieces' rejects and stats."""
        import hashlib

        from curate.cache import TableWriter
        from curate.step import merge_numeric
        rep = StepReport("source", f"{src.name}:{src.origin}")
        update = self._task(f"source {src.origin} (ray)", None)
        staging = cache or StepCache(self.cache_root, f"source-{src.origin}", f"reading-{os.getpid()}")
        if cache is None:
            staging.clear()
        staging.dir.mkdir(parents=True, exist_ok=True)
        w = TableWriter(staging.dir, "kept")
        content = hashlib.sha256() if cache is None else None
        bs = self.p.batch_size
        parts = _SourceParts(w, bs, content)         # the local reader's cutting

        n = 0
        for o in outs:
            for path, rows, digest in o["parts"]:          # parts the task cut in the entry
                w.add_file(Path(path), rows, digest)
                n += rows
                update(rows)
            for f in o["files"]:                           # batches to cut here
                rows = pl.read_parquet(f)
                parts.add(rows)
                n += rows.height
                update(rows.height)
        parts.flush(True)
        rejects = [pl.read_parquet(f) for o in outs for f in o["rejected"]]
        rejected = R.concat(rejects) if rejects else pl.DataFrame()
        src.stats = merge_numeric([src.stats] + [o["stats"] for o in outs])
        cache, fp = self._store_source(src, w, rejected, n, t0, rep, cache, fp, content, staging)
        rep.extra = {**rep.extra, "ray": {"pieces": len(outs)}}     # this run's manifest only
        return cache, rejected, rep, fp

    # The local engine keeps its current table either in memory (``st.data``, a frame) or on disk
    # (``st.table``, a :class:`curate.cache.Table` of Parquet segments); both are handled here.
    def _sources(self, st: _RunState, force: bool):
        """The local engine's source reading (connectors, cache, mapping, ids), then the rows cut
        into blocks of ``batch_size`` rows under the Ray cache, one source part at a time."""
        self._read_sources(st, force, False)
        folder = self.ray_root / f"sources-{st.current_fp}-{self.p.batch_size}"
        meta = self._meta(folder)
        if meta is None or force:
            shutil.rmtree(folder, ignore_errors=True)
            files: list[dict[str, Any]] = []
            table = getattr(st, "table", None)
            frames = table.iter_frames() if table is not None else iter([getattr(st, "data")])
            buf = None
            for df in frames:
                buf = df if buf is None else R.concat([buf, df])
                while buf.height >= self.p.batch_size:
                    files += B.write_frame(buf.head(self.p.batch_size), folder, self.p.batch_size,
                                           prefix=f"s{len(files):06d}")
                    buf = buf.slice(self.p.batch_size)
            if buf is not None and (buf.height or not files):
                files += B.write_frame(buf, folder, self.p.batch_size, prefix=f"s{len(files):06d}")
            meta = {"files": files, "schema": B.unified_schema([f["path"] for f in files])}
            write_json(meta, folder / "meta.json")
        return meta["files"], meta["schema"]

    def _set_final(self, st: _RunState, files, schema, last: Path | None) -> Path:
        """Hand the final blocks to the local engine's output writing and write the final table
        as one Parquet file (``RunResult.final_path``), streamed block by block."""
        import pyarrow.parquet as pq
        path = (last or self.ray_root) / "final.parquet"
        tmp = path.with_name(f".final.{os.getpid()}.tmp")
        writer = None
        try:
            for f in files:
                t = B.conform(pl.read_parquet(f["path"]), schema).to_arrow()
                if writer is None:
                    writer = pq.ParquetWriter(tmp, t.schema)
                writer.write_table(t.cast(writer.schema))
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            B.conform(pl.DataFrame(), schema).write_parquet(tmp)
        os.replace(tmp, path)
        try:
            from curate.cache import Table
        except ImportError:                  # an engine that keeps its table in memory
            st.data = pl.read_parquet(path)
            return path
        st.table = Table([{"file": f["path"], "rows": f["rows"]} for f in files], base=Path("/"))
        return path

    @staticmethod
    def _meta(folder: Path) -> dict[str, Any] | None:
        m = folder / "meta.json"
        if not m.exists():
            return None
        meta = json.loads(m.read_text())
        if not all(Path(f["path"]).exists() for f in meta["files"]):
            return None
        return meta

    # ------------------------------------------------------------------ steps
    def _steps(self, st: _RunState, files, schema, force: bool, only: int | None):
        p = self.p
        labels = step_labels(p.steps)
        last = None
        for i, step in enumerate(p.steps):
            st.where = (f"steps[{i}].{step.name}", ("steps", i))
            fp = fingerprint("step", step.name, step.version, step.raw_config, st.current_fp, p.seed)
            folder = self.ray_root / f"{i:02d}-{step.name}-{fp}-{p.batch_size}"
            rep = st.current = StepReport("step", step.name)
            entry = {"index": i, "name": step.name, "config": step.raw_config,
                     "config_hash": fingerprint(step.name, step.raw_config),
                     "input_fingerprint": st.current_fp, "fingerprint": fp}
            meta = self._meta(folder)
            if meta is not None and not (force or only == i):
                r = meta["report"]
                rep.cached = True
                rep.rows_in, rep.rows_out = r["rows_in"], r["rows_out"]
                rep.rows_rejected, rep.rows_created = r["rows_rejected"], r["rows_created"]
                rep.seconds, rep.extra = r["seconds"], r["stats"]
            else:
                if force or only == i:
                    shutil.rmtree(folder, ignore_errors=True)
                meta = self._run_step_ray(i, labels[i], step, files, schema, folder, rep)
            st.current = None
            if rep.rows_rejected:
                st.reject_frames.append(pl.read_parquet(meta["rejected"]))
            self._record_step(st, entry, rep, fp)
            files, schema, last = meta["files"], meta["schema"], folder
            if only == i:
                break
        return files, schema, last

    def _run_step_ray(self, i: int, label: str, step, files, schema, folder: Path, rep: StepReport):
        from curate.steps.dedup.step import Dedup
        t0 = time.time()
        folder.mkdir(parents=True, exist_ok=True)
        if step.scope == "batch":
            out = self._batch_step(i, label, step, files, schema, folder)
        elif isinstance(step, Dedup):
            from curate.executors._ray_dedup import run_dedup
            ctx = self._ctx(i, step, folder)
            cpus = int(self._ray.cluster_resources().get("CPU", 1))
            out = run_dedup(self._ray, step, files, schema, folder, ctx, self.p.batch_size,
                            partitions=max(2, cpus), shuffle=self.opts.shuffle, log=self._log)
        else:
            out = self._gathered_step(i, step, files, schema, folder)
        rejected = out["rejected"]
        rep.rows_in, rep.rows_out = out["rows_in"], out["rows_out"]
        rep.rows_rejected = rejected.height if isinstance(rejected, pl.DataFrame) else out["rows_rejected"]
        rep.rows_created = rep.rows_out + rep.rows_rejected - rep.rows_in
        rep.seconds = time.time() - t0
        rep.extra = out["stats"]
        rej_path = folder / "rejected.parquet"
        if isinstance(rejected, pl.DataFrame):
            if rejected.height:
                B.write_parquet(rejected, rej_path)
        elif rejected:
            B.write_parquet(R.concat([pl.read_parquet(x) for x in rejected]), rej_path)
        meta = {"files": out["files"], "schema": B.unified_schema([f["path"] for f in out["files"]]),
                "rejected": str(rej_path),
                "report": {"rows_in": rep.rows_in, "rows_out": rep.rows_out, "rows_rejected": rep.rows_rejected,
                           "rows_created": rep.rows_created, "seconds": rep.seconds, "stats": rep.extra}}
        write_json(meta, folder / "meta.json")             # last: the step is finished
        return json.loads((folder / "meta.json").read_text())

    def _ctx(self, i: int, step, folder: Path) -> StepContext:
        from curate.cache import ShardStore
        scratch = folder / "work"
        return StepContext(step_name=step.name, index=i, seed=self.p.seed, workdir=scratch,
                           batch_size=self.p.batch_size, shards=ShardStore(scratch / "shards"),
                           log=(self.console.log if self.console is not None else (lambda m: None)))

    def _batch_step(self, i: int, label: str, step, files, schema, folder: Path) -> dict[str, Any]:
        """One Ray task (or actor call) per block; blocks finished by an earlier run are skipped."""
        import pyarrow as pa
        blocks = B.make_blocks(files, getattr(step.config, "apply_to", None), self.p.batch_size)
        opts: RayStepOptions = self.opts.for_step(label, step.name)
        ctx_args = {"index": i, "seed": self.p.seed, "batch_size": self.p.batch_size}
        summaries: dict[str, dict[str, Any]] = {}
        todo = []
        for b in blocks:
            done = B.finished(folder, b["key"])
            if done is not None:
                summaries[b["key"]] = {**json.loads(json.dumps(done, default=str)), "resumed": True}
            else:
                todo.append(b)
        update = self._task(f"step {i + 1} {label} (ray)", sum(b["rows"] for b in blocks))
        update(sum(b["rows"] for b in blocks if b["key"] in summaries))
        actors = None
        if todo:
            items = [{"block": json.dumps(b)} for b in todo]
            ds = self._ray.data.from_items(items, override_num_blocks=len(items))
            hooks, folder_s = self.hooks, str(folder)
            retry = _retry_args(self.opts.max_retries)
            actors = opts.actors or (1 if opts.num_gpus else None) or (
                max(1, min(len(todo), int(self._ray.cluster_resources().get("CPU", 1) // opts.num_cpus)))
                if step.resumable else None)
            if actors:
                ds = ds.map_batches(_BlockActor, fn_constructor_args=(step, folder_s, schema, ctx_args, hooks),
                                    batch_size=1, batch_format="pyarrow",
                                    compute=self._ray.data.ActorPoolStrategy(size=actors),
                                    num_cpus=opts.num_cpus, num_gpus=opts.num_gpus or None,
                                    **retry.get("actor", {}))
            else:
                def run(batch):
                    out = [B.run_block_safe(step, json.loads(s), folder_s, schema, ctx_args, hooks)
                           for s in batch.column("block").to_pylist()]
                    return pa.table({"summary": out})
                ds = ds.map_batches(run, batch_size=1, batch_format="pyarrow", num_cpus=opts.num_cpus,
                                    **retry.get("task", {}))
            for row in ds.iter_rows():
                s = json.loads(row["summary"])
                if "error" in s:
                    B.raise_block_error(s["error"], step.name)
                summaries[s["key"]] = s
                update(s["rows_in"])
        ordered = [summaries[b["key"]] for b in blocks]
        step_sums = [s for s in ordered if s["kind"] == "step"]
        stats = step.merge_stats([s["stats"] for s in step_sums]) if step_sums else {}
        stats = {**stats, "ray": {"blocks": len(blocks), "resumed_blocks": sum(bool(s.get("resumed")) for s in ordered),
                                  "actors": bool(actors) if todo else None}}
        return {"files": [s["kept"] for s in ordered] or B.write_frame(B.conform(pl.DataFrame(), schema), folder, 1),
                "rejected": [s["rejected_path"] for s in ordered if s.get("rejected_path")],
                "rows_rejected": sum(s["rows_rejected"] for s in ordered),
                "rows_in": sum(s["rows_in"] for s in ordered),
                "rows_out": sum(s["kept"]["rows"] for s in ordered), "stats": stats}

    def _gathered_step(self, i: int, step, files, schema, folder: Path) -> dict[str, Any]:
        """A global step other than dedup: gather its input to the driver and run the local step
        (the local engine's apply_to split, accounting and reject bookkeeping)."""
        data = B.read_files(files, schema)
        scope_df, passthrough = data, None
        apply_to = getattr(step.config, "apply_to", None)
        if apply_to is not None:
            scope_df = data.filter(pl.col(R.ORIGIN).is_in(apply_to))
            passthrough = data.filter(~pl.col(R.ORIGIN).is_in(apply_to))
        res = step.process(scope_df, self._ctx(i, step, folder))
        kept = res.kept if (res.kept.height or res.kept.width) else scope_df.clear()
        rejected = res.rejected if res.rejected.height else pl.DataFrame()
        check_accounting(step.name, scope_df, kept, rejected)
        if rejected.height:
            rejected = rejected.with_columns(pl.lit(step.name).alias(R.STEP)) if R.STEP not in rejected.columns \
                else rejected.with_columns(pl.col(R.STEP).fill_null(step.name))
        stats = step.merge_stats([res.stats])
        if passthrough is not None and passthrough.height:
            kept = R.concat([kept, passthrough])
        files_out = B.write_frame(kept, folder, self.p.batch_size)
        return {"files": files_out, "rejected": rejected, "rows_in": data.height, "rows_out": kept.height,
                "stats": {**stats, "ray": {"gathered_rows": data.height}}}
