"""Generation throughput on CPU where output lengths vary: curate's transformers backend
(continuous batching on curate's decoding slots) vs fixed batches through ``model.generate``, and
transformers' own continuous-batching manager run through the same backend (``packing:
transformers_cb``, an extra row).

Same random-initialised Llama (fp32, SDPA), same prompts (token lengths log-uniform 10-500), greedy
decoding. Each prompt has its own output length (log-uniform 4..--max-new): the EOS token is
ignored and every row stops at its own budget, which is what rows that hit EOS at different steps
look like. Fixed batches get the same per-row stop through a ``StoppingCriteria`` that returns one
flag per row, so a batch ends when its longest row is done and finished rows decode padding
meanwhile, exactly as with EOS.

Peers (same timed region: token ids in, generated ids out):
  * fixed batches sorted by prompt length, swept over --sizes (the best one is the ratio's peer);
  * fixed batches of 16 in arrival order (``pipeline(batch_size=16)``, distilabel) = "naive".
Every method's text is checked against curate's (greedy, fp32: identical expected).

Prints rows/s and tokens/s per method and, last, exactly:
    speedup_vs_best_fixed_batches=<ratio>
    speedup_vs_naive=<ratio>
Usage: python bench/generate.py [--small] [--prompts N] [--max-new T] [--threads K]
On a GPU the peer is vLLM (curate's ``vllm`` backend, imported only when asked for); this bench
is the CPU one.
"""
from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def log_uniform(rng: random.Random, lo: int, hi: int) -> int:
    return int(round(math.exp(rng.uniform(math.log(lo), math.log(hi)))))


def make_workload(n: int, vocab: int, special: int, max_new: int, seed: int):
    """Prompts (token ids, skewed lengths: many short, a long tail) and per-prompt budgets."""
    rng = random.Random(seed)
    prompts = [[rng.randrange(special, vocab) for _ in range(log_uniform(rng, 10, 500))] for _ in range(n)]
    budgets = [log_uniform(rng, 4, max_new) for _ in range(n)]
    return prompts, budgets


def run_fixed(model, tok, prompts, budgets, k: int, sort: bool) -> list[list[int]]:
    """Fixed batches of ``k`` through ``model.generate``; each row stops at its own budget."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class PerRowBudget(StoppingCriteria):
        def __init__(self, width: int, budget: list[int]) -> None:
            self.width, self.budget = width, torch.tensor(budget)

        def __call__(self, input_ids, scores, **kw):
            return (input_ids.shape[1] - self.width) >= self.budget

    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i])) if sort else list(range(len(prompts)))
    out: list[list[int]] = [[] for _ in prompts]
    with torch.inference_mode():
        for s in range(0, len(order), k):
            idx = order[s:s + k]
            enc = tok.pad({"input_ids": [prompts[i] for i in idx]}, padding=True, return_tensors="pt")
            width = enc["input_ids"].shape[1]
            b = [budgets[i] for i in idx]
            gen = model.generate(**enc, max_new_tokens=max(b), do_sample=False, pad_token_id=tok.pad_token_id,
                                 eos_token_id=None, stopping_criteria=StoppingCriteriaList([PerRowBudget(width, b)]))
            for r, i in enumerate(idx):
                out[i] = gen[r, width:width + budgets[i]].tolist()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="fewer prompts (under 5 minutes on 2 busy cores)")
    ap.add_argument("--prompts", type=int, default=None)
    ap.add_argument("--max-new", type=int, default=None, help="largest per-prompt output budget")
    ap.add_argument("--sizes", default=None, help="fixed batch sizes to sweep (comma separated)")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: the 2-core box is shared; the ratio is per core)")
    ap.add_argument("--max-rows", type=int, default=64, help="curate's live rows")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    n = a.prompts or (48 if a.small else 256)
    max_new = a.max_new or (128 if a.small else 256)
    sizes = [int(x) for x in (a.sizes or ("1,2,4,8,16,32" if a.small else "1,2,4,8,16,32,64,128")).split(",")]

    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from curate.llm.base import BackendSpec, SamplingParams
    from curate.llm.transformers_backend import TransformersLLM
    from curate.testing import tiny_llama

    torch.set_num_threads(a.threads)
    tmp = tempfile.mkdtemp(prefix="curate-bench-")
    path = tiny_llama(Path(tmp) / "model", hidden_size=a.hidden, layers=a.layers, heads=4, max_positions=2048)
    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="sdpa").eval()
    llm = TransformersLLM(BackendSpec(model=str(path), chat=False, batch_tokens=65536, max_batch_size=a.max_rows,
                                      device="cpu"), model=model, tokenizer=tok)
    hf_cb = TransformersLLM(BackendSpec(model=str(path), chat=False, batch_tokens=65536, max_batch_size=a.max_rows,
                                        device="cpu", packing="transformers_cb"), model=model, tokenizer=tok)
    prompts, budgets = make_workload(n, len(tok), 8, max_new, a.seed)
    lens = [len(p) for p in prompts]
    total_new = sum(budgets)
    print(f"model: random Llama hidden={a.hidden} layers={a.layers} vocab={len(tok)} fp32 sdpa; transformers "
          f"{transformers.__version__}, torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    print(f"{n} prompts, lengths {min(lens)}-{max(lens)} (mean {sum(lens) / n:.0f}); output budgets "
          f"{min(budgets)}-{max(budgets)} (mean {total_new / n:.0f}, EOS ignored), greedy")
    assert llm.uses_continuous()

    def curate_run(backend=llm) -> list[str]:
        res = backend.generate_tokens(prompts, SamplingParams(temperature=0.0, ignore_eos=True), max_new_tokens=budgets)
        assert [g[0].completion_tokens for g in res] == budgets
        return [g[0].text for g in res]

    def texts(ids: list[list[int]]) -> list[str]:
        assert [len(x) for x in ids] == budgets
        return [tok.decode(x, skip_special_tokens=True) for x in ids]

    for backend in (llm, hf_cb):                                    # warm-up (allocator, kernels)
        backend.generate_tokens(prompts[:4], SamplingParams(temperature=0.0, ignore_eos=True), max_new_tokens=[4] * 4)
    methods = {"curate (continuous batching)": curate_run,
               "transformers CB (packing: transformers_cb)": lambda: curate_run(hf_cb)}
    for k in sizes:
        methods[f"fixed {k}, sorted by length"] = (lambda k=k: texts(run_fixed(model, tok, prompts, budgets, k, True)))
    methods["fixed 16, arrival order (naive)"] = lambda: texts(run_fixed(model, tok, prompts, budgets, 16, False))
    secs: dict[str, float] = {}
    ref: list[str] | None = None
    for name, fn in methods.items():
        t0 = time.perf_counter()
        out = fn()
        secs[name] = time.perf_counter() - t0
        ref = out if ref is None else ref
        same = sum(x == y for x, y in zip(out, ref))
        print(f"{name:42s} {secs[name]:7.2f} s  {n / secs[name]:7.2f} rows/s  {total_new / secs[name]:8.1f} "
              f"tokens/s  identical text {same}/{n}", flush=True)
    fixed = {k: secs[f"fixed {k}, sorted by length"] for k in sizes}
    best_k = min(fixed, key=fixed.get)
    cur = secs["curate (continuous batching)"]
    print(f"best fixed batch size (sorted): {best_k}; curate max rows {a.max_rows}")
    print(f"speedup_vs_transformers_cb={secs['transformers CB (packing: transformers_cb)'] / cur:.2f}")
    print(f"speedup_vs_best_fixed_batches={fixed[best_k] / cur:.2f}")
    print(f"speedup_vs_naive={secs['fixed 16, arrival order (naive)'] / cur:.2f}")


if __name__ == "__main__":
    main()
