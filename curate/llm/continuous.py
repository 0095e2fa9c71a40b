"""Continuous batching for 🤗 transformers causal LMs on a plain ``DynamicCache``.

A fixed batch decodes until its longest row is done: rows that hit EOS (or their own token
budget) early keep occupying the batch and burn compute on padding. Here a row leaves the batch
the step it finishes and a waiting prompt takes its place, so every decoding step works only on
live rows.

How, without a paged-attention kernel (CPU friendly, any model whose cache is plain
``DynamicLayer`` s — Llama, Mistral, Qwen2, Phi, ...):

* The KV cache is a preallocated buffer per layer, ``(slots, heads, capacity, head_dim)``, with a
  2D attention mask ``(slots, capacity)``; a step attends to the window of columns in use and
  every row writes its next token in place in the same column (no per-step ``torch.cat`` copy of
  the whole cache, which is what ``DynamicCache`` does and what dominates CPU decoding). Each row
  has its own RoPE position (``position_ids`` per row), so rows at different depths share a step.
* New prompts are prefilled in groups of alike length (queue sorted by length, little padding),
  and their keys/values are written into free slots, right-aligned with the current column.
  Masked columns contribute exact zeros to attention.
* A finished row frees its slot at once for the next waiting prompt. Leading columns no live row
  uses leave the window; when the window reaches the buffer's end it is moved back (rare copy);
  once nothing is waiting, slots are compacted so idle rows stop costing compute.
* Greedy decoding is the argmax; sampling draws each request's tokens from its own
  ``torch.Generator`` seeded from ``(seed, request)``, so a request's text does not depend on
  which other requests shared its steps.

GPU users with vLLM installed get the same idea (plus paged attention) from the ``vllm`` backend.
"""
from __future__ import annotations

import inspect
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence


@dataclass
class Request:
    """One completion to produce: prompt token ids and its own budget of new tokens."""

    prompt: list[int]
    max_new_tokens: int
    seed: int | None = None                 # sampling only: seeds this request's generator
    tokens: list[int] = field(default_factory=list)
    stopped: bool = False                   # ended on an EOS token (not on the budget)
    generator: Any = None


@dataclass
class DecodeOptions:
    """What the decoding loop needs besides the requests."""

    eos_ids: frozenset[int] = frozenset()
    temperature: float = 0.0
    top_p: float = 1.0
    pad_id: int = 0
    max_rows: int = 64                       # slots: live rows at most (decode batch size)
    batch_tokens: int = 1 << 30              # slots × widest (prompt + budget) at most
    prefill_tokens: int = 8192               # padded tokens per prefill forward at most
    prefill_waste: float = 0.25              # padding allowed in a prefill group (share of real tokens)


def supports_continuous(model: Any) -> bool:
    """True when ``model`` builds a cache made only of full-attention ``DynamicLayer`` s (the
    layout :func:`generate_continuous` edits). Sliding-window, linear-attention and
    encoder-decoder models are left to fixed batches."""
    try:
        from transformers.cache_utils import DynamicCache, DynamicLayer
    except ImportError:   # very old transformers
        return False
    if getattr(model.config, "is_encoder_decoder", False):
        return False
    try:
        cache = DynamicCache(config=model.config)
    except Exception:  # noqa: BLE001 - any model we cannot introspect goes the old way
        return False
    layers = getattr(cache, "layers", None)
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


def _forward_kwargs(model: Any, cache: Any) -> dict:
    """The cache argument under this transformers version's name (``cache`` from 5.x, before
    that ``past_key_values``), plus ``logits_to_keep=1`` where the model takes it."""
    params = inspect.signature(model.forward).parameters
    kw: dict = {"cache" if "cache" in params else "past_key_values": cache, "use_cache": True}
    if "logits_to_keep" in params:
        kw["logits_to_keep"] = 1
    return kw


def _choose(logits: Any, rows: Sequence[Request], opts: DecodeOptions) -> list[int]:
    """Next token per row: argmax, or a draw from each request's own generator."""
    import torch
    if opts.temperature <= 0:
        return logits.argmax(-1).tolist()
    probs = torch.softmax(logits.float() / opts.temperature, dim=-1)
    if opts.top_p < 1.0:
        sp, si = probs.sort(dim=-1, descending=True)
        drop = (sp.cumsum(-1) - sp) >= opts.top_p      # keep the smallest prefix reaching top_p
        sp = sp.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter_(-1, si, sp)
    return [int(torch.multinomial(probs[i], 1, generator=r.generator)) for i, r in enumerate(rows)]


def _buffer_layer_class() -> type:
    """A ``DynamicLayer`` whose keys/values are a window of a preallocated buffer: ``update``
    writes the new token's states in place at the window's end instead of concatenating."""
    from transformers.cache_utils import DynamicLayer

    class BufferLayer(DynamicLayer):
        def __init__(self, kbuf: Any, vbuf: Any, start: int, end: int) -> None:
            super().__init__()
            self.kbuf, self.vbuf, self.start, self.end = kbuf, vbuf, start, end
            self.keys, self.values = kbuf[:, :, start:end], vbuf[:, :, start:end]
            self.device, self.dtype, self.is_initialized = kbuf.device, kbuf.dtype, True

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            e = self.end + key_states.shape[-2]
            self.kbuf[:, :, self.end:e] = key_states
            self.vbuf[:, :, self.end:e] = value_states
            self.keys, self.values = self.kbuf[:, :, self.start:e], self.vbuf[:, :, self.start:e]
            return self.keys, self.values

    return BufferLayer


class _Slots:
    """Preallocated KV buffers and per-slot state; columns ``[start, end)`` are the window."""

    def __init__(self, slots: int, longest_prompt: int, longest_total: int) -> None:
        self.n = slots
        self.room = longest_prompt                       # a new prompt is written at [end - L, end)
        self.capacity = max(longest_prompt, longest_total) + max(64, longest_total // 4)
        self.start = self.end = self.room
        self.rows: list[Request | None] = [None] * slots
        self.k: list[Any] = []
        self.v: list[Any] = []
        self.mask: Any = None
        self.pos: Any = None
        self.next: Any = None

    def allocate(self, like_k: list[Any], like_v: list[Any]) -> None:
        import torch
        dev = like_k[0].device
        # never read outside the window, and every window column is written before it is read
        self.k = [torch.empty((self.n, k.shape[1], self.capacity, k.shape[3]), dtype=k.dtype, device=dev) for k in like_k]
        self.v = [torch.empty((self.n, v.shape[1], self.capacity, v.shape[3]), dtype=v.dtype, device=dev) for v in like_v]
        self.mask = torch.zeros((self.n, self.capacity), dtype=torch.long, device=dev)
        self.pos = torch.zeros(self.n, dtype=torch.long, device=dev)
        self.next = torch.zeros(self.n, dtype=torch.long, device=dev)

    def free(self) -> list[int]:
        return [i for i, r in enumerate(self.rows) if r is None]

    def live(self) -> list[int]:
        return [i for i, r in enumerate(self.rows) if r is not None]

    def put(self, slots: list[int], rows: list[Request], keys: list[Any], values: list[Any], mask: Any,
            pos: Any, nxt: Any) -> None:
        """Write prefilled rows into free ``slots``, right-aligned with the window's end."""
        import torch
        if not self.k:
            self.allocate(keys, values)
        width = mask.shape[1]
        if self.end + 1 >= self.capacity:
            self.recentre()
        lo = self.end - width
        idx = torch.tensor(slots, device=self.mask.device)
        keep = mask[:, None, :, None].to(keys[0].dtype)   # zero the padding's states: masked, but finite
        for buf, new in zip(self.k + self.v, keys + values):
            if lo < self.start:                            # the window grows left: masked, but finite
                buf[:, :, lo:self.start] = 0
            elif self.start < lo:                          # the slot's earlier occupant: masked, zero it
                buf[idx, :, self.start:lo] = 0
            buf[idx, :, lo:self.end] = new * keep
        self.mask[idx] = 0
        self.mask[idx, lo:self.end] = mask
        self.pos[idx], self.next[idx] = pos, nxt
        for s, r in zip(slots, rows):
            self.rows[s] = r
        self.start = min(self.start, lo)

    def recentre(self) -> None:
        """Move the window back to column ``room`` (one copy every few hundred steps)."""
        width = self.end - self.start
        new_start = max(self.room, width) - width
        if new_start == self.start:
            return
        for buf in self.k + self.v:
            buf[:, :, new_start:new_start + width] = buf[:, :, self.start:self.end].clone()
        window = self.mask[:, self.start:self.end].clone()
        self.mask.zero_()
        self.mask[:, new_start:new_start + width] = window
        self.start, self.end = new_start, new_start + width

    def release(self, slots: list[int]) -> None:
        for s in slots:
            self.rows[s] = None
        if slots:
            self.mask[slots] = 0

    def compact(self) -> None:
        """Keep only live slots (when nothing is waiting): idle rows stop costing compute. Only
        the window's columns are copied; the rest of the new buffers is never read."""
        import torch
        live = self.live()
        idx = torch.tensor(live, device=self.mask.device)
        a, b = self.start, self.end

        def shrink(buf: Any) -> Any:
            out = buf.new_empty((len(live),) + tuple(buf.shape[1:]))
            out[:, :, a:b] = buf[idx, :, a:b]
            return out
        self.k, self.v = [shrink(x) for x in self.k], [shrink(x) for x in self.v]
        self.mask, self.pos, self.next = self.mask[idx], self.pos[idx], self.next[idx]
        self.rows = [self.rows[i] for i in live]
        self.n = len(live)

    def trim(self) -> None:
        """Drop leading window columns that no row uses."""
        if self.end > self.start:
            used = self.mask[:, self.start:self.end].any(0)
            self.start = self.start + int(used.long().argmax()) if bool(used.any()) else self.end


def _prefill_groups(reqs: list[Request], opts: DecodeOptions) -> list[list[Request]]:
    """Cut length-sorted (longest first) requests into prefill groups with little padding."""
    groups: list[list[Request]] = []
    cur: list[Request] = []
    real = 0
    for r in reqs:
        n = len(r.prompt)
        if cur:
            longest = len(cur[0].prompt)
            padded = (len(cur) + 1) * longest
            if padded > opts.prefill_tokens or padded > (1 + opts.prefill_waste) * (real + n):
                groups.append(cur)
                cur, real = [], 0
        cur.append(r)
        real += n
    if cur:
        groups.append(cur)
    return groups


def generate_continuous(model: Any, requests: Sequence[Request], opts: DecodeOptions,
                        on_step: Callable[[int], None] | None = None) -> list[Request]:
    """Decode every request with continuous batching; fills ``tokens`` and ``stopped`` in place.

    ``on_step(rows)`` is called before each forward pass with its number of rows (tests and
    benchmarks log batch sizes; tests inject errors). Waiting requests are admitted longest
    prompt first into free slots. There are ``min(max_rows, requests, batch_tokens // widest
    (prompt + budget))`` slots.
    """
    import torch
    from transformers.cache_utils import DynamicCache

    device = next(model.parameters()).device
    buffer_layer = _buffer_layer_class()
    fwd = _forward_kwargs(model, None)
    cache_key = "cache" if "cache" in fwd else "past_key_values"
    del fwd[cache_key]
    todo = [r for r in requests if r.max_new_tokens > 0]
    for r in requests:
        r.tokens, r.stopped = [], False
        if opts.temperature > 0:
            r.generator = torch.Generator(device=device)
            r.generator.manual_seed(int(r.seed or 0) & 0x7FFF_FFFF_FFFF_FFFF)
    if not todo:
        return list(requests)
    queue = deque(sorted(todo, key=lambda r: -len(r.prompt)))
    longest_prompt = len(queue[0].prompt)
    longest_total = max(len(r.prompt) + r.max_new_tokens for r in todo)
    n_slots = max(1, min(opts.max_rows, len(todo), opts.batch_tokens // longest_total))
    slots = _Slots(n_slots, longest_prompt, longest_total)

    def finished(r: Request, tok: int) -> bool:
        r.tokens.append(tok)
        if tok in opts.eos_ids:
            r.stopped = True
        return r.stopped or len(r.tokens) >= r.max_new_tokens

    def prefill(group: list[Request], free: list[int]) -> list[int]:
        """Prefill ``group``; rows not finished by their first token take slots from ``free``."""
        longest = max(len(r.prompt) for r in group)
        ids = torch.full((len(group), longest), opts.pad_id, dtype=torch.long)
        mask = torch.zeros((len(group), longest), dtype=torch.long)
        for i, r in enumerate(group):
            ids[i, longest - len(r.prompt):] = torch.tensor(r.prompt)
            mask[i, longest - len(r.prompt):] = 1
        ids, mask = ids.to(device), mask.to(device)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        if on_step is not None:
            on_step(len(group))
        cache = DynamicCache(config=model.config)
        out = model(input_ids=ids, attention_mask=mask, position_ids=pos, **fwd, **{cache_key: cache})
        first = _choose(out.logits[:, -1], group, opts)
        live = [i for i, (r, t) in enumerate(zip(group, first)) if not finished(r, t)]
        if not live:
            return free
        sel = torch.tensor(live, device=device)
        slots.put(free[:len(live)], [group[i] for i in live],
                  [layer.keys.index_select(0, sel) for layer in cache.layers],
                  [layer.values.index_select(0, sel) for layer in cache.layers], mask[sel],
                  torch.tensor([len(group[i].prompt) for i in live], device=device),
                  torch.tensor([first[i] for i in live], device=device))
        return free[len(live):]

    while queue or slots.live():
        free = slots.free()
        if queue and free:
            new = [queue.popleft() for _ in range(min(len(free), len(queue)))]
            for group in _prefill_groups(new, opts):
                free = prefill(group, free)
        live = slots.live()
        if not live:
            continue
        if not queue and (slots.n - len(live)) * 4 >= slots.n:
            slots.compact()
            live = list(range(slots.n))
        if slots.end >= slots.capacity:
            slots.recentre()
        if on_step is not None:
            on_step(slots.n)
        cache = DynamicCache(config=model.config)
        cache.layers = [buffer_layer(k, v, slots.start, slots.end) for k, v in zip(slots.k, slots.v)]
        mask = slots.mask[:, slots.start:slots.end + 1].clone()
        mask[:, -1] = 1                  # idle slots attend to their own column: finite, ignored
        out = model(input_ids=slots.next[:, None], attention_mask=mask, position_ids=slots.pos[:, None],
                    **fwd, **{cache_key: cache})
        live_t = torch.tensor(live, device=device)
        slots.mask[live_t, slots.end] = 1
        slots.end += 1
        slots.pos += 1
        rows = [slots.rows[i] for i in live]
        toks = _choose(out.logits[live_t, -1], rows, opts)       # type: ignore[arg-type]
        slots.next[live_t] = torch.tensor(toks, device=device)
        slots.release([s for s, r, t in zip(live, rows, toks) if finished(r, t)])   # type: ignore[arg-type]
        slots.trim()
    return list(requests)


def generate_transformers_cb(model: Any, requests: Sequence[Request], opts: DecodeOptions,
                             page_size: int = 64, step_tokens: int = 512) -> None:
    """Greedy continuous batching with transformers' own manager (paged KV cache, chunked
    prefill of at most ``step_tokens`` tokens per forward): fills each request's ``tokens`` and
    ``stopped`` like :func:`generate_continuous`. Greedy only: its sampling draws from one shared
    RNG, so a request's text would depend on its batch company (the slots above keep one
    generator per request). Raises when the model or transformers cannot run it; callers fall
    back to :func:`generate_continuous`."""
    from transformers import GenerationConfig
    from transformers.generation.configuration_utils import ContinuousBatchingConfig
    if opts.temperature > 0:
        raise ValueError("transformers' continuous batching is used for greedy decoding only")
    todo = [r for r in requests if r.max_new_tokens > 0]
    if not todo:
        return
    blocks = sum(-(-(len(r.prompt) + r.max_new_tokens) // page_size) for r in todo) + 8
    eos = sorted(opts.eos_ids) or [-1]
    gc = GenerationConfig(max_new_tokens=max(r.max_new_tokens for r in todo), do_sample=False,
                          eos_token_id=eos if len(eos) > 1 else eos[0], pad_token_id=opts.pad_id)
    cfg = ContinuousBatchingConfig(page_size=page_size, num_blocks=blocks, max_batch_tokens=step_tokens,
                                   max_requests_per_batch=opts.max_rows)
    mgr = model.init_continuous_batching(generation_config=gc, continuous_batching_config=cfg)
    mgr.start()
    try:
        for i, r in enumerate(todo):
            mgr.add_request(r.prompt, request_id=f"r{i}", max_new_tokens=r.max_new_tokens)
        done = 0
        while done < len(todo):
            res = mgr.get_result(timeout=1)
            if res is not None and res.is_finished():
                r = todo[int(res.request_id[1:])]
                r.tokens = list(res.generated_tokens)[:r.max_new_tokens]
                r.stopped = bool(r.tokens) and r.tokens[-1] in opts.eos_ids
                done += 1
            elif res is None and not mgr.is_running():
                raise RuntimeError("transformers' continuous batching thread stopped")
    finally:
        mgr.stop(block=True)
