"""Reward models: a sequence-classification head scores (prompt, response) pairs, batched by the
same token budget as generation."""
from __future__ import annotations

from typing import Sequence

from curate.llm.batching import pack_by_tokens, restore_order
from curate.extras import require


class RewardModel:
    """``AutoModelForSequenceClassification``: one logit → that logit; several labels → the
    log-probability of ``label`` (default the last, e.g. "good")."""

    def __init__(self, model: str, device: str | None = None, batch_tokens: int = 16384,
                 label: int = -1) -> None:
        require("torch", extra="ml")
        import torch
        require("transformers", extra="ml")
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        self.tok = AutoTokenizer.from_pretrained(model)
        if self.tok.pad_token_id is None:
            self.tok.pad_token = self.tok.eos_token
        self.model = AutoModelForSequenceClassification.from_pretrained(model, dtype=dtype).to(self.device).eval()
        if self.model.config.pad_token_id is None:
            self.model.config.pad_token_id = self.tok.pad_token_id
        self.batch_tokens, self.label = batch_tokens, label

    def _text(self, prompt: str, response: str) -> str:
        if getattr(self.tok, "chat_template", None):
            return self.tok.apply_chat_template([{"role": "user", "content": prompt},
                                                 {"role": "assistant", "content": response}], tokenize=False)
        return f"{prompt}\n\n{response}"

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        require("torch", extra="ml")
        import torch
        texts = [self._text(p, r) for p, r in zip(prompts, responses)]
        ids = self.tok(texts, add_special_tokens=False, truncation=True, max_length=4096)["input_ids"]
        batches = pack_by_tokens([len(x) for x in ids], 0, self.batch_tokens)
        out = []
        for idx in batches:
            enc = self.tok.pad({"input_ids": [ids[i] for i in idx]}, padding=True, return_tensors="pt").to(self.device)
            with torch.inference_mode():
                logits = self.model(**enc).logits.float()
            if logits.shape[-1] == 1:
                vals = logits[:, 0]
            else:
                vals = torch.log_softmax(logits, -1)[:, self.label]
            out.append(vals.tolist())
        return restore_order(batches, out, len(texts))
