"""The per-step Parquet cache and resumable shards. Every cached Parquet file has its sha256 in
the entry's metadata and is verified before use: a truncated or corrupted entry is logged and
recomputed, never read. Atomic writes and hashing live in :mod:`curate.io` (re-exported here)."""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import polars as pl

from curate.io import (atomic_path, canonical_json, fingerprint, sha256_file, write_json,  # noqa: F401
                       write_parquet, write_text)

log = logging.getLogger("curate.cache")


def frame_fingerprint(df: pl.DataFrame) -> str:
    """Fingerprint of a table's content (stable across runs and processes)."""
    h = hashlib.sha256()
    h.update(canonical_json(df.schema and {k: str(v) for k, v in df.schema.items()}).encode())
    if df.height:
        h.update(df.write_ndjson().encode())
    return h.hexdigest()[:20]


def _verify(files: dict[str, str], folder: Path, what: str) -> str | None:
    """None when every file has its recorded sha256; else why not (missing, size, checksum)."""
    for name, digest in files.items():
        path = folder / name
        try:
            actual = sha256_file(path)
        except OSError as e:
            return f"{what}: {path} cannot be read ({e.strerror or e})"
        if actual != digest:
            return f"{what}: {path} does not match its recorded sha256 (truncated or corrupted)"
    return None


class StepCache:
    """Cached result of one step (or the sources) under ``root/<label>-<fingerprint>/``."""

    def __init__(self, root: Path, label: str, fp: str) -> None:
        self.dir = Path(root) / f"{label}-{fp}"
        self.fp = fp
        self._verified: bool | None = None
        self.invalid: str | None = None     # why an existing entry was found bad and dropped

    @property
    def done(self) -> bool:
        """True when the entry is complete and every Parquet file matches its checksum. A bad entry
        is logged, its marker removed, and reported as not done, so the step is recomputed."""
        if self._verified is not None:
            return self._verified
        meta_path = self.dir / "meta.json"
        if not meta_path.exists():
            return False
        why = None
        try:
            meta = json.loads(meta_path.read_text())
            files = meta.get("_files")
            if not isinstance(files, dict) or "kept.parquet" not in files:
                why = f"cache entry {self.dir} has no checksums (written by an older curate)"
            else:
                why = _verify(files, self.dir, "cache entry")
        except (OSError, ValueError) as e:
            why = f"cache entry {self.dir}: meta.json is unreadable ({e})"
        if why:
            log.warning("%s; recomputing", why)
            self.invalid = why
            meta_path.unlink(missing_ok=True)
            for name in ("kept.parquet", "rejected.parquet"):
                (self.dir / name).unlink(missing_ok=True)
        self._verified = why is None
        return self._verified

    def load(self) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]]:
        meta = self.meta()
        kept = pl.read_parquet(self.dir / "kept.parquet")
        rej_path = self.dir / "rejected.parquet"
        rejected = pl.read_parquet(rej_path) if rej_path.exists() else pl.DataFrame()
        return kept, rejected, meta

    def meta(self) -> dict[str, Any]:
        meta = json.loads((self.dir / "meta.json").read_text())
        meta.pop("_files", None)
        return meta

    def save(self, kept: pl.DataFrame, rejected: pl.DataFrame, meta: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "meta.json").unlink(missing_ok=True)     # incomplete until written again
        files = {}
        write_parquet(kept, self.dir / "kept.parquet")
        files["kept.parquet"] = sha256_file(self.dir / "kept.parquet")
        if rejected.width:
            write_parquet(rejected, self.dir / "rejected.parquet")
            files["rejected.parquet"] = sha256_file(self.dir / "rejected.parquet")
        else:
            (self.dir / "rejected.parquet").unlink(missing_ok=True)
        write_json({**meta, "_files": files}, self.dir / "meta.json")  # written last: marks the entry complete
        self._verified = True

    @property
    def scratch(self) -> Path:
        p = self.dir / "work"
        p.mkdir(parents=True, exist_ok=True)
        return p

    def clear(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        self._verified = None


class ShardStore:
    """Shards a long step writes as it goes, so a killed run resumes without loss or repeats.

    Each shard has a key (e.g. a batch index); ``write`` stores kept + rejected rows atomically
    and only then marks the key done. On rerun, ``done(key)`` tells which shards to skip and
    ``read_all`` returns the union in key order.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _stem(self, key: str | int) -> str:
        return f"shard-{int(key):08d}" if isinstance(key, int) or str(key).isdigit() else f"shard-{key}"

    def done(self, key: str | int) -> bool:
        """True when the shard is complete and its Parquet files match their checksums (a bad
        shard is logged and dropped, so it is recomputed)."""
        stem = self._stem(key)
        marker = self.root / f"{stem}.done"
        if not marker.exists():
            return False
        sums = self.root / f"{stem}.sha256"
        try:
            files = json.loads(sums.read_text())
            why = _verify(files, self.root, "cache shard")
        except (OSError, ValueError):
            why = f"cache shard {marker}: checksums missing or unreadable"
        if why:
            log.warning("%s; recomputing", why)
            for p in (marker, sums, self.root / f"{stem}.kept.parquet", self.root / f"{stem}.rejected.parquet"):
                p.unlink(missing_ok=True)
            return False
        return True

    def keys(self) -> list[str]:
        return sorted(p.name[len("shard-"):-len(".done")] for p in self.root.glob("shard-*.done"))

    def write(self, key: str | int, kept: pl.DataFrame, rejected: pl.DataFrame | None = None,
              stats: dict[str, Any] | None = None) -> None:
        stem = self._stem(key)
        (self.root / f"{stem}.done").unlink(missing_ok=True)
        files = {}
        for name, df in ((f"{stem}.kept.parquet", kept), (f"{stem}.rejected.parquet", rejected)):
            if df is not None and (df.width or name.endswith("kept.parquet")):
                write_parquet(df, self.root / name)
                files[name] = sha256_file(self.root / name)
        write_json(files, self.root / f"{stem}.sha256")
        write_json(stats or {}, self.root / f"{stem}.done")

    def read(self, key: str | int) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]]:
        stem = self._stem(key)
        kept = pl.read_parquet(self.root / f"{stem}.kept.parquet")
        rp = self.root / f"{stem}.rejected.parquet"
        rej = pl.read_parquet(rp) if rp.exists() else pl.DataFrame()
        return kept, rej, json.loads((self.root / f"{stem}.done").read_text())

    def read_all(self) -> tuple[list[pl.DataFrame], list[pl.DataFrame], list[dict[str, Any]]]:
        ks, rs, ss = [], [], []
        for key in self.keys():
            k, r, s = self.read(key)
            ks.append(k)
            rs.append(r)
            ss.append(s)
        return ks, rs, ss
