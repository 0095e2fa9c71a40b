"""What every file source shares: ``path`` (a path, glob, URL or list of them) resolved to files
through :mod:`curate.storage` (local disk, ``s3://``, ``memory://``, any fsspec URL), a cheap
fingerprint (path, size, mtime or ETag) and the loop that streams each file through a parser."""
from __future__ import annotations

from typing import Any, ClassVar, Iterator

from curate.connectors import _textio
from pydantic import Field

from curate import storage
from curate.io import fingerprint
from curate.source import Source, SourceBatch, SourceConfig


class FileSourceConfig(SourceConfig, storage.StorageOptions):
    """``path`` plus the options every source accepts."""

    path: str | list[str] = Field(
        description="A file path or glob (`data/*.csv`, `logs/**/*.jsonl`), a URL (`s3://bucket/x/*.jsonl`, "
                    "`memory://...`, any fsspec URL), or a list of them; relative paths are relative "
                    "to the working directory. gzip, bz2 and xz input (zstd with the `zstandard` "
                    "package) is recognised by its bytes, not its name, and decompressed on the fly.")


def expand_paths(spec: str | list[str], what: str = "file", dirs: bool = False,
                 storage_options: dict[str, Any] | None = None) -> list[Any]:
    """Files (or folders) named by ``spec`` in order (globs sorted; duplicates dropped), local or
    remote (see :func:`curate.storage.expand`)."""
    return storage.expand(spec, what=what, dirs=dirs, storage_options=storage_options)


def stat_fingerprint(paths: list[Any], config: dict[str, Any]) -> str:
    """Fingerprint of sorted (path, size, mtime or ETag) of ``paths`` (files under folders included)."""
    return fingerprint("files", [list(e) for e in storage.stat_entries(paths)], config)


class FileSource(Source):
    """Streams each matched file through ``fmt``'s parser from :mod:`curate.connectors._textio`."""

    Config: ClassVar[type[FileSourceConfig]] = FileSourceConfig
    fmt: ClassVar[str] = ""               # key of curate.connectors._textio.PARSERS
    batch_rows: ClassVar[int] = _textio.BATCH_ROWS

    def paths(self) -> list[Any]:
        return expand_paths(self.config.path, storage_options=self.config.storage_options)

    def fingerprint(self) -> str | None:
        return stat_fingerprint(self.paths(), self.raw_config)

    def locator(self, path: Any) -> str:
        return f"{self.fmt}:{path}"

    def describe(self) -> str:
        p = self.config.path
        return f"{self.origin}: {p if isinstance(p, str) else ', '.join(p)}"

    def read(self) -> Iterator[SourceBatch]:
        left = self.config.limit
        for path in self.paths():
            info = self.stats.setdefault("files", {}).setdefault(str(path), {})  # encoding etc.
            with storage.open_read(path) as f:
                for batch in _textio.iter_format(self.fmt, f, self.locator(path), self.config,
                                                 self.origin, batch_rows=self.batch_rows, limit=left,
                                                 info=info):
                    yield batch
                    if left is not None:
                        left -= batch.rows.height
            if left is not None and left <= 0:
                return
