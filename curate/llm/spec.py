"""The ``llm:`` option of steps and augmenters that generate with a curate LLM backend
(``balance``'s SMOTE generator, ``backtranslate``): a union discriminated by ``backend``
(``transformers`` when absent), so ``base_url`` is only accepted for ``http`` and ``validate`` /
``schema`` check it. It validates to the plain dict the callers hand to
:class:`curate.llm.base.BackendSpec` and :class:`curate.llm.base.SamplingParams`.

Uses pydantic, unlike the rest of :mod:`curate.llm`; only config models import it.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, PlainSerializer, Tag

#: The validated value is a plain dict: serialise it as it is.
_AS_IS = PlainSerializer(lambda v: v, return_type=Any)


class _LLMBase(BaseModel):
    """Model and sampling, shared by every backend."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(description="HF model name or local path (transformers/vllm), or the served model name (http).")
    chat: bool = Field(default=True, description="Wrap prompts as chat messages (chat template / chat endpoint).")
    max_new_tokens: int = Field(default=256, ge=1, le=32768, description="Tokens generated per completion.")
    temperature: float = Field(default=0.7, ge=0.0, le=5.0, description="Sampling temperature (0 = greedy).")
    top_p: float = Field(default=0.95, gt=0.0, le=1.0, description="Nucleus sampling mass.")


class TransformersLLM(_LLMBase):
    """Generate in-process with transformers, batched by a padded-token budget."""

    backend: Literal["transformers"] = Field(default="transformers", description="Generation backend.")
    device: str | None = Field(default=None, description="cpu, cuda, cuda:1 ... (default: cuda if available).")
    dtype: str | None = Field(default=None, description="bfloat16, float32, ... (default: bf16 on CUDA).")
    batch_tokens: int = Field(default=16384, ge=64, description="Token budget of a batch: with continuous batching (the default packing) the KV cache holds at most this many tokens (slots x longest prompt+budget); with fixed batches, padded tokens per batch.")
    max_batch_size: int = Field(default=256, ge=1, description="Most prompts per batch.")


class VllmLLM(_LLMBase):
    """Generate in-process with vLLM (GPU)."""

    backend: Literal["vllm"] = Field(description="Generation backend.")


class HttpLLM(_LLMBase):
    """Call an OpenAI-compatible server (vLLM serve, llama.cpp, TGI, a hosted API)."""

    backend: Literal["http"] = Field(description="Generation backend.")
    base_url: str = Field(description="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1.")
    api_key_env: str | None = Field(default=None, description="NAME of the environment variable holding the API key (never the key).")
    concurrency: int = Field(default=8, ge=1, le=512, description="Parallel requests.")
    timeout: float = Field(default=120.0, gt=0, description="Seconds per request.")
    max_retries: int = Field(default=5, ge=0, le=20, description="Retries on 429/5xx/timeouts.")


def _backend(v: Any) -> str:
    if isinstance(v, dict):
        return v.get("backend", "transformers")
    return getattr(v, "backend", "transformers")


def _llm_dict(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_unset=True)


#: The ``llm:`` option of ``balance`` (SMOTE generator) and ``backtranslate``; validates to a dict.
LLMSpec = Annotated[
    Annotated[Union[Annotated[TransformersLLM, Tag("transformers")], Annotated[VllmLLM, Tag("vllm")],
                    Annotated[HttpLLM, Tag("http")]],
              Discriminator(_backend, custom_error_type="unknown_backend",
                            custom_error_message="backend must be transformers, vllm or http")],
    AfterValidator(_llm_dict), _AS_IS]
