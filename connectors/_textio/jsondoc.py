"""A JSON document holding an array of records (read whole, within ``max_document_bytes``)."""
from __future__ import annotations

import json
from typing import Any, BinaryIO, Iterator

import polars as pl

from curate.connectors._textio.encoding import resolve_encoding
from curate.connectors._textio.frames import BATCH_ROWS, Rejects, json_type, one_reject, records_frame, with_locators
from curate.connectors._textio.jsonvalue import MAX_DEPTH, BadValue, parse, too_deep
from curate.connectors._textio.lines import SAMPLE_BYTES
from curate.connectors._textio.options import MAX_COMPRESSION_RATIO, MAX_DOCUMENT_BYTES
from curate.connectors._textio.streams import ReadProblem, open_stream, read_exactly
from curate.errors import DataError
from curate.source import SourceBatch


def _read_document(fileobj: BinaryIO, locator: str, options: Any, info: dict[str, Any]) -> bytes:
    """The whole (decompressed) document; raises :class:`ReadProblem` past ``max_document_bytes``."""
    stream, kind = open_stream(fileobj, locator, getattr(options, "max_compression_ratio", MAX_COMPRESSION_RATIO))
    info["compression"] = kind or "none"
    cap = getattr(options, "max_document_bytes", MAX_DOCUMENT_BYTES)
    data = read_exactly(stream, cap + 1)
    if len(data) > cap:
        raise ReadProblem(locator, "too_large", f"the document is over {cap} bytes (max_document_bytes; "
                          "use JSON Lines for big inputs)")
    return data


def iter_json(fileobj: BinaryIO, locator: str, options: Any, origin: str, *,
              batch_rows: int = BATCH_ROWS, limit: int | None = None,
              info: dict[str, Any] | None = None) -> Iterator[SourceBatch]:
    """Parse one JSON document: an array of objects, or an object holding one under
    ``options.records_key``; locator ``<locator>:<index>`` (0-based).

    The document is read whole (JSON arrays cannot be streamed without a streaming parser).
    An unreadable, unparsable or undecodable document is one quarantined row (``bad_compression``,
    ``too_large``, ``invalid_json``, ``too_deep``, ``bad_encoding``; locator ``<locator>``); array
    items that are not objects are ``not_an_object``, items nested too deeply ``too_deep``.
    A missing ``records_key`` is a :class:`DataError`.
    """
    info = {} if info is None else info
    try:
        data = _read_document(fileobj, locator, options, info)
    except ReadProblem as e:
        yield SourceBatch(pl.DataFrame(), one_reject(locator, e.reason, e.detail, None, origin))
        return
    if not data.strip():
        return
    codec, skip = resolve_encoding(options.encoding, data[:SAMPLE_BYTES], locator)
    info["encoding"] = codec
    try:
        text = data[skip:].decode(codec)
    except UnicodeDecodeError as e:
        yield SourceBatch(pl.DataFrame(), one_reject(locator, "bad_encoding",
                                                     f"byte offset {e.start + skip}: {e.reason} (codec {codec})",
                                                     data[:500].decode(codec, "replace"), origin))
        return
    del data
    try:
        doc = parse(text, info, max_depth=None)          # items are checked one by one below
    except BadValue as e:
        yield SourceBatch(pl.DataFrame(), one_reject(locator, e.reason, e.detail, text, origin))
        return
    doc = _records(doc, getattr(options, "records_key", None), locator)
    n = 0
    for start in range(0, len(doc), batch_rows):
        rows, idx, rej = [], [], Rejects()
        for i in range(start, min(start + batch_rows, len(doc))):
            obj = doc[i]
            if not isinstance(obj, dict):
                rej.add(f"{locator}:{i}", "not_an_object", f"expected a JSON object, got {json_type(obj)}",
                        _dump(obj))
            elif too_deep(obj, MAX_DEPTH):
                rej.add(f"{locator}:{i}", "too_deep", f"nested more than {MAX_DEPTH} levels", None)
            else:
                rows.append(obj)
                idx.append(i)
                n += 1
                if limit is not None and n >= limit:
                    break
        yield SourceBatch(with_locators(records_frame(rows), locator, idx), rej.frame(origin))
        if limit is not None and n >= limit:
            break


def _dump(obj: Any) -> str:
    """The start of ``obj`` as JSON, for a quarantine row's ``raw``."""
    if too_deep(obj, MAX_DEPTH):
        return "(nested too deeply to show)"
    return json.dumps(obj, ensure_ascii=False)[:500]


def _records(doc: Any, key: str | None, locator: str) -> list:
    """The array of records in ``doc`` (under ``key`` when given); a :class:`DataError` if none."""
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
        raise DataError(f"{locator}: expected an array of records, got {json_type(doc)}")
    return doc
