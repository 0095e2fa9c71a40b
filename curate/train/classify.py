"""Sequence classification with the HF Trainer and a class-weighted cross-entropy loss; class
weights come from the balance step's manifest stats, the training labels, or the config."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from curate.errors import CurateError, DataError
from curate.extras import require

WEIGHT_KEYS = ("class_weights_after", "class_weights")      # curate.steps.balance records both
COUNT_KEYS = ("after", "counts_after", "distribution_after", "counts", "distribution", "label_counts")


def _label_counts(obj: Any) -> dict[str, float] | None:
    if isinstance(obj, dict) and obj and all(isinstance(v, (int, float)) for v in obj.values()):
        return {str(k): float(v) for k, v in obj.items()}
    return None


def weights_from_manifest(path: str, labels: list[str]) -> list[float]:
    """Class weights from a pipeline manifest's balance step. The step's output is what we train on,
    so its ``class_weights_after`` (sklearn 'balanced' weights of the kept rows) come first, then
    ``class_weights``, else inverse frequency of the post-balance label counts (``after``)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"classification.manifest: {p} not found")
    m = json.loads(p.read_text(encoding="utf-8"))
    steps = [s for s in m.get("steps", []) if "balance" in str(s.get("name", ""))]
    if not steps:
        raise DataError(f"{p}: no balance step in the manifest; set class_weights to auto or a mapping")
    stats = steps[-1].get("stats") or {}
    for key in WEIGHT_KEYS:
        w = _label_counts(stats.get(key))
        if w:
            return [w.get(lab, 1.0) for lab in labels]
    for key in COUNT_KEYS:
        counts = _label_counts(stats.get(key))
        if counts:
            return inverse_frequency([counts.get(lab, 0.0) for lab in labels])
    raise DataError(f"{p}: balance step stats have no class_weights or label counts (keys: {sorted(stats)})")


def inverse_frequency(counts: list[float]) -> list[float]:
    """n / (k * count_c), the scikit-learn 'balanced' weighting; absent classes get weight 0."""
    n, k = sum(counts), len(counts)
    return [n / (k * c) if c else 0.0 for c in counts]


def class_weights(cfg, labels: list[str], train_labels: list[str]) -> list[float] | None:
    cw = cfg.classification.class_weights
    if cw == "none":
        return None
    if cw == "manifest":
        # a pipeline's train: section gets provenance (its manifest) filled in when it is loaded
        path = cfg.classification.manifest or cfg.provenance
        if not path:
            raise CurateError("class_weights: manifest needs classification.manifest (or provenance) to name a "
                              "manifest.json")
        return weights_from_manifest(path, labels)
    if isinstance(cw, dict):
        unknown = set(cw) - set(labels)
        if unknown:
            raise CurateError(f"classification.class_weights names unknown labels {sorted(unknown)}; labels: {labels}")
        return [float(cw.get(lab, 1.0)) for lab in labels]
    c = Counter(train_labels)
    return inverse_frequency([float(c.get(lab, 0)) for lab in labels])


def _weighted_trainer_cls():
    require("torch", extra="train")
    import torch
    require("transformers", extra="train")
    from transformers import Trainer

    class WeightedTrainer(Trainer):
        """Trainer whose loss is cross-entropy with per-class weights."""

        def __init__(self, *a, class_weights: list[float] | None = None, **kw):
            super().__init__(*a, **kw)
            self.class_weights = class_weights

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            logits = outputs.logits
            w = torch.tensor(self.class_weights, dtype=logits.dtype, device=logits.device) if self.class_weights else None
            loss = torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), labels.view(-1), weight=w)
            return (loss, outputs) if return_outputs else loss

    return WeightedTrainer


def build_trainer(cfg, model, tok, splits, args: dict[str, Any], callbacks: list):
    import numpy as np
    require("transformers", extra="train")
    from transformers import DataCollatorWithPadding, TrainingArguments

    from curate.train.metrics import classification_metrics

    labels = cfg.classification.labels or splits.labels
    missing = set(splits.labels) - set(labels)
    if missing:
        raise DataError(f"labels {sorted(missing)} appear in the data but not in classification.labels")
    lab2id = {lab: i for i, lab in enumerate(labels)}
    max_len = cfg.training.max_length

    def encode(batch):
        enc = tok(batch["text"], truncation=True, max_length=max_len)
        enc["labels"] = [lab2id[x] for x in batch["label"]]
        return enc

    cols = splits.train.column_names
    train = splits.train.map(encode, batched=True, remove_columns=cols)
    val = splits.validation.map(encode, batched=True, remove_columns=splits.validation.column_names) \
        if splits.validation is not None else None
    weights = class_weights(cfg, labels, list(splits.train["label"]))

    def compute_metrics(pred):
        y_pred = np.argmax(pred.predictions, axis=-1)
        m = classification_metrics(pred.label_ids.tolist(), y_pred.tolist(), labels)
        flat = {"accuracy": m["accuracy"], "f1_macro": m["f1_macro"]}
        for lab, v in m["per_class"].items():
            flat[f"f1_{lab}"] = v["f1"]
            flat[f"recall_{lab}"] = v["recall"]
        return flat

    trainer = _weighted_trainer_cls()(
        model=model, args=TrainingArguments(**args), train_dataset=train, eval_dataset=val,
        processing_class=tok, data_collator=DataCollatorWithPadding(tok), compute_metrics=compute_metrics,
        callbacks=callbacks, class_weights=weights)
    trainer.curate_labels = labels
    trainer.curate_encode = lambda ds: ds.map(encode, batched=True, remove_columns=ds.column_names)
    trainer.curate_class_weights = weights
    return trainer
