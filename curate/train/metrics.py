"""Task metrics without `evaluate`: accuracy and per-class F1 (scikit-learn), exact match,
ROUGE-L (LCS F-measure, as rouge-score computes it) and corpus BLEU (NLTK)."""
from __future__ import annotations

import math
import re
import string
from typing import Sequence
from curate.extras import require

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_TOKEN = re.compile(r"\w+", re.UNICODE)


def normalize(text: str) -> str:
    """SQuAD-style answer normalisation: lower-case, drop punctuation and articles, squash spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(preds: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
    """Share of predictions equal (after normalisation) to any of their references."""
    if not preds:
        return 0.0
    hits = sum(any(normalize(p) == normalize(r) for r in rs) for p, rs in zip(preds, refs))
    return hits / len(preds)


def _lcs(a: list[str], b: list[str]) -> int:
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def rouge_l(preds: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
    """Mean ROUGE-L F1 (best over references), on lower-cased word tokens."""
    if not preds:
        return 0.0
    total = 0.0
    for p, rs in zip(preds, refs):
        pt = _TOKEN.findall(p.lower())
        best = 0.0
        for r in rs:
            rt = _TOKEN.findall(r.lower())
            lcs = _lcs(pt, rt)
            if lcs:
                prec, rec = lcs / len(pt), lcs / len(rt)
                best = max(best, 2 * prec * rec / (prec + rec))
        total += best
    return total / len(preds)


def bleu(preds: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU-4 (NLTK, method-1 smoothing so short outputs do not collapse to zero), 0..100."""
    if not preds:
        return 0.0
    require("nltk", extra="train")
    from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu
    hyp = [_TOKEN.findall(p.lower()) for p in preds]
    ref = [[_TOKEN.findall(r.lower()) for r in rs] for rs in refs]
    if not any(hyp):
        return 0.0
    return 100.0 * corpus_bleu(ref, hyp, smoothing_function=SmoothingFunction().method1)


def generation_metrics(preds: Sequence[str], refs: Sequence[Sequence[str]]) -> dict[str, float]:
    return {"exact_match": exact_match(preds, refs), "rouge_l": rouge_l(preds, refs), "bleu": bleu(preds, refs)}


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]) -> dict:
    """Accuracy, macro F1 and F1/precision/recall/support per class."""
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
    idx = list(range(len(labels)))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=idx, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1_macro": float(f1_score(y_true, y_pred, labels=idx, average="macro", zero_division=0)),
        "per_class": {lab: {"f1": float(f[i]), "precision": float(p[i]), "recall": float(r[i]),
                            "support": int(s[i])} for i, lab in enumerate(labels)},
    }


def perplexity(loss: float | None) -> float | None:
    if loss is None:
        return None
    return math.exp(min(loss, 50.0))
