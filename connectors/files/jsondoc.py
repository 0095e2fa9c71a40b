"""Source ``json``: a JSON document holding an array of objects (optionally under
``records_key``); locator ``json:<path>:<index>`` with the 0-based array index."""
from __future__ import annotations

from curate.connectors._textio import JsonOptions
from curate.connectors.files.base import FileSource, FileSourceConfig
from curate.registry import register_source


class JsonConfig(FileSourceConfig, JsonOptions):
    """A JSON-document source."""


@register_source("json")
class JsonSource(FileSource):
    """JSON files (read whole); e.g. Natural Instructions tasks with `records_key: Instances`."""

    Config = JsonConfig
    fmt = "json"
