"""Streaming parsers shared by file-like connectors (local files, S3 objects, HTTP bodies).

Every ``iter_*`` function takes a *binary* file object, a locator prefix (``csv:data/x.csv``,
``s3://bucket/key.jsonl``) and an options object, and yields :class:`curate.source.SourceBatch`
objects of at most ``batch_rows`` rows, so memory stays bounded however large the input is.
Row locators are ``<prefix>:<n>`` (a 1-based physical line for CSV/TSV/JSONL, a 0-based index
for JSON arrays and Parquet). Malformed rows are quarantined with a ``reason``, a ``detail`` and
the ``raw`` text (first 500 characters); they never stop the read.

If the locator prefix ends with ``.gz`` (or the stream starts with the gzip magic bytes) the
stream is decompressed on the fly. Options objects are duck-typed: the pydantic models below,
or any object with the same attributes (e.g. a connector's own config model inheriting them).

Reuse from another connector::

    from curate.connectors._textio import CsvOptions, iter_csv
    with s3.open(key) as body:                     # any binary file object
        yield from iter_csv(body, f"s3://{bucket}/{key}", CsvOptions(delimiter=";"), origin)
"""
from __future__ import annotations

import codecs
import csv
import gzip
import io
import itertools
import json
from typing import Any, BinaryIO, Iterator, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from curate import records as R
from curate.errors import DataError
from curate.source import SourceBatch, quarantine

try:                         # fast JSON when installed (small, C-level import)
    import orjson as _orjson
except ImportError:          # pragma: no cover - orjson is a dependency
    _orjson = None

BATCH_ROWS = 50_000          # rows per yielded batch
SAMPLE_BYTES = 64 * 1024     # bytes looked at to guess an encoding
CHUNK_BYTES = 1 << 20        # bytes decoded at a time
RAW_CHARS = 500              # raw text kept with a quarantined row
RAW = "raw"                  # column holding that text

# csv.Error messages that are not about quoting
_CSV_REASONS = {"field larger than field limit": "field_too_large"}


def _csv_reason(err: Exception) -> str:
    """Reject reason for a csv-module error (its messages carry numbers, so match prefixes)."""
    msg = str(err)
    return next((r for prefix, r in _CSV_REASONS.items() if msg.startswith(prefix)), "bad_quoting")


# ============================================================================ options
class EncodingOptions(BaseModel):
    """How bytes become text."""

    model_config = ConfigDict(extra="forbid")
    encoding: str = Field(
        default="auto",
        description="Text encoding: `auto` (UTF-8, BOM-aware; else charset-normalizer's guess on the "
                    "first 64 KiB) or a Python codec name such as `latin-1`, `cp1252`, `utf-16`.")


class CsvOptions(EncodingOptions):
    """Delimited-text dialect (CSV, TSV)."""

    delimiter: str = Field(default=",", min_length=1, max_length=1, description="Field separator.")
    quotechar: str = Field(default='"', min_length=1, max_length=1, description="Quote character.")
    quoting: Literal["minimal", "none"] = Field(
        default="minimal",
        description="`minimal`: fields may be quoted (RFC 4180); `none`: quotes are ordinary text.")
    escapechar: str | None = Field(default=None, min_length=1, max_length=1,
                                   description="Escape character, if the file uses one.")
    header: bool = Field(default=True, description="The first record names the columns.")
    columns: list[str] | None = Field(
        default=None, min_length=1,
        description="Column names. With `header: false` they name the fields (default column_1, "
                    "column_2, ...); with `header: true` they replace the header's names.")


class TsvOptions(CsvOptions):
    """TSV: tab-separated, unquoted by default (real TSVs such as SMS Spam contain bare quotes)."""

    delimiter: str = Field(default="\t", min_length=1, max_length=1, description="Field separator.")
    quoting: Literal["minimal", "none"] = Field(
        default="none",
        description="`none` (default): quotes are ordinary text; `minimal`: fields may be quoted.")


class JsonlOptions(EncodingOptions):
    """JSON Lines: one object per line; blank lines are skipped."""


class JsonOptions(EncodingOptions):
    """A JSON document holding an array of objects."""

    records_key: str | None = Field(
        default=None,
        description="Key (dotted for nesting, e.g. `data.rows`) of the array of records when the "
                    "document is an object such as {\"data\": [...]}.")


class ParquetOptions(BaseModel):
    """Parquet: read in row batches; no options beyond the common ones yet."""

    model_config = ConfigDict(extra="forbid")


# ============================================================================ bytes → lines
def open_stream(fileobj: BinaryIO, locator: str) -> BinaryIO:
    """Return ``fileobj``, gunzipped when ``locator`` ends with ``.gz``."""
    if locator.lower().endswith(".gz"):
        return gzip.GzipFile(fileobj=fileobj, mode="rb")  # type: ignore[return-value]
    return fileobj


def _read_sample(stream: BinaryIO, n: int | None = None) -> bytes:
    """Up to ``n`` (default SAMPLE_BYTES) bytes, however short the stream's reads are."""
    n = SAMPLE_BYTES if n is None else n
    parts, size = [], 0
    while size < n:
        b = stream.read(n - size)
        if not b:
            break
        parts.append(b)
        size += len(b)
    return b"".join(parts)


def _utf8_like(sample: bytes) -> bool:
    """True when ``sample`` is UTF-8, allowing a cut-off final character and rare corrupt bytes
    in otherwise multi-byte UTF-8 text (those lines are then quarantined as ``bad_encoding``)."""
    try:
        sample.decode("utf-8")
        return True
    except UnicodeDecodeError as e:
        if e.start >= len(sample) - 3 and e.reason == "unexpected end of data":
            return True
    text = sample.decode("utf-8", errors="surrogateescape")
    bad = sum(1 for ch in text if "\udc80" <= ch <= "\udcff")
    good = sum(1 for ch in text if ch > "\x7f" and not "\udc80" <= ch <= "\udcff")
    return good > 0 and bad <= good


def detect_encoding(sample: bytes) -> tuple[str, int]:
    """Guess the codec of ``sample``; returns (codec name, BOM bytes to skip)."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8", 3
    if sample.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32", 0
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", 0
    if _utf8_like(sample):
        return "utf-8", 0
    from charset_normalizer import from_bytes
    matches = from_bytes(sample)
    best = matches.best()
    if best is None:
        return "utf-8", 0          # no guess: undecodable lines get quarantined as bad_encoding
    # On short samples charset-normalizer often ranks a Baltic/Central-European code page above
    # Western European (e.g. cp1257 reads "ç" as "ē"). Prefer cp1252 when it is nearly as clean.
    for m in matches:
        names = {c.replace("-", "_") for c in m.could_be_from_charset}
        if names & {"cp1252", "latin_1"} and m.chaos <= best.chaos + 0.15 \
                and m.coherence >= best.coherence - 0.1:
            return "cp1252", 0
    return best.encoding, 0


def _resolve_encoding(encoding: str, sample: bytes, locator: str) -> tuple[str, int]:
    if encoding == "auto":
        return detect_encoding(sample)
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise DataError(f"{locator}: unknown encoding {encoding!r} (use a Python codec name, e.g. "
                        "utf-8, latin-1, cp1252, or `auto`)") from None
    if name == "utf-8" and sample.startswith(codecs.BOM_UTF8):
        return "utf-8", 3
    if name in ("utf-8-sig",):
        return "utf-8", 3 if sample.startswith(codecs.BOM_UTF8) else 0
    return name, 0


def _ascii_compatible(codec: str) -> bool:
    try:
        return "\n".encode(codec) == b"\n" and "a\n".encode(codec) == b"a\n"
    except (UnicodeError, LookupError):
        return False


class Block:
    """Consecutive physical lines: ``first`` is the 1-based number of ``lines[0]``; each text keeps
    its ``\\n``; ``errors`` maps the number of each line whose bytes did not decode to the codec
    error with its byte offset (that line's text then holds U+FFFD).

    A block is built from its lines or from their concatenation (``text``); the other form is
    made on first use, so a reader that wants one string (the CSV fast path) never splits it.
    """

    __slots__ = ("first", "_lines", "_text", "_n", "errors")

    def __init__(self, first: int, lines: list[str] | None = None, errors: dict[int, str] | None = None,
                 *, text: str | None = None) -> None:
        self.first, self._lines, self._text, self.errors = first, lines, text, errors or {}
        self._n = -1

    @property
    def lines(self) -> list[str]:
        if self._lines is None:
            self._lines = _split_keep(self._text or "", "\n")
        return self._lines

    def __len__(self) -> int:
        """Number of lines (counted in ``text`` when the lines were not split yet)."""
        if self._lines is not None:
            return len(self._lines)
        if self._n < 0:
            text = self._text or ""
            self._n = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
        return self._n

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = "".join(self._lines or [])
        return self._text


class Line:
    """One physical line: 1-based number, decoded text (``\\n`` kept), codec error or None."""

    __slots__ = ("no", "text", "error")

    def __init__(self, no: int, text: str, error: str | None = None) -> None:
        self.no, self.text, self.error = no, text, error


def iter_blocks(fileobj: BinaryIO, locator: str, encoding: str = "auto") -> Iterator[Block]:
    """Decode ``fileobj`` into blocks of physical lines (split on ``\\n`` only).

    About 1 MiB is decoded at once; a block that fails is decoded line by line so only the
    undecodable lines are flagged. gzip input is recognised by a ``.gz`` locator or magic bytes.
    """
    stream = open_stream(fileobj, locator)
    sample = _read_sample(stream)
    if sample[:2] == b"\x1f\x8b" and not locator.lower().endswith(".gz"):
        stream = gzip.GzipFile(fileobj=io.BufferedReader(_Chain(sample, stream)), mode="rb")
        sample = _read_sample(stream)
    codec, skip = _resolve_encoding(encoding, sample, locator)
    if not _ascii_compatible(codec):
        yield from _iter_blocks_incremental(sample[skip:], stream, codec, locator)
        return
    no, offset, buf = 0, skip, sample[skip:]
    while True:
        chunk = stream.read(CHUNK_BYTES)
        if chunk:
            buf += chunk
        cut = (buf.rfind(b"\n") + 1) if chunk else len(buf)
        if cut:
            body, buf = buf[:cut], buf[cut:]
            block = _decode_block(body, codec, no + 1, offset)
            yield block
            no += len(block)
            offset += len(body)
        if not chunk:
            break


def iter_lines(fileobj: BinaryIO, locator: str, encoding: str = "auto") -> Iterator[Line]:
    """Decode ``fileobj`` into :class:`Line` objects (see :func:`iter_blocks`)."""
    for block in iter_blocks(fileobj, locator, encoding):
        err = block.errors.get
        for no, text in enumerate(block.lines, block.first):
            yield Line(no, text, err(no))


class _Chain(io.RawIOBase):
    """A read-only stream that first returns ``head`` and then the rest of ``tail``."""

    def __init__(self, head: bytes, tail: BinaryIO) -> None:
        self.head, self.tail = memoryview(head), tail

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        if len(self.head):
            n = min(len(b), len(self.head))
            b[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        data = self.tail.read(len(b))
        b[:len(data)] = data
        return len(data)


def _split_keep(text, nl):
    """Split on ``nl`` only (str.splitlines also splits on \\r, \\x1c, U+2028 ...), keeping it."""
    parts = text.split(nl)
    last = parts.pop()
    out = [p + nl for p in parts]
    if last:
        out.append(last)
    return out


def _decode_block(body: bytes, codec: str, first: int, offset: int) -> Block:
    """Decode whole lines at once; if that fails, line by line, flagging the bad ones."""
    try:
        return Block(first, text=body.decode(codec))
    except UnicodeDecodeError:
        pass
    lines, errors = [], {}
    for no, raw in enumerate(_split_keep(body, b"\n"), first):
        try:
            lines.append(raw.decode(codec))
        except UnicodeDecodeError as e:
            errors[no] = (f"byte 0x{raw[e.start]:02x} at byte offset {offset + e.start} "
                          f"(column {e.start + 1}): '{codec}' codec: {e.reason}")
            lines.append(raw.decode(codec, errors="replace"))
        offset += len(raw)
    return Block(first, lines, errors)


def _iter_blocks_incremental(sample: bytes, stream: BinaryIO, codec: str, locator: str) -> Iterator[Block]:
    """Blocks of a codec that is not ASCII-compatible (UTF-16/32): decode the stream, then split.
    A decoding error here is a :class:`DataError` (lines cannot be re-synchronised)."""
    dec = codecs.getincrementaldecoder(codec)("strict")
    no, pending, data, consumed = 0, "", sample, 0
    while True:
        final = not data
        try:
            pending += dec.decode(data, final=final)
        except UnicodeDecodeError as e:
            raise DataError(f"{locator}: cannot decode as {codec} near byte offset "
                            f"{consumed + e.start}: {e.reason}") from None
        consumed += len(data)
        cut = len(pending) if final else pending.rfind("\n") + 1
        if cut:
            lines = _split_keep(pending[:cut], "\n")
            pending = pending[cut:]
            yield Block(no + 1, lines)
            no += len(lines)
        if final:
            break
        data = stream.read(CHUNK_BYTES)


# ============================================================================ frames
def _truncate(text: str) -> str:
    return text if len(text) <= RAW_CHARS else text[:RAW_CHARS] + "…"


class _Rejects:
    """Collects quarantined rows of one batch."""

    def __init__(self) -> None:
        self.locators: list[str] = []
        self.reasons: list[str] = []
        self.details: list[str | None] = []
        self.raws: list[str | None] = []

    def add(self, locator: str, reason: str, detail: str | None, raw: str | None) -> None:
        self.locators.append(locator)
        self.reasons.append(reason)
        self.details.append(detail)
        self.raws.append(None if raw is None else _truncate(raw.rstrip("\r\n")))

    def __len__(self) -> int:
        return len(self.locators)

    def frame(self, origin: str) -> pl.DataFrame:
        if not self.locators:
            return pl.DataFrame()
        return quarantine(self.locators, self.reasons, self.details, origin).with_columns(
            pl.Series(RAW, self.raws, dtype=pl.String))


def with_locators(df: pl.DataFrame, locator: str, positions: list[int] | range) -> pl.DataFrame:
    """Put ``source`` = ``<locator>:<position>`` (built vectorised) first in ``df``.

    A batch without rows and without columns stays an empty frame, so the engine does not try to
    map columns of a batch that held only quarantined rows.
    """
    if df.width == 0 and len(positions) == 0:
        return pl.DataFrame()
    pos = pl.Series("_pos", positions, dtype=pl.Int64).cast(pl.String)
    src = pl.select((pl.lit(f"{locator}:") + pos).alias(R.SOURCE)).to_series() if len(pos) \
        else pl.Series(R.SOURCE, [], dtype=pl.String)
    return df.with_columns(src).select([R.SOURCE] + [c for c in df.columns if c != R.SOURCE])


def records_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Polars frame from parsed JSON objects, keeping their types.

    Polars unifies mixed values to a common type (1 and "a" → strings). A column it cannot
    unify without losing values (an int in one row, an object in the next), or cannot store in
    Parquet (Python objects, 128-bit ints), is kept as JSON text instead; nothing becomes null.
    """
    if not rows:
        return pl.DataFrame()
    present: dict[str, int] = {}
    for r in rows:
        for k, v in r.items():
            if v is not None:
                present[k] = present.get(k, 0) + 1
    df: pl.DataFrame | None
    try:
        df = pl.DataFrame(rows, infer_schema_length=None, strict=False)
    except Exception:  # noqa: BLE001 - polars raises several kinds for unmixable values
        df = None
    if df is not None:
        bad = [c for c in df.columns if _unstorable(df.schema[c])
               or df.height - df[c].null_count() != present.get(c, 0)]
        if not bad:
            return df
    cols = []
    keys = dict.fromkeys(k for r in rows for k in r)
    for k in keys:
        vals = [r.get(k) for r in rows]
        try:
            col = pl.Series(k, vals, strict=False)
            if _unstorable(col.dtype) or len(vals) - col.null_count() != present.get(k, 0):
                raise TypeError(k)
        except Exception:  # noqa: BLE001
            col = pl.Series(k, [None if v is None else json.dumps(v, ensure_ascii=False)
                                for v in vals], dtype=pl.String)
        cols.append(col)
    return pl.DataFrame(cols)


_WIDE_INTS = tuple(t for t in (getattr(pl, "Int128", None), getattr(pl, "UInt128", None)) if t is not None)


def _unstorable(dtype: pl.DataType) -> bool:
    """True when ``dtype`` is (or nests) a Python-object or 128-bit int type (no Parquet for them)."""
    if dtype == pl.Object or any(dtype == t for t in _WIDE_INTS):
        return True
    inner = getattr(dtype, "inner", None)
    if inner is not None:
        return _unstorable(inner)
    fields = getattr(dtype, "fields", None)
    return bool(fields) and any(_unstorable(f.dtype) for f in fields)


# ============================================================================ CSV / TSV
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
             batch_rows: int = BATCH_ROWS, limit: int | None = None) -> Iterator[SourceBatch]:
    """Parse delimited text; every value is a string; locator ``<locator>:<first physical line>``.

    ``options``: :class:`CsvOptions`-like (``encoding, delimiter, quotechar, quoting, escapechar,
    header, columns``). Quarantines ``wrong_field_count`` ("expected 2 fields, got 3"),
    ``bad_quoting`` (the csv module's error; parsing restarts on the record's second line, so one
    stray quote cannot swallow the rest of the file), ``field_too_large`` and ``bad_encoding``.
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
    blocks = iter_blocks(fileobj, locator, options.encoding)
    block: Block | None = next(blocks, None)
    while block is not None and not out.done:
        nxt = next(blocks, None)
        if carry is not None:
            block = Block(carry.first, carry.lines + block.lines, {**carry.errors, **block.errors})
        rest = parser.parse(block, more=nxt is not None)
        carry = None
        if rest < len(block) and not out.done:
            first = block.first + rest
            carry = Block(first, block.lines[rest:], {i: m for i, m in block.errors.items() if i >= first})
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
        self._rej = _Rejects()
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
                    out.add_reject(start, "bad_encoding", f"line {start}: {errors[start]}", buf[rec])
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
            out.add_reject(start, "bad_encoding", f"line {bad}: {errors[bad]}", "".join(buf[i:j]))
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


# ============================================================================ JSON Lines
def _loads(raw: str | bytes) -> Any:
    """orjson when it accepts the text, else the stdlib (which also takes NaN/Infinity and gives
    the clearer error message)."""
    if _orjson is not None:
        try:
            return _orjson.loads(raw)
        except ValueError:
            pass
    return json.loads(raw)


def iter_jsonl(fileobj: BinaryIO, locator: str, options: Any, origin: str, *,
               batch_rows: int = BATCH_ROWS, limit: int | None = None) -> Iterator[SourceBatch]:
    """Parse JSON Lines, keeping JSON types; locator ``<locator>:<line>``.

    ``options``: :class:`JsonlOptions`-like (``encoding``). Blank lines are skipped; quarantines
    ``invalid_json`` (detail: the parser's message), ``not_an_object`` and ``bad_encoding``.
    """
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    rej = _Rejects()
    loads = _orjson.loads if _orjson is not None else json.loads
    for block in iter_blocks(fileobj, locator, options.encoding):
        errors = block.errors
        for no, text in enumerate(block.lines, block.first):
            try:
                obj = loads(text)          # fast path: a valid line, no further checks
            except ValueError:
                if text.isspace():
                    continue               # blank line: not a row
                obj = _INVALID
            if obj is _INVALID or errors or type(obj) is not dict:
                loc = f"{locator}:{no}"
                if no in errors:
                    rej.add(loc, "bad_encoding", errors[no], text)
                    continue
                if obj is _INVALID:
                    try:
                        obj = json.loads(text)          # NaN/Infinity; its message is clearer
                    except ValueError as e:
                        rej.add(loc, "invalid_json", str(e), text)
                        continue
                if not isinstance(obj, dict):
                    rej.add(loc, "not_an_object", f"expected a JSON object, got {_json_type(obj)}", text)
                    continue
            rows.append(obj)
            lines.append(no)
            if len(rows) + len(rej) >= batch_rows or (limit is not None and len(rows) >= limit):
                yield SourceBatch(with_locators(records_frame(rows), locator, lines), rej.frame(origin))
                if limit is not None:
                    limit -= len(rows)
                    if limit <= 0:
                        return
                rows, lines, rej = [], [], _Rejects()
        if len(rej) >= batch_rows:                 # a run of garbage: keep memory bounded
            yield SourceBatch(pl.DataFrame(), rej.frame(origin))
            rej = _Rejects()
    if rows or len(rej):
        yield SourceBatch(with_locators(records_frame(rows), locator, lines), rej.frame(origin))


_INVALID = object()


def _json_type(obj: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number",
            type(None): "null"}.get(type(obj), type(obj).__name__)


# ============================================================================ JSON document
def iter_json(fileobj: BinaryIO, locator: str, options: Any, origin: str, *,
              batch_rows: int = BATCH_ROWS, limit: int | None = None) -> Iterator[SourceBatch]:
    """Parse one JSON document: an array of objects, or an object holding one under
    ``options.records_key``; locator ``<locator>:<index>`` (0-based).

    The document is read whole (JSON arrays cannot be streamed without a streaming parser).
    An unparsable or undecodable document is one quarantined row (``invalid_json`` /
    ``bad_encoding``, locator ``<locator>``); array items that are not objects are
    ``not_an_object``. A missing ``records_key`` is a :class:`DataError`.
    """
    stream = open_stream(fileobj, locator)
    data = stream.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if not data.strip():
        return
    codec, skip = _resolve_encoding(options.encoding, data[:SAMPLE_BYTES], locator)
    try:
        text = data[skip:].decode(codec)
    except UnicodeDecodeError as e:
        yield SourceBatch(pl.DataFrame(), _one_reject(locator, "bad_encoding",
                                                      f"byte offset {e.start + skip}: {e.reason} (codec {codec})",
                                                      data[:RAW_CHARS].decode(codec, "replace"), origin))
        return
    try:
        doc = _loads(text.encode()) if codec != "utf-8" else _loads(data[skip:])
    except ValueError as e:
        yield SourceBatch(pl.DataFrame(), _one_reject(locator, "invalid_json", str(e), text, origin))
        return
    key = getattr(options, "records_key", None)
    if key:
        node = doc
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                have = list(node) if isinstance(node, dict) else []
                raise DataError(f"{locator}: records_key {key!r} not found (at {part!r}); "
                                f"keys there: {', '.join(map(repr, have)) or 'none (not an object)'}")
            node = node[part]
        doc = node
    if isinstance(doc, dict):
        lists = [k for k, v in doc.items() if isinstance(v, list)]
        raise DataError(f"{locator}: the document is an object, not an array of records; set "
                        f"records_key" + (f" (keys holding arrays: {', '.join(map(repr, lists))})"
                                          if lists else ""))
    if not isinstance(doc, list):
        raise DataError(f"{locator}: expected an array of records, got {_json_type(doc)}")
    n = 0
    for start in range(0, len(doc), batch_rows):
        rows, idx, rej = [], [], _Rejects()
        for i in range(start, min(start + batch_rows, len(doc))):
            obj = doc[i]
            if isinstance(obj, dict):
                rows.append(obj)
                idx.append(i)
                n += 1
                if limit is not None and n >= limit:
                    break
            else:
                rej.add(f"{locator}:{i}", "not_an_object",
                        f"expected a JSON object, got {_json_type(obj)}", json.dumps(obj, ensure_ascii=False))
        yield SourceBatch(with_locators(records_frame(rows), locator, idx), rej.frame(origin))
        if limit is not None and n >= limit:
            break


def _one_reject(locator: str, reason: str, detail: str, raw: str | None, origin: str) -> pl.DataFrame:
    rej = _Rejects()
    rej.add(locator, reason, detail, raw)
    return rej.frame(origin)


# ============================================================================ Parquet
def iter_parquet(fileobj: BinaryIO, locator: str, options: Any, origin: str, *,
                 batch_rows: int = BATCH_ROWS, limit: int | None = None) -> Iterator[SourceBatch]:
    """Read Parquet row batches with ``pyarrow.parquet.ParquetFile.iter_batches``; locator
    ``<locator>:<row>`` (0-based). Non-seekable streams are buffered in memory first. A file
    that is not valid Parquet is one quarantined row (``unreadable_file``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    if not _seekable(fileobj):
        fileobj = io.BytesIO(fileobj.read())
    try:
        pf = pq.ParquetFile(fileobj)
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as e:
        yield SourceBatch(pl.DataFrame(), _one_reject(locator, "unreadable_file", f"not Parquet: {e}",
                                                      None, origin))
        return
    row = 0
    for batch in pf.iter_batches(batch_size=batch_rows):
        df = pl.from_arrow(pa.Table.from_batches([batch]))
        assert isinstance(df, pl.DataFrame)
        if limit is not None and row + df.height > limit:
            df = df.head(limit - row)
        yield SourceBatch(with_locators(df, locator, range(row, row + df.height)))
        row += df.height
        if limit is not None and row >= limit:
            break
    if row == 0 and pf.metadata.num_rows == 0:
        empty = pl.from_arrow(pf.schema_arrow.empty_table())
        assert isinstance(empty, pl.DataFrame)
        yield SourceBatch(with_locators(empty, locator, []))


def _seekable(f: Any) -> bool:
    try:
        return bool(f.seekable())
    except (AttributeError, ValueError):
        return False


# ============================================================================ dispatch
PARSERS = {"csv": iter_csv, "tsv": iter_csv, "jsonl": iter_jsonl, "ndjson": iter_jsonl,
           "json": iter_json, "parquet": iter_parquet}
OPTIONS = {"csv": CsvOptions, "tsv": TsvOptions, "jsonl": JsonlOptions, "ndjson": JsonlOptions,
           "json": JsonOptions, "parquet": ParquetOptions}


def format_for(name: str) -> str | None:
    """The format a file name implies (``x.csv.gz`` → ``csv``), or ``None``."""
    n = name.lower()
    if n.endswith(".gz"):
        n = n[:-3]
    ext = n.rsplit(".", 1)[-1] if "." in n.rsplit("/", 1)[-1] else ""
    return {"txt": None, "pq": "parquet"}.get(ext, ext if ext in PARSERS else None)


def iter_format(fmt: str, fileobj: BinaryIO, locator: str, options: Any, origin: str, *,
                batch_rows: int = BATCH_ROWS, limit: int | None = None) -> Iterator[SourceBatch]:
    """Dispatch to the parser for ``fmt`` (``csv``, ``tsv``, ``jsonl``, ``json``, ``parquet``)."""
    try:
        parser = PARSERS[fmt]
    except KeyError:
        raise DataError(f"{locator}: unknown format {fmt!r}; known: {', '.join(sorted(PARSERS))}") from None
    return parser(fileobj, locator, options, origin, batch_rows=batch_rows, limit=limit)
