"""Delimited text (CSV, TSV): a vectorised fast path for plain lines, the csv module for the rest.
Quarantines ``wrong_field_count``, ``bad_quoting``, ``field_too_large``, ``bad_encoding`` and
``too_large``; a stream that breaks off adds one row with the :class:`ReadProblem`'s reason."""
from __future__ import annotations

import csv
import itertools
from typing import Any, BinaryIO, Iterator

import numpy as np
import polars as pl

from curate.connectors._textio.frames import BATCH_ROWS, Rejects, with_locators
from curate.connectors._textio.lines import Block, block_options, iter_blocks
from curate.errors import DataError
from curate.source import SourceBatch

_CSV_REASONS = {"field larger than field limit": "field_too_large"}


def _csv_reason(err: Exception) -> str:
    """Reject reason for a csv-module error (its messages carry numbers, so match prefixes)."""
    msg = str(err)
    return next((r for prefix, r in _CSV_REASONS.items() if msg.startswith(prefix)), "bad_quoting")


def _unique_names(names: list[str]) -> list[str]:
    """Header names made usable: blanks become column_<i>, repeats get _2, _3 ..."""
    out, seen = [], set()
    for i, n in enumerate(names, 1):
        n = n.strip() or f"column_{i}"
        base, k = n, 1
        while n in seen:
            k += 1
            n = f"{base}_{k}"
        seen.add(n)
        out.append(n)
    return out


def _csv_format(options: Any) -> dict[str, Any]:
    none = options.quoting == "none"
    return dict(delimiter=options.delimiter, strict=True, doublequote=True,
                escapechar=options.escapechar,
                quoting=csv.QUOTE_NONE if none else csv.QUOTE_MINIMAL,
                quotechar=None if none else options.quotechar)


# The fast path (one vectorised pass per block, see _simple_lines and _CsvParser._fast) is used for
# every record it can prove the csv module would read as that one line; tests switch it off to
# check that both paths give the same batches.
FAST_PATH = True


def iter_csv(fileobj: BinaryIO, locator: str, options: Any, origin: str, *,
             batch_rows: int = BATCH_ROWS, limit: int | None = None,
             info: dict[str, Any] | None = None) -> Iterator[SourceBatch]:
    """Parse delimited text; every value is a string; locator ``<locator>:<first physical line>``.

    ``options``: :class:`CsvOptions`-like (``encoding, delimiter, quotechar, quoting, escapechar,
    header, columns``). Quarantines ``wrong_field_count`` ("expected 2 fields, got 3"),
    ``bad_quoting`` (the csv module's error; parsing restarts on the record's second line, so one
    stray quote cannot swallow the rest of the file), ``field_too_large``, ``bad_encoding`` and
    ``too_large`` (a line over ``max_record_bytes``; see :func:`iter_blocks`).
    Empty lines are skipped. A header-only input yields one empty frame with the header's columns.

    Each decoded block of lines is read in runs: a run of *simple* lines (no quote, escape or stray
    ``\\r`` character, decoded cleanly, shorter than the csv field limit) is one record per line,
    so it is split and checked by polars in one go; anything else (the header, quoted fields,
    bad bytes) goes through the C csv reader record by record until a simple line starts a record
    again. Both paths feed one :class:`_CsvBatches`, so batches hold the same records either way.
    """
    parser = _CsvParser(options, locator, _CsvBatches(locator, origin, batch_rows, limit))
    out = parser.out
    carry: Block | None = None     # lines of a record left open at the end of the last block
    blocks = iter_blocks(fileobj, locator, options.encoding, **block_options(options, info))
    block: Block | None = next(blocks, None)
    while block is not None and not out.done:
        nxt = next(blocks, None)
        problem, at = block.problem, block.first
        if carry is not None:
            block = Block(carry.first, carry.lines + block.lines, {**carry.errors, **block.errors})
        rest = parser.parse(block, more=nxt is not None)
        carry = None
        if rest < len(block) and not out.done:
            first = block.first + rest
            carry = Block(first, block.lines[rest:], {i: m for i, m in block.errors.items() if i >= first})
        if problem is not None and not out.done:
            out.add_reject(at, problem.reason, problem.detail, "")
        yield from out.take()
        block = nxt
    yield from out.finish()


class _CsvBatches:
    """Collects parsed records (rows and rejects, in file order) into batches of exactly
    ``batch_rows`` records (the last one may be smaller), stopping after ``limit`` rows.

    Rows arrive one at a time (``add_row``, from the csv reader) or as a frame (``add_frame``, from
    the fast path); cutting both at the same record keeps the batches independent of the path.
    """

    def __init__(self, locator: str, origin: str, batch_rows: int, limit: int | None) -> None:
        self.locator, self.origin, self.batch_rows, self.limit = locator, origin, batch_rows, limit
        self.names: list[str] | None = None
        self.n_rows = 0                            # rows accepted so far (for ``limit``)
        self.done = False                          # ``limit`` reached
        self._ready: list[SourceBatch] = []
        self._reset()

    def _reset(self) -> None:
        self._frames: list[pl.DataFrame] = []      # framed rows, in order, then ...
        self._lines: list[pl.Series] = []          # ... their starting lines
        self._values: list[list[str]] = []         # rows from add_row not framed yet
        self._starts: list[int] = []
        self._rej = Rejects()
        self._count = 0                            # records (rows + rejects) in this batch

    def add_row(self, fields: list[str], start: int) -> None:
        self._values.append(fields)
        self._starts.append(start)
        self.n_rows += 1
        self._count += 1
        if self._count >= self.batch_rows or self.limit is not None:
            self._after_record()

    def add_reject(self, start: int, reason: str, detail: str, raw: str) -> None:
        self._rej.add(f"{self.locator}:{start}", reason, detail, raw)
        self._count += 1
        self._after_record()

    def _after_record(self) -> None:
        if self._count >= self.batch_rows:
            self._ready.append(self._flush())
        self.check_limit()

    def check_limit(self) -> None:
        """Stop once ``limit`` rows are in (checked after every record, the header included)."""
        if self.limit is not None and self.n_rows >= self.limit:
            self.done = True

    def add_frame(self, rows: pl.DataFrame, lines: np.ndarray, bad: list[tuple[int, str, str]]) -> None:
        """Add records in line order: ``rows`` (all-string columns named ``self.names``) starting on
        ``lines`` (sorted), and ``bad`` = sorted (line, detail, raw) ``wrong_field_count`` rejects."""
        n_good = len(lines)
        bad_lines = np.fromiter((b[0] for b in bad), dtype=np.int64, count=len(bad))
        bad_at = np.searchsorted(lines, bad_lines) + np.arange(len(bad))   # record index of each reject
        total = n_good + len(bad)
        s = 0
        while s < total and not self.done:
            e = min(total, s + self.batch_rows - self._count)
            g0 = s - int(np.searchsorted(bad_at, s))
            if self.limit is not None:
                k = g0 + self.limit - self.n_rows - 1          # the good row that reaches the limit
                if k < n_good:
                    e = min(e, k + int(np.searchsorted(bad_lines, lines[k])) + 1)
            b0, b1 = int(np.searchsorted(bad_at, s)), int(np.searchsorted(bad_at, e))
            g1 = e - b1
            if g1 > g0:
                self._frame_values()
                self._frames.append(rows.slice(g0, g1 - g0))
                self._lines.append(pl.Series(lines[g0:g1]))
            for line, detail, raw in bad[b0:b1]:
                self._rej.add(f"{self.locator}:{line}", "wrong_field_count", detail, raw)
            self.n_rows += g1 - g0
            self._count += e - s
            s = e
            self._after_record()

    def _frame_values(self) -> None:
        """Turn the rows from add_row into a frame, so frames stay in file order."""
        if self._values:
            self._frames.append(pl.DataFrame(self._values, schema=self._schema(), orient="row"))
            self._lines.append(pl.Series(self._starts, dtype=pl.Int64))
            self._values, self._starts = [], []

    def _schema(self) -> dict[str, Any]:
        return {n: pl.String for n in self.names or []}

    def _flush(self) -> SourceBatch:
        self._frame_values()
        if not self.names:
            df, lines = pl.DataFrame(), pl.Series([], dtype=pl.Int64)
        elif self._frames:
            df, lines = pl.concat(self._frames), pl.concat(self._lines).cast(pl.Int64)
        else:
            df, lines = pl.DataFrame(schema=self._schema()), pl.Series([], dtype=pl.Int64)
        out = SourceBatch(with_locators(df, self.locator, lines), self._rej.frame(self.origin))
        self._reset()
        return out

    def take(self) -> list[SourceBatch]:
        """The full batches made so far (handed over once)."""
        ready, self._ready = self._ready, []
        return ready

    def finish(self) -> list[SourceBatch]:
        """The remaining batches at the end of input (a header-only input gives one empty frame)."""
        if self._values or self._frames or len(self._rej) or (self.names and self.n_rows == 0):
            self._ready.append(self._flush())
        return self.take()


class _CsvParser:
    """Turns blocks of lines into records for a :class:`_CsvBatches` (see :func:`iter_csv`)."""

    def __init__(self, options: Any, locator: str, out: _CsvBatches) -> None:
        self.options, self.locator, self.out = options, locator, out
        self.fmt = _csv_format(options)
        if options.columns and not options.header:
            out.names = list(options.columns)
        self.need_header = bool(options.header)
        self._quoted_ok = True          # False once polars misread quoted lines (never seen)

    def parse(self, block: Block, more: bool) -> int:
        """Read the records of ``block``; returns the index of its first line not consumed: that of
        a record still open at the end when ``more`` input follows, else ``len(block)`` (or where
        ``limit`` was reached)."""
        fast = FAST_PATH and (self.out.limit is None or self.out.limit > 0)
        simple = _simple_lines(block, self.options, self._quoted_ok) if fast else None
        pos, end = 0, len(block)
        while pos < end and not self.out.done:
            if simple is not None and self._names_known():
                run = simple.run_end(pos)
                if run > pos:
                    if self._fast(simple, pos, run, block.first):
                        pos = run
                    continue
            nxt = self._slow(block, pos, more, simple)
            if nxt is None:
                return pos if self.out.done else self._open_from
            pos = nxt
        return pos

    def _names_known(self) -> bool:
        return self.out.names is not None and not self.need_header

    def _fast(self, simple: "_SimpleLines", start: int, end: int, first: int) -> bool:
        """Records of the simple lines ``start:end`` (line numbers from ``first``): one per
        non-empty line, split on the delimiter by polars; a line with another number of fields
        than the header is a ``wrong_field_count`` reject. Returns False, having read nothing,
        when polars could not read the quoted lines (they are then left to the csv module)."""
        names = self.out.names
        assert names is not None
        n = len(names)
        text = simple.text.slice(start, end - start)
        lines = np.arange(first + start, first + end, dtype=np.int64)
        if simple.has_empty:
            keep = (text.str.len_bytes() > 0).to_numpy()
            text, lines = text.filter(pl.Series(keep)), lines[keep]
        if simple.quoted is not None and simple.quoted[start:end].any():
            got = self._split_quoted(text, lines, n)
            if got is None:
                self._quoted_ok = False
                simple.demote_quoted()
                return False
            rows, lines, bad = got
        else:
            rows, lines, bad = self._split_plain(text, lines, n)
        rows.columns = names
        self.out.add_frame(rows, lines, bad)
        return True

    def _split_plain(self, text: pl.Series, lines: np.ndarray,
                     n: int) -> tuple[pl.DataFrame, np.ndarray, list]:
        """Split quote-free lines on the delimiter; returns (rows with n fields, their lines,
        ``wrong_field_count`` rejects as (line, detail, raw))."""
        d = self.options.delimiter
        # n + 1 pieces: a line has n fields when piece n-1 exists and piece n does not
        parts = text.str.split_exact(d, n).struct.unnest()
        last, extra = parts.columns[n - 1], parts.columns[n]
        good = (parts[last].is_not_null() & parts[extra].is_null()).to_numpy()
        bad = []
        if not good.all():
            bad = _wrong_counts(text, lines, ~good, text.str.count_matches(d, literal=True) + 1, n)
            parts, lines = parts.filter(pl.Series(good)), lines[good]
        return parts.drop(extra), lines, bad

    def _split_quoted(self, text: pl.Series, lines: np.ndarray,
                      n: int) -> tuple[pl.DataFrame, np.ndarray, list] | None:
        """Like :meth:`_split_plain` for well-formed lines some of which quote fields (see
        :func:`_simple_lines`): fields are counted as delimiters outside quoted fields plus one,
        and the lines with n fields are parsed by polars' CSV reader, which agrees with the csv
        module on well-formed RFC 4180 lines. ``None`` if polars fails or reads another number of
        rows (never seen; a safety net)."""
        d, q = self.options.delimiter, self.options.quotechar
        counts = text.str.replace_all(_quoted_field(q), "").str.count_matches(d, literal=True) + 1
        good = (counts == n).to_numpy()
        bad = []
        if not good.all():
            bad = _wrong_counts(text, lines, ~good, counts, n)
            text, lines = text.filter(pl.Series(good)), lines[good]
        if len(text) == 0:
            return pl.DataFrame(schema={f"c{i}": pl.String for i in range(n)}), lines, bad
        data = ("\n".join(text.to_list()) + "\n").encode()
        try:
            rows = pl.read_csv(data, has_header=False, separator=d, quote_char=q, empty_string_is_null=False,
                               schema={f"c{i}": pl.String for i in range(n)}, raise_if_empty=False)
        except pl.exceptions.PolarsError:
            return None
        return (rows, lines, bad) if rows.height == len(text) else None

    def _slow(self, block: Block, pos: int, more: bool, simple: "_SimpleLines | None") -> int | None:
        """Read records with the csv module from line ``pos`` until the next record starts on a
        simple line (returns its index) or the block ends (returns its length). Returns ``None``
        when ``limit`` is reached or a record is still open at the end of the block and ``more``
        input follows (then ``self._open_from`` is the index of its first line)."""
        out, buf, base, errors = self.out, block.lines, block.first, block.errors
        flags = simple.flags if simple is not None else None
        while pos < len(buf):
            reader = csv.reader(itertools.islice(buf, pos, None), **self.fmt)
            prev = 0                               # reader.line_num before the current record
            try:
                for fields in reader:
                    ln = reader.line_num
                    if fields:                     # else an empty line
                        names = out.names
                        if not errors and names is not None and not self.need_header \
                                and len(fields) == len(names):
                            out.add_row(fields, base + pos + prev)          # the common case
                        else:
                            self._record(fields, buf, base, pos + prev, pos + ln, errors)
                        if out.done:
                            return None
                    prev = ln
                    nxt = pos + prev
                    if flags is not None and nxt < len(buf) and flags[nxt] and self._names_known():
                        return nxt
                return len(buf)
            except csv.Error as e:
                rec = pos + prev                   # index of the broken record's first line
                if str(e) == "unexpected end of data" and more:
                    self._open_from = rec          # the record may close in the next block
                    return None
                start = base + rec
                span = pos + reader.line_num - rec
                if start in errors:
                    out.add_reject(start, errors[start].reason, f"line {start}: {errors[start]}", buf[rec])
                else:
                    extra = f" (record ran over lines {start}-{start + span - 1})" if span > 1 else ""
                    out.add_reject(start, _csv_reason(e), f"{e}{extra}", buf[rec])
                if out.done:
                    return None
                pos = rec + 1                      # re-read what the broken record swallowed
                if flags is not None and pos < len(buf) and flags[pos] and self._names_known():
                    return pos
        return len(buf)

    def _record(self, fields: list[str], buf: list[str], base: int, i: int, j: int,
                errors: dict[int, str]) -> None:
        """One record from the csv reader, on lines ``buf[i:j]``: header, row or reject."""
        out, start = self.out, base + i
        bad = next((no for no in range(start, base + j) if no in errors), None) if errors else None
        if bad is not None:
            out.add_reject(start, errors[bad].reason, f"line {bad}: {errors[bad]}", "".join(buf[i:j]))
        elif self.need_header:
            self.need_header = False
            out.names = _header(fields, self.options, self.locator)
            out.check_limit()
        else:
            if out.names is None:
                out.names = [f"column_{k}" for k in range(1, len(fields) + 1)]
            if len(fields) == len(out.names):
                out.add_row(fields, start)
            else:
                out.add_reject(start, "wrong_field_count",
                               f"expected {len(out.names)} fields, got {len(fields)}", "".join(buf[i:j]))


def _wrong_counts(text: pl.Series, lines: np.ndarray, bad: np.ndarray, counts: pl.Series,
                  n: int) -> list[tuple[int, str, str]]:
    """(line, detail, raw) of the ``wrong_field_count`` rejects among ``text`` (mask ``bad``)."""
    mask = pl.Series(bad)
    return [(int(no), f"expected {n} fields, got {nf}", t)
            for no, nf, t in zip(lines[bad], counts.filter(mask), text.filter(mask))]


def _rx(ch: str) -> str:
    """``ch`` as a regex escape that is valid in and out of a character class."""
    return f"\\x{{{ord(ch):X}}}"


def _quoted_field(q: str) -> str:
    """Regex of one quoted field: quote, anything but a lone quote, quote."""
    qe = _rx(q)
    return f"{qe}(?:[^{qe}]|{qe}{qe})*{qe}"


def _well_formed(d: str, q: str) -> str:
    """Regex of a whole line of fields that are quoted, or unquoted without quote characters."""
    de, qe = _rx(d), _rx(q)
    field = f"(?:{_quoted_field(q)}|[^{qe}{de}]*)"
    return f"^{field}(?:{de}{field})*$"


class _SimpleLines:
    """A block's lines without their line ends (``text``) and which of them are *simple* (see
    :func:`_simple_lines`)."""

    def __init__(self, text: pl.Series, simple: np.ndarray, has_empty: bool,
                 quoted: np.ndarray | None = None) -> None:
        self.text, self.has_empty, self.quoted = text, has_empty, quoted   # quoted: has a quote char
        self._simple = simple
        self._not_simple = np.flatnonzero(~simple)
        self._flags: list[bool] | None = None

    def demote_quoted(self) -> None:
        """Mark the lines with a quote character not simple."""
        if self.quoted is not None:
            self._simple = self._simple & ~self.quoted
            self._not_simple = np.flatnonzero(~self._simple)
            self._flags, self.quoted = None, None

    @property
    def flags(self) -> list[bool]:
        """``simple`` as a list, for cheap look-ups one line at a time."""
        if self._flags is None:
            self._flags = self._simple.tolist()
        return self._flags

    def run_end(self, pos: int) -> int:
        """End (exclusive) of the run of simple lines starting at ``pos`` (``pos`` if none)."""
        i = int(np.searchsorted(self._not_simple, pos))
        return int(self._not_simple[i]) if i < len(self._not_simple) else len(self.text)


def _simple_lines(block: Block, options: Any, quoted_ok: bool = True) -> _SimpleLines:
    """Mark the lines of ``block`` that the csv module reads as exactly one record, when one starts
    there: no escape character, no ``\\r`` but one just before the ``\\n`` (the csv module rejects
    a bare ``\\r`` mid-line), not longer than the csv field limit (in bytes, a safe bound), no
    decoding error (those become ``bad_encoding`` rejects on the csv-module path), and either no
    quote character (or ``quoting: none``) or a well-formed line: every field quoted with its
    quotes doubled inside, or unquoted without quotes (so no quoted field runs over a newline).
    Characters absent from the whole block are not looked for line by line. ``quoted_ok=False``
    (or a non-ASCII delimiter or quote, which polars' CSV reader cannot take) leaves every line
    with a quote on the csv-module path."""
    whole = block.text
    parts = whole.split("\n")
    if parts[-1] == "":
        parts.pop()                                 # text after the last \n (none)
    text = pl.Series("t", parts, dtype=pl.String)
    special = []
    if "\r" in whole:
        text = text.str.strip_suffix("\r")
        special.append("\r")
    if options.escapechar and options.escapechar in whole:
        special.append(options.escapechar)
    q = options.quotechar
    quotes = options.quoting != "none" and q in whole
    if quotes and not (quoted_ok and q.isascii() and options.delimiter.isascii()
                       and q != options.delimiter and q not in "\n\r" and "\ufeff" not in whole):
        special.append(q)                           # keep quoted lines on the csv-module path
        quotes = False
    simple = np.ones(len(text), dtype=bool)
    if special:
        simple &= ~text.str.contains_any(special).to_numpy()
    quoted = None
    if quotes:
        quoted = text.str.contains(q, literal=True).to_numpy()
        simple &= ~quoted | text.str.contains(_well_formed(options.delimiter, q)).to_numpy()
    if len(whole) > csv.field_size_limit():
        simple &= (text.str.len_bytes() <= csv.field_size_limit()).to_numpy()
    for no in block.errors:
        if 0 <= no - block.first < len(simple):
            simple[no - block.first] = False
    has_empty = bool((text.str.len_bytes() == 0).any())
    return _SimpleLines(text, simple, has_empty, quoted)


def _header(fields: list[str], options: Any, locator: str) -> list[str]:
    header = _unique_names(fields)
    if options.columns:
        if len(options.columns) != len(header):
            raise DataError(f"{locator}: `columns` names {len(options.columns)} columns but "
                            f"the header has {len(header)}: {header}")
        header = list(options.columns)
    return header

