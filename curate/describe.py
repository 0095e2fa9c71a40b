"""What ``curate list`` and ``curate show NAME`` print: every registered component with its one-line
doc, and a component's options (type, default, description) read from its pydantic ``Config``,
nested models and union members expanded below their field."""
from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any, Iterator

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

KINDS = ("source", "step", "output")


def first_line(obj: Any) -> str:
    """The first line of an object's own docstring ('' when it has none)."""
    doc = obj.__dict__.get("__doc__") if isinstance(obj, type) else getattr(obj, "__doc__", None)
    return (doc or "").strip().split("\n")[0].strip()


def listing() -> dict[str, list[tuple[str, str]]]:
    """kind -> sorted ``(name, one-line doc)`` of every registered source, step and output."""
    from curate import registry
    return {kind: [(name, first_line(cls)) for name, cls in sorted(registry.table(kind).items())]
            for kind in KINDS}


def _input_model(ann: Any) -> type[BaseModel] | None:
    """The model a validator declares as its input (``{name: options}`` spec wrappers)."""
    if typing.get_origin(ann) is not typing.Annotated:
        return None
    for meta in ann.__metadata__:
        t = getattr(meta, "json_schema_input_type", None)
        if isinstance(t, type) and issubclass(t, BaseModel):
            return t
    return None


def type_name(ann: Any) -> str:
    """A readable type: ``int | None``, ``list[str]``, ``'a' | 'b'``, ``PiiConfig``,
    ``{wordnet: WordNetConfig}`` for a ``{name: options}`` spec."""
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if ann is type(None):
        return "null"
    wrapper = _input_model(ann)
    if wrapper is not None:
        return "{" + ", ".join(f"{k}: {type_name(f.annotation)}" for k, f in wrapper.model_fields.items()) + "}"
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is not None:
        base = getattr(origin, "__name__", str(origin))
        return f"{base}[{', '.join(type_name(a) for a in args)}]" if args else base
    if isinstance(ann, type):
        return ann.__name__
    return str(ann).replace("typing.", "")


def nested_models(ann: Any) -> list[type[BaseModel]]:
    """Pydantic models inside an annotation (unions, lists, dict values), in order, once each."""
    wrapper = _input_model(ann)
    if wrapper is not None:
        return [wrapper]
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return [ann]
    out: list[type[BaseModel]] = []
    for a in typing.get_args(ann):
        for m in nested_models(a):
            if m not in out:
                out.append(m)
    return out


def default_text(field: Any) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        try:
            value = field.default_factory()
        except TypeError:       # factories that take the validated data
            return "computed"
    else:
        value = field.default
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, BaseModel):
        return "{...}"
    return repr(value) if isinstance(value, str) else str(value).replace("True", "true").replace(
        "False", "false").replace("None", "null")


@dataclass
class Option:
    """One config field as ``curate show`` prints it."""

    path: str
    type: str
    default: str
    description: str


def options(model: type[BaseModel], prefix: str = "", seen: tuple = ()) -> Iterator[Option]:
    """Every field of ``model`` and, below it, the fields of the models it nests."""
    for name, field in model.model_fields.items():
        path = prefix + name
        yield Option(path, type_name(field.annotation), default_text(field), field.description or "")
        subs = nested_models(field.annotation)
        # single-key wrappers ({wordnet: {...}}) are told apart by their key; other unions by name
        keyed = all(len(m.model_fields) == 1 for m in subs) and \
            len({next(iter(m.model_fields)) for m in subs}) == len(subs)
        for sub in subs:
            if sub in seen or sub is model:
                continue
            label = f"{path}." if len(subs) == 1 or keyed else f"{path}.<{sub.__name__}>."
            yield from options(sub, label, seen + (model,))


def memory_model(cls: type) -> str:
    """How a step's memory grows with its input, as ``curate show`` prints it: the step's own
    ``memory`` text, else what its scope implies (empty for sources and outputs)."""
    scope = getattr(cls, "scope", None)
    if scope is None or not hasattr(cls, "process"):
        return ""
    own = getattr(cls, "memory", "")
    if own:
        return own
    if scope == "global":
        return "global step: gets its whole input as one frame (memory grows with the input)."
    return "batch step: batch_size rows at a time (flat in the input size)."


def find(name: str) -> list[tuple[str, type]]:
    """``(kind, class)`` of every registered component called ``name``."""
    from curate import registry
    return [(kind, registry.get(kind, name)) for kind in KINDS if registry.get(kind, name) is not None]
