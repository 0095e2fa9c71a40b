"""Back-translation: source → pivot → source, with MarianMT through transformers or a curate LLM.

MarianMT path: ``Helsinki-NLP/opus-mt-{src}-{via}`` and ``opus-mt-{via}-{src}`` by default (any
seq2seq model name or local path via ``forward_model``/``backward_model``). Texts are sorted by
length and translated in batches (``batch_size``) with padding, on CUDA in float16 when a GPU is
present, on CPU otherwise. Greedy/beam decoding by default; ``sample: true`` adds diversity
(seeded with ``torch.manual_seed``). Real opus-mt tokenizers need the ``sentencepiece`` package.

LLM path (``llm: {model: ..., backend: ...}``): the same round trip by prompt through
:mod:`curate.llm` (any backend: transformers, vLLM, OpenAI-compatible HTTP).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Sequence

from pydantic import Field

from curate.augmenters._base import Augmenter, AugmenterConfig, register_augmenter
from curate.llm.spec import LLMSpec
from curate.extras import require

TRANSLATE_PROMPT = "Translate the following text from {src} to {dst}. Reply with the translation only.\n\n{text}"


class BacktranslateConfig(AugmenterConfig):
    via: str = Field(default="de", description="Pivot language code (ISO 639-1).")
    source_lang: str = Field(default="en", description="Language of the input texts.")
    forward_model: str | None = Field(default=None, description="source→pivot model (default opus-mt).")
    backward_model: str | None = Field(default=None, description="pivot→source model (default opus-mt).")
    batch_size: int = Field(default=32, ge=1, le=4096, description="Texts per generate() call.")
    max_new_tokens: int = Field(default=256, ge=1, description="Longest translation generated.")
    num_beams: int = Field(default=1, ge=1, le=16, description="Beam width (1 = greedy).")
    sample: bool = Field(default=False, description="Sample instead of greedy/beam search (more diverse).")
    temperature: float = Field(default=0.8, gt=0, le=2, description="Sampling temperature (with sample).")
    device: str | None = Field(default=None, description="`cuda`, `cpu`, ... (default: cuda if available).")
    llm: LLMSpec | None = Field(default=None, description="Use a curate LLM backend instead of MarianMT "
                                                    "({model, backend, sampling}; see `curate show augment`).")

    def models(self) -> tuple[str, str]:
        fw = self.forward_model or f"Helsinki-NLP/opus-mt-{self.source_lang}-{self.via}"
        bw = self.backward_model or f"Helsinki-NLP/opus-mt-{self.via}-{self.source_lang}"
        return fw, bw


@lru_cache(maxsize=8)
def load_seq2seq(name: str, device: str | None):
    """Tokenizer + model for ``name`` on ``device`` (fp16 on CUDA), cached per process."""
    require("torch", extra="augment")
    import torch
    require("transformers", extra="augment")
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    tok = AutoTokenizer.from_pretrained(name)
    dtype = torch.float16 if dev.startswith("cuda") else torch.float32
    model = AutoModelForSeq2SeqLM.from_pretrained(name, dtype=dtype).to(dev).eval()
    return tok, model, dev


def translate(texts: Sequence[str], model_name: str, cfg: BacktranslateConfig, seed: int) -> list[str]:
    """Translate ``texts`` in length-sorted batches; results in input order."""
    require("torch", extra="augment")
    import torch
    tok, model, dev = load_seq2seq(model_name, cfg.device)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: list[str] = [""] * len(texts)
    gen: dict[str, Any] = {"max_new_tokens": cfg.max_new_tokens, "num_beams": cfg.num_beams}
    if cfg.sample:
        gen.update(do_sample=True, temperature=cfg.temperature, top_k=0)
    else:
        gen.update(do_sample=False)
    torch.manual_seed(seed)
    with torch.inference_mode():
        for lo in range(0, len(order), cfg.batch_size):
            idx = order[lo:lo + cfg.batch_size]
            enc = tok([texts[i] for i in idx], return_tensors="pt", padding=True, truncation=True).to(dev)
            ids = model.generate(**enc, **gen)
            for i, t in zip(idx, tok.batch_decode(ids, skip_special_tokens=True)):
                out[i] = t.strip()
    return out


@register_augmenter("backtranslate")
class Backtranslate(Augmenter):
    """Paraphrase by translating to ``via`` and back."""

    Config = BacktranslateConfig

    def augment(self, texts: Sequence[str], seed: int) -> list[str | None]:
        cfg: BacktranslateConfig = self.config  # type: ignore[assignment]
        idx = [i for i, t in enumerate(texts) if t and t.strip()]
        out: list[str | None] = [None] * len(texts)
        if not idx:
            return out
        src = [texts[i] for i in idx]
        if cfg.llm is not None:
            pivot = self._llm(src, cfg.source_lang, cfg.via, seed)
            back = self._llm([p or "" for p in pivot], cfg.via, cfg.source_lang, seed + 1)
        else:
            fw, bw = cfg.models()
            pivot = translate(src, fw, cfg, seed)
            back = translate(pivot, bw, cfg, seed + 1)
        for i, b in zip(idx, back):
            out[i] = b if b and b.strip().lower() != texts[i].strip().lower() else None
        return out

    def _llm(self, texts: list[str], src: str, dst: str, seed: int) -> list[str]:
        from curate.llm import BackendSpec, SamplingParams, load_backend
        spec = dict(self.config.llm or {})
        sp = {k: spec.pop(k) for k in ("max_new_tokens", "temperature", "top_p") if k in spec}
        llm = load_backend(BackendSpec(**spec))
        res = llm.generate([TRANSLATE_PROMPT.format(src=src, dst=dst, text=t) for t in texts],
                           SamplingParams(seed=seed, **sp))
        return [g[0].text.strip() if g else "" for g in res]
