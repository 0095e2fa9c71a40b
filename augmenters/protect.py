"""Protected spans: the words a word-swap augmenter must never touch — redaction placeholders
(``<PHONE>``), numbers, URLs, e-mails, date words, negations, named entities and the words the
user lists — and, when spaCy's English pipeline is installed, every word that is not a content
word (noun, verb, adjective, adverb). Positions refer to the augmenters' ``WORD_RE`` tokens."""
from __future__ import annotations

import re
from typing import Sequence

from curate.augmenters.meaning import DATE_WORDS, NEGATIONS, text_info
from pydantic import BaseModel, Field

SPANS = re.compile(r"<[A-Z][A-Z_]*>|https?://\S+|www\.\S+|[\w.+-]+@[\w-]+\.[\w.]+|\d+(?:[.,:/]\d+)*")
CONTENT_POS = frozenset({"NOUN", "VERB", "ADJ", "ADV"})


class ProtectOptions(BaseModel):
    """What a word-swap augmenter leaves alone."""

    protect: list[str] = Field(default_factory=list, description="Words never replaced (case-insensitive), "
                                                                 "besides placeholders, numbers, URLs, e-mails, "
                                                                 "dates, negations and named entities.")
    protect_entities: bool = Field(default=True, description="Never replace named entities (spaCy NER when "
                                                             "installed, else capitalised words mid-sentence).")
    content_words_only: bool = Field(default=True, description="Replace only nouns, verbs, adjectives and "
                                                               "adverbs (needs spaCy's English pipeline).")


def _offsets(tokens: Sequence[str]) -> list[tuple[int, int]]:
    out, pos = [], 0
    for t in tokens:
        out.append((pos, pos + len(t)))
        pos += len(t)
    return out


def protected_positions(texts: Sequence[str], tokens: Sequence[Sequence[str]], opts: ProtectOptions) -> list[set[int]]:
    """Per text, the token positions an augmenter must keep as they are."""
    return [prot for prot, _ in analyse(texts, tokens, opts)]


def inflect_like(candidate: str, tag: tuple[str, str] | None) -> str:
    """``candidate`` in the inflection of the word it replaces (``likes`` → ``enjoy`` becomes
    ``enjoys``), from its Penn tag via lemminflect; unchanged without a tag or the library."""
    if tag is None:
        return candidate
    upos, ptb = tag
    if ptb in ("NN", "VB", "VBP", "JJ", "RB", "NNP") or upos not in CONTENT_POS:
        return candidate
    try:
        from lemminflect import getInflection, getLemma
    except ImportError:
        return candidate
    lemmas = getLemma(candidate, upos=upos) or (candidate,)
    forms = getInflection(lemmas[0], tag=ptb)
    return forms[0] if forms else candidate


def analyse(texts: Sequence[str], tokens: Sequence[Sequence[str]], opts: ProtectOptions
            ) -> list[tuple[set[int], dict[int, tuple[str, str]]]]:
    """Per text: the protected token positions, and (with spaCy) each token position's
    (coarse POS, Penn tag) for :func:`inflect_like`."""
    user = {w.lower() for w in opts.protect}
    infos = text_info([t or "" for t in texts]) if (opts.protect_entities or opts.content_words_only) else None
    out = []
    for k_text, (text, toks) in enumerate(zip(texts, tokens)):
        text = text or ""
        info = infos[k_text] if infos is not None else None
        spans = [m.span() for m in SPANS.finditer(text)]
        keep_chars = set()
        tags_at = {idx: (pos, tag) for idx, _, pos, tag, _ in info.tokens} if info is not None else {}
        if info is not None:
            if opts.protect_entities:
                spans += [(s, e) for s, e, _, _ in info.ents]
            if opts.content_words_only:
                keep_chars = {idx for idx, _, pos, _, alpha in info.tokens if alpha and pos not in CONTENT_POS}
        elif opts.protect_entities:
            spans += [m.span() for m in re.finditer(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+\b", text)]
        prot, tags = set(), {}
        for k, ((a, b), tok) in enumerate(zip(_offsets(toks), toks)):
            low = tok.lower()
            if (low in user or low in DATE_WORDS or low in NEGATIONS or low.endswith("n't") or a in keep_chars
                    or any(a < e and s < b for s, e in spans)):
                prot.add(k)
            elif a in tags_at:
                tags[k] = tags_at[a]
        out.append((prot, tags))
    return out
