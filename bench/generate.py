"""Generation throughput on CPU: curate's transformers backend (length-sorted, token-budget
batches) vs (a) a one-prompt-at-a-time ``model.generate`` loop and (b) fixed-size batches in
arrival order (what ``pipeline(..., batch_size=k)`` or distilabel's transformers LLM do).

Same random-initialised Llama, same prompts (token lengths 10-500, varied), same number of new
tokens (fixed: EOS ignored), greedy decoding. Prints tokens/s per method and, last, exactly:
    speedup_vs_fixed_batches=<ratio>
    speedup_vs_naive=<ratio>
Usage: python bench/generate.py [--small] [--prompts N] [--new-tokens T] [--fixed-batch K]
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def prompt_lengths(n: int, seed: int, lo: int = 10, hi: int = 500) -> list[int]:
    """Realistic, skewed lengths: many short prompts, a long tail (log-uniform in [lo, hi])."""
    import math
    rng = random.Random(seed)
    return [int(round(math.exp(rng.uniform(math.log(lo), math.log(hi))))) for _ in range(n)]


def make_prompts(n: int, vocab: int, special: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed + 1)
    return [[rng.randrange(special, vocab) for _ in range(L)] for L in prompt_lengths(n, seed)]


def gen_config(tok, new_tokens: int):
    from transformers import GenerationConfig
    return GenerationConfig(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                            pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)


def run_naive(model, tok, prompts, new_tokens) -> int:
    import torch
    gc = gen_config(tok, new_tokens)
    made = 0
    with torch.inference_mode():
        for p in prompts:
            x = torch.tensor([p])
            out = model.generate(input_ids=x, attention_mask=torch.ones_like(x), generation_config=gc)
            made += out.shape[1] - x.shape[1]
    return made


def run_fixed(model, tok, prompts, new_tokens, k) -> int:
    import torch
    gc = gen_config(tok, new_tokens)
    made = 0
    with torch.inference_mode():
        for s in range(0, len(prompts), k):
            enc = tok.pad({"input_ids": prompts[s:s + k]}, padding=True, return_tensors="pt")
            out = model.generate(**enc, generation_config=gc)
            made += (out.shape[1] - enc["input_ids"].shape[1]) * out.shape[0]
    return made


def run_curate(llm, prompts, new_tokens) -> int:
    from curate.llm.base import SamplingParams
    res = llm.generate_tokens(prompts, SamplingParams(max_new_tokens=new_tokens, temperature=0.0, ignore_eos=True))
    return sum(g[0].completion_tokens for g in res)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="fewer prompts (under 5 minutes on 2 cores)")
    ap.add_argument("--prompts", type=int, default=None)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--fixed-batch", type=int, default=16, help="batch size of the fixed-batch baseline")
    ap.add_argument("--batch-tokens", type=int, default=32768, help="curate's padded-token budget per batch")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=2, help="timed runs of curate and the fixed-batch baseline, interleaved; the best counts "
                         "(the naive loop, 10x longer, runs once)")
    a = ap.parse_args()
    n = a.prompts or (64 if a.small else 256)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from curate.llm.base import BackendSpec
    from curate.llm.transformers_backend import TransformersLLM
    from curate.testing import tiny_llama

    tmp = tempfile.mkdtemp(prefix="curate-bench-")
    path = tiny_llama(Path(tmp) / "model", hidden_size=a.hidden, layers=a.layers, heads=4, max_positions=1024)
    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="sdpa").eval()
    llm = TransformersLLM(BackendSpec(model=str(path), chat=False, batch_tokens=a.batch_tokens,
                                      max_batch_size=256, device="cpu"), model=model, tokenizer=tok)
    prompts = make_prompts(n, len(tok), 8, a.seed)
    lens = [len(p) for p in prompts]
    print(f"model: random Llama hidden={a.hidden} layers={a.layers} vocab={len(tok)}; torch threads "
          f"{torch.get_num_threads()}; {n} prompts, lengths {min(lens)}-{max(lens)} (mean {sum(lens) / n:.0f}), "
          f"{a.new_tokens} new tokens each (EOS ignored), greedy")
    run_curate(llm, prompts[:4], 4)                       # warm-up (allocator, kernels)

    methods = {"curate (sorted, token budget)": lambda: run_curate(llm, prompts, a.new_tokens),
               f"fixed batches of {a.fixed_batch}, arrival order":
                   lambda: run_fixed(model, tok, prompts, a.new_tokens, a.fixed_batch),
               "naive one-at-a-time loop": lambda: run_naive(model, tok, prompts, a.new_tokens)}
    best: dict[str, float] = {}
    for rep in range(a.repeats):              # interleaved repeats: a busy machine hits all alike
        for name, fn in methods.items():
            if rep and name.startswith("naive"):
                continue
            llm.batch_log.clear()
            t0 = time.perf_counter()
            made = fn()
            dt = time.perf_counter() - t0
            assert made == n * a.new_tokens, (name, made)
            best[name] = min(best.get(name, float("inf")), dt)
            print(f"[run {rep + 1}] {name:40s} {made:6d} tokens in {dt:7.2f} s = {made / dt:8.1f} tokens/s",
                  flush=True)
    results = {name: n * a.new_tokens / dt for name, dt in best.items()}
    for name, tps in results.items():
        print(f"best: {name:40s} {tps:8.1f} tokens/s")
    print(f"curate batches for the full set: {[len(b) for b in llm.plan(lens, a.new_tokens)]} "
          f"(budget {a.batch_tokens} padded tokens)")
    cur = results["curate (sorted, token budget)"]
    fixed = results[f"fixed batches of {a.fixed_batch}, arrival order"]
    naive = results["naive one-at-a-time loop"]
    print(f"speedup_vs_fixed_batches={cur / fixed:.2f}")
    print(f"speedup_vs_naive={cur / naive:.2f}")


if __name__ == "__main__":
    main()
