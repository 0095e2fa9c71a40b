"""`run_training(config)`: check everything that can fail cheaply, then load data and model, train
with TRL / transformers, and write adapter, metrics JSON, loss curve and model card to the run folder."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.errors import CurateError
from curate.train.callbacks import Callback
from curate.train.config import TrainConfig
from curate.extras import require


@dataclass
class TrainResult:
    """What a training run produced and how it went."""

    run_dir: Path
    model_dir: Path
    merged_dir: Path | None
    metrics: dict[str, Any]
    metrics_path: Path
    loss_curve_path: Path
    model_card_path: Path
    global_step: int
    log_history: list[dict] = field(default_factory=list)
    model: Any = None                  # the trained model, in memory
    tokenizer: Any = None

    @property
    def trainable_fraction(self) -> float:
        return self.metrics["trainable_fraction"]

    @property
    def train_losses(self) -> list[float]:
        return [h["loss"] for h in self.log_history if "loss" in h]


class _StartStep(Callback):
    """Remembers the global step training (re)started from: 0, or the resumed checkpoint's step."""

    step: int | None = None

    def on_train_begin(self, args, state, control, **kw):
        self.step = state.global_step


def _say(console, msg: str) -> None:
    if console is not None:
        console.print(msg, highlight=False)


def training_arguments(cfg: TrainConfig, has_val: bool, quiet: bool) -> dict[str, Any]:
    """Keyword arguments shared by TrainingArguments, SFTConfig and DPOConfig."""
    require("torch", extra="train")
    import torch

    from curate.train.methods import precision_flags
    t = cfg.training
    evaluate = has_val and t.eval_every_epoch
    early = t.early_stopping_patience is not None and evaluate
    save_strategy = "epoch" if (early or t.save_steps is None) else "steps"
    args: dict[str, Any] = dict(
        output_dir=str(Path(cfg.output_dir) / "checkpoints"), num_train_epochs=t.epochs, max_steps=t.max_steps,
        learning_rate=t.learning_rate, lr_scheduler_type=t.lr_scheduler, warmup_steps=t.warmup_ratio,
        weight_decay=t.weight_decay, per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.batch_size, gradient_accumulation_steps=t.grad_accum,
        activation_checkpointing=t.gradient_checkpointing, logging_steps=t.logging_steps, logging_first_step=True,
        eval_strategy="epoch" if evaluate else "no", save_strategy=save_strategy,
        save_total_limit=t.save_total_limit, seed=cfg.seed, data_seed=cfg.seed, report_to=[],
        disable_tqdm=quiet, use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0,
        **precision_flags(t.precision))
    if save_strategy == "steps":
        args["save_steps"] = t.save_steps
    if early:
        args.update(load_best_model_at_end=True, metric_for_best_model="eval_loss", greater_is_better=False)
    if t.gradient_checkpointing:
        args["activation_checkpointing_kwargs"] = {"use_reentrant": False}
    from dataclasses import fields

    require("transformers", extra="train")
    from transformers import TrainingArguments
    if "activation_checkpointing" not in {f.name for f in fields(TrainingArguments)}:   # transformers < 5
        args["gradient_checkpointing"] = args.pop("activation_checkpointing")
        if "activation_checkpointing_kwargs" in args:
            args["gradient_checkpointing_kwargs"] = args.pop("activation_checkpointing_kwargs")
    return args


def _last_checkpoint(cfg: TrainConfig) -> str | None:
    r = cfg.training.resume
    if r is False:
        return None
    if isinstance(r, str):
        if not Path(r).is_dir():
            raise CurateError(f"training.resume: checkpoint {r} does not exist")
        return r
    # The newest *complete* checkpoint: a run killed while saving leaves a folder without
    # trainer_state.json (written last), which transformers' get_last_checkpoint would pick.
    d = Path(cfg.output_dir) / "checkpoints"
    done = [c for c in d.glob("checkpoint-*") if c.name.split("-")[-1].isdigit()
            and (c / "trainer_state.json").exists()] if d.is_dir() else []
    return str(max(done, key=lambda c: int(c.name.split("-")[-1]))) if done else None


def lm_loss(model, tok, texts: list[str], max_length: int, batch_size: int = 8) -> dict[str, float]:
    """Mean token loss and perplexity of a causal LM on plain texts (the forgetting check)."""
    require("torch", extra="train")
    import torch
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    total, n_tok = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            enc = tok(texts[i:i + batch_size], return_tensors="pt", padding=True, truncation=True,
                      max_length=max_length).to(device)
            labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
            # the model shifts labels itself (and pads them for prompt-tuning's virtual tokens)
            loss = model(**enc, labels=labels).loss
            n = int((labels[:, 1:] != -100).sum())
            total += loss.item() * n
            n_tok += n
    if was:
        model.train()
    mean = total / max(n_tok, 1)
    return {"loss": mean, "perplexity": math.exp(min(mean, 50.0)), "tokens": n_tok}


def preflight(cfg: TrainConfig):
    """Every check that needs no training: model reference, method vs hardware, all data rows."""
    from curate.train.data import load_splits, load_texts
    from curate.train.methods import check_method, check_model_reference
    check_model_reference(cfg.model)
    check_method(cfg)
    splits = load_splits(cfg.data, cfg.objective, cfg.seed)
    general = None
    if cfg.forgetting is not None:
        if cfg.objective == "classification":
            raise CurateError("forgetting: the forgetting check measures LM loss; it needs objective sft or dpo")
        general = load_texts(cfg.forgetting.data, cfg.forgetting.text_field, cfg.forgetting.max_rows)
    return splits, general


def _eval_view(cfg: TrainConfig, trainer, ds):
    """An evaluation dataset in the shape the trainer takes (TRL prepares raw rows itself)."""
    if cfg.objective == "classification":
        return trainer.curate_encode(ds)
    from curate.train.dpo import DPO_COLUMNS
    from curate.train.sft import SFT_COLUMNS
    return ds.select_columns(SFT_COLUMNS if cfg.objective == "sft" else DPO_COLUMNS)


def _account_rows(cfg: TrainConfig, trainer, tok, splits) -> dict[str, Any]:
    """Rows read, rows the trainer kept and why any were dropped, per split; fail with a usable
    max_length when no training (or validation) row is left."""
    from curate.train.lengths import account_drops, fail_if_empty, token_report
    report = dict(splits.report)
    ml = cfg.training.max_length
    for name, raw, used in (("train", splits.train, trainer.train_dataset),
                            ("validation", splits.validation, trainer.eval_dataset)):
        if raw is None:
            continue
        acct = account_drops(name, len(raw), len(used) if used is not None else len(raw),
                             token_report(cfg.objective, raw, tok, ml))
        report[name] = acct
        fail_if_empty(name, acct, ml)
    if splits.test is not None:
        report["test"] = {"rows_in": len(splits.test), **{k: v for k, v in token_report(
            cfg.objective, splits.test, tok, ml).items() if k != "predicted_drops"}}
    return report


def _drop_line(report: dict[str, Any]) -> str:
    t = report.get("train") or {}
    line = f"data: split from {report.get('split_source')}; train rows {t.get('rows_used')} of {t.get('rows_in')}"
    if t.get("dropped"):
        line += " — dropped " + ", ".join(f"{v} {k}" for k, v in t["dropped_by_reason"].items())
        line += f" (token lengths {t.get('token_lengths')}; max_length {t.get('suggested_max_length')} would fit 99%)"
    return line


def run_training(config: TrainConfig | dict, console: Any = None) -> TrainResult:
    """Fine-tune ``config.model`` on ``config.data`` and write the run folder; see TrainConfig."""
    cfg = config if isinstance(config, TrainConfig) else TrainConfig(**config)
    started = time.time()
    splits, general = preflight(cfg)
    if (cfg.training.early_stopping_patience is None and splits.split_source == "pipeline"
            and splits.validation is not None):
        # the pipeline made the validation split: early-stop on it (and keep the best checkpoint)
        cfg = cfg.model_copy(update={"training": cfg.training.model_copy(update={"early_stopping_patience": 2})})
        splits.report["early_stopping"] = "auto: patience 2 on the pipeline's validation split"

    require("transformers", extra="train")
    from transformers import set_seed

    from curate.train import callbacks as cb

    set_seed(cfg.seed)
    run_dir = Path(cfg.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    tok, model, labels, extra_callbacks, params = _build_model(cfg, splits, console)

    forgetting: dict[str, Any] | None = None
    if general is not None:
        forgetting = {"before": lm_loss(model, tok, general, cfg.training.max_length)}

    args = training_arguments(cfg, splits.validation is not None, quiet=console is None)
    start = _StartStep()
    callbacks = list(extra_callbacks) + [start]
    gen_cb = None
    if cfg.objective == "sft" and splits.validation is not None and cfg.training.generation_eval_samples:
        rows = splits.validation.select(range(min(len(splits.validation), cfg.training.generation_eval_samples)))
        gen_cb = cb.GenerationEval([dict(r) for r in rows], tok, cfg.training.max_new_tokens, cfg.training.max_length)
        callbacks.append(gen_cb)
    if args.get("load_best_model_at_end"):
        require("transformers", extra="train")
        from transformers import EarlyStoppingCallback
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.training.early_stopping_patience))

    if cfg.objective == "sft":
        from curate.train.sft import build_trainer
    elif cfg.objective == "dpo":
        from curate.train.dpo import build_trainer
    else:
        from curate.train.classify import build_trainer
    trainer = build_trainer(cfg, model, tok, splits, args, callbacks)
    data_report = _account_rows(cfg, trainer, tok, splits)
    _say(console, _drop_line(data_report))

    resume = _last_checkpoint(cfg)
    if resume:
        _say(console, f"resuming from {resume}")
    out = trainer.train(resume_from_checkpoint=resume)
    model = trainer.model

    final_eval, test_eval = _evaluate(cfg, trainer, splits)
    if forgetting is not None:
        forgetting["after"] = lm_loss(model, tok, general, cfg.training.max_length)
        forgetting["loss_change"] = forgetting["after"]["loss"] - forgetting["before"]["loss"]
        forgetting["perplexity_change"] = forgetting["after"]["perplexity"] - forgetting["before"]["perplexity"]

    # ------------------------------------------------------------------ save
    model_dir = run_dir / ("adapter" if hasattr(model, "peft_config") else "model")
    trainer.save_model(str(model_dir))
    tok.save_pretrained(str(model_dir))
    merged_dir = None
    if cfg.merge_adapter and hasattr(model, "merge_and_unload"):
        from curate.train.adapters import merge_and_save
        merged_dir = merge_and_save(model_dir, run_dir / "merged", base=cfg.model, objective=cfg.objective,
                                    id2label=dict(enumerate(labels)) if labels else None)

    history = trainer.state.log_history
    metrics = _collect_metrics(cfg, trainer, splits, params, out, data_report, final_eval, test_eval,
                               resume, start, started, gen_cb, extra_callbacks, forgetting)
    metrics_path = cb.write_metrics(metrics, run_dir / "metrics.json")
    curve = cb.plot_loss_curve(history, run_dir / "loss_curve.png")
    card = cb.model_card(cfg, metrics, splits.files, run_dir / "README.md")
    if model_dir.exists():
        cb.model_card(cfg, metrics, splits.files, model_dir / "README.md")
    first, last = metrics["train_loss_first"], metrics["train_loss_last"]
    trend = f", loss {first:.4f} → {last:.4f}" if first is not None and last is not None else ""
    _say(console, f"done: {trainer.state.global_step} steps{trend}; run folder {run_dir}")
    return TrainResult(run_dir, model_dir, merged_dir, metrics, metrics_path, curve, card,
                       trainer.state.global_step, history, model, tok)


def _build_model(cfg: TrainConfig, splits: Any, console: Any):
    """Tokenizer and base model (a classifier head for classification), with the method applied."""
    from transformers import AutoTokenizer

    from curate.train.methods import apply_method, count_parameters, load_base
    tok = AutoTokenizer.from_pretrained(cfg.model)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    labels = None
    if cfg.objective == "classification":
        labels = cfg.classification.labels or splits.labels
        model = load_base(cfg, "classification", len(labels), dict(enumerate(labels)))
    else:
        model = load_base(cfg, cfg.objective)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tok.pad_token_id
    model, extra_callbacks = apply_method(model, cfg, cfg.objective)
    params = count_parameters(model)
    _say(console, f"model {cfg.model}: {params.trainable:,} of {params.total:,} parameters trainable "
                  f"({100 * params.fraction:.3f}%), method {cfg.method.kind}")
    return tok, model, labels, extra_callbacks, params


def _evaluate(cfg: TrainConfig, trainer: Any, splits: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Final metrics on the validation split and on the pipeline's test split (when there)."""
    final_eval: dict[str, Any] = {}
    if splits.validation is not None:
        final_eval = trainer.evaluate()
        if "eval_loss" in final_eval:
            final_eval["eval_perplexity"] = math.exp(min(final_eval["eval_loss"], 50.0))
    test_eval: dict[str, Any] = {}
    if splits.test is not None:
        from transformers import EarlyStoppingCallback
        trainer.remove_callback(EarlyStoppingCallback)      # it would look for eval_loss among test_* keys
        test_eval = trainer.evaluate(eval_dataset=_eval_view(cfg, trainer, splits.test), metric_key_prefix="test")
        if "test_loss" in test_eval:
            test_eval["test_perplexity"] = math.exp(min(test_eval["test_loss"], 50.0))
    return final_eval, test_eval


def _collect_metrics(cfg: TrainConfig, trainer: Any, splits: Any, params: Any, out: Any, data_report: dict,
                     final_eval: dict, test_eval: dict, resume: Any, start: Any, started: float, gen_cb: Any,
                     extra_callbacks: list, forgetting: dict | None) -> dict[str, Any]:
    """Everything metrics.json records about the run."""
    model = trainer.model
    history = trainer.state.log_history
    losses = [h["loss"] for h in history if "loss" in h]
    metrics: dict[str, Any] = {
        "objective": cfg.objective, "method": cfg.method.kind, "model": cfg.model,
        "trainable_params": params.trainable, "total_params": params.total, "trainable_fraction": params.fraction,
        "is_peft": hasattr(model, "peft_config"), "global_step": trainer.state.global_step,
        "epoch": trainer.state.epoch, "resumed_from": resume, "start_step": start.step, "data_format": splits.format,
        "train_rows": len(splits.train), "validation_rows": len(splits.validation) if splits.validation is not None else 0,
        "test_rows": len(splits.test) if splits.test is not None else 0, "data": data_report,
        "train_loss_first": losses[0] if losses else None, "train_loss_last": losses[-1] if losses else None,
        "train_runtime_s": out.metrics.get("train_runtime"), "wall_s": round(time.time() - started, 2),
        "final_eval": final_eval, "test": test_eval,
        "evaluations": [h for h in history if any(k.startswith("eval_") for k in h)],
        "log_history": history,
    }
    if gen_cb is not None:
        metrics["generation_eval"] = gen_cb.results
    if cfg.objective == "dpo":
        from curate.train.dpo import margin_trend
        metrics["reward_margins"] = margin_trend(history)
    if cfg.objective == "classification":
        metrics["labels"] = trainer.curate_labels
        metrics["class_weights"] = trainer.curate_class_weights
        metrics["per_class_f1"] = {lab: final_eval.get(f"eval_f1_{lab}") for lab in trainer.curate_labels}
        if test_eval:
            metrics["test_per_class"] = {lab: {"f1": test_eval.get(f"test_f1_{lab}"),
                                               "recall": test_eval.get(f"test_recall_{lab}")}
                                         for lab in trainer.curate_labels}
    for c in extra_callbacks:
        if hasattr(c, "history"):
            metrics["hft_rounds"] = c.history
    if forgetting is not None:
        metrics["forgetting"] = forgetting
    return metrics
