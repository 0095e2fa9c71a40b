"""The quality gate every augmented row passes: same meaning, not a copy, not drifted, sane length,
same label.

* Meaning checks (:mod:`curate.augmenters.meaning`, on by default): placeholders, numbers, date
  words, negations, WordNet antonyms, named entities and part of speech of swapped words must
  survive the edit — things sentence-embedding cosine cannot see.

* Semantic similarity to the parent (:func:`curate.embed.embed`, cosine, encoder set by
  ``embedding: {model, backend, ...}``) must lie in ``[min_similarity, max_similarity)``:
  below = drifted, at/above = a copy. The bounds are MiniLM's (torch / onnx / onnx-int8 agree to
  ~1e-3). The static backend's cosines run higher, and where 0.75 maps to is not settled
  (``python bench/embed.py --thresholds``): the same MRPC paraphrase F1 at 0.80, the same share
  of the 110 meaning-kept word edits of tests/data/gate_eval.jsonl rejected (7.3%) at 0.864,
  the same (weak: 0.15) changed-meaning F1 at 0.908; so set ``min_similarity`` by hand (≈ 0.85) when
  choosing static. ``max_similarity`` 0.99 carries over (21.8% of kept edits are copies under
  both).
* Length ratio (characters, child / parent) within ``[min_length_ratio, max_length_ratio]``.
* Label preserved, when configured: a text-classification model (``label_model``, optionally
  ``label_map`` from model labels to data labels) or an LLM judge (``label_judge``, a
  :mod:`curate.llm` backend spec) must give the child the parent's label.
* Entailment, when ``nli_model`` is set: an NLI / cross-encoder model must find that the parent
  entails the child with probability ≥ ``min_entailment``.

Checks run vectorised over the batch (one embedding call for parents and children).
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from curate.embed import EmbedConfig, fold_embed_keys
from curate.extras import require

JUDGE_PROMPT = ("Classify the text into exactly one of these labels: {labels}.\n\nText:\n{text}\n\n"
                "Answer with the label only.")


class GateConfig(BaseModel):
    """Bounds of the quality gate."""

    model_config = ConfigDict(extra="forbid")
    min_similarity: float = Field(default=0.75, ge=-1, le=1, description="Below this the row drifted.")
    max_similarity: float = Field(default=0.99, ge=-1, le=1, description="At/above this it is a copy.")
    min_length_ratio: float = Field(default=0.5, gt=0, description="Shortest allowed child/parent length.")
    max_length_ratio: float = Field(default=2.0, gt=0, description="Longest allowed child/parent length.")
    embedding: EmbedConfig = Field(default_factory=EmbedConfig, description="Encoder of the similarity check: "
                                   "model, backend, batch_size, device (flat `embed_model` also accepted).")
    label_model: str | None = Field(default=None, description="text-classification model name/path.")
    label_map: dict[str, str] | None = Field(default=None, description="Model label -> data label.")
    label_judge: dict[str, Any] | None = Field(default=None, description="curate.llm backend spec for a judge.")
    min_char_ratio: float = Field(default=0.8, ge=0, le=1,
                                  description="Character-noise augmenters: least character similarity to the "
                                              "parent (difflib ratio), in place of the embedding cosine, which "
                                              "typos move far more than they move meaning.")
    meaning_checks: bool = Field(default=True, description="Reject edits that change placeholders, numbers, "
                                                           "dates, negation, antonyms, entities or POS.")
    check_entities: bool = Field(default=True, description="Include the entity and POS checks (spaCy's English "
                                                           "pipeline when installed).")
    nli_model: str | None = Field(default=None, description="NLI / cross-encoder model (sequence-pair "
                                                            "classification) for the entailment check.")
    entailment_label: str = Field(default="entailment", description="The NLI model's label for entailment.")
    min_entailment: float = Field(default=0.5, ge=0, le=1, description="Least P(parent entails child).")

    @model_validator(mode="before")
    @classmethod
    def _flat_embed_keys(cls, data):
        return fold_embed_keys(data, {"embed_model": "model"})

    @model_validator(mode="after")
    def _bounds(self) -> "GateConfig":
        if self.min_similarity >= self.max_similarity:
            raise ValueError("min_similarity must be below max_similarity")
        if self.min_length_ratio > self.max_length_ratio:
            raise ValueError("min_length_ratio must not exceed max_length_ratio")
        return self


@dataclass
class GateResult:
    """Per child: the failing reason (``None`` = passed), a detail, similarity and length ratio."""

    reasons: list[str | None]
    details: list[str | None]
    similarity: np.ndarray
    length_ratio: np.ndarray


def predict_labels(cfg: GateConfig, texts: list[str], labels: Sequence[str]) -> list[str] | None:
    """Labels for ``texts`` from the configured classifier or judge (``None`` if neither)."""
    if cfg.label_model:
        clf = _classifier(cfg.label_model)
        preds = [str(o["label"]) for o in clf(texts, truncation=True)]
        return [(cfg.label_map or {}).get(p, p) for p in preds]
    if cfg.label_judge:
        from curate.llm import BackendSpec, SamplingParams, load_backend
        spec = dict(cfg.label_judge)
        llm = load_backend(BackendSpec(**{k: v for k, v in spec.items() if k not in ("max_new_tokens",)}))
        options = ", ".join(sorted(set(labels)))
        res = llm.generate([JUDGE_PROMPT.format(labels=options, text=t) for t in texts],
                           SamplingParams(temperature=0.0, max_new_tokens=spec.get("max_new_tokens", 16)))
        return [(g[0].text.strip().splitlines() or [""])[0].strip().strip(".").lower() if g else "" for g in res]
    return None


_CLASSIFIERS: dict[str, Any] = {}


def _classifier(name: str):
    if name not in _CLASSIFIERS:
        require("transformers", extra="augment")
        from transformers import pipeline
        _CLASSIFIERS[name] = pipeline("text-classification", model=name)
    return _CLASSIFIERS[name]


def entailment(model: str, premises: Sequence[str], hypotheses: Sequence[str], label: str,
               batch_size: int = 32) -> np.ndarray:
    """P(``label``) for each (premise, hypothesis) pair under a sequence-pair classifier."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    if model not in _CLASSIFIERS:
        _CLASSIFIERS[model] = (AutoTokenizer.from_pretrained(model),
                               AutoModelForSequenceClassification.from_pretrained(model).eval())
    tok, clf = _CLASSIFIERS[model]
    ids = {k.lower(): v for k, v in clf.config.label2id.items()}
    if label.lower() not in ids:
        from curate.errors import CurateError
        raise CurateError(f"gate: nli_model {model} has no label {label!r} (labels: {sorted(ids)}); "
                          "set entailment_label")
    out = []
    for lo in range(0, len(premises), batch_size):
        enc = tok(list(premises[lo:lo + batch_size]), list(hypotheses[lo:lo + batch_size]), return_tensors="pt",
                  padding=True, truncation=True, max_length=256)
        with torch.no_grad():
            out.append(clf(**enc).logits.softmax(-1)[:, ids[label.lower()]].numpy())
    return np.concatenate(out) if out else np.zeros(0)


def check(parents: Sequence[str], children: Sequence[str | None], cfg: GateConfig,
          labels: Sequence[Any] | None = None, word_level: bool = True) -> GateResult:
    """Run the gate over parent/child pairs (children that are ``None`` fail as ``no_variant``).
    ``word_level=False`` (character-noise augmenters) skips the entity and POS checks, which typos
    would trip without changing what the text means."""
    n = len(parents)
    reasons: list[str | None] = [None] * n
    details: list[str | None] = [None] * n
    sim = np.full(n, np.nan)
    ratio = np.full(n, np.nan)
    live = [i for i in range(n) if children[i] is not None and str(children[i]).strip()]
    live_set = set(live)
    for i in range(n):
        if i not in live_set:
            reasons[i], details[i] = "no_variant", "the augmenter could not change this text"
    if not live:
        return GateResult(reasons, details, sim, ratio)
    P = [parents[i] for i in live]
    C = [str(children[i]) for i in live]
    E = cfg.embedding.embed(P + C)
    s = (E[: len(live)] * E[len(live):]).sum(1)
    plen = np.asarray([max(len(p), 1) for p in P], dtype=float)
    r = np.asarray([len(c) for c in C], dtype=float) / plen
    sim[live], ratio[live] = s, r
    char_ratio = [1.0] * len(live) if word_level else \
        [difflib.SequenceMatcher(None, p, c, autojunk=False).ratio() for p, c in zip(P, C)]
    meaning = [None] * len(live)
    if cfg.meaning_checks:
        from curate.augmenters.meaning import meaning_reasons
        meaning = meaning_reasons(P, C, entities=cfg.check_entities and word_level)
    preds = None
    if labels is not None and (cfg.label_model or cfg.label_judge):
        preds = predict_labels(cfg, C, [str(labels[i]) for i in live])
    for k, i in enumerate(live):
        if not word_level and char_ratio[k] < cfg.min_char_ratio:
            reasons[i], details[i] = "gate_drifted", f"character ratio {char_ratio[k]:.3f} < {cfg.min_char_ratio}"
        elif word_level and s[k] < cfg.min_similarity:
            reasons[i], details[i] = "gate_drifted", f"similarity {s[k]:.3f} < {cfg.min_similarity}"
        elif meaning[k] is not None:          # before the copy check: a one-digit edit is no copy
            reasons[i], details[i] = meaning[k]
        elif s[k] >= cfg.max_similarity:
            reasons[i], details[i] = "gate_copy", f"similarity {s[k]:.3f} >= {cfg.max_similarity}"
        elif not cfg.min_length_ratio <= r[k] <= cfg.max_length_ratio:
            reasons[i], details[i] = "gate_length_ratio", (
                f"length ratio {r[k]:.2f} outside [{cfg.min_length_ratio}, {cfg.max_length_ratio}]")
        elif preds is not None and str(preds[k]).lower() != str(labels[i]).lower():
            reasons[i], details[i] = "gate_label_changed", f"predicted {preds[k]!r}, expected {labels[i]!r}"
    if cfg.nli_model:
        alive = [k for k, i in enumerate(live) if reasons[i] is None]
        probs = entailment(cfg.nli_model, [P[k] for k in alive], [C[k] for k in alive], cfg.entailment_label)
        for k, pr in zip(alive, probs):
            if pr < cfg.min_entailment:
                reasons[live[k]], details[live[k]] = "gate_not_entailed", f"P(entailment) {pr:.2f} < {cfg.min_entailment}"
    return GateResult(reasons, details, sim, ratio)
