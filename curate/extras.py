"""Optional dependencies: the core install carries what a clean → dedup → jsonl/NI/DPO pipeline
needs; everything heavier (torch, transformers, spaCy, SQL drivers, boto3 ...) lives in an extra
and is imported only where it is used, through :func:`require`, so a missing one says which
extra to install instead of a bare ``ModuleNotFoundError``.

    torch = require("torch", extra="ml")
    require("sqlalchemy", extra="sql")            # then: from sqlalchemy import ...
"""
from __future__ import annotations

import importlib
from types import ModuleType

from curate.errors import CurateError

DIST = "curate-toolkit"

#: Extras and what they carry (pyproject.toml is the truth; this is for messages and docs).
EXTRAS: dict[str, str] = {
    "sql": "SQL sources and outputs (sqlalchemy, psycopg, pymysql, sqlglot)",
    "s3": "s3:// paths and the s3 connector (s3fs, boto3)",
    "web": "the web crawler (requests, beautifulsoup4, lxml)",
    "ml": "models: torch, transformers, datasets, sentence embeddings",
    "fast-embed": "fast sentence embeddings (onnxruntime, onnx; model2vec for the static backend)",
    "augment": "augmenters (nlpaug, nltk, spaCy, gensim)",
    "train": "the bundled trainer (peft, trl, accelerate)",
    "llm": "LLM generation over HTTP and the synth steps (httpx, rapidfuzz)",
    "report": "the HTML report's plots (plotly)",
}


class MissingExtra(CurateError):
    """An optional dependency is not installed; the message names the extra that brings it."""


def install_hint(extra: str) -> str:
    return f"pip install '{DIST}[{extra}]'"


def require(module: str, extra: str, what: str | None = None) -> ModuleType:
    """Import and return ``module``; if it is not installed raise :class:`MissingExtra` naming
    ``extra`` (``what`` says which feature needed it, e.g. "the minhash dedup")."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        top = module.split(".")[0]
        if e.name is not None and e.name.split(".")[0] != top:
            raise                         # the module is there but one of *its* imports is broken
        need = f" (needed by {what})" if what else ""
        raise MissingExtra(f"{top} is not installed{need}; install the [{extra}] extra: "
                           f"{install_hint(extra)}") from None


def available(module: str) -> bool:
    """True when ``module`` can be imported (without importing it)."""
    from importlib.util import find_spec
    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):
        return False
