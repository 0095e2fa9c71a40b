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

    from connectors._textio import CsvOptions, iter_csv
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
    error with its byte offset (that line's text then holds U+FFFD)."""

    __slots__ = ("first", "lines", "errors")

    def __init__(self, first: int, lines: list[str], errors: dict[int, str] | None = None) -> None:
        self.first, self.lines, self.errors = first, lines, errors or {}


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
            no += len(block.lines)
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
        return Block(first, _split_keep(body.decode(codec), "\n"))
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


def iter_csv(fileobj: BinaryIO, locator: str, options: Any, origin: str, *,
             batch_rows: int = BATCH_ROWS, limit: int | None = None) -> Iterator[SourceBatch]:
    """Parse delimited text; every value is a string; locator ``<locator>:<first physical line>``.

    ``options``: :class:`CsvOptions`-like (``encoding, delimiter, quotechar, quoting, escapechar,
    header, columns``). Quarantines ``wrong_field_count`` ("expected 2 fields, got 3"),
    ``bad_quoting`` (the csv module's error; parsing restarts on the record's second line, so one
    stray quote cannot swallow the rest of the file), ``field_too_large`` and ``bad_encoding``.
    Empty lines are skipped. A header-only input yields one empty frame with the header's columns.

    The C csv reader runs over each decoded block's list of lines; Python only sees records.
    """
    fmt = _csv_format(options)
    names: list[str] | None = list(options.columns) if options.columns and not options.header else None
    need_header = bool(options.header)
    values: list[list[str]] = []
    starts: list[int] = []
    rej = _Rejects()
    n_rows = 0

    def flush() -> SourceBatch:
        nonlocal values, starts, rej
        if not names:
            df = pl.DataFrame()
        elif values:
            df = pl.DataFrame(values, schema={n: pl.String for n in names}, orient="row")
        else:
            df = pl.DataFrame(schema={n: pl.String for n in names})
        out = SourceBatch(with_locators(df, locator, starts), rej.frame(origin))
        values, starts, rej = [], [], _Rejects()
        return out

    carry: list[str] = []          # lines of a record left open at the end of the last block
    carry_errors: dict[int, str] = {}
    blocks = iter_blocks(fileobj, locator, options.encoding)
    block: Block | None = next(blocks, None)
    done = False
    while block is not None and not done:
        nxt = next(blocks, None)
        buf = carry + block.lines
        base = block.first - len(carry)          # line number of buf[0]
        errors = {**carry_errors, **block.errors} if carry_errors else block.errors
        carry, carry_errors = [], {}
        pos = 0                                    # index in buf where the reader starts
        while pos < len(buf):
            reader = csv.reader(itertools.islice(buf, pos, None), **fmt)
            prev = 0                               # reader.line_num before the current record
            try:
                for fields in reader:
                    ln = reader.line_num
                    start = base + pos + prev
                    if not fields:
                        prev = ln
                        continue                   # empty line
                    bad = None
                    if errors:
                        bad = next((i for i in range(start, base + pos + ln) if i in errors), None)
                    if bad is not None:
                        rej.add(f"{locator}:{start}", "bad_encoding", f"line {bad}: {errors[bad]}",
                                "".join(buf[pos + prev:pos + ln]))
                    elif need_header:
                        need_header = False
                        names = _header(fields, options, locator)
                    else:
                        if names is None:
                            names = [f"column_{i}" for i in range(1, len(fields) + 1)]
                        if len(fields) == len(names):
                            values.append(fields)
                            starts.append(start)
                            n_rows += 1
                        else:
                            rej.add(f"{locator}:{start}", "wrong_field_count",
                                    f"expected {len(names)} fields, got {len(fields)}",
                                    "".join(buf[pos + prev:pos + ln]))
                    prev = ln
                    if len(values) + len(rej) >= batch_rows:
                        yield flush()
                    if limit is not None and n_rows >= limit:
                        done = True
                        break
                pos = len(buf)
            except csv.Error as e:
                rec = pos + prev                   # index of the broken record's first line
                if str(e) == "unexpected end of data" and nxt is not None:
                    carry = buf[rec:]              # the record may close in the next block
                    carry_errors = {i: m for i, m in errors.items() if i >= base + rec}
                    break
                start = base + rec
                span = pos + reader.line_num - rec
                if start in errors:
                    rej.add(f"{locator}:{start}", "bad_encoding", f"line {start}: {errors[start]}", buf[rec])
                else:
                    more = f" (record ran over lines {start}-{start + span - 1})" if span > 1 else ""
                    rej.add(f"{locator}:{start}", _CSV_REASONS.get(str(e), "bad_quoting"), f"{e}{more}",
                            buf[rec])
                pos = rec + 1                      # re-read what the broken record swallowed
        block = nxt
    if values or len(rej) or (names and n_rows == 0):
        yield flush()


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
