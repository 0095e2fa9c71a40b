"""Bytes → blocks of decoded physical lines, in bounded memory and linear time.

A line longer than ``max_record_bytes`` is never held whole: past the bound its bytes are skipped up
to the next ``\\n`` and it becomes a ``too_large`` line error (its text a short placeholder). In a
file whose guessed codec is a legacy one (cp1252 ...), a line that is valid multi-byte UTF-8 is
decoded as UTF-8 and counted (``utf8_fallback_lines``), so a mixed file is not garbled silently.
Lines that do not decode are ``bad_encoding`` line errors; lines ftfy reads as mojibake
(UTF-8 decoded as cp1252 upstream) are counted (``mojibake_lines``). A stream that breaks off (corrupt
compression, a decompression bomb) ends with an empty block carrying the :class:`ReadProblem`.
"""
from __future__ import annotations

import codecs
import re
from typing import Any, BinaryIO, Iterator, NamedTuple

import numpy as np

from curate.connectors._textio.encoding import ascii_compatible, resolve_encoding
from curate.connectors._textio.options import MAX_COMPRESSION_RATIO, MAX_RECORD_BYTES
from curate.connectors._textio.streams import ReadProblem, open_stream

SAMPLE_BYTES = 64 * 1024     # bytes looked at to guess an encoding
CHUNK_BYTES = 1 << 20        # bytes decoded at a time
HEAD_BYTES = 500             # bytes of an over-long line kept for its quarantine row
_UTF8_MULTI = re.compile(rb"[\xc2-\xf4][\x80-\xbf]")


class LineError(NamedTuple):
    """Why a line cannot be used: ``reason`` (``bad_encoding``, ``too_large``) and a detail."""

    reason: str
    detail: str

    def __str__(self) -> str:
        return self.detail


def _read_sample(stream: BinaryIO, n: int | None = None) -> tuple[bytes, ReadProblem | None]:
    """Up to ``n`` (default SAMPLE_BYTES) bytes, however short the stream's reads are, and the
    :class:`ReadProblem` that cut them short (what came before it is kept)."""
    n = SAMPLE_BYTES if n is None else n
    read = getattr(stream, "read1", stream.read)
    parts, size = [], 0
    try:
        while size < n:
            b = read(n - size)
            if not b:
                break
            parts.append(b)
            size += len(b)
    except ReadProblem as e:
        return b"".join(parts), e
    return b"".join(parts), None


class Block:
    """Consecutive physical lines: ``first`` is the 1-based number of ``lines[0]``; each text keeps
    its ``\\n``; ``errors`` maps the number of each unusable line to its :class:`LineError` (its
    text then holds U+FFFD or a placeholder); ``fallbacks`` counts lines decoded as UTF-8 in a
    legacy-encoded file; ``problem`` is set on an (empty) last block when the stream broke off.

    A block is built from its lines or from their concatenation (``text``); the other form is
    made on first use, so a reader that wants one string (the CSV fast path) never splits it.
    """

    __slots__ = ("first", "_lines", "_text", "_n", "errors", "fallbacks", "problem", "raw", "ends")

    def __init__(self, first: int, lines: list[str] | None = None,
                 errors: dict[int, LineError] | None = None, *, text: str | None = None,
                 fallbacks: int = 0, problem: ReadProblem | None = None, n: int = -1,
                 raw: bytes | None = None, ends: np.ndarray | None = None) -> None:
        self.first, self._lines, self._text, self.errors = first, lines, text, errors or {}
        self.fallbacks, self.problem = fallbacks, problem
        self._n = n                    # line count when known (counted in the bytes: faster)
        # the UTF-8 bytes ``text`` was decoded from (UTF-8 files only) and the offsets just past
        # each of their "\n": readers with a bytes fast path use them instead of re-encoding
        self.raw, self.ends = raw, ends

    @property
    def lines(self) -> list[str]:
        if self._lines is None:
            self._lines = _split_keep(self.text, "\n")
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
        if self._text is None:         # ``raw`` is checked UTF-8: decoding it cannot fail
            self._text = self.raw.decode("utf-8") if self.raw is not None else "".join(self._lines or [])
        return self._text

    def startswith(self, prefix: str) -> bool:
        """Whether the block's text starts with the ASCII ``prefix`` (without decoding it)."""
        if self.raw is not None and self._text is None:
            return self.raw.startswith(prefix.encode("ascii"))
        return self.text.startswith(prefix)


class Line:
    """One physical line: 1-based number, decoded text (``\\n`` kept), :class:`LineError` or None."""

    __slots__ = ("no", "text", "error")

    def __init__(self, no: int, text: str, error: LineError | None = None) -> None:
        self.no, self.text, self.error = no, text, error


def iter_blocks(fileobj: BinaryIO, locator: str, encoding: str = "auto", *,
                max_record_bytes: int = MAX_RECORD_BYTES,
                max_ratio: float | None = MAX_COMPRESSION_RATIO,
                info: dict[str, Any] | None = None) -> Iterator[Block]:
    """Decode ``fileobj`` into blocks of physical lines (split on ``\\n`` only).

    About 1 MiB is decoded at once; a block that fails is decoded line by line so only the
    undecodable lines are flagged. Compression is sniffed (:func:`open_stream`). ``info`` receives
    ``compression``, ``encoding`` and ``utf8_fallback_lines`` for the manifest.
    """
    info = {} if info is None else info
    try:
        stream, kind = open_stream(fileobj, locator, max_ratio)
    except ReadProblem as e:
        info["problem"] = e.reason
        yield Block(1, [], problem=e)
        return
    info["compression"] = kind or "none"
    sample, problem = _read_sample(stream)
    if problem is not None:
        info["problem"] = problem.reason
        stream = _Broken(problem)          # the sample is all there is; the problem comes last
    codec, skip = resolve_encoding(encoding, sample, locator)
    info["encoding"] = codec
    if not ascii_compatible(codec):
        yield from _iter_blocks_incremental(sample[skip:], stream, codec, locator, max_record_bytes)
        return
    fallback = encoding == "auto" and codec != "utf-8"
    fallbacks = 0
    for block in _split(sample[skip:], stream, codec, max_record_bytes, skip, fallback):
        if block.fallbacks:
            fallbacks += block.fallbacks
            info["utf8_fallback_lines"] = fallbacks
        bad = _mojibake_lines(block)
        if bad:
            info["mojibake_lines"] = info.get("mojibake_lines", 0) + bad
        yield block


# Characters that start UTF-8 text misread as cp1252/latin-1 ("Ã©", "â€”", "Ð¿"): a cheap
# block-level filter before ftfy's slower per-line check.
_MOJIBAKE_LEADS = ("Ã", "Â", "â€", "Ð", "Ñ", "Ø", "Ù", "Î", "Ï")
# the same leads as UTF-8 bytes (all start with 0xC3): one regex pass over a block's raw bytes is
# about 4× faster than nine substring scans of its text
_MOJIBAKE_UTF8 = re.compile(rb"\xc3[\x82\x83\x8e-\x91\x98\x99]|\xc3\xa2\xe2\x82\xac")


def _mojibake_lines(block: Block) -> int:
    """How many lines of ``block`` read as mojibake to ftfy (counted for the manifest; the
    ``clean`` step's ``fix_unicode`` repairs them)."""
    if block.raw is not None:
        if not _MOJIBAKE_UTF8.search(block.raw):
            return 0
    elif not any(c in block.text for c in _MOJIBAKE_LEADS):
        return 0
    from ftfy.badness import is_bad
    return sum(1 for ln in block.lines if any(c in ln for c in _MOJIBAKE_LEADS) and is_bad(ln))


class _Broken:
    """A stream that raises ``problem`` on every read (the rest of a stream that broke off)."""

    def __init__(self, problem: ReadProblem) -> None:
        self.problem = problem

    def read(self, n: int = -1) -> bytes:
        raise self.problem


def block_options(options: Any, info: dict[str, Any] | None) -> dict[str, Any]:
    """The keyword arguments of :func:`iter_blocks` taken from a reader's ``options``."""
    return dict(max_record_bytes=getattr(options, "max_record_bytes", MAX_RECORD_BYTES),
                max_ratio=getattr(options, "max_compression_ratio", MAX_COMPRESSION_RATIO), info=info)


def _split(data: bytes | None, stream: BinaryIO, codec: str, limit: int, offset: int,
           fallback: bool) -> Iterator[Block]:
    """The line splitter of :func:`iter_blocks`: ``pending`` holds the chunks of the unfinished last
    line (joined once, when its ``\\n`` arrives); past ``limit`` bytes the line is skipped."""
    no, pending, psize = 0, [], 0
    skipping, head, skipped = False, b"", 0
    problem = None
    read = getattr(stream, "read1", stream.read)     # read1: what one step gave, kept on a failure
    while True:
        if data is None:
            try:
                data = read(CHUNK_BYTES)
            except ReadProblem as e:
                problem, data = e, b""
        eof = not data
        if skipping:
            i = data.find(b"\n")
            if i < 0 and not eof:
                skipped += len(data)
                data = None
                continue
            end = len(data) if i < 0 else i + 1
            skipped += end
            yield _too_large(no + 1, head, skipped, limit, codec)
            no, offset, skipping = no + 1, offset + skipped, False
            data = data[end:]
            if not data and not eof:
                data = None
                continue
        cut = 0 if eof else data.rfind(b"\n") + 1
        if cut:
            body = b"".join(pending) + data[:cut] if pending else data[:cut]
            pending, psize = ([data[cut:]], len(data) - cut) if cut < len(data) else ([], 0)
            block = _decode_checked(body, codec, no + 1, offset, limit, fallback)
            yield block
            no, offset = no + len(block), offset + len(body)
        elif not eof:
            pending.append(data)
            psize += len(data)
        if psize > limit:                      # the unfinished line is already too long
            head, skipped, skipping = b"".join(pending)[:HEAD_BYTES], psize, True
            pending, psize = [], 0
        if eof:
            if pending:
                block = _decode_checked(b"".join(pending), codec, no + 1, offset, limit, fallback)
                yield block
                no += len(block)
            break
        data = None
    if problem is not None:
        yield Block(no + 1, [], problem=problem)


def _too_large(no: int, head: bytes, size: int, limit: int, codec: str) -> Block:
    """A one-line block standing for a line of ``size`` bytes over ``limit``: its text is the
    start of the line without quotes or line ends (so no CSV reader joins it to the next line)."""
    text = head[:HEAD_BYTES].decode(codec, errors="replace")
    text = text.translate({ord(c): None for c in "\"'\\\r\n"}) + " …\n"
    return Block(no, [text], {no: LineError(
        "too_large", f"record over {limit} bytes (max_record_bytes): {size} bytes skipped")})


def _decode_checked(body: bytes, codec: str, first: int, offset: int, limit: int,
                    fallback: bool) -> Block:
    """:func:`_decode_block`, with lines longer than ``limit`` bytes replaced by ``too_large``."""
    if len(body) <= limit:
        return _decode_block(body, codec, first, offset, fallback)
    ends = np.flatnonzero(np.frombuffer(body, dtype=np.uint8) == 10) + 1
    if not len(ends) or ends[-1] != len(body):
        ends = np.append(ends, len(body))
    starts = np.concatenate(([0], ends[:-1]))
    long = np.flatnonzero(ends - starts > limit)
    if not len(long):
        return _decode_block(body, codec, first, offset, fallback)
    parts, pos, no = [], 0, first
    for k in long.tolist():
        s, e = int(starts[k]), int(ends[k])
        if s > pos:
            parts.append(_decode_block(body[pos:s], codec, no, offset + pos, fallback))
            no += len(parts[-1])
        parts.append(_too_large(no, body[s:s + HEAD_BYTES], e - s, limit, codec))
        no, pos = no + 1, e
    if pos < len(body):
        parts.append(_decode_block(body[pos:], codec, no, offset + pos, fallback))
    return Block(first, [t for p in parts for t in p.lines], {k: v for p in parts for k, v in p.errors.items()},
                 fallbacks=sum(p.fallbacks for p in parts))


def iter_lines(fileobj: BinaryIO, locator: str, encoding: str = "auto", **kw: Any) -> Iterator[Line]:
    """Decode ``fileobj`` into :class:`Line` objects (see :func:`iter_blocks`)."""
    for block in iter_blocks(fileobj, locator, encoding, **kw):
        if block.problem is not None:
            raise block.problem
        err = block.errors.get
        for no, text in enumerate(block.lines, block.first):
            yield Line(no, text, err(no))


def _split_keep(text, nl):
    """Split on ``nl`` only (str.splitlines also splits on \\r, \\x1c, U+2028 ...), keeping it."""
    parts = text.split(nl)
    last = parts.pop()
    out = [p + nl for p in parts]
    if last:
        out.append(last)
    return out


def _decode_block(body: bytes, codec: str, first: int, offset: int, fallback: bool = False) -> Block:
    """Decode whole lines at once; if that fails (or, with ``fallback``, a legacy-codec block holds
    UTF-8 sequences), line by line: UTF-8 lines first when ``fallback``, bad lines flagged."""
    if codec == "utf-8" and _valid_utf8(body):        # decoded only if a reader asks for text
        ends = np.flatnonzero(np.frombuffer(body, dtype=np.uint8) == 10) + 1
        n = len(ends) + (1 if body and not body.endswith(b"\n") else 0)
        return Block(first, n=n, raw=body, ends=ends)
    if not fallback or body.isascii() or not _UTF8_MULTI.search(body):
        try:
            text = body.decode(codec)
        except UnicodeDecodeError:
            pass
        else:
            return Block(first, text=text)
    lines, errors, fallbacks = [], {}, 0
    for no, raw in enumerate(_split_keep(body, b"\n"), first):
        text = None
        if fallback and not raw.isascii():
            try:
                text = raw.decode("utf-8")
                fallbacks += 1
            except UnicodeDecodeError:
                pass
        if text is None:
            try:
                text = raw.decode(codec)
            except UnicodeDecodeError as e:
                errors[no] = LineError("bad_encoding", f"byte 0x{raw[e.start]:02x} at byte offset "
                                       f"{offset + e.start} (column {e.start + 1}): '{codec}' codec: {e.reason}")
                text = raw.decode(codec, errors="replace")
        lines.append(text)
        offset += len(raw)
    return Block(first, lines, errors, fallbacks=fallbacks)


def _valid_utf8(body: bytes) -> bool:
    """Whether ``body`` is valid UTF-8, checked by Arrow's vectorised validator without building
    a str (about 6× faster than ``bytes.decode``). Small bodies (and huge ones) say False: the
    plain decode decides, and a small file never loads Arrow (whose allocator reserves address
    space a process under ``RLIMIT_AS`` may not have)."""
    if not _ARROW_CHECK_BYTES <= len(body) < 1 << 31:
        return False
    import pyarrow as pa
    import pyarrow.compute as pc
    offsets = pa.py_buffer(np.array([0, len(body)], dtype=np.int32))
    arr = pa.Array.from_buffers(pa.binary(), 1, [None, offsets, pa.py_buffer(body)])
    try:
        pc.cast(arr, pa.string(), memory_pool=pa.system_memory_pool())
    except pa.ArrowInvalid:
        return False
    return True


_ARROW_CHECK_BYTES = 256 << 10     # bodies at least this long are checked by Arrow


def _iter_blocks_incremental(sample: bytes, stream: BinaryIO, codec: str, locator: str,
                             limit: int) -> Iterator[Block]:
    """Blocks of a codec that is not ASCII-compatible (UTF-16/32): decode the stream, then split.
    An undecodable byte or an over-long line ends the read with a problem block (lines cannot be
    re-synchronised)."""
    dec = codecs.getincrementaldecoder(codec)("strict")
    no, pending, data, consumed = 0, "", sample, 0
    while True:
        final = not data
        try:
            pending += dec.decode(data, final=final)
            if len(pending) > limit and "\n" not in pending:
                raise ReadProblem(locator, "too_large", f"line {no + 1} is over {limit} characters "
                                  "(max_record_bytes)")
        except UnicodeDecodeError as e:
            yield Block(no + 1, [], problem=ReadProblem(
                locator, "bad_encoding", f"cannot decode as {codec} near byte offset "
                f"{consumed + e.start}: {e.reason}"))
            return
        except ReadProblem as e:
            yield Block(no + 1, [], problem=e)
            return
        consumed += len(data)
        cut = len(pending) if final else pending.rfind("\n") + 1
        if cut:
            lines = _split_keep(pending[:cut], "\n")
            pending = pending[cut:]
            yield Block(no + 1, lines)
            no += len(lines)
        if final:
            break
        try:
            data = stream.read(CHUNK_BYTES)
        except ReadProblem as e:
            yield Block(no + 1, [], problem=e)
            return
