"""Synthetic corpora for the engine benchmarks (bench/engine_overhead.py, bench/scale.py).

Documents of ~100 words (60–140) drawn log-uniformly (about Zipf 1) from a 30k-word vocabulary, vectorised with
numpy + Arrow (10M documents take a couple of minutes, in chunks of 500k, with flat memory). 2 %
of the documents are exact copies of an earlier one and 8 % edited copies (5 % of words
replaced), so exact and near dedup both have work. Written as JSON Lines ``{"text": ...}``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

CHUNK = 500_000


def _vocab(rng: np.random.Generator, size: int = 30_000) -> pa.Array:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    lens = rng.integers(2, 10, size)
    words = {"".join(rng.choice(letters, n)) for n in lens}
    return pa.array(sorted(words))


def _docs(rng: np.random.Generator, vocab: pa.Array, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Word indices (flat) and offsets of ``n`` fresh documents."""
    lens = rng.integers(60, 141, n)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    ranks = (len(vocab) ** rng.random(offsets[-1], dtype=np.float32)).astype(np.int64) - 1   # ~Zipf(1)
    return np.minimum(ranks, len(vocab) - 1), offsets


def write_corpus(path: str | Path, n: int, seed: int = 0) -> Path:
    """Write ``n`` documents to ``path`` (JSON Lines); reuse it when already there with ``n`` lines."""
    path = Path(path)
    marker = path.with_name(path.name + f".{n}.{seed}.ok")
    if path.exists() and marker.exists():
        return path
    rng = np.random.default_rng(seed)
    vocab = _vocab(rng)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        for start in range(0, n, CHUNK):
            m = min(CHUNK, n - start)
            idx, off = _docs(rng, vocab, m)
            # duplicates of earlier docs in the same chunk: 2 % exact, 8 % with 1 % of words replaced
            kind = rng.random(m)
            src = rng.integers(0, np.maximum(np.arange(m), 1))
            lens = np.diff(off)
            new_lens = np.where(kind < 0.10, lens[src], lens)
            new_off = np.zeros(m + 1, dtype=np.int64)
            np.cumsum(new_lens, out=new_off[1:])
            pos = np.arange(new_off[-1]) - np.repeat(new_off[:-1], new_lens)
            row = np.repeat(np.arange(m), new_lens)
            from_row = np.where(kind[row] < 0.10, src[row], row)
            words = idx[off[from_row] + pos]
            edit = (kind[row] >= 0.02) & (kind[row] < 0.10) & (rng.random(len(words)) < 0.01)
            words[edit] = rng.integers(0, len(vocab), int(edit.sum()))
            lists = pa.ListArray.from_arrays(pa.array(new_off.astype(np.int32)), vocab.take(pa.array(words)))
            df = pl.DataFrame({"w": pl.from_arrow(lists)}).select(pl.col("w").list.join(" ").alias("text"))
            df.write_ndjson(f)
    tmp.replace(path)
    marker.write_text("ok\n")
    return path


if __name__ == "__main__":
    import sys
    import time
    t = time.time()
    p = write_corpus(sys.argv[1], int(sys.argv[2]))
    print(p, f"{time.time() - t:.1f}s", p.stat().st_size // 2**20, "MiB")
