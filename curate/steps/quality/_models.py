"""Batched sequence-classification inference shared by ``classifier_filter`` and ``auto_label``:
texts sorted by length, fixed-size batches, softmax (or sigmoid) probabilities per label."""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from curate.errors import StepError
from curate.extras import require


@lru_cache(maxsize=4)
def load_classifier(model: str, device: str | None = None):
    """``(tokenizer, model, device)`` for a sequence-classification model name or path."""
    torch = require("torch", extra="ml", what="classifier models")
    transformers = require("transformers", extra="ml", what="classifier models")
    AutoModelForSequenceClassification = transformers.AutoModelForSequenceClassification
    AutoTokenizer = transformers.AutoTokenizer
    try:
        tok = AutoTokenizer.from_pretrained(model)
        net = AutoModelForSequenceClassification.from_pretrained(model)
    except Exception as e:  # noqa: BLE001 - hub/IO/config errors all mean "cannot load"
        raise StepError(f"cannot load classifier {model!r}: {str(e).splitlines()[0]}") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    if getattr(net.config, "pad_token_id", None) is None:
        net.config.pad_token_id = tok.pad_token_id
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    net.to(dev).eval()
    return tok, net, dev


def label_names(model: str, device: str | None = None) -> list[str]:
    _, net, _ = load_classifier(model, device)
    n = net.config.num_labels
    id2label = getattr(net.config, "id2label", None) or {}
    return [str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}"))) for i in range(n)]


def classify(texts: Sequence[str], model: str, *, batch_size: int = 32, max_length: int = 512,
             device: str | None = None, multi_label: bool = False) -> np.ndarray:
    """Probabilities, shape ``(len(texts), num_labels)``; softmax unless ``multi_label``."""
    require("torch", extra="ml")
    import torch
    tok, net, dev = load_classifier(model, device)
    n = len(texts)
    out = np.zeros((n, net.config.num_labels), dtype=np.float32)
    if n == 0:
        return out
    order = np.argsort([len(t) for t in texts], kind="stable")
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        enc = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=max_length,
                  return_tensors="pt").to(dev)
        with torch.inference_mode():
            logits = net(**enc).logits.float()
        probs = torch.sigmoid(logits) if multi_label else torch.softmax(logits, dim=-1)
        out[idx] = probs.cpu().numpy()
    return out
