"""Fixtures for the synth/llm tests: a tiny random Llama, an in-memory source, a scripted
model behind the real OpenAI-compatible HTTP server (for judges whose answers we control)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Sequence

import polars as pl
import pytest

from curate.llm.base import LLM, BackendSpec, Generation, SamplingParams
from curate.registry import get, register_source
from curate.source import Source, SourceBatch, SourceConfig

REPO = Path(__file__).resolve().parents[2]
SEEDS = REPO / "pipelines" / "data" / "self_instruct_seed_tasks.jsonl"


class RowsConfig(SourceConfig):
    rows: list[dict]


if get("source", "synth_rows") is None:
    @register_source("synth_rows")
    class RowsSource(Source):
        """Rows given inline (tests only)."""

        Config = RowsConfig

        def read(self):
            df = pl.DataFrame(self.config.rows).with_columns(
                pl.format("rows:{}", pl.int_range(pl.len())).alias("source"))
            yield SourceBatch(df)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from curate.testing import tiny_llama
    return tiny_llama(tmp_path_factory.mktemp("tiny_llama"))


@pytest.fixture(scope="session")
def tiny_reward(tmp_path_factory) -> Path:
    from curate.testing import tiny_classifier
    return tiny_classifier(tmp_path_factory.mktemp("tiny_rm"), num_labels=1)


class ScriptedLLM(LLM):
    """A stand-in model whose answer is a function of the prompt (and sample index)."""

    def __init__(self, answer: Callable[[str, int], str]) -> None:
        self.spec = BackendSpec(model="scripted")
        self.answer = answer
        self.calls = 0

    def generate(self, prompts: Sequence, params: SamplingParams) -> list[list[Generation]]:
        self.calls += len(prompts)
        out = []
        for p in prompts:
            text = p if isinstance(p, str) else p[-1]["content"]
            out.append([Generation(self.answer(text, j), 3, 3, "stop") for j in range(params.n)])
        return out


@pytest.fixture
def scripted_server():
    """Start a real HTTP server around a scripted model: ``srv = scripted_server(fn)``."""
    from curate.llm.server import serve
    servers = []

    def start(answer: Callable[[str, int], str], **kw):
        srv = serve(ScriptedLLM(answer), **kw)
        servers.append(srv)
        return srv
    yield start
    for s in servers:
        s.stop()


def judge_by_marker(text: str, j: int) -> str:
    """Judge answers driven by markers planted in the judged response."""
    m = re.search(r"### Response\n(.*?)\n\n", text, re.S)
    resp = m.group(1) if m else text
    if "UNPARSABLE" in resp:
        return "I refuse to grade this."
    m = re.search(r"SCORE(\d+)", resp)
    if m:
        return f"Reasoning... Score: {m.group(1)}/10"
    return "Looks fine. Score: 8/10"


@pytest.fixture
def judge_marker():
    return judge_by_marker


@pytest.fixture
def seeds_path() -> Path:
    return SEEDS
