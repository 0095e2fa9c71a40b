"""Token lengths of the training rows against ``training.max_length``: what truncation will cut
and what the trainer will drop (TRL drops SFT rows whose prompt alone fills ``max_length``: their
answer is cut away, no token is left to learn from), so the run can count it and, when nothing is
left, fail with a max_length that fits."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from curate.errors import DataError

PERCENTILES = (50, 90, 95, 99)


def _lengths(tok, texts: list[str]) -> np.ndarray:
    if not texts:
        return np.zeros(0, dtype=np.int64)
    enc = tok(texts, add_special_tokens=True, truncation=False)
    return np.asarray([len(x) for x in enc["input_ids"]], dtype=np.int64)


def _chat_lengths(tok, convs: list[list[dict]], generation_prompt: bool) -> np.ndarray:
    out = []
    for c in convs:
        ids = tok.apply_chat_template(c, tokenize=True, add_generation_prompt=generation_prompt)
        ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
        out.append(len(ids))
    return np.asarray(out, dtype=np.int64)


def percentiles(lengths: np.ndarray) -> dict[str, int]:
    if lengths.size == 0:
        return {}
    out = {f"p{p}": int(math.ceil(np.percentile(lengths, p))) for p in PERCENTILES}
    out["max"] = int(lengths.max())
    return out


def suggest_max_length(lengths: np.ndarray) -> int:
    """p99 of the token lengths rounded up to a multiple of 64 (fits 99% of rows whole)."""
    p99 = int(math.ceil(np.percentile(lengths, 99))) if lengths.size else 64
    return int(math.ceil(p99 / 64) * 64)


def token_report(objective: str, ds, tok, max_length: int) -> dict[str, Any]:
    """Per-split length statistics and predicted losses to truncation (``ds``: a datasets.Dataset)."""
    if ds is None or len(ds) == 0:
        return {}
    if objective == "classification":
        total = _lengths(tok, list(ds["text"]))
        return {"token_lengths": percentiles(total), "truncated": int((total > max_length).sum()),
                "suggested_max_length": suggest_max_length(total)}
    if objective == "sft":
        prompts, completions = list(ds["prompt"]), list(ds["completion"])
        if prompts and isinstance(prompts[0], list):          # conversational rows
            if getattr(tok, "chat_template", None) is None:
                return {}
            plen = _chat_lengths(tok, prompts, True)
            total = _chat_lengths(tok, [p + c for p, c in zip(prompts, completions)], False)
        else:
            plen = _lengths(tok, prompts)
            total = _lengths(tok, [p + c for p, c in zip(prompts, completions)]) + 1   # + eos
        dropped = int((plen >= max_length).sum())
        cut = int(((total > max_length) & (plen < max_length)).sum())
        return {"token_lengths": percentiles(total), "prompt_token_lengths": percentiles(plen),
                "predicted_drops": {"answer_truncated_away": dropped} if dropped else {},
                "answer_truncated": cut, "suggested_max_length": suggest_max_length(total)}
    if objective == "dpo":
        p = list(ds["prompt"])
        if p and not isinstance(p[0], str):
            return {}
        longest = [max(a, b) for a, b in zip(_lengths(tok, [x + y for x, y in zip(p, ds["chosen"])]),
                                              _lengths(tok, [x + y for x, y in zip(p, ds["rejected"])]))]
        total = np.asarray(longest, dtype=np.int64)
        return {"token_lengths": percentiles(total), "truncated": int((total > max_length).sum()),
                "suggested_max_length": suggest_max_length(total)}
    return {}


def account_drops(split: str, n_in: int, n_used: int, report: dict[str, Any]) -> dict[str, Any]:
    """Reconcile what the trainer kept with the prediction: every dropped row gets a reason."""
    dropped = n_in - n_used
    reasons = dict(report.get("predicted_drops") or {})
    explained = sum(reasons.values())
    if dropped != explained:
        # the trainer's own count wins; any difference is named as such rather than hidden
        if dropped > explained:
            reasons["dropped_by_trainer_other"] = dropped - explained
        else:
            reasons = {k: v for k, v in reasons.items()} | {"prediction_overcounted": explained - dropped}
    out = {"rows_in": n_in, "rows_used": n_used, "dropped": dropped,
           "dropped_by_reason": {k: v for k, v in reasons.items() if v}}
    for k in ("token_lengths", "prompt_token_lengths", "truncated", "answer_truncated", "suggested_max_length"):
        if k in report:
            out[k] = report[k]
    return out


def fail_if_empty(split: str, acct: dict[str, Any], max_length: int) -> None:
    """No row left: say why and which max_length would fit, instead of ``num_samples=0``."""
    if acct["rows_used"] > 0 or acct["rows_in"] == 0:
        return
    lens = acct.get("token_lengths") or {}
    pct = ", ".join(f"{k} {v}" for k, v in lens.items())
    why = "; ".join(f"{v} {k.replace('_', ' ')}" for k, v in acct["dropped_by_reason"].items())
    raise DataError(
        f"every {split} row ({acct['rows_in']}) was dropped with training.max_length {max_length} ({why}): "
        f"the prompt alone fills the budget, so the answer is cut off and nothing is left to learn. "
        f"Token lengths (prompt + answer): {pct}. Set training.max_length to {acct.get('suggested_max_length')} "
        f"(p99, rounded up to a multiple of 64) or shorten the prompts (e.g. data.ni.num_pos_examples: 0).")
