"""Pipeline files: YAML → validated source/step/output objects, with errors that name the file,
the line and the key path, and ``${env:NAME}`` references resolved at run time only."""
from __future__ import annotations

import difflib
import os
import re
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from curate.errors import MissingEnvError, PipelineErrors, PipelineFileError

ENV_RE = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
SECTIONS = {"sources": "source", "steps": "step", "outputs": "output"}


class RunSettings(BaseModel):
    """Top-level run options of a pipeline (everything but sources, steps and outputs)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Pipeline name; used for cache and output folders.")
    description: str | None = None
    seed: int = Field(default=0, description="Seed for every random choice in the run.")
    executor: Literal["local"] = Field(default="local", description="Where steps run.")
    workdir: str = Field(default=".curate", description="Cache and resumable shards live here.")
    out_dir: str | None = Field(default=None, description="Manifest and rejects go here (default out/<name>).")
    rejects_format: Literal["jsonl", "parquet"] = "jsonl"
    batch_size: int = Field(default=50_000, ge=1, description="Rows per batch for batch steps.")

    @field_validator("workdir", "out_dir", mode="before")
    @classmethod
    def _pathlike(cls, v: Any) -> Any:
        return str(v) if isinstance(v, os.PathLike) else v


class PipelineSettings(RunSettings):
    """A whole pipeline file (sources/steps/outputs items are validated per registry)."""

    sources: list[dict[str, Any]] = Field(min_length=1, description="Where records come from.")
    steps: list[dict[str, Any]] = Field(default_factory=list, description="Steps, applied in order.")
    outputs: list[dict[str, Any]] = Field(default_factory=list, description="Files to write.")
    train: dict[str, Any] | None = Field(
        default=None, description="Optional fine-tune run on the outputs (see `curate train`; curate.train.TrainConfig).")


# ---------------------------------------------------------------------------- YAML with lines
def _line_map(text: str, path: str) -> dict[tuple, int]:
    """Map every key path (tuple of keys/indices) to its 1-based line; reject duplicate keys."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise PipelineFileError(f"invalid YAML: {getattr(e, 'problem', e)}", path=path,
                                line=mark.line + 1 if mark else None) from None
    lines: dict[tuple, int] = {}

    def walk(node, p: tuple) -> None:
        lines.setdefault(p, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for k, v in node.value:
                key = k.value
                if key in seen:
                    raise PipelineFileError("duplicate key", path=path, line=k.start_mark.line + 1,
                                            key=_fmt(p + (key,)))
                seen.add(key)
                lines[p + (key,)] = k.start_mark.line + 1
                walk(v, p + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                lines[p + (i,)] = v.start_mark.line + 1
                walk(v, p + (i,))
    if root is not None:
        walk(root, ())
    return lines


def _fmt(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _line_for(lines: dict[tuple, int], loc: tuple) -> int | None:
    for n in range(len(loc), -1, -1):
        if tuple(loc[:n]) in lines:
            return lines[tuple(loc[:n])]
    return None


# ---------------------------------------------------------------------------- env references
def _has_env(obj: Any) -> bool:
    if isinstance(obj, str):
        return bool(ENV_RE.search(obj))
    if isinstance(obj, dict):
        return any(_has_env(v) for v in obj.values())
    if isinstance(obj, list):
        return any(_has_env(v) for v in obj)
    return False


def resolve_env(obj: Any, loc: tuple = (), missing: list | None = None) -> Any:
    """Replace ``${env:NAME}`` in every string; a string that is exactly one reference takes the
    variable's value as is. Missing variables are collected as ``(loc, name)`` in ``missing``."""
    if isinstance(obj, str):
        def sub(m: re.Match) -> str:
            val = os.environ.get(m.group(1))
            if val is None:
                if missing is None:
                    raise MissingEnvError(m.group(1), _fmt(loc))
                missing.append((loc, m.group(1)))
                return ""
            return val
        return ENV_RE.sub(sub, obj)
    if isinstance(obj, dict):
        return {k: resolve_env(v, loc + (k,), missing) for k, v in obj.items()}
    if isinstance(obj, list):
        return [resolve_env(v, loc + (i,), missing) for i, v in enumerate(obj)]
    return obj


# ---------------------------------------------------------------------------- messages
def _bounds(model: type[BaseModel] | None, loc: tuple) -> tuple[Any, Any]:
    """(lower, upper) bounds declared on the field at ``loc`` inside ``model``, if any."""
    cur: Any = model
    info = None
    for part in loc:
        if isinstance(part, int) or cur is None or not (isinstance(cur, type) and issubclass(cur, BaseModel)):
            continue
        info = cur.model_fields.get(part)
        if info is None:
            return None, None
        ann = info.annotation
        cur = next((a for a in (typing.get_args(ann) or (ann,))
                    if isinstance(a, type) and issubclass(a, BaseModel)), None)
    if info is None:
        return None, None
    lo = hi = None
    for m in info.metadata:
        lo = getattr(m, "ge", None) if getattr(m, "ge", None) is not None else (getattr(m, "gt", None) if lo is None else lo)
        hi = getattr(m, "le", None) if getattr(m, "le", None) is not None else (getattr(m, "lt", None) if hi is None else hi)
    return lo, hi


def _message(err: dict, model: type[BaseModel] | None, allowed: list[str]) -> str:
    t = err["type"]
    if t == "missing":
        return "required key is missing"
    if t == "extra_forbidden":
        key = str(err["loc"][-1])
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown key{hint} (allowed: {', '.join(allowed)})" if allowed else f"unknown key{hint}"
    if t in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        lo, hi = _bounds(model, tuple(err["loc"]))
        if lo is not None and hi is not None:
            return f"must be between {lo} and {hi}"
    msg = err["msg"]
    return msg[0].lower() + msg[1:]


def _allowed_keys(model: type[BaseModel] | None, loc: tuple) -> list[str]:
    cur: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or cur is None:
            continue
        info = cur.model_fields.get(part) if isinstance(cur, type) and issubclass(cur, BaseModel) else None
        if info is None:
            return []
        cur = next((a for a in (typing.get_args(info.annotation) or (info.annotation,))
                    if isinstance(a, type) and issubclass(a, BaseModel)), None)
    if isinstance(cur, type) and issubclass(cur, BaseModel):
        return [f.alias or n for n, f in cur.model_fields.items()]
    return []


def _pydantic_errors(exc: ValidationError, model: type[BaseModel], prefix: tuple, path: str,
                     lines: dict[tuple, int], raw: Any) -> list[PipelineFileError]:
    out = []
    for err in exc.errors():
        loc = prefix + tuple(err["loc"])
        msg = _message(err, model, _allowed_keys(model, tuple(err["loc"])))
        out.append(PipelineFileError(msg, path=path, line=_line_for(lines, loc), key=_fmt(loc)))
    return out


# ---------------------------------------------------------------------------- building
def build_component(kind: str, item: Any, loc: tuple, path: str, lines: dict[tuple, int],
                    raw_item: Any, errors: list[PipelineFileError]):
    """Turn ``{name: {config}}`` into a registered source/step/output instance (or record errors)."""
    from curate import registry
    if not isinstance(item, dict) or len(item) != 1:
        errors.append(PipelineFileError(
            f"each {kind} must be a mapping with exactly one key, the {kind} name "
            f"(e.g. `- {registry.names(kind)[0] if registry.names(kind) else 'name'}: {{...}}`)",
            path=path, line=_line_for(lines, loc), key=_fmt(loc)))
        return None
    (name, cfg), = item.items()
    cls = registry.get(kind, name)
    if cls is None:
        known = registry.names(kind)
        close = difflib.get_close_matches(str(name), known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        broken = "".join(f"; note: plug-in {m} failed to import ({err})"
                         for m, err in registry.import_errors.items())
        errors.append(PipelineFileError(f"unknown {kind} {name!r}; {hint}known: {', '.join(known)}{broken}",
                                        path=path, line=_line_for(lines, loc + (name,)), key=_fmt(loc + (name,))))
        return None
    cfg = {} if cfg is None else cfg
    if not isinstance(cfg, dict):
        errors.append(PipelineFileError("options must be a mapping", path=path,
                                        line=_line_for(lines, loc + (name,)), key=_fmt(loc + (name,))))
        return None
    try:
        config = cls.Config(**cfg)
    except ValidationError as e:
        errors.extend(_pydantic_errors(e, cls.Config, loc + (name,), path, lines, raw_item))
        return None
    obj = cls(config)
    # Hash and record the config as written: values holding ${env:..} stay unresolved, so
    # secrets never reach cache keys, manifests or logs.
    written = (raw_item or {}).get(name) if isinstance(raw_item, dict) else None
    if isinstance(written, dict):
        obj.raw_config = {**obj.raw_config, **{k: v for k, v in written.items() if _has_env(v)}}
    return obj


def read_yaml_mapping(path: str | Path, what: str, expected: str) -> tuple[dict, dict[tuple, int]]:
    """Read a YAML file that must hold a mapping; return it with its key-path → line map."""
    path_s = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PipelineFileError(f"{what} not found", path=path_s) from None
    lines = _line_map(text, path_s)
    raw = yaml.safe_load(text)
    if not isinstance(raw, dict):
        raise PipelineFileError(f"a {what} must be a mapping with {expected}", path=path_s, line=1)
    return raw, lines


def load_yaml(path: str | Path, resolve: bool = True) -> "Pipeline":
    """Load and validate a pipeline file. Raises :class:`PipelineErrors` listing every problem."""
    path_s = str(path)
    raw, lines = read_yaml_mapping(path, "pipeline file", "name, sources, steps, outputs")
    errors: list[PipelineFileError] = []
    missing: list = []
    data = resolve_env(raw, (), missing) if resolve else raw
    for loc, name in missing:
        errors.append(PipelineFileError(str(MissingEnvError(name)), path=path_s,
                                        line=_line_for(lines, loc), key=_fmt(loc)))
    try:
        settings = PipelineSettings(**data)
    except ValidationError as e:
        errors.extend(_pydantic_errors(e, PipelineSettings, (), path_s, lines, raw))
        raise PipelineErrors(errors) from None
    train = None
    if settings.train is not None:
        from curate.train import train_config_from_dict
        try:
            train = train_config_from_dict(data["train"], path=path_s, lines=lines, prefix=("train",))
        except PipelineErrors as e:
            errors.extend(e.errors)
        except PipelineFileError as e:
            errors.append(e)
    built: dict[str, list] = {}
    for section, kind in SECTIONS.items():
        built[section] = []
        for i, item in enumerate(getattr(settings, section)):
            raw_item = raw.get(section, [])[i] if isinstance(raw.get(section), list) else None
            obj = build_component(kind, item, (section, i), path_s, lines, raw_item, errors)
            if obj is not None:
                built[section].append(obj)
    if errors:
        raise PipelineErrors(errors)
    pipeline = Pipeline(sources=built["sources"], steps=built["steps"], outputs=built["outputs"],
                        **settings.model_dump(exclude={"sources", "steps", "outputs", "train"}),
                        path=path_s, _lines=lines)
    if train is not None:
        if train.provenance is None:       # the model card cites this pipeline's manifest
            train = train.model_copy(update={"provenance": str(pipeline.out_dir / "manifest.json")})
        pipeline.train = train
        pipeline.train_raw = raw["train"]  # as written: ${env:..} unresolved, for fingerprints
    return pipeline


# ---------------------------------------------------------------------------- public API
class Pipeline:
    """A runnable pipeline: sources → steps → outputs. Build it from YAML or from objects.

    >>> Pipeline.from_yaml("pipelines/quickstart.yaml").run()
    >>> Pipeline(name="x", sources=[...], steps=[...], outputs=[...]).run()
    Items may be objects (``Clean(min_words=3)``) or ``{"clean": {"min_words": 3}}`` dicts.
    """

    def __init__(self, sources: list, steps: list | None = None, outputs: list | None = None, *,
                 name: str = "pipeline", seed: int = 0, executor: str = "local",
                 workdir: str = ".curate", out_dir: str | None = None, rejects_format: str = "jsonl",
                 batch_size: int = 50_000, description: str | None = None, path: str | None = None,
                 train: Any = None, _lines: dict | None = None) -> None:
        RunSettings(name=name, seed=seed, executor=executor, workdir=workdir, out_dir=out_dir,
                    rejects_format=rejects_format, batch_size=batch_size, description=description)
        self.name, self.seed, self.executor, self.description = name, seed, executor, description
        self.workdir = Path(workdir)
        self.out_dir = Path(out_dir) if out_dir else Path("out") / name
        self.rejects_format, self.batch_size, self.path = rejects_format, batch_size, path
        self.train, self.train_raw = None, None
        if train is not None:
            from curate.train import TrainConfig, train_config_from_dict
            self.train = train if isinstance(train, TrainConfig) else train_config_from_dict(train, prefix=("train",))
            self.train_raw = self.train.model_dump(mode="json")
        errors: list[PipelineFileError] = []
        self.sources = [self._coerce("source", s, ("sources", i), errors) for i, s in enumerate(sources)]
        self.steps = [self._coerce("step", s, ("steps", i), errors) for i, s in enumerate(steps or [])]
        self.outputs = [self._coerce("output", s, ("outputs", i), errors) for i, s in enumerate(outputs or [])]
        if errors:
            raise PipelineErrors(errors)
        self._check_names()

    @staticmethod
    def _coerce(kind: str, item: Any, loc: tuple, errors: list):
        if isinstance(item, dict):
            return build_component(kind, resolve_env(item), loc, None, {}, item, errors)
        return item

    def _check_names(self) -> None:
        origins = [s.origin for s in self.sources]
        dup = {o for o in origins if origins.count(o) > 1}
        if dup:
            # Unnamed sources of one connector get numbered names; named ones must be unique.
            counts: dict[str, int] = {}
            for s in self.sources:
                if s.origin in dup and s.config.name is None:
                    counts[s.origin] = counts.get(s.origin, 0) + 1
                    s.origin = f"{s.origin}{counts[s.origin]}"
            origins = [s.origin for s in self.sources]
            again = sorted({o for o in origins if origins.count(o) > 1})
            if again:
                raise PipelineFileError(f"source name {again[0]!r} is used twice", path=self.path, key="sources")

    @classmethod
    def from_yaml(cls, path: str | Path) -> "Pipeline":
        return load_yaml(path)

    def run(self, *, force: bool = False, only: str | None = None, dry_run: bool = False,
            progress: bool = False, console: Any = None, train: bool = True):
        """Run (or plan, with ``dry_run``) the pipeline; returns a :class:`curate.engine.RunResult`.
        With a ``train:`` section, fine-tunes on the outputs afterwards (``train=False`` skips it)."""
        from curate.engine import Engine
        result = Engine(self, progress=progress, console=console).run(force=force, only=only, dry_run=dry_run)
        if train and self.train is not None and not dry_run and only is None:
            self._train(result, force, console)
        return result

    def _train(self, result, force: bool, console: Any) -> None:
        """Fine-tune per the ``train:`` section, unless an identical run on identical data is done."""
        import json

        from curate.cache import fingerprint, write_json
        from curate.train import run_training
        data_fp = [f["sha256"] for o in result.manifest["outputs"] for f in o["files"]]
        fp = fingerprint("train", self.train_raw, data_fp)
        marker = Path(self.train.output_dir) / "curate-train.json"
        entry: dict[str, Any] = {"output_dir": self.train.output_dir, "fingerprint": fp}
        if not force and marker.exists() and json.loads(marker.read_text()).get("fingerprint") == fp:
            entry.update(json.loads(marker.read_text()), cached=True)
        else:
            tr = run_training(self.train, console=console)
            entry.update(cached=False, global_step=tr.global_step, model_dir=str(tr.model_dir),
                         metrics=str(tr.metrics_path), model_card=str(tr.model_card_path))
            write_json({k: v for k, v in entry.items() if k != "cached"}, marker)
            result.training = tr
        result.manifest["train"] = entry
        if result.manifest_path is not None:
            write_json(result.manifest, result.manifest_path)


def json_schema() -> dict[str, Any]:
    """JSON Schema of the pipeline file format, built from every registered component."""
    from curate import registry
    schema = PipelineSettings.model_json_schema()
    defs = schema.setdefault("$defs", {})
    for section, kind in SECTIONS.items():
        variants = []
        for name, cls in registry.table(kind).items():
            sub = cls.Config.model_json_schema(ref_template="#/$defs/{model}")
            for k, v in sub.pop("$defs", {}).items():
                defs.setdefault(k, v)
            title = f"{kind}:{name}"
            sub["title"] = title
            defs[title] = sub
            variants.append({"type": "object", "additionalProperties": False, "required": [name],
                             "properties": {name: {"$ref": f"#/$defs/{title}"}},
                             "description": (cls.__doc__ or "").strip().split("\n")[0]})
        schema["properties"][section]["items"] = {"oneOf": variants}
    from curate.train.config import TrainConfig
    sub = TrainConfig.model_json_schema(ref_template="#/$defs/{model}")
    for k, v in sub.pop("$defs", {}).items():
        defs.setdefault(k, v)
    defs["TrainConfig"] = sub
    schema["properties"]["train"] = {"anyOf": [{"$ref": "#/$defs/TrainConfig"}, {"type": "null"}]}
    schema["title"] = "curate pipeline"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
