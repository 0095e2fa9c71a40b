"""The bundled fine-tune runner: SFT / DPO / classification with peft and TRL on curate's outputs.

>>> cfg = load_train_config("train.yaml"); result = run_training(cfg)
Heavy libraries load only inside functions, so importing this package is cheap.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from curate.train.config import TrainConfig

__all__ = ["TrainConfig", "TrainResult", "load_train_config", "train_config_from_dict", "run_training"]


def train_config_from_dict(data: Any, *, path: str = "<python>", lines: dict | None = None,
                           prefix: tuple = ()) -> TrainConfig:
    """Validate a mapping (a standalone file's root, or a pipeline's ``train:`` section with
    ``prefix=("train",)``) into a TrainConfig; errors carry file, line and key path."""
    from pydantic import ValidationError

    from curate.errors import PipelineErrors, PipelineFileError
    from curate.yamlfile import line_for, pydantic_errors

    lines = lines or {}
    if not isinstance(data, dict):
        raise PipelineFileError("a train config must be a mapping with model, objective, data, ...",
                                path=path, line=line_for(lines, prefix), key=".".join(map(str, prefix)) or None)
    try:
        return TrainConfig(**data)
    except ValidationError as e:
        raise PipelineErrors(pydantic_errors(e, TrainConfig, prefix, path, lines, data)) from None


def load_train_config(path: str | Path) -> TrainConfig:
    """Read a standalone train YAML, or the ``train:`` section of a pipeline file."""
    from curate.errors import MissingEnvError, PipelineErrors, PipelineFileError
    from curate.yamlfile import key_path, line_for, read_yaml_mapping, resolve_env

    path_s = str(path)
    raw, lines = read_yaml_mapping(path, "train config file", "model, objective, data, ...")
    prefix: tuple = ()
    manifest = None
    if "train" in raw and "sources" in raw:          # a pipeline file with a train: section
        # the pipeline's manifest (where `curate build` writes it) is the default provenance
        top = resolve_env({k: raw.get(k) for k in ("out_dir", "name")}, (), [])   # ${env:} in out_dir/name
        manifest = str(Path(top.get("out_dir") or Path("out") / str(top.get("name") or "pipeline")) / "manifest.json")
        raw, prefix = raw["train"], ("train",)
    missing: list = []
    data = resolve_env(raw, prefix, missing)
    if missing:
        raise PipelineErrors([PipelineFileError(str(MissingEnvError(name)), path=path_s,
                                                line=line_for(lines, loc), key=key_path(loc)) for loc, name in missing])
    cfg = train_config_from_dict(data, path=path_s, lines=lines, prefix=prefix)
    if manifest and cfg.provenance is None:
        cfg = cfg.model_copy(update={"provenance": manifest})
    return cfg


def run_training(config: TrainConfig | dict, console: Any = None):
    """Train per ``config``; returns :class:`curate.train.runner.TrainResult`."""
    from curate.train.runner import run_training as _run
    return _run(config, console=console)


def __getattr__(name: str):
    if name == "TrainResult":
        from curate.train.runner import TrainResult
        return TrainResult
    raise AttributeError(name)
