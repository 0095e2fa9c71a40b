"""Storage helpers every layer may use: atomic writes (temp file + rename, honouring the umask),
content hashing and fingerprints, stale temp-file sweeping, and masking credentials in text.

Connectors and schemas import these from here, never from the engine's cache module.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from curate import __version__
from curate.errors import CurateError


class StorageError(CurateError):
    """Writing failed for a reason of the disk, not the data: full, read-only, no permission."""


# ------------------------------------------------------------------------------ hashing
def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


def fingerprint(*parts: Any) -> str:
    """sha256 over the canonical JSON of ``parts`` plus the curate version (first 20 hex chars)."""
    h = hashlib.sha256(canonical_json([__version__, *parts]).encode())
    return h.hexdigest()[:20]


def sha256_file(path: Path | str) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------------------ atomic writes
# Temp files are named ``.<final name>.<pid>-<random>.tmp`` beside the target, so a later run can
# tell its own leftovers (pid dead) from another live process's work in progress.
TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-(?P<tok>[0-9a-f]{8})\.(tmp|old)$")
_LEGACY_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.[A-Za-z0-9_]{8}\.tmp$")   # mkstemp names of old runs


def temp_name(path: Path) -> Path:
    return path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"


def storage_error(e: OSError, path: Path | str, what: str = "cannot write") -> StorageError:
    """A one-line error naming the path and the cause in words (disk full, not writable, ...)."""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        cause = "disk full (no space left on the device); free space or choose another folder"
    elif e.errno == errno.EROFS:
        cause = "not writable: the file system is read-only; choose another folder"
    elif e.errno in (errno.EACCES, errno.EPERM):
        cause = "not writable: permission denied; fix the folder's permissions or choose another"
    else:
        cause = f"{errno.errorcode.get(e.errno or 0, 'OSError')}: {e.strerror or e}"
    return StorageError(f"{what} {path}: {cause}")


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temp path beside ``path``; rename it over ``path`` only if the block succeeds.

    The temp file is created with mode ``0o666`` so the kernel applies the umask (``mkstemp``
    would make it 0600 whatever the umask). A writer that recreates the file keeps that mode too.
    An ``OSError`` of the disk (full, read-only, denied) becomes a :class:`StorageError` naming
    ``path``; the temp file is removed and nothing is left at ``path``. A URL (``s3://``,
    ``memory://``, a UPath) is written through :func:`curate.storage.atomic_path` (temp + upload).
    """
    from curate import storage
    if storage.is_url(path):
        with storage.atomic_path(path) as remote_tmp:
            yield remote_tmp
        return
    path = Path(path)
    tmp = temp_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        mode = os.fstat(fd).st_mode & 0o777
        os.close(fd)
    except OSError as e:
        raise storage_error(e, path) from None
    try:
        yield tmp
        if tmp.exists() and (tmp.stat().st_mode & 0o777) != mode:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except Exception as e:  # noqa: BLE001 - writers (polars, pyarrow) wrap ENOSPC in their own errors
        err = _as_storage_error(e, path)
        if err is not None:
            raise err from None
        raise
    finally:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        except OSError:
            pass


def _as_storage_error(e: BaseException, path: Path) -> StorageError | None:
    """A full disk, read-only folder or denied write as one clear error naming ``path`` (None for
    anything else); polars and pyarrow wrap ENOSPC in their own exception types."""
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM):
        return storage_error(e, path)
    if _looks_like_disk_full(e):
        return StorageError(f"cannot write {path}: disk full (no space left on the device); "
                            "free space or choose another folder")
    return None


@contextmanager
def atomic_dir(path: Path | str) -> Iterator[Path]:
    """Yield a temp folder beside folder ``path``; on success it replaces ``path`` whole.

    Created with mode ``0o777`` so the umask applies (``mkdtemp`` makes 0700). The old folder is
    renamed aside, the new one renamed in, the old one removed; on failure nothing changes at
    ``path``. Temp names carry the pid, so :func:`sweep_temp_files` removes a killed run's."""
    import shutil
    path = Path(path)
    tmp = temp_name(path)
    old = path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.old"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(tmp, 0o777)
    except OSError as e:
        raise storage_error(e, path) from None
    moved = False
    try:
        yield tmp
        if path.exists():
            os.replace(path, old)
            moved = True
        os.replace(tmp, path)
    except Exception as e:  # noqa: BLE001
        if moved and not path.exists():
            os.replace(old, path)             # put the previous folder back
            moved = False
        err = _as_storage_error(e, path)
        if err is not None:
            raise err from None
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if moved:
            shutil.rmtree(old, ignore_errors=True)


def _looks_like_disk_full(e: BaseException) -> bool:
    text = f"{type(e).__name__}: {e}".lower()
    return ("no space left" in text or "enospc" in text or "disk quota" in text
            or "os error 28" in text)


def write_bytes(data: bytes, path: Path | str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def write_text(text: str, path: Path | str) -> None:
    write_bytes(text.encode("utf-8"), path)


def write_json(obj: Any, path: Path | str) -> None:
    write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n", path)


def write_parquet(df, path: Path | str) -> None:
    """A polars DataFrame as Parquet, atomically."""
    with atomic_path(path) as tmp:
        df.write_parquet(tmp)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True                   # exists, owned by someone else
    return True


def sweep_temp_files(dirs: Iterable[Path | str], started: float | None = None,
                     legacy_age_s: float = 3600.0) -> list[Path]:
    """Remove temp files of our own naming left by killed writers; returns what was removed.

    Only ``.NAME.<pid>-<hex8>.tmp`` / ``.old`` files and folders (from :func:`atomic_path` and
    :func:`atomic_dir`) whose pid is no longer running (or is this process, for ones older than
    ``started``), and old-style ``.NAME.<8 chars>.tmp`` files last touched more than
    ``legacy_age_s`` before ``started``. Nothing else is touched; ``dirs`` are not recursed.
    """
    started = time.time() if started is None else started
    me = os.getpid()
    removed: list[Path] = []
    for d in {Path(x) for x in dirs}:
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for ent in entries:
            if not ent.name.startswith(".") or not ent.name.endswith((".tmp", ".old")):
                continue
            try:
                is_dir = ent.is_dir(follow_symlinks=False)
                if not (is_dir or ent.is_file(follow_symlinks=False)):
                    continue
                mtime = ent.stat(follow_symlinks=False).st_mtime
            except OSError:
                continue
            m = TEMP_RE.match(ent.name)
            if m:
                pid = int(m.group("pid"))
                stale = (not _pid_alive(pid)) or (pid == me and mtime < started)
            else:
                stale = (bool(_LEGACY_TEMP_RE.match(ent.name)) and not is_dir
                         and mtime < started - legacy_age_s)
            if stale:
                try:
                    if is_dir:
                        import shutil
                        shutil.rmtree(ent.path)
                    else:
                        os.unlink(ent.path)
                    removed.append(Path(ent.path))
                except OSError:
                    pass
    return removed


# ------------------------------------------------------------------------------ credentials
MASK = "***"
# scheme://userinfo@host...: userinfo runs to the LAST '@' before the next '/', '?', '#' or space
# after it, so a raw '@', ':' or '#' inside a password is masked whole.
_ANY_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<info>[^\s'\"]*)@(?P<rest>[^\s@'\"]*)")
# ``password=...`` (DSNs, query strings) and ``"password": "..."`` (quoted JSON/YAML values); an
# unquoted ``password: Field required`` in a config error is a key name, not a secret.
_KEY_VALUE = re.compile(r"(?i)\b(password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|"
                        r"secret[_-]?access[_-]?key|aws_secret_access_key)"
                        r"([\"']?\s*=\s*|[\"']?\s*:\s*(?=[\"']))(\"[^\"]*\"|'[^']*'|[^\s,;&'\"]+)")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}")
_SECRET_ENV = re.compile(r"(?i)(password|passwd|secret|token|api_?key|access_key|credential)")


def mask_url(url: str) -> str:
    """``url`` with everything between ``://`` and the last ``@`` before the host replaced.

    The user name is kept when it is clearly separate (``user:***@host``); a URL that does not
    parse is masked the same way, by text, never shown raw.
    """
    return mask_secrets(url)


def _mask_userinfo(m: re.Match) -> str:
    info = m.group("info")
    user, sep, _ = info.partition(":")
    keep = user if sep and "/" not in user else ""
    return f"{m.group('scheme')}{keep + ':' if keep else ''}{MASK}@{m.group('rest')}"


_AUTHORITY = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://(?P<info>.*)@[^@]*$", re.S)


def url_secrets(url: str | None) -> list[str]:
    """The password written in ``url`` (up to its last ``@``) and its pieces: a password with a raw
    ``@``, ``:``, ``/`` or ``#`` is split by URL parsers, and a piece may surface in an error."""
    m = _AUTHORITY.match(url or "")
    if not m or ":" not in m.group("info"):
        return []
    pw = m.group("info").partition(":")[2]
    pieces = [p for p in re.split(r"[@:/#?]", pw) if len(p) >= 4]
    return [pw, *pieces] if pw else pieces


def secret_values(extra: Iterable[str | None] = ()) -> list[str]:
    """Values worth hiding: ``extra`` plus environment variables whose names say they are secret."""
    vals = [v for v in extra if v]
    for k, v in os.environ.items():
        if v and len(v) >= 6 and _SECRET_ENV.search(k):
            vals.append(v)
    return sorted(set(vals), key=len, reverse=True)


def mask_secrets(text: str, extra: Iterable[str | None] = (), _values: list[str] | None = None) -> str:
    """``text`` with URL userinfo, ``password=...``-style pairs and known secret values masked.

    ``extra`` are literal secrets to hide (a password, an API key); each is also hidden in its
    URL-quoted form. Values of environment variables named like secrets are hidden too.
    """
    if not text:
        return text
    from urllib.parse import quote, quote_plus
    out = text
    for v in (secret_values(extra) if _values is None else _values):
        for form in {v, quote(v, safe=""), quote_plus(v)}:
            if len(form) >= 3:
                out = out.replace(form, MASK)
    out = _ANY_USERINFO.sub(_mask_userinfo, out)
    out = _KEY_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", out)
    return _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", out)


def mask_obj(obj: Any, extra: Iterable[str | None] = (), _values: list[str] | None = None) -> Any:
    """Every string inside ``obj`` (dicts, lists) masked with :func:`mask_secrets`."""
    values = secret_values(extra) if _values is None else _values
    if isinstance(obj, str):
        return mask_secrets(obj, _values=values)
    if isinstance(obj, dict):
        return {k: mask_obj(v, _values=values) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [mask_obj(v, _values=values) for v in obj]
    return obj


# ------------------------------------------------------------------------------ locks
class LockedError(CurateError):
    """Another process holds the lock (its pid is in the message and in ``holder``)."""

    def __init__(self, message: str, holder: int | None) -> None:
        super().__init__(message)
        self.holder = holder


def _lock_holder(fd: int) -> int | None:
    """The pid written in a lock file (retried briefly: the holder writes it just after locking)."""
    for _ in range(20):
        try:
            text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
        except OSError:
            return None
        if text.isdigit():
            return int(text)
        time.sleep(0.01)
    return None


@contextmanager
def exclusive_lock(path: Path | str, what: str, wait: bool = False,
                   on_wait: Any = None) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (holder's pid written in it) for the block.

    Held by another process: raise :class:`LockedError` naming its pid, or with ``wait`` call
    ``on_wait(pid)`` and block until it is free. The kernel drops the lock when the holder exits,
    even on ``kill -9``, so a stale lock file never blocks a later run.
    """
    try:
        import fcntl
    except ImportError:            # no flock (Windows): run unlocked
        yield
        return
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        raise storage_error(e, path, "cannot create the lock file") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_holder(fd)
            who = f"pid {holder}" if holder else "another process (pid not yet written)"
            if not wait:
                raise LockedError(f"{what} is already running in {who} (lock {path}); wait for it to "
                                  "finish, or pass --wait to queue behind it", holder) from None
            if on_wait is not None:
                on_wait(holder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as e:
            if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                raise storage_error(e, path, "cannot lock") from None
            import logging                # a file system without flock (some NFS): run unlocked
            logging.getLogger("curate.io").warning("%s: no file locking here (%s); running unlocked",
                                                   path, e.strerror)
            yield
            return
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)              # releases the lock
