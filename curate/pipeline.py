"""Pipeline files: YAML → validated source/step/output objects, with errors that name the file,
the line and the key path, and ``${env:NAME}`` references resolved at run time only."""
from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from curate.errors import MissingEnvError, PipelineErrors, PipelineFileError
from curate.executors.config import RayOptions
from curate.yamlfile import (has_env, key_path, line_for, pydantic_errors, read_yaml_mapping,
                             resolve_env)

SECTIONS = {"sources": "source", "steps": "step", "outputs": "output"}


class RunSettings(BaseModel):
    """Top-level run options of a pipeline (everything but sources, steps and outputs)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Pipeline name; used for cache and output folders.")
    description: str | None = None
    seed: int = Field(default=0, description="Seed for every random choice in the run.")
    executor: Literal["local", "ray"] = Field(
        default="local", description="Where steps run: `local` (this process) or `ray` (Ray Data; "
        "the [ray] extra; see the `ray:` block and README \"Running on a cluster\").")
    ray: RayOptions | None = Field(default=None, description="Ray executor options (address, CPUs, "
                                   "per-step GPUs and actor pools); used with `executor: ray`.")
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
    plugins: list[str] = Field(
        default_factory=list,
        description="Modules that define your own sources/steps/outputs, imported before the rest of the "
                    "file is checked: dotted names (found next to this file first) or .py paths relative to it.")


# ---------------------------------------------------------------------------- building
def build_component(kind: str, item: Any, loc: tuple, path: str, lines: dict[tuple, int],
                    raw_item: Any, errors: list[PipelineFileError]):
    """Turn ``{name: {config}}`` into a registered source/step/output instance (or record errors)."""
    from curate import registry
    if not isinstance(item, dict) or len(item) != 1:
        errors.append(PipelineFileError(
            f"each {kind} must be a mapping with exactly one key, the {kind} name "
            f"(e.g. `- {registry.names(kind)[0] if registry.names(kind) else 'name'}: {{...}}`)",
            path=path, line=line_for(lines, loc), key=key_path(loc)))
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
                                        path=path, line=line_for(lines, loc + (name,)), key=key_path(loc + (name,))))
        return None
    cfg = {} if cfg is None else cfg
    if not isinstance(cfg, dict):
        errors.append(PipelineFileError("options must be a mapping", path=path,
                                        line=line_for(lines, loc + (name,)), key=key_path(loc + (name,))))
        return None
    try:
        config = cls.Config(**cfg)
    except ValidationError as e:
        errors.extend(pydantic_errors(e, cls.Config, loc + (name,), path, lines, raw_item))
        return None
    obj = cls(config)
    # Hash and record the config as written: values holding ${env:..} stay unresolved, so
    # secrets never reach cache keys, manifests or logs.
    written = (raw_item or {}).get(name) if isinstance(raw_item, dict) else None
    if isinstance(written, dict):
        obj.raw_config = {**obj.raw_config, **{k: v for k, v in written.items() if has_env(v)}}
    return obj


def _load_plugins(modules: list[str], path: str | Path, lines: dict[tuple, int],
                  errors: list[PipelineFileError]) -> None:
    """Import the file's ``plugins:`` (relative to the file's folder) so their components register."""
    from curate import registry
    for i, spec in enumerate(modules):
        try:
            registry.load_plugin(spec, Path(path).parent)
        except Exception as e:
            errors.append(PipelineFileError(f"plug-in {spec!r} failed to import: {type(e).__name__}: {e}",
                                            path=str(path), line=line_for(lines, ("plugins", i)),
                                            key=key_path(("plugins", i))))


def load_yaml(path: str | Path, resolve: bool = True) -> "Pipeline":
    """Load and validate a pipeline file. Raises :class:`PipelineErrors` listing every problem."""
    path_s = str(path)
    raw, lines = read_yaml_mapping(path, "pipeline file", "name, sources, steps, outputs")
    errors: list[PipelineFileError] = []
    missing: list = []
    data = resolve_env(raw, (), missing) if resolve else raw
    for loc, name in missing:
        errors.append(PipelineFileError(str(MissingEnvError(name)), path=path_s,
                                        line=line_for(lines, loc), key=key_path(loc)))
    try:
        settings = PipelineSettings(**data)
    except ValidationError as e:
        errors.extend(pydantic_errors(e, PipelineSettings, (), path_s, lines, raw))
        raise PipelineErrors(errors) from None
    _load_plugins(settings.plugins, path, lines, errors)
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
                        **settings.model_dump(exclude={"sources", "steps", "outputs", "train", "plugins"}),
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
                 train: Any = None, ray: Any = None, _lines: dict | None = None) -> None:
        checked = RunSettings(name=name, seed=seed, executor=executor, workdir=workdir, out_dir=out_dir,
                              rejects_format=rejects_format, batch_size=batch_size,
                              description=description, ray=ray)
        self.name, self.seed, self.executor, self.description = name, seed, executor, description
        self.ray = checked.ray or RayOptions()
        self.workdir = Path(workdir)
        from curate.storage import is_url
        # A URL out_dir (s3://..., any fsspec URL): the run writes into a local mirror under the
        # workdir and uploads manifest, rejects and report there when it saves (Engine._save_run).
        self.out_url = str(out_dir) if out_dir and is_url(str(out_dir)) else None
        self.out_dir = (self.workdir / name / "out" if self.out_url else
                        Path(out_dir) if out_dir else Path("out") / name)
        self.rejects_format, self.batch_size, self.path = rejects_format, batch_size, path
        self._lines = _lines or {}         # key path -> line in the pipeline file (for messages)
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
        if kind == "source" and not isinstance(item, dict):
            from curate.connectors.memory import as_source
            item = as_source(item)     # a DataFrame, Arrow table, datasets.Dataset or list of dicts
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
            progress: bool = False, console: Any = None, train: bool = True, wait: bool = False):
        """Run (or plan, with ``dry_run``) the pipeline; returns a :class:`curate.engine.RunResult`.
        With a ``train:`` section, fine-tunes on the outputs afterwards (``train=False`` skips it).
        A build holds ``<workdir>/<name>/.lock``: a second build of the same pipeline fails at once
        naming the holder's pid, or with ``wait`` queues behind it."""
        Engine = self._engine_class()
        if dry_run:
            return Engine(self, progress=progress, console=console).run(force=force, only=only, dry_run=True)
        from curate.io import exclusive_lock
        engine = Engine(self, progress=progress, console=console)
        from curate.runs import resolve_only
        resolve_only(self.steps, only)      # a bad --only or output path fails before anything is created
        engine.preflight()

        def waiting(pid):
            if console is not None:
                console.print(f"waiting for pid {pid or '?'} to finish building {self.name} ...")
        with exclusive_lock(Path(self.workdir) / self.name / ".lock", f"a build of pipeline {self.name!r}",
                            wait=wait, on_wait=waiting):
            result = engine.run(force=force, only=only)
            if train and self.train is not None and only is None:
                self._train(result, force, console)
        return result

    def _engine_class(self):
        """The executor's engine: :class:`curate.engine.Engine` or, for ``executor: ray``,
        :class:`curate.executors.ray_executor.RayEngine` (imports Ray lazily)."""
        if self.executor == "ray":
            from curate.executors.ray_executor import RayEngine
            return RayEngine
        from curate.engine import Engine
        return Engine

    def _train(self, result, force: bool, console: Any) -> None:
        """Fine-tune per the ``train:`` section, unless an identical run on identical data is done."""
        import json

        from curate.io import fingerprint, write_json
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
