"""One JSON value, parsed exactly and safely: orjson for the common case; the stdlib with hooks when
the text may hold integers beyond 64 bits (orjson would make them lossy floats) or NaN/Infinity.

What hostile values get: nesting deeper than :data:`MAX_DEPTH` raises :class:`BadValue`
(``too_deep``; never a ``RecursionError``, and polars never sees a 1,000-deep struct); an integer
outside the 64-bit range is kept exact as its decimal text (counted in ``big_ints_as_text``);
``NaN``/``Infinity`` and numbers that overflow a double become null (counted in
``non_finite_to_null``). Counts go to the per-file ``notes`` and from there to the manifest.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

MAX_DEPTH = 64                              # containers nested in one record
_INT64 = (-(1 << 63), (1 << 63) - 1)
_LONG_DIGITS = re.compile(r"\d{19,}")       # could be an integer orjson turns into a float
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")   # an escaped UTF-16 surrogate in the JSON text
_LONE = re.compile("[\ud800-\udfff]")


class BadValue(ValueError):
    """A JSON text that cannot become a record: ``reason`` (``invalid_json``, ``too_deep``)."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason, self.detail = reason, detail
        super().__init__(detail)


def _note(notes: dict[str, Any], key: str) -> None:
    notes[key] = notes.get(key, 0) + 1


def _stdlib(text: str | bytes, notes: dict[str, Any]) -> Any:
    """The stdlib parser with exactness hooks (see the module docstring)."""
    def big_int(s: str) -> int | str:
        v = int(s)
        if _INT64[0] <= v <= _INT64[1]:
            return v
        _note(notes, "big_ints_as_text")
        return s

    def non_finite(s: str) -> None:
        _note(notes, "non_finite_to_null")
        return None

    def floats(s: str) -> float | None:
        v = float(s)
        return v if math.isfinite(v) else non_finite(s)
    try:
        obj = json.loads(text, parse_int=big_int, parse_constant=non_finite, parse_float=floats)
    except RecursionError:
        raise BadValue("too_deep", f"nested deeper than the parser's limit (max {MAX_DEPTH})") from None
    except ValueError as e:
        raise BadValue("invalid_json", str(e)) from None
    if _SURROGATE.search(text if isinstance(text, str) else text.decode("utf-8", "replace")):
        bad = _lone_surrogate(obj)
        if bad is not None:
            raise BadValue("invalid_json", f"a lone UTF-16 surrogate escape (\\u{ord(bad):04x}) in a string: "
                                           "it is not a character and cannot be stored as text")
    return obj


def _lone_surrogate(obj: Any) -> str | None:
    """The first unpaired surrogate in any key or string of ``obj`` (the stdlib parser lets
    ``"\\ud800"`` through; UTF-8, Arrow and polars cannot hold it)."""
    stack = [obj]
    while stack:
        o = stack.pop()
        items = list(o.items()) if isinstance(o, dict) else (o if isinstance(o, list) else [o])
        for v in items:
            for s in (v if isinstance(v, tuple) else (v,)):
                if isinstance(s, str):
                    m = _LONE.search(s)
                    if m:
                        return m.group()
                elif isinstance(s, (dict, list)):
                    stack.append(s)
    return None


def too_deep(obj: Any, limit: int = MAX_DEPTH) -> bool:
    """True when ``obj`` nests more than ``limit`` containers (iterative: no recursion)."""
    if not isinstance(obj, (dict, list)):
        return False
    stack = [(obj, 1)]
    while stack:
        o, d = stack.pop()
        if d > limit:
            return True
        kids = o.values() if isinstance(o, dict) else o
        stack.extend((v, d + 1) for v in kids if isinstance(v, (dict, list)))
    return False


def parse(text: str | bytes, notes: dict[str, Any], maybe_long: bool = True,
          max_depth: int | None = MAX_DEPTH) -> Any:
    """Parse ``text`` exactly; raises :class:`BadValue`. ``maybe_long=False`` says the caller
    knows it holds no run of 19+ digits (so orjson's result is exact); ``max_depth=None`` leaves
    the depth check (beyond the parsers' own limits) to the caller."""
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        if "depth limit" in str(e) or "recursion" in str(e).lower():
            raise BadValue("too_deep", f"nested more than {MAX_DEPTH} levels") from None
        obj = _stdlib(text, notes)              # NaN/Infinity, overflowing numbers; clearer errors
    else:
        if maybe_long and _LONG_DIGITS.search(text if isinstance(text, str) else text.decode("utf-8", "replace")):
            obj = _stdlib(text, notes)
    if max_depth is not None and isinstance(obj, (dict, list)):
        n = text.count("{" if isinstance(text, str) else b"{") + text.count("[" if isinstance(text, str) else b"[")
        if n > max_depth and too_deep(obj, max_depth):
            raise BadValue("too_deep", f"nested more than {max_depth} levels")
    return obj
