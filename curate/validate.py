"""``curate validate``: check a pipeline file or a standalone train file without running it.

``${env:NAME}`` references are listed as required variables and need not be set: validation
puts a placeholder in their place (resolved values are a run-time matter)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.yamlfile import ENV_RE, read_yaml_mapping


@dataclass
class Checked:
    """What ``validate`` found: the kind of file, a one-line summary, required variables."""

    kind: str                       # "pipeline" or "train"
    summary: str
    env: dict[str, bool] = field(default_factory=dict)   # NAME -> set in this environment?


def env_refs(obj: Any) -> list[str]:
    """Names of every ``${env:NAME}`` in a parsed YAML document, in order of appearance."""
    found: list[str] = []
    if isinstance(obj, str):
        found += ENV_RE.findall(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            found += env_refs(v)
    elif isinstance(obj, list):
        for v in obj:
            found += env_refs(v)
    return list(dict.fromkeys(found))


def is_train_file(raw: dict[str, Any]) -> bool:
    """A standalone train file: no sources; either train keys at the root or one `train:` key."""
    return "sources" not in raw and ("model" in raw or set(raw) == {"train"})


def check_file(path: str | Path) -> Checked:
    """Validate ``path`` (pipeline or train YAML); raises the same errors a run would, with
    file, line and key. Environment variables are not needed."""
    import os
    raw, _ = read_yaml_mapping(path, "pipeline or train file", "name, sources, steps, outputs "
                               "(a pipeline) or model, objective, data (a train file)")
    names = env_refs(raw)
    env = {n: n in os.environ for n in names}
    if is_train_file(raw):
        from curate.train import load_train_config
        cfg = _with_placeholders(names, lambda: load_train_config(path))
        return Checked("train", f"train file: {cfg.objective} on {cfg.model} ({cfg.method.kind})", env)
    from curate.pipeline import load_yaml
    p = _with_placeholders(names, lambda: load_yaml(path))
    summary = f"{len(p.sources)} sources, {len(p.steps)} steps, {len(p.outputs)} outputs"
    if p.train is not None:
        summary += f", train: {p.train.objective} on {p.train.model}"
    return Checked("pipeline", summary, env)


def _with_placeholders(names: list[str], load):
    """Run ``load`` with unset variables given a placeholder value, then restore the environment."""
    import os
    unset = [n for n in names if n not in os.environ]
    try:
        for n in unset:
            os.environ[n] = f"__{n}__"
        return load()
    finally:
        for n in unset:
            os.environ.pop(n, None)
