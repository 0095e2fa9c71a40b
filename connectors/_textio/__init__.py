"""Streaming parsers shared by file-like connectors (local files, S3 objects, HTTP bodies).

Every ``iter_*`` function takes a *binary* file object, a locator prefix (``csv:data/x.csv``,
``s3://bucket/key.jsonl``), an options object and an optional ``info`` dict (filled with the
file's ``compression``, ``encoding`` and value notes, for the manifest), and yields
:class:`curate.source.SourceBatch` objects of at most ``batch_rows`` rows, so memory stays bounded
however large the input is. Row locators are ``<prefix>:<n>`` (a 1-based physical line for
CSV/TSV/JSONL, a 0-based index for JSON arrays and Parquet). Malformed rows are quarantined with a
``reason``, a ``detail`` and the ``raw`` text (first 500 characters); they never stop the read.

Modules, one concept each: :mod:`.options` (pydantic options), :mod:`.streams` (compression
sniffing, decompression bounds), :mod:`.encoding` (codec guessing), :mod:`.lines` (bytes →
bounded lines), :mod:`.frames` (rejects, locators, JSON objects → frames), :mod:`.jsonvalue`
(exact, bounded JSON values), :mod:`.delimited`, :mod:`.jsonl`, :mod:`.jsondoc`, :mod:`.parquet`.

Reuse from another connector::

    from curate.connectors._textio import CsvOptions, iter_csv
    with s3.open(key) as body:                     # any binary file object
        yield from iter_csv(body, f"s3://{bucket}/{key}", CsvOptions(delimiter=";"), origin)
"""
from __future__ import annotations

from typing import Any, BinaryIO, Iterator

from curate.connectors._textio.delimited import iter_csv
from curate.connectors._textio.encoding import detect_encoding
from curate.connectors._textio.frames import BATCH_ROWS, RAW, RAW_CHARS, Rejects, records_frame, with_locators
from curate.connectors._textio.jsondoc import iter_json
from curate.connectors._textio.jsonl import iter_jsonl
from curate.connectors._textio.lines import Block, Line, LineError, iter_blocks, iter_lines
from curate.connectors._textio.options import (CsvOptions, EncodingOptions, JsonlOptions, JsonOptions,
                                               ParquetOptions, TsvOptions)
from curate.connectors._textio.parquet import iter_parquet
from curate.connectors._textio.streams import ReadProblem, open_stream, strip_compression
from curate.errors import DataError
from curate.source import SourceBatch

__all__ = ["BATCH_ROWS", "RAW", "RAW_CHARS", "Block", "CsvOptions", "EncodingOptions", "JsonOptions",
           "JsonlOptions", "Line", "LineError", "OPTIONS", "PARSERS", "ParquetOptions", "ReadProblem",
           "Rejects", "TsvOptions", "detect_encoding", "format_for", "iter_blocks", "iter_csv",
           "iter_format", "iter_json", "iter_jsonl", "iter_lines", "iter_parquet", "open_stream",
           "records_frame", "with_locators"]

PARSERS = {"csv": iter_csv, "tsv": iter_csv, "jsonl": iter_jsonl, "ndjson": iter_jsonl,
           "json": iter_json, "parquet": iter_parquet}
OPTIONS = {"csv": CsvOptions, "tsv": TsvOptions, "jsonl": JsonlOptions, "ndjson": JsonlOptions,
           "json": JsonOptions, "parquet": ParquetOptions}


def format_for(name: str) -> str | None:
    """The format a file name implies (``x.csv.gz`` → ``csv``), or ``None``."""
    n = strip_compression(name.lower())
    ext = n.rsplit(".", 1)[-1] if "." in n.rsplit("/", 1)[-1] else ""
    return {"txt": None, "pq": "parquet"}.get(ext, ext if ext in PARSERS else None)


def iter_format(fmt: str, fileobj: BinaryIO, locator: str, options: Any, origin: str, *,
                batch_rows: int = BATCH_ROWS, limit: int | None = None,
                info: dict[str, Any] | None = None) -> Iterator[SourceBatch]:
    """Dispatch to the parser for ``fmt`` (``csv``, ``tsv``, ``jsonl``, ``json``, ``parquet``);
    ``info`` receives what the manifest should say about the file."""
    try:
        parser = PARSERS[fmt]
    except KeyError:
        raise DataError(f"{locator}: unknown format {fmt!r}; known: {', '.join(sorted(PARSERS))}") from None
    return parser(fileobj, locator, options, origin, batch_rows=batch_rows, limit=limit, info=info)
