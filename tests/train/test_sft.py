"""SFT with LoRA on a tiny NI dataset: memorisation, trainable fraction, adapter round trip, run folder."""
from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_sft_lora_memorises_and_adapter_reloads(tiny_lm, ni_dir, tmp_path, make_config):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from curate.train import run_training

    import io

    from rich.console import Console
    out = tmp_path / "run"
    general = tmp_path / "general.txt"
    general.write_text("The sea is blue and calm.\nGive three tips for staying healthy.\n", encoding="utf-8")
    cfg = make_config(tiny_lm, ni_dir, out,
                      data={"train": str(ni_dir), "val_fraction": 0.2, "max_rows": 8, "ni": {"num_pos_examples": 1}},
                      training={"max_steps": 24, "batch_size": 8, "eval_every_epoch": False, "save_steps": 1000},
                      forgetting={"data": str(general)})
    log = io.StringIO()
    r = run_training(cfg, console=Console(file=log, width=200))
    assert "parameters trainable" in log.getvalue() and "done: 24 steps" in log.getvalue()
    losses = r.train_losses
    assert len(losses) >= 20
    assert losses[-1] <= 0.5 * losses[0], f"loss fell only {losses[0]:.3f} → {losses[-1]:.3f}"
    assert 0 < r.metrics["trainable_fraction"] < 0.05
    assert r.metrics["is_peft"] and r.metrics["data_format"] == "ni" and r.metrics["train_rows"] == 8

    # the saved adapter reloads on a fresh base model and reproduces the logits
    base = AutoModelForCausalLM.from_pretrained(tiny_lm)
    reloaded = PeftModel.from_pretrained(base, str(r.model_dir)).eval()
    ids = r.tokenizer("Definition: Input: France Output:", return_tensors="pt")
    r.model.eval()
    with torch.no_grad():
        a, b = r.model(**ids).logits, reloaded(**ids).logits
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    with torch.no_grad():   # and the adapter matters: the bare base differs
        assert not torch.allclose(AutoModelForCausalLM.from_pretrained(tiny_lm)(**ids).logits, b, atol=1e-3)

    # run folder: metrics JSON, loss curve PNG, model card with the data files and final eval
    m = json.loads((out / "metrics.json").read_text())
    assert m["train_loss_last"] == losses[-1] and m["global_step"] == 24
    assert {"exact_match", "rouge_l", "bleu"} <= set(m["generation_eval"][-1])
    assert "eval_perplexity" in m["final_eval"]
    f = m["forgetting"]
    assert f["before"]["tokens"] == f["after"]["tokens"] > 0
    assert f["loss_change"] == pytest.approx(f["after"]["loss"] - f["before"]["loss"])
    assert (out / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    card = (out / "README.md").read_text()
    assert "task1146_country_capital.json" in card and "lora" in card and "base_model:" in card and "Forgetting check" in card
