"""The OpenAI-compatible HTTP backend against the real local server (tiny model or scripted),
with injected 429/500/hang failures."""
from __future__ import annotations

import time

import pytest

from curate.errors import MissingEnvError
from curate.llm.base import BackendSpec, SamplingParams
from curate.llm.http_backend import HttpError, HttpLLM, retry_after_seconds


def client(url, **kw) -> HttpLLM:
    extra = {"backoff": 0.01, "max_backoff": 0.05}
    return HttpLLM(BackendSpec(model="tiny", backend="http", base_url=url, **kw, extra=extra))


@pytest.fixture(scope="module")
def tiny_server(tiny_model):
    from curate.llm.server import serve
    from curate.llm.transformers_backend import TransformersLLM
    srv = serve(TransformersLLM(BackendSpec(model=str(tiny_model))))
    yield srv
    srv.stop()


@pytest.mark.slow
def test_real_model_over_http_in_order_and_seeded(tiny_server):
    c = client(tiny_server.url, concurrency=4)
    prompts = ["hi", "What is the capital of France?", [{"role": "user", "content": "ok"}]]
    p = SamplingParams(max_new_tokens=5, temperature=1.0, n=2, seed=3)
    a, b = c.generate(prompts, p), c.generate(prompts, p)
    assert [len(x) for x in a] == [2, 2, 2]
    assert [[g.text for g in r] for r in a] == [[g.text for g in r] for r in b]
    assert all(g.completion_tokens > 0 and g.prompt_tokens > 0 for r in a for g in r)
    # order restored although requests ran concurrently: prompt i's answer == asking it alone
    alone = c.generate([prompts[1]], SamplingParams(max_new_tokens=5, temperature=0.0))
    both = c.generate(prompts[:2], SamplingParams(max_new_tokens=5, temperature=0.0))
    assert both[1][0].text == alone[0][0].text


def test_retries_429_honouring_retry_after(scripted_server):
    srv = scripted_server(lambda p, j: "pong", failures=[{"status": 429, "retry_after": 0.3}])
    c = client(srv.url)
    t0 = time.time()
    out = c.generate(["ping"], SamplingParams(max_new_tokens=4))
    assert out[0][0].text == "pong"
    assert time.time() - t0 >= 0.3                     # waited as the server asked
    assert srv.requests == 2 and c.stats["retries"] == 1


def test_retries_500_with_backoff(scripted_server):
    srv = scripted_server(lambda p, j: "pong", failures=[{"status": 500}, {"status": 503}])
    c = client(srv.url)
    assert c.generate(["ping"], SamplingParams())[0][0].text == "pong"
    assert srv.requests == 3 and c.stats["retries"] == 2


def test_timeout_is_retried(scripted_server):
    srv = scripted_server(lambda p, j: "pong", failures=[{"hang": 1.5}])
    c = client(srv.url, timeout=0.3)
    t0 = time.time()
    assert c.generate(["ping"], SamplingParams())[0][0].text == "pong"
    assert time.time() - t0 < 1.4 and c.stats["retries"] == 1


def test_gives_up_after_max_retries_and_names_the_url(scripted_server):
    srv = scripted_server(lambda p, j: "pong", failures=[{"status": 500}] * 3)
    c = client(srv.url, max_retries=2)
    with pytest.raises(HttpError, match=r"chat/completions failed after 3 attempts.*HTTP 500"):
        c.generate(["ping"], SamplingParams())


def test_client_errors_are_not_retried(scripted_server):
    srv = scripted_server(lambda p, j: "pong", failures=[{"status": 400}])
    c = client(srv.url)
    with pytest.raises(HttpError, match="HTTP 400"):
        c.generate(["ping"], SamplingParams())
    assert srv.requests == 1


def test_api_key_comes_from_env(scripted_server, monkeypatch):
    srv = scripted_server(lambda p, j: "pong")
    monkeypatch.delenv("CURATE_TEST_KEY", raising=False)
    with pytest.raises(MissingEnvError, match="CURATE_TEST_KEY"):
        client(srv.url, api_key_env="CURATE_TEST_KEY")
    monkeypatch.setenv("CURATE_TEST_KEY", "sk-secret")
    c = client(srv.url, api_key_env="CURATE_TEST_KEY")
    assert c.client.headers["authorization"] == "Bearer sk-secret"
    assert "sk-secret" not in repr(c.spec)


def test_n_samples_and_concurrency(scripted_server):
    srv = scripted_server(lambda p, j: f"{p}-{j}")
    c = client(srv.url, concurrency=8)
    out = c.generate([f"q{i}" for i in range(20)], SamplingParams(n=3))
    assert [[g.text for g in r] for r in out] == [[f"q{i}-{j}" for j in range(3)] for i in range(20)]


def test_retry_after_parsing():
    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after_seconds("soon") is None


def test_completions_endpoint_and_models(scripted_server):
    import httpx
    srv = scripted_server(lambda p, j: p.upper())
    c = HttpLLM(BackendSpec(model="tiny", backend="http", base_url=srv.url, chat=False))
    assert c.generate(["raw prompt"], SamplingParams(stop=("PROMPT",)))[0][0].text == "RAW "
    assert httpx.get(srv.url + "/models").json()["data"][0]["id"] == "curate-local"
    assert httpx.post(srv.url + "/chat/completions", json={"messages": []}).status_code == 400
