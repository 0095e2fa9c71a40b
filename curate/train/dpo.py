"""DPO with TRL on prompt/chosen/rejected rows (curate's DPO output)."""
from __future__ import annotations

from typing import Any
from curate.extras import require

DPO_COLUMNS = ["prompt", "chosen", "rejected"]


def build_trainer(cfg, model, tok, splits, args: dict[str, Any], callbacks: list):
    require("transformers", extra="train")
    from transformers import AutoModelForCausalLM
    require("trl", extra="train")
    from trl import DPOConfig, DPOTrainer

    d = cfg.dpo
    dpo_args = DPOConfig(**args, beta=d.beta, loss_type=[d.loss_type], max_length=cfg.training.max_length,
                         precompute_ref_log_probs=d.precompute_reference)
    ref = None
    if d.reference != "auto":
        from curate.train.methods import check_model_reference
        check_model_reference(d.reference)
        ref = AutoModelForCausalLM.from_pretrained(d.reference)
    train = splits.train.select_columns(DPO_COLUMNS)
    val = splits.validation.select_columns(DPO_COLUMNS) if splits.validation is not None else None
    return DPOTrainer(model=model, ref_model=ref, args=dpo_args, train_dataset=train, eval_dataset=val,
                      processing_class=tok, callbacks=callbacks)


def margin_trend(log_history: list[dict]) -> dict[str, float | None]:
    """First and last logged chosen-vs-rejected reward margins."""
    m = [h["rewards/margins"] for h in log_history if "rewards/margins" in h]
    return {"first_margin": m[0] if m else None, "last_margin": m[-1] if m else None}
