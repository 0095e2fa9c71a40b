"""The web source against the planted local site: extraction, politeness, faults, resume."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import pytest

from curate.connectors.web import WebSource, normalize_url, retry_after_seconds

REPO = Path(__file__).resolve().parents[2]


def read(**cfg) -> tuple[pl.DataFrame, pl.DataFrame]:
    rows, rej = [], []
    for b in WebSource(**cfg).read():
        if b.rows.height:
            rows.append(b.rows)
        if b.rejected.height:
            rej.append(b.rejected)
    return (pl.concat(rows) if rows else pl.DataFrame(schema={"source": pl.String, "url": pl.String}),
            pl.concat(rej) if rej else pl.DataFrame(schema={"source": pl.String, "reason": pl.String}))


def reason_of(rej: pl.DataFrame, url: str) -> str:
    hit = rej.filter(pl.col("source") == url)
    assert hit.height == 1, f"{url} not rejected exactly once: {rej}"
    return hit["reason"][0]


def test_main_text_extraction_drops_boilerplate(site, web_cfg):
    rows, rej = read(**web_cfg(urls=[site.url("/a.html")]))
    assert rej.height == 0
    row = rows.row(0, named=True)
    assert row["title"] == "A"
    assert row["language"] == "en"
    assert row["canonical_url"] == site.url("/articles/a")
    assert row["source"] == site.url("/a.html")
    text = row["text"]
    assert "# Article A" in text and "## Details" in text
    assert "- crabs live here" in text and "species | count" in text and "crab | 12" in text
    for noise in ("SCRIPT_NOISE", "SITE HEADER", "Copyright 2026", "color:red", "Home"):
        assert noise not in text


def test_language_from_html_lang_and_detection(site, web_cfg):
    # timeout 5: loading lingua's models holds the GIL for a second or two on a slow machine
    rows, rej = read(**web_cfg(urls=[site.url("/b.html"), site.url("/fr.html")], detect_language=True,
                               timeout=5))
    langs = dict(zip(rows["url"], rows["language"]))
    assert rej.height == 0, rej.to_dicts()
    assert langs[site.url("/b.html")] == "de"       # from lang="de-DE"
    assert langs[site.url("/fr.html")] == "fr"      # no lang attribute: lingua detects it


def test_crawl_depth_domain_schemes_and_robots(site, web_cfg):
    rows, rej = read(**web_cfg(urls=[site.url("/")], max_depth=1))
    got = set(rows["url"])
    assert {site.url("/"), site.url("/a.html"), site.url("/b.html"), site.url("/broken.html")} <= got
    assert site.url("/c.html") not in got            # two hops away: beyond max_depth
    assert not any("elsewhere.invalid" in u for u in got) and not rej.filter(
        pl.col("source").str.contains("elsewhere")).height   # off-domain: not followed
    assert reason_of(rej, "mailto:someone@example.com") == "unsupported_scheme"
    assert reason_of(rej, "ftp://ftp.example.com/file.txt") == "unsupported_scheme"
    assert reason_of(rej, "javascript:void(0)") == "unsupported_scheme"
    assert reason_of(rej, site.url("/private/secret.html")) == "robots_disallowed"
    assert reason_of(rej, site.url("/missing.html")) == "http_error"
    assert reason_of(rej, site.url("/data.json")) == "non_html"
    assert reason_of(rej, site.url("/file.bin")) == "binary_content"
    assert reason_of(rej, site.url("/loop1")) == "redirect_loop"
    # "/a.html#section" is the same page as "/a.html": fetched once
    assert rows.filter(pl.col("url") == site.url("/a.html")).height == 1
    # the redirect chain lands on /a.html; its row says where it ended
    red = rows.filter(pl.col("url") == site.url("/redirect1")).row(0, named=True)
    assert red["final_url"] == site.url("/a.html") and red["source"] == site.url("/a.html")
    assert site.count("/private/") == {}             # robots.txt respected: never requested


def test_crawl_depth_two_reaches_deeper_page(site, web_cfg):
    rows, _ = read(**web_cfg(urls=[site.url("/a.html")], max_depth=1))
    assert site.url("/c.html") in set(rows["url"])


def test_allow_and_deny_patterns(site, web_cfg):
    rows, _ = read(**web_cfg(urls=[site.url("/")], max_depth=1, allow=[r"/[ab]\.html$"], deny=[r"/b\.html"]))
    assert set(rows["url"]) == {site.url("/"), site.url("/a.html")}


def test_sitemap_index_with_gzip_child(site, web_cfg):
    rows, rej = read(**web_cfg(sitemap=site.url("/sitemap_index.xml")))
    assert set(rows["url"]) == {site.url(p) for p in ("/a.html", "/b.html", "/c.html", "/fr.html")}
    assert reason_of(rej, "mailto:x@y.z") == "unsupported_scheme"


def test_bad_sitemap_is_quarantined(site, web_cfg):
    rows, rej = read(**web_cfg(sitemap=site.url("/nope.xml"), urls=[site.url("/c.html")]))
    assert rows.height == 1
    r = rej.filter(pl.col("source") == site.url("/nope.xml")).row(0, named=True)
    assert r["reason"] == "sitemap_error" and "404" in r["detail"]


def test_429_retry_after_then_200(site, web_cfg):
    url = site.url("/flaky?t=1")
    t0 = time.monotonic()
    rows, rej = read(**web_cfg(urls=[url], retries=2))
    assert rej.height == 0 and rows.height == 1
    assert "Flaky page finally served" in rows["text"][0]
    assert time.monotonic() - t0 >= 0.9               # Retry-After: 1 was honoured
    assert site.count("/flaky?t=1") == {"/flaky?t=1": 2}


def test_retry_after_too_long_is_rejected_not_waited(site, web_cfg):
    t0 = time.monotonic()
    _, rej = read(**web_cfg(urls=[site.url("/always429")], retries=3))
    assert reason_of(rej, site.url("/always429")) == "rate_limited"
    assert "3600" in rej["detail"][0]
    assert time.monotonic() - t0 < 2


def test_5xx_retried_with_backoff_then_rejected(site, web_cfg):
    url = site.url("/error503?t=x")
    _, rej = read(**web_cfg(urls=[url], retries=2))
    assert reason_of(rej, url) == "http_error" and "503" in rej["detail"][0]
    assert site.count(url.replace(site.base, "")) == {"/error503?t=x": 3}   # 1 try + 2 retries


def test_slow_page_times_out(site, web_cfg):
    t0 = time.monotonic()
    _, rej = read(**web_cfg(urls=[site.url("/slow")], retries=0, timeout=0.3))
    assert reason_of(rej, site.url("/slow")) == "timeout"
    assert time.monotonic() - t0 < 1.9


@pytest.mark.parametrize("path", ["/huge.html", "/huge-stream"])
def test_huge_page_rejected_by_size(site, web_cfg, path):
    _, rej = read(**web_cfg(urls=[site.url(path)], max_bytes=100_000))
    assert reason_of(rej, site.url(path)) == "too_large"


def test_binary_body_declared_as_html(site, web_cfg):
    _, rej = read(**web_cfg(urls=[site.url("/fake.html")]))
    assert reason_of(rej, site.url("/fake.html")) == "binary_content"


def test_broken_html_is_recovered_and_empty_page_rejected(site, web_cfg):
    rows, rej = read(**web_cfg(urls=[site.url("/broken.html"), site.url("/empty.html")]))
    text = rows.filter(pl.col("url") == site.url("/broken.html"))["text"][0]
    assert "Unclosed paragraph with bold text" in text and "Second paragraph survives" in text
    assert reason_of(rej, site.url("/empty.html")) == "no_text"


def test_redirect_to_other_scheme_and_bad_start_url(site, web_cfg):
    _, rej = read(**web_cfg(urls=[site.url("/ftp-redirect"), "ftp://example.com/x", "file:///etc/passwd"]))
    assert reason_of(rej, site.url("/ftp-redirect")) == "unsupported_scheme"
    assert reason_of(rej, "ftp://example.com/x") == "unsupported_scheme"
    assert reason_of(rej, "file:///etc/passwd") == "unsupported_scheme"


def test_too_many_redirects(site, web_cfg):
    _, rej = read(**web_cfg(urls=[site.url("/redirect1")], max_redirects=1))
    assert reason_of(rej, site.url("/redirect1")) == "too_many_redirects"


def test_connection_refused_is_a_reject(web_cfg):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]          # nothing listens here after the with-block
    url = f"http://127.0.0.1:{port}/x.html"
    _, rej = read(**web_cfg(urls=[url], robots=False, retries=1))
    assert reason_of(rej, url) == "connection_error"


def test_max_pages_and_user_agent(site, web_cfg):
    rows, rej = read(**web_cfg(urls=[site.url("/kill/")], max_depth=2, max_pages=4,
                               user_agent="curate-test/1.0 (+mailto:ops@example.com)"))
    assert rows.height + rej.filter(pl.col("reason") != "unsupported_scheme").height == 4


def test_finished_crawl_is_reemitted_from_checkpoint(site, web_cfg):
    cfg = web_cfg(urls=[site.url("/c.html?run=reemit")])
    first, _ = read(**cfg)
    before = site.count("/c.html?run=reemit")
    again, _ = read(**cfg)
    assert again.equals(first)
    assert site.count("/c.html?run=reemit") == before == {"/c.html?run=reemit": 1}
    read(**{**cfg, "refresh": True})
    assert site.count("/c.html?run=reemit") == {"/c.html?run=reemit": 2}


def test_config_errors():
    from pydantic import ValidationError
    with pytest.raises(ValidationError, match="urls"):
        WebSource()
    with pytest.raises(ValidationError, match="invalid regex"):
        WebSource(urls=["http://x"], allow=["("])


def test_helpers():
    assert normalize_url("HTTP://Example.COM:80/a#frag") == "http://example.com/a"
    assert normalize_url("https://x.org") == "https://x.org/"
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("garbage") is None


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {repo!r})
    from curate.connectors import web
    cfg = {cfg!r}
    kill_after = int(sys.argv[1])
    done = 0
    real_record = web.CrawlState.record
    def record(self, outcome):
        global done
        real_record(self, outcome)         # the page is checkpointed...
        done += 1
        if kill_after and done >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)   # ...then the process dies (kill -9)
    web.CrawlState.record = record
    rows = 0
    for b in web.WebSource(**cfg).read():
        rows += b.rows.height
    print("ROWS", rows)
""")


@pytest.mark.slow
def test_killed_crawl_resumes_without_refetching(site, web_cfg, tmp_path):
    cfg = web_cfg(urls=[site.url("/kill/")], max_depth=2, concurrency=1, allow=["/kill/"])
    script = tmp_path / "crawl.py"
    script.write_text(KILL_SCRIPT.format(repo=str(REPO), cfg=cfg))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    mark = site.mark()
    killed = subprocess.run([sys.executable, str(script), "5"], capture_output=True, text=True, env=env,
                            timeout=60)
    assert killed.returncode == -9, killed.stderr
    fetched_before = site.count("/kill/", since=mark)
    assert len(fetched_before) == 5
    done = subprocess.run([sys.executable, str(script), "0"], capture_output=True, text=True, env=env,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "ROWS 17" in done.stdout                # index + 8 pages + 8 second-level pages
    counts = site.count("/kill/", since=mark)
    assert len(counts) == 17 and set(counts.values()) == {1}, counts


def test_per_host_rate_limit_spaces_requests(site, web_cfg):
    urls = [site.url(f"/c.html?rate={i}") for i in range(5)]
    t0 = time.monotonic()
    rows, _ = read(**web_cfg(urls=urls, rate_limit=10, concurrency=4, robots=False))
    assert rows.height == 5
    assert time.monotonic() - t0 >= 0.4              # 5 starts, 0.1 s apart, despite 4 workers


def test_site_selectors_choose_and_drop_content(site, web_cfg):
    rows, _ = read(**web_cfg(urls=[site.url("/a.html")], selectors={"127.0.0.1": ["table", "h2"]}))
    assert rows["text"][0] == "## Details\nspecies | count\ncrab | 12"
    rows, _ = read(**web_cfg(urls=[site.url("/a.html")], exclude_selectors=["table", "ul"]))
    text = rows["text"][0]
    assert "crab" not in text and "First paragraph of article A" in text
