"""The backend interface: ``generate`` (n completions per prompt, with sampling params and a
seed) and ``score`` (log-likelihood of a completion), plus token counts for accounting."""
from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import Literal, Sequence, Union

#: A prompt is raw text or a chat conversation (list of {"role", "content"} messages).
Prompt = Union[str, Sequence[dict]]


@dataclass(frozen=True)
class SamplingParams:
    """How to sample. ``temperature == 0`` means greedy decoding; ``seed`` makes sampling
    reproducible for a fixed backend and prompt list; ``ignore_eos`` forces exactly
    ``max_new_tokens`` tokens (benchmarks)."""

    max_new_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 0.95
    n: int = 1
    seed: int = 0
    stop: tuple[str, ...] = ()
    ignore_eos: bool = False

    def with_(self, **kw) -> "SamplingParams":
        return replace(self, **kw)


@dataclass
class Generation:
    """One completion and what it cost."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "length"          # "stop" (EOS / stop string) or "length"


@dataclass
class BackendSpec:
    """Which backend and model to use (the `model:`/`backend:` keys of synth steps)."""

    model: str
    backend: Literal["transformers", "vllm", "http"] = "transformers"
    base_url: str | None = None
    api_key_env: str | None = None
    batch_tokens: int = 16384
    max_batch_size: int = 256
    chat: bool = True                  # apply the chat template / use /chat/completions
    packing: Literal["continuous", "transformers_cb", "min_cost", "greedy"] = "continuous"   # transformers: continuous batching, or how fixed batches are cut
    step_overhead_tokens: int | None = None  # transformers: per-step cost in token units (default by device)
    device: str | None = None          # transformers: "cpu", "cuda", ... (default: cuda if available)
    dtype: str | None = None           # transformers: "bfloat16", "float32", ... (default: bf16 on CUDA)
    concurrency: int = 8               # http: parallel requests
    timeout: float = 120.0             # http: seconds per request
    max_retries: int = 5               # http
    extra: dict = field(default_factory=dict)


class LLM(ABC):
    """A text generator. Results come back in prompt order, ``n`` generations per prompt."""

    spec: BackendSpec

    @abstractmethod
    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Generation]]:
        """Generate ``params.n`` completions for each prompt."""

    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> list[float]:
        """Sum of token log-probabilities of each completion given its prompt."""
        raise NotImplementedError(f"{type(self).__name__} cannot score completions")

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Approximate token counts (backends with a tokenizer override this)."""
        return [max(1, len(t) // 4) for t in texts]

    def close(self) -> None:
        """Release the model / connections."""

    def __enter__(self) -> "LLM":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_CACHE: dict[tuple, LLM] = {}


def load_backend(spec: BackendSpec, *, cache: bool = True) -> LLM:
    """Build (or reuse) the backend for ``spec``. Models are cached per process so several
    steps sharing a model load it once."""
    key = (spec.backend, spec.model, spec.base_url, spec.device, spec.dtype, spec.batch_tokens,
           spec.max_batch_size, spec.chat, spec.concurrency, spec.timeout, spec.max_retries, spec.packing,
           spec.step_overhead_tokens)
    if cache and key in _CACHE:
        return _CACHE[key]
    from curate import (
        registry,  # backends register themselves; the base never imports them
    )
    cls = registry.get("llm_backend", spec.backend)
    if cls is None:
        raise ValueError(f"unknown LLM backend {spec.backend!r}; known: {', '.join(registry.names('llm_backend'))}")
    llm: LLM = cls(spec)
    if cache:
        _CACHE[key] = llm
    return llm


def api_key_from_env(name: str | None) -> str | None:
    """Read an API key from the environment variable ``name`` (never from the config)."""
    if not name:
        return None
    val = os.environ.get(name)
    if val is None:
        from curate.errors import MissingEnvError
        raise MissingEnvError(name, "api_key_env")
    return val


def apply_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` at the first stop string; returns (text, stopped)."""
    cut = len(text)
    for s in stop:
        if s:
            i = text.find(s)
            if i != -1:
                cut = min(cut, i)
    return text[:cut], cut < len(text)
