"""The ``web`` source: fetch start URLs or a sitemap, optionally crawl links (depth, domain and
pattern limits), politely (robots.txt, per-host rate limit and concurrency, retries with backoff
honouring Retry-After, a real User-Agent), and extract each page's main text.

Every URL that does not become a row is quarantined with a reason (non-http scheme, robots,
HTTP error, redirect loop, timeout, too large, binary or non-HTML content, no text). The frontier
and every fetched page are checkpointed in SQLite under ``state_dir``, so a killed crawl resumes
without refetching, and a finished one is re-emitted from the state without network traffic
(``refresh: true`` crawls again).

    sources:
      - web: {urls: [https://docs.example.org/], max_depth: 2, max_pages: 500, rate_limit: 2,
              allow: ['/guide/'], selectors: {docs.example.org: [main article]}}
      - web: {sitemap: https://example.org/sitemap.xml, max_pages: 1000}
"""
from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urljoin, urlsplit

import polars as pl
from curate.connectors._web_crawl import (  # noqa: F401 (re-exported)
    _USERINFO,
    _USERINFO_PW,
    CrawlState,
    HostGate,
    Outcome,
    host_of,
    normalize_url,
    retry_after_seconds,
)
from pydantic import Field, field_validator, model_validator

from curate import __version__
from curate import records as R
from curate.extras import require
from curate.io import mask_secrets, mask_url
from curate.registry import register_source
from curate.source import Source, SourceBatch, SourceConfig, quarantine

USER_AGENT = f"curate/{__version__} (+https://github.com/curate-toolkit/curate; dataset builder)"
ROBOTS_TOKEN = "curate"
HTML_TYPES = ("text/html", "application/xhtml+xml")
TEXTUAL = ("text/", "application/json", "application/xml", "application/javascript", "application/ld+json")
RETRY_STATUS = {429, 500, 502, 503, 504}
ROW_FIELDS = ("url", "final_url", "canonical_url", "title", "text", "language", "status",
              "content_type", "depth")


class WebSourceConfig(SourceConfig):
    """Fetch web pages (start URLs and/or a sitemap), optionally following links."""

    urls: list[str] = Field(default_factory=list, description="Start URLs.")
    sitemap: str | None = Field(default=None, description="Sitemap (or sitemap index) URL whose <loc> entries are fetched.")
    max_depth: int = Field(default=0, ge=0, le=20,
                           description="Follow links this many hops from the start pages (0: no crawl).")
    same_domain: bool = Field(default=True, description="Follow only links on the start URLs' hosts.")
    allow: list[str] = Field(default_factory=list, description="Regexes; if given, followed links must match one.")
    deny: list[str] = Field(default_factory=list, description="Regexes; links matching any are not followed.")
    max_pages: int = Field(default=100, ge=1, description="Stop after fetching this many pages.")
    max_bytes: int = Field(default=2_000_000, ge=1024, description="Largest page body accepted (bytes, decoded).")
    timeout: float = Field(default=10.0, gt=0, le=300, description="Seconds for connect, each read, and the whole body.")
    retries: int = Field(default=3, ge=0, le=10, description="Retries on 429/5xx/timeouts/connection errors.")
    backoff: float = Field(default=1.0, ge=0, le=60, description="First retry delay in seconds (doubles each retry).")
    max_retry_after: float = Field(default=60.0, ge=0,
                                   description="Longest Retry-After honoured; longer ones reject the page.")
    max_redirects: int = Field(default=5, ge=0, le=30, description="Redirect hops allowed per page.")
    rate_limit: float = Field(default=1.0, gt=0, description="Requests per second per host.")
    concurrency: int = Field(default=4, ge=1, le=64, description="Pages fetched at once (all hosts).")
    per_host_concurrency: int = Field(default=2, ge=1, le=16, description="Pages fetched at once per host.")
    robots: bool = Field(default=True, description="Respect robots.txt (and its Crawl-delay).")
    user_agent: str = Field(default=USER_AGENT, description="User-Agent header sent with every request.")
    selectors: dict[str, list[str]] = Field(
        default_factory=dict, description="CSS selectors of the main content per host (e.g. {'example.com': ['div.post']}); '*' for all.")
    exclude_selectors: list[str] = Field(default_factory=list, description="CSS selectors to drop before extraction.")
    markdown: bool = Field(default=True, description="Mark headings (#) and list items (-) in the text.")
    detect_language: bool = Field(default=True, description="Detect the language (lingua) when <html lang> is absent.")
    state_dir: str | None = Field(default=None,
                                  description="Checkpoint folder (default .curate/web/<hash of start urls>).")
    refresh: bool = Field(default=False, description="Forget the checkpoint and crawl again.")
    batch_pages: int = Field(default=200, ge=1, description="Rows per emitted batch.")

    @field_validator("allow", "deny")
    @classmethod
    def _regexes(cls, v: list[str]) -> list[str]:
        for pat in v:
            try:
                re.compile(pat)
            except re.error as e:
                raise ValueError(f"invalid regex {pat!r}: {e}") from None
        return v

    @model_validator(mode="after")
    def _some_start(self):
        if not self.urls and not self.sitemap:
            raise ValueError("give `urls` and/or `sitemap`")
        return self


# ------------------------------------------------------------------------------ the source
@register_source("web")
class WebSource(Source):
    """Web pages as rows: url, final_url, canonical_url, title, text, language, status, ..."""

    Config = WebSourceConfig

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        c = self.config
        self._allow = [re.compile(p) for p in c.allow]
        self._deny = [re.compile(p) for p in c.deny]
        self._local = threading.local()
        self._gates: dict[str, HostGate] = {}
        self._robots: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._detector = None
        self._host_locks: dict[str, threading.Lock] = {}
        self._pending_meta: list[tuple[str, str]] = []
        self._saved_meta: dict[str, str] = {}
        self.stats: dict[str, int] = {}

    def describe(self) -> str:
        c = self.config
        first = c.urls[0] if c.urls else c.sitemap
        more = f" +{len(c.urls) - 1}" if len(c.urls) > 1 else ""
        return f"{self.origin} ({mask_url(first or '')}{more})"

    def state_path(self) -> Path:
        c = self.config
        if c.state_dir:
            return Path(c.state_dir) / "crawl.sqlite"
        key = hashlib.sha256(json.dumps([sorted(c.urls), c.sitemap]).encode()).hexdigest()[:16]
        return Path(self.workdir) / "web" / key / "crawl.sqlite"

    # -------------------------------------------------------------- network
    def _session(self):
        s = getattr(self._local, "session", None)
        if s is None:
            require("requests", extra="web")
            import requests
            s = requests.Session()
            s.headers["User-Agent"] = self.config.user_agent
            s.headers["Accept"] = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"
            self._local.session = s
        return s

    def _gate(self, host: str) -> HostGate:
        with self._lock:
            g = self._gates.get(host)
            if g is None:
                g = self._gates[host] = HostGate(1.0 / self.config.rate_limit,
                                                 self.config.per_host_concurrency)
            return g

    def _request(self, url: str):
        """GET with retries on 429/5xx/timeouts; returns a streaming response or an Outcome."""
        require("requests", extra="web")
        import requests
        c = self.config
        gate = self._gate(host_of(url))
        last: Outcome | None = None
        for attempt in range(c.retries + 1):
            with gate.sem:
                gate.wait_turn()
                try:
                    resp = self._session().get(url, timeout=(c.timeout, c.timeout), stream=True,
                                               allow_redirects=False)
                except requests.exceptions.Timeout as e:
                    last = Outcome(url, reason="timeout", detail=f"no response within {c.timeout}s ({type(e).__name__})")
                    resp = None
                except requests.exceptions.InvalidURL as e:
                    return Outcome(url, reason="invalid_url", detail=str(e)[:300], fetched=False)
                except requests.exceptions.RequestException as e:
                    last = Outcome(url, reason="connection_error", detail=f"{type(e).__name__}: {str(e)[:300]}")
                    resp = None
            if resp is not None and resp.status_code not in RETRY_STATUS:
                return resp
            if resp is not None:
                wait_s = retry_after_seconds(resp.headers.get("Retry-After"))
                last = Outcome(url, reason="http_error", detail=f"HTTP {resp.status_code} after {attempt + 1} attempts")
                resp.close()
                if wait_s is not None and wait_s > c.max_retry_after:
                    return Outcome(url, reason="rate_limited",
                                   detail=f"HTTP {resp.status_code} with Retry-After {wait_s:.0f}s > max_retry_after {c.max_retry_after}s")
            else:
                wait_s = None
            if attempt == c.retries:
                break
            if wait_s is None:
                wait_s = c.backoff * (2 ** attempt) * (1 + 0.25 * random.random())
            self._count("retries")
            time.sleep(wait_s)
        assert last is not None
        return last

    def _read_body(self, resp, url: str) -> bytes | Outcome:
        require("requests", extra="web")
        import requests
        c = self.config
        length = resp.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > c.max_bytes:
            resp.close()
            return Outcome(url, reason="too_large", detail=f"Content-Length {length} > max_bytes {c.max_bytes}")
        buf = bytearray()
        deadline = time.monotonic() + c.timeout
        try:
            for chunk in resp.iter_content(64 * 1024):
                buf += chunk
                if len(buf) > c.max_bytes:
                    return Outcome(url, reason="too_large", detail=f"body exceeds max_bytes {c.max_bytes}")
                if time.monotonic() > deadline:
                    return Outcome(url, reason="timeout", detail=f"body not complete within {c.timeout}s")
        except requests.exceptions.RequestException as e:
            reason = "timeout" if "timed out" in str(e).lower() else "connection_error"
            return Outcome(url, reason=reason, detail=f"while reading body: {type(e).__name__}")
        finally:
            resp.close()
        return bytes(buf)

    def _robots_for(self, host: str):
        """robots.txt of ``host``: from memory, the checkpoint (preloaded), or fetched once."""
        from urllib.robotparser import RobotFileParser
        with self._lock:
            if host in self._robots:
                return self._robots[host]
            host_lock = self._host_locks.setdefault(host, threading.Lock())
        with host_lock:
            with self._lock:
                if host in self._robots:
                    return self._robots[host]
            rp = RobotFileParser()
            rp.parse(self._robots_text(host).splitlines())
            delay = rp.crawl_delay(ROBOTS_TOKEN)
            gate = self._gate(host)
            if delay:                                        # honour Crawl-delay
                gate.interval = max(gate.interval, float(delay))
            with self._lock:
                self._robots[host] = rp
            return rp

    def _robots_text(self, host: str) -> str:
        key = f"robots:{host}"
        text = self._saved_meta.get(key)
        if text is None:
            resp = self._request(host + "/robots.txt")
            if isinstance(resp, Outcome):                    # unreachable / 5xx: RFC 9309 says
                text = "User-agent: *\nDisallow: /\n" if resp.reason == "http_error" else ""
            else:
                body = self._read_body(resp, host + "/robots.txt")
                if resp.status_code in (401, 403):
                    text = "User-agent: *\nDisallow: /\n"
                elif resp.status_code >= 400 or isinstance(body, Outcome):
                    text = ""                                # no robots.txt: everything allowed
                else:
                    text = body.decode("utf-8", "replace")
            with self._lock:
                self._pending_meta.append((key, text))
        return text

    def _get(self, url: str) -> tuple[Any, bytes] | Outcome:
        """Follow redirects by hand (so loops, schemes and robots are checked per hop)."""
        c = self.config
        chain = [url]
        cur = url
        for _hop in range(c.max_redirects + 1):
            if urlsplit(cur).scheme not in ("http", "https"):
                return Outcome(url, reason="unsupported_scheme", detail=f"redirected to {cur}")
            if c.robots:
                rp = self._robots_for(host_of(cur))
                if not rp.can_fetch(ROBOTS_TOKEN, cur):
                    return Outcome(url, reason="robots_disallowed", detail=f"robots.txt disallows {cur}",
                                   fetched=cur != url)
            resp = self._request(cur)
            if isinstance(resp, Outcome):
                resp.url = url
                return resp
            if resp.is_redirect:
                nxt = normalize_url(urljoin(cur, resp.headers["Location"]))
                resp.close()
                if nxt in chain:
                    return Outcome(url, reason="redirect_loop", detail=" -> ".join(chain + [nxt]))
                chain.append(nxt)
                cur = nxt
                continue
            body = self._read_body(resp, url)
            if isinstance(body, Outcome):
                return body
            resp.final_url = cur
            return resp, body
        return Outcome(url, reason="too_many_redirects",
                       detail=f"more than {c.max_redirects} redirects: {' -> '.join(chain)}")

    # -------------------------------------------------------------- one page
    def _fetch_page(self, url: str, depth: int) -> Outcome:
        try:
            got = self._get(url)
            if isinstance(got, Outcome):
                return got
            return self._parse(url, depth, *got)
        except Exception as e:  # noqa: BLE001 - one bad page must never crash the crawl
            return Outcome(url, reason="fetch_failed", detail=f"{type(e).__name__}: {str(e)[:300]}")

    def _parse(self, url: str, depth: int, resp, body: bytes) -> Outcome:
        from curate.connectors._web_extract import extract
        c = self.config
        if resp.status_code >= 400:
            return Outcome(url, reason="http_error", detail=f"HTTP {resp.status_code}")
        if resp.status_code != 200:
            return Outcome(url, reason="http_error", detail=f"unexpected HTTP {resp.status_code}")
        ctype_full = resp.headers.get("Content-Type", "")
        ctype = ctype_full.split(";")[0].strip().lower()
        head = body[:4096]
        if b"\x00" in head:
            return Outcome(url, reason="binary_content", detail=f"NUL bytes in body (Content-Type {ctype or 'none'})")
        looks_html = re.search(rb"<(!doctype html|html|head|body|p|div)\b", head[:2048], re.I) is not None
        if ctype not in HTML_TYPES and not (not ctype and looks_html):
            if ctype.startswith(TEXTUAL):
                return Outcome(url, reason="non_html", detail=f"Content-Type {ctype}")
            return Outcome(url, reason="binary_content", detail=f"Content-Type {ctype or 'none'}")
        charset = None
        m = re.search(r"charset=([\w-]+)", ctype_full, re.I)
        if m:
            charset = m.group(1)
        markup: str | bytes = body
        if charset:
            try:
                markup = body.decode(charset, "replace")
            except LookupError:
                markup = body
        final = resp.final_url
        host = urlsplit(final).netloc
        sels = c.selectors.get(host) or c.selectors.get(urlsplit(final).hostname or "") or c.selectors.get("*")
        try:
            ex = extract(markup, final, sels, c.exclude_selectors, c.markdown)
        except Exception as e:  # noqa: BLE001 - parser crash on pathological markup
            return Outcome(url, reason="malformed_html", detail=f"{type(e).__name__}: {str(e)[:200]}")
        links = [normalize_url(u) for u in ex.links] if depth < c.max_depth else []
        if not ex.text.strip():
            return Outcome(url, reason="no_text", detail="no main text after extraction "
                           "(empty, boilerplate-only or unparseable HTML)", links=links)
        language = ex.language or (self._detect(ex.text) if c.detect_language else None)
        fields = {"url": url, "final_url": final, "canonical_url": ex.canonical or final,
                  "title": ex.title, "text": ex.text, "language": language,
                  "status": resp.status_code, "content_type": ctype, "depth": depth}
        return Outcome(url, fields=fields, links=links)

    def _detect(self, text: str) -> str | None:
        if len(text) < 20:
            return None
        with self._lock:
            if self._detector is None:
                from lingua import LanguageDetectorBuilder
                self._detector = LanguageDetectorBuilder.from_all_languages().with_low_accuracy_mode().build()
            det = self._detector
        lang = det.detect_language_of(text[:2000])
        return lang.iso_code_639_1.name.lower() if lang is not None else None

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.stats[key] = self.stats.get(key, 0) + n

    # -------------------------------------------------------------- frontier policy
    def _classify_links(self, links: list[str], depth: int, state: CrawlState,
                        allowed_hosts: set[str]) -> tuple[list[tuple[str, int]], list[Outcome]]:
        follow, rejected, seen = [], [], set()
        for link in links:
            if link in seen or state.seen(link):
                continue
            seen.add(link)
            scheme = urlsplit(link).scheme
            if scheme not in ("http", "https"):
                rejected.append(Outcome(link, reason="unsupported_scheme",
                                        detail=f"{scheme or 'no'} scheme link", fetched=False))
                continue
            if self.config.same_domain and urlsplit(link).netloc not in allowed_hosts:
                self._count("links_off_domain")
                continue
            if self._allow and not any(p.search(link) for p in self._allow):
                self._count("links_not_allowed")
                continue
            if any(p.search(link) for p in self._deny):
                self._count("links_denied")
                continue
            follow.append((link, depth))
        return follow, rejected

    def _sitemap_urls(self, state: CrawlState) -> tuple[list[str], list[Outcome]]:
        import gzip

        from bs4 import BeautifulSoup
        urls, rejected = [], []
        todo, done = [normalize_url(self.config.sitemap)], set()
        while todo and len(done) < 50:                       # bounded: sitemap index recursion
            sm = todo.pop(0)
            if sm in done:
                continue
            done.add(sm)
            got = self._get(sm)
            if isinstance(got, Outcome):
                rejected.append(Outcome(sm, reason="sitemap_error", detail=f"{got.reason}: {got.detail}",
                                        fetched=False))
                continue
            resp, body = got
            if resp.status_code != 200:
                rejected.append(Outcome(sm, reason="sitemap_error", detail=f"HTTP {resp.status_code}", fetched=False))
                continue
            if body[:2] == b"\x1f\x8b":
                try:
                    body = gzip.decompress(body)
                except OSError as e:
                    rejected.append(Outcome(sm, reason="sitemap_error", detail=f"bad gzip: {e}", fetched=False))
                    continue
            soup = BeautifulSoup(body, "xml")
            if soup.find("sitemapindex"):
                todo += [normalize_url(urljoin(sm, loc.get_text().strip()))
                         for loc in soup.select("sitemap > loc")]
            else:
                locs = soup.select("url > loc")
                if not locs:
                    rejected.append(Outcome(sm, reason="sitemap_error", detail="no <url><loc> entries", fetched=False))
                urls += [normalize_url(urljoin(sm, loc.get_text().strip())) for loc in locs]
        return urls, rejected

    # -------------------------------------------------------------- the crawl
    def _crawl(self, state: CrawlState) -> None:
        c = self.config
        self._pending_meta = []
        self._saved_meta = {k: v for k, v in state.db.execute(
            "SELECT key, value FROM meta WHERE key LIKE 'robots:%'")}
        if state.get("seeded") is None:
            starts = [normalize_url(u) for u in c.urls]
            rejected: list[Outcome] = []
            if c.sitemap:
                more, rejected = self._sitemap_urls(state)
                starts += more
            follow, bad = [], []
            for u in dict.fromkeys(starts):
                scheme = urlsplit(u).scheme
                if scheme in ("http", "https") and urlsplit(u).netloc:
                    follow.append((u, 0))
                else:
                    bad.append(Outcome(u, reason="unsupported_scheme",
                                       detail=f"only http(s) URLs can be fetched (got {scheme or 'no'} scheme)",
                                       fetched=False))
            state.add(follow, rejected + bad)
            self._flush_meta(state)
            state.put("seeded", "1")
        hosts = state.get("hosts")
        if hosts is None:
            hosts_set = {urlsplit(u).netloc for u in
                         [normalize_url(x) for x in c.urls] + state.pending(0)}
            state.put("hosts", json.dumps(sorted(hosts_set)))
        else:
            hosts_set = set(json.loads(hosts))

        with ThreadPoolExecutor(max_workers=c.concurrency, thread_name_prefix="curate-web") as pool:
            for depth in range(c.max_depth + 1):
                todo = state.pending(depth)
                budget = c.max_pages - state.fetched_count()
                if todo and budget > 0:
                    self._fetch_all(pool, todo[:budget], depth, state)
                if len(todo) > budget:
                    self._count("stopped_at_max_pages")
                    break
                if depth < c.max_depth and state.get(f"expanded:{depth}") is None:
                    follow, rejected = self._classify_links(list(state.links_at(depth)), depth + 1,
                                                            state, hosts_set)
                    state.add(follow, rejected)
                    state.put(f"expanded:{depth}", "1")

    def _fetch_all(self, pool, urls: list[str], depth: int, state: CrawlState) -> None:
        """Fetch ``urls`` with at most ``concurrency`` in flight; checkpoint each as it lands."""
        queue = list(reversed(urls))
        running: dict[Any, str] = {}
        while queue or running:
            while queue and len(running) < self.config.concurrency:
                u = queue.pop()
                running[pool.submit(self._fetch_page, u, depth)] = u
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in done:
                running.pop(fut)
                outcome = fut.result()
                self._flush_meta(state)
                state.record(outcome)
                self._count("pages_fetched" if outcome.fields else "pages_rejected")

    def _flush_meta(self, state: CrawlState) -> None:
        with self._lock:
            items, self._pending_meta = self._pending_meta, []
        for k, v in items:
            state.put(k, v)

    def read(self) -> Iterator[SourceBatch]:
        path = self.state_path()
        if self.config.refresh and path.exists():
            for p in path.parent.glob(path.name + "*"):
                p.unlink()
        state = CrawlState(path)
        try:
            self._crawl(state)
            rows: list[dict[str, Any]] = []
            rej: tuple[list, list, list] = ([], [], [])
            for url, fields, reason, detail in state.outcomes():
                if fields is not None:
                    f = json.loads(fields)
                    f[R.SOURCE] = f["final_url"]
                    rows.append(f)
                else:
                    rej[0].append(url)
                    rej[1].append(reason)
                    rej[2].append(detail)
                if len(rows) >= self.config.batch_pages or len(rej[0]) >= self.config.batch_pages:
                    yield self._batch(rows, rej)
                    rows, rej = [], ([], [], [])
            if rows or rej[0]:
                yield self._batch(rows, rej)
        finally:
            state.close()

    def _batch(self, rows: list[dict], rej: tuple[list, list, list]) -> SourceBatch:
        schema = {R.SOURCE: pl.String, "url": pl.String, "final_url": pl.String,
                  "canonical_url": pl.String, "title": pl.String, "text": pl.String,
                  "language": pl.String, "status": pl.Int32, "content_type": pl.String,
                  "depth": pl.Int32}
        df = pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)
        # a start URL may carry credentials (https://user:pw@host/): used to fetch, never stored
        df = df.with_columns(pl.col(c).str.replace(_USERINFO_PW, "${1}${2}:***@").str.replace(_USERINFO, "${1}***@")
                             for c in (R.SOURCE, "url", "final_url", "canonical_url"))
        rejected = (quarantine([mask_url(u) for u in rej[0]], rej[1],
                               [mask_secrets(d) if d else d for d in rej[2]], self.origin)
                    if rej[0] else pl.DataFrame())
        return SourceBatch(df, rejected)
