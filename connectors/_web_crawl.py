"""The web source's crawl machinery: URL normalisation, Retry-After parsing, the per-host rate
gate and the SQLite checkpoint of the frontier and fetched pages (:class:`CrawlState`), so a
killed crawl resumes without refetching."""
from __future__ import annotations

import email.utils
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit, urlunsplit

# the authority's userinfo, as requests parses it: ``user:***@`` when a password follows the user
# name, else all of it (a bare token as user name is a secret too)
_USERINFO_PW = r"^([A-Za-z][A-Za-z0-9+.\-]*://)([^/?#:@]*):[^/?#]*@"
_USERINFO = r"^([A-Za-z][A-Za-z0-9+.\-]*://)[^/?#:]*@"

def normalize_url(url: str) -> str:
    """Canonical form for de-duplication: lower-case scheme/host, no default port, no fragment."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url.strip()
    scheme = parts.scheme.lower()
    userinfo, at, hostport = parts.netloc.rpartition("@")
    netloc = userinfo + at + hostport.lower()            # credentials are case-sensitive
    if (scheme == "http" and netloc.endswith(":80")) or (scheme == "https" and netloc.endswith(":443")):
        netloc = netloc.rsplit(":", 1)[0]
    path = parts.path or ("/" if scheme in ("http", "https") else "")
    return urlunsplit((scheme, netloc, path, parts.query, ""))


def host_of(url: str) -> str:
    p = urlsplit(url)
    return f"{p.scheme}://{p.netloc}"


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass
class Outcome:
    """The result of fetching one URL: a row (``fields``) or a rejection (``reason``)."""

    url: str
    fields: dict[str, Any] | None = None
    reason: str | None = None
    detail: str | None = None
    links: list[str] | None = None
    fetched: bool = True            # counts against max_pages


class HostGate:
    """Per-host politeness: at most ``concurrency`` requests in flight and one start per interval."""

    def __init__(self, interval: float, concurrency: int) -> None:
        self.interval = interval
        self.sem = threading.BoundedSemaphore(concurrency)
        self.lock = threading.Lock()
        self.next_at = 0.0

    def wait_turn(self) -> None:
        with self.lock:
            now = time.monotonic()
            at = max(now, self.next_at)
            self.next_at = at + self.interval
        if at > now:
            time.sleep(at - now)


class CrawlState:
    """SQLite checkpoint: the frontier (url, depth, order, done?) and each fetched page's outcome.

    Written only from the crawl's main thread, one transaction per page, so a kill loses at most
    the pages in flight.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript("""
            CREATE TABLE IF NOT EXISTS frontier (url TEXT PRIMARY KEY, depth INTEGER, seq INTEGER,
                                                 done INTEGER DEFAULT 0);
            CREATE TABLE IF NOT EXISTS pages (url TEXT PRIMARY KEY, seq INTEGER, fetched INTEGER,
                                              fields TEXT, reason TEXT, detail TEXT, links TEXT);
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
        """)

    def get(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def seen(self, url: str) -> bool:
        return self.db.execute("SELECT 1 FROM frontier WHERE url=?", (url,)).fetchone() is not None

    def _next_seq(self) -> int:
        return (self.db.execute("SELECT COALESCE(MAX(seq), -1) FROM frontier").fetchone()[0]) + 1

    def add(self, urls: list[tuple[str, int]], rejected: list[Outcome] = ()) -> None:
        """Add new frontier entries (and pre-fetch rejections) in one transaction."""
        with self.db:
            self.db.execute("BEGIN")
            seq = self._next_seq()
            for url, depth in urls:
                if self.db.execute("INSERT OR IGNORE INTO frontier VALUES (?, ?, ?, 0)",
                                   (url, depth, seq)).rowcount:
                    seq += 1
            for o in rejected:
                if self.db.execute("INSERT OR IGNORE INTO frontier VALUES (?, ?, ?, 1)",
                                   (o.url, -1, seq)).rowcount:
                    self._store(o, seq)
                    seq += 1

    def _store(self, o: Outcome, seq: int) -> None:
        self.db.execute("INSERT OR REPLACE INTO pages VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (o.url, seq, int(o.fetched), json.dumps(o.fields) if o.fields else None,
                         o.reason, o.detail, json.dumps(o.links) if o.links else None))

    def record(self, o: Outcome) -> None:
        """Store one page's outcome and mark it done (atomically)."""
        with self.db:
            self.db.execute("BEGIN")
            seq = self.db.execute("SELECT seq FROM frontier WHERE url=?", (o.url,)).fetchone()[0]
            self._store(o, seq)
            self.db.execute("UPDATE frontier SET done=1 WHERE url=?", (o.url,))

    def pending(self, depth: int) -> list[str]:
        return [r[0] for r in self.db.execute(
            "SELECT url FROM frontier WHERE done=0 AND depth=? ORDER BY seq", (depth,))]

    def fetched_count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM pages WHERE fetched=1").fetchone()[0]

    def links_at(self, depth: int) -> Iterator[str]:
        q = ("SELECT p.links FROM pages p JOIN frontier f ON f.url = p.url "
             "WHERE f.depth=? AND p.links IS NOT NULL ORDER BY p.seq")
        for (links,) in self.db.execute(q, (depth,)).fetchall():
            yield from json.loads(links)

    def outcomes(self) -> Iterator[tuple[str, dict | None, str | None, str | None]]:
        yield from self.db.execute("SELECT url, fields, reason, detail FROM pages ORDER BY seq")

    def close(self) -> None:
        self.db.close()


