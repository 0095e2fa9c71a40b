"""OpenAI-compatible HTTP backend (vLLM, TGI, llama.cpp, Ollama, hosted APIs): bounded
concurrency, retries with exponential backoff on 429/5xx and timeouts (honouring Retry-After),
and the API key read from an environment variable."""
from __future__ import annotations

import email.utils
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

from curate.errors import CurateError
from curate.io import mask_secrets, url_secrets
from curate.llm.base import (
    LLM,
    BackendSpec,
    Generation,
    Prompt,
    SamplingParams,
    api_key_from_env,
    apply_stop,
)
from curate.registry import register_llm_backend
from curate.extras import require

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class HttpError(CurateError):
    """A request to the generation server failed for good (after retries, or a 4xx)."""


def retry_after_seconds(value: str | None) -> float | None:
    """Parse a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return None


@register_llm_backend("http")
class HttpLLM(LLM):
    """Talks to ``{base_url}/chat/completions`` (chat prompts) or ``/completions`` (raw text)."""

    def __init__(self, spec: BackendSpec) -> None:
        require("httpx", extra="llm")
        import httpx

        if not spec.base_url:
            raise CurateError("backend http needs `base_url` (e.g. http://127.0.0.1:8000/v1)")
        self.spec = spec
        self.base_url = spec.base_url.rstrip("/")
        headers = {"Content-Type": "application/json"}
        key = api_key_from_env(spec.api_key_env)
        self._secrets = [key, *url_secrets(self.base_url)]     # masked in every error message
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self.backoff = float(spec.extra.get("backoff", 0.5))
        self.max_backoff = float(spec.extra.get("max_backoff", 30.0))
        self.client = httpx.Client(headers=headers, timeout=spec.timeout,
                                   limits=httpx.Limits(max_connections=spec.concurrency))
        self.stats = {"requests": 0, "retries": 0, "prompt_tokens": 0, "completion_tokens": 0}
        self._lock = threading.Lock()
        self._rng = random.Random(0)

    # ------------------------------------------------------------------ one request
    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        require("httpx", extra="llm")
        import httpx
        url = f"{self.base_url}{path}"
        last = ""
        for attempt in range(self.spec.max_retries + 1):
            wait = None
            try:
                with self._lock:
                    self.stats["requests"] += 1
                r = self.client.post(url, json=body)
            except (httpx.TimeoutException, httpx.TransportError) as e:
                last = f"{type(e).__name__}: {e}"
            else:
                if r.status_code == 200:
                    return r.json()
                last = f"HTTP {r.status_code}: {r.text[:200]}"
                if r.status_code not in RETRY_STATUS:
                    raise HttpError(mask_secrets(f"POST {url} failed: {last}", self._secrets))
                wait = retry_after_seconds(r.headers.get("retry-after"))
            if attempt == self.spec.max_retries:
                break
            if wait is None:
                with self._lock:
                    jitter = self._rng.random()
                wait = min(self.max_backoff, self.backoff * (2 ** attempt)) * (0.5 + 0.5 * jitter)
            with self._lock:
                self.stats["retries"] += 1
            time.sleep(wait)
        raise HttpError(mask_secrets(f"POST {url} failed after {self.spec.max_retries + 1} attempts; "
                                     f"last error: {last}", self._secrets))

    def _one(self, prompt: Prompt, params: SamplingParams, seed: int) -> list[Generation]:
        body: dict[str, Any] = {"model": self.spec.model, "max_tokens": params.max_new_tokens,
                                "temperature": params.temperature, "top_p": params.top_p,
                                "seed": seed, "n": params.n}
        if params.stop:
            body["stop"] = list(params.stop)
        if params.ignore_eos:
            body["ignore_eos"] = True                      # vLLM extension
        chat = not isinstance(prompt, str) or self.spec.chat
        if chat:
            body["messages"] = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
            path = "/chat/completions"
        else:
            body["prompt"] = prompt
            path = "/completions"
        gens: list[Generation] = []
        while len(gens) < params.n:                        # some servers ignore n > 1
            data = self._post(path, body)
            usage = data.get("usage") or {}
            choices = sorted(data.get("choices") or [], key=lambda c: c.get("index", 0))
            if not choices:
                raise HttpError(mask_secrets(f"POST {self.base_url}{path}: response has no choices", self._secrets))
            for c in choices:
                text = c["message"]["content"] if chat else c.get("text", "")
                text, _ = apply_stop(text or "", params.stop)
                gens.append(Generation(text, int(usage.get("prompt_tokens", 0)),
                                       int(usage.get("completion_tokens", 0)) // max(1, len(choices)),
                                       c.get("finish_reason") or "stop"))
            body["seed"] = body["seed"] + 1
            body["n"] = params.n - len(gens)
        with self._lock:
            self.stats["prompt_tokens"] += gens[0].prompt_tokens
            self.stats["completion_tokens"] += sum(g.completion_tokens for g in gens)
        return gens[:params.n]

    # ------------------------------------------------------------------ interface
    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Generation]]:
        with ThreadPoolExecutor(max_workers=max(1, self.spec.concurrency)) as pool:
            futs = [pool.submit(self._one, p, params, params.seed * 1_000_003 + i) for i, p in enumerate(prompts)]
            return [f.result() for f in futs]

    def close(self) -> None:
        self.client.close()
