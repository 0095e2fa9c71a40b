"""Users' own components: the README's MinChars step from a pipeline's `plugins:` (module name and
.py path) and from an installed package's `curate.components` entry point, through the real CLI
(`curate validate`, `curate build`, `curate list`, `curate show`) in subprocesses, so each run
has a fresh registry."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CURATE = [sys.executable, "-c", "from curate.cli import main; main()"]


def readme_blocks(lang: str) -> list[str]:
    """The ``lang`` code blocks of the README's "Writing a step" section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Writing a step", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{lang}\n(.*?)```", section, flags=re.S)


def curate(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    e = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run([*CURATE, *args], cwd=cwd, env=e, capture_output=True, text=True, timeout=300)


@pytest.fixture
def project(tmp_path) -> Path:
    """A folder with the README's my_steps.py and pipeline file (workdir/out_dir inside it)."""
    (tmp_path / "my_steps.py").write_text(readme_blocks("python")[0])
    pipe = readme_blocks("yaml")[0] + f"workdir: {tmp_path / '.curate'}\nout_dir: {tmp_path / 'out'}\n"
    (tmp_path / "pipeline.yaml").write_text(pipe)
    return tmp_path


@pytest.mark.slow
def test_readme_min_chars_from_yaml_validate_and_build(project, tmp_path):
    # run from another folder: the module is found next to the pipeline file
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = curate("validate", str(project / "pipeline.yaml"), cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    assert "1 steps" in r.stdout
    r = curate("build", "-q", str(project / "pipeline.yaml"), cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    manifest = json.loads((project / "out" / "manifest.json").read_text())
    step = manifest["steps"][0]
    assert step["rows_in"] == 2 and step["rows_out"] == 1 and step["rows_rejected"] == 1
    rejects = [json.loads(ln) for ln in (project / "out" / "rejects.jsonl").read_text().splitlines()]
    assert [(r["reason"], r["detail"]) for r in rejects] == [("too_short", "2 chars")]


def test_without_plugins_the_step_is_unknown(project):
    text = (project / "pipeline.yaml").read_text().replace("plugins: [my_steps]\n", "")
    (project / "nope.yaml").write_text(text)
    r = curate("validate", "nope.yaml", cwd=project)
    assert r.returncode == 2 and "unknown step 'min_chars'" in r.stderr


def test_plugin_as_py_path_and_broken_plugin_names_file_and_line(project):
    sub = project / "lib"
    sub.mkdir()
    (project / "my_steps.py").rename(sub / "steps_file.py")
    text = (project / "pipeline.yaml").read_text()
    (project / "bypath.yaml").write_text(text.replace("plugins: [my_steps]", "plugins: [lib/steps_file.py]"))
    r = curate("validate", "bypath.yaml", cwd=project)
    assert r.returncode == 0, r.stderr
    (project / "broken.yaml").write_text(text.replace("plugins: [my_steps]", "plugins:\n  - no_such_module_xyz"))
    r = curate("validate", "broken.yaml", cwd=project)
    assert r.returncode == 2
    assert re.search(r"broken\.yaml:3.*no_such_module_xyz.*failed to import", r.stderr.replace("\n", " "))


@pytest.mark.slow
def test_entry_point_group_makes_components_available_everywhere(project, tmp_path):
    """An installed distribution (a dist-info on the path) declaring `curate.components`."""
    site = tmp_path / "site"
    pkg = site / "acme_curate"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "steps.py").write_text(readme_blocks("python")[0])
    dist = site / "acme_curate-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-curate\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent("""
        [curate.components]
        acme = acme_curate.steps
    """))
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    text = (project / "pipeline.yaml").read_text().replace("plugins: [my_steps]\n", "")
    (project / "ep.yaml").write_text(text)
    (project / "my_steps.py").unlink()
    r = curate("build", "-q", "ep.yaml", cwd=project, env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads((project / "out" / "manifest.json").read_text())["steps"][0]["rows_rejected"] == 1
    r = curate("list", cwd=project, env=env)
    assert re.search(r"min_chars\s+Reject texts shorter than `min_chars` characters\.", r.stdout)
    r = curate("show", "min_chars", cwd=project, env=env)
    assert r.returncode == 0
    assert re.search(r"min_chars\s+│\s+int\s+│\s+20\s+│\s+Reject texts with fewer characters\.", r.stdout)


@pytest.mark.slow
def test_list_and_show_built_ins(tmp_path):
    r = curate("list", cwd=tmp_path)
    assert r.returncode == 0
    for name in ("clean", "language_filter", "redact_pii", "dedup", "inline", "jsonl", "dpo_pairs"):
        assert re.search(rf"^\s*{name}\s+\S", r.stdout, flags=re.M), name
    r = curate("show", "clean", cwd=tmp_path)
    assert r.returncode == 0
    # nested model options appear as a.b, with types, defaults and descriptions
    assert re.search(r"pii\.emails\s+│\s+bool \| null\s+│\s+null\s+│\s+Redact email addresses\.", r.stdout)
    assert re.search(r"repetition\.dup_line_frac\s+│\s+float \| null\s+│\s+0\.3\s+│", r.stdout)
    assert re.search(r"language_candidates\s+│\s+list\[str\] \| 'all' \| null", r.stdout)
    r = curate("show", "jsonl", cwd=tmp_path)             # a source and an output share the name
    assert "source jsonl" in r.stdout and "output jsonl" in r.stdout
    r = curate("show", "claen", cwd=tmp_path)
    assert r.returncode == 2 and "did you mean clean" in r.stderr


@pytest.mark.slow
def test_broken_entry_point_is_reported_not_fatal(tmp_path):
    site = tmp_path / "site"
    dist = site / "broken_curate-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-curate\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[curate.components]\nbroken = no_such_pkg_xyz.steps\n")
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    r = curate("list", cwd=tmp_path, env=env)
    assert r.returncode == 0 and re.search(r"^\s*clean\s", r.stdout, flags=re.MULTILINE)
    assert "plug-in broken (no_such_pkg_xyz.steps) failed to import" in r.stderr.replace("\n", " ")


def test_builtin_index_is_current():
    """curate/_registry_index.py names every built-in component's module (regenerate with
    `python -m curate.registry` after adding one)."""
    from curate import registry
    from curate._registry_index import BUILTIN
    found = registry.builtin_index()
    # a plug-in module that cannot import here (a missing optional extra) is not held against it
    broken = set(registry.import_errors)
    want = {kind: {n: m for n, m in names.items() if m not in broken} for kind, names in BUILTIN.items()}
    assert found == want, "run `python -m curate.registry` to regenerate curate/_registry_index.py"
    assert BUILTIN["step"]["dedup"] == "curate.steps.dedup.step"


def test_builtin_lookup_imports_one_module_and_unknown_names_discover_all():
    """Looking up a built-in imports its module, not every plug-in; a name outside the index
    still finds plug-ins (here a made-up one is unknown) after importing them all."""
    code = textwrap.dedent("""
        import sys
        from curate import registry
        cls = registry.get("step", "dedup")
        assert cls.__name__ == "Dedup", cls
        assert not registry._discovered
        assert "curate.steps.quality.relevance" not in sys.modules
        assert registry.get("step", "no_such_step") is None
        assert registry._discovered and "curate.steps.quality.relevance" in sys.modules
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
