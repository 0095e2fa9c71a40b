"""Token-budget packing, the transformers backend's continuous batching (identical greedy text to
unbatched generation, rows leaving and joining), fixed batches, ordering and OOM backoff."""
from __future__ import annotations

import random

import pytest

from curate.llm.base import BackendSpec, SamplingParams
from curate.llm.batching import batch_cost, fixed_batches, pack_by_tokens, pack_min_cost, restore_order


@pytest.mark.parametrize("seed", range(5))
def test_no_batch_exceeds_budget_and_every_prompt_once(seed):
    rng = random.Random(seed)
    lengths = [rng.randint(1, 500) for _ in range(300)]
    budget, new = 4096, 64
    batches = pack_by_tokens(lengths, new, budget, max_batch_size=64)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(len(lengths)))
    for b in batches:
        assert batch_cost([lengths[i] for i in b], new) <= budget
        assert len(b) <= 64
    # sorting by length: short prompts share big batches
    size_of = {i: len(b) for b in batches for i in b}
    shortest, longest = lengths.index(min(lengths)), lengths.index(max(lengths))
    assert max(size_of.values()) > 3 * size_of[longest] and size_of[shortest] >= size_of[longest]


@pytest.mark.parametrize("seed", range(3))
def test_min_cost_packing_respects_budget_and_trades_overhead_for_padding(seed):
    rng = random.Random(seed)
    lengths = [rng.randint(1, 500) for _ in range(200)]
    plans = {ov: pack_min_cost(lengths, 64, 32768, 128, ov) for ov in (0, 2000, 1 << 30)}
    for batches in plans.values():
        assert sorted(i for b in batches for i in b) == list(range(200))
        assert all(batch_cost([lengths[i] for i in b], 64) <= 32768 and len(b) <= 128 for b in batches)
    # no overhead: no padding at all pays off; huge overhead: as few batches as the budget allows
    assert len(plans[0]) > len(plans[2000]) > len(plans[1 << 30])
    assert len(plans[1 << 30]) <= len(pack_by_tokens(lengths, 64, 32768, 128))
    pad = lambda bs: sum(batch_cost([lengths[i] for i in b], 64) for b in bs)  # noqa: E731
    assert pad(plans[0]) < pad(plans[2000]) < pad(plans[1 << 30])


def test_oversized_prompt_gets_its_own_batch():
    batches = pack_by_tokens([10, 5000, 20], 16, 1000)
    assert [1] in batches
    assert sorted(i for b in batches for i in b) == [0, 1, 2]


def test_restore_order_and_packing_beats_fixed_batches_on_padding():
    rng = random.Random(0)
    lengths = [rng.choice([10, 20, 400, 500]) for _ in range(64)]
    packed = pack_by_tokens(lengths, 32, 8192)
    results = [[f"r{i}" for i in b] for b in packed]
    assert restore_order(packed, results, len(lengths)) == [f"r{i}" for i in range(len(lengths))]
    pad = lambda bs: sum(batch_cost([lengths[i] for i in b], 32) for b in bs)  # noqa: E731
    assert pad(packed) < pad(fixed_batches(len(lengths), 8))
    with pytest.raises(ValueError):
        restore_order(packed, results[:-1], len(lengths))


@pytest.fixture(scope="module")
def llm(tiny_model):
    from curate.llm.transformers_backend import TransformersLLM
    return TransformersLLM(BackendSpec(model=str(tiny_model), batch_tokens=400, max_batch_size=8))


PROMPTS = ["hi", "Classify the sentiment of the sentence as positive or negative please now",
           "What is the capital of France?", "Write a short poem about the sea. " * 6, "ok"]


def test_fixed_batches_respect_budget_and_restore_order(llm):
    from curate.llm.transformers_backend import TransformersLLM
    llm = TransformersLLM(BackendSpec(model=llm.spec.model, batch_tokens=120, max_batch_size=8, packing="min_cost"),
                          model=llm.model, tokenizer=llm.tokenizer)
    assert not llm.uses_continuous()
    params = SamplingParams(max_new_tokens=8, temperature=0.0)
    out = llm.generate(PROMPTS, params)
    assert len(out) == len(PROMPTS) and all(len(g) == 1 for g in out)
    lengths = [len(x) for x in llm.encode(PROMPTS)]
    plan = llm.plan(lengths, 8)
    assert llm.batch_log == [len(b) for b in plan] and len(plan) > 1
    for b in plan:
        assert batch_cost([lengths[i] for i in b], 8) <= 120
    rev = llm.generate(PROMPTS[::-1], params)
    assert [g[0].text for g in rev] == [g[0].text for g in out][::-1]
    assert all(g[0].prompt_tokens == n for g, n in zip(out, lengths))


@pytest.mark.slow
def test_seeded_sampling_is_reproducible(llm):
    p = SamplingParams(max_new_tokens=12, temperature=1.0, n=2, seed=7)
    a, b = llm.generate(PROMPTS, p), llm.generate(PROMPTS, p)
    c = llm.generate(PROMPTS, p.with_(seed=8))
    assert [[g.text for g in r] for r in a] == [[g.text for g in r] for r in b]
    assert [[g.text for g in r] for r in a] != [[g.text for g in r] for r in c]


def test_ignore_eos_gives_exact_token_counts(llm):
    out = llm.generate(PROMPTS, SamplingParams(max_new_tokens=10, temperature=1.0, ignore_eos=True))
    assert all(g[0].completion_tokens == 10 for g in out)


@pytest.mark.slow
def test_oom_halves_the_batch(llm):
    import torch

    from curate.llm.transformers_backend import TransformersLLM
    llm = TransformersLLM(BackendSpec(model=llm.spec.model, batch_tokens=400, max_batch_size=8, packing="min_cost"),
                          model=llm.model, tokenizer=llm.tokenizer)
    seen = []

    def oom_above_two(n):
        seen.append(n)
        if n > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    params = SamplingParams(max_new_tokens=6, temperature=0.0)
    want = [g[0].text for g in llm.generate(PROMPTS, params)]
    llm.before_batch = oom_above_two
    llm.batch_log.clear()
    try:
        got = llm.generate(PROMPTS, params)
    finally:
        llm.before_batch = None
    assert max(llm.batch_log) <= 2 and sum(llm.batch_log) == len(PROMPTS)
    assert any(n > 2 for n in seen)                      # it did hit the simulated OOM
    assert len(got) == len(PROMPTS) and all(g[0].text is not None for g in got)
    # a batch split in halves still decodes the same greedy text for each prompt
    assert [g[0].text for g in got] == want


def test_non_oom_errors_propagate(llm):
    def boom(n):
        raise ValueError("not an OOM")
    llm.before_batch = boom
    try:
        with pytest.raises(ValueError, match="not an OOM"):
            llm.generate(["hi"], SamplingParams(max_new_tokens=2))
    finally:
        llm.before_batch = None


def test_score_prefers_likely_completion(llm):
    s = llm.score(["hello", "hello"], ["a", "a a a a a a a a"])
    assert len(s) == 2 and s[1] < s[0] < 0


# ---------------------------------------------------------------- continuous batching

def _unbatched_greedy(model, ids, budget, eos=None):
    """Reference: one prompt at a time through ``model.generate`` (no padding anywhere)."""
    import torch
    x = torch.tensor([ids])
    kw = dict(max_new_tokens=budget, do_sample=False, pad_token_id=0, eos_token_id=eos)
    if eos is None:
        kw["min_new_tokens"] = budget
    with torch.inference_mode():
        out = model.generate(input_ids=x, attention_mask=torch.ones_like(x), **kw)[0, x.shape[1]:].tolist()
    if eos is not None and eos in out:
        out = out[:out.index(eos)]
    return out


def _cb_llm(llm, **kw):
    from curate.llm.transformers_backend import TransformersLLM
    return TransformersLLM(BackendSpec(model=llm.spec.model, chat=False, **kw), model=llm.model, tokenizer=llm.tokenizer)


@pytest.mark.parametrize("packing", ["continuous", "transformers_cb"])
def test_continuous_greedy_equals_unbatched_with_per_prompt_budgets(llm, packing):
    """Both continuous paths: curate's slots (default) and transformers' manager."""
    rng = random.Random(3)
    cb = _cb_llm(llm, max_batch_size=4, packing=packing)
    assert cb.uses_continuous()
    ids = [[rng.randrange(8, 300) for _ in range(rng.randint(1, 60))] for _ in range(11)]
    budgets = [rng.choice([1, 2, 5, 9, 17, 30]) for _ in ids]
    out = cb.generate_tokens(ids, SamplingParams(temperature=0.0, ignore_eos=True), max_new_tokens=budgets)
    for p, m, g in zip(ids, budgets, out):
        want = _unbatched_greedy(llm.model, p, m)
        assert g[0].completion_tokens == m == len(want)
        assert g[0].text == llm.tokenizer.decode(want, skip_special_tokens=True)
    if packing == "transformers_cb":
        assert cb._cb_error is None and not cb.batch_log      # transformers' manager decoded
        return
    # rows left and new ones joined: never more than 4 live rows, and far fewer row-steps than
    # fixed batches of 4 that decode until their longest row is done
    decode = [n for n in cb.batch_log]
    assert max(decode) <= 4
    fixed_row_steps = sum(len(b) * max(budgets[i] for i in b) for b in fixed_batches(len(ids), 4))
    assert sum(decode) < fixed_row_steps


@pytest.mark.parametrize("packing", ["continuous", "transformers_cb"])
def test_continuous_rows_stop_at_eos_like_unbatched_generate(llm, packing):
    """Make a token the greedy outputs do produce the EOS, so rows finish at different steps."""
    from collections import Counter
    cb = _cb_llm(llm, max_batch_size=3, packing=packing)
    ids = cb.encode(PROMPTS + ["Tell me a story", "abc def ghi", "x"])
    toks = [_unbatched_greedy(llm.model, p, 24) for p in ids]
    eos = Counter(t for row in toks for t in set(row[1:12])).most_common(1)[0][0]
    # greedy is deterministic, so unbatched generation that stops at EOS is the free run cut there
    want = [row[:row.index(eos)] if eos in row else row for row in toks]
    gc = llm.model.generation_config
    old = gc.eos_token_id
    gc.eos_token_id = eos
    try:
        out = cb.generate_tokens(ids, SamplingParams(max_new_tokens=24, temperature=0.0))
    finally:
        gc.eos_token_id = old
    lengths = {g[0].completion_tokens for g in out}
    assert len(lengths) > 2                           # rows did end at different steps
    for g, w in zip(out, want):
        assert g[0].completion_tokens == len(w)
        assert g[0].text == cb.tokenizer.decode(w, skip_special_tokens=True)
        assert g[0].finish_reason == ("stop" if len(w) < 24 else "length")


def test_continuous_sampling_does_not_depend_on_batch_company(llm):
    p = SamplingParams(max_new_tokens=6, temperature=1.0, top_p=0.9, n=2, seed=5)
    wide, narrow = _cb_llm(llm, max_batch_size=8), _cb_llm(llm, max_batch_size=1)
    a, b = wide.generate(PROMPTS, p), narrow.generate(PROMPTS, p)
    assert [[g.text for g in r] for r in a] == [[g.text for g in r] for r in b]
    assert a[0][0].text != a[0][1].text or a[1][0].text != a[1][1].text   # the n samples differ
    c = wide.generate(PROMPTS, p.with_(seed=6))
    assert [[g.text for g in r] for r in a] != [[g.text for g in r] for r in c]


def test_continuous_oom_halves_the_rows(llm):
    import torch
    cb = _cb_llm(llm, max_batch_size=8)
    params = SamplingParams(max_new_tokens=6, temperature=0.0)
    want = [g[0].text for g in cb.generate(PROMPTS, params)]

    def oom_above_two(n):
        if n > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    cb.before_batch = oom_above_two
    cb.batch_log.clear()
    got = cb.generate(PROMPTS, params)
    assert cb.max_rows == 2 and [g[0].text for g in got] == want
    cb.before_batch = None


def test_continuous_window_moves_back_and_slots_compact(llm, monkeypatch):
    """Many short requests through 2 slots: the write column reaches the buffer's end (the window
    is moved back), idle slots are compacted at the tail, and greedy text stays unbatched text."""
    from curate.llm import continuous
    calls = {"recentre": 0, "compact": 0}
    for name in calls:
        orig = getattr(continuous._Slots, name)

        def counted(self, _orig=orig, _name=name):
            calls[_name] += 1
            return _orig(self)
        monkeypatch.setattr(continuous._Slots, name, counted)
    rng = random.Random(11)
    ids = [[rng.randrange(8, 300) for _ in range(rng.randint(2, 8))] for _ in range(32)]
    reqs = [continuous.Request(p, rng.randint(1, 16)) for p in ids]
    continuous.generate_continuous(llm.model, reqs, continuous.DecodeOptions(max_rows=2, pad_id=0))
    assert calls["recentre"] >= 1 and calls["compact"] >= 1
    for r in reqs:
        assert r.tokens == _unbatched_greedy(llm.model, r.prompt, r.max_new_tokens)
