"""Options of the text and Parquet readers (pydantic models; a connector's config may inherit them)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_RECORD_BYTES = 16 << 20        # default bound on one record (line) in bytes
MAX_DOCUMENT_BYTES = 1 << 30       # default bound on a whole JSON document
MAX_COMPRESSION_RATIO = 1000.0     # default bound on decompressed / compressed bytes


class EncodingOptions(BaseModel):
    """How bytes become text, and the bounds that keep hostile input cheap."""

    model_config = ConfigDict(extra="forbid")
    encoding: str = Field(
        default="auto",
        description="Text encoding: `auto` (UTF-8, BOM-aware; else charset-normalizer's guess on the "
                    "first 64 KiB, with UTF-8 lines in a legacy-encoded file decoded as UTF-8) or a "
                    "Python codec name such as `latin-1`, `cp1252`, `utf-16`.")
    max_record_bytes: int = Field(
        default=MAX_RECORD_BYTES, ge=1024,
        description="Longest record (physical line) in bytes; a longer one is quarantined as "
                    "`too_large` after reading at most this many bytes of it (memory stays bounded).")
    max_compression_ratio: float | None = Field(
        default=MAX_COMPRESSION_RATIO, gt=1,
        description="For compressed input: stop with a `compression_ratio` quarantine once more than "
                    "64 MiB came out and output / input exceeds this ratio (a decompression bomb). "
                    "`null` turns the check off.")


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
    max_document_bytes: int = Field(
        default=MAX_DOCUMENT_BYTES, ge=1024,
        description="Largest document in bytes (it is read whole); a larger one is quarantined as "
                    "`too_large` after reading at most this many bytes.")


class ParquetOptions(BaseModel):
    """Parquet: read in row batches; no options beyond the common ones yet."""

    model_config = ConfigDict(extra="forbid")
