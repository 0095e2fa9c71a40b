"""Real servers for the connector tests, all on loopback: a planted web site (ThreadingHTTPServer),
moto's S3 server, and the PostgreSQL / MariaDB URLs from the environment (skip when unset)."""
from __future__ import annotations

import gzip
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

NAV = "<nav><a href='/'>Home</a> <a href='/a.html'>A</a></nav>"
FOOT = "<footer>Copyright 2026 Example Corp - all rights reserved</footer>"


def page(body: str, title: str = "Page", lang: str | None = "en", head: str = "") -> bytes:
    lang_attr = f' lang="{lang}"' if lang else ""
    return (f"<!doctype html><html{lang_attr}><head><title>{title}</title>{head}"
            f"<script>var tracking = 'SCRIPT_NOISE';</script><style>.x{{color:red}}</style></head>"
            f"<body><header>SITE HEADER</header>{NAV}<main>{body}</main>{FOOT}</body></html>").encode()


INDEX_LINKS = ["/a.html", "/b.html", "/a.html#section", "/private/secret.html", "/redirect1",
               "/loop1", "/missing.html", "/data.json", "/file.bin", "/broken.html",
               "mailto:someone@example.com", "ftp://ftp.example.com/file.txt",
               "http://elsewhere.invalid/page.html", "javascript:void(0)"]

SITE: dict[str, tuple[int, dict[str, str], bytes]] = {
    "/robots.txt": (200, {"Content-Type": "text/plain"},
                    b"User-agent: *\nDisallow: /private/\n\nSitemap: /sitemap.xml\n"),
    "/": (200, {"Content-Type": "text/html; charset=utf-8"}, page(
        "<h1>Welcome</h1><p>The index page of the planted test site.</p><ul>"
        + "".join(f"<li><a href='{u}'>link {i}</a></li>" for i, u in enumerate(INDEX_LINKS)) + "</ul>",
        title="Index")),
    "/a.html": (200, {"Content-Type": "text/html; charset=utf-8"}, page(
        "<h1>Article A</h1><p>First paragraph of article A about tide pools.</p>"
        "<h2>Details</h2><ul><li>crabs live here</li><li>so do anemones</li></ul>"
        "<table><tr><th>species</th><th>count</th></tr><tr><td>crab</td><td>12</td></tr></table>"
        "<p><a href='/c.html'>deeper page</a></p>", title="A",
        head="<link rel='canonical' href='/articles/a'>")),
    "/b.html": (200, {"Content-Type": "text/html"}, page(
        "<h1>Seite B</h1><p>Dies ist ein kurzer deutscher Absatz über das Wetter.</p>", title="B", lang="de-DE")),
    "/c.html": (200, {"Content-Type": "text/html"}, page("<p>Page C, two hops from the index.</p>", title="C")),
    "/fr.html": (200, {"Content-Type": "text/html"}, page(
        "<p>Ceci est une page en français sans attribut de langue, écrite pour le test.</p>",
        title="FR", lang=None)),
    "/private/secret.html": (200, {"Content-Type": "text/html"}, page("<p>secret</p>")),
    "/redirect1": (301, {"Location": "/redirect2"}, b""),
    "/redirect2": (302, {"Location": "/a.html"}, b""),
    "/loop1": (302, {"Location": "/loop2"}, b""),
    "/loop2": (302, {"Location": "/loop1"}, b""),
    "/data.json": (200, {"Content-Type": "application/json"}, b'{"not": "html"}'),
    "/file.bin": (200, {"Content-Type": "application/octet-stream"}, bytes(range(256)) * 16),
    "/fake.html": (200, {"Content-Type": "text/html"}, b"<html>\x00\x01\x02\x89PNG binary junk"),
    "/broken.html": (200, {"Content-Type": "text/html"},
                     b"<html><body><div><p>Unclosed paragraph with <b>bold <i>text</p></span>"
                     b"<p>Second paragraph survives</div></td></html></html>"),
    "/empty.html": (200, {"Content-Type": "text/html"},
                    b"<html><head><script>var a=1;</script></head><body><nav>menu only</nav></body></html>"),
    "/huge.html": (200, {"Content-Type": "text/html"}, b"<html><body><p>" + b"x" * 3_000_000 + b"</p></body></html>"),
    "/ftp-redirect": (302, {"Location": "ftp://ftp.example.com/x"}, b""),
    "/mailto.html": (200, {"Content-Type": "text/html"}, page("<p><a href='mailto:a@b.c'>mail</a> and "
                                                            "<a href='ftp://x.example/f'>ftp</a></p>")),
    "/sitemap.xml": (200, {"Content-Type": "application/xml"}, (
        "<?xml version='1.0' encoding='UTF-8'?>"
        "<urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>"
        "<url><loc>/a.html</loc></url><url><loc>/b.html</loc></url><url><loc>/c.html</loc></url>"
        "</urlset>").encode()),
    "/sitemap_index.xml": (200, {"Content-Type": "application/xml"}, (
        "<?xml version='1.0'?><sitemapindex xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>"
        "<sitemap><loc>/sitemap.xml</loc></sitemap><sitemap><loc>/sitemap-extra.xml.gz</loc></sitemap>"
        "</sitemapindex>").encode()),
    "/sitemap-extra.xml.gz": (200, {"Content-Type": "application/gzip"}, gzip.compress(
        b"<?xml version='1.0'?><urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>"
        b"<url><loc>/fr.html</loc></url><url><loc>mailto:x@y.z</loc></url></urlset>")),
}
# A clean sub-site for the kill/resume test: /kill/ links to 8 pages, each linking to the next.
SITE["/kill/"] = (200, {"Content-Type": "text/html"}, page(
    "<p>kill index</p>" + "".join(f"<a href='/kill/p{i}.html'>p{i}</a>" for i in range(8))))
for _i in range(8):
    SITE[f"/kill/p{_i}.html"] = (200, {"Content-Type": "text/html"}, page(
        f"<p>kill page number {_i}</p><a href='/kill/q{_i}.html'>q</a>"))
    SITE[f"/kill/q{_i}.html"] = (200, {"Content-Type": "text/html"}, page(f"<p>second level {_i}</p>"))


class Site:
    """The running test site: base URL and a log of requested paths."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.log: list[str] = []
        self.hits: dict[str, int] = {}
        self.lock = threading.Lock()

    def url(self, path: str) -> str:
        return self.base + path

    def mark(self) -> int:
        """A position in the request log (to count only later requests)."""
        with self.lock:
            return len(self.log)

    def count(self, prefix: str, since: int = 0) -> dict[str, int]:
        """Requests per path starting with ``prefix`` (after log position ``since``)."""
        with self.lock:
            out: dict[str, int] = {}
            for p in self.log[since:]:
                if p.startswith(prefix):
                    out[p] = out.get(p, 0) + 1
            return out


def _handler(site: Site):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):  # keep test output quiet
            pass

        def _send(self, status: int, headers: dict[str, str], body: bytes, length: bool = True) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            if length:
                self.send_header("Content-Length", str(len(body)))
            else:
                self.send_header("Connection", "close")
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass
            if not length:
                self.close_connection = True

        def do_GET(self) -> None:  # noqa: N802
            path = self.path
            with site.lock:
                site.log.append(path)
                site.hits[path] = site.hits.get(path, 0) + 1
                n = site.hits[path]
            base = path.split("?")[0]
            if base == "/flaky":            # 429 with Retry-After once, then 200
                if n == 1:
                    return self._send(429, {"Retry-After": "1", "Content-Type": "text/plain"}, b"slow down")
                return self._send(200, {"Content-Type": "text/html"}, page("<p>Flaky page finally served.</p>"))
            if base == "/always429":
                return self._send(429, {"Retry-After": "3600"}, b"go away")
            if base == "/error503":
                return self._send(503, {"Content-Type": "text/plain"}, b"unavailable")
            if base == "/slow":
                time.sleep(2.0)
                return self._send(200, {"Content-Type": "text/html"}, page("<p>too late</p>"))
            if base == "/huge-stream":   # no Content-Length: the limit must stop the body read
                return self._send(200, {"Content-Type": "text/html"},
                                  b"<html><body><p>" + b"y" * 3_000_000 + b"</p></body></html>", length=False)
            if base not in SITE:
                return self._send(404, {"Content-Type": "text/html"}, b"<html><body>not found</body></html>")
            status, headers, body = SITE[base]
            self._send(status, headers, body)

    return Handler


@pytest.fixture(scope="session")
def site():
    """The planted web site on 127.0.0.1 (one server for the whole session)."""
    holder: dict = {}
    s = Site("")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(s))
    server.daemon_threads = True
    s.base = f"http://127.0.0.1:{server.server_address[1]}"
    holder["server"] = server
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield s
    server.shutdown()
    server.server_close()


@pytest.fixture
def web_cfg(tmp_path):
    """Fast, bounded crawl settings for tests (tiny timeouts and backoffs, own state dir)."""
    def make(**kw):
        base = dict(timeout=0.5, retries=1, backoff=0.05, max_retry_after=2.0, rate_limit=1000.0,
                    concurrency=4, state_dir=str(tmp_path / f"web-{uuid.uuid4().hex[:6]}"),
                    detect_language=False)
        base.update(kw)
        return base
    return make


@pytest.fixture
def s3(s3_endpoint):
    """A boto3 client on the moto server and a fresh bucket name (deleted afterwards)."""
    import boto3
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    bucket = f"test-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    yield client, bucket
    for page_ in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page_.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=obj["Key"])
    client.delete_bucket(Bucket=bucket)


# ------------------------------------------------------------------------------ databases
SERVICE_URLS = {"pg_url": "CURATE_TEST_POSTGRES_URL", "mariadb_url": "CURATE_TEST_MARIADB_URL"}
REQUIRE_SERVICES = os.environ.get("CURATE_REQUIRE_SERVICES") == "1"   # CI: a missing server fails


def pytest_collection_modifyitems(config, items):
    """Outside CI, tests needing a database server whose URL is not set are skipped, with the reason."""
    for item in items:
        for fixture, var in SERVICE_URLS.items():
            unset = not os.environ.get(var)
            params = getattr(getattr(item, "callspec", None), "params", {}).values()
            if fixture in getattr(item, "fixturenames", ()) or fixture in params:
                item.add_marker(pytest.mark.skipif(unset and not REQUIRE_SERVICES,
                                                   reason=f"{var} is not set (CI sets it; e.g. export {var}=...)"))


def _db_url(var: str) -> str:
    url = os.environ.get(var)
    if not url:
        pytest.fail(f"{var} is not set but CURATE_REQUIRE_SERVICES=1")
    return url


@pytest.fixture
def pg_url() -> str:
    return _db_url("CURATE_TEST_POSTGRES_URL")


@pytest.fixture
def mariadb_url() -> str:
    return _db_url("CURATE_TEST_MARIADB_URL")


@pytest.fixture
def table_name() -> str:
    """A table name unique to this test (tests drop what they create)."""
    return f"t_{uuid.uuid4().hex[:10]}"


# ------------------------------------------------------------------------------ S3 faults
class FakeS3:
    """A tiny S3-speaking HTTP endpoint for faults moto does not produce: it answers with the
    configured error (e.g. 403 AccessDenied) or throttles the first ``fail_first`` requests with
    503 SlowDown, then serves one object ``data/x.csv`` (listing, HEAD and GET)."""

    BODY = b"text,label\nhello,a\nworld,b\n"

    def __init__(self) -> None:
        self.fail_first = 0
        self.error: tuple[int, str] | None = None
        self.requests: list[str] = []
        self.base = ""

    def reset(self, fail_first: int = 0, error: tuple[int, str] | None = None) -> None:
        self.fail_first, self.error, self.requests = fail_first, error, []


def _fake_s3_handler(fake: FakeS3):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def _reply(self, status: int, body: bytes, ctype: str = "application/xml", head: bool = False) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", '"0123456789abcdef"')
            self.send_header("Last-Modified", "Thu, 01 Jan 2026 00:00:00 GMT")
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _handle(self, head: bool) -> None:
            fake.requests.append(f"{self.command} {self.path}")
            if fake.error is not None:
                status, code = fake.error
                return self._reply(status, f"<Error><Code>{code}</Code><Message>{code}</Message></Error>".encode(),
                                   head=head)
            if len(fake.requests) <= fake.fail_first:
                return self._reply(503, b"<Error><Code>SlowDown</Code><Message>Reduce your request rate."
                                        b"</Message></Error>", head=head)
            if "list-type=2" in self.path:
                n = len(FakeS3.BODY)
                xml = ("<?xml version='1.0' encoding='UTF-8'?><ListBucketResult "
                       "xmlns='http://s3.amazonaws.com/doc/2006-03-01/'><Name>b</Name><Prefix>data/</Prefix>"
                       "<KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>"
                       "<Contents><Key>data/x.csv</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified>"
                       f"<ETag>\"0123456789abcdef\"</ETag><Size>{n}</Size><StorageClass>STANDARD</StorageClass>"
                       "</Contents></ListBucketResult>")
                return self._reply(200, xml.encode(), head=head)
            if self.path.split("?")[0].endswith("/data/x.csv"):
                return self._reply(200, FakeS3.BODY, "text/csv", head=head)
            return self._reply(404, b"<Error><Code>NoSuchKey</Code><Message>nope</Message></Error>", head=head)

        def do_GET(self):  # noqa: N802
            self._handle(False)

        def do_HEAD(self):  # noqa: N802
            self._handle(True)

    return H


@pytest.fixture(scope="session")
def fake_s3_server():
    fake = FakeS3()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _fake_s3_handler(fake))
    server.daemon_threads = True
    fake.base = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def fake_s3(fake_s3_server, s3_endpoint):   # s3_endpoint: sets the dummy credentials
    fake_s3_server.reset()
    return fake_s3_server
