#!/usr/bin/env bash
# LoRA vs full fine-tuning through curate's runner (`curate.train.run_training`, TRL SFT) on a
# random-initialised Llama of realistic size (~0.5B parameters; no network needed).
# Prints tokens/s (completion+prompt tokens seen by the trainer / train runtime) and peak GPU memory.
#   bench/gpu_train.sh            # ~0.5B model, 60 steps each
#   bench/gpu_train.sh --small    # ~7M model, 6 steps each (a CPU check of the script, < 5 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false TQDM_DISABLE=1
exec "$PY" - "$@" <<'PYEOF'
import json, random, sys, tempfile, time
from pathlib import Path

small = "--small" in sys.argv
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from curate.testing import tiny_tokenizer
from curate.train import run_training

gpu = torch.cuda.is_available()
work = Path(tempfile.mkdtemp(prefix="curate-gpu-train-"))
if small:
    shape = dict(hidden_size=256, intermediate_size=704, num_hidden_layers=4, num_attention_heads=4,
                 num_key_value_heads=4, vocab_size=8000)
    steps, bs, seq = 6, 4, 128
else:   # ~0.47B parameters: 24 layers of width 1024 (Qwen2.5-0.5B-like depth), 32k vocabulary
    shape = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                 num_key_value_heads=16, vocab_size=32000)
    steps, bs, seq = 60, 8, 1024

tok = tiny_tokenizer(work / "model")
torch.manual_seed(0)
cfg = LlamaConfig(max_position_embeddings=4096, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                  eos_token_id=tok.eos_token_id, tie_word_embeddings=False, **shape)
model = LlamaForCausalLM(cfg)
n_params = sum(p.numel() for p in model.parameters())
model.save_pretrained(str(work / "model"))
del model

# synthetic prompt/completion rows of about `seq` tokens (words drawn from the tokenizer's corpus)
rng = random.Random(0)
words = "the sea is blue calm waves capital france paris answer question input output yes no".split()
rows = [{"prompt": " ".join(rng.choice(words) for _ in range(seq // 3)),
         "completion": " " + " ".join(rng.choice(words) for _ in range(seq // 6))} for _ in range(steps * bs)]
(work / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

results = {}
# a short untimed run first, so CUDA/cuBLAS start-up is not charged to whichever method runs first
for method in ("warmup", "lora", "full"):
    if gpu:
        torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
    conf = {"model": str(work / "model"), "objective": "sft", "output_dir": str(work / f"run-{method}"),
            "data": {"train": str(work / "data.jsonl"), "val_fraction": 0.0},
            "method": {"kind": "full" if method == "warmup" else method, "r": 16, "alpha": 32},
            "training": {"max_steps": 3 if method == "warmup" else steps, "batch_size": bs, "max_length": seq, "learning_rate": 1e-4 if method == "full" else 2e-4,
                         "precision": "auto", "save_steps": 100000, "logging_steps": 5, "eval_every_epoch": False,
                         "resume": False, "gradient_checkpointing": False}}
    t0 = time.time()
    r = run_training(conf)
    if method == "warmup":
        del r
        continue
    tokens = max(h.get("num_tokens", 0) for h in r.log_history)
    runtime = r.metrics["train_runtime_s"] or (time.time() - t0)
    peak = torch.cuda.max_memory_allocated() / 2**30 if gpu else float("nan")
    results[method] = {"tok_s": tokens / runtime, "peak_gib": peak, "trainable": r.metrics["trainable_fraction"],
                       "loss": (r.metrics["train_loss_first"], r.metrics["train_loss_last"])}
    print(f"{method:5s} params={n_params/1e6:.0f}M trainable={100*r.metrics['trainable_fraction']:.2f}% "
          f"tokens={tokens:.0f} runtime={runtime:.1f}s tok/s={tokens/runtime:,.0f} peak={peak:.2f} GiB "
          f"loss {r.metrics['train_loss_first']:.3f}->{r.metrics['train_loss_last']:.3f}", flush=True)
    del r
    if gpu:
        torch.cuda.empty_cache()

dev = torch.cuda.get_device_name(0) if gpu else "cpu"
lo, fu = results["lora"], results["full"]
print(f"gpu_train ({dev}, {n_params/1e6:.0f}M params, seq {seq}, batch {bs}): "
      f"lora {lo['tok_s']:,.0f} tok/s peak {lo['peak_gib']:.2f} GiB; full {fu['tok_s']:,.0f} tok/s peak "
      f"{fu['peak_gib']:.2f} GiB; lora/full speed {lo['tok_s']/fu['tok_s']:.2f}x, memory {lo['peak_gib']/fu['peak_gib'] if gpu else float('nan'):.2f}x")
PYEOF
