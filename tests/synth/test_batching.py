"""Token-budget packing and the transformers backend's batching, ordering and OOM backoff."""
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


def test_backend_respects_budget_and_restores_order(llm):
    from curate.llm.transformers_backend import TransformersLLM
    llm = TransformersLLM(BackendSpec(model=llm.spec.model, batch_tokens=120, max_batch_size=8),
                          model=llm.model, tokenizer=llm.tokenizer)
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
