"""JSON Lines: one object per line, types kept, hostile values handled by :mod:`.jsonvalue`."""
from __future__ import annotations

from typing import Any, BinaryIO, Iterator

import numpy as np
import orjson
import polars as pl

from curate.connectors._textio.frames import BATCH_ROWS, Rejects, json_type, records_frame, with_locators
from curate.connectors._textio.jsonvalue import MAX_DEPTH, BadValue, parse
from curate.connectors._textio.lines import block_options, iter_blocks
from curate.source import SourceBatch


def iter_jsonl(fileobj: BinaryIO, locator: str, options: Any, origin: str, *,
               batch_rows: int = BATCH_ROWS, limit: int | None = None,
               info: dict[str, Any] | None = None) -> Iterator[SourceBatch]:
    """Parse JSON Lines, keeping JSON types; locator ``<locator>:<line>``.

    ``options``: :class:`JsonlOptions`-like. Blank lines are skipped; quarantines ``invalid_json``
    (detail: the parser's message), ``not_an_object``, ``too_deep``, ``bad_encoding`` and
    ``too_large``; a stream that breaks off adds one row with its reason. Value notes (big ints,
    NaN) are counted in ``info``.
    """
    info = {} if info is None else info
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    rej = Rejects()
    loads = orjson.loads
    for block in iter_blocks(fileobj, locator, options.encoding, **block_options(options, info)):
        errors = block.errors
        careful = _careful_lines(block.lines, block.first)
        objs = _whole_block(block.lines) if not (errors or careful or limit is not None) else None
        if objs is not None:             # every line an object: no per-line checks needed
            at, first = 0, block.first
            while at < len(objs):
                take = max(1, batch_rows - len(rows) - len(rej))
                rows.extend(objs[at:at + take])
                lines.extend(range(first + at, first + min(at + take, len(objs))))
                at += take
                if len(rows) + len(rej) >= batch_rows:
                    yield SourceBatch(with_locators(records_frame(rows), locator, lines), rej.frame(origin))
                    rows, lines, rej = [], [], Rejects()
        for no, text in enumerate(block.lines if objs is None else (), block.first):
            obj = _INVALID
            if no not in careful and no not in errors:
                try:
                    obj = loads(text)          # fast path: a valid line, no further checks
                except ValueError:
                    if text.isspace():
                        continue               # blank line: not a row
            if obj is _INVALID or type(obj) is not dict or no in careful:
                loc = f"{locator}:{no}"
                if no in errors:
                    rej.add(loc, errors[no].reason, errors[no].detail, text)
                    continue
                if text.isspace():
                    continue
                try:
                    obj = parse(text, info)
                except BadValue as e:
                    rej.add(loc, e.reason, e.detail, text)
                    continue
                if not isinstance(obj, dict):
                    rej.add(loc, "not_an_object", f"expected a JSON object, got {json_type(obj)}", text)
                    continue
            rows.append(obj)
            lines.append(no)
            if len(rows) + len(rej) >= batch_rows or (limit is not None and len(rows) >= limit):
                yield SourceBatch(with_locators(records_frame(rows), locator, lines), rej.frame(origin))
                if limit is not None:
                    limit -= len(rows)
                    if limit <= 0:
                        return
                rows, lines, rej = [], [], Rejects()
        if block.problem is not None:
            rej.add(f"{locator}:{block.first}", block.problem.reason, block.problem.detail, None)
        if len(rej) >= batch_rows:                 # a run of garbage: keep memory bounded
            yield SourceBatch(pl.DataFrame(), rej.frame(origin))
            rej = Rejects()
    if rows or len(rej):
        yield SourceBatch(with_locators(records_frame(rows), locator, lines), rej.frame(origin))


_INVALID = object()


def _whole_block(lines: list[str]) -> list[dict[str, Any]] | None:
    """Every line of a block parsed by orjson, when every one is a JSON object (no blank lines,
    no bad ones); else None, and the block is read line by line (same rows, with quarantine)."""
    try:
        objs = list(map(orjson.loads, lines))
    except ValueError:
        return None
    return objs if all(type(o) is dict for o in objs) else None
_LONG_DIGITS = r"[0-9]{19}"          # an integer orjson might turn into a lossy float
_OPENERS = r"[\[{]"


def _careful_lines(lines: list[str], first: int) -> set[int]:
    """Numbers of the lines that need :func:`parse`'s checks (a run of 19+ digits, or more
    brackets than :data:`MAX_DEPTH`), found for the whole block at once by polars."""
    s = pl.Series(lines, dtype=pl.String)
    flags = s.str.contains(_LONG_DIGITS) | (s.str.count_matches(_OPENERS) > MAX_DEPTH)
    if not flags.any():
        return set()
    return {first + int(i) for i in np.flatnonzero(flags.to_numpy())}
