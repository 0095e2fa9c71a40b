"""Which parameters train: peft adapters (LoRA, DoRA, QLoRA, prompt tuning), full fine-tuning,
top-k layer freezing, and Half Fine-Tuning (a fresh half of each layer's tensors per round)."""
from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.errors import CurateError
from curate.train.callbacks import Callback
from curate.train.config import MethodConfig, TrainConfig
from curate.extras import require

PEFT_KINDS = {"lora", "dora", "qlora", "prompt_tuning"}


@dataclass
class ParamCount:
    trainable: int
    total: int

    @property
    def fraction(self) -> float:
        return self.trainable / self.total if self.total else 0.0


def count_parameters(model) -> ParamCount:
    """Trainable and total parameter counts (peft's own count when the model is a PeftModel)."""
    if hasattr(model, "get_nb_trainable_parameters"):
        t, n = model.get_nb_trainable_parameters()
        return ParamCount(int(t), int(n))
    n = sum(p.numel() for p in model.parameters())
    t = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return ParamCount(t, n)


# ---------------------------------------------------------------------------- checks before loading
def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or name.count("/") > 1 or os.sep == "\\" and "\\" in name


def check_model_reference(name: str) -> None:
    """A model must be an existing local folder or a hub id we can resolve; say which, early."""
    p = Path(name).expanduser()
    if p.exists():
        if not (p / "config.json").exists() and not (p / "adapter_config.json").exists():
            raise CurateError(f"model path {p} has no config.json; point `model` at a saved transformers model folder")
        return
    if _looks_like_path(name):
        raise CurateError(f"model path {name} does not exist; set `model` to a local model folder or a hub id")
    require("transformers", extra="train")
    from transformers import AutoConfig
    try:
        AutoConfig.from_pretrained(name)
    except Exception as e:  # offline, unknown repo, gated...
        raise CurateError(f"model {name!r} is neither a local folder nor a hub model reachable from here "
                          f"({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None


def check_method(cfg: TrainConfig) -> None:
    """Hardware/method combinations that cannot work, reported before any weights load."""
    require("torch", extra="train")
    import torch
    kind = cfg.method.kind
    if kind == "qlora":
        if not torch.cuda.is_available():
            raise CurateError("method qlora needs a CUDA GPU (bitsandbytes 4-bit weights); none is available here. "
                              "Use method `lora` (or `dora`) on CPU")
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise CurateError("method qlora needs the `bitsandbytes` package: pip install bitsandbytes") from None
    prec = cfg.training.precision
    if prec == "fp16" and not torch.cuda.is_available():
        raise CurateError("training.precision fp16 needs a CUDA GPU; use fp32 (or bf16) on CPU")


def precision_flags(prec: str) -> dict[str, bool]:
    require("torch", extra="train")
    import torch
    if prec == "auto":
        bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return {"bf16": bf16, "fp16": False}
    return {"bf16": prec == "bf16", "fp16": prec == "fp16"}


# ---------------------------------------------------------------------------- loading
def load_base(cfg: TrainConfig, objective: str, num_labels: int | None = None,
              id2label: dict[int, str] | None = None):
    """The base model for the objective (4-bit quantised for QLoRA)."""
    require("torch", extra="train")
    import torch
    require("transformers", extra="train")
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    kwargs: dict[str, Any] = {}
    if cfg.method.kind == "qlora":
        require("transformers", extra="train")
        from transformers import BitsAndBytesConfig
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16)
        kwargs["dtype"] = torch.bfloat16
    if objective == "classification":
        model = AutoModelForSequenceClassification.from_pretrained(
            cfg.model, num_labels=num_labels, id2label=id2label,
            label2id={v: k for k, v in (id2label or {}).items()}, **kwargs)
    else:
        model = AutoModelForCausalLM.from_pretrained(cfg.model, **kwargs)
    if model.config.pad_token_id is None and getattr(model.config, "eos_token_id", None) is not None:
        eos = model.config.eos_token_id
        model.config.pad_token_id = eos[0] if isinstance(eos, list) else eos
    if cfg.method.kind == "qlora":
        require("peft", extra="train")
        from peft import prepare_model_for_kbit_training
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.training.gradient_checkpointing)
    return model


def _layers(model):
    """The stack of transformer blocks (an nn.ModuleList with num_hidden_layers entries)."""
    require("torch", extra="train")
    import torch.nn as nn
    n = getattr(model.config, "num_hidden_layers", None)
    best = None
    for _, mod in model.named_modules():
        if isinstance(mod, nn.ModuleList) and len(mod) > 0 and (n is None or len(mod) == n):
            best = mod
            break
    if best is None:
        raise CurateError(f"cannot find the transformer layers of {type(model).__name__} for partial freezing")
    return best


def _head_params(model) -> list:
    """Output head (+ classification score) and the final norm: what `train_head` unfreezes."""
    params = []
    out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if out is not None:
        params += list(out.parameters())
    for attr in ("score", "classifier"):
        if hasattr(model, attr):
            params += list(getattr(model, attr).parameters())
    base = getattr(model, model.base_model_prefix, None) if hasattr(model, "base_model_prefix") else None
    for attr in ("norm", "final_layernorm", "ln_f"):
        if base is not None and hasattr(base, attr):
            params += list(getattr(base, attr).parameters())
    return params


def peft_config(method: MethodConfig, objective: str, model_name: str):
    require("peft", extra="train")
    from peft import LoraConfig, PromptTuningConfig, PromptTuningInit, TaskType
    task = TaskType.SEQ_CLS if objective == "classification" else TaskType.CAUSAL_LM
    if method.kind == "prompt_tuning":
        init = {}
        if method.prompt_init_text:
            init = {"prompt_tuning_init": PromptTuningInit.TEXT, "prompt_tuning_init_text": method.prompt_init_text,
                    "tokenizer_name_or_path": model_name}
        return PromptTuningConfig(task_type=task, num_virtual_tokens=method.num_virtual_tokens, **init)
    return LoraConfig(r=method.r, lora_alpha=method.alpha, lora_dropout=method.dropout,
                      target_modules=method.target_modules, use_dora=method.kind == "dora",
                      task_type=task, bias="none")


def apply_method(model, cfg: TrainConfig, objective: str):
    """Wrap or freeze ``model`` per ``cfg.method``; returns (model, callbacks to add to the trainer)."""
    m = cfg.method
    callbacks: list = []
    if m.kind in PEFT_KINDS:
        require("peft", extra="train")
        from peft import get_peft_model
        model = get_peft_model(model, peft_config(m, objective, cfg.model))
    elif m.kind == "full":
        for p in model.parameters():
            p.requires_grad_(True)
    elif m.kind == "freeze":
        layers = _layers(model)
        if m.top_k_layers > len(layers):
            raise CurateError(f"method.top_k_layers={m.top_k_layers} but the model has {len(layers)} layers")
        for p in model.parameters():
            p.requires_grad_(False)
        for layer in list(layers)[-m.top_k_layers:]:
            for p in layer.parameters():
                p.requires_grad_(True)
        if m.train_head:
            for p in _head_params(model):
                p.requires_grad_(True)
    elif m.kind == "hft":
        for p in model.parameters():
            p.requires_grad_(False)
        layer_params = [list(layer.parameters()) for layer in _layers(model)]
        for ps in layer_params:          # trainable at optimiser creation; the callback picks halves
            for p in ps:
                p.requires_grad_(True)
        if m.train_head:
            for p in _head_params(model):
                p.requires_grad_(True)
        callbacks.append(HalfFineTuning(layer_params, m.hft_round_steps, cfg.seed))
    if cfg.training.gradient_checkpointing and m.kind != "qlora":
        if hasattr(model, "enable_input_require_grads"):
            model.enable_input_require_grads()
    return model, callbacks


class HalfFineTuning(Callback):
    """HFT (Hui et al., 2024): each round, a seeded random half of every layer's parameter tensors
    trains and the other half stays frozen, limiting drift from the pre-trained weights.
    Duck-typed TrainerCallback, so importing this module does not import transformers."""

    def __init__(self, layer_params: list[list], round_steps: int | None, seed: int) -> None:
        self.layer_params, self.round_steps, self.seed = layer_params, round_steps, seed
        self.round = -1
        self.history: list[dict[str, int]] = []

    def _select(self, rnd: int) -> None:
        rng = random.Random(self.seed * 1_000_003 + rnd)
        active = 0
        for ps in self.layer_params:
            idx = list(range(len(ps)))
            rng.shuffle(idx)
            on = set(idx[: max(1, len(ps) // 2)])
            for i, p in enumerate(ps):
                p.requires_grad_(i in on)
                active += p.numel() if i in on else 0
        self.round = rnd
        self.history.append({"round": rnd, "active_layer_params": active})

    def on_epoch_begin(self, args, state, control, **kw):
        if not self.round_steps:
            self._select(int(state.epoch or 0))

    def on_step_begin(self, args, state, control, **kw):
        if self.round_steps and state.global_step // self.round_steps != self.round:
            self._select(state.global_step // self.round_steps)
