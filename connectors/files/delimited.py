"""Sources ``csv`` and ``tsv``: delimited text, every value a string.

Locator ``csv:<path>:<line>`` (the 1-based physical line where the record starts) for both, since
a TSV is a CSV dialect. Malformed records are quarantined (see :func:`curate.connectors._textio.iter_csv`).
"""
from __future__ import annotations

from curate.connectors._textio import CsvOptions, TsvOptions
from curate.connectors.files.base import FileSource, FileSourceConfig
from curate.registry import register_source


class CsvConfig(FileSourceConfig, CsvOptions):
    """A CSV source: path(s), dialect, encoding and the common mapping options."""


class TsvConfig(FileSourceConfig, TsvOptions):
    """A TSV source: like csv, tab-separated and unquoted by default."""


@register_source("csv")
class CsvSource(FileSource):
    """Comma-separated (or any single-character-delimited) text files."""

    Config = CsvConfig
    fmt = "csv"


@register_source("tsv")
class TsvSource(FileSource):
    """Tab-separated text files; quotes are ordinary text unless `quoting: minimal`."""

    Config = TsvConfig
    fmt = "tsv"

    def locator(self, path: str) -> str:
        return f"csv:{path}"
