"""Near-duplicate detection with MinHash-LSH, vectorised end to end.

1. **Shingles** — polars tokenises and hashes every word (or character) in Rust; numpy combines
   ``n`` consecutive token hashes into one uint64 shingle hash per position (a flat array plus
   per-document offsets; no Python per row, passes run block by block in cache). Documents
   shorter than ``n`` get one shingle.
2. **Signatures** — default ``backend: oph`` (``auto``): one-permutation hashing, one hash per
   shingle instead of ``bands × rows``: the shingle hash picks a bin and each bin keeps its minimum
   (``np.minimum.at``); empty bins are densified by rotation (borrow the next non-empty bin's value
   plus a per-distance offset, Shrivastava & Li 2014), so bin collisions keep probability =
   Jaccard. Bands take strided bins (``b, b + bands, ...``) so one borrowed value rarely fills a
   band, and the layout (when unset) is the recall-first one of :func:`recall_bands`, because
   verification removes the extra candidates. Classic MinHash stays available: rensa
   (``backend: rensa``, compiled, its LSH pre-flags rows sharing a band) or numpy multiply-shift
   hashes (``backend: numpy``).
3. **LSH** — band keys (packed values, odd multipliers, one splitmix) carry the document index in
   their low bits, one ``np.sort`` groups the buckets and equal neighbours become candidate
   pairs; no Python dicts.
4. **Verification** (optional) — OPH candidates whose signature estimate is far below the
   threshold are dropped first; the rest are kept if their true Jaccard (set sizes and
   intersections counted with hash-tagged ``is_first_distinct``, no joins) or signature-estimated
   Jaccard reaches ``threshold``.
5. **Clusters** — connected components of the verified pairs (vectorised union-find), so
   clusters are transitive; the keep policy then picks one row per cluster.

Memory: shingle hashes (8 bytes each) and uint32 signatures (``bands × rows`` per document for
OPH, candidate rows only for rensa); 1M short documents stay well under 4 GiB.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

_MIX1 = np.uint64(0x9E3779B97F4A7C15)
_MIX2 = np.uint64(0xBF58476D1CE4E5B9)
_MIX3 = np.uint64(0x94D049BB133111EB)


class NearConfig(BaseModel):
    """MinHash-LSH near-duplicate options (``dedup: {near: {...}}``)."""

    model_config = ConfigDict(extra="forbid")
    method: Literal["minhash"] = Field(default="minhash", description="Only MinHash-LSH for now.")
    threshold: float = Field(default=0.8, ge=0.0, le=1.0,
                             description="Jaccard similarity of shingle sets at or above which two rows "
                                         "are duplicates; also picks bands/rows when they are unset.")
    ngram: int = Field(default=5, ge=1, le=64, description="Shingle size (words or characters).")
    unit: Literal["word", "char"] = Field(default="word", description="Shingle words or characters.")
    num_perm: int = Field(default=128, ge=8, le=1024,
                          description="Upper bound on permutations; the signature has bands × rows.")
    bands: int | None = Field(default=None, ge=1, le=1024, description="LSH bands (default: derived).")
    rows: int | None = Field(default=None, ge=1, le=1024, description="Rows per band (default: derived).")
    verify: Literal["jaccard", "signature", "none"] = Field(
        default="jaccard", description="Check LSH candidates: true Jaccard of shingle sets, the "
        "signature estimate, or accept every candidate (fastest, least precise).")
    backend: Literal["auto", "oph", "rensa", "numpy"] = Field(
        default="auto", description="Signature engine: `oph` (one-permutation hashing with "
        "densification: one hash per shingle; what `auto` picks), classic MinHash with `bands × rows` "
        "permutations computed by rensa (compiled, if installed) or numpy.")
    max_bucket_pairs: int = Field(default=64, ge=1, le=100_000,
                                  description="Within one LSH bucket, pair each row with up to this "
                                              "many following rows (bounds work on huge buckets).")

    @model_validator(mode="after")
    def _check_bands(self) -> "NearConfig":
        b, r = self.bands, self.rows
        if b is not None and r is not None and b * r > self.num_perm:
            raise ValueError(f"bands × rows = {b * r} exceeds num_perm = {self.num_perm}")
        return self

    def layout(self, oph: bool = False) -> tuple[int, int]:
        """(bands, rows): given, or derived from the threshold. Classic MinHash: like datasketch's
        optimal_param. ``oph`` (one-permutation hashing with true-Jaccard verification): the
        recall-first layout of :func:`recall_bands`, since verification removes the extra
        candidates and OPH bins are free."""
        b, r = self.bands, self.rows
        if oph and b is None and r is None and self.verify == "jaccard":
            return recall_bands(self.threshold, self.num_perm)
        if b is not None and r is not None:
            return b, r
        if b is not None:
            return b, max(1, self.num_perm // b)
        if r is not None:
            return max(1, self.num_perm // r), r
        return optimal_bands(self.threshold, self.num_perm)


def optimal_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """Bands/rows minimising false-positive + false-negative area of the LSH S-curve."""
    s = np.linspace(0.0, 1.0, 1001)
    best, best_err = (1, num_perm), np.inf
    for b in range(1, num_perm + 1):
        r = num_perm // b
        p = 1.0 - (1.0 - s ** r) ** b
        fp = np.trapezoid(np.where(s < threshold, p, 0.0), s)
        fn = np.trapezoid(np.where(s >= threshold, 1.0 - p, 0.0), s)
        if fp + fn < best_err:
            best, best_err = (b, r), fp + fn
    return best


def recall_bands(threshold: float, num_perm: int, miss: float = 1e-4) -> tuple[int, int]:
    """The most rows per band (fewest candidates) whose S-curve still misses a pair at exactly
    ``threshold`` with probability ≤ ``miss``: ``(1 - t^r)^b ≤ miss`` with ``b = num_perm // r``.
    The margin covers OPH's correlated bins (bands share a document's few non-empty bins)."""
    best = (num_perm, 1)
    for r in range(1, num_perm + 1):
        b = num_perm // r
        if b < 1 or (1.0 - threshold ** r) ** b > miss:
            break
        best = (b, r)
    return best


# ---------------------------------------------------------------------------------- shingles
@dataclass
class Shingles:
    """Flat uint64 shingle hashes; document ``i`` owns ``hashes[offsets[i]:offsets[i+1]]``."""

    hashes: np.ndarray
    offsets: np.ndarray

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    def subset(self, docs: np.ndarray) -> "Shingles":
        """The shingles of ``docs`` (in that order), gathered without a Python loop."""
        counts = self.counts[docs]
        offs = np.zeros(len(docs) + 1, dtype=np.int64)
        np.cumsum(counts, out=offs[1:])
        starts = np.repeat(self.offsets[docs] - offs[:-1], counts)
        return Shingles(self.hashes[starts + np.arange(offs[-1])], offs)


_BLOCK = 1 << 15                    # elements per cache-sized block of element-wise passes


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, in place on a uint64 array (large arrays in cache-sized blocks, so
    the eight passes run from cache, not memory)."""
    if x.ndim != 1 or x.size <= 2 * _BLOCK:
        return _mix_block(x)
    for s in range(0, x.size, _BLOCK):
        _mix_block(x[s:s + _BLOCK])
    return x


def _mix_block(x: np.ndarray) -> np.ndarray:
    t = x >> np.uint64(30)
    x ^= t
    x *= _MIX2
    np.right_shift(x, np.uint64(27), out=t)
    x ^= t
    x *= _MIX3
    np.right_shift(x, np.uint64(31), out=t)
    x ^= t
    return x


def _combine(tok: np.ndarray, counts: np.ndarray, n: int) -> Shingles:
    """Roll ``n`` consecutive token hashes of each document into shingle hashes (documents
    with fewer than ``n`` tokens get one shingle of all their tokens).

    Works on contiguous slices of the flat token array (no index gathers): every position gets
    the hash of the ``n`` tokens starting there, then positions whose window crosses a
    document end are masked out."""
    ndocs, m = len(counts), len(tok)
    ends = np.cumsum(counts)
    short = (counts > 0) & (counts < n)
    per_doc = np.where(counts >= n, counts - n + 1, short.astype(np.int64))
    offs = np.zeros(ndocs + 1, dtype=np.int64)
    np.cumsum(per_doc, out=offs[1:])
    if m == 0:
        return Shingles(np.zeros(0, np.uint64), offs)
    span = max(m - n + 1, 0)
    sh = tok[:span].copy()
    for s in range(0, span, _BLOCK):       # rolled block by block, in cache
        blk = sh[s:s + _BLOCK]
        e = s + len(blk)
        for j in range(1, n):
            blk *= _MIX1
            blk += tok[s + j:e + j]
    valid = np.ones(span, dtype=bool)
    # the last n-1 start positions of every document cross into the next one
    cut = (ends[:, None] - np.arange(1, n)[None, :]).ravel()
    valid[cut[(cut >= 0) & (cut < span)]] = False
    if not short.any():
        return Shingles(_mix(sh[valid]), offs)
    # documents shorter than n: one shingle of all their tokens, spliced in at their offset
    starts = ends - counts
    out = np.empty(offs[-1], dtype=np.uint64)
    long_pos = np.repeat(counts >= n, per_doc)
    out[long_pos] = sh[valid]
    sd = np.flatnonzero(short)
    h = tok[starts[sd]].copy()
    for j in range(1, n):
        more = counts[sd] > j
        h[more] = h[more] * _MIX1 + tok[starts[sd][more] + j]
    out[offs[sd]] = h
    return Shingles(_mix(out), offs)


def shingle(texts: pl.Series, ngram: int, unit: Literal["word", "char"] = "word",
            seed: int = 0, batch: int = 100_000, single_spaced: bool = False,
            prepare: Callable[[pl.Series], pl.Series] | None = None) -> Shingles:
    """Shingle hashes of ``texts`` (null or empty = no shingles), ``batch`` rows at a time.

    ``prepare``: normalisation applied per batch (so no normalised copy of the whole column
    is held). ``single_spaced``: the prepared texts are stripped with single spaces between
    words (``collapse_whitespace``), so a plain split replaces the regex tokeniser."""
    parts_h, parts_c = [], []
    for start in range(0, max(len(texts), 1), batch):
        chunk = texts.slice(start, batch)
        if prepare is not None:
            chunk = prepare(chunk)
        if unit == "word":
            words = (pl.col("t").str.split(" ") if single_spaced else pl.col("t").str.extract_all(r"\S+"))
            lists = pl.DataFrame({"t": chunk}).select(
                words.list.eval(pl.element().hash(seed)).alias("t"))["t"]
            counts = lists.list.len().fill_null(0).to_numpy().astype(np.int64)
            h = lists.explode().drop_nulls().to_numpy()   # null/empty lists explode to a null
            if single_spaced:                     # "" splits into one empty token: drop it
                empty = (chunk.str.len_bytes().fill_null(0) == 0).to_numpy() & (counts > 0)
                if empty.any():
                    h = h[~np.repeat(empty, counts)]
                    counts[empty] = 0
        else:
            filled = chunk.fill_null("")
            counts = filled.str.len_chars().to_numpy().astype(np.int64)
            cps = np.frombuffer("".join(filled.to_list()).encode("utf-32-le"), dtype=np.uint32)
            h = _mix(cps.astype(np.uint64) + np.uint64(seed % (1 << 63)) * _MIX1)
        s = _combine(np.ascontiguousarray(h, dtype=np.uint64), counts, ngram)
        parts_h.append(s.hashes)
        parts_c.append(s.counts)
    counts = np.concatenate(parts_c) if parts_c else np.zeros(0, np.int64)
    offs = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offs[1:])
    return Shingles(np.concatenate(parts_h) if parts_h else np.zeros(0, np.uint64), offs)


# ---------------------------------------------------------------------------------- one permutation
_EMPTY = np.uint32(0xFFFFFFFF)
OPH_MARGIN = 0.3                    # candidates with an OPH estimate below threshold - this are dropped
_ROT = np.uint32(0x9E3779B1)        # rotation offset per bin of distance (odd, large)


def oph_signatures(sh: Shingles, num_bins: int, chunk: int = 1 << 13,
                   out: np.ndarray | None = None) -> np.ndarray:
    """One-permutation MinHash with rotation densification (Shrivastava & Li 2014), uint32
    ``docs × num_bins``: one hash per shingle instead of ``num_bins``.

    The top bits of each (already mixed, seeded) 64-bit shingle hash pick its bin
    (multiply-high, any ``num_bins``), the low 32 bits are its value, and each bin keeps the
    minimum (``np.minimum.at``). An empty bin borrows the value of the next non-empty bin to its
    right (circularly) plus ``distance × C``, so two documents' bins still collide with
    probability equal to their Jaccard similarity. Documents without shingles stay all-empty.

    Done in chunks of ``chunk`` documents held bins × documents, so densifying is one pass from
    the last bin to the first, each step a vector operation over the chunk's documents
    (``d[j] = v[j]`` if bin ``j`` is filled, else ``d[j+1] + C``); written into ``out``
    (docs × num_bins uint32) when given."""
    ndocs, k = len(sh.offsets) - 1, num_bins
    out = np.empty((ndocs, k), dtype=np.uint32) if out is None else out
    for d0 in range(0, ndocs, chunk):
        d1 = min(ndocs, d0 + chunk)
        m = d1 - d0
        s0, s1 = int(sh.offsets[d0]), int(sh.offsets[d1])
        h = sh.hashes[s0:s1]
        sig = np.full((k, m), _EMPTY, dtype=np.uint32)             # bins × documents
        if s1 > s0:
            at = (((h >> np.uint64(32)) * np.uint64(k)) >> np.uint64(32)).astype(np.int64)
            at *= m
            at += np.repeat(np.arange(m, dtype=np.int64), np.diff(sh.offsets[d0:d1 + 1]))
            np.minimum.at(sig.reshape(-1), at, np.minimum(h.astype(np.uint32), _EMPTY - np.uint32(1)))
            del at
        filled = sig != _EMPTY
        has = filled.any(axis=0)
        first = filled.argmax(axis=0)
        # bin k is bin 0 wrapped round: the first filled bin's value, f bins further on
        cur = sig[first, np.arange(m)] + first.astype(np.uint32) * _ROT
        for j in range(k - 1, -1, -1):
            cur += _ROT
            np.copyto(cur, sig[j], where=filled[j])
            sig[j] = cur
        block = out[d0:d1]
        for c0 in range(0, m, 512):        # transposed in cache-sized tiles (a strided copy of the
            block[c0:c0 + 512] = sig[:, c0:c0 + 512].T      # whole chunk is ~4× slower)
        block[~has] = _EMPTY
    return out


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """uint64 key per (document, band): band ``b`` is bins ``b, b + bands, b + 2·bands, ...``
    (strided, so a run of empty bins that borrowed from one neighbour rarely fills a whole band).
    The band's values are packed two per uint64, combined with random odd multipliers, salted
    with the band index and finished with one splitmix (a key collision only adds a candidate)."""
    n = sig.shape[0]
    mult = np.random.default_rng(0x5EED).integers(1, 1 << 62, rows, dtype=np.int64).astype(np.uint64)
    mult |= np.uint64(1)
    salt = np.arange(1, bands + 1, dtype=np.uint64) * _MIX1
    out = np.empty((n, bands), dtype=np.uint64)
    step = max(1, _BLOCK // bands)          # documents per cache-sized block
    tmp = np.empty((step, bands), dtype=np.uint64)
    for d0 in range(0, n, step):
        view = sig[d0:d0 + step, :bands * rows].reshape(-1, rows, bands)
        m = view.shape[0]
        key, t = out[d0:d0 + m], tmp[:m]
        key[:] = salt
        for c in range(0, rows, 2):
            np.copyto(t, view[:, c], casting="unsafe")
            if c + 1 < rows:
                t <<= np.uint64(32)
                t |= view[:, c + 1]
            t *= mult[c]
            key += t
        _mix_block(key)
    return out


def key_bits(n: int) -> np.uint64:
    """Low bits of a compound band key that carry the document index (``n`` documents)."""
    return np.uint64(max(1, int(n - 1).bit_length()))


def bucket_pairs(keys: np.ndarray, max_pairs: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs (i < j, unique) of documents sharing a band key (``keys``: docs × bands).

    Each key keeps its top ``64 - log2(docs)`` bits and carries the document index in the low
    bits, so one SIMD ``np.sort`` of plain uint64 groups the buckets (a truncated-key collision
    only adds a candidate, which verification removes); inside a bucket each row is paired with up
    to ``max_pairs`` following rows."""
    n, bands = keys.shape
    if n < 2:
        e = np.zeros(0, np.int64)
        return e, e
    bits = key_bits(n)
    comp = (keys >> bits) << bits
    comp |= np.arange(n, dtype=np.uint64)[:, None]
    return split_codes(bucket_codes(np.sort(comp.ravel()), bits, n, max_pairs), n)


def split_codes(codes: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(i, j)`` of pair codes ``i·n + j``, without self-pairs."""
    lo, hi2 = (codes // np.uint64(n)).astype(np.int64), (codes % np.uint64(n)).astype(np.int64)
    keep = lo != hi2
    return lo[keep], hi2[keep]


def bucket_codes(comp: np.ndarray, bits: np.uint64, n: int, max_pairs: int) -> np.ndarray:
    """Unique pair codes ``i·n + j`` (i ≤ j) from sorted compound keys (top bits: the bucket,
    low ``bits``: the document). Buckets never straddle a range of top bits, so the sorted keys
    may be cut by key range and each range done alone (:mod:`.streamed` does that)."""
    mask = (np.uint64(1) << bits) - np.uint64(1)
    hi = comp >> bits
    same = hi[1:] == hi[:-1]
    grouped = np.zeros(len(comp), dtype=bool)
    grouped[1:] |= same
    grouped[:-1] |= same
    comp, hi = comp[grouped], hi[grouped]
    ds = (comp & mask).astype(np.int64)
    found = []
    for d in range(1, max_pairs + 1):
        if d >= len(hi):
            break
        eq = hi[d:] == hi[:-d]
        if not eq.any():
            break
        i, j = ds[:-d][eq], ds[d:][eq]
        lo_, hi_ = np.minimum(i, j).astype(np.uint64), np.maximum(i, j).astype(np.uint64)
        found.append(lo_ * np.uint64(n) + hi_)
    if not found:
        return np.zeros(0, np.uint64)
    return np.unique(np.concatenate(found))


# ---------------------------------------------------------------------------------- signatures
def _perm_params(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, np.iinfo(np.int64).max, num_perm, dtype=np.int64).astype(np.uint64) | np.uint64(1)
    b = rng.integers(0, np.iinfo(np.int64).max, num_perm, dtype=np.int64).astype(np.uint64)
    return a, b


def signatures_numpy(sh: Shingles, num_perm: int, seed: int, block: int = 1 << 15,
                     workers: int | None = None) -> np.ndarray:
    """uint32 MinHash signatures (docs × num_perm) with multiply-shift hashing; threads over
    blocks of documents (numpy releases the GIL). Rows of empty documents are all 0xFFFFFFFF."""
    a, b = _perm_params(num_perm, seed)
    ndocs = len(sh.offsets) - 1
    sig = np.full((ndocs, num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
    counts = sh.counts
    # Cut the documents into blocks of ~`block` shingles.
    cuts = np.searchsorted(sh.offsets, np.arange(0, sh.offsets[-1] + block, block), side="left")
    cuts = np.unique(np.concatenate([[0], np.clip(cuts, 0, ndocs), [ndocs]]))

    def work(i0: int, i1: int) -> None:
        s0, s1 = sh.offsets[i0], sh.offsets[i1]
        if s1 == s0:
            return
        x = sh.hashes[s0:s1]
        v = x[:, None] * a[None, :]
        v += b[None, :]
        v >>= np.uint64(32)
        ne = counts[i0:i1] > 0
        starts = (sh.offsets[i0:i1] - s0)[ne]
        sig[i0:i1][ne] = np.minimum.reduceat(v, starts, axis=0).astype(np.uint32)

    spans = list(zip(cuts[:-1].tolist(), cuts[1:].tolist()))
    workers = workers or os.cpu_count() or 1
    if workers > 1 and len(spans) > 1:
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(workers) as ex:
            list(ex.map(lambda s: work(*s), spans))
    else:
        for s in spans:
            work(*s)
    return sig


def have_rensa() -> bool:
    try:
        import rensa
        return hasattr(rensa.RMinHash, "digest_matrix_from_flat_token_hashes")
    except ImportError:
        return False


def _rensa_matrix(sh: Shingles, num_perm: int, seed: int):
    import rensa
    return rensa.RMinHash.digest_matrix_from_flat_token_hashes(
        sh.hashes, sh.offsets.astype(np.uint64), num_perm, seed)


def rensa_candidates(sh: Shingles, bands: int, rows: int, seed: int) -> np.ndarray:
    """Rows (of ``sh``) sharing at least one LSH band with another row, via rensa's Rust LSH."""
    import rensa
    num_perm = bands * rows
    matrix = _rensa_matrix(sh, num_perm, seed)
    lsh = rensa.RMinHashLSH(0.5, num_perm, bands)
    flags = np.asarray(lsh.query_duplicate_flags_matrix_one_shot(matrix), dtype=bool)
    return np.flatnonzero(flags)


def signatures_rensa(sh: Shingles, num_perm: int, seed: int) -> np.ndarray:
    """uint32 signatures from rensa (copied out row by row, so use it on candidate rows only)."""
    if len(sh.offsets) <= 1:
        return np.zeros((0, num_perm), np.uint32)
    return np.asarray(_rensa_matrix(sh, num_perm, seed).to_rows(), dtype=np.uint32)


# ---------------------------------------------------------------------------------- LSH
def lsh_pairs(sig: np.ndarray, bands: int, rows: int, max_pairs: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs (i < j, unique) of rows sharing all ``rows`` values of some band."""
    n = sig.shape[0]
    found: list[np.ndarray] = []
    for bi in range(bands):
        band = sig[:, bi * rows:(bi + 1) * rows].astype(np.uint64)
        key = np.full(n, ((bi + 1) * 0x9E3779B97F4A7C15) % (1 << 64), dtype=np.uint64)
        for c in range(rows):
            key = _mix(key ^ band[:, c])
        order = np.argsort(key, kind="stable")
        ks = key[order]
        for d in range(1, max_pairs + 1):
            if d >= n:
                break
            eq = ks[d:] == ks[:-d]
            if not eq.any():
                break
            i, j = order[:-d][eq], order[d:][eq]
            lo, hi = np.minimum(i, j).astype(np.uint64), np.maximum(i, j).astype(np.uint64)
            found.append(lo * np.uint64(n) + hi)
    if not found:
        e = np.zeros(0, np.int64)
        return e, e
    codes = np.unique(np.concatenate(found))
    return (codes // np.uint64(n)).astype(np.int64), (codes % np.uint64(n)).astype(np.int64)


# ---------------------------------------------------------------------------------- similarity
def signature_similarity(sig: np.ndarray, left: np.ndarray, right: np.ndarray,
                         chunk: int = 1 << 16) -> np.ndarray:
    """Signature-estimated Jaccard of row pairs (share of equal min-hashes)."""
    out = np.empty(len(left), dtype=np.float64)
    for s in range(0, len(left), chunk):
        out[s:s + chunk] = (sig[left[s:s + chunk]] == sig[right[s:s + chunk]]).mean(axis=1)
    return out


def _gather(sh: Shingles, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions (into ``sh.hashes``) of the shingles of ``docs``, and the index in ``docs`` each
    belongs to."""
    counts = sh.counts[docs]
    total = int(counts.sum())
    owner = np.repeat(np.arange(len(docs), dtype=np.int64), counts)
    starts = np.zeros(len(docs), dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    pos = np.arange(total, dtype=np.int64) - np.repeat(starts - sh.offsets[docs], counts)
    return pos, owner


def true_jaccard(sh: Shingles, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Exact Jaccard of the shingle-hash *sets* of each (left, right) document pair, vectorised:
    every hash is tagged with its owner (document, then pair) by a splitmix of both, and polars'
    hash-based ``is_first_distinct`` counts set sizes and intersections (no joins, no Python sets)."""
    if len(left) == 0:
        return np.zeros(0)
    docs, inv = np.unique(np.concatenate([left, right]), return_inverse=True)
    pos, owner = _gather(sh, docs)
    h = sh.hashes[pos]
    tag = _mix(owner.astype(np.uint64) * _MIX1 + np.uint64(1))
    first = pl.Series(h ^ tag).is_first_distinct().to_numpy()
    size = np.bincount(owner[first], minlength=len(docs))          # |set| per document
    # the document's set, once per pair it is in: positions of its first-distinct hashes
    uniq = pos[first]
    uoffs = np.zeros(len(docs) + 1, dtype=np.int64)
    np.cumsum(size, out=uoffs[1:])
    u = Shingles(sh.hashes[uniq], uoffs)
    npairs = len(left)
    side = np.concatenate([inv[:npairs], inv[npairs:]])
    ppos, powner = _gather(u, side)
    pair = powner % npairs
    code = u.hashes[ppos] ^ _mix(pair.astype(np.uint64) * _MIX2 + np.uint64(7))
    dup = ~pl.Series(code).is_first_distinct().to_numpy()
    inter = np.bincount(pair[dup], minlength=npairs)
    na, nb = size[inv[:npairs]], size[inv[npairs:]]
    union = na + nb - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def true_jaccard_joins(sh: Shingles, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Exact Jaccard of the shingle-hash sets of each (left, right) document pair (polars joins)."""
    if len(left) == 0:
        return np.zeros(0)
    docs = np.unique(np.concatenate([left, right]))
    sub = sh.subset(docs)
    sets = pl.DataFrame({"doc": np.repeat(docs, sub.counts), "h": sub.hashes}).unique()
    sizes = sets.group_by("doc").len()
    pairs = pl.DataFrame({"p": np.arange(len(left)), "a": left, "b": right})
    inter = (pairs.join(sets, left_on="a", right_on="doc")
             .join(sets, left_on=["b", "h"], right_on=["doc", "h"])
             .group_by("p").len().rename({"len": "inter"}))
    res = (pairs.join(inter, on="p", how="left")
           .join(sizes.rename({"doc": "a", "len": "na"}), on="a", how="left")
           .join(sizes.rename({"doc": "b", "len": "nb"}), on="b", how="left")
           .sort("p")
           .select((pl.col("inter").fill_null(0) /
                    (pl.col("na").fill_null(0) + pl.col("nb").fill_null(0) - pl.col("inter").fill_null(0))
                    ).fill_nan(0.0).alias("j")))
    return res["j"].to_numpy()


# ---------------------------------------------------------------------------------- driver
@dataclass
class NearResult:
    """Verified duplicate pairs (document indices) and the objects needed to score other pairs."""

    left: np.ndarray
    right: np.ndarray
    similarity: np.ndarray
    candidates: int
    shingles: Shingles
    sig: np.ndarray | None          # signatures of `sig_rows`
    sig_rows: np.ndarray            # document index of each signature row
    backend: str
    layout: tuple[int, int] = (0, 0)  # (bands, rows) used

    def score(self, left: np.ndarray, right: np.ndarray, verify: str) -> np.ndarray:
        """Similarity of arbitrary pairs (e.g. member vs kept row) by the configured measure."""
        if verify == "jaccard" or self.sig is None:
            return true_jaccard(self.shingles, left, right)
        pos = np.full(len(self.shingles.offsets) - 1, -1, dtype=np.int64)
        pos[self.sig_rows] = np.arange(len(self.sig_rows))
        return signature_similarity(self.sig, pos[left], pos[right])


def near_pairs(texts: pl.Series, cfg: NearConfig, seed: int, single_spaced: bool = False,
               prepare: Callable[[pl.Series], pl.Series] | None = None) -> NearResult:
    """Find near-duplicate pairs among ``texts`` (normalised per batch by ``prepare``; see the
    module docstring)."""
    backend = cfg.backend
    if backend == "auto":
        backend = "oph"
    bands, rows = cfg.layout(oph=backend == "oph")
    num_perm = bands * rows
    sh = shingle(texts, cfg.ngram, cfg.unit, seed=seed, single_spaced=single_spaced, prepare=prepare)
    nonempty = np.flatnonzero(sh.counts > 0)
    if backend == "rensa" and not have_rensa():
        from curate.errors import CurateError
        raise CurateError("dedup near.backend: rensa needs `pip install 'rensa>=0.5'` "
                          "(or use backend: numpy)")
    sub = sh if len(nonempty) == len(sh.counts) else sh.subset(nonempty)
    if backend == "oph":
        rows_idx = nonempty
        full = oph_signatures(sub, num_perm)
        li, ri = bucket_pairs(band_keys(full, bands, rows), cfg.max_bucket_pairs)
        sig = full if cfg.verify != "jaccard" else None
        if cfg.verify == "jaccard" and len(li):
            # cheap pre-check before the exact one: drop candidates whose OPH estimate is far
            # below the threshold (more than ~4 standard deviations for short documents)
            est = signature_similarity(full, li, ri)
            ok = est >= cfg.threshold - OPH_MARGIN
            li, ri = li[ok], ri[ok]
        del full
    elif backend == "rensa":
        cand = rensa_candidates(sub, bands, rows, seed) if len(nonempty) > 1 else np.zeros(0, np.int64)
        rows_idx = nonempty[cand]
        sig = signatures_rensa(sub.subset(cand), num_perm, seed)
    else:
        rows_idx = nonempty
        sig = signatures_numpy(sub, num_perm, seed)
    if backend != "oph":
        li, ri = lsh_pairs(sig, bands, rows, cfg.max_bucket_pairs)
    left, right = rows_idx[li], rows_idx[ri]
    ncand = len(left)
    if cfg.verify == "jaccard":
        sim = true_jaccard(sh, left, right)
    else:
        sim = signature_similarity(sig, li, ri)
    if cfg.verify != "none":
        ok = sim >= cfg.threshold - 1e-12
        left, right, sim = left[ok], right[ok], sim[ok]
    return NearResult(left, right, sim, ncand, sh, sig, rows_idx, backend, (bands, rows))
