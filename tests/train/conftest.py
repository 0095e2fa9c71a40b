"""Fixtures for the training runner: tiny random models (built once per session) and small
datasets in curate's output formats."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NI_TASK = REPO / "pipelines" / "data" / "ni_tasks" / "task1146_country_capital.json"


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Tiny models train several times faster on one thread than on two contended ones (CI boxes
    here have 2 cores shared with other jobs)."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _ni_subset(n: int) -> dict:
    task = json.loads(NI_TASK.read_text(encoding="utf-8"))
    task["Instances"] = task["Instances"][:n]
    return task


def _corpus() -> list[str]:
    t = _ni_subset(40)
    texts = t["Definition"] + [e["input"] + " " + e["output"] for e in t["Positive Examples"]]
    texts += [x["input"] + " " + x["output"][0] for x in t["Instances"]]
    texts += ["Definition: Positive Example Negative Example Now complete the following example - Input: Output:",
              "the reply is good . the reply is bad . Human: Assistant: spam ham free prize call now meeting"]
    return texts


def _sharpen(path: Path) -> Path:
    """Scale the random output head so logits are not all ~0 (a random-init model with std-0.02
    weights cannot move far from the uniform distribution by adapting the inner layers alone)."""
    import torch
    from transformers import AutoModelForCausalLM
    m = AutoModelForCausalLM.from_pretrained(path)
    with torch.no_grad():
        m.lm_head.weight.mul_(10)
    m.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory) -> Path:
    from curate.testing import tiny_llama
    p = tiny_llama(tmp_path_factory.mktemp("tiny_lm") / "model", hidden_size=128, layers=2, corpus=_corpus())
    return _sharpen(p)


@pytest.fixture(scope="session")
def tiny_cls(tmp_path_factory) -> Path:
    from curate.testing import tiny_classifier
    return tiny_classifier(tmp_path_factory.mktemp("tiny_cls") / "model", num_labels=3, corpus=_corpus())


@pytest.fixture
def ni_dir(tmp_path) -> Path:
    d = tmp_path / "ni"
    d.mkdir()
    (d / "task1146_country_capital.json").write_text(json.dumps(_ni_subset(26)), encoding="utf-8")
    return d


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def dpo_file(tmp_path) -> Path:
    rows = [{"prompt": f"Input: {c} Output:", "chosen": f" {cap}", "rejected": " the reply is bad"}
            for c, cap in [("France", "Paris"), ("India", "New Delhi"), ("Italy", "Rome"), ("Spain", "Madrid"),
                           ("Japan", "Tokyo"), ("Peru", "Lima"), ("Chile", "Santiago"), ("Kenya", "Nairobi")]]
    return write_jsonl(tmp_path / "dpo.jsonl", rows)


@pytest.fixture
def cls_file(tmp_path) -> Path:
    import random
    rng = random.Random(0)
    words = {"spam": "free prize call now", "ham": "meeting the reply is good", "other": "Human Assistant"}
    counts = {"spam": 6, "ham": 18, "other": 6}                 # imbalanced on purpose
    rows = [{"text": " ".join(rng.choices(words[lab].split(), k=4)), "label": lab}
            for lab, n in counts.items() for _ in range(n)]
    rng.shuffle(rows)
    return write_jsonl(tmp_path / "cls.jsonl", rows)


def base_config(model: Path, train: Path, out: Path, **over) -> dict:
    """A small, fast config; tests override what they exercise."""
    cfg = {
        "model": str(model), "objective": "sft", "output_dir": str(out), "seed": 0,
        "data": {"train": str(train), "val_fraction": 0.0, "ni": {"num_pos_examples": 1}},
        "method": {"kind": "lora", "r": 4, "alpha": 8, "dropout": 0.0},
        "training": {"max_steps": 30, "learning_rate": 1e-2, "batch_size": 4, "max_length": 128,
                     "logging_steps": 1, "save_total_limit": 1, "generation_eval_samples": 2,
                     "max_new_tokens": 4},
    }
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k] = {**cfg[k], **v}
        else:
            cfg[k] = v
    return cfg


@pytest.fixture
def make_config():
    """``make_config(model, train, out, **overrides)`` → a small config dict."""
    return base_config


@pytest.fixture
def jsonl():
    """``jsonl(path, rows)`` writes rows as JSON lines."""
    return write_jsonl
