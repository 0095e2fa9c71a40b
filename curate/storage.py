"""Storage, separate from format: where bytes live (a local path, ``s3://``, ``memory://``, any
fsspec URL), so every file source and output reads and writes the same way wherever the data is.

* :func:`path` turns a string into a path object: a :class:`pathlib.Path` for local paths, a
  ``upath.UPath`` (pathlib's API over fsspec) for URLs, so ``.name``, ``.parent``, ``/``,
  ``.with_name`` work the same on both.
* :func:`atomic_path` yields a *local* temporary file; when the block succeeds it is renamed over
  a local target, or uploaded in one ``put_file`` to a remote one (S3, GCS and Azure PUTs are
  atomic: readers never see half an object). Formats therefore write bytes once, locally, and the
  bytes stored are the same whatever the storage.
* :func:`expand` resolves a path, glob or list of them on any filesystem; :func:`open_read`
  opens one for reading; :func:`sha256`, :func:`size`, :func:`exists` work on both.

Credentials never go in pipeline files: fsspec backends read them from the environment
(``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``, ...). ``storage_options`` carries the rest (an S3
``endpoint_url``, ``anon``, a profile name).
"""
from __future__ import annotations

import glob as _glob
import gzip
import hashlib
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path, PurePath
from typing import IO, Any, BinaryIO, Iterator

from pydantic import BaseModel, Field, field_validator

from curate.errors import CurateError, DataError

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_LOCAL_PROTOCOLS = {"file", "local"}
#: storage_options keys that would put a secret into a pipeline file (and so the manifest).
_SECRET_KEYS = re.compile(r"(secret|password|passwd|token|credential|^key$|access_key|session)", re.I)
#: The extra that brings each remote filesystem (for the error when it is missing).
_EXTRA_FOR = {"s3": "s3", "s3a": "s3"}

AnyPath = Any        # pathlib.Path or upath.UPath
#: Stores without folders: a missing parent is a missing bucket/container, never created.
_OBJECT_STORES = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss", "r2"}


def _protocols(p: Any) -> tuple[str, ...]:
    proto = getattr(p, "protocol", "") or ""
    return tuple(proto) if isinstance(proto, (tuple, list)) else (proto,)


def is_url(p: str | os.PathLike | Any) -> bool:
    """True for a remote (non-``file://``) URL or a UPath on one."""
    proto = getattr(p, "protocol", None)
    if proto is not None and not isinstance(p, PurePath):
        return proto not in _LOCAL_PROTOCOLS and proto != ""
    m = _URL.match(str(p)) if isinstance(p, str) else None
    return bool(m) and m.group(1).lower() not in _LOCAL_PROTOCOLS


def _local(p: str) -> str:
    return p[len("file://"):] if p.lower().startswith("file://") else p


def check_options(options: dict[str, Any] | None, where: str = "storage_options") -> dict[str, Any]:
    """Refuse secrets in ``storage_options`` (they would be stored in the manifest)."""
    for k in options or {}:
        if _SECRET_KEYS.search(str(k)):
            raise DataError(f"{where}: {k!r} looks like a credential; set it in the environment "
                            "(e.g. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_PROFILE) instead "
                            "of the pipeline file")
    return dict(options or {})



class StorageOptions(BaseModel):
    """The ``storage_options`` field every file source and output shares (fsspec filesystem
    options; credential-looking keys are refused: credentials come from the environment)."""

    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Options for a URL's filesystem (fsspec), e.g. {endpoint_url: http://minio:9000} for "
                    "S3-compatible stores. Credentials come from the environment, never from here.")

    @field_validator("storage_options")
    @classmethod
    def _no_secrets(cls, v: dict[str, Any]) -> dict[str, Any]:
        try:
            return check_options(v)
        except Exception as e:  # noqa: BLE001 - surface as a pydantic error on this field
            raise ValueError(str(e)) from None

def path(p: str | os.PathLike | Any, storage_options: dict[str, Any] | None = None) -> AnyPath:
    """A path object for ``p``: ``Path`` when local, ``UPath`` when a URL (``~`` expanded)."""
    if not isinstance(p, (str, PurePath)):
        return p                                          # already a UPath
    if isinstance(p, PurePath):
        return Path(p)
    if not is_url(p):
        return Path(os.path.expanduser(_local(p)))
    import fsspec
    from upath import UPath
    try:
        fsspec.get_filesystem_class(_URL.match(p).group(1).lower())  # type: ignore[union-attr]
        return UPath(p, **(storage_options or {}))
    except (ImportError, ValueError) as e:
        proto = _URL.match(p).group(1).lower()  # type: ignore[union-attr]
        extra = _EXTRA_FOR.get(proto)
        hint = f"; install the [{extra}] extra: pip install 'curate-toolkit[{extra}]'" if extra else ""
        raise CurateError(f"{p}: no filesystem for {proto}:// ({e}){hint}") from None


def _missing_extra(e: ImportError, p: Any) -> CurateError:
    proto = getattr(p, "protocol", "")
    extra = _EXTRA_FOR.get(proto)
    hint = f"; install the [{extra}] extra: pip install 'curate-toolkit[{extra}]'" if extra else ""
    return CurateError(f"{p}: cannot reach {proto}:// storage ({e}){hint}")


# ----------------------------------------------------------------------------- reading
def expand(spec: str | list[str], what: str = "file", dirs: bool = False,
           storage_options: dict[str, Any] | None = None) -> list[AnyPath]:
    """Paths named by ``spec`` in order (globs sorted; duplicates dropped). Local paths stay as
    given, as strings (relative stays relative); URLs become UPaths. A glob matching nothing or a
    missing path is a :class:`DataError`."""
    out: dict[str, AnyPath] = {}
    for pat in [spec] if isinstance(spec, str) else spec:
        if is_url(pat):
            for p in _expand_remote(pat, what, dirs, storage_options):
                out.setdefault(str(p), p)
        else:
            for h in _expand_local(os.path.expanduser(_local(pat)), what, dirs):
                out.setdefault(h, h)
    return list(out.values())


def _expand_local(pat: str, what: str, dirs: bool) -> list[str]:
    if _glob.has_magic(pat):
        hits = sorted(h for h in _glob.glob(pat, recursive=True)
                      if (os.path.isdir(h) if dirs else os.path.isfile(h)))
        if not hits:
            raise DataError(f"glob {pat!r} matches no {what} (working directory: {os.getcwd()})")
        return hits
    if not os.path.exists(pat):
        raise DataError(f"{what} not found: {pat} (working directory: {os.getcwd()})")
    if dirs and not os.path.isdir(pat):
        raise DataError(f"{pat} is not a directory (expected a {what})")
    if not dirs and os.path.isdir(pat):
        raise DataError(f"{pat} is a directory; name files in it, e.g. {os.path.join(pat, '*')}")
    return [pat]


def _expand_remote(pat: str, what: str, dirs: bool, options: dict[str, Any] | None) -> list[AnyPath]:
    base = path(pat, options)
    fs = base.fs
    proto = base.protocol
    try:
        if _glob.has_magic(base.path):
            hits = sorted(h for h in fs.glob(base.path) if (fs.isdir(h) if dirs else fs.isfile(h)))
            if not hits:
                raise DataError(f"glob {pat!r} matches no {what}")
            return [path(_unstrip(proto, h), options) for h in hits]
        if fs.isfile(base.path):
            if dirs:
                raise DataError(f"{pat} is not a directory (expected a {what})")
            return [base]
        if fs.isdir(base.path):
            if dirs:
                return [base]
            raise DataError(f"{pat} is a directory; name files in it, e.g. {pat.rstrip('/')}/*")
    except ImportError as e:
        raise _missing_extra(e, base) from None
    except PermissionError as e:
        raise DataError(f"{pat}: access denied ({e}); check the credentials in the environment") from None
    raise DataError(f"{what} not found: {pat}")


def _unstrip(protocol: str | tuple, p: str) -> str:
    """fsspec's listings drop the scheme; put it back."""
    proto = protocol[0] if isinstance(protocol, (tuple, list)) else protocol
    return p if _URL.match(p) else f"{proto}://{p.lstrip('/')}"


@contextmanager
def open_read(p: AnyPath) -> Iterator[BinaryIO]:
    """Open ``p`` for binary reading (seekable; remote files read in blocks)."""
    if not is_url(p):
        with open(p, "rb") as f:
            yield f
        return
    try:
        f = p.open("rb")
    except ImportError as e:
        raise _missing_extra(e, p) from None
    with f:
        yield f


def stat_entries(paths: list[AnyPath]) -> list[tuple[str, int, str]]:
    """Sorted ``(path, size, version)`` of ``paths`` (files under folders included): the mtime
    locally, the ETag / mtime / checksum the store reports remotely. Cheap: no content read."""
    entries = []
    for p in paths:
        if not is_url(p):
            lp = Path(p)
            files = [lp] if lp.is_file() else sorted(q for q in lp.rglob("*") if q.is_file())
            for f in files:
                st = f.stat()
                entries.append((str(f), st.st_size, str(st.st_mtime_ns)))
            continue
        fs = p.fs
        infos = [fs.info(p.path)] if fs.isfile(p.path) else \
            [fs.info(f) for f in sorted(fs.find(p.path))]
        for info in infos:
            version = next((str(info[k]) for k in ("ETag", "etag", "md5Hash", "checksum", "mtime",
                                                   "LastModified", "last_modified", "created")
                            if info.get(k) is not None), "")
            entries.append((_unstrip(p.protocol, info["name"]), int(info.get("size") or 0), version))
    return sorted(entries)


# ----------------------------------------------------------------------------- writing
@contextmanager
def atomic_path(target: str | os.PathLike | AnyPath) -> Iterator[Path]:
    """Yield a local temp file for ``target``; on success it replaces a local target (rename)
    or is uploaded to a remote one in one ``put_file``. On failure nothing is left behind."""
    t = path(target) if isinstance(target, (str, PurePath)) else target
    if not is_url(t):
        from curate.io import atomic_path as local_atomic  # umask, disk-full errors
        with local_atomic(t) as tmp:
            yield tmp
        return
    fd, name = tempfile.mkstemp(prefix=".curate-", suffix="-" + t.name)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        put_file(tmp, t)
    finally:
        tmp.unlink(missing_ok=True)


def put_file(local: Path, target: AnyPath) -> None:
    """Upload ``local`` to remote ``target`` (its parent created where the store has folders)."""
    try:
        fs = target.fs
        try:
            fs.put_file(str(local), target.path)
        except FileNotFoundError:
            # a filesystem with real folders (sftp, local-like): make the parent, try again. Never on
            # object stores, where "making the parent" would create a bucket.
            if _OBJECT_STORES & set(_protocols(target)):
                raise
            fs.makedirs(target.parent.path, exist_ok=True)
            fs.put_file(str(local), target.path)
    except ImportError as e:
        raise _missing_extra(e, target) from None
    except PermissionError as e:
        raise CurateError(f"{target}: write denied ({e}); check the credentials in the environment") from None
    except FileNotFoundError as e:
        raise CurateError(f"{target}: cannot write: {e or 'the bucket or container does not exist'}") from None
    except OSError as e:
        raise CurateError(f"{target}: cannot write: {type(e).__name__}: {e}") from None


@contextmanager
def atomic_dir(target: str | os.PathLike | AnyPath) -> Iterator[Path]:
    """Yield a local temp folder for a folder ``target``; on success it replaces the target whole
    (a local rename, or: remote folder removed, then every file uploaded)."""
    t = path(target) if isinstance(target, (str, PurePath)) else target
    if not is_url(t):
        from curate.io import (
            atomic_dir as local_atomic_dir,  # umask-honouring, pid-named, swept
        )
        with local_atomic_dir(t) as tmp:
            yield tmp
        return
    tmp = Path(tempfile.mkdtemp(prefix=".curate-dir-"))
    try:
        yield tmp
        fs = t.fs
        if fs.exists(t.path):
            fs.rm(t.path, recursive=True)
        for f in sorted(q for q in tmp.rglob("*") if q.is_file()):
            put_file(f, t / f.relative_to(tmp).as_posix())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def files_under(p: AnyPath) -> list[AnyPath]:
    """Every file in folder ``p`` (sorted), local or remote."""
    if not is_url(p):
        return sorted(q for q in Path(p).rglob("*") if q.is_file())
    return [path(_unstrip(p.protocol, f), p.storage_options) for f in sorted(p.fs.find(p.path))]


@contextmanager
def gzip_writer(raw: IO[bytes]) -> Iterator[gzip.GzipFile]:
    """A gzip stream with a fixed header (no file name, mtime 0): same rows → same bytes, on
    any storage and at any time, so outputs hash the same and stay cached."""
    with gzip.GzipFile(fileobj=raw, mode="wb", filename="", mtime=0, compresslevel=6) as f:
        yield f


# ----------------------------------------------------------------------------- facts
def exists(p: Any) -> bool:
    """True when ``p`` exists; False also when the store cannot be asked (no extra, no access)."""
    p = path(p) if isinstance(p, (str, PurePath)) else p
    try:
        return p.exists()
    except (ImportError, OSError, CurateError):
        return False


def size(p: Any) -> int:
    p = path(p) if isinstance(p, (str, PurePath)) else p
    return int(p.stat().st_size)


def sha256(p: Any) -> str:
    """Hex sha256 of a local or remote file's bytes."""
    p = path(p) if isinstance(p, (str, PurePath)) else p
    h = hashlib.sha256()
    with open_read(p) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_bytes(p: Any) -> bytes:
    p = path(p) if isinstance(p, (str, PurePath)) else p
    with open_read(p) as f:
        return f.read()
