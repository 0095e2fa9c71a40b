"""The house rules of the layout: every package folder is installed under the curate namespace,
and the import graph has no cycles between the core modules named in DESIGN.md."""
from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAPPED = {"curate": "curate", "curate.connectors": "connectors", "curate.augmenters": "augmenters",
          "curate.schemas": "schemas"}


def _package_folders() -> set[str]:
    out = set()
    for pkg, folder in MAPPED.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            out.add(".".join([pkg, *rel.parts]))
    return out


def test_every_package_folder_is_listed_in_pyproject():
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert conf["package-dir"] == MAPPED
    listed = set(conf["packages"])
    assert _package_folders() == listed


def test_top_level_folders_import_only_under_the_curate_namespace():
    bad = []
    for folder in ("curate", "connectors", "augmenters", "schemas", "tests", "bench"):
        for f in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
                mods = []
                if isinstance(node, ast.Import):
                    mods = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    mods = [node.module]
                bad += [f"{f.relative_to(ROOT)}: {m}" for m in mods
                        if m.split(".")[0] in ("connectors", "augmenters", "schemas")]
    assert not bad, bad


def test_mapped_packages_import_and_register():
    code = ("import curate.connectors, curate.schemas, curate.augmenters; from curate import registry; "
            "assert registry.get('source', 'natural_instructions').__module__ == 'curate.connectors.natural_instructions'; "
            "assert registry.get('step', 'dpo_pairs').__module__ == 'curate.steps.dpo_pairs'; "
            "assert registry.get('step', 'synthesize').__module__.startswith('curate.steps.synth'); "
            "assert set(registry.names('llm_backend')) >= {'transformers', 'http', 'vllm'}")
    subprocess.run([sys.executable, "-c", code], check=True, cwd="/")


def _imports_of(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_no_import_cycle_between_pipeline_train_and_llm_base():
    assert not any(m.startswith("curate.pipeline") for m in _imports_of(ROOT / "curate/train/__init__.py"))
    base = _imports_of(ROOT / "curate/llm/base.py")
    assert not any(m.endswith("_backend") for m in base), base
    schemas = set()
    for f in (ROOT / "schemas").rglob("*.py"):
        schemas |= _imports_of(f)
    assert not any(m.startswith("curate.steps") for m in schemas), "formats never import steps"
