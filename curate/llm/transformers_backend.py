"""Batched generation with 🤗 transformers: chat templates, continuous batching (finished rows
leave the batch and waiting prompts take their place, :mod:`curate.llm.continuous`), inference
mode, bf16 + SDPA on CUDA, and fewer rows when CUDA runs out of memory.

``packing: continuous`` (default) decodes on curate's slots (one seeded generator per request, so a
text does not depend on its batch company). ``packing: transformers_cb`` runs greedy decoding on
transformers' own continuous-batching manager instead (paged cache, chunked prefill; measured no
faster here on CPU, see bench/generate.py), sampling still on the slots.
``packing: min_cost`` / ``greedy`` (and models whose cache is not plain full attention) use fixed
batches instead: prompts sorted by length, cut by a padded-token budget, left padded."""
from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

from curate.llm.base import (
    LLM,
    BackendSpec,
    Generation,
    Prompt,
    SamplingParams,
    apply_stop,
)
from curate.llm.batching import pack_by_tokens, pack_min_cost, restore_order
from curate.llm.continuous import (DecodeOptions, Request, generate_continuous, generate_transformers_cb,
                                   supports_continuous)
from curate.registry import register_llm_backend
from curate.extras import require

log = logging.getLogger("curate.llm")

#: Default per-decoding-step overhead in token units: small on CPUs (compute-bound, so padding
#: matters most), large on GPUs (launch-bound, so bigger batches matter most).
STEP_OVERHEAD_TOKENS = {"cpu": 8192, "cuda": 1 << 20}


def is_oom(exc: BaseException) -> bool:
    """True for CUDA (or other accelerator) out-of-memory errors."""
    require("torch", extra="ml")
    import torch
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


@register_llm_backend("transformers")
class TransformersLLM(LLM):
    """A causal LM loaded with ``AutoModelForCausalLM`` from a hub name or a local path."""

    def __init__(self, spec: BackendSpec, model: Any = None, tokenizer: Any = None) -> None:
        require("torch", extra="ml")
        import torch
        require("transformers", extra="ml")
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.spec = spec
        self.device = spec.device or ("cuda" if torch.cuda.is_available() else "cpu")
        on_gpu = self.device.startswith("cuda")
        dtype = getattr(torch, spec.dtype) if spec.dtype else (torch.bfloat16 if on_gpu else torch.float32)
        self.tokenizer = tokenizer or AutoTokenizer.from_pretrained(spec.model)
        self.tokenizer.padding_side = "left"          # generation continues from the right edge
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if model is None:
            model = AutoModelForCausalLM.from_pretrained(spec.model, dtype=dtype, attn_implementation="sdpa")
        self.model = model.to(self.device).eval()
        #: batch sizes actually run (tests and benchmarks read this)
        self.batch_log: list[int] = []
        #: called with each batch's size before it runs (tests inject OOMs here)
        self.before_batch: Callable[[int], None] | None = None
        #: continuous batching: live rows at most (halved for good after an out-of-memory error)
        self.max_rows = spec.max_batch_size
        self._continuous: bool | None = None
        self._cb_error: str | None = None      # why transformers' continuous batching cannot run here

    # ------------------------------------------------------------------ prompts
    def render(self, prompt: Prompt) -> str:
        """Prompt text as the model sees it (chat template applied when available)."""
        tok = self.tokenizer
        if isinstance(prompt, str):
            if not self.spec.chat or not getattr(tok, "chat_template", None):
                return prompt
            prompt = [{"role": "user", "content": prompt}]
        if not getattr(tok, "chat_template", None):
            return "\n".join(m["content"] for m in prompt)
        return tok.apply_chat_template(list(prompt), tokenize=False, add_generation_prompt=True)

    def encode(self, prompts: Sequence[Prompt]) -> list[list[int]]:
        texts = [self.render(p) for p in prompts]
        templated = self.spec.chat and getattr(self.tokenizer, "chat_template", None)
        return self.tokenizer(texts, add_special_tokens=not templated)["input_ids"]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(x) for x in self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]]

    # ------------------------------------------------------------------ generation
    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Generation]]:
        if not prompts:
            return []
        return self.generate_tokens(self.encode(prompts), params)

    def generate_tokens(self, ids: Sequence[Sequence[int]], params: SamplingParams,
                        max_new_tokens: Sequence[int] | None = None) -> list[list[Generation]]:
        """Generate from already tokenized prompts (benchmarks, callers with their own templates).

        ``max_new_tokens`` optionally gives each prompt its own budget (default:
        ``params.max_new_tokens`` for all)."""
        ids = [list(x) for x in ids]
        budgets = [params.max_new_tokens] * len(ids) if max_new_tokens is None else [int(m) for m in max_new_tokens]
        if len(budgets) != len(ids):
            raise ValueError(f"{len(budgets)} max_new_tokens for {len(ids)} prompts")
        if self.uses_continuous():
            return self._generate_continuous(ids, params, budgets)
        batches = self.plan([len(x) for x in ids], max(budgets, default=0) * params.n)
        results = []
        for b, idx in enumerate(batches):
            # one seed per batch: the batches are a deterministic function of the prompts, so a
            # fixed seed and prompt list give the same output (also after a resume)
            p = params.with_(max_new_tokens=max(budgets[i] for i in idx))
            results.append(self._run_with_backoff([ids[i] for i in idx], p, params.seed * 1_000_003 + b,
                                                  [budgets[i] for i in idx]))
        return restore_order(batches, results, len(ids))

    def uses_continuous(self) -> bool:
        """Whether generation runs with continuous batching (``packing: continuous`` and a model
        whose KV cache is plain full attention)."""
        if self._continuous is None:
            self._continuous = self.spec.packing in ("continuous", "transformers_cb") and supports_continuous(self.model)
        return self._continuous

    def _generate_continuous(self, ids: list[list[int]], params: SamplingParams,
                             budgets: list[int]) -> list[list[Generation]]:
        """Continuous batching; on out-of-memory, half the rows (kept for later calls) and redo."""
        require("torch", extra="ml")
        import torch
        tok = self.tokenizer
        eos = self.model.generation_config.eos_token_id
        eos = tok.eos_token_id if eos is None else eos
        eos_ids = frozenset() if params.ignore_eos or eos is None else frozenset(eos if isinstance(eos, list) else [eos])
        filler = tok.bos_token_id if tok.bos_token_id is not None else tok.pad_token_id
        reqs = [Request(p or [filler], m, seed=(params.seed * 1_000_003 + i) * 1_009 + j)
                for i, (p, m) in enumerate(zip(ids, budgets)) for j in range(params.n)]

        def step(rows: int) -> None:
            if self.before_batch is not None:
                self.before_batch(rows)
            self.batch_log.append(rows)

        while True:
            opts = DecodeOptions(eos_ids=eos_ids, temperature=params.temperature, top_p=params.top_p,
                                 pad_id=tok.pad_token_id, max_rows=self.max_rows,
                                 batch_tokens=self.spec.batch_tokens, prefill_tokens=self.spec.batch_tokens)
            try:
                with torch.inference_mode():
                    if not (opts.temperature <= 0 and self.spec.packing == "transformers_cb"
                            and self._transformers_cb(reqs, opts)):
                        generate_continuous(self.model, reqs, opts, on_step=step)
                break
            except Exception as e:  # noqa: BLE001 - re-raised unless it is an OOM
                if not is_oom(e) or self.max_rows == 1:
                    raise
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            self.max_rows = max(1, self.max_rows // 2)
        gens: list[list[Generation]] = []
        for i, prompt_ids in enumerate(ids):
            row = []
            for r in reqs[i * params.n:(i + 1) * params.n]:
                toks = r.tokens[:-1] if r.stopped else r.tokens
                text = tok.decode(toks, skip_special_tokens=True)
                text, cut = apply_stop(text, params.stop)
                row.append(Generation(text, len(prompt_ids), len(toks), "stop" if (r.stopped or cut) else "length"))
            gens.append(row)
        return gens

    def _transformers_cb(self, reqs: list[Request], opts: DecodeOptions) -> bool:
        """Greedy decoding through transformers' continuous-batching manager (``packing:
        transformers_cb``); False, with the reason logged, when this model or transformers version
        cannot run it (then curate's slots decode)."""
        if self._cb_error is not None:
            return False
        try:
            generate_transformers_cb(self.model, reqs, opts)
            return True
        except Exception as e:  # noqa: BLE001 - an OOM is re-raised for the backoff
            if is_oom(e):
                raise
            self._cb_error = f"{type(e).__name__}: {e}"
            log.info("transformers' continuous batching unavailable (%s); curate's decoding slots run",
                     self._cb_error)
            for r in reqs:
                r.tokens, r.stopped = [], False
            return False

    def plan(self, lengths: Sequence[int], new_tokens: int) -> list[list[int]]:
        """Batches (lists of prompt indices) for prompts of these token lengths."""
        if self.spec.packing == "greedy":
            return pack_by_tokens(lengths, new_tokens, self.spec.batch_tokens, self.spec.max_batch_size)
        overhead = self.spec.step_overhead_tokens
        if overhead is None:
            overhead = STEP_OVERHEAD_TOKENS.get(self.device.split(":")[0], STEP_OVERHEAD_TOKENS["cuda"])
        return pack_min_cost(lengths, new_tokens, self.spec.batch_tokens, self.spec.max_batch_size, overhead)

    def _run_with_backoff(self, ids: list[list[int]], params: SamplingParams, seed: int,
                          budgets: list[int]) -> list[list[Generation]]:
        """Run a batch; on OOM free the cache and run it as two halves (recursively)."""
        require("torch", extra="ml")
        import torch
        try:
            return self._run_batch(ids, params, seed, budgets)
        except Exception as e:  # noqa: BLE001 - re-raised unless it is an OOM
            if not is_oom(e) or len(ids) == 1:
                raise
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        mid = len(ids) // 2
        return (self._run_with_backoff(ids[:mid], params, seed, budgets[:mid])
                + self._run_with_backoff(ids[mid:], params, seed + 7919, budgets[mid:]))

    def _run_batch(self, ids: list[list[int]], params: SamplingParams, seed: int,
                   budgets: list[int]) -> list[list[Generation]]:
        """One fixed, left-padded batch through ``model.generate``; row ``i`` keeps at most
        ``budgets[i]`` new tokens."""
        require("torch", extra="ml")
        import torch
        require("transformers", extra="ml")
        from transformers import GenerationConfig

        if self.before_batch is not None:
            self.before_batch(len(ids))
        tok = self.tokenizer
        enc = tok.pad({"input_ids": ids}, padding=True, return_tensors="pt").to(self.device)
        sample = params.temperature > 0
        gc = GenerationConfig(
            max_new_tokens=params.max_new_tokens, do_sample=sample,
            temperature=params.temperature if sample else None, top_p=params.top_p if sample else None,
            num_return_sequences=params.n, pad_token_id=tok.pad_token_id,
            eos_token_id=self.model.generation_config.eos_token_id or tok.eos_token_id,
            min_new_tokens=params.max_new_tokens if params.ignore_eos else None)
        torch.manual_seed(seed)
        with torch.inference_mode():
            out = self.model.generate(**enc, generation_config=gc)
        self.batch_log.append(len(ids))
        width = enc["input_ids"].shape[1]
        new = out[:, width:].tolist()
        eos = gc.eos_token_id
        eos_set = set(eos if isinstance(eos, list) else [eos]) if eos is not None else set()
        gens: list[list[Generation]] = []
        for i, prompt_ids in enumerate(ids):
            row = []
            for j in range(params.n):
                toks = new[i * params.n + j][:budgets[i]]
                n_tok, stopped = len(toks), False
                for k, t in enumerate(toks):
                    if t in eos_set and not params.ignore_eos:
                        n_tok, stopped = k, True
                        break
                toks = [t for t in toks[:n_tok] if t != tok.pad_token_id]
                text = tok.decode(toks, skip_special_tokens=True)
                text, cut = apply_stop(text, params.stop)
                row.append(Generation(text, len(prompt_ids), n_tok, "stop" if (stopped or cut) else "length"))
            gens.append(row)
        return gens

    # ------------------------------------------------------------------ scoring
    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> list[float]:
        """Sum of log-probabilities of each completion's tokens given the prompt (batched)."""
        require("torch", extra="ml")
        import torch
        p_ids = self.encode(prompts)
        c_ids = self.tokenizer(list(completions), add_special_tokens=False)["input_ids"]
        full = [p + c for p, c in zip(p_ids, c_ids)]
        batches = pack_by_tokens([len(x) for x in full], 0, self.spec.batch_tokens, self.spec.max_batch_size)
        results = []
        for idx in batches:
            enc = self.tokenizer.pad({"input_ids": [full[i] for i in idx]}, padding=True,
                                     return_tensors="pt").to(self.device)
            with torch.inference_mode():
                logits = self.model(**enc).logits.float()
            logp = torch.log_softmax(logits[:, :-1], dim=-1)
            target = enc["input_ids"][:, 1:]
            tok_lp = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
            width = enc["input_ids"].shape[1]
            res = []
            for r, i in enumerate(idx):
                nc = len(c_ids[i])
                res.append(float(tok_lp[r, width - 1 - nc:].sum()) if nc else 0.0)
            results.append(res)
        return restore_order(batches, results, len(full))

    def close(self) -> None:
        require("torch", extra="ml")
        import torch
        self.model = None  # type: ignore[assignment]
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
