"""The ``dedup`` step on Ray: the rows that may meet a duplicate are linked by a distributed
shuffle on keys, split into connected components by Ray tasks, and the step itself runs on
groups of whole components in parallel tasks.

1. Every block task computes, for each row of the step's scope, the keys under which it could
   meet a duplicate: the hash of its normalised text (exact stage) and one key per LSH band of
   its MinHash signature (near stage), with the signature scheme, layout, seed and
   normalisation of :mod:`curate.steps.dedup` (the same per-document functions).
2. The ``(key, position)`` rows are shuffled on the key over Ray Data — a distributed sort
   (``ray.shuffle: sort``) or a hash repartition (``hash``) — and each shuffled block emits star
   edges (the key's first position → each other position) reduced to their star forest; in the
   sorted variant the rows of a block's first and last key are also linked to a node standing
   for the key, which joins a key cut by a block boundary. The edges stay in Ray's object store.
3. Connected components of the edges (:func:`curate.executors._ray_cc.components`: a tree of
   union-find tasks); the driver fetches one ``(position, component)`` pair per candidate row
   (16 bytes, no text) and packs components, in the order of their first row, into groups of
   about ``batch_size`` rows (a component is never split; at most 64 groups).
4. A task per step block sends the columns the step reads (``id``, the compared columns, the
   score column) of its candidate rows to their groups; a task per group runs the step's own
   :meth:`~curate.steps.dedup.step.Dedup.process` on its rows in global order and returns the
   columns the step adds to rejected rows (``duplicate_of``, ``similarity``, reason, detail).
   A single group (all candidate rows fit in one) is run by the driver instead,
   with the same functions: no task round for small inputs.
5. The driver rewrites the blocks, one at a time: kept rows less the rejected positions, and
   the rejected rows with the columns the step added.

Why that is the local result: a pair of rows is compared by some stage only when they share the
exact key or an LSH bucket, so every cluster the local step forms, every candidate pair it
checks (buckets lie wholly in one component, their rows in the same relative order, so the
per-bucket pair cap picks the same pairs), each keeper (ties broken by global order) and each
pointer lies inside one component; a group of whole components therefore gets the local
decisions, and rows in no component are left alone at every stage. Extra links (a key hash
shared by different texts, two keys sharing a node) only merge components, which changes nothing.

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


def _vertex(s: pl.Expr, key: pl.Expr) -> pl.Expr:
    """A negative node standing for the key ``(s, key)`` (rows of one key cut by a block
    boundary are joined through it; two keys sharing it only merge components, which is harmless)."""
    return -(1 + (key // 4).cast(pl.Int64) + s.cast(pl.Int64) * (1 << 62))


_EDGES = {"a": pl.Int64, "b": pl.Int64}


def _star_edges(df: pl.DataFrame) -> pl.DataFrame:
    """Edges ``(smallest position of the key, position)`` of every key with two or more rows."""
    g = ["s", "key"]
    return (df.with_columns(pl.col("pos").min().over(g).alias("a"), pl.len().over(g).alias("_n"))
            .filter((pl.col("_n") > 1) & (pl.col("pos") != pl.col("a")))
            .select(pl.col("a").cast(pl.Int64), pl.col("pos").cast(pl.Int64).alias("b")))


def _forest(edges: pl.DataFrame):
    """A block's edges as their star forest (fewer rows, same components; see :mod:`._ray_cc`)."""
    from curate.executors._ray_cc import forest_edges
    return forest_edges(edges["a"].to_numpy(), edges["b"].to_numpy())


def _edges_in_partition(batch):
    """Star edges of the keys of one hash partition (every row of a key is in one partition)."""
    df = pl.from_arrow(batch)
    out = _star_edges(df) if df.height else pl.DataFrame(schema=_EDGES)
    return _forest(out)


def _edges_in_sorted(batch):
    """Star edges of the keys of one block of the key-sorted rows, plus an edge from each row of
    the block's first and last key to that key's node (the key may continue in other blocks)."""
    df = pl.from_arrow(batch)
    if not df.height:
        return _forest(pl.DataFrame(schema=_EDGES))
    k = df["key"]
    ends = df.filter((pl.col("key") == k[0]) | (pl.col("key") == k[-1])).select(
        pl.col("pos").cast(pl.Int64).alias("a"), _vertex(pl.col("s"), pl.col("key")).alias("b"))
    return _forest(pl.concat([_star_edges(df), ends]))


def edge_blocks(ray, blocks: list[dict[str, Any]], schema, cfg, stages: list[str], seed: int,
                backend: str, shuffle: str, partitions: int) -> list[Any]:
    """Object refs of Arrow edge blocks ``(a, b)`` linking every row to the rows that share its
    exact key or an LSH band key, from one pass over the blocks and one distributed shuffle on
    the keys: a sort (``shuffle: sort``, Ray Data's sort, cheap to start) or a hash repartition
    (``shuffle: hash``, Ray Data's hash shuffle with aggregator actors, for large clusters).
    The edges stay in Ray's object store."""
    items = [{"block": json.dumps(b)} for b in blocks]
    if not items:
        return []

    def keys_fn(batch):
        outs = [block_keys(json.loads(x), schema, cfg, stages, seed, backend)
                for x in batch.column("block").to_pylist()]
        return {c: np.concatenate([o[c] for o in outs]) for c in ("s", "key", "pos")}

    ds = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        keys_fn, batch_size=1, batch_format="pyarrow")
    if shuffle == "hash":
        ds = ds.repartition(num_blocks=partitions, keys=["key"]).map_batches(
            _edges_in_partition, batch_size=None, batch_format="pyarrow")
        return list(ds.to_arrow_refs())
    from ray.data.context import DataContext, ShuffleStrategy
    dctx = DataContext.get_current()
    saved = dctx.shuffle_strategy
    dctx.shuffle_strategy = ShuffleStrategy.SORT_SHUFFLE_PULL_BASED
    try:
        ds = ds.sort("key").map_batches(_edges_in_sorted, batch_size=None, batch_format="pyarrow")
        return list(ds.to_arrow_refs())
    finally:
        dctx.shuffle_strategy = saved


def candidate_groups(forest: dict[str, np.ndarray], size: int, max_groups: int) -> pl.DataFrame:
    """``(pos, group)`` of every row in a component with two or more rows: components in the
    order of their first row, packed into at most ``max_groups`` groups of about ``size`` rows
    (a component is never split; a group holds whole components only)."""
    f = pl.DataFrame({"pos": forest["node"], "root": forest["root"]}).filter(pl.col("pos") >= 0)
    f = f.with_columns(pl.len().over("root").alias("_n"), pl.col("pos").min().over("root").alias("_first"))
    f = f.filter(pl.col("_n") > 1)
    if not f.height:
        return pl.DataFrame(schema={"pos": pl.Int64, "group": pl.Int64})
    comps = f.group_by("_first").agg(pl.len().alias("n")).sort("_first")
    target = max(size, -(-f.height // max(max_groups, 1)))
    start = comps["n"].cum_sum() - comps["n"]                # rows before each component
    comps = comps.with_columns(((start // target).rank("dense") - 1).alias("group"))
    return (f.join(comps.select("_first", "group"), on="_first")
            .select(pl.col("pos").cast(pl.Int64), pl.col("group").cast(pl.Int64)).sort("pos"))


def narrow_rows(block: dict[str, Any], schema, columns: list[str], pos: np.ndarray,
                group: np.ndarray, groups: int):
    """The Ray task splitting one block's candidate rows by group: ``groups`` frames of the
    columns the step reads (plus ``_pos``), one per group (most empty)."""
    cols = list(dict.fromkeys(columns + ([R.ORIGIN] if any(p.get("scope") for p in block["parts"]) else [])))
    df = B.read_block(block, schema, columns=cols).select(columns)
    lo = block["pos0"]
    df = df.select(pl.all().gather(pos - lo)).with_columns(pl.Series("_pos", pos, dtype=pl.Int64),
                                              pl.Series("_g", group, dtype=pl.Int64))
    parts = df.partition_by("_g", as_dict=True, include_key=False)
    empty = df.clear().drop("_g")
    out = tuple(parts.get((g,), parts.get(g, empty)) for g in range(groups))
    return out if groups > 1 else out[0]


def resolve_group(step, ctx_args: dict[str, Any], folder: str, *frames: pl.DataFrame):
    """The Ray task running the dedup step on one group of whole components (rows in their
    global order); returns the rejected rows' added columns (with ``_pos``) and the stats."""
    from curate.cache import ShardStore
    from curate.step import StepContext
    df = pl.concat([f for f in frames if f.height] or [frames[0]]).sort("_pos")
    scratch = Path(folder) / "work" / f"g-{ctx_args['group']:06d}"
    ctx = StepContext(step_name=step.name, index=ctx_args["index"], seed=ctx_args["seed"], workdir=scratch,
                      batch_size=ctx_args["batch_size"], shards=ShardStore(scratch / "shards"))
    res = step.process(df, ctx)
    rej = res.rejected
    added = [c for c in rej.columns if c not in df.columns]
    meta = rej.select(["_pos"] + added) if rej.height else pl.DataFrame(schema={"_pos": pl.Int64})
    return meta, dict(res.stats), added


def merge_stats(stats: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-group dedup stats as one run's: counts summed, a stage's layout (``bands``, ``rows``)
    and names kept."""
    from curate.step import merge_numeric
    out = merge_numeric(stats)
    for stage in ("exact", "near"):
        first = next((s[stage] for s in stats if stage in s), None)
        if first is not None:
            for k in ("bands", "rows"):
                if k in first:
                    out[stage][k] = first[k]
    return out


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


def _near_dups(ray, step, steps_b, schema, cfg, ctx, batch_size: int, partitions: int, shuffle: str,
               folder: Path, log) -> tuple[pl.DataFrame, list[str], dict[str, Any], dict[str, Any]]:
    """Exact and near stages on Ray: keys → edges (shuffle) → components (:mod:`._ray_cc`) →
    groups of whole components → the step run per group in parallel tasks. Returns the
    rejected rows' added columns by ``_pos``, their names, the stats and the run's info."""
    from curate.executors._ray_cc import components
    t0 = time.time()
    stages = [s for s, on in (("exact", cfg.exact), ("near", cfg.near is not None)) if on]
    backend = near_backend(cfg.near) if cfg.near is not None else None
    refs = edge_blocks(ray, steps_b, schema, cfg, stages, ctx.seed, backend, shuffle, partitions)
    t_keys = time.time()
    forest = components(ray, refs)
    del refs
    t1 = time.time()
    max_groups = max(1, min(8 * partitions, 64))
    groups = candidate_groups(forest, batch_size, max_groups)
    del forest
    n_groups = int(groups["group"].max()) + 1 if groups.height else 0
    info = {"candidate_rows": groups.height, "groups": n_groups, "shuffle": shuffle, "backend": backend,
            "keys_seconds": round(t_keys - t0, 3), "components_seconds": round(t1 - t_keys, 3)}
    log(f"dedup: {groups.height:,} candidate rows in {n_groups} group(s) of whole components")
    empty_meta = pl.DataFrame(schema={"_pos": pl.Int64})
    if not groups.height:
        return empty_meta, [], {"duplicates": 0, "clusters": 0}, info
    columns = list(dict.fromkeys([R.ID] + cfg.columns + ([cfg.score_column] if cfg.keep == "score" else [])))
    pos_all, grp_all = groups["pos"].to_numpy(), groups["group"].to_numpy()
    ctx_args = {"index": ctx.index, "seed": ctx.seed, "batch_size": batch_size}
    if n_groups == 1:          # at most ~batch_size candidate rows: no task round, the driver runs it
        frames = []
        for b in steps_b:
            lo, hi = np.searchsorted(pos_all, [b["pos0"], b["pos0"] + b["rows"]])
            if hi > lo:
                frames.append(narrow_rows(b, schema, columns, pos_all[lo:hi], grp_all[lo:hi], 1))
        meta, stats, added = resolve_group(step, {**ctx_args, "group": 0}, str(folder), *frames)
        info["resolve_seconds"] = round(time.time() - t1, 3)
        return (meta.sort("_pos") if meta.height else empty_meta), added, merge_stats([stats]), info
    split = ray.remote(narrow_rows).options(num_cpus=1, num_returns=n_groups)
    per_block = []
    for b in steps_b:
        lo, hi = np.searchsorted(pos_all, [b["pos0"], b["pos0"] + b["rows"]])
        if hi > lo:
            out = split.remote(b, schema, columns, pos_all[lo:hi], grp_all[lo:hi], n_groups)
            per_block.append(out if n_groups > 1 else [out])
    del pos_all, grp_all, groups
    resolve = ray.remote(resolve_group).options(num_cpus=1, num_returns=3)
    metas, stats, added = [], [], []
    for g in range(n_groups):
        metas_ref, stats_ref, added_ref = resolve.remote(step, {**ctx_args, "group": g}, str(folder),
                                                         *[refs_b[g] for refs_b in per_block])
        metas.append(metas_ref)
        stats.append(stats_ref)
        added.append(added_ref)
    metas, stats, added = ray.get(metas), ray.get(stats), ray.get(added)
    names = list(dict.fromkeys(c for a in added for c in a))
    frames = [m for m in metas if m.height]
    meta = pl.concat(frames, how="diagonal_relaxed").sort("_pos") if frames else empty_meta
    info["resolve_seconds"] = round(time.time() - t1, 3)
    return meta, names, merge_stats(stats), info


def run_dedup(ray, step, files, schema, folder: Path, ctx, batch_size: int, partitions: int,
              shuffle: str = "sort", log=lambda m: None) -> dict[str, Any]:
    """Run ``step`` (a :class:`curate.steps.dedup.step.Dedup`) over ``files``; write its kept and
    rejected rows under ``folder``; return files, rejected files, counts and stats (the step's own)."""
    cfg = step.config
    probe = B.conform(pl.DataFrame(), schema)
    for c in cfg.columns + ([cfg.score_column or "<score_column unset>"] if cfg.keep == "score" else []):
        R.require_column(probe, c, f"step {step.name}")
    apply_to = getattr(cfg, "apply_to", None)
    blocks = B.make_blocks(files, apply_to, batch_size)
    steps_b = [b for b in blocks if b["kind"] == "step"]
    pass_b = [b for b in blocks if b["kind"] == "pass"]
    scope_rows = sum(b["rows"] for b in steps_b)
    folder.mkdir(parents=True, exist_ok=True)
    if cfg.semantic is not None:        # any row may match any other: the scope on the driver
        sub = gather(steps_b, schema, None, np.zeros(0, np.int64))
        log(f"dedup: {sub.height:,} of {scope_rows:,} rows to the driver")
        res = step.process(sub, ctx) if sub.height else None
        stats = dict(res.stats) if res is not None else {"duplicates": 0, "clusters": 0}
        rej = res.rejected if res is not None else pl.DataFrame()
        added = [c for c in rej.columns if c not in sub.columns]
        meta = rej.select(["_pos"] + added).sort("_pos") if rej.height else pl.DataFrame(schema={"_pos": pl.Int64})
        info: dict[str, Any] = {"gathered_rows": sub.height}
        del sub, res, rej
    else:
        meta, added, stats, info = _near_dups(ray, step, steps_b, schema, cfg, ctx, batch_size, partitions,
                                              shuffle, folder, log)
    drop = meta["_pos"].to_numpy().astype(np.int64)
    # The kept rows: the step's blocks less the rejected positions, then the pass-through rows;
    # the rejected rows: the blocks' rows at those positions with the step's added columns.
    out_files, rej_files, kept_rows, rej_rows = [], [], 0, 0
    for k, b in enumerate(steps_b + pass_b):
        df = B.read_block(b, schema)
        if b["kind"] == "step" and len(drop):
            lo = b["pos0"]
            a, z = np.searchsorted(drop, [lo, lo + b["rows"]])
            if z > a:
                mask = np.ones(df.height, dtype=bool)
                mask[drop[a:z] - lo] = False
                mine = meta.slice(int(a), int(z - a))
                rej = df.filter(pl.Series(~mask)).with_columns([mine[c] for c in added])
                rej = rej.with_columns(pl.col(R.STEP).fill_null(step.name)) if R.STEP in rej.columns \
                    else rej.with_columns(pl.lit(step.name).alias(R.STEP))
                rp = folder / f"r-{k:06d}.parquet"
                B.write_parquet(rej, rp)
                rej_files.append(str(rp))
                rej_rows += rej.height
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
    return {"files": out_files, "rejected": rej_files, "rows_rejected": rej_rows, "stats": stats,
            "rows_in": scope_rows + sum(b["rows"] for b in pass_b), "rows_out": kept_rows}
