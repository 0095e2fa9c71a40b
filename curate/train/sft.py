"""SFT with TRL on prompt/completion rows (NI, Alpaca, chat): loss on the completion only."""
from __future__ import annotations

from typing import Any
from curate.extras import require

SFT_COLUMNS = ["prompt", "completion"]


def build_trainer(cfg, model, tok, splits, args: dict[str, Any], callbacks: list):
    require("trl", extra="train")
    from trl import SFTConfig, SFTTrainer

    sft_args = SFTConfig(**args, max_length=cfg.training.max_length, completion_only_loss=True,
                         dataset_num_proc=None, packing=False)
    train = splits.train.select_columns(SFT_COLUMNS)
    val = splits.validation.select_columns(SFT_COLUMNS) if splits.validation is not None else None
    return SFTTrainer(model=model, args=sft_args, train_dataset=train, eval_dataset=val,
                      processing_class=tok, callbacks=callbacks)
