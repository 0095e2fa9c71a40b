#!/usr/bin/env bash
# GPU generation throughput, for a lent GPU machine with no network and no model downloads:
# a random-initialised ~0.5B-parameter Llama-shaped model (bf16, SDPA) generates a fixed number of
# tokens (EOS ignored) for prompts of 10-500 tokens. Prints tokens/s of curate's batched
# transformers backend (length-sorted, token-budget batches) vs a naive one-prompt loop, vs
# fixed-size batches in arrival order, and vs vLLM when it is importable.
# Needs only python3 with torch + transformers + tokenizers (no polars/pydantic): run from the
# repository root:  bash bench/gpu_generate.sh [N_PROMPTS] [NEW_TOKENS]
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PY=${PYTHON:-python3}
N=${1:-256} NEW=${2:-128} NAIVE=${NAIVE_PROMPTS:-8} FIXED=${FIXED_BATCH:-16} BUDGET=${BATCH_TOKENS:-262144}
# smoke-test the script without a GPU: BENCH_DEVICE=cpu HIDDEN=64 LAYERS=2 bash bench/gpu_generate.sh 8 4
export BENCH_DEVICE=${BENCH_DEVICE:-cuda} HIDDEN=${HIDDEN:-1024} LAYERS=${LAYERS:-24}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
$PY - "$N" "$NEW" "$NAIVE" "$FIXED" "$BUDGET" <<'PYEOF'
import math, os, random, sys, tempfile, time
sys.path.insert(0, os.getcwd())
import torch, transformers
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM
from curate.llm.base import BackendSpec, SamplingParams
from curate.llm.transformers_backend import TransformersLLM
from curate.testing import tiny_tokenizer

n, new, n_naive, k, budget = map(int, sys.argv[1:6])
dev = os.environ["BENCH_DEVICE"]
hidden, layers = int(os.environ["HIDDEN"]), int(os.environ["LAYERS"])
gpu = dev.startswith("cuda")
assert not gpu or torch.cuda.is_available(), "no CUDA device"
print(f"torch {torch.__version__}, transformers {transformers.__version__}, {torch.cuda.get_device_name() if gpu else dev}")
sync = torch.cuda.synchronize if gpu else (lambda: None)
tok = tiny_tokenizer(tempfile.mkdtemp())            # only pads/decodes; prompts are token ids
tok.padding_side = "left"
cfg = LlamaConfig(vocab_size=32000, hidden_size=hidden, intermediate_size=4 * hidden, num_hidden_layers=layers,
                  num_attention_heads=16, num_key_value_heads=16, max_position_embeddings=2048,
                  pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
torch.manual_seed(0)
dtype = torch.bfloat16 if gpu else torch.float32
with torch.device(dev):
    model = LlamaForCausalLM._from_config(cfg, dtype=dtype, attn_implementation="sdpa").eval()
print(f"model: random Llama, {sum(p.numel() for p in model.parameters()) / 1e9:.2f}B params, {dtype}, sdpa")

rng = random.Random(0)
lens = [int(round(math.exp(rng.uniform(math.log(10), math.log(500))))) for _ in range(n)]
prompts = [[rng.randrange(8, 32000) for _ in range(L)] for L in lens]
print(f"{n} prompts, lengths {min(lens)}-{max(lens)} (mean {sum(lens) / n:.0f}), {new} new tokens each")
gc = GenerationConfig(max_new_tokens=new, min_new_tokens=new, do_sample=False,
                      pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)

def timed(fn):
    sync(); t = time.perf_counter(); made = fn(); sync()
    return made, time.perf_counter() - t

def naive():
    made = 0
    with torch.inference_mode():
        for p in prompts[:n_naive]:
            x = torch.tensor([p], device=dev)
            made += model.generate(input_ids=x, attention_mask=torch.ones_like(x), generation_config=gc).shape[1] - x.shape[1]
    return made

def fixed():
    made = 0
    with torch.inference_mode():
        for s in range(0, n, k):
            enc = tok.pad({"input_ids": prompts[s:s + k]}, padding=True, return_tensors="pt").to(dev)
            out = model.generate(**enc, generation_config=gc)
            made += (out.shape[1] - enc["input_ids"].shape[1]) * out.shape[0]
    return made

llm = TransformersLLM(BackendSpec(model="random-0.5b", chat=False, batch_tokens=budget, max_batch_size=1024,
                                  device=dev),
                      model=model, tokenizer=tok)
params = SamplingParams(max_new_tokens=new, temperature=0.0, ignore_eos=True)
def curate():
    return sum(g[0].completion_tokens for g in llm.generate_tokens(prompts, params))

llm.generate_tokens(prompts[:4], params.with_(max_new_tokens=4))    # warm-up
res = {}
for name, fn in (("curate (sorted, token budget)", curate), (f"fixed batches of {k}, arrival order", fixed),
                 (f"naive loop ({n_naive} prompts)", naive)):
    llm.batch_log.clear()
    made, dt = timed(fn)
    res[name] = made / dt
    print(f"{name:36s} {made:7d} tokens in {dt:7.2f} s = {made / dt:9.1f} tokens/s", flush=True)
    if name.startswith("curate"):
        mem = f"; peak memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if gpu else ""
        print(f"  curate batches: {len(llm.batch_log)}, sizes {sorted(llm.batch_log)}{mem}")
cur = res["curate (sorted, token budget)"]
try:
    import vllm  # noqa: F401
    have_vllm = True
except Exception as e:  # noqa: BLE001
    have_vllm = False
    print(f"vllm: not importable here ({type(e).__name__}); skipped")
if have_vllm and gpu:
    from vllm import LLM as VLLMEngine, SamplingParams as VSP
    d = tempfile.mkdtemp()
    model.save_pretrained(d); tok.save_pretrained(d)
    del model, llm; torch.cuda.empty_cache()
    eng = VLLMEngine(model=d, dtype="bfloat16", gpu_memory_utilization=0.6, skip_tokenizer_init=True)
    sp = VSP(max_tokens=new, min_tokens=new, ignore_eos=True, temperature=0.0, detokenize=False)
    made, dt = timed(lambda: sum(len(o.outputs[0].token_ids) for o in eng.generate(
        [{"prompt_token_ids": p} for p in prompts], sp, use_tqdm=False)))
    print(f"{'vllm':36s} {made:7d} tokens in {dt:7.2f} s = {made / dt:9.1f} tokens/s")
    print(f"curate_vs_vllm={cur / (made / dt):.2f}")
print(f"gpu_speedup_vs_fixed_batches={cur / res[f'fixed batches of {k}, arrival order']:.2f}")
print(f"gpu_speedup_vs_naive={cur / res[f'naive loop ({n_naive} prompts)']:.2f}")
PYEOF
