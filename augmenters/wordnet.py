"""WordNet synonym swap through NLTK, offline (after the one-time `curate setup wordnet`).

nlpaug's ``SynonymAug(aug_src="wordnet")`` needs NLTK's POS-tagger model, a download. Here the
part of speech comes from WordNet itself: for each word, the sense with the highest corpus count
(WordNet's ``cntlist``, shipped by Debian's wordnet-sense-index) decides, and its synset's other
lemmas are the candidates. Words whose senses all have count 0 (no evidence) and inflected forms
(``cats``, ``went``: base form differs, so a swap would break agreement) are left alone.
Lookups are cached per distinct word, so a batch costs one WordNet query per vocabulary item.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Sequence

from curate.augmenters._base import Augmenter, AugmenterConfig, register_augmenter
from curate.augmenters.embedding_swap import WORD_RE, _stopwords, match_case, text_rng
from curate.augmenters.meaning import antonyms
from curate.augmenters.protect import ProtectOptions, protected_positions
from pydantic import Field


class WordNetConfig(AugmenterConfig, ProtectOptions):
    nltk_data: str | None = Field(default=None, description="NLTK data root holding corpora/wordnet "
                                                            "(default $NLTK_DATA or ~/nltk_data).")
    aug_p: float = Field(default=0.2, gt=0, le=1, description="Share of eligible words to replace.")
    aug_max: int = Field(default=10, ge=1, description="At most this many replacements per text.")
    min_count: int = Field(default=1, ge=0, description="Use a word only if its top sense has at least "
                                                        "this corpus count (0 = trust every sense).")
    skip_stopwords: bool = Field(default=True, description="Never replace English stop words.")


@lru_cache(maxsize=4)
def _reader(nltk_data: str | None):
    from curate.setup_wordnet import load_wordnet
    return load_wordnet(nltk_data)


@register_augmenter("wordnet")
class WordNetSynonyms(Augmenter):
    """Replace ``aug_p`` of the eligible words with a synonym from their most frequent sense."""

    Config = WordNetConfig
    languages = ("en",)

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self._cache: dict[str, tuple[str, ...]] = {}

    def synonyms(self, word: str) -> tuple[str, ...]:
        """Synonyms of ``word`` (lower case) in its most frequent sense; cached."""
        if word in self._cache:
            return self._cache[word]
        wn = _reader(self.config.nltk_data)
        out: tuple[str, ...] = ()
        base = wn.morphy(word)
        if base == word:
            lemmas = [lm for lm in wn.lemmas(word) if lm.name().lower() == word]
            if lemmas:
                best = max(lemmas, key=lambda lm: lm.count())
                if best.count() >= self.config.min_count:
                    out = tuple(dict.fromkeys(
                        lm.name().replace("_", " ") for lm in best.synset().lemmas()
                        if lm.name().lower() != word and re.fullmatch(r"[A-Za-z_ -]+", lm.name())))
        self._cache[word] = out
        return out

    def augment(self, texts: Sequence[str], seed: int) -> list[str | None]:
        cfg: WordNetConfig = self.config  # type: ignore[assignment]
        stop = _stopwords() if cfg.skip_stopwords else frozenset()
        out: list[str | None] = []
        tokens = [WORD_RE.findall(text or "") for text in texts]
        for text, toks, prot in zip(texts, tokens, protected_positions(texts, tokens, cfg)):
            elig = [(i, syn) for i, t in enumerate(toks) if t[:1].isalpha() and t.lower() not in stop
                    and i not in prot and (syn := self.synonyms(t.lower()))]
            if not elig:
                out.append(None)
                continue
            rng = text_rng(seed, text)
            n = min(cfg.aug_max, max(1, int(round(cfg.aug_p * len(elig)))))
            new = list(toks)
            for j in rng.permutation(len(elig))[:n]:
                i, syn = elig[j]
                syn = tuple(w for w in syn if w.lower() not in antonyms(toks[i].lower()))
                if not syn:
                    continue
                new[i] = match_case(toks[i], syn[int(rng.integers(len(syn)))])
            out.append("".join(new) if new != toks else None)
        return out
