"""A tiny OpenAI-compatible HTTP server over the transformers backend (threaded ``http.server``).

For tests (real HTTP, real model, injectable failures) and for users who want to share one
loaded model between processes: ``python -m curate.llm.server --model PATH --port 8000``.
"""
from __future__ import annotations

import argparse
import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from curate.llm.base import LLM, SamplingParams


class CompletionServer(ThreadingHTTPServer):
    """Serves ``/v1/chat/completions``, ``/v1/completions`` and ``/v1/models``.

    ``failures`` is a queue of injected faults consumed one per completion request:
    ``{"status": 429, "retry_after": 0.1}``, ``{"status": 500}`` or ``{"hang": seconds}``.
    """

    daemon_threads = True

    def __init__(self, llm: LLM, host: str = "127.0.0.1", port: int = 0, model_name: str = "curate-local",
                 failures: list[dict[str, Any]] | None = None) -> None:
        super().__init__((host, port), _Handler)
        self.llm = llm
        self.model_name = model_name
        self.failures: deque[dict[str, Any]] = deque(failures or [])
        self.requests = 0
        self.lock = threading.Lock()          # one generation at a time on the shared model
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> "CompletionServer":
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def __enter__(self) -> "CompletionServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    server: CompletionServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            self._send(200, {"object": "list", "data": [{"id": self.server.model_name, "object": "model"}]})
        elif self.path.rstrip("/") == "/health":
            self._send(200, {"status": "ok"})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:  # noqa: N802
        srv = self.server
        length = int(self.headers.get("Content-Length") or 0)
        try:
            req = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError as e:
            self._send(400, {"error": {"message": f"invalid JSON: {e}"}})
            return
        chat = self.path.rstrip("/").endswith("/chat/completions")
        if not chat and not self.path.rstrip("/").endswith("/completions"):
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        with srv.lock:
            srv.requests += 1
            fault = srv.failures.popleft() if srv.failures else None
        if fault:
            if "hang" in fault:
                time.sleep(float(fault["hang"]))
            else:
                hdr = {"Retry-After": str(fault["retry_after"])} if "retry_after" in fault else None
                self._send(int(fault["status"]), {"error": {"message": "injected failure"}}, hdr)
                return
        prompt = req.get("messages") if chat else req.get("prompt", "")
        if not prompt:
            self._send(400, {"error": {"message": "messages/prompt is required"}})
            return
        params = SamplingParams(max_new_tokens=int(req.get("max_tokens") or 16),
                                temperature=float(req.get("temperature", 1.0)),
                                top_p=float(req.get("top_p", 1.0)), n=int(req.get("n") or 1),
                                seed=int(req.get("seed") or 0), stop=tuple(req.get("stop") or ()),
                                ignore_eos=bool(req.get("ignore_eos", False)))
        with srv.lock:
            gens = srv.llm.generate([prompt], params)[0]
        choices = []
        for i, g in enumerate(gens):
            c: dict[str, Any] = {"index": i, "finish_reason": g.finish_reason}
            if chat:
                c["message"] = {"role": "assistant", "content": g.text}
            else:
                c["text"] = g.text
            choices.append(c)
        usage = {"prompt_tokens": gens[0].prompt_tokens,
                 "completion_tokens": sum(g.completion_tokens for g in gens)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        self._send(200, {"id": f"cmpl-{srv.requests}", "object": "chat.completion" if chat else "text_completion",
                         "created": int(time.time()), "model": req.get("model") or srv.model_name,
                         "choices": choices, "usage": usage})


def serve(llm: LLM, host: str = "127.0.0.1", port: int = 0, **kw: Any) -> CompletionServer:
    """Start a server in a background thread; ``.url`` is the base URL, ``.stop()`` ends it."""
    return CompletionServer(llm, host, port, **kw).start()


def main(argv: list[str] | None = None) -> None:
    from curate.llm.base import BackendSpec, load_backend
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="HF model name or local path")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--batch-tokens", type=int, default=16384)
    a = ap.parse_args(argv)
    srv = CompletionServer(load_backend(BackendSpec(model=a.model, batch_tokens=a.batch_tokens)),
                           a.host, a.port, model_name=a.model)
    print(f"serving {a.model} at {srv.url}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
