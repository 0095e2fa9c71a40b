"""Name → class registries for sources, steps and outputs.

Classes register themselves with a decorator in the module that defines them; the registry
imports the plug-in packages (``curate.connectors``, ``curate.steps``, ``curate.schemas``,
``curate.augmenters``, ``curate.llm``) lazily the first time a name is looked up, so
``curate --help`` stays fast and adding a step needs no edit to a central table.

Users' components come from two places:

* installed packages declaring the entry-point group ``curate.components`` (each entry point
  names a module, imported by :func:`discover`)::

      [project.entry-points."curate.components"]
      my_steps = "my_package.steps"

* a pipeline file's ``plugins:`` list (module names or ``.py`` paths), imported by
  :func:`load_plugins` before the file is validated.
"""
from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys
from pathlib import Path
from typing import Any, Callable, TypeVar

T = TypeVar("T")

PLUGIN_PACKAGES = ("curate.connectors", "curate.steps", "curate.schemas", "curate.augmenters", "curate.llm")
#: Entry-point group of installed third-party components.
ENTRY_POINT_GROUP = "curate.components"

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
    _load_entry_points()


def _load_entry_points() -> None:
    """Import the modules that installed packages declare under ``curate.components``."""
    from importlib.metadata import entry_points
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as e:  # a broken third-party plug-in must not hide the others
            import_errors[f"{ep.name} ({ep.value})"] = f"{type(e).__name__}: {e}"


def load_plugin(spec: str, base_dir: str | Path | None = None) -> None:
    """Import one plug-in module so its components register: a dotted module name (looked up
    in ``base_dir`` first, then on ``sys.path``) or a ``.py`` file path (relative to
    ``base_dir``). Errors propagate: a pipeline that names a plug-in needs it."""
    discover()   # built-ins first, so a plug-in that reuses a built-in name is reported
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    if spec.endswith(".py") or "/" in spec or "\\" in spec:
        path = (base / spec).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"plug-in file {spec!r} not found (looked in {base.resolve()})")
        name = "curate_plugin_" + path.stem + "_" + format(abs(hash(str(path))), "x")[:8]
        if name in sys.modules:
            return
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return
    extra = [str(base.resolve())]
    sys.path[:0] = extra
    try:
        importlib.import_module(spec)
    finally:
        for p in extra:
            sys.path.remove(p)


def get(kind: str, name: str) -> type | None:
    """The class registered as ``name``. A built-in name imports only its own module (through
    :data:`curate._registry_index.BUILTIN`); any other name imports every plug-in first."""
    if not _discovered:
        from curate._registry_index import BUILTIN
        module = BUILTIN.get(kind, {}).get(name)
        if module is not None:
            try:
                importlib.import_module(module)
            except Exception:          # reported by discover() below, with the others
                pass
            if name in _REGISTRIES[kind]:
                return _REGISTRIES[kind][name]
    discover()
    return _REGISTRIES[kind].get(name)


def builtin_index() -> dict[str, dict[str, str]]:
    """kind → name → defining module of every built-in component (what
    ``curate/_registry_index.py`` holds; tests compare the two)."""
    discover()
    return {kind: {name: cls.__module__ for name, cls in sorted(table.items())
                   if cls.__module__.startswith(tuple(p + "." for p in PLUGIN_PACKAGES))}
            for kind, table in _REGISTRIES.items()}


def write_index(path: str | Path | None = None) -> Path:
    """Regenerate ``curate/_registry_index.py`` (``python -m curate.registry``)."""
    import pprint
    path = Path(path) if path else Path(__file__).with_name("_registry_index.py")
    path.write_text('"""Generated by `python -m curate.registry`: kind -> name -> module of each built-in '
                    'component,\nso looking up one name imports one module (curate.registry.get)."""\n\n'
                    f"BUILTIN = {pprint.pformat(builtin_index(), width=100, sort_dicts=True)}\n")
    return path


def names(kind: str) -> list[str]:
    discover()
    return sorted(_REGISTRIES[kind])


def table(kind: str) -> dict[str, Any]:
    discover()
    return dict(_REGISTRIES[kind])


if __name__ == "__main__":          # the plug-ins register into curate.registry, not __main__
    from curate import registry
    print(f"wrote {registry.write_index()}")
