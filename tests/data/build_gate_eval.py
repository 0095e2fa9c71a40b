"""Build tests/data/gate_eval.jsonl: (original, edited) pairs labelled `kept` (meaning kept) or
`changed`, to measure the augmentation gate (bench/gate.py).

Originals are real sentences from the shipped SMS and hh-rlhf samples. Labels come from how each
edit was made, not from the gate's rules: `kept` — curate's WordNet synonym swap (protected
spans on), curate's character-noise augmenters at mild settings (outputs where the noise hit a
digit are left out: a changed phone number is a changed meaning), contraction and punctuation
edits; `changed` — an antonym, a toggled negation, a changed number, another name or place,
another weekday or month, a sister term (dinner → breakfast: fluent but wrong).
    .venv/bin/python tests/data/build_gate_eval.py
"""
from __future__ import annotations

import json
import random
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).with_name("gate_eval.jsonl")
WORD = re.compile(r"[A-Za-z]+")
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
NAMES = ["Alice", "Peter", "Maria", "David", "Sophie", "Rahul", "London", "Paris", "Tokyo", "Chicago"]
CONTRACT = [("I'll", "I will"), ("don't", "do not"), ("can't", "cannot"), ("I'm", "I am"), ("it's", "it is"),
            ("won't", "will not"), ("you're", "you are"), ("didn't", "did not")]


def _sentences() -> list[str]:
    sms = [ln.split("\t", 1)[1] for ln in (ROOT / "pipelines/data/sms_spam_collection.tsv")
           .read_text(encoding="utf-8").split("\n")[1:] if "\t" in ln]
    hh = []
    for ln in (ROOT / "pipelines/data/hh_rlhf_harmless_base_test_first300.jsonl").read_text(encoding="utf-8").split("\n"):
        if ln:
            for turn in re.split(r"\n\n(?:Human|Assistant): ", json.loads(ln)["chosen"]):
                hh += [s.strip() for s in re.split(r"(?<=[.!?])\s+", turn) if 6 <= len(s.split()) <= 30]
    return [s for s in sms if 6 <= len(s.split()) <= 30] + hh


def _wn():
    from curate.setup_wordnet import load_wordnet
    return load_wordnet(None)


def _antonym_edit(s: str, wn) -> str | None:
    for m in WORD.finditer(s):
        w = m.group().lower()
        if len(w) < 3:
            continue
        for lemma in wn.lemmas(w):
            if lemma.name().lower() == w and lemma.antonyms() and lemma.synset().pos() in "asrv":
                ant = lemma.antonyms()[0].name().replace("_", " ")
                return s[:m.start()] + ant + s[m.end():]
    return None


def _sister_edit(s: str, wn, r: random.Random) -> str | None:
    for m in WORD.finditer(s):
        w = m.group().lower()
        syns = [x for x in wn.synsets(w, "n") if x.lemmas()[0].count() > 2] if len(w) > 3 else []
        if not syns or wn.morphy(w, "n") != w:
            continue
        hyper = syns[0].hypernyms()
        sisters = [lm.name() for h in hyper for hy in h.hyponyms() if hy != syns[0] for lm in hy.lemmas()[:1]
                   if lm.name().isalpha() and lm.name().islower()]
        if sisters:
            return s[:m.start()] + r.choice(sisters) + s[m.end():]
    return None


def _negation_edit(s: str) -> str | None:
    for a, b in ((" is ", " is not "), (" are ", " are not "), (" was ", " was not "), (" will ", " will not "),
                 (" can ", " cannot "), (" not ", " "), ("n't ", " ")):
        if a in s:
            return s.replace(a, b, 1)
    return None


def _number_edit(s: str, r: random.Random) -> str | None:
    m = re.search(r"\d+", s)
    if not m:
        return None
    n = int(m.group()[:6]) if m.group() else 0
    return s[:m.start()] + str(n + r.randint(1, 9)) + s[m.end():]


def main() -> None:
    from curate.augmenters._base import build_augmenter
    from curate.augmenters.meaning import _spacy
    r = random.Random(1203)
    wn, nlp = _wn(), _spacy()
    sents = _sentences()
    r.shuffle(sents)
    rows: list[dict] = []

    def add(orig: str, edit: str | None, label: str, kind: str, limit: int) -> None:
        if edit and edit != orig and sum(x["kind"] == kind for x in rows) < limit:
            rows.append({"original": orig, "edited": edit, "label": label, "kind": kind})

    pool = sents[:400]
    for t, e in zip(pool, build_augmenter({"wordnet": {"aug_p": 0.3}}).augment(pool, seed=3)):
        add(t, e, "kept", "augmenter:wordnet", 80)
    for name in ("keyboard", "char_noise", "ocr"):
        part = sents[400:520]
        for t, e in zip(part, build_augmenter({name: {"aug_char_p": 0.1, "aug_word_p": 0.1}}).augment(part, seed=5)):
            if e and re.findall(r"\d", t) == re.findall(r"\d", e):   # noise that hit a digit changed a number
                add(t, e, "kept", f"augmenter:{name}", 20)
    for t in sents[520:900]:
        for a, b in CONTRACT:
            if a in t:
                add(t, t.replace(a, b, 1), "kept", "hand:contraction", 20)
                break
        add(t, t.rstrip(".!?") + "!" if t[-1:] in ".?" else None, "kept", "hand:punctuation", 10)
    for t in sents[900:2500]:
        add(t, _antonym_edit(t, wn), "changed", "hand:antonym", 40)
        add(t, _negation_edit(t), "changed", "hand:negation", 30)
        add(t, _number_edit(t, r), "changed", "hand:number", 25)
        add(t, _sister_edit(t, wn, r), "changed", "hand:sister_term", 20)
        for d in DAYS:
            if d in t:
                add(t, t.replace(d, r.choice([x for x in DAYS if x != d]), 1), "changed", "hand:weekday", 20)
    ents = [(t, doc) for t, doc in zip(sents[2500:4500], nlp.pipe(sents[2500:4500]))
            if any(e.label_ in ("PERSON", "GPE") for e in doc.ents)]
    for t, doc in ents:
        e = next(e for e in doc.ents if e.label_ in ("PERSON", "GPE"))
        add(t, t[:e.start_char] + r.choice([n for n in NAMES if n != e.text]) + t[e.end_char:], "changed", "hand:entity", 25)
    days_needed = 20 - sum(x["kind"] == "hand:weekday" for x in rows)
    for t in sents[:3000]:                       # too few weekdays in the data: add one to a sentence
        if days_needed <= 0:
            break
        d1, d2 = r.sample(DAYS, 2)
        add(f"{t.rstrip('.!?')} on {d1}.", f"{t.rstrip('.!?')} on {d2}.", "changed", "hand:weekday", 20)
        days_needed -= 1
    with OUT.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["kind"]] = counts.get(row["kind"], 0) + 1
    print(f"wrote {len(rows)} pairs to {OUT}: {counts}")


if __name__ == "__main__":
    main()
