"""The ``dedup`` step on Ray: candidates found by a distributed shuffle on keys, the step itself
run on the driver over the candidate rows only.

1. Every block task computes, for each row of the step's scope, the keys under which it could
   meet a duplicate: the hash of its normalised text (exact stage) and one key per LSH band of
   its MinHash signature (near stage), with the signature scheme, layout, seed and
   normalisation of :mod:`curate.steps.dedup` (the same per-document functions).
2. The ``(key, position)`` rows are shuffled on the key over Ray Data — a distributed sort
   (``ray.shuffle: sort``) or a hash repartition (``hash``) — and each shuffled block emits the
   positions whose key occurs more than once.
3. The driver reads only those candidate rows (in their global order) and runs the step's own
   :meth:`~curate.steps.dedup.step.Dedup.process` on them; its rejected rows are the step's
   rejects, and the kept table is the input less those positions, rewritten block by block.

Why that is the local result: a row outside the candidate set shares no normalised text and no
LSH bucket with any row, so the local step leaves it alone at every stage; every bucket with two
or more rows lies wholly inside the set, so the candidate pairs, clusters, keepers (input order is
kept), ``duplicate_of`` pointers and similarities are the local ones. Driver memory: the
candidate rows plus one int64 per duplicate key row; the rewrite streams one block at a time.

With ``semantic:`` set, every remaining row may be a duplicate of any other, so the step's scope
is gathered to the driver and run whole (embeddings in the driver process).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from curate import records as R
from curate.executors import _blocks as B


def _norm_text(df: pl.DataFrame, cfg) -> pl.Series:
    """The normalised compared text, as the step normalises it for its exact and near stages."""
    from curate.steps.dedup import _text as T
    from curate.steps.dedup import exact as X
    key = X.exact_key(cfg.columns) if hasattr(X, "exact_key") else T.joined(cfg.columns, sep="\x1f")
    raw = df.select(key.alias("t"))["t"]
    if hasattr(T, "normalize_series"):
        return T.normalize_series(raw, cfg.normalize)
    return raw.to_frame("t").select(T.normalized(pl.col("t"), cfg.normalize)).to_series()


def _keys_exact(norm: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    ok = norm.is_not_null().to_numpy()
    return np.flatnonzero(ok), norm.hash(0x5EED).to_numpy()[ok]


def near_backend(near) -> str:
    from curate.steps.dedup import minhash as M
    if near.backend != "auto":
        return near.backend
    if hasattr(M, "oph_signatures"):
        return "oph"
    return "rensa" if M.have_rensa() else "numpy"


def _keys_near(norm: pl.Series, cfg, seed: int, backend: str) -> tuple[np.ndarray, np.ndarray]:
    """One key per (row, band): the row's LSH buckets, as the step's near stage forms them."""
    from curate.steps.dedup import minhash as M
    near = cfg.near
    try:
        bands, rows = near.layout(oph=backend == "oph")
    except TypeError:
        bands, rows = near.layout()
    num_perm = bands * rows
    text, single = norm, cfg.normalize.collapse_whitespace
    if len(cfg.columns) > 1:       # column boundaries (\x1f in the exact key) are word breaks
        text, single = norm.str.replace_all("\x1f", " ", literal=True), False
    sh = M.shingle(text, near.ngram, near.unit, seed=seed, single_spaced=single)
    nonempty = np.flatnonzero(sh.counts > 0)
    if len(nonempty) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.uint64)
    sub = sh if len(nonempty) == len(sh.counts) else sh.subset(nonempty)
    if backend == "oph":
        keys = M.band_keys(M.oph_signatures(sub, num_perm), bands, rows)       # docs × bands
        return np.repeat(nonempty, bands), keys.ravel()
    sig = (M.signatures_rensa(sub, num_perm, seed) if backend == "rensa"
           else M.signatures_numpy(sub, num_perm, seed, workers=1))
    n = sig.shape[0]
    idx, keys = [], []
    for bi in range(bands):                        # the fold of minhash.lsh_pairs, per band
        band = sig[:, bi * rows:(bi + 1) * rows].astype(np.uint64)
        key = np.full(n, ((bi + 1) * 0x9E3779B97F4A7C15) % (1 << 64), dtype=np.uint64)
        for c in range(rows):
            key = M._mix(key ^ band[:, c])
        idx.append(nonempty)
        keys.append(key)
    return np.concatenate(idx), np.concatenate(keys)


STAGES = {"exact": 0, "near": 1}


def block_keys(block: dict[str, Any], schema: dict[str, str], cfg, stages: list[str], seed: int,
               backend: str) -> dict[str, np.ndarray]:
    """``{s, key, pos}`` of one block's rows (the Ray task): ``s`` names the stage (0 exact,
    1 near), ``key`` its exact key or one LSH band key, ``pos`` the row's position in the scope."""
    cols = list(dict.fromkeys(cfg.columns + ([R.ORIGIN] if any(p.get("scope") for p in block["parts"]) else [])))
    df = B.read_block(block, schema, columns=cols)
    pos = block["pos0"] + np.arange(df.height, dtype=np.int64)
    norm = _norm_text(df, cfg)
    out_s, out_k, out_p = [], [], []
    for stage in stages:
        i, k = _keys_exact(norm) if stage == "exact" else _keys_near(norm, cfg, seed, backend)
        out_s.append(np.full(len(i), STAGES[stage], np.int8))
        out_k.append(k.astype(np.uint64))
        out_p.append(pos[i])
    return {"s": np.concatenate(out_s), "key": np.concatenate(out_k), "pos": np.concatenate(out_p)}


def _shared_in_partition(batch) -> dict[str, np.ndarray]:
    """Rows whose (stage, key) occurs more than once in this hash partition (all of a key's rows
    are in one partition)."""
    df = pl.from_arrow(batch)
    if df.height:
        df = df.filter(pl.struct("s", "key").is_duplicated())
    return {c: df[c].to_numpy() if df.height else np.zeros(0, t)
            for c, t in (("s", np.int8), ("key", np.uint64), ("pos", np.int64))}


def _shared_in_sorted(batch) -> dict[str, np.ndarray]:
    """Rows whose (stage, key) occurs twice in this block of the key-sorted keys, plus every row of
    the block's first and last key (a key may continue in the next block; the driver counts those)."""
    df = pl.from_arrow(batch)
    if df.height:
        k = df["key"]
        df = df.filter(pl.struct("s", "key").is_duplicated() | (pl.col("key") == k[0]) | (pl.col("key") == k[-1]))
    return {c: df[c].to_numpy() if df.height else np.zeros(0, t)
            for c, t in (("s", np.int8), ("key", np.uint64), ("pos", np.int64))}


def shared_keys(ray, blocks: list[dict[str, Any]], schema, cfg, stages: list[str], seed: int,
                backend: str, shuffle: str, partitions: int) -> pl.DataFrame:
    """``(s, key, pos)`` of every row that shares its exact key or an LSH band key with another
    row, from one pass over the blocks and one distributed shuffle on the keys: a sort
    (``shuffle: sort``, Ray Data's sort, cheap to start) or a hash repartition
    (``shuffle: hash``, Ray Data's hash shuffle with aggregator actors, for large clusters)."""
    items = [{"block": json.dumps(b)} for b in blocks]
    if not items:
        return pl.DataFrame(schema={"s": pl.Int8, "key": pl.UInt64, "pos": pl.Int64})

    def keys_fn(batch):
        outs = [block_keys(json.loads(x), schema, cfg, stages, seed, backend)
                for x in batch.column("block").to_pylist()]
        return {c: np.concatenate([o[c] for o in outs]) for c in ("s", "key", "pos")}

    ds = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        keys_fn, batch_size=1, batch_format="pyarrow")
    if shuffle == "hash":
        ds = ds.repartition(num_blocks=partitions, keys=["key"]).map_batches(
            _shared_in_partition, batch_size=None, batch_format="pyarrow")
    else:
        from ray.data.context import DataContext, ShuffleStrategy
        dctx = DataContext.get_current()
        saved = dctx.shuffle_strategy
        dctx.shuffle_strategy = ShuffleStrategy.SORT_SHUFFLE_PULL_BASED
        try:
            ds = ds.sort("key").map_batches(_shared_in_sorted, batch_size=None, batch_format="pyarrow")
            tables = ray.get(ds.to_arrow_refs())
        finally:
            dctx.shuffle_strategy = saved
    if shuffle == "hash":
        tables = ray.get(ds.to_arrow_refs())
    frames = [pl.from_arrow(t) for t in tables if t.num_rows]
    if not frames:
        return pl.DataFrame(schema={"s": pl.Int8, "key": pl.UInt64, "pos": pl.Int64})
    df = pl.concat(frames).with_columns(pl.col("s").cast(pl.Int8), pl.col("key").cast(pl.UInt64),
                                       pl.col("pos").cast(pl.Int64))
    return df.filter(pl.struct("s", "key").is_duplicated())


def gather(blocks: list[dict[str, Any]], schema, positions: np.ndarray | None,
           drop: np.ndarray) -> pl.DataFrame:
    """Rows of the step blocks at ``positions`` (all live rows when None), in order, with ``_pos``."""
    frames = []
    for b in blocks:
        lo, hi = b["pos0"], b["pos0"] + b["rows"]
        if positions is not None:
            want = positions[(positions >= lo) & (positions < hi)]
            if not len(want):
                continue
        df = B.read_block(b, schema).with_columns(
            pl.Series("_pos", np.arange(lo, hi, dtype=np.int64)))
        keep = (pl.col("_pos").is_in(pl.Series(want, dtype=pl.Int64).implode()) if positions is not None
                else ~pl.col("_pos").is_in(pl.Series(drop, dtype=pl.Int64).implode()))
        frames.append(df.filter(keep))
    if not frames:
        empty = B.conform(pl.DataFrame(), schema)
        return empty.with_columns(pl.Series("_pos", [], dtype=pl.Int64))
    return pl.concat(frames)


def run_dedup(ray, step, files, schema, folder: Path, ctx, batch_size: int, partitions: int,
              shuffle: str = "sort", log=lambda m: None) -> dict[str, Any]:
    """Run ``step`` (a :class:`curate.steps.dedup.step.Dedup`) over ``files``; write its kept rows
    under ``folder``; return files, rejected rows, counts and stats (the step's own)."""
    cfg = step.config
    probe = B.conform(pl.DataFrame(), schema)
    for c in cfg.columns + ([cfg.score_column or "<score_column unset>"] if cfg.keep == "score" else []):
        R.require_column(probe, c, f"step {step.name}")
    apply_to = getattr(cfg, "apply_to", None)
    blocks = B.make_blocks(files, apply_to, batch_size)
    steps_b = [b for b in blocks if b["kind"] == "step"]
    pass_b = [b for b in blocks if b["kind"] == "pass"]
    scope_rows = sum(b["rows"] for b in steps_b)
    t0 = time.time()
    if cfg.semantic is not None:
        sub = gather(steps_b, schema, None, np.zeros(0, np.int64))
        info: dict[str, Any] = {"gathered_rows": sub.height}
    else:
        stages = [s for s, on in (("exact", cfg.exact), ("near", cfg.near is not None)) if on]
        backend = near_backend(cfg.near) if cfg.near is not None else None
        shared = shared_keys(ray, steps_b, schema, cfg, stages, ctx.seed, backend, shuffle, partitions)
        pos = np.unique(shared["pos"].to_numpy()).astype(np.int64)
        sub = gather(steps_b, schema, pos, np.zeros(0, np.int64))
        info = {"candidate_rows": int(len(pos)), "key_rows_shared": int(shared.height),
                "shuffle": shuffle, "backend": backend, "keys_seconds": round(time.time() - t0, 3)}
    log(f"dedup: {sub.height:,} of {scope_rows:,} rows to the driver")
    if sub.height:
        res = step.process(sub, ctx)
        rej, stats = res.rejected, dict(res.stats)
    else:
        rej, stats = pl.DataFrame(), {"duplicates": 0, "clusters": 0}
    drop = np.sort(rej["_pos"].to_numpy()).astype(np.int64) if rej.height else np.zeros(0, np.int64)
    if rej.height:
        rej = rej.drop("_pos")
        rej = rej.with_columns(pl.col(R.STEP).fill_null(step.name)) if R.STEP in rej.columns \
            else rej.with_columns(pl.lit(step.name).alias(R.STEP))
    # The kept rows: the step's blocks less the rejected positions, then the pass-through rows.
    out_files, kept_rows = [], 0
    folder.mkdir(parents=True, exist_ok=True)
    for k, b in enumerate(steps_b + pass_b):
        df = B.read_block(b, schema)
        if b["kind"] == "step" and len(drop):
            lo = b["pos0"]
            mine = drop[(drop >= lo) & (drop < lo + b["rows"])] - lo
            if len(mine):
                mask = np.ones(df.height, dtype=bool)
                mask[mine] = False
                df = df.filter(pl.Series(mask))
        path = folder / f"d-{k:06d}.parquet"
        B.write_parquet(df, path)
        out_files.append(B.file_info(df, path))
        kept_rows += df.height
    if not out_files:
        path = folder / "d-000000.parquet"
        empty = B.conform(pl.DataFrame(), schema)
        B.write_parquet(empty, path)
        out_files.append(B.file_info(empty, path))
    stats["ray"] = {"blocks": len(steps_b), **info}
    return {"files": out_files, "rejected": rej, "stats": stats,
            "rows_in": scope_rows + sum(b["rows"] for b in pass_b), "rows_out": kept_rows}
