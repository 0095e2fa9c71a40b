"""What every file source shares: ``path`` (a path, glob or list of them) resolved to files,
a cheap fingerprint (path, size, mtime) and the loop that streams each file through a parser."""
from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any, ClassVar, Iterator

from pydantic import Field

from curate.cache import fingerprint
from curate.errors import DataError
from curate.source import Source, SourceBatch, SourceConfig
from curate.connectors import _textio


class FileSourceConfig(SourceConfig):
    """``path`` plus the options every source accepts."""

    path: str | list[str] = Field(
        description="A file path or glob (`data/*.csv`, `logs/**/*.jsonl`), or a list of them; "
                    "relative paths are relative to the working directory. `.gz` files are "
                    "decompressed on the fly.")


def expand_paths(spec: str | list[str], what: str = "file", dirs: bool = False) -> list[str]:
    """Files named by ``spec`` in order (globs sorted; duplicates dropped), as given (relative
    stays relative). A glob matching nothing or a missing path is a :class:`DataError`."""
    out: dict[str, None] = {}
    for pat in [spec] if isinstance(spec, str) else spec:
        pat = os.path.expanduser(pat)
        if glob.has_magic(pat):
            hits = sorted(h for h in glob.glob(pat, recursive=True)
                          if (os.path.isdir(h) if dirs else os.path.isfile(h)))
            if not hits:
                raise DataError(f"glob {pat!r} matches no {what} (working directory: {os.getcwd()})")
            out.update(dict.fromkeys(hits))
            continue
        if not os.path.exists(pat):
            raise DataError(f"{what} not found: {pat} (working directory: {os.getcwd()})")
        if dirs and not os.path.isdir(pat):
            raise DataError(f"{pat} is not a directory (expected a {what})")
        if not dirs and os.path.isdir(pat):
            raise DataError(f"{pat} is a directory; name files in it, e.g. {os.path.join(pat, '*')}")
        out[pat] = None
    return list(out)


def stat_fingerprint(paths: list[str], config: dict[str, Any]) -> str:
    """Fingerprint of sorted (path, size, mtime_ns) of ``paths`` (files under folders included)."""
    entries = []
    for p in paths:
        files = [Path(p)] if os.path.isfile(p) else sorted(q for q in Path(p).rglob("*") if q.is_file())
        for f in files:
            st = f.stat()
            entries.append((str(f), st.st_size, st.st_mtime_ns))
    return fingerprint("files", sorted(entries), config)


class FileSource(Source):
    """Streams each matched file through ``fmt``'s parser from :mod:`curate.connectors._textio`."""

    Config: ClassVar[type[FileSourceConfig]] = FileSourceConfig
    fmt: ClassVar[str] = ""               # key of curate.connectors._textio.PARSERS
    batch_rows: ClassVar[int] = _textio.BATCH_ROWS

    def paths(self) -> list[str]:
        return expand_paths(self.config.path)

    def fingerprint(self) -> str | None:
        return stat_fingerprint(self.paths(), self.raw_config)

    def locator(self, path: str) -> str:
        return f"{self.fmt}:{path}"

    def describe(self) -> str:
        p = self.config.path
        return f"{self.origin}: {p if isinstance(p, str) else ', '.join(p)}"

    def read(self) -> Iterator[SourceBatch]:
        left = self.config.limit
        for path in self.paths():
            with open(path, "rb") as f:
                for batch in _textio.iter_format(self.fmt, f, self.locator(path), self.config,
                                                 self.origin, batch_rows=self.batch_rows, limit=left):
                    yield batch
                    if left is not None:
                        left -= batch.rows.height
            if left is not None and left <= 0:
                return
