"""Config fields every LLM-using step shares (model, backend, sampling, batching), and the
resumable shard loop that runs generation in chunks written as they finish."""
from __future__ import annotations

from typing import Any, Callable, Literal

import polars as pl
from pydantic import Field

from curate.step import StepConfig, StepContext


class LLMOptions(StepConfig):
    """Which model generates and how it samples."""

    model: str = Field(description="HF model name or local path (transformers/vllm), or the served model name (http).")
    backend: Literal["transformers", "vllm", "http"] = Field(default="transformers", description="Generation backend.")
    base_url: str | None = Field(default=None, description="http backend: OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1.")
    api_key_env: str | None = Field(default=None, description="http backend: NAME of the environment variable holding the API key (never the key).")
    chat: bool = Field(default=True, description="Wrap prompts as chat messages (chat template / chat endpoint).")
    max_new_tokens: int = Field(default=256, ge=1, le=32768, description="Tokens generated per completion.")
    temperature: float = Field(default=0.7, ge=0.0, le=5.0, description="Sampling temperature (0 = greedy).")
    top_p: float = Field(default=0.95, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    seed: int | None = Field(default=None, description="Sampling seed (default: the pipeline seed).")
    batch_tokens: int = Field(default=16384, ge=64, description="transformers: token budget of a batch: with continuous batching (the default packing) the KV cache holds at most this many tokens (slots x longest prompt+budget); with fixed batches, padded tokens per batch.")
    max_batch_size: int = Field(default=256, ge=1, description="transformers: most prompts per batch.")
    concurrency: int = Field(default=8, ge=1, le=512, description="http: parallel requests.")
    timeout: float = Field(default=120.0, gt=0, description="http: seconds per request.")
    max_retries: int = Field(default=5, ge=0, le=20, description="http: retries on 429/5xx/timeouts.")
    device: str | None = Field(default=None, description="transformers: cpu, cuda, cuda:1 ... (default: cuda if available).")
    shard_size: int = Field(default=64, ge=1, description="Prompts per resumable shard (written as each finishes).")

    def backend_spec(self, model: str | None = None):
        from curate.llm.base import BackendSpec
        return BackendSpec(model=model or self.model, backend=self.backend, base_url=self.base_url,
                           api_key_env=self.api_key_env, batch_tokens=self.batch_tokens,
                           max_batch_size=self.max_batch_size, chat=self.chat, device=self.device,
                           concurrency=self.concurrency, timeout=self.timeout, max_retries=self.max_retries)

    def sampling(self, ctx: StepContext, **over: Any):
        from curate.llm.base import SamplingParams
        kw = dict(max_new_tokens=self.max_new_tokens, temperature=self.temperature, top_p=self.top_p,
                  seed=self.seed if self.seed is not None else ctx.seed)
        kw.update(over)
        return SamplingParams(**kw)

    def llm(self, model: str | None = None):
        from curate.llm.base import load_backend
        return load_backend(self.backend_spec(model))


def run_shards(ctx: StepContext, n: int, size: int, work: Callable[[int, int, int], tuple[pl.DataFrame, pl.DataFrame, dict]],
               prefix: str = "") -> tuple[list[pl.DataFrame], list[pl.DataFrame], list[dict]]:
    """Run ``work(key, start, stop)`` over ``range(n)`` in chunks of ``size``; each chunk's
    (kept, rejected, stats) is written to ``ctx.shards`` before the next starts, and chunks
    already written (a killed earlier run) are read back instead of recomputed."""
    kept, rej, stats = [], [], []
    for key, start in enumerate(range(0, n, size)):
        stop = min(n, start + size)
        skey = f"{prefix}{key:06d}" if prefix else key
        if ctx.shards is not None and ctx.shards.done(skey):
            k, r, s = ctx.shards.read(skey)
        else:
            k, r, s = work(key, start, stop)
            if ctx.shards is not None:
                ctx.shards.write(skey, k, r, s)
        kept.append(k)
        rej.append(r)
        stats.append(s)
        ctx.progress(stop - start)
    return kept, rej, stats
