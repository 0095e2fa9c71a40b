"""Which codec a byte stream is in: BOMs, UTF-8 (tolerating a cut-off final character), else
charset-normalizer's guess, preferring cp1252 when it is nearly as clean."""
from __future__ import annotations

import codecs

from curate.errors import DataError


def utf8_like(sample: bytes) -> bool:
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
    if utf8_like(sample):
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


def resolve_encoding(encoding: str, sample: bytes, locator: str) -> tuple[str, int]:
    """The codec to use (``auto`` → :func:`detect_encoding`) and the BOM bytes to skip; an unknown
    codec name is a :class:`DataError` naming the file."""
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


def ascii_compatible(codec: str) -> bool:
    """True when ``codec`` encodes ``\\n`` and ASCII as themselves (lines can be split as bytes)."""
    try:
        return "\n".encode(codec) == b"\n" and "a\n".encode(codec) == b"a\n"
    except (UnicodeError, LookupError):
        return False

