"""Every built-in component is documented where `curate list` / `curate show` read it (#18): a
docstring of its own, and a description on every config field, nested models included."""
from __future__ import annotations

from pydantic import BaseModel

from curate import registry
from curate.describe import KINDS, first_line, nested_models, options


def _built_ins(kind: str) -> dict[str, type]:
    return {n: c for n, c in registry.table(kind).items() if c.__module__.startswith("curate.")}


def _models(model: type[BaseModel], seen: set) -> None:
    if model in seen:
        return
    seen.add(model)
    for f in model.model_fields.values():
        for sub in nested_models(f.annotation):
            _models(sub, seen)


def test_registry_loads_without_import_errors():
    registry.discover()
    assert registry.import_errors == {}


def test_every_built_in_component_has_a_docstring():
    missing = [f"{kind} {name} ({cls.__module__})" for kind in KINDS
               for name, cls in _built_ins(kind).items() if not first_line(cls)]
    assert missing == []


def test_every_config_field_has_a_description():
    missing = []
    for kind in KINDS:
        for name, cls in _built_ins(kind).items():
            seen: set = set()
            _models(cls.Config, seen)
            for model in seen:
                missing += [f"{kind} {name}: {model.__name__}.{f}" for f, info in model.model_fields.items()
                            if not (info.description or "").strip()]
    assert sorted(set(missing)) == []


def test_show_expands_nested_and_union_models():
    from curate.steps.clean import CleanConfig
    paths = {o.path: o for o in options(CleanConfig)}
    assert paths["pii.emails"].type == "bool | null" and paths["pii.emails"].default == "null"
    assert paths["repetition.top_n_grams"].type == "dict[int, float]"
    assert paths["min_lang_chars"].default == "20"
