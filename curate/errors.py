"""Errors that tell the user exactly where to look: file, line, key path, row."""
from __future__ import annotations


class CurateError(Exception):
    """Base class for every error curate raises on purpose."""


class PipelineFileError(CurateError):
    """A pipeline file is invalid. Formats as ``path:line keypath: message``."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 key: str | None = None) -> None:
        self.path, self.line, self.key, self.message = path, line, key, message
        where = ""
        if path:
            where = f"{path}:{line}" if line else str(path)
        if key:
            where = f"{where} {key}" if where else key
        super().__init__(f"{where}: {message}" if where else message)


class PipelineErrors(CurateError):
    """Several pipeline-file errors reported together (one per line in the message)."""

    def __init__(self, errors: list[PipelineFileError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class MissingEnvError(CurateError):
    """A ``${env:NAME}`` reference names a variable that is not set."""

    def __init__(self, name: str, where: str = "") -> None:
        self.name = name
        msg = f"environment variable {name} is not set"
        if where:
            msg = f"{where}: {msg}"
        super().__init__(f"{msg} (set it, e.g. `export {name}=...`, before running)")


class DataError(CurateError):
    """Input data cannot be used (missing column, unreadable file, ...). Names file and field."""


class StepError(CurateError):
    """A step failed or broke the accounting invariant."""
