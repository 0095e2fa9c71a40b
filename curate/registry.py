"""Name → class registries for sources, steps and outputs.

Classes register themselves with a decorator in the module that defines them; the registry
imports the plug-in packages (``connectors``, ``curate.steps``, ``curate.steps.synth``, ``schemas``,
``augmenters``) lazily the first time a name is looked up, so ``curate --help`` stays fast and
adding a step needs no edit to a central table.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Callable, TypeVar

T = TypeVar("T")

PLUGIN_PACKAGES = ("curate.connectors", "curate.steps", "curate.schemas", "curate.augmenters", "curate.llm")

_REGISTRIES: dict[str, dict[str, type]] = {"source": {}, "step": {}, "output": {}, "llm_backend": {}}
_discovered = False
#: Plug-in modules that failed to import: module name -> error text (shown with unknown names).
import_errors: dict[str, str] = {}


def _register(kind: str, name: str) -> Callable[[type[T]], type[T]]:
    def deco(cls: type[T]) -> type[T]:
        table = _REGISTRIES[kind]
        if name in table and table[name] is not cls:
            raise ValueError(f"{kind} name {name!r} registered twice: {table[name]} and {cls}")
        table[name] = cls
        cls.name = name  # type: ignore[attr-defined]
        return cls
    return deco


def register_source(name: str):
    """Register a :class:`curate.source.Source` subclass under ``name``."""
    return _register("source", name)


def register_step(name: str):
    """Register a :class:`curate.step.Step` subclass under ``name``."""
    return _register("step", name)


def register_output(name: str):
    """Register a :class:`curate.sink.Sink` subclass under ``name``."""
    return _register("output", name)


def register_llm_backend(name: str):
    """Register a :class:`curate.llm.base.LLM` subclass as the backend called ``name``."""
    return _register("llm_backend", name)


def discover() -> None:
    """Import every module of the plug-in packages once (they register on import)."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    for pkg_name in PLUGIN_PACKAGES:
        try:
            pkg = importlib.import_module(pkg_name)
        except ModuleNotFoundError:
            continue
        paths = getattr(pkg, "__path__", None)
        if not paths:
            continue
        for info in pkgutil.walk_packages(paths, prefix=pkg_name + "."):
            if info.name.rsplit(".", 1)[-1].startswith("_"):
                continue
            try:
                importlib.import_module(info.name)
            except Exception as e:  # a broken optional plug-in must not hide the others
                import_errors[info.name] = f"{type(e).__name__}: {e}"


def get(kind: str, name: str) -> type | None:
    discover()
    return _REGISTRIES[kind].get(name)


def names(kind: str) -> list[str]:
    discover()
    return sorted(_REGISTRIES[kind])


def table(kind: str) -> dict[str, Any]:
    discover()
    return dict(_REGISTRIES[kind])
