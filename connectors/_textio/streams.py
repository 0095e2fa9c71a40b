"""Bytes in: what a stream really is. Compression is sniffed from magic bytes (a name ending in
``.gz`` is checked, never trusted), decompressed with a bound on the expansion ratio, and a corrupt,
truncated or mislabelled stream becomes a :class:`ReadProblem` (one quarantined row naming the file,
or an error under ``strict: true``) instead of a codec traceback."""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib
from typing import Any, BinaryIO

from curate.errors import DataError

RATIO_GRACE = 64 << 20                 # decompressed bytes before the ratio bound applies
MAGIC = {"gzip": b"\x1f\x8b", "bz2": b"BZh", "xz": b"\xfd7zXZ\x00", "zstd": b"\x28\xb5\x2f\xfd"}
_BZ2_MARKERS = (b"1AY&SY", b"\x17rE8P\x90")
SUFFIXES = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd", ".zstd": "zstd"}


class ReadProblem(DataError):
    """The rest of a file cannot be read (``reason``: ``bad_compression``, ``compression_ratio``,
    ``too_large``); readers quarantine it as one row with ``detail``."""

    def __init__(self, locator: str, reason: str, detail: str) -> None:
        self.locator, self.reason, self.detail = locator, reason, detail
        super().__init__(f"{locator}: {reason}: {detail}")


def compression_named(name: str) -> str | None:
    """The compression a file name claims (``x.jsonl.gz`` → ``gzip``), or ``None``."""
    n = name.lower()
    return next((kind for suf, kind in SUFFIXES.items() if n.endswith(suf)), None)


def strip_compression(name: str) -> str:
    """``name`` without a compression suffix (``x.csv.gz`` → ``x.csv``)."""
    n = name.lower()
    suf = next((s for s in SUFFIXES if n.endswith(s)), "")
    return name[:len(name) - len(suf)] if suf else name


def sniff(head: bytes) -> str | None:
    """The compression whose magic bytes start ``head`` (10 bytes), or ``None``. bz2's magic is
    text ("BZh"), so its block or end-of-stream marker must follow too."""
    kind = next((kind for kind, magic in MAGIC.items() if head.startswith(magic)), None)
    if kind == "bz2" and not (head[3:4].isdigit() and head[4:10] in _BZ2_MARKERS):
        return None
    return kind


class _Counted(io.RawIOBase):
    """A raw stream over ``inner`` that counts the bytes read (the compressed size so far)."""

    def __init__(self, inner: BinaryIO) -> None:
        self.inner, self.n = inner, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self.inner.read(len(b))
        n = len(data)
        b[:n] = data
        self.n += n
        return n


class Chain(io.RawIOBase):
    """A read-only stream that first returns ``head`` and then the rest of ``tail``."""

    def __init__(self, head: bytes, tail: BinaryIO) -> None:
        self.head, self.tail = memoryview(head), tail

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if len(self.head):
            n = min(len(b), len(self.head))
            b[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        data = self.tail.read(len(b))
        b[:len(data)] = data
        return len(data)


class _Plain(io.RawIOBase):
    """An uncompressed stream: ``head`` (the sniffed bytes), then ``tail`` read straight through,
    each read one call on ``tail`` with no copy in between (a BufferedReader over a raw wrapper
    copies every chunk twice more)."""

    def __init__(self, head: bytes, tail: BinaryIO) -> None:
        self.head, self.tail = head, tail

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            out, self.head = self.head + self.tail.read(), b""
            return out
        if self.head:
            out, self.head = self.head[:n], self.head[n:]
            return out
        return self.tail.read(n)

    read1 = read

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)


def read_exactly(stream: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes, however short the stream's reads are (fewer only at the end)."""
    parts, size = [], 0
    while size < n:
        b = stream.read(min(n - size, 1 << 20))     # never ask for a huge buffer up front
        if not b:
            break
        parts.append(b)
        size += len(b)
    return b"".join(parts)


class Decompressed(io.RawIOBase):
    """Decompressed bytes of ``inner``; codec errors become ``bad_compression`` and an expansion
    past ``max_ratio`` (after :data:`RATIO_GRACE` bytes) ``compression_ratio`` :class:`ReadProblem`."""

    _ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError)

    def __init__(self, inner: BinaryIO, counted: _Counted, kind: str, locator: str,
                 max_ratio: float | None) -> None:
        self.inner, self.counted, self.kind, self.locator = inner, counted, kind, locator
        self.max_ratio, self.out = max_ratio, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        try:
            data = self.inner.read1(len(b))     # one step at a time: a failure loses little
        except self._ERRORS as e:
            raise ReadProblem(self.locator, "bad_compression",
                              f"{self.kind} stream is corrupt or truncated after {self.out} "
                              f"decompressed bytes ({type(e).__name__}: {e})") from None
        n = len(data)
        b[:n] = data
        self.out += n
        if self.max_ratio and self.out > RATIO_GRACE and self.out > self.max_ratio * max(self.counted.n, 1):
            raise ReadProblem(self.locator, "compression_ratio",
                              f"{self.counted.n} compressed bytes expanded to more than {self.out} "
                              f"(ratio over {self.max_ratio:g}; a decompression bomb? raise "
                              "max_compression_ratio if the file is genuine)")
        return n


def _decompressor(kind: str, raw: BinaryIO, locator: str) -> BinaryIO:
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if kind == "bz2":
        return bz2.BZ2File(raw, mode="rb")            # type: ignore[return-value]
    if kind == "xz":
        return lzma.LZMAFile(raw, mode="rb")          # type: ignore[return-value]
    try:
        import zstandard
    except ImportError:
        raise ReadProblem(locator, "bad_compression",
                          "zstd-compressed, and the `zstandard` package is not installed "
                          "(pip install zstandard)") from None
    return zstandard.ZstdDecompressor().stream_reader(raw)  # type: ignore[return-value]


def open_stream(fileobj: BinaryIO, locator: str, max_ratio: float | None = None) -> tuple[BinaryIO, str | None]:
    """``fileobj`` decompressed when its first bytes are gzip, bz2, xz or zstd magic; returns
    (stream, compression or ``None``). A name claiming a compression the bytes do not have is a
    ``bad_compression`` :class:`ReadProblem` naming both."""
    counted = _Counted(fileobj)
    head = read_exactly(counted, 10)                 # type: ignore[arg-type]
    kind, named = sniff(head), compression_named(locator)
    if named and kind is None:
        what = "empty" if not head else f"starts with {head!r}"
        raise ReadProblem(locator, "bad_compression",
                          f"the name says {named} but the content is not {named}-compressed ({what}); "
                          "rename the file or compress it")
    if kind is None:
        return _Plain(head, fileobj), None            # type: ignore[return-value]
    raw: BinaryIO = io.BufferedReader(Chain(head, counted), buffer_size=1 << 16)  # type: ignore[arg-type]
    inner = _decompressor(kind, raw, locator)
    return io.BufferedReader(Decompressed(inner, counted, kind, locator, max_ratio),  # type: ignore[arg-type]
                             buffer_size=1 << 20), kind
