"""Content fingerprints, the per-step Parquet cache, atomic writes and resumable shards."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import polars as pl

from curate import __version__


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


def fingerprint(*parts: Any) -> str:
    """sha256 over the canonical JSON of ``parts`` plus the curate version (first 20 hex chars)."""
    h = hashlib.sha256(canonical_json([__version__, *parts]).encode())
    return h.hexdigest()[:20]


def frame_fingerprint(df: pl.DataFrame) -> str:
    """Fingerprint of a table's content (stable across runs and processes)."""
    h = hashlib.sha256()
    h.update(canonical_json(df.schema and {k: str(v) for k, v in df.schema.items()}).encode())
    if df.height:
        h.update(df.write_ndjson().encode())
    return h.hexdigest()[:20]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temp path beside ``path``; rename it over ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_parquet(df: pl.DataFrame, path: Path | str) -> None:
    with atomic_path(path) as tmp:
        df.write_parquet(tmp)


def write_text(text: str, path: Path | str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(obj: Any, path: Path | str) -> None:
    write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n", path)


class StepCache:
    """Cached result of one step (or the sources) under ``root/<label>-<fingerprint>/``."""

    def __init__(self, root: Path, label: str, fp: str) -> None:
        self.dir = Path(root) / f"{label}-{fp}"
        self.fp = fp

    @property
    def done(self) -> bool:
        return (self.dir / "meta.json").exists()

    def load(self) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]]:
        meta = json.loads((self.dir / "meta.json").read_text())
        kept = pl.read_parquet(self.dir / "kept.parquet")
        rej_path = self.dir / "rejected.parquet"
        rejected = pl.read_parquet(rej_path) if rej_path.exists() else pl.DataFrame()
        return kept, rejected, meta

    def meta(self) -> dict[str, Any]:
        return json.loads((self.dir / "meta.json").read_text())

    def save(self, kept: pl.DataFrame, rejected: pl.DataFrame, meta: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        write_parquet(kept, self.dir / "kept.parquet")
        if rejected.width:
            write_parquet(rejected, self.dir / "rejected.parquet")
        write_json(meta, self.dir / "meta.json")  # written last: marks the entry complete

    @property
    def scratch(self) -> Path:
        p = self.dir / "work"
        p.mkdir(parents=True, exist_ok=True)
        return p

    def clear(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


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
        return (self.root / f"{self._stem(key)}.done").exists()

    def keys(self) -> list[str]:
        return sorted(p.name[len("shard-"):-len(".done")] for p in self.root.glob("shard-*.done"))

    def write(self, key: str | int, kept: pl.DataFrame, rejected: pl.DataFrame | None = None,
              stats: dict[str, Any] | None = None) -> None:
        stem = self._stem(key)
        write_parquet(kept, self.root / f"{stem}.kept.parquet")
        if rejected is not None and rejected.width:
            write_parquet(rejected, self.root / f"{stem}.rejected.parquet")
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
