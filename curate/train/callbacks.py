"""What a run leaves behind besides weights: a loss-curve PNG, a metrics JSON, a model card with
data provenance, and the per-epoch generation metrics callback."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from curate.io import atomic_path, write_text
from curate.train.metrics import generation_metrics
from curate.extras import require


def plot_loss_curve(log_history: list[dict], path: Path) -> Path:
    """Training loss per logged step (and eval loss per evaluation) as a PNG."""
    require("matplotlib", extra="train")
    import matplotlib
    matplotlib.use("Agg")
    require("matplotlib", extra="train")
    import matplotlib.pyplot as plt

    tr = [(h["step"], h["loss"]) for h in log_history if "loss" in h and "step" in h]
    ev = [(h["step"], h["eval_loss"]) for h in log_history if "eval_loss" in h]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    if tr:
        ax.plot(*zip(*tr), label="train loss")
    if ev:
        ax.plot(*zip(*ev), "o-", label="validation loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def write_metrics(metrics: dict[str, Any], path: Path) -> Path:
    write_text(json.dumps(metrics, indent=2, default=str), path)
    return path


def _provenance(manifest_path: str | None) -> list[str]:
    if not manifest_path or not Path(manifest_path).exists():
        return []
    m = json.loads(Path(manifest_path).read_text(encoding="utf-8"))
    lines = [f"- Pipeline `{m.get('pipeline')}` (curate {m.get('curate_version')}, seed {m.get('seed')}, "
             f"finished {m.get('finished_at')})"]
    for s in m.get("sources", []):
        cfg = s.get("config") or {}
        where = cfg.get("path") or cfg.get("url") or cfg.get("query") or ""
        lines.append(f"  - source `{s.get('name')}` ({s.get('connector')}) {where}: {s.get('rows')} rows, "
                     f"{s.get('rejected')} rejected, fingerprint `{s.get('fingerprint')}`")
    for s in m.get("steps", []):
        lines.append(f"  - step `{s.get('name')}`: {s.get('rows_in')} in → {s.get('rows_out')} out, "
                     f"{s.get('rows_rejected')} rejected, {s.get('rows_created')} created")
    t = m.get("totals") or {}
    if t:
        lines.append(f"  - totals: {t.get('rows_read')} read, {t.get('rows_final')} final, "
                     f"{t.get('rows_rejected')} rejected")
    return lines


def model_card(cfg, result: dict[str, Any], files: list[str], path: Path) -> Path:
    """A README.md for the trained model: base, method, data and where it came from, metrics."""
    m = cfg.method
    method = m.kind + (f" (r={m.r}, alpha={m.alpha}, targets={m.target_modules})" if m.kind in ("lora", "dora", "qlora") else "")
    lines = ["---", f"base_model: {cfg.model}", "library_name: " + ("peft" if result.get("is_peft") else "transformers"),
             "tags: [curate, " + cfg.objective + "]", "---", "",
             f"# {Path(cfg.output_dir).name}", "",
             f"Fine-tuned from `{cfg.model}` with curate's bundled runner.", "",
             "## Training", "",
             f"- Objective: **{cfg.objective}**" + (f" (beta={cfg.dpo.beta})" if cfg.objective == "dpo" else ""),
             f"- Method: **{method}**",
             f"- Trainable parameters: {result.get('trainable_params'):,} of {result.get('total_params'):,} "
             f"({100 * result.get('trainable_fraction', 0):.3f}%)",
             f"- Steps: {result.get('global_step')}, epochs: {result.get('epoch')}, seed: {cfg.seed}, "
             f"learning rate: {cfg.training.learning_rate}, schedule: {cfg.training.lr_scheduler}",
             "", "## Data", "", f"- Format: {result.get('data_format')}; "
             f"{result.get('train_rows')} training rows, {result.get('validation_rows')} validation rows"]
    lines += [f"- File: `{f}`" for f in files[:20]]
    prov = _provenance(cfg.provenance)
    if prov:
        lines += ["", "### Provenance (pipeline manifest)", ""] + prov
    final = result.get("final_eval") or {}
    if final:
        lines += ["", "## Evaluation (validation split)", "", "| metric | value |", "|---|---|"]
        skip = ("runtime", "per_second", "num_tokens", "epoch")
        for k, v in final.items():
            if isinstance(v, (int, float)) and not any(x in k for x in skip):
                lines.append(f"| {k} | {v:.4g} |")
    if result.get("forgetting"):
        f = result["forgetting"]
        lines += ["", "## Forgetting check", "",
                  f"General held-out loss {f['before']['loss']:.4f} → {f['after']['loss']:.4f} "
                  f"(change {f['loss_change']:+.4f}; perplexity {f['before']['perplexity']:.2f} → "
                  f"{f['after']['perplexity']:.2f})."]
    lines += ["", "![loss curve](loss_curve.png)", ""]
    write_text("\n".join(lines), path)
    return path


class Callback:
    """A TrainerCallback by duck typing: hooks not defined are no-ops. Keeps module import free of
    transformers (the trainer calls every ``on_*`` event by name)."""

    def __getattr__(self, name: str):
        if name.startswith("on_"):
            return lambda *a, **kw: None
        raise AttributeError(name)


class GenerationEval(Callback):
    """After each evaluation, greedy-generate completions for a few validation prompts and score
    exact match, ROUGE-L and BLEU against their references."""

    def __init__(self, rows: list[dict], tokenizer, max_new_tokens: int, max_length: int) -> None:
        self.rows, self.tok, self.max_new_tokens, self.max_length = rows, tokenizer, max_new_tokens, max_length
        self.results: list[dict[str, Any]] = []

    def on_evaluate(self, args, state, control, model=None, metrics=None, **kw):
        if not self.rows or model is None:
            return
        scores = evaluate_generation(model, self.tok, self.rows, self.max_new_tokens, self.max_length)
        entry = {"step": state.global_step, "epoch": state.epoch, **scores}
        self.results.append(entry)
        if metrics is not None:
            metrics.update({f"eval_{k}": v for k, v in scores.items()})


def _prompt_text(tok, prompt) -> str:
    if isinstance(prompt, list):   # conversational
        return tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    return prompt


def evaluate_generation(model, tok, rows: list[dict], max_new_tokens: int, max_length: int,
                        batch_size: int = 8) -> dict[str, float]:
    require("torch", extra="train")
    import torch
    was_training = model.training
    model.eval()
    side = tok.padding_side
    tok.padding_side = "left"
    preds: list[str] = []
    device = next(model.parameters()).device
    try:
        for i in range(0, len(rows), batch_size):
            chunk = rows[i:i + batch_size]
            texts = [_prompt_text(tok, r["prompt"]) for r in chunk]
            enc = tok(texts, return_tensors="pt", padding=True, truncation=True,
                      max_length=max(8, max_length - max_new_tokens), add_special_tokens=False).to(device)
            with torch.no_grad():
                out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                     pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
            gen = out[:, enc["input_ids"].shape[1]:]
            preds += [t.strip() for t in tok.batch_decode(gen, skip_special_tokens=True)]
    finally:
        tok.padding_side = side
        if was_training:
            model.train()
    return generation_metrics(preds, [r["references"] for r in rows])
