"""Model-backed text checks for ``verify``: language confidence (lingua, offline) and perplexity
under a small causal LM. Both load lazily and cache their model per process."""
from __future__ import annotations

import math
from functools import lru_cache
from curate.extras import require

#: Languages lingua weighs the wanted ones against (a closed set keeps lingua fast).
COMMON = ("en", "fr", "de", "es", "it", "pt", "nl", "sv", "pl", "tr", "id", "ru", "zh", "ja", "ar")


@lru_cache(maxsize=8)
def _detector(codes: tuple[str, ...]):
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder
    langs = [Language.from_iso_code_639_1(getattr(IsoCode639_1, c.upper())) for c in codes]
    return LanguageDetectorBuilder.from_languages(*langs).build()


def language_confidence(texts: list[str | None], wanted: list[str], min_words: int) -> list[float | None]:
    """lingua's confidence that each text is in one of ``wanted`` (None: too short to tell)."""
    codes = tuple(sorted({*COMMON, *(c.lower() for c in wanted)}))
    det = _detector(codes)
    from lingua import IsoCode639_1, Language
    want = {Language.from_iso_code_639_1(getattr(IsoCode639_1, c.upper())) for c in wanted}
    idx = [i for i, t in enumerate(texts) if t and len(t.split()) >= min_words]
    out: list[float | None] = [None] * len(texts)
    values = det.compute_language_confidence_values_in_parallel([texts[i] for i in idx])
    for i, vals in zip(idx, values):
        out[i] = sum(v.value for v in vals if v.language in want)
    return out


@lru_cache(maxsize=2)
def _causal_lm(name: str):
    require("transformers", extra="ml")
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(name)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    tok.padding_side = "right"
    model = AutoModelForCausalLM.from_pretrained(name)
    model.eval()
    return tok, model


def perplexities(texts: list[str | None], model: str, batch_size: int = 16) -> list[float | None]:
    """Perplexity of each text under ``model`` (None for empty text), length-sorted batches."""
    require("torch", extra="ml")
    import torch
    tok, lm = _causal_lm(model)
    idx = sorted((i for i, t in enumerate(texts) if t), key=lambda i: len(texts[i] or ""))
    out: list[float | None] = [None] * len(texts)
    for s in range(0, len(idx), batch_size):
        chunk = idx[s:s + batch_size]
        enc = tok([texts[i] for i in chunk], return_tensors="pt", padding=True, truncation=True, max_length=512)
        with torch.no_grad():
            logits = lm(**enc).logits[:, :-1].float()
        target = enc["input_ids"][:, 1:]
        mask = enc["attention_mask"][:, 1:].float()
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, reduction="none") * mask
        per_seq = nll.sum(1) / mask.sum(1).clamp(min=1)
        for i, v in zip(chunk, per_seq.tolist()):
            out[i] = math.exp(min(v, 50.0))
    return out
