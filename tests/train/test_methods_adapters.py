"""Methods (full, top-k freezing, HFT, DoRA, prompt tuning) and adapter merge/combination."""
from __future__ import annotations

import pytest

from curate.train.config import TrainConfig


def _cfg(model, kind, **method) -> TrainConfig:
    return TrainConfig(model=str(model), data={"train": "unused"}, method={"kind": kind, **method})


def test_partial_freezing_trains_top_layers_and_head(tiny_lm):
    from transformers import AutoModelForCausalLM

    from curate.train.methods import apply_method, count_parameters
    m, _ = apply_method(AutoModelForCausalLM.from_pretrained(tiny_lm), _cfg(tiny_lm, "freeze", top_k_layers=1), "sft")
    trainable = {n for n, p in m.named_parameters() if p.requires_grad}
    assert any(n.startswith("model.layers.1.") for n in trainable)
    assert not any(n.startswith("model.layers.0.") for n in trainable)
    assert "lm_head.weight" in trainable and "model.embed_tokens.weight" not in trainable
    assert 0 < count_parameters(m).fraction < 1
    full, _ = apply_method(AutoModelForCausalLM.from_pretrained(tiny_lm), _cfg(tiny_lm, "full"), "sft")
    assert count_parameters(full).fraction == 1.0


def test_hft_switches_half_of_each_layer_per_round(tiny_lm):
    from transformers import AutoModelForCausalLM

    from curate.train.methods import HalfFineTuning, apply_method
    m, cbs = apply_method(AutoModelForCausalLM.from_pretrained(tiny_lm), _cfg(tiny_lm, "hft", hft_round_steps=2), "sft")
    hft = next(c for c in cbs if isinstance(c, HalfFineTuning))
    layer0 = [(n, p) for n, p in m.named_parameters() if n.startswith("model.layers.0.")]

    class S:
        global_step = 0
    hft.on_step_begin(None, S, None)
    first = {n for n, p in layer0 if p.requires_grad}
    assert len(first) == len(layer0) // 2
    S.global_step = 1
    hft.on_step_begin(None, S, None)               # same round: unchanged
    assert {n for n, p in layer0 if p.requires_grad} == first
    picks = set()
    for step in range(2, 20, 2):
        S.global_step = step
        hft.on_step_begin(None, S, None)
        picks.add(frozenset(n for n, p in layer0 if p.requires_grad))
    assert len(picks) > 1 and [h["round"] for h in hft.history][:3] == [0, 1, 2]


@pytest.mark.slow
@pytest.mark.parametrize("method", [{"kind": "dora", "r": 4}, {"kind": "prompt_tuning", "num_virtual_tokens": 4},
                                    {"kind": "hft", "hft_round_steps": 1}, {"kind": "lora", "checkpointing": True}])
def test_methods_train_end_to_end(tiny_lm, ni_dir, tmp_path, make_config, method):
    from curate.train import run_training
    method = dict(method)
    gc = method.pop("checkpointing", False)
    general = tmp_path / "general.txt"
    general.write_text("The sea is blue and calm.\nWhat is the capital of France?\n", encoding="utf-8")
    cfg = make_config(tiny_lm, ni_dir, tmp_path / "run", method=method, forgetting={"data": str(general)},
                      data={"train": str(ni_dir), "val_fraction": 0.1, "max_rows": 4, "ni": {"num_pos_examples": 1}},
                      training={"max_steps": 3, "batch_size": 2, "save_steps": 1000, "eval_every_epoch": False,
                                "gradient_checkpointing": gc})
    r = run_training(cfg)
    assert r.global_step == 3 and all(x == x for x in r.train_losses)   # finite, no NaN
    f = r.metrics["forgetting"]                                         # works for every method
    assert f["before"]["tokens"] == f["after"]["tokens"] > 0
    assert "eval_rouge_l" in r.metrics["final_eval"]                   # generation works for every method
    if method["kind"] == "hft":
        assert [h["round"] for h in r.metrics["hft_rounds"]] == [0, 1, 2]
        assert r.model_dir.name == "model"
    else:
        assert r.metrics["is_peft"] and (r.model_dir / "adapter_config.json").exists()


def _random_adapter(tiny_lm, path, seed, r=4):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    torch.manual_seed(seed)
    m = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_lm),
                       LoraConfig(r=r, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False,
                                  task_type="CAUSAL_LM"))
    m.save_pretrained(str(path))
    return m


def test_merge_and_combine_adapters(tiny_lm, tmp_path):
    import torch
    from peft import PeftConfig
    from transformers import AutoModelForCausalLM

    from curate.train.adapters import combine, merge_and_save
    a = _random_adapter(tiny_lm, tmp_path / "a", 1)
    _random_adapter(tiny_lm, tmp_path / "b", 2, r=2)
    ids = torch.tensor([[1, 5, 9, 13, 17]])
    merged = AutoModelForCausalLM.from_pretrained(merge_and_save(tmp_path / "a", tmp_path / "merged"))
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, a.eval()(ids).logits, rtol=1e-4, atol=1e-4)
    cat = combine([tmp_path / "a", tmp_path / "b"], [0.5, 0.5], tmp_path / "cat", combination_type="cat")
    assert PeftConfig.from_pretrained(str(cat)).r == 6                  # ranks concatenate
    svd = combine([tmp_path / "a", tmp_path / "b"], [0.7, 0.3], tmp_path / "svd", combination_type="svd")
    assert PeftConfig.from_pretrained(str(svd)).r == 4
    from curate.errors import CurateError
    with pytest.raises(CurateError, match="linear"):                     # linear needs equal ranks
        combine([tmp_path / "a", tmp_path / "b"], [0.5, 0.5], tmp_path / "lin", combination_type="linear")


@pytest.mark.slow
def test_chat_rows_train_with_generation_metrics(tiny_lm, tmp_path, make_config, jsonl):
    """Conversational prompt/completion rows (curate's chat output) go through the chat template."""
    from curate.train import run_training
    rows = [{"messages": [{"role": "system", "content": "Answer with the capital."},
                          {"role": "user", "content": c}, {"role": "assistant", "content": cap}]}
            for c, cap in [("France", "Paris"), ("India", "New Delhi"), ("Italy", "Rome"), ("Spain", "Madrid"),
                           ("Japan", "Tokyo"), ("Peru", "Lima")]]
    f = jsonl(tmp_path / "chat.jsonl", rows)
    cfg = make_config(tiny_lm, f, tmp_path / "run", data={"train": str(f), "val_fraction": 0.34},
                      training={"max_steps": -1, "epochs": 2, "batch_size": 4, "save_steps": 1000,
                                "early_stopping_patience": 3})
    r = run_training(cfg)
    assert r.metrics["data_format"] == "chat" and r.metrics["validation_rows"] == 2
    gen = r.metrics["generation_eval"]
    assert [g["epoch"] for g in gen[:2]] == [1.0, 2.0]        # evaluated each epoch
    assert all(0.0 <= g["rouge_l"] <= 1.0 and 0.0 <= g["bleu"] <= 100.0 for g in gen)
    assert "eval_exact_match" in r.metrics["final_eval"]


def test_training_arguments_wire_loop_options(tmp_path):
    from curate.train.runner import training_arguments
    cfg = TrainConfig(model="m", data={"train": "x"}, output_dir=str(tmp_path / "o"),
                      training={"early_stopping_patience": 2, "save_steps": 5, "warmup_ratio": 0.1,
                                "grad_accum": 4, "gradient_checkpointing": True, "lr_scheduler": "cosine"})
    a = training_arguments(cfg, has_val=True, quiet=True)
    assert a["load_best_model_at_end"] and a["metric_for_best_model"] == "eval_loss"
    assert a["save_strategy"] == a["eval_strategy"] == "epoch"     # early stopping needs matching strategies
    assert a["warmup_steps"] == 0.1 and a["gradient_accumulation_steps"] == 4
    assert a["activation_checkpointing"] and a["lr_scheduler_type"] == "cosine"
    b = training_arguments(cfg.model_copy(update={"training": cfg.training.model_copy(
        update={"early_stopping_patience": None})}), has_val=False, quiet=True)
    assert b["eval_strategy"] == "no" and b["save_strategy"] == "steps" and b["save_steps"] == 5
