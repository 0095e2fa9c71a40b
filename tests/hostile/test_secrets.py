"""Planted credentials never surface: passwords with raw ``@ : / #`` (which break URL parsing),
URLs that do not parse, S3 endpoints and web start URLs with userinfo, an LLM server that echoes
the API key. Each error path runs in a child process (time + memory limit); no 4-character piece
of the secret may appear in the exception text, `curate build`'s stderr, the manifest or rejects.
"""
from __future__ import annotations

import json
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from curate.io import mask_secrets, mask_url, url_secrets

PW = "Pl4nt@d:Se/cr#et"          # raw @ : / # in one password
KEY = "sk-Z9plantedK3y77"


def pieces(secret: str, n: int = 4) -> set[str]:
    """Every ``n``-character window of ``secret`` (what must never leak, not only the whole)."""
    return {secret[i:i + n] for i in range(len(secret) - n + 1)}


def assert_clean(text: str, secret: str = PW, where: str = "") -> None:
    leaked = sorted(p for p in pieces(secret) if p in text)
    assert not leaked, f"{where}: pieces of the secret leaked: {leaked}\n{text[-1500:]}"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------ the masker itself
@pytest.mark.parametrize("text", [
    f"postgresql+psycopg://bob:{PW}@db.example:5432/x",
    f"could not parse rfc1738 URL from string 'mysql://root:{PW}@[::zz:99/t'",
    f"endpoint http://AKIA:{PW}@minio:9000/bucket/key failed",
    f"dsn: host=db user=bob password={PW} dbname=x",
    f'{{"password": "{PW}", "url": "x"}}',
])
def test_mask_secrets_hides_every_piece(text):
    assert_clean(mask_secrets(text, url_secrets(text.split("'")[-2] if "'" in text else "")), where=text)


def test_mask_keeps_user_and_host_where_it_can():
    assert mask_url(f"postgresql://bob:{PW}@db:5432/x") == "postgresql://bob:***@db:5432/x"
    assert mask_url("https://h/path/@handle") in ("https://***@handle", "https://h/path/@handle")
    assert mask_secrets("sources[0].sql.password: Field required") == "sources[0].sql.password: Field required"


# ------------------------------------------------------------------------------ sql
SQL_CHILD = """
from curate.connectors.sql import SqlSource
from curate.errors import CurateError
try:
    list(SqlSource(url=URL, table="t", connect_timeout=2).read())
    result = "no error"
except CurateError as e:
    result = [type(e).__name__, str(e)]
"""


@pytest.mark.parametrize("url", [
    "postgresql+psycopg://bob:{pw}@127.0.0.1:{port}/x",          # password with raw @ : / #
    "mysql+pymysql://root:{pw}@127.0.0.1:{port}/x",
    "postgresql+psycopg://bob:{pw}@127.0.0.1:notaport/x",         # does not parse at all
    "postgresql+nosuchdriver://bob:{pw}@127.0.0.1:{port}/x",      # unknown driver
])
def test_sql_error_paths_mask_password(isolated, url):
    url = url.format(pw=PW, port=_closed_port())
    res = isolated(f"URL = {url!r}\n" + SQL_CHILD, timeout=30, mem_mb=1536).ok()
    kind, msg = res.result
    assert kind in ("DataError", "CurateError", "MissingExtra"), msg
    assert "***" in msg or "nosuchdriver" in msg
    assert_clean(msg + res.stdout + res.stderr, where=url)


def test_mariadb_access_denied_with_at_sign_password(isolated):
    base = os.environ.get("CURATE_TEST_MARIADB_URL")
    if not base:
        if os.environ.get("CURATE_REQUIRE_SERVICES") == "1":
            pytest.fail("CURATE_TEST_MARIADB_URL is not set but CURATE_REQUIRE_SERVICES=1")
        pytest.skip("CURATE_TEST_MARIADB_URL is not set")
    user_host = base.split("://", 1)[1].split("@", 1)[-1]
    url = f"mysql+pymysql://root:{PW}@{user_host}"
    res = isolated(f"URL = {url!r}\n" + SQL_CHILD, timeout=30).ok()
    kind, msg = res.result
    assert "Access denied" in msg or "cannot connect" in msg, msg
    assert_clean(msg + res.stderr, where="mariadb")


def _build(isolated, tmp_path: Path, source_yaml: str, env: dict[str, str]):
    """`curate build` in a child process: returns (child result, manifest text, rejects text)."""
    f = tmp_path / "p.yaml"
    f.write_text(f"name: leak\nworkdir: {tmp_path}/.curate\nout_dir: {tmp_path}/out\nsources:\n"
                 f"  - {source_yaml}\noutputs:\n  - jsonl: {{path: {tmp_path}/out/data.jsonl}}\n")
    code = ("import sys\nfrom curate.cli import app\n"
            f"try:\n    app(['build', {str(f)!r}, '--quiet', '--no-report'])\n"
            "except SystemExit as e:\n    result = e.code\n")
    res = isolated(code, timeout=90, env=env)
    texts = {}
    for name in ("manifest.json", "rejects.jsonl"):
        found = list((tmp_path / "out").rglob(name))
        texts[name] = "\n".join(p.read_text() for p in found)
    return res, texts


@pytest.mark.slow
def test_cli_build_sql_secret_never_in_stderr_or_manifest(isolated, tmp_path):
    url = f"postgresql+psycopg://bob:{PW}@127.0.0.1:{_closed_port()}/x"
    res, texts = _build(isolated, tmp_path, "sql: {url: '${env:TICKETS_DB}', table: t, connect_timeout: 2}",
                        {"TICKETS_DB": url})
    assert res.result == 1 and "error" in res.stderr and "cannot connect" in res.stderr
    assert texts["manifest.json"], "a failed build still leaves a manifest"
    for where, text in (("stderr", res.stderr), ("stdout", res.stdout), *texts.items()):
        assert_clean(text, where=where)


@pytest.mark.slow
def test_cli_build_s3_endpoint_with_userinfo(isolated, tmp_path):
    endpoint = f"http://AKIAPLANTED:{PW}@127.0.0.1:{_closed_port()}"
    res, texts = _build(isolated, tmp_path,
                        f"s3: {{url: 's3://bucket/x.jsonl', endpoint_url: '{endpoint}', max_attempts: 1}}",
                        {"AWS_ACCESS_KEY_ID": "AKIAPLANTED", "AWS_SECRET_ACCESS_KEY": KEY})
    assert res.result == 1 and "error" in res.stderr
    for where, text in (("stderr", res.stderr), ("stdout", res.stdout), *texts.items()):
        assert_clean(text, where=where)
        assert_clean(text, KEY, where=where)


def test_s3_invalid_endpoint_is_masked(isolated):
    code = f"""
from curate.connectors.s3 import S3Source
from curate.errors import CurateError
try:
    list(S3Source(url="s3://b/x.jsonl", endpoint_url={("ht!tp://u:" + PW + "@[::zz").__repr__()}).read())
except CurateError as e:
    result = str(e)
"""
    res = isolated(code, timeout=30, env={"AWS_ACCESS_KEY_ID": "AKIAX", "AWS_SECRET_ACCESS_KEY": KEY}).ok()
    assert "endpoint" in res.result
    assert_clean(res.result + res.stderr, where="invalid endpoint")


@pytest.mark.slow
def test_cli_build_web_start_url_with_userinfo(isolated, tmp_path):
    start = f"http://crawler:{PW.replace('#', '%23').replace('/', '%2F')}@127.0.0.1:{_closed_port()}/start.html"
    res, texts = _build(isolated, tmp_path,
                        f"web: {{urls: ['{start}'], retries: 0, timeout: 1, robots: false, "
                        f"state_dir: '{tmp_path}/crawl', detect_language: false}}", {})
    assert texts["rejects.jsonl"], res.stderr[-2000:]
    assert "connection_error" in texts["rejects.jsonl"] or "fetch_failed" in texts["rejects.jsonl"]
    for where, text in (("stderr", res.stderr), ("stdout", res.stdout), *texts.items()):
        assert_clean(text, PW.replace('#', '%23').replace('/', '%2F'), where=where)


# ------------------------------------------------------------------------------ http LLM backend
class _Echo(BaseHTTPRequestHandler):
    """A generation server that refuses the key and echoes it back, as some do."""

    def log_message(self, *a):
        pass

    def do_POST(self):  # noqa: N802
        body = json.dumps({"error": f"invalid api key: {self.headers.get('Authorization')}"}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_http_backend_error_masks_echoed_key_and_userinfo(isolated):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://user:{PW.replace('#', '%23').replace('/', '%2F')}@127.0.0.1:{server.server_address[1]}/v1"
        code = f"""
from curate.llm.base import BackendSpec
from curate.llm.http_backend import HttpLLM
from curate.errors import CurateError
llm = HttpLLM(BackendSpec(backend="http", model="m", base_url={base!r}, api_key_env="LLM_AUTH_VALUE",
                          max_retries=0))
try:
    llm._post("/completions", {{"prompt": "x"}})
except CurateError as e:
    result = str(e)
"""
        res = isolated(code, timeout=30, env={"LLM_AUTH_VALUE": KEY}).ok()
    finally:
        server.shutdown()
        server.server_close()
    assert "HTTP 401" in res.result
    assert_clean(res.result, KEY, where="http backend")
    assert_clean(res.result, PW.replace('#', '%23').replace('/', '%2F'), where="http backend")


class _BasicAuthSite(BaseHTTPRequestHandler):
    """One page behind HTTP basic auth (the credentials come from the start URL's userinfo)."""

    expected = ""

    def log_message(self, *a):
        pass

    def do_GET(self):  # noqa: N802
        import base64
        ok = self.headers.get("Authorization") == "Basic " + base64.b64encode(self.expected.encode()).decode()
        body = (b"<html><head><title>Members</title></head><body><main><p>Only members may read this "
                b"page about tide pools and the crabs that live in them.</p></main></body></html>"
                if ok else b"<html><body>login required</body></html>")
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.mark.slow
def test_web_userinfo_is_used_to_fetch_but_never_stored(isolated, tmp_path):
    from urllib.parse import quote
    _BasicAuthSite.expected = f"crawler:{PW}"
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BasicAuthSite)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    enc = quote(PW, safe="")
    try:
        start = f"http://crawler:{enc}@127.0.0.1:{server.server_address[1]}/members.html"
        res, texts = _build(isolated, tmp_path,
                            f"web: {{urls: ['{start}'], robots: false, retries: 0, timeout: 5, "
                            f"state_dir: '{tmp_path}/crawl', detect_language: false}}", {})
    finally:
        server.shutdown()
        server.server_close()
    assert res.result in (None, 0), res.stderr[-2000:]
    data = (tmp_path / "out" / "data.jsonl").read_text()
    assert "tide pools" in data                           # the credentials did open the page
    assert "crawler:***@127.0.0.1" in data
    for where, text in (("data", data), ("stderr", res.stderr), ("stdout", res.stdout), *texts.items()):
        assert_clean(text, enc, where=where)
        assert_clean(text, PW, where=where)
