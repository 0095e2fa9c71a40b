"""YAML files with line numbers: the key-path → line map, ``${env:NAME}`` references, and
pydantic errors turned into ``file:line key.path: message``. Pipeline files and train files both
read through here."""
from __future__ import annotations

import difflib
import os
import re
import typing
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ValidationError

from curate.errors import MissingEnvError, PipelineFileError

ENV_RE = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


# ---------------------------------------------------------------------------- YAML with lines
MAX_YAML_BYTES = 4 << 20       # a pipeline or train file is a few KiB; refuse anything huge
MAX_NODES = 100_000            # nodes after alias expansion (an alias counts its whole target)
MAX_FLOW_DEPTH = 100           # nested [ / { levels
_QUOTED = re.compile(r"\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\n]|'')*'|#[^\n]*")
_OPEN, _CLOSE = np.frombuffer(b"[{", dtype=np.uint8), np.frombuffer(b"]}", dtype=np.uint8)
_CORE = "tag:yaml.org,2002:"
_PLAIN_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null", "seq", "map", "timestamp", "merge")}


def _yaml_error(e: yaml.YAMLError, path: str) -> PipelineFileError:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    return PipelineFileError(f"invalid YAML: {getattr(e, 'problem', None) or e}", path=path,
                             line=mark.line + 1 if mark else None)


def _check_nodes(root: yaml.Node, path: str) -> None:
    """Refuse what plain YAML config never needs, before anything walks the tree: tags other than
    the core ones (``!!python/...``), aliases that refer to themselves, and more than
    :data:`MAX_NODES` nodes once aliases are expanded (a "billion laughs" bomb). Sizes are
    memoised per node, so this is linear in the file, however much the aliases would expand."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def fail(msg: str, node: yaml.Node) -> PipelineFileError:
        return PipelineFileError(msg, path=path, line=node.start_mark.line + 1)

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise fail("a YAML alias refers to its own anchor (a recursive structure)", node)
        if node.tag not in _PLAIN_TAGS:
            tag = node.tag.replace(_CORE, "!!")
            raise fail(f"YAML tag {tag!r} is not allowed (pipeline and train files are plain YAML: "
                       "mappings, lists, strings, numbers, booleans, null)", node)
        active.add(key)
        n = 1
        kids = [c for kv in node.value for c in kv] if isinstance(node, yaml.MappingNode) \
            else node.value if isinstance(node, yaml.SequenceNode) else []
        for child in kids:
            n += size(child)
            if n > MAX_NODES:
                raise fail(f"the YAML expands to more than {MAX_NODES} nodes (aliases counted at each "
                           "use; an alias bomb?)", node)
        active.discard(key)
        sizes[key] = n
        return n
    size(root)


def _flow_depth(text: str) -> int:
    """Deepest nesting of ``[``/``{`` in ``text`` (quoted strings ignored; an upper bound is enough:
    PyYAML's scanner is quadratic in it)."""
    data = np.frombuffer(_QUOTED.sub("", text).encode("utf-8", "replace"), dtype=np.uint8)
    step = np.isin(data, _OPEN).astype(np.int32) - np.isin(data, _CLOSE).astype(np.int32)
    return int(np.cumsum(step).max(initial=0))


def _compose(text: str, path: str) -> yaml.Node | None:
    """The YAML node tree of ``text``, checked by :func:`_check_nodes`."""
    if _flow_depth(text) > MAX_FLOW_DEPTH:
        raise PipelineFileError(f"invalid YAML: brackets nested more than {MAX_FLOW_DEPTH} deep", path=path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        raise _yaml_error(e, path) from None
    except RecursionError:
        raise PipelineFileError("invalid YAML: nested too deeply", path=path) from None
    if root is not None:
        _check_nodes(root, path)
    return root


def line_map(text: str, path: str) -> dict[tuple, int]:
    """Map every key path (tuple of keys/indices) to its 1-based line; reject duplicate keys,
    non-scalar keys and what :func:`_check_nodes` refuses."""
    root = _compose(text, path)
    lines: dict[tuple, int] = {}

    def walk(node, p: tuple) -> None:
        lines.setdefault(p, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for k, v in node.value:
                if not isinstance(k, yaml.ScalarNode):
                    raise PipelineFileError("a key must be a plain name, not a list or mapping", path=path,
                                            line=k.start_mark.line + 1, key=key_path(p) or None)
                key = k.value
                if key in seen:
                    raise PipelineFileError("duplicate key", path=path, line=k.start_mark.line + 1,
                                            key=key_path(p + (key,)))
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


def key_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def line_for(lines: dict[tuple, int], loc: tuple) -> int | None:
    for n in range(len(loc), -1, -1):
        if tuple(loc[:n]) in lines:
            return lines[tuple(loc[:n])]
    return None


# ---------------------------------------------------------------------------- env references
def has_env(obj: Any) -> bool:
    if isinstance(obj, str):
        return bool(ENV_RE.search(obj))
    if isinstance(obj, dict):
        return any(has_env(v) for v in obj.values())
    if isinstance(obj, list):
        return any(has_env(v) for v in obj)
    return False


def resolve_env(obj: Any, loc: tuple = (), missing: list | None = None) -> Any:
    """Replace ``${env:NAME}`` in every string; a string that is exactly one reference takes the
    variable's value as is. Missing variables are collected as ``(loc, name)`` in ``missing``."""
    if isinstance(obj, str):
        def sub(m: re.Match) -> str:
            val = os.environ.get(m.group(1))
            if val is None:
                if missing is None:
                    raise MissingEnvError(m.group(1), key_path(loc))
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


def pydantic_errors(exc: ValidationError, model: type[BaseModel], prefix: tuple, path: str,
                     lines: dict[tuple, int], raw: Any) -> list[PipelineFileError]:
    out = []
    for err in exc.errors():
        loc = prefix + tuple(err["loc"])
        msg = _message(err, model, _allowed_keys(model, tuple(err["loc"])))
        out.append(PipelineFileError(msg, path=path, line=line_for(lines, loc), key=key_path(loc)))
    return out


def read_yaml_mapping(path: str | Path, what: str, expected: str) -> tuple[dict, dict[tuple, int]]:
    """Read a YAML file that must hold a mapping; return it with its key-path → line map."""
    path_s = str(path)
    try:
        size = Path(path).stat().st_size
        if size > MAX_YAML_BYTES:
            raise PipelineFileError(f"a {what} of {size} bytes is too large (at most {MAX_YAML_BYTES})",
                                    path=path_s)
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PipelineFileError(f"{what} not found", path=path_s) from None
    except UnicodeDecodeError as e:
        line = Path(path).read_bytes()[:e.start].count(b"\n") + 1
        raise PipelineFileError(f"not UTF-8 text (byte 0x{e.object[e.start]:02x}: {e.reason})",
                                path=path_s, line=line) from None
    except OSError as e:
        raise PipelineFileError(f"cannot read the {what}: {e.strerror or e}", path=path_s) from None
    lines = line_map(text, path_s)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:                # line_map saw the same text; a safety net
        raise _yaml_error(e, path_s) from None
    if not isinstance(raw, dict):
        raise PipelineFileError(f"a {what} must be a mapping with {expected}", path=path_s, line=1)
    return raw, lines
