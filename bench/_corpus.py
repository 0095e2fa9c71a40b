"""The near-duplicate benchmark corpus (recipe: shared/reference/dedup-bench-corpus.md), seeded.

Texts come from the shared data folder (MRPC is read there, never copied into the repo):
MRPC train sentences, SMS messages, hh-rlhf utterances, self-instruct instructions/instances, NI
definitions/examples/instances. They are chunked to ≤ 60 words, deduplicated (exact, then ≥ 50 %
5-shingle containment), combined 2–3 per base document so two base documents share at most one
part, and 10 % of the base documents get one edited copy (word edit rates 2/5/10/20/30 %,
round-robin). Ground truth is the true Jaccard of lowercased whitespace 5-shingle sets.
"""
from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
RATES = (0.02, 0.05, 0.10, 0.20, 0.30)


def source_texts(data: Path = DATA) -> list[str]:
    """Step 1: every text of the shared data files (≈ 18k)."""
    texts: list[str] = []
    with open(data / "mrpc_msr_paraphrase_train.txt", encoding="utf-8-sig") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 5 and parts[0] in ("0", "1"):
                texts += [parts[3], parts[4]]
    with open(data / "sms_spam_collection.tsv", encoding="utf-8") as f:
        next(f)
        texts += [ln.rstrip("\n").split("\t", 1)[1] for ln in f if "\t" in ln]
    with open(data / "hh_rlhf_harmless_base_test_first300.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            for dialog in (row["chosen"], row["rejected"]):
                for turn in dialog.replace("\n\nAssistant: ", "\n\nHuman: ").split("\n\nHuman: "):
                    if turn.strip():
                        texts.append(turn)
    with open(data / "self_instruct_seed_tasks.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            texts.append(row["instruction"])
            for inst in row["instances"]:
                texts += [inst["input"], inst["output"]]
    for task in sorted((data / "ni_tasks").glob("*.json")):
        obj = json.loads(task.read_text(encoding="utf-8"))
        texts += obj["Definition"]
        for ex in obj.get("Positive Examples", []) + obj.get("Negative Examples", []):
            texts += [ex.get("input", ""), ex.get("output", ""), ex.get("explanation", "")]
        for inst in obj["Instances"]:
            texts.append(inst["input"])
            texts += inst["output"]
    return [t for t in texts if t and t.strip()]


def shingles(words: list[str], n: int = 5) -> set:
    low = [w.lower() for w in words]
    return {tuple(low[i:i + n]) for i in range(max(1, len(low) - n + 1))}


def jaccard(a: list[str], b: list[str]) -> float:
    x, y = shingles(a), shingles(b)
    return len(x & y) / len(x | y) if x or y else 1.0


def distinct_pieces(texts: list[str]) -> list[list[str]]:
    """Steps 2–3: chunks of 5..60 words, exact- and containment-deduplicated."""
    pieces = []
    for t in texts:
        w = t.split()
        for s in range(0, len(w), 60):
            chunk = w[s:s + 60]
            if len(chunk) >= 5:
                pieces.append(chunk)
    seen, uniq = set(), []
    for p in pieces:
        key = tuple(x.lower() for x in p)
        if key not in seen:
            seen.add(key)
            uniq.append(p)
    index: dict[tuple, list[int]] = {}
    kept: list[list[str]] = []
    for p in uniq:
        sh = shingles(p)
        hits = Counter(k for s in sh for k in index.get(s, ()))
        if hits and max(hits.values()) >= 0.5 * len(sh):
            continue
        for s in sh:
            index.setdefault(s, []).append(len(kept))
        kept.append(p)
    return kept


def edit(words: list[str], rate: float, rng: random.Random, stream: list[str]) -> list[str]:
    """Each word, with probability ``rate``: deleted, substituted, or followed by a new word."""
    out = []
    for w in words:
        if rng.random() < rate:
            op = rng.randrange(3)
            if op == 0:
                continue
            if op == 1:
                out.append(rng.choice(stream))
            else:
                out += [w, rng.choice(stream)]
        else:
            out.append(w)
    return out or [rng.choice(stream)]


@dataclass
class Corpus:
    """Documents (position = id), planted (original, copy, rate, true J) pairs."""

    docs: list[str]
    pairs: list[tuple[int, int, float, float]]
    pieces: int

    def positives(self, threshold: float = 0.8) -> set[tuple[int, int]]:
        return {(min(a, b), max(a, b)) for a, b, _, j in self.pairs if j >= threshold}


def build(n_base: int = 182_000, seed: int = 0, data: Path = DATA) -> Corpus:
    """Steps 4–6 (defaults: the full 200,200-document corpus)."""
    rng = random.Random(seed)
    pieces = distinct_pieces(source_texts(data))
    stream = [w for p in pieces for w in p]
    used_pairs: set[tuple[int, int]] = set()
    base: list[list[str]] = []
    while len(base) < n_base:
        k = rng.choice((2, 3))
        parts = rng.sample(range(len(pieces)), k)
        lens = [len(pieces[i]) for i in parts]
        if max(lens) > 0.6 * sum(lens):
            continue
        pp = {(min(a, b), max(a, b)) for i, a in enumerate(parts) for b in parts[i + 1:]}
        if pp & used_pairs:
            continue
        used_pairs |= pp
        base.append([w for i in parts for w in pieces[i] + ["\n"]][:-1])
    copies_of = rng.sample(range(n_base), n_base // 10)
    docs = [" ".join(b).replace(" \n ", "\n") for b in base]
    raw = [list(b) for b in base]
    copies = []
    for r, i in enumerate(copies_of):
        rate = RATES[r % len(RATES)]
        words = [w for w in raw[i] if w != "\n"]
        copies.append((i, rate, edit(words, rate, rng, stream)))
    all_docs = docs + [" ".join(c[2]) for c in copies]
    order = list(range(len(all_docs)))
    rng.shuffle(order)
    pos = {old: new for new, old in enumerate(order)}
    shuffled = [all_docs[old] for old in order]
    pairs = []
    for k, (i, rate, words) in enumerate(copies):
        j = jaccard(docs[i].split(), words)
        pairs.append((pos[i], pos[n_base + k], rate, j))
    return Corpus(shuffled, pairs, len(pieces))


def mrpc_pairs(data: Path = DATA, limit: int | None = None) -> list[tuple[str, str, int]]:
    """MRPC train pairs (sentence 1, sentence 2, paraphrase label) read in place."""
    out = []
    with open(data / "mrpc_msr_paraphrase_train.txt", encoding="utf-8-sig") as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if len(p) == 5 and p[0] in ("0", "1"):
                out.append((p[3], p[4], int(p[0])))
    return out[:limit] if limit else out


if __name__ == "__main__":      # quick look: python bench/_corpus.py
    import statistics
    import time
    t = time.time()
    c = build()
    print(f"{len(c.docs)} docs from {c.pieces} distinct texts in {time.time() - t:.1f}s; "
          f"{len(c.positives())} positive pairs")
    for r in RATES:
        print(r, round(statistics.mean(j for _, _, rr, j in c.pairs if rr == r), 3))
