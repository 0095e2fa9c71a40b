"""Blocks of the Ray executor: Parquet files in the run cache and the descriptors that cut them.

Data moves between steps as Parquet files under ``<workdir>/<name>/ray/<step>-<fingerprint>/``.
A step's input is the ordered list of its predecessor's files (whole files, each with its row
count and rows per ``origin``). A *block* descriptor names the rows one task handles: slices of
those files, in the order the local engine would see them, so block ``k`` of a batch step holds
exactly the rows of the local engine's batch ``k`` (``batch_size`` rows of the step's scope) and
a step whose result depends on its batch (a per-batch seed) gives the same rows on both.

A task writes its block's kept and rejected rows atomically and then a small JSON marker; a
marker means the block is finished. A retried task (its worker died) rewrites the same files,
and a rerun after the driver died skips every block with a marker: nothing is lost or repeated.

Nothing here imports Ray: the functions run inside Ray tasks and in the driver alike.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import polars as pl

from curate import records as R
from curate.cache import conform, schema_text  # noqa: F401 - conform: used by the executor modules as B.conform
from curate.io import sha256_file, write_json, write_parquet

NULL_ORIGIN = "\x00null"           # key of rows without an origin in the per-origin counts


# ------------------------------------------------------------------------------ files
def origin_counts(df: pl.DataFrame) -> dict[str, int]:
    if R.ORIGIN not in df.columns or df.height == 0:
        return {NULL_ORIGIN: df.height} if df.height else {}
    counts = df.group_by(R.ORIGIN).len().rows()
    return {(NULL_ORIGIN if o is None else str(o)): int(n) for o, n in counts}


def file_info(df: pl.DataFrame, path: Path) -> dict[str, Any]:
    return {"path": str(path), "rows": df.height, "origins": origin_counts(df)}


def unified_schema(paths: list[str]) -> dict[str, str]:
    """The schema the local engine's diagonal concat would give these files (columns in order
    of first appearance, each at its supertype), as ``{column: dtype string}``."""
    empties = [pl.DataFrame(schema=pl.read_parquet_schema(p)) for p in paths]
    sch = R.concat(empties).schema if empties else {}
    return schema_text(sch)


def scope_rows(info: dict[str, Any], apply_to: list[str] | None, invert: bool = False) -> int:
    if apply_to is None:
        return 0 if invert else info["rows"]
    inside = sum(n for o, n in info["origins"].items() if o in apply_to)
    return info["rows"] - inside if invert else inside


# ------------------------------------------------------------------------------ descriptors
def make_blocks(files: list[dict[str, Any]], apply_to: list[str] | None, size: int) -> list[dict[str, Any]]:
    """Descriptors of a step's blocks: ``size`` rows of the scope each (the rows whose origin is
    in ``apply_to``, in file order), then one pass-through block per file holding rows outside
    the scope (the local engine appends those after the step's own rows)."""
    blocks: list[dict[str, Any]] = []
    cur: list[dict[str, Any]] = []
    have, pos0, pos = 0, 0, 0
    for f in files:
        n = scope_rows(f, apply_to)
        start = 0
        while start < n:
            take = min(size - have, n - start)
            cur.append({"path": f["path"], "scope": apply_to, "invert": False, "start": start, "length": take})
            have += take
            start += take
            pos += take
            if have == size:
                blocks.append({"kind": "step", "parts": cur, "pos0": pos0, "rows": have})
                cur, have, pos0 = [], 0, pos
    if cur:
        blocks.append({"kind": "step", "parts": cur, "pos0": pos0, "rows": have})
    if apply_to is not None:
        for f in files:
            n = scope_rows(f, apply_to, invert=True)
            if n:
                blocks.append({"kind": "pass", "parts": [{"path": f["path"], "scope": apply_to, "invert": True,
                                                          "start": 0, "length": n}], "rows": n})
    for k, b in enumerate(blocks):
        b["key"] = f"b-{k:06d}"
    return blocks


def read_part(part: dict[str, Any], columns: list[str] | None = None) -> pl.DataFrame:
    df = pl.read_parquet(part["path"], columns=columns)
    if part.get("scope") is not None:
        inside = pl.col(R.ORIGIN).is_in(part["scope"])
        df = df.filter(~inside.fill_null(False) if part.get("invert") else inside.fill_null(False))
    return df.slice(part["start"], part["length"])


def read_block(block: dict[str, Any], schema: dict[str, str] | None,
               columns: list[str] | None = None) -> pl.DataFrame:
    frames = [read_part(p, columns) for p in block["parts"]]
    if columns is not None:
        return pl.concat([conform(f, {c: schema[c] for c in columns if c in schema}) for f in frames]) \
            if frames else pl.DataFrame()
    df = R.concat(frames) if len(frames) > 1 else (frames[0] if frames else pl.DataFrame())
    return conform(df, schema)


def read_files(files: list[dict[str, Any]], schema: dict[str, str] | None) -> pl.DataFrame:
    """Every row of ``files`` in order, as one frame (the gather of a global step)."""
    frames = [pl.read_parquet(f["path"]) for f in files]
    df = R.concat(frames) if frames else pl.DataFrame()
    return conform(df, schema)


def write_frame(df: pl.DataFrame, folder: Path, size: int, prefix: str = "g") -> list[dict[str, Any]]:
    """Write ``df`` as files of ``size`` rows (one, possibly empty, when it has none)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for k, start in enumerate(range(0, max(df.height, 1), size)):
        part = df.slice(start, size)
        path = folder / f"{prefix}-{k:06d}.parquet"
        write_parquet(part, path)
        out.append(file_info(part, path))
    return out


# ------------------------------------------------------------------------------ block markers
def marker_path(folder: Path, key: str) -> Path:
    return Path(folder) / f"{key}.json"


def finished(folder: Path, key: str) -> dict[str, Any] | None:
    """The summary of a finished block, or None (no marker, or a file that fails its checksum)."""
    m = marker_path(folder, key)
    if not m.exists():
        return None
    try:
        summary = json.loads(m.read_text())
        for name, digest in summary["_files"].items():
            if sha256_file(Path(folder) / name) != digest:
                raise ValueError(name)
    except (OSError, ValueError, KeyError):
        m.unlink(missing_ok=True)
        return None
    return summary


def save_block(folder: Path, key: str, kept: pl.DataFrame, rejected: pl.DataFrame,
               summary: dict[str, Any]) -> dict[str, Any]:
    """Write a block's rows atomically, then its marker (last: it says the block is finished)."""
    folder = Path(folder)
    files = {}
    kp = folder / f"{key}.parquet"
    write_parquet(kept, kp)
    files[kp.name] = sha256_file(kp)
    summary = {**summary, "kept": file_info(kept, kp)}
    if rejected.height:
        rp = folder / f"{key}.rejected.parquet"
        write_parquet(rejected, rp)
        files[rp.name] = sha256_file(rp)
        summary["rejected_path"] = str(rp)
    summary["_files"] = files
    write_json(summary, marker_path(folder, key))
    return summary


# ------------------------------------------------------------------------------ the task body
def fault_hook(hooks: dict[str, Any] | None, step_index: int, block: dict[str, Any]) -> None:
    """Test faults (``CURATE_RAY_FAULTS``, read by the driver): ``die_once`` kills the worker the
    first time a block of step ``step`` starts (a marker file remembers it); ``pause`` writes its
    marker and sleeps in block ``block`` of step ``step`` (the driver is killed meanwhile)."""
    if not hooks:
        return
    die = hooks.get("die_once")
    if die and die.get("step") == step_index and not Path(die["marker"]).exists():
        Path(die["marker"]).write_text(str(os.getpid()))
        os._exit(1)
    pause = hooks.get("pause")
    if pause and pause.get("step") == step_index and block["key"] == pause.get("block"):
        Path(pause["marker"]).write_text(str(os.getpid()))
        time.sleep(float(pause.get("seconds", 600)))


def run_block_safe(step, block: dict[str, Any], folder: str, schema: dict[str, str] | None,
                   ctx_args: dict[str, Any], hooks: dict[str, Any] | None = None) -> str:
    """:func:`run_block` as a JSON summary; an exception of the step comes back as an ``error``
    entry (Ray would wrap it beyond recognition) for the driver to raise as the local engine would."""
    try:
        out = run_block(step, block, folder, schema, ctx_args, hooks)
    except Exception as e:                     # a dead worker is no exception here: Ray retries it
        import traceback
        out = {"key": block["key"], "error": {"type": type(e).__name__, "module": type(e).__module__,
                                              "message": str(e), "hint": getattr(e, "hint", None),
                                              "traceback": traceback.format_exc()[-4000:]}}
    return json.dumps(out, default=str)


def raise_block_error(err: dict[str, Any], step_name: str) -> None:
    """Raise the error a block task reported: curate's own errors as themselves, others as a
    :class:`~curate.errors.StepError` carrying the task's traceback."""
    from curate import errors as E
    cls = getattr(E, err["type"], None) if err.get("module") == "curate.errors" else None
    if isinstance(cls, type) and issubclass(cls, E.CurateError):
        try:
            exc = cls(err["message"])
        except TypeError:
            exc = E.StepError(err["message"])
    else:
        exc = E.StepError(f"step {step_name}: {err['type']}: {err['message']}\n(in a Ray task)\n{err['traceback']}")
    if err.get("hint"):
        exc.hint = err["hint"]
    raise exc


def run_block(step, block: dict[str, Any], folder: str, schema: dict[str, str] | None,
              ctx_args: dict[str, Any], hooks: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run a batch step on one block (or copy a pass-through block) and save it; a finished block
    is returned from its marker without running again."""
    from curate.cache import ShardStore
    from curate.runresult import check_accounting
    from curate.step import StepContext

    folder_p = Path(folder)
    done = finished(folder_p, block["key"])
    if done is not None:
        return {**done, "resumed": True}
    fault_hook(hooks, ctx_args["index"], block)
    t0 = time.time()
    df = read_block(block, schema)
    if block["kind"] == "pass":
        summary = {"key": block["key"], "kind": "pass", "rows_in": df.height, "rows_rejected": 0,
                   "rows_created": 0, "stats": {}}
        return {**save_block(folder_p, block["key"], df, pl.DataFrame(), summary), "resumed": False}
    scratch = folder_p / "work"
    ctx = StepContext(step_name=step.name, index=ctx_args["index"], seed=ctx_args["seed"],
                      workdir=scratch, batch_size=ctx_args["batch_size"],
                      shards=ShardStore(scratch / "shards" / block["key"]))
    res = step.process(df, ctx)
    kept = res.kept if (res.kept.height or res.kept.width) else df.clear()
    rejected = res.rejected if res.rejected.height else pl.DataFrame()
    created = check_accounting(step.name, df, kept, rejected)
    if rejected.height:
        rejected = rejected.with_columns(pl.lit(step.name).alias(R.STEP)) if R.STEP not in rejected.columns \
            else rejected.with_columns(pl.col(R.STEP).fill_null(step.name))
    summary = {"key": block["key"], "kind": "step", "rows_in": df.height, "rows_rejected": rejected.height,
               "rows_created": created, "stats": res.stats, "seconds": round(time.time() - t0, 3)}
    return {**save_block(folder_p, block["key"], kept, rejected, summary), "resumed": False}
