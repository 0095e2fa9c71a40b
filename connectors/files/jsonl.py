"""Source ``jsonl``: one JSON object per line, types kept; locator ``jsonl:<path>:<line>``."""
from __future__ import annotations

from curate.connectors._textio import JsonlOptions
from curate.connectors.files.base import FileSource, FileSourceConfig
from curate.registry import register_source


class JsonlConfig(FileSourceConfig, JsonlOptions):
    """A JSON Lines source (also `.ndjson`, `.jsonl.gz`)."""


@register_source("jsonl")
class JsonlSource(FileSource):
    """JSON Lines files; invalid lines and non-objects are quarantined, blank lines skipped."""

    Config = JsonlConfig
    fmt = "jsonl"
