"""Exact + near dedup over a table read part by part (``Dedup.process_table``), so memory is a
few fixed-size numbers per row instead of the texts.

* **Pass over the parts** (only the compared columns, plus ``score_column``): each part's text
  is normalised and reduced to a 128-bit exact key (two seeded 64-bit polars hashes), the keep
  policy's rank key (length or score), and, for near dedup, one OPH band key per band, appended
  to disk files cut by the keys' top bits (key-range partitions) with the row number beside each
  key. The texts and shingles of a part are dropped before the next part is read.
* **Exact**: rows sharing the 128-bit key form a cluster (hash-based; a false match needs a
  128-bit collision); an argsort of the first 64 bits finds the few rows that can match.
* **Near**: each key-range partition is read alone, given the document index the whole-frame
  path gives (rank among the exact-kept rows with shingles), sorted and turned into candidate
  pairs (:func:`.minhash.bucket_codes`); since a bucket never straddles a key range this is the
  same as the one global sort. Candidates are checked (OPH estimate pre-check, true Jaccard or
  signature estimate) in blocks of (part, part): the texts of just the candidate rows of two
  parts are re-read, normalised and shingled (kept in a small LRU by part); the pairs of small
  blocks (chance collisions between far-apart rows) are read together in one pass. Clusters
  are union-find over row numbers.

In the pass over the parts each part's rows are cut into slices hashed and shingled on a few
threads (up to 4, the usable cores; polars and numpy release the GIL), so the pass uses the
cores while holding one part, as a single thread would; results are taken in row order. A small
table (signatures of every row within ``_CACHE_BYTES / 2``, 128 MiB) keeps each row's OPH
signature and shingles from that pass, so verification re-reads nothing; a larger one re-reads
the candidate rows, all at once when they fit ``_ALL_BYTES`` (64 MiB), else in (part, part)
blocks.

Memory: ~50 bytes per row (exact key, rank key, row masks and indices) plus the part being
read, one key-range partition (~4M keys) and the candidate pairs (plus at most 256 MiB of kept
signatures and shingles on small tables); disk: (8 + 8) bytes × bands per row, removed at the
end. Decisions equal :meth:`Dedup.process`'s (tests/dedup/test_streamed.py).
"""
from __future__ import annotations

import os
import shutil
import time
import uuid
from collections import OrderedDict
from typing import Any

import numpy as np
import polars as pl

from curate import records as R
from curate.step import StepContext, TableResult

from ._clusters import connected_components, keep_key, keepers_by
from ._text import check_columns, normalize_series
from .exact import exact_key
from .minhash import (OPH_MARGIN, Shingles, band_keys, bucket_codes, key_bits, oph_signatures,
                      shingle, split_codes, true_jaccard)

_PART_KEYS = 1 << 22          # band keys per key-range partition (32 MiB of keys, 32 MiB of rows)
_CACHE_BYTES = 256 << 20      # re-read candidate rows kept (shingles + signatures), LRU by part
_ALL_BYTES = 64 << 20         # candidate rows read at once (shingles + signatures) when they fit
_DENSE = 32                   # pairs of a (part, part) block worth loading both parts' candidates
_SPARSE_ROWS = 100_000        # rows of the sparse pairs re-read at a time


def supported(cfg) -> bool:
    """Configurations the streamed path covers (others run :meth:`Dedup.process` on one frame)."""
    near = cfg.near
    return (cfg.semantic is None and (cfg.exact or near is not None)
            and (near is None or near.backend in ("auto", "oph")))


class StreamedDedup:
    """One run of the streamed dedup over ``table`` (see the module doc)."""

    def __init__(self, step, table, ctx: StepContext) -> None:
        self.step, self.cfg, self.table, self.ctx = step, step.config, table, ctx
        self.offsets = np.asarray(table.offsets(), dtype=np.int64)
        self.n = int(self.offsets[-1])
        near = self.cfg.near
        if near is not None:
            self.bands, self.rows = near.layout(oph=True)
            self.single = self.cfg.normalize.collapse_whitespace and len(self.cfg.columns) == 1
        self.spill = ctx.workdir / f"dedup-{uuid.uuid4().hex[:8]}"

    # ------------------------------------------------------------------ helpers
    def _columns(self) -> list[str]:
        cols = list(self.cfg.columns)
        if self.cfg.keep == "score" and self.cfg.score_column not in cols:
            cols.append(self.cfg.score_column)
        return cols

    def _norm(self, frame: pl.DataFrame) -> pl.Series:
        return normalize_series(frame.select(exact_key(self.cfg.columns).alias("t"))["t"], self.cfg.normalize)

    def _near_text(self, norm: pl.Series) -> pl.Series:
        return norm.str.replace_all("\x1f", " ", literal=True) if len(self.cfg.columns) > 1 else norm

    def _shingles(self, norm: pl.Series) -> Shingles:
        near = self.cfg.near
        return shingle(self._near_text(norm), near.ngram, near.unit, seed=self.ctx.seed,
                       single_spaced=self.single)

    # ------------------------------------------------------------------ run
    def run(self) -> TableResult:
        cfg = self.cfg
        empty = pl.DataFrame(schema=self.table.unified_schema())
        check_columns(empty, cfg.columns, self.step.name)
        if cfg.keep == "score":
            check_columns(empty, [cfg.score_column or "<score_column unset>"], self.step.name)
            keep_key(empty, cfg.keep, cfg.columns, cfg.score_column, self.step.name)
        self.spill.mkdir(parents=True, exist_ok=True)
        try:
            return self._run()
        finally:
            shutil.rmtree(self.spill, ignore_errors=True)

    def _run(self) -> TableResult:
        cfg = self.cfg
        stats: dict[str, Any] = {"duplicates": 0, "clusters": 0}
        t0 = time.time()
        norm_s = self._scan()
        stats["normalize_seconds"] = round(norm_s, 3)
        scan_s = time.time() - t0 - norm_s          # hashing/shingling, shared by the stages
        groups: list[tuple[np.ndarray, np.ndarray, np.ndarray, str, pl.Expr, np.ndarray]] = []
        kept = np.ones(self.n, dtype=bool)
        if cfg.exact:
            t1 = time.time()
            rej, keeper, size, st = self._exact()
            kept[rej] = False
            st["seconds"] = round(time.time() - t1 + (0 if cfg.near else scan_s), 3)
            stats["exact"] = st
            detail = pl.format("exact duplicate of {} (cluster of {})", pl.col("duplicate_of"), pl.col("_size"))
            groups.append((rej, keeper, np.ones(len(rej)), "exact_duplicate", detail, size))
        if cfg.near is not None:
            t1 = time.time()
            rej, keeper, size, sim, st = self._near(kept)
            kept[rej] = False
            st["seconds"] = round(time.time() - t1 + scan_s, 3)
            stats["near"] = st
            near = cfg.near
            how = {"jaccard": "Jaccard", "signature": "estimated Jaccard", "none": "estimated Jaccard"}[near.verify]
            detail = pl.format(f"near duplicate of {{}} ({how} {{}} over {near.ngram}-{near.unit} shingles, "
                               "cluster of {})", pl.col("duplicate_of"), pl.col("similarity").round(3),
                               pl.col("_size"))
            groups.append((rej, keeper, sim, "near_duplicate", detail, size))
        for name in ("exact", "near"):
            if name in stats:
                stats["duplicates"] += stats[name]["duplicates"]
                stats["clusters"] += stats[name]["clusters"]
        return TableResult(kept=np.flatnonzero(kept), rejected=self._rejects(groups), stats=stats)

    def _scan(self) -> float:
        """The pass over the parts (see the module doc); returns the seconds spent normalising."""
        cfg, n = self.cfg, self.n
        if cfg.exact:
            self.h1, self.h2 = np.zeros(n, np.uint64), np.zeros(n, np.uint64)
            self.valid = np.zeros(n, dtype=bool)
        self.has = np.zeros(n, dtype=bool)
        keys = []
        files = []
        if cfg.near is not None:
            total = max(1, n * self.bands)
            self.pbits = max(0, int(np.ceil(np.log2(max(1, total / _PART_KEYS)))))
            files = [(open(self.spill / f"k{p:04d}", "ab"), open(self.spill / f"r{p:04d}", "ab"))
                     for p in range(1 << self.pbits)]
        norm_s = 0.0
        self.shingles = 0
        # small tables keep every row's signature and shingles from this pass (each up to
        # _CACHE_BYTES / 2), so verification re-reads nothing; larger ones re-read candidate rows
        bins = self.bands * self.rows if cfg.near is not None else 0
        self.sig_all = (np.empty((n, bins), dtype=np.uint32)      # rows with shingles filled
                        if cfg.near is not None and n * bins * 4 <= _CACHE_BYTES // 2 else None)
        sh_parts: list | None = [] if self.sig_all is not None else None
        sh_bytes = 0
        try:
            # each part's rows are hashed and shingled in slices on a few threads (polars and
            # numpy release the GIL), so one part is in memory at a time, as without threads
            for off, part in _ordered_map(self._scan_slice, self._slices(_workers()), _workers()):
                norm_s += part["norm_s"]
                sl = slice(off, off + part["m"])
                if cfg.exact:
                    self.h1[sl], self.h2[sl], self.valid[sl] = part["h1"], part["h2"], part["valid"]
                if part["key"] is not None:
                    keys.append(part["key"])
                if cfg.near is not None:
                    self.has[sl] = part["has"]
                    self.shingles += part["shingles"]
                    if sh_parts is not None and part.get("sh") is not None:
                        sh_bytes += part["sh"][1].hashes.nbytes
                        if sh_bytes > _CACHE_BYTES // 2:
                            sh_parts = None
                        else:
                            sh_parts.append(part["sh"])
                    if part["bk"] is not None:
                        self._spill(files, part["bk"], part["rows"])
                del part
        finally:
            for a, b in files:
                a.close()
                b.close()
        self.sh_parts = sh_parts
        if sh_parts is None:          # shingles over budget: the signatures alone do not help
            self.sig_all = None
        self.rank = R.concat([k.to_frame() for k in keys]).to_series() if keys else None
        return norm_s

    def _slices(self, k: int):
        """``(first row number, frame)`` of every part's rows cut into ``k`` slices, part by part."""
        for off, frame in self.table.iter_parts(self._columns()):
            step = max(1, -(-frame.height // k))
            for s in range(0, max(frame.height, 1), step):
                yield off + s, frame.slice(s, step)

    def _scan_slice(self, item: tuple[int, pl.DataFrame]) -> tuple[int, dict[str, Any]]:
        """Exact hashes, keep-policy key and OPH band keys of a slice of rows (on a worker thread)."""
        cfg = self.cfg
        off, frame = item
        t = time.time()
        norm = self._norm(frame)
        out: dict[str, Any] = {"norm_s": time.time() - t, "m": len(norm), "bk": None}
        if cfg.exact:
            out["h1"] = norm.hash(seed=0x51).to_numpy()
            out["h2"] = norm.hash(seed=0xA7).to_numpy()
            out["valid"] = norm.is_not_null().to_numpy()
        out["key"] = keep_key(frame, cfg.keep, cfg.columns, cfg.score_column, self.step.name)
        if cfg.near is not None:
            sh = self._shingles(norm)
            has = out["has"] = sh.counts > 0
            out["shingles"] = int(sh.offsets[-1])
            idx = np.flatnonzero(has)
            if len(idx):
                sub = sh if len(idx) == len(norm) else sh.subset(idx)
                rows = idx.astype(np.int64) + off
                whole = self.sig_all is not None and len(idx) == len(norm)
                sig = oph_signatures(sub, self.bands * self.rows,
                                     out=self.sig_all[off:off + len(norm)] if whole else None)
                if self.sig_all is not None and not whole:
                    self.sig_all[rows] = sig
                out["bk"] = band_keys(sig, self.bands, self.rows).ravel()
                out["rows"] = np.repeat(rows, self.bands)
                out["sh"] = (rows, sub)
        return off, out

    def _spill(self, files, keys: np.ndarray, rows: np.ndarray) -> None:
        if self.pbits == 0:
            keys.tofile(files[0][0])
            rows.tofile(files[0][1])
            return
        pid = (keys >> np.uint64(64 - self.pbits)).astype(np.int64)
        order = np.argsort(pid, kind="stable")
        cuts = np.searchsorted(pid[order], np.arange(len(files) + 1))
        keys, rows = keys[order], rows[order]
        for p, (a, b) in enumerate(files):
            if cuts[p + 1] > cuts[p]:
                keys[cuts[p]:cuts[p + 1]].tofile(a)
                rows[cuts[p]:cuts[p + 1]].tofile(b)

    def _rank_of(self, rows: np.ndarray) -> pl.Series | None:
        return None if self.rank is None else self.rank.gather(pl.Series(rows, dtype=pl.Int64))

    def _cluster(self, nodes: np.ndarray, labels: np.ndarray | pl.Series):
        """Keeper of each clustered row (``nodes``, ascending), the rejected rows, their keeper
        and cluster size."""
        keeper = keepers_by(labels, self.cfg.keep, self._rank_of(nodes), index=nodes)
        dup = keeper != nodes
        _, inv, cnt = np.unique(keeper, return_inverse=True, return_counts=True)
        return nodes[dup], keeper[dup], cnt[inv][dup]

    # ------------------------------------------------------------------ exact
    def _exact(self):
        # rows whose first hash repeats (one argsort of 8-byte keys, no hash table over every
        # row), then the full 128-bit key decides among those few
        order = np.argsort(self.h1, kind="stable")
        s = self.h1[order]
        same = s[1:] == s[:-1]
        del s
        run = np.zeros(self.n, dtype=bool)
        run[1:] |= same
        run[:-1] |= same
        del same
        idx = np.sort(order[run])
        del order, run
        idx = idx[self.valid[idx]]
        f = pl.DataFrame({"a": self.h1[idx], "b": self.h2[idx], "_i": idx})
        del self.h1, self.h2
        f = f.filter(f.select("a", "b").is_duplicated())
        f = f.with_columns(pl.col("_i").min().over("a", "b").alias("_c"))
        nodes = f["_i"].to_numpy()
        rej, keeper, size = self._cluster(nodes, f["_c"])
        st = {"duplicates": int(len(rej)), "clusters": int(f["_c"].n_unique())}
        return rej, keeper, size, st

    # ------------------------------------------------------------------ near
    def _candidates(self, sub_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Candidate pairs (row numbers, i < j) of the rows ``sub_rows`` (ascending), as
        :func:`.minhash.bucket_pairs` over their band keys gives them."""
        n_sub = len(sub_rows)
        if n_sub < 2:
            e = np.zeros(0, np.int64)
            return e, e
        bits = key_bits(n_sub)
        found = []
        # rank of each row among sub_rows (-1: not one of them): one gather per key, not a search
        at_of = np.full(self.n, -1, dtype=np.int32 if self.n < (1 << 31) else np.int64)
        at_of[sub_rows] = np.arange(n_sub)
        for p in range(1 << self.pbits):
            keys = np.fromfile(self.spill / f"k{p:04d}", dtype=np.uint64)
            at = at_of[np.fromfile(self.spill / f"r{p:04d}", dtype=np.int64)]
            ok = at >= 0
            comp = (keys[ok] >> bits) << bits
            comp |= at[ok].astype(np.uint64)
            del keys, at, ok
            comp = pl.Series(comp).sort().to_numpy()     # polars sorts on every core
            found.append(bucket_codes(comp, bits, n_sub, self.cfg.near.max_bucket_pairs))
            del comp
        codes = np.unique(np.concatenate(found)) if found else np.zeros(0, np.uint64)
        li, ri = split_codes(codes, n_sub)
        return sub_rows[li], sub_rows[ri]

    def _near(self, kept: np.ndarray):
        near = self.cfg.near
        sub_rows = np.flatnonzero(kept & self.has)
        left, right = self._candidates(sub_rows)
        del sub_rows
        reader = _Rows(self, np.union1d(left, right))
        if near.verify == "jaccard" and len(left):
            est = reader.scores(left, right, "signature")
            ok = est >= near.threshold - OPH_MARGIN
            left, right = left[ok], right[ok]
        ncand = len(left)
        how = "jaccard" if near.verify == "jaccard" else "signature"
        sim = reader.scores(left, right, how)
        if near.verify != "none":
            ok = sim >= near.threshold - 1e-12
            left, right, sim = left[ok], right[ok], sim[ok]
        nodes = np.union1d(left, right)
        comp = connected_components(len(nodes), np.searchsorted(nodes, left), np.searchsorted(nodes, right))
        rej, keeper, size = self._cluster(nodes, comp)      # rows among the reader's (candidates)
        sim = _pair_scores(left, right, sim, rej, keeper, lambda a, b: reader.scores(a, b, how))
        st = {"duplicates": int(len(rej)), "clusters": int(np.unique(comp).size),
              "candidate_pairs": int(ncand), "verified_pairs": int(len(left)),
              "bands": self.bands, "rows": self.rows, "backend": "oph", "verify": near.verify}
        if len(rej):
            hist = np.histogram(sim, bins=[0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0000001])[0]
            st["similarity_histogram"] = {f"{lo}-{hi}": int(c) for lo, hi, c in
                                          zip(["0", "0.5", "0.6", "0.7", "0.8", "0.9"],
                                              ["0.5", "0.6", "0.7", "0.8", "0.9", "1.0"], hist)}
        return rej, keeper, size, sim, st

    # ------------------------------------------------------------------ rejects
    def _rejects(self, groups) -> list[tuple[np.ndarray, pl.DataFrame]]:
        """The reject columns of each stage (as ``split_rows`` and ``_point_to_survivors`` give
        them), with the ids of the rejected rows and their keepers read from the parts."""
        from .step import _point_to_survivors
        need = np.unique(np.concatenate([np.concatenate([g[0], g[1]]) for g in groups]
                                        or [np.zeros(0, np.int64)]))
        ids = [f[R.ID].cast(pl.String) for f, _, _ in self.table.iter_take(need, [R.ID])]
        ids = pl.concat(ids) if ids else pl.Series(R.ID, [], dtype=pl.String)
        frames = []
        for rej, keeper, sim, reason, detail, size in groups:
            f = pl.DataFrame({
                R.ID: ids.gather(pl.Series(np.searchsorted(need, rej), dtype=pl.Int64)),
                "duplicate_of": ids.gather(pl.Series(np.searchsorted(need, keeper), dtype=pl.Int64)),
                "similarity": pl.Series(sim, dtype=pl.Float64).round(4),
                "_size": pl.Series(size, dtype=pl.UInt32)})
            f = R.reject(f, self.step.name, reason, detail).drop("_size")
            frames.append((rej, f))
        if sum(1 for _, f in frames if f.height) > 1:
            both = _point_to_survivors(pl.concat([f for _, f in frames]))
            cut = frames[0][1].height
            frames = [(frames[0][0], both.slice(0, cut)), (frames[1][0], both.slice(cut))]
        return [(pos, f.drop(R.ID)) for pos, f in frames if f.height]


class _Rows:
    """Shingles and OPH signatures of the rows ``need`` (ascending row numbers), recomputed from
    the parts on demand and kept in an LRU by part (at most :data:`_CACHE_BYTES`)."""

    def __init__(self, run: StreamedDedup, need: np.ndarray) -> None:
        self.run, self.need = run, np.asarray(need, dtype=np.int64)
        self.cache: OrderedDict[int, tuple[np.ndarray, Shingles, np.ndarray]] = OrderedDict()
        self.bytes = 0
        # all candidate rows at once when they fit the cache (one read of each part, pairs
        # scored from memory); otherwise part by part (below)
        per_row = 8 * run.shingles / max(1, int(run.has.sum())) + 4 * run.bands * run.rows + 16
        self.all = (None if run.sh_parts is not None or len(self.need) * per_row > _ALL_BYTES
                    else (self.need, *self._read(self.need)))

    def _read(self, rows: np.ndarray) -> tuple[Shingles, np.ndarray]:
        """Shingles and OPH signatures of ``rows`` (ascending), in one pass over the parts."""
        run = self.run
        hashes, counts, sigs = [], [], []
        for frame, _, _ in run.table.iter_take(rows, run.cfg.columns):
            sh = run._shingles(run._norm(frame))
            hashes.append(sh.hashes)
            counts.append(sh.counts)
            sigs.append(oph_signatures(sh, run.bands * run.rows))
        cnt = np.concatenate(counts) if counts else np.zeros(0, np.int64)
        offs = np.zeros(len(cnt) + 1, dtype=np.int64)
        np.cumsum(cnt, out=offs[1:])
        sig = np.concatenate(sigs) if sigs else np.zeros((0, run.bands * run.rows), np.uint32)
        return Shingles(np.concatenate(hashes) if hashes else np.zeros(0, np.uint64), offs), sig

    def _part(self, p: int):
        if p in self.cache:
            self.cache.move_to_end(p)
            return self.cache[p]
        run = self.run
        off, end = run.offsets[p], run.offsets[p + 1]
        pos = self.need[np.searchsorted(self.need, off):np.searchsorted(self.need, end)]
        frame = run.table.read_segment(run.table.segments[p], run.cfg.columns)
        frame = frame[pl.Series(pos - off, dtype=pl.UInt32)]
        sh = run._shingles(run._norm(frame))
        sig = oph_signatures(sh, run.bands * run.rows)
        item = (pos, sh, sig)
        size = sh.hashes.nbytes + sig.nbytes
        while self.cache and self.bytes + size > _CACHE_BYTES:
            _, (_, s, g) = self.cache.popitem(last=False)
            self.bytes -= s.hashes.nbytes + g.nbytes
        self.cache[p] = item
        self.bytes += size
        return item

    def _sparse(self, a: np.ndarray, b: np.ndarray, how: str) -> np.ndarray:
        """Scores of pairs from (part, part) blocks too small to load their parts' candidate
        rows for (chance LSH collisions between far-apart rows): their rows are read in one pass
        over the parts, at most :data:`_SPARSE_ROWS` rows at a time."""
        out = np.zeros(len(a), dtype=np.float64)
        step = max(1, _SPARSE_ROWS // 2)
        for s0 in range(0, len(a), step):
            ca, cb = a[s0:s0 + step], b[s0:s0 + step]
            rows = np.union1d(ca, cb)
            sh, sig = self._read(rows)
            ia, ib = np.searchsorted(rows, ca), np.searchsorted(rows, cb)
            out[s0:s0 + step] = _agree(sig, ia, ib) if how == "signature" else true_jaccard(sh, ia, ib)
        return out

    def scores(self, left: np.ndarray, right: np.ndarray, how: str) -> np.ndarray:
        """Similarity of each pair of rows: ``jaccard`` (true Jaccard of the shingle sets) or
        ``signature`` (share of equal OPH bins); both symmetric, so pairs are taken as
        (lower, higher) and done in blocks of (part, part); blocks of fewer than
        :data:`_DENSE` pairs are done together (:meth:`_sparse`)."""
        out = np.zeros(len(left), dtype=np.float64)
        if not len(left):
            return out
        run = self.run
        if run.sh_parts is not None:          # everything kept from the scan
            if how == "signature":
                return _agree(run.sig_all, left, right)
            rows = np.union1d(left, right)
            return true_jaccard(_gather_shingles(run.sh_parts, rows),
                                np.searchsorted(rows, left), np.searchsorted(rows, right))
        if self.all is not None:
            rows, sh, sig = self.all
            ia, ib = np.searchsorted(rows, left), np.searchsorted(rows, right)
            return _agree(sig, ia, ib) if how == "signature" else true_jaccard(sh, ia, ib)
        a, b = np.minimum(left, right), np.maximum(left, right)
        pa = np.searchsorted(self.run.offsets, a, side="right") - 1
        pb = np.searchsorted(self.run.offsets, b, side="right") - 1
        order = np.lexsort((pb, pa))
        key = pa[order] * len(self.run.offsets) + pb[order]
        cuts = np.flatnonzero(np.diff(key)) + 1
        blocks = np.split(order, cuts)
        sparse = [blk for blk in blocks if len(blk) < _DENSE]
        if sparse:
            sp = np.sort(np.concatenate(sparse))
            out[sp] = self._sparse(a[sp], b[sp], how)
        for blk in blocks:
            if len(blk) < _DENSE:
                continue
            p, q = int(pa[blk[0]]), int(pb[blk[0]])
            pos_p, sh_p, sig_p = self._part(p)
            ia = np.searchsorted(pos_p, a[blk])
            if q == p:
                pos_q, sh_q, sig_q, ib = pos_p, sh_p, sig_p, np.searchsorted(pos_p, b[blk])
            else:
                pos_q, sh_q, sig_q = self._part(q)
                ib = np.searchsorted(pos_q, b[blk])
            if how == "signature":
                out[blk] = _agree(sig_p, ia, ib, sig_q)
            elif q == p:
                out[blk] = true_jaccard(sh_p, ia, ib)
            else:
                both = Shingles(np.concatenate([sh_p.hashes, sh_q.hashes]),
                                np.concatenate([sh_p.offsets, sh_q.offsets[1:] + sh_p.offsets[-1]]))
                out[blk] = true_jaccard(both, ia, ib + len(pos_p))
        return out


def _workers() -> int:
    """Threads for the pass over the parts: the usable cores, at most 4."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:        # not Linux
        n = os.cpu_count() or 1
    return max(1, min(4, n))


def _ordered_map(fn, items, workers: int):
    """``fn`` over ``items`` (an iterable, consumed as results are taken) on ``workers``
    threads, results yielded in order, at most ``workers`` pending besides the one being taken."""
    if workers <= 1:
        for it in items:
            yield fn(it)
        return
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(workers, thread_name_prefix="curate-dedup") as pool:
        pending: deque = deque()
        nxt = iter(items)
        try:
            for it in nxt:
                pending.append(pool.submit(fn, it))
                if len(pending) >= workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()


def _pair_scores(left: np.ndarray, right: np.ndarray, sim: np.ndarray, a: np.ndarray, b: np.ndarray,
                 score) -> np.ndarray:
    """Scores of the pairs ``(a, b)``: looked up among the scored pairs ``(left, right) → sim``
    (a rejected row and its keeper are most often a verified pair), ``score(a', b')`` for the rest."""
    out = np.empty(len(a), dtype=np.float64)
    if not len(a):
        return out
    n = np.uint64(max(int(left.max(initial=0)), int(right.max(initial=0)), int(a.max()), int(b.max())) + 1)
    known = np.minimum(left, right).astype(np.uint64) * n + np.maximum(left, right).astype(np.uint64)
    order = np.argsort(known)
    known = known[order]
    want = np.minimum(a, b).astype(np.uint64) * n + np.maximum(a, b).astype(np.uint64)
    at = np.minimum(np.searchsorted(known, want), max(len(known) - 1, 0))
    hit = (known[at] == want) if len(known) else np.zeros(len(a), dtype=bool)
    out[hit] = sim[order[at[hit]]]
    miss = np.flatnonzero(~hit)
    if len(miss):
        out[miss] = score(a[miss], b[miss])
    return out


def _agree(sig: np.ndarray, ia: np.ndarray, ib: np.ndarray, sig_b: np.ndarray | None = None) -> np.ndarray:
    """Share of equal OPH bins of the signature pairs ``(sig[ia], sig_b[ib])``, in blocks."""
    sig_b = sig if sig_b is None else sig_b
    out = np.empty(len(ia), dtype=np.float64)
    k = sig.shape[1]
    for s0 in range(0, len(ia), 8192):
        out[s0:s0 + 8192] = np.count_nonzero(sig[ia[s0:s0 + 8192]] == sig_b[ib[s0:s0 + 8192]], axis=1) / k
    return out


def _gather_shingles(parts: list, rows: np.ndarray) -> Shingles:
    """The shingles of ``rows`` (ascending, all with shingles) from the scan's per-part pieces
    ``(row numbers, Shingles)``."""
    pieces = []
    for prow, psh in parts:
        lo, hi = np.searchsorted(rows, [prow[0], prow[-1] + 1]) if len(prow) else (0, 0)
        if hi > lo:
            pieces.append(psh.subset(np.searchsorted(prow, rows[lo:hi])))
    counts = np.concatenate([p.counts for p in pieces]) if pieces else np.zeros(0, np.int64)
    offs = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offs[1:])
    return Shingles(np.concatenate([p.hashes for p in pieces]) if pieces else np.zeros(0, np.uint64), offs)
