"""Every ```yaml and ```python block of README.md is a test, so the docs cannot drift.

- A YAML block with `sources:` is a pipeline file: it must pass `curate validate` (environment
  variables need not be set). A YAML block with `model:` at the root is a train file: it must pass
  `curate validate` too. A `plugins:` pipeline gets the README's preceding Python block saved as
  the plug-in module.
- `<!-- fragment: steps -->` right before a fence: the block is a `steps:` list; it is validated
  inside a minimal pipeline. `<!-- fragment -->`: a piece of a file, skipped explicitly (and only
  those).
- A Python block runs in a fresh interpreter, in a temp folder holding `pipelines/` (the shipped
  data), so what it writes stays out of the repository.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from curate.validate import check_file

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
MARK = re.compile(r"<!--\s*fragment(?::\s*(\w+))?\s*-->\s*$")


def snippets() -> list:
    text = README.read_text(encoding="utf-8")
    out = []
    for m in FENCE.finditer(text):
        lang, body = m.group(1).lower(), m.group(2)
        if lang not in ("yaml", "python"):
            continue
        line = text.count("\n", 0, m.start()) + 1
        before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = MARK.search(before)
        kind = None if mark is None else (mark.group(1) or "skip")
        marks = [pytest.mark.slow] if lang == "python" else []      # they run pipelines
        out.append(pytest.param(lang, body, kind, line, id=f"README.md:{line}:{lang}", marks=marks))
    return out


def previous_python(line: int) -> str:
    """The README's last Python block before ``line`` (the plug-in module a pipeline names)."""
    blocks = [p.values for p in snippets() if p.values[0] == "python" and p.values[3] < line]
    return blocks[-1][1]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """One folder for every snippet, so the Python blocks share the quickstart's cache."""
    tmp = tmp_path_factory.mktemp("readme")
    (tmp / "pipelines").symlink_to(REPO / "pipelines")
    return tmp


def test_readme_has_snippets():
    langs = [p.values[0] for p in snippets()]
    assert langs.count("yaml") >= 4 and langs.count("python") >= 2


@pytest.mark.parametrize("lang,body,kind,line", [p for p in snippets() if p.values[2] != "skip"])
def test_snippet(lang, body, kind, line, workdir):
    # blocks marked <!-- fragment --> (a piece of a file) are left out here, not collected as skips
    if lang == "python":
        script = workdir / "snippet.py"
        script.write_text(body)
        env = {**os.environ, "PYTHONPATH": str(workdir)}
        res = subprocess.run([sys.executable, str(script)], cwd=workdir, env=env,
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, f"README.md:{line} python block failed:\n{res.stderr[-3000:]}"
        return
    doc = yaml.safe_load(body)
    if kind == "steps":
        assert isinstance(doc, dict) and set(doc) == {"steps"}, f"README.md:{line}: expected a steps: list"
        doc = {"name": "snippet", "sources": [{"inline": {"rows": [{"text": "a b c"}]}}], **doc}
        body = yaml.safe_dump(doc, sort_keys=False)
    elif kind is not None:
        pytest.fail(f"README.md:{line}: unknown fragment kind {kind!r}")
    assert isinstance(doc, dict) and ("sources" in doc or "model" in doc), (
        f"README.md:{line}: neither a pipeline (sources:) nor a train file (model:); "
        "mark it <!-- fragment --> if it is a piece of a file")
    for mod in doc.get("plugins") or []:
        (workdir / f"{mod}.py").write_text(previous_python(line))
    f = workdir / "snippet.yaml"
    f.write_text(body)
    checked = check_file(f)
    assert checked.kind == ("pipeline" if "sources" in doc else "train")
