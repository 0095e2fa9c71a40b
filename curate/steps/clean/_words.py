r"""``\w+`` word runs per row, found over the Arrow byte buffer with numpy.

The regex engine's cost per match dominated the word-based quality rules (counting ``\w+`` in
2.6 MB of SMS/dialogue text took ~35 ms of CPU; this byte scan takes a few). ASCII bytes are
classified by comparison (``\w`` is ``[A-Za-z0-9_]`` there); each distinct non-ASCII character is
classified once by polars' own regex (``^\w$``), so word runs equal ``str.extract_all(r"\w+")``
on every row, lengths in characters.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

_U64 = np.uint64
_MIX1, _MIX2 = _U64(0xBF58476D1CE4E5B9), _U64(0x94D049BB133111EB)      # splitmix64 finaliser
_LEN = _U64(0x9E3779B97F4A7C15)
#: the low ``k`` bytes of a little-endian u64, for k = 0 … 8
_KEEP = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], dtype=_U64)


@dataclass(frozen=True)
class Spans:
    """Word runs of a string column, in row order: byte ``start``/``stop`` of each word, its
    ``length`` in characters and its ``row``; ``data`` is the column's UTF-8 bytes."""

    data: np.ndarray
    row: np.ndarray
    start: np.ndarray
    stop: np.ndarray
    length: np.ndarray
    n_rows: int

    def counts(self) -> np.ndarray:
        """Words per row."""
        return np.bincount(self.row, minlength=self.n_rows).astype(np.int64)

    def chars(self) -> np.ndarray:
        """Characters inside words per row."""
        return np.bincount(self.row, weights=self.length, minlength=self.n_rows).round().astype(np.int64)

    def hashes(self) -> np.ndarray:
        """A 64-bit hash of each word's bytes: equal words get equal hashes (splitmix64 chained
        over 8-byte chunks, seeded with the byte length)."""
        return hash_spans(self.data, self.start, self.stop - self.start)


def _buffers(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """UTF-8 bytes and ``n + 1`` offsets (from 0) of a string column, nulls as ``""``."""
    arr = texts.fill_null("").rechunk().to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type != pa.large_string():
        arr = arr.cast(pa.large_string())
    _, off_buf, data_buf = arr.buffers()
    off = np.frombuffer(off_buf, dtype=np.int64)[arr.offset: arr.offset + len(arr) + 1]
    if data_buf is None or off[-1] == off[0]:
        return np.zeros(0, dtype=np.uint8), np.zeros(len(arr) + 1, dtype=np.int64)
    return np.frombuffer(data_buf, dtype=np.uint8)[off[0]: off[-1]], off - off[0]


def _is_word(data: np.ndarray) -> np.ndarray:
    """Per byte: does it belong to a ``\\w`` character?"""
    low = data | 0x20                      # folds A-Z onto a-z; no other byte lands in a-z
    w = ((low >= 0x61) & (low <= 0x7A)) | ((data >= 0x30) & (data <= 0x39)) | (data == 0x5F)
    return _non_ascii(data, w, r"\w")


def _non_ascii(data: np.ndarray, flags: np.ndarray, cls: str) -> np.ndarray:
    """``flags`` (set for the ASCII bytes by the caller) completed for the bytes of non-ASCII
    characters: each distinct character is tested once against the one-character regex class
    ``cls`` with polars, and all bytes of a character get its answer."""
    lead = np.flatnonzero(data >= 0xC0)    # first byte of each non-ASCII character
    if not len(lead):
        return flags
    pad = np.concatenate((data, np.zeros(3, dtype=np.uint8)))
    b0 = pad[lead].astype(np.uint32)
    k = 2 + (b0 >= 0xE0) + (b0 >= 0xF0)    # bytes in the character
    cp = b0 & np.where(k == 2, 0x1F, np.where(k == 3, 0x0F, 0x07))
    for d in (1, 2, 3):
        more = k > d
        cp = np.where(more, (cp << 6) | (pad[lead + d].astype(np.uint32) & 0x3F), cp)
    uniq, inv = np.unique(cp, return_inverse=True)
    hit = pl.Series([chr(c) for c in uniq.tolist()]).str.contains(f"^{cls}$").to_numpy()[inv]
    for d in range(4):
        at = k > d
        flags[lead[at] + d] = hit[at]
    return flags


def spans(texts: pl.Series) -> Spans:
    """The ``\\w+`` runs of every row of ``texts`` (see :class:`Spans`)."""
    data, off = _buffers(texts)
    n = len(off) - 1
    w = _is_word(data)
    nonempty = off[:-1] < off[1:]
    first, last = off[:-1][nonempty], off[1:][nonempty] - 1
    begin = w.copy()
    begin[1:] &= ~w[:-1]
    begin[first] = w[first]                # a word never runs across two rows
    end = w.copy()
    end[:-1] &= ~w[1:]
    end[last] = w[last]
    start = np.flatnonzero(begin)
    stop = np.flatnonzero(end) + 1
    per_row = np.searchsorted(start, off[1:]) - np.searchsorted(start, off[:-1])
    row = np.repeat(np.arange(n, dtype=np.int64), per_row)
    length = stop - start
    cont = np.flatnonzero((data & 0xC0) == 0x80)        # UTF-8 continuation bytes
    if len(cont):                                       # bytes -> characters, per word
        word = np.searchsorted(start, cont, side="right") - 1
        inside = (word >= 0) & (cont < stop[np.maximum(word, 0)])
        length = length - np.bincount(word[inside], minlength=len(start))
    return Spans(data, row, start, stop, length, n)


def word_stats(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Per row: number of ``\\w+`` runs and number of characters inside them (int64). Counted
    per row with ``reduceat`` over the byte flags, without listing the words."""
    data, off = _buffers(texts)
    n = len(off) - 1
    if not len(data):
        return np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    w = _is_word(data)
    begin = w.copy()
    begin[1:] &= ~w[:-1]
    nonempty = off[:-1] < off[1:]
    at = off[:-1][nonempty]
    begin[at] = w[at]                      # a word never runs across two rows
    counts = np.zeros(n, dtype=np.int64)
    chars = np.zeros(n, dtype=np.int64)
    counts[nonempty] = np.add.reduceat(begin, at, dtype=np.int64)
    # characters: word bytes that do not continue a multi-byte character
    letters = w & ((data & 0xC0) != 0x80) if (data >= 0x80).any() else w
    chars[nonempty] = np.add.reduceat(letters, at, dtype=np.int64)
    return counts, chars


def hash_spans(data: np.ndarray, start: np.ndarray, nbytes: np.ndarray) -> np.ndarray:
    """splitmix64 chained over each span's bytes, 8 at a time (little-endian), seeded with its
    byte length: one pass per 8 bytes of the longest span, over the spans still that long."""
    size = (len(data) + 16) // 8 * 8
    pad = np.zeros(size, dtype=np.uint8)
    pad[:len(data)] = data
    u = pad.view("<u8")                     # the load at byte p: two aligned words, shifted
    h = nbytes.astype(_U64) * _LEN
    idx = None                              # first pass: every span, no indirection
    j = 0
    while True:
        p = start + 8 * j if idx is None else start[idx] + 8 * j
        left = (nbytes if idx is None else nbytes[idx]) - 8 * j
        q = p >> 3
        sh = ((p & 7) << 3).astype(_U64)
        # the high part shifted in two steps, so a shift of 0 leaves nothing of it (x << 64 is x)
        chunk = (u[q] >> sh) | ((u[q + 1] << (_U64(63) - sh)) << _U64(1))
        chunk &= _KEEP[np.minimum(left, 8)]
        if idx is None:
            h = _mix(h ^ chunk)
            idx = np.flatnonzero(left > 8)
        else:
            h[idx] = _mix(h[idx] ^ chunk)
            idx = idx[left > 8]
        if not len(idx):
            return h
        j += 1


def _mix(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> _U64(30))
    x = x * _MIX1
    x = x ^ (x >> _U64(27))
    x = x * _MIX2
    return x ^ (x >> _U64(31))
