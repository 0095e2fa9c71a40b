"""JSON Lines: one object per line, types kept, hostile values handled by :mod:`.jsonvalue`.

Two paths give the same batches. The fast path parses a whole batch of plain lines at once with
pyarrow's JSON reader (every line starts with ``{``, and the result holds only flat string,
integer, float, boolean or null columns: nothing a per-line read could type or quarantine
differently); anything else (a bad line, a blank one, nesting, mixed types, long digit runs,
NaN) goes through the per-line path, which quarantines with file, line and reason."""
from __future__ import annotations

import os
from typing import Any, BinaryIO, Generator, Iterator

import numpy as np
import orjson
import polars as pl

from curate.connectors._textio.frames import BATCH_ROWS, Rejects, json_type, records_frame, with_locators
from curate.connectors._textio.jsonvalue import MAX_DEPTH, BadValue, parse
from curate.connectors._textio.lines import Block, _split_keep, block_options, iter_blocks
from curate.source import SourceBatch

FAST_PATH = True             # parse runs of plain lines with pyarrow (tests turn it off to compare)
# Smaller batches take the per-line path: the gain there is small, and the Arrow round trip
# reserves about 1 GB of address space (not memory) that a process under RLIMIT_AS may not have.
FAST_MIN_BYTES = 4 << 20


def iter_jsonl(fileobj: BinaryIO, locator: str, options: Any, origin: str, *,
               batch_rows: int = BATCH_ROWS, limit: int | None = None,
               info: dict[str, Any] | None = None) -> Iterator[SourceBatch]:
    """Parse JSON Lines, keeping JSON types; locator ``<locator>:<line>``.

    ``options``: :class:`JsonlOptions`-like. Blank lines are skipped; quarantines ``invalid_json``
    (detail: the parser's message), ``not_an_object``, ``too_deep``, ``bad_encoding`` and
    ``too_large``; a stream that breaks off adds one row with its reason. Value notes (big ints,
    NaN) are counted in ``info``. With :data:`FAST_PATH` off every line takes the per-line path
    (the reference the fast path is tested against).
    """
    info = {} if info is None else info
    r = _Reader(locator, origin, batch_rows, limit, info)
    for block in iter_blocks(fileobj, locator, options.encoding, **block_options(options, info)):
        plain = _plain_lines(block) if FAST_PATH and limit is None else None
        if plain is not None:
            yield from r.plain_block(block, *plain)
        else:
            yield from r.settle()
            yield from r.slow_lines(block.lines, block.first, block.errors)
            yield from r.block_end(block)
        if r.done:                      # limit reached
            return
    yield from r.finish()


class _Reader:
    """The batching state of :func:`iter_jsonl`: rows and quarantined rows read line by line
    (``rows``, ``lines``, ``rej``), and the plain lines waiting for the fast path (``pend``:
    byte pieces, each ``(first line, bytes, line count, ends its block)``)."""

    def __init__(self, locator: str, origin: str, batch_rows: int, limit: int | None,
                 info: dict[str, Any]) -> None:
        self.locator, self.origin, self.batch_rows, self.limit, self.info = locator, origin, batch_rows, limit, info
        self.rows: list[dict[str, Any]] = []
        self.lines: list[int] = []
        self.rej = Rejects()
        self.pend: list[tuple[int, memoryview, int, bool]] = []
        self.pend_n = 0
        self.done = False

    def clean(self) -> bool:
        """Nothing read line by line is waiting (a batch may start on the fast path)."""
        return not self.rows and not len(self.rej) and not self.done

    def plain_block(self, block: Block, data: bytes, starts: np.ndarray) -> Iterator[SourceBatch]:
        """A block of plain lines (``data``, its lines starting at byte offsets ``starts``): queued
        for the fast path whenever no batch read line by line is open, else read line by line
        until that batch is out."""
        n, at, texts = len(starts), 0, None
        while at < n:
            if self.clean():
                at = yield from self._queue(block.first, data, starts, at)
                if at == n:                 # the last line is queued, or out in a fast batch
                    return
            else:
                texts = block.lines if texts is None else texts
                at += yield from self.slow_lines(texts[at:], block.first + at, {}, until_clean=True)
        yield from self.block_end(block)

    def _queue(self, first: int, data: bytes, starts: np.ndarray, at: int) -> Generator[SourceBatch, None, int]:
        """Queue the lines from ``at`` on; each full batch is parsed at once, or (when the fast
        parse does not give what the per-line path would) read line by line, and the number of
        the first line not yet read is returned."""
        n = len(starts)
        data = memoryview(data)          # pieces are views: the batch's join is the one copy
        while at < n:
            room, lo = self.batch_rows - self.pend_n, int(starts[at])
            if n - at < room:
                self.pend.append((first + at, data[lo:], n - at, True))
                self.pend_n += n - at
                return n
            end = at + room
            self.pend.append((first + at, data[lo:int(starts[end]) if end < n else len(data)], room, end == n))
            self.pend_n += room
            at = end
            frame = _fast_frame(b"".join(p[1] for p in self.pend), self.pend_n)
            if frame is None:
                yield from self.settle()
                return at
            lo_line = self.pend[0][0]
            self.pend, self.pend_n = [], 0
            yield SourceBatch(with_locators(frame, self.locator, range(lo_line, lo_line + self.batch_rows)),
                              pl.DataFrame())
        return at

    def settle(self) -> Iterator[SourceBatch]:
        """Read the queued plain lines line by line (a batch that cannot take the fast path)."""
        pend, self.pend, self.pend_n = self.pend, [], 0
        for first, data, _, ends in pend:
            yield from self.slow_lines(_split_keep(str(data, "utf-8"), "\n"), first, {})
            if ends:
                yield from self.block_end(None)

    def finish(self) -> Iterator[SourceBatch]:
        if self.pend_n:
            frame = _fast_frame(b"".join(p[1] for p in self.pend), self.pend_n)
            if frame is not None:
                lo = self.pend[0][0]
                yield SourceBatch(with_locators(frame, self.locator, range(lo, lo + self.pend_n)), pl.DataFrame())
                self.pend, self.pend_n = [], 0
                return
            yield from self.settle()
        if self.rows or len(self.rej):
            yield SourceBatch(with_locators(records_frame(self.rows), self.locator, self.lines),
                              self.rej.frame(self.origin))

    def _emit(self) -> SourceBatch:
        batch = SourceBatch(with_locators(records_frame(self.rows), self.locator, self.lines),
                            self.rej.frame(self.origin))
        self.rows, self.lines, self.rej = [], [], Rejects()
        return batch

    def block_end(self, block: Block | None) -> Iterator[SourceBatch]:
        """What the per-line path does after each block: a stream problem, bounded rejects."""
        if self.done:
            return
        if block is not None and block.problem is not None:
            self.rej.add(f"{self.locator}:{block.first}", block.problem.reason, block.problem.detail, None)
        if len(self.rej) >= self.batch_rows:                 # a run of garbage: keep memory bounded
            yield SourceBatch(pl.DataFrame(), self.rej.frame(self.origin))
            self.rej = Rejects()

    def slow_lines(self, texts: list[str], first: int, errors: dict,
                   until_clean: bool = False) -> Generator[SourceBatch, None, int]:
        """The per-line path over consecutive lines (``first`` is the number of ``texts[0]``);
        with ``until_clean`` it stops after the first batch it yields. Returns the number of
        lines read."""
        if self.done:
            return 0
        locator, batch_rows, info, rej = self.locator, self.batch_rows, self.info, self.rej
        rows, lines = self.rows, self.lines
        careful = _careful_lines(texts, first)
        objs = _whole_block(texts) if not (errors or careful or self.limit is not None) else None
        if objs is not None:             # every line an object: no per-line checks needed
            at = 0
            while at < len(objs):
                take = max(1, batch_rows - len(rows) - len(rej))
                rows.extend(objs[at:at + take])
                lines.extend(range(first + at, first + min(at + take, len(objs))))
                at += take
                if len(rows) + len(rej) >= batch_rows:
                    yield self._emit()
                    rows, lines, rej = self.rows, self.lines, self.rej
                    if until_clean:
                        return min(at, len(objs))
            return len(objs)
        loads = orjson.loads
        for no, text in enumerate(texts, first):
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
            if len(rows) + len(rej) >= batch_rows or (self.limit is not None and len(rows) >= self.limit):
                n = len(rows)
                yield self._emit()
                rows, lines, rej = self.rows, self.lines, self.rej
                if self.limit is not None:
                    self.limit -= n
                    if self.limit <= 0:
                        self.done = True
                        return no - first + 1
                if until_clean:
                    return no - first + 1
        return len(texts)


_INVALID = object()
_OPEN_BRACE, _NEWLINE = ord("{"), ord("\n")


def _plain_lines(block: Block) -> tuple[bytes, np.ndarray] | None:
    """The UTF-8 bytes of ``block`` and the offset where each of its lines starts, when the
    block may take the fast path (no line errors, no stream problem, every line starting with
    ``{``: no blank, indented or non-object lines); else None."""
    if block.errors or block.problem is not None or not block.startswith("{"):
        return None
    data = block.raw if block.raw is not None else block.text.encode("utf-8")
    buf = np.frombuffer(data, dtype=np.uint8)
    starts = block.ends if block.ends is not None else np.flatnonzero(buf == _NEWLINE) + 1
    starts = np.concatenate(([0], starts[:-1] if len(starts) and starts[-1] == len(buf) else starts))
    return (data, starts) if bool((buf[starts] == _OPEN_BRACE).all()) else None


def _fast_frame(data: bytes, n: int) -> pl.DataFrame | None:
    """``n`` plain lines parsed at once by pyarrow, when the frame is surely the one the per-line
    path gives (flat columns of one JSON type each, one row per line, no NaN/Infinity, no digit
    runs a per-line read would treat as big integers); else None."""
    import pyarrow as pa
    if not FAST_MIN_BYTES <= len(data) < 1 << 30:
        return None
    try:
        table = _parse_parallel(data)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
        return None
    if table.num_rows != n or not table.num_columns:
        return None
    numeric = False
    for f in table.schema:
        t = f.type
        if pa.types.is_integer(t) or pa.types.is_floating(t):
            if t not in (pa.int64(), pa.float64()):
                return None
            numeric = True
        elif not (pa.types.is_string(t) or pa.types.is_boolean(t) or pa.types.is_null(t)):
            return None
    df = pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    if numeric:
        floats = [c for c, t in df.schema.items() if t == pl.Float64]
        if floats and df.select(pl.any_horizontal(pl.col(floats).is_nan() | pl.col(floats).is_infinite())
                                .any()).item():
            return None
        if pl.Series([data], dtype=pl.Binary).cast(pl.String).str.contains(_LONG_DIGITS).item():
            return None
    return df


PIECE_BYTES = 4 << 20        # a batch is parsed in pieces of about this size, on parallel threads
_POOL: list[Any] = []


def _parse(data: bytes | memoryview, dates_as_text: bool = True) -> Any:
    """``data`` (whole lines) as an Arrow table, one thread; strings pyarrow would read as dates
    or times stay strings (a second parse with those columns declared)."""
    import pyarrow as pa
    import pyarrow.json as pj
    opts = pj.ReadOptions(use_threads=False, block_size=len(data) + 1)
    pool = pa.system_memory_pool()     # malloc: no arena reserved beside polars' (address-space limits)
    table = pj.read_json(pa.BufferReader(data), read_options=opts, memory_pool=pool)
    if dates_as_text and any(pa.types.is_temporal(f.type) for f in table.schema):
        schema = pa.schema([pa.field(f.name, pa.string() if pa.types.is_temporal(f.type) else f.type)
                            for f in table.schema])
        table = pj.read_json(pa.BufferReader(data), read_options=opts, memory_pool=pool,
                             parse_options=pj.ParseOptions(explicit_schema=schema))
    return table


def _parse_parallel(data: bytes) -> Any:
    """:func:`_parse`, done as pieces of whole lines on a thread pool when ``data`` is large. The
    pieces are kept only when every one has the same schema (then the whole table is what one
    parse gives: same columns, same order, same types); else ``data`` is parsed in one go."""
    import pyarrow as pa
    k = min(os.cpu_count() or 1, 8, len(data) // PIECE_BYTES)
    if k < 2:
        return _parse(data)
    cuts = [0]
    for j in range(1, k):
        at = data.find(b"\n", j * len(data) // k)
        if at < 0:
            break
        if at + 1 > cuts[-1] and at + 1 < len(data):
            cuts.append(at + 1)
    cuts.append(len(data))
    view = memoryview(data)
    if not _POOL:
        from concurrent.futures import ThreadPoolExecutor
        _POOL.append(ThreadPoolExecutor(min(os.cpu_count() or 1, 8), thread_name_prefix="jsonl-parse"))
    try:
        tables = list(_POOL[0].map(lambda ab: _parse(view[ab[0]:ab[1]], False), zip(cuts, cuts[1:])))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
        return _parse(data)                      # the one-go parse says what is wrong
    first = tables[0].schema
    if all(t.schema.equals(first) for t in tables) and not any(pa.types.is_temporal(f.type) for f in first):
        return pa.concat_tables(tables)
    return _parse(data)


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
