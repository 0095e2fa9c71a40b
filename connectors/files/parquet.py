"""Source ``parquet``: Parquet files read in row batches (pyarrow); locator
``parquet:<path>:<row>`` with the 0-based row number in that file."""
from __future__ import annotations

from curate.connectors.files.base import FileSource, FileSourceConfig
from curate.registry import register_source


class ParquetConfig(FileSourceConfig):
    """A Parquet source: path(s) and the common mapping options."""


@register_source("parquet")
class ParquetSource(FileSource):
    """Parquet files, streamed with ``ParquetFile.iter_batches``; column types kept."""

    Config = ParquetConfig
    fmt = "parquet"
