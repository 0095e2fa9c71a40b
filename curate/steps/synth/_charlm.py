"""A character-trigram language model small enough to ship in the wheel: it scores how much a text
looks like natural (English-like, Latin-script) writing, so ``verify`` catches keyboard mashing and
random strings without a neural LM. Counts come from openly licensed text (the SMS Spam Collection
and Anthropic hh-rlhf samples in pipelines/data; see their NOTICE); rebuild with
``python -m curate.steps.synth._charlm pipelines/data/sms_spam_collection.tsv ...``.
"""
from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

import numpy as np

#: a-z → 0..25, space 26, digits 27, other letters 28, anything else 29.
V = 30
MODEL_PATH = Path(__file__).with_name("charlm_en.npy")


def _table() -> np.ndarray:
    t = np.full(65536, 29, dtype=np.uint8)   # code points past the BMP read as 65535: other
    for i, c in enumerate("abcdefghijklmnopqrstuvwxyz"):
        t[ord(c)] = i
        t[ord(c.upper())] = i
    for c in " \t\n\r":
        t[ord(c)] = 26
    for c in "0123456789":
        t[ord(c)] = 27
    for cp in range(0xC0, 65535):
        if chr(cp).isalpha():
            t[cp] = 28
    return t


@lru_cache(maxsize=1)
def _char_table() -> np.ndarray:
    return _table()


def encode(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """All texts as one class-id array (each prefixed by two spaces) and the start offset of each."""
    joined = "".join("  " + t for t in texts)
    cps = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
    ids = _char_table()[np.minimum(cps, 65535)]
    lens = np.fromiter((len(t) + 2 for t in texts), dtype=np.int64, count=len(texts))
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]]) if len(texts) else np.zeros(0, np.int64)
    return ids, starts


def build(texts: list[str]) -> np.ndarray:
    """Trigram counts (V×V×V, uint32) over ``texts``."""
    ids, starts = encode(texts)
    tri = ids[:-2].astype(np.int64) * V * V + ids[1:-1].astype(np.int64) * V + ids[2:]
    # drop trigrams that straddle two texts (the first two positions of every text are padding)
    valid = np.ones(len(tri), dtype=bool)
    for off in (1, 2):
        cut = starts[1:] - off
        valid[cut[(cut >= 0) & (cut < len(valid))]] = False
    return np.bincount(tri[valid], minlength=V ** 3).astype(np.uint32).reshape(V, V, V)


@lru_cache(maxsize=1)
def _logprobs() -> np.ndarray:
    counts = np.load(MODEL_PATH).astype(np.float64)
    k = 0.1
    return np.log((counts + k) / (counts.sum(axis=2, keepdims=True) + k * V)).reshape(-1)


def mean_logprob(texts: list[str]) -> np.ndarray:
    """Mean log-probability per character of each text under the shipped model (NaN for empty)."""
    if not texts:
        return np.zeros(0)
    ids, starts = encode(texts)
    tri = ids[:-2].astype(np.int64) * V * V + ids[1:-1].astype(np.int64) * V + ids[2:]
    lp = np.append(_logprobs()[tri], 0.0)
    sums = np.add.reduceat(lp, starts)
    lens = np.fromiter((len(t) for t in texts), dtype=np.float64, count=len(texts))
    # reduceat sums from a text's start to the next start: that includes the next text's two
    # padding trigrams, which straddle texts; remove them from every text but the last
    nxt = starts[1:]
    sums[:-1] -= lp[nxt - 2] + lp[nxt - 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(lens > 0, sums / np.maximum(lens, 1), np.nan)


def _main(paths: list[str]) -> None:
    import json
    texts: list[str] = []
    for p in paths:
        for line in Path(p).read_text(encoding="utf-8").splitlines():
            if p.endswith(".jsonl"):
                rec = json.loads(line)
                texts += [v for v in rec.values() if isinstance(v, str)]
            else:
                texts.append(line.split("\t", 1)[-1])
    np.save(MODEL_PATH, build(texts))
    print(f"wrote {MODEL_PATH} from {len(texts)} texts")


if __name__ == "__main__":
    _main(sys.argv[1:])
