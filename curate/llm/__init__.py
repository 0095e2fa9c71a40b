"""LLM generation backends behind one interface: transformers (continuous batching),
vLLM (optional) and OpenAI-compatible HTTP servers.

Import-light on purpose: torch/transformers/httpx load only when a backend is built, and the
package needs neither polars nor pydantic (so benchmark scripts run on bare GPU images)."""
from __future__ import annotations

from curate.llm.base import LLM, BackendSpec, Generation, SamplingParams, load_backend

__all__ = ["LLM", "BackendSpec", "Generation", "SamplingParams", "load_backend"]
