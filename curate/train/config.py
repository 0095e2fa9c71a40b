"""Pydantic model of a training config (a ``train:`` section or a standalone YAML for
``curate train``), validated with the same line-numbered errors as pipeline files."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Objective = Literal["sft", "dpo", "classification"]
DataFormat = Literal["auto", "ni", "chat", "alpaca", "prompt_completion", "dpo", "classification"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NIEncoding(_Model):
    """How Natural Instructions tasks become prompts (Tk-Instruct encoding)."""

    num_pos_examples: int = Field(default=2, ge=0, le=10, description="Positive examples shown before the instance.")
    num_neg_examples: int = Field(default=0, ge=0, le=10, description="Negative examples shown before the instance.")
    add_explanation: bool = Field(default=False, description="Include each example's explanation.")
    add_definition: bool = Field(default=True, description="Start the prompt with the task definition.")


class DataConfig(_Model):
    """Where the training rows come from: curate's own outputs (NI task files, chat/Alpaca/DPO JSONL, tables)."""

    train: str = Field(description="File or folder (a folder of NI task JSON files, or JSONL/CSV/Parquet).")
    validation: str | None = Field(
        default=None, description="Validation file; default: the pipeline's validation split (a `split` column "
                                  "or an `x.validation.jsonl` beside `x.train.jsonl`), else a random split of train.")
    test: str | None = Field(
        default=None, description="Test file for the final metrics; default: the pipeline's test split, if any.")
    split_field: str = Field(default="split", description="Column holding each row's split (train/validation/test).")
    format: DataFormat = Field(default="auto", description="Row format; `auto` detects it from the file.")
    val_fraction: float = Field(default=0.1, ge=0.0, le=0.5, description="Share of train held out when neither a "
                                "validation file nor a pipeline split is given.")
    max_rows: int | None = Field(default=None, ge=1, description="Use at most this many training rows.")
    text_field: str = Field(default="text", description="Text column (classification).")
    label_field: str = Field(default="label", description="Label column (classification).")
    ni: NIEncoding = Field(default_factory=NIEncoding, description="NI prompt encoding.")


class MethodConfig(_Model):
    """Which parameters train: a peft adapter, all of them, or a frozen subset."""

    kind: Literal["lora", "dora", "qlora", "prompt_tuning", "full", "freeze", "hft"] = Field(
        default="lora", description="lora / dora / qlora (4-bit, GPU) / prompt_tuning / full / freeze (top-k layers) / hft (half per round).")
    r: int = Field(default=8, ge=1, le=1024, description="LoRA rank.")
    alpha: int = Field(default=16, ge=1, description="LoRA alpha (scaling = alpha / r).")
    dropout: float = Field(default=0.05, ge=0.0, le=0.9, description="LoRA dropout.")
    target_modules: list[str] | str = Field(default="all-linear", description="Modules to adapt (`all-linear` or names).")
    num_virtual_tokens: int = Field(default=16, ge=1, le=512, description="Prompt-tuning virtual tokens.")
    prompt_init_text: str | None = Field(default=None, description="Initialise prompt tuning from this text.")
    top_k_layers: int = Field(default=2, ge=1, description="freeze: train only the top k transformer layers (+ head).")
    train_head: bool = Field(default=True, description="freeze/hft: also train the output head and final norm.")
    hft_round_steps: int | None = Field(default=None, ge=1, description="hft: steps per round (default: one epoch).")


class DPOOptions(_Model):
    """DPO knobs passed to TRL."""

    beta: float = Field(default=0.1, gt=0.0, le=10.0, description="Deviation from the reference model.")
    loss_type: str = Field(default="sigmoid", description="TRL loss type (sigmoid, ipo, hinge, ...).")
    reference: str = Field(
        default="auto", description="auto: the initial model (adapter disabled for peft, a frozen copy otherwise); or a model path/hub id.")
    precompute_reference: bool = Field(default=False, description="Compute reference log-probs once before training (saves memory).")


class ClassificationOptions(_Model):
    """Sequence-classification head and class weights."""

    class_weights: Literal["auto", "none", "manifest"] | dict[str, float] = Field(
        default="auto", description="auto: inverse class frequency; manifest: from the balance step's stats; none; or a mapping.")
    manifest: str | None = Field(default=None, description="Pipeline manifest.json with a balance step (for `manifest`).")
    labels: list[str] | None = Field(default=None, description="Label order (default: sorted labels of train).")


class TrainingOptions(_Model):
    """The optimisation loop (passed to transformers/TRL arguments)."""

    epochs: float = Field(default=3.0, gt=0, description="Passes over the training data.")
    max_steps: int = Field(default=-1, ge=-1, description="Stop after this many optimiser steps (-1: use epochs).")
    learning_rate: float = Field(default=2e-4, gt=0, le=1.0, description="Peak learning rate.")
    lr_scheduler: str = Field(default="linear", description="transformers scheduler name (linear, cosine, constant_with_warmup...).")
    warmup_ratio: float = Field(default=0.0, ge=0.0, le=0.5, description="Share of steps for linear warm-up.")
    weight_decay: float = Field(default=0.0, ge=0.0, le=1.0)
    batch_size: int = Field(default=8, ge=1, le=4096, description="Per-device batch size.")
    grad_accum: int = Field(default=1, ge=1, le=1024, description="Gradient accumulation steps.")
    gradient_checkpointing: bool = Field(default=False, description="Recompute activations to save memory.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(default="auto", description="auto: bf16 on a GPU that has it, else fp32.")
    max_length: int = Field(default=512, ge=8, le=131072, description="Truncate sequences to this many tokens.")
    logging_steps: int = Field(default=1, ge=1)
    eval_every_epoch: bool = Field(default=True, description="Evaluate on validation at each epoch end.")
    save_steps: int | None = Field(default=None, ge=1, description="Checkpoint every N steps (default: every epoch).")
    save_total_limit: int | None = Field(default=2, ge=1, description="Keep at most this many checkpoints.")
    early_stopping_patience: int | None = Field(
        default=None, ge=1, description="Stop after N evaluations without improvement (default: 2 when the pipeline "
                                        "made the validation split, else off).")
    resume: bool | str = Field(default=True, description="true: resume from the last checkpoint in output_dir if any; or a checkpoint path.")
    generation_eval_samples: int = Field(default=16, ge=0, le=10000, description="SFT: validation rows generated for EM/ROUGE-L/BLEU.")
    max_new_tokens: int = Field(default=32, ge=1, le=4096)


class ForgettingCheck(_Model):
    """Loss/perplexity on a general held-out text set before and after training."""

    data: str = Field(description="JSONL/TXT/CSV with a text column (one text per line for .txt).")
    text_field: str = "text"
    max_rows: int = Field(default=64, ge=1)


class TrainConfig(_Model):
    """A fine-tuning run: model + data + objective + method + loop options."""

    model: str = Field(description="Hub model name or local path.")
    objective: Objective = Field(default="sft", description="sft, dpo or classification.")
    data: DataConfig
    method: MethodConfig = Field(default_factory=MethodConfig)
    training: TrainingOptions = Field(default_factory=TrainingOptions)
    dpo: DPOOptions = Field(default_factory=DPOOptions)
    classification: ClassificationOptions = Field(default_factory=ClassificationOptions)
    forgetting: ForgettingCheck | None = Field(default=None, description="Optional forgetting check.")
    output_dir: str = Field(default="runs/train", description="Run folder: checkpoints, adapter, metrics, plots, card.")
    seed: int = Field(default=0, description="Seed for data split, init and order.")
    provenance: str | None = Field(default=None, description="Pipeline manifest.json whose sources go into the model card.")
    merge_adapter: bool = Field(default=False, description="Also save base+adapter merged into one model.")

    @model_validator(mode="after")
    def _coherent(self) -> "TrainConfig":
        if self.objective == "classification" and self.method.kind == "prompt_tuning":
            raise ValueError("prompt_tuning is for causal LMs; use lora, dora, full or freeze for classification")
        return self

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir)

