"""Adapter utilities: merge a LoRA/DoRA adapter into its base and save a plain model; combine
several adapters into one with peft's weighted combinations (linear, cat, svd, ...)."""
from __future__ import annotations

from pathlib import Path

from curate.errors import CurateError
from curate.extras import require


def _auto_cls(objective: str):
    require("transformers", extra="train")
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
    return AutoModelForSequenceClassification if objective == "classification" else AutoModelForCausalLM


def _base_of(adapter: Path) -> str:
    require("peft", extra="train")
    from peft import PeftConfig
    return PeftConfig.from_pretrained(str(adapter)).base_model_name_or_path


def _load_base(base: str, objective: str, id2label: dict[int, str] | None):
    if objective == "classification" and id2label:
        return _auto_cls(objective).from_pretrained(base, num_labels=len(id2label), id2label=id2label,
                                                     label2id={v: k for k, v in id2label.items()})
    return _auto_cls(objective).from_pretrained(base)


def merge_and_save(adapter: str | Path, out: str | Path, base: str | None = None, objective: str = "sft",
                   id2label: dict[int, str] | None = None) -> Path:
    """Fold the adapter's weights into the base model and save the result (+ tokenizer) at ``out``;
    ``id2label`` restores a classifier's label names on the merged model."""
    require("peft", extra="train")
    from peft import PeftModel
    require("transformers", extra="train")
    from transformers import AutoTokenizer
    adapter, out = Path(adapter), Path(out)
    if not (adapter / "adapter_config.json").exists():
        raise CurateError(f"{adapter} is not a peft adapter folder (no adapter_config.json)")
    base = base or _base_of(adapter)
    model = PeftModel.from_pretrained(_load_base(base, objective, id2label), str(adapter))
    merged = model.merge_and_unload()
    merged.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(base).save_pretrained(str(out))
    return out


def combine(adapters: list[str | Path], weights: list[float], out: str | Path, *,
            combination_type: str = "linear", base: str | None = None, objective: str = "sft",
            density: float | None = None, id2label: dict[int, str] | None = None) -> Path:
    """Weighted combination of LoRA adapters trained on the same base (peft ``add_weighted_adapter``).

    ``linear`` needs equal ranks; ``cat`` concatenates ranks; ``svd`` re-factorises the weighted sum;
    ``ties``/``dare_*`` (with ``density``) are also accepted by peft.
    """
    require("peft", extra="train")
    from peft import PeftModel
    if len(adapters) < 2 or len(adapters) != len(weights):
        raise CurateError("combine needs two or more adapters and one weight per adapter")
    adapters = [Path(a) for a in adapters]
    base = base or _base_of(adapters[0])
    model = PeftModel.from_pretrained(_load_base(base, objective, id2label), str(adapters[0]),
                                      adapter_name="a0")
    names = ["a0"]
    for i, a in enumerate(adapters[1:], 1):
        model.load_adapter(str(a), adapter_name=f"a{i}")
        names.append(f"a{i}")
    kw = {"density": density} if density is not None else {}
    try:
        model.add_weighted_adapter(names, list(weights), "combined", combination_type=combination_type, **kw)
    except ValueError as e:
        raise CurateError(f"cannot combine adapters with {combination_type!r}: {e}") from None
    model.set_adapter("combined")
    for n in names:
        model.delete_adapter(n)
    out = Path(out)
    model.save_pretrained(str(out))
    # peft saves a non-default adapter under a sub-folder named after it
    return out / "combined" if (out / "combined" / "adapter_config.json").exists() else out
