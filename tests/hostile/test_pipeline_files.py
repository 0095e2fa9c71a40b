"""Hostile pipeline and train files through the real CLI (`curate validate` / `curate build`),
each in a child process with a time and memory limit (conftest.py). Each case names the class and
the one-line error it must get: file:line and a message, exit status 2, never a traceback.
"""
from __future__ import annotations

import json

import pytest

CLI = """
import resource, subprocess, sys, time
{setup}
t = time.time()
p = subprocess.run([sys.executable, "-c", "from curate.cli import main; main()", *{args!r}],
                   capture_output=True, text=True, timeout={timeout})
result = {{"rc": p.returncode, "out": p.stdout, "err": p.stderr, "seconds": time.time() - t,
          "peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}}
"""

BOMB = "\n".join(["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"] + [
    f"{c}: &{c} [" + ", ".join([f"*{p}"] * 9) + "]" for p, c in zip("abcdefgh", "bcdefghi")]) + "\n"
PIPE = "name: p\nsources:\n  - jsonl: {path: x.jsonl, text: text}\noutputs:\n  - jsonl: {path: out/x.jsonl}\n"


def cli(isolated, tmp_path, args: list[str], files: dict[str, bytes | str], timeout: float = 60,
        setup: str = ""):
    """Write ``files`` in ``tmp_path`` (and run ``setup``), then run ``curate *args`` there
    (a grandchild of the test, under the child's limits)."""
    setup = "\n".join([f"open({name!r}, 'wb').write({(body.encode() if isinstance(body, str) else body)!r})"
                       for name, body in files.items()] + [setup])
    res = isolated(CLI.format(setup=setup, args=args, timeout=timeout), timeout=timeout + 30,
                   cwd=str(tmp_path)).ok()
    return res.result


def one_line_error(out: dict, text: str, where: str, rc: int = 2) -> str:
    """The CLI failed with exit ``rc`` and an `error <where>: ...<text>...` line, no traceback."""
    err = out["err"] + out["out"]
    assert out["rc"] == rc, err
    assert "Traceback" not in err and "ConstructorError" not in err, err
    line = next((ln for ln in err.splitlines() if ln.startswith("error ")), "")
    assert line.startswith(f"error {where}") and text in line, err
    return line


# ------------------------------------------------------------------ alias bombs
@pytest.mark.parametrize("command", ["validate", "build"])
def test_alias_bomb_pipeline_file_is_refused_fast(isolated, tmp_path, command):
    """Class: "billion laughs" (9 levels of 9 aliases, ~500 bytes) in a pipeline file.
    Gets: `p.yaml:N: the YAML expands to more than 100000 nodes`, in well under a second of
    parsing and 100 MB (was 107 s and 2.2 GB)."""
    out = cli(isolated, tmp_path, [command, "p.yaml"], {"p.yaml": PIPE + BOMB, "x.jsonl": '{"text": "a"}\n'})
    one_line_error(out, "the YAML expands to more than 100000 nodes", "p.yaml:")
    assert out["seconds"] < 15 and out["peak_mb"] < 300      # whole CLI start-up included


def test_alias_bomb_train_file_is_refused(isolated, tmp_path):
    """Class: alias bomb in a standalone train file. Gets: the same one-line error naming t.yaml."""
    out = cli(isolated, tmp_path, ["validate", "t.yaml"],
              {"t.yaml": "model: m\nobjective: sft\ndata: {train: x.jsonl}\n" + BOMB})
    one_line_error(out, "the YAML expands to more than 100000 nodes", "t.yaml:")


def test_alias_bomb_refused_in_process_quickly(isolated, tmp_path):
    """Class: a 10-level bomb read by the train loader in-process. Gets: PipelineFileError in
    < 1 s and < 100 MB over the interpreter's own footprint."""
    text = "model: m\nobjective: sft\ndata: {train: x.jsonl}\n" + BOMB + "j: &j [" + ", ".join(["*i"] * 9) + "]\n"
    res = isolated(f"""
        import time
        from curate.errors import CurateError
        from curate.train import load_train_config
        open("t.yaml", "w").write({text!r})
        def hwm_kb():   # this process's own peak RSS (ru_maxrss would include the forked parent's)
            return next(int(ln.split()[1]) for ln in open("/proc/self/status") if ln.startswith("VmHWM"))
        before = hwm_kb()
        t = time.time()
        try:
            load_train_config("t.yaml")
        except CurateError as e:
            result = [str(e), time.time() - t, (hwm_kb() - before) / 1024]
    """, cwd=str(tmp_path)).ok()
    msg, seconds, grew_mb = res.result
    assert msg.startswith("t.yaml:") and "more than 100000 nodes" in msg
    assert seconds < 1 and grew_mb < 100


def test_recursive_alias(isolated, tmp_path):
    """Class: an anchor that contains its own alias. Gets: `refers to its own anchor`."""
    out = cli(isolated, tmp_path, ["validate", "p.yaml"], {"p.yaml": PIPE + "x: &r [1, *r]\n"})
    one_line_error(out, "a YAML alias refers to its own anchor", "p.yaml:6")


def test_plain_aliases_and_merge_keys_still_work(isolated, tmp_path):
    """Class (control): ordinary anchors, aliases and `<<` merges. Gets: a valid pipeline."""
    body = ("name: p\nx-src: &src {path: x.jsonl}\nsources:\n  - jsonl: {<<: *src, text: text}\n"
            "outputs:\n  - jsonl: {path: out/x.jsonl}\n")
    out = cli(isolated, tmp_path, ["validate", "p.yaml"], {"p.yaml": body, "x.jsonl": '{"text": "a"}\n'})
    assert out["rc"] in (0, 2) and "alias" not in out["err"] and "tag" not in out["err"]


# ------------------------------------------------------------------ tags
@pytest.mark.parametrize("tag,shown", [
    ("!!python/object/apply:os.system [\"touch pwned\"]", "!!python/object/apply:os.system"),
    ("!!python/name:os.system", "!!python/name:os.system"),
    ("!include other.yaml", "!include"),
    ("!!binary aGVsbG8=", "!!binary"),
])
def test_unknown_tags_get_one_line(isolated, tmp_path, tag, shown):
    """Class: `!!python/...`, local and non-core tags. Gets: `p.yaml:4: YAML tag '...' is not
    allowed` (nothing constructed, nothing run)."""
    body = f"name: p\nsources:\n  - jsonl: {{path: x.jsonl}}\nx: {tag}\n"
    out = cli(isolated, tmp_path, ["validate", "p.yaml"], {"p.yaml": body})
    one_line_error(out, f"YAML tag {shown!r} is not allowed", "p.yaml:4")
    assert not (tmp_path / "pwned").exists()


# ------------------------------------------------------------------ shapes
def test_deep_flow_nesting(isolated, tmp_path):
    """Class: 5,000 nested `[`. Gets: `brackets nested more than 100 deep` (PyYAML's scanner is
    quadratic in it, its composer recursive)."""
    out = cli(isolated, tmp_path, ["validate", "p.yaml"], {"p.yaml": "x: " + "[" * 5000 + "]" * 5000 + "\n"})
    one_line_error(out, "invalid YAML: brackets nested more than 100 deep", "p.yaml")


def test_deep_block_nesting(isolated, tmp_path):
    """Class: 1,500 levels of indented mappings. Gets: `invalid YAML: nested too deeply`."""
    out = cli(isolated, tmp_path, ["validate", "p.yaml"], {},
              setup="open('p.yaml', 'w').write('\\n'.join(' ' * i + 'k:' for i in range(1500)) + ' 1\\n')")
    one_line_error(out, "invalid YAML: nested too deeply", "p.yaml")


def test_complex_mapping_key(isolated, tmp_path):
    """Class: a list used as a mapping key (`? [a, b]`). Gets: `a key must be a plain name`."""
    out = cli(isolated, tmp_path, ["validate", "p.yaml"], {"p.yaml": PIPE + "? [a, b]\n: 1\n"})
    one_line_error(out, "a key must be a plain name, not a list or mapping", "p.yaml:6")


def test_non_utf8_pipeline_file(isolated, tmp_path):
    """Class: a latin-1 byte in a pipeline file. Gets: `p.yaml:3: not UTF-8 text (byte 0xe9 ...)`."""
    out = cli(isolated, tmp_path, ["validate", "p.yaml"],
              {"p.yaml": b"name: p\nsources:\n  - jsonl: {path: caf\xe9.jsonl}\n"})
    one_line_error(out, "not UTF-8 text (byte 0xe9", "p.yaml:3")


def test_huge_pipeline_file(isolated, tmp_path):
    """Class: a 5 MiB pipeline file. Gets: `too large` before it is parsed."""
    out = cli(isolated, tmp_path, ["validate", "p.yaml"], {},
              setup=f"open('p.yaml', 'w').write({PIPE!r} + '# ' + 'x' * (5 << 20) + '\\n')")
    one_line_error(out, "is too large (at most 4194304)", "p.yaml")


def test_pipeline_path_is_a_directory(isolated, tmp_path):
    """Class: the pipeline path names a folder. Gets: a one-line error, no traceback."""
    (tmp_path / "d.yaml").mkdir()
    out = cli(isolated, tmp_path, ["validate", "d.yaml"], {})
    assert out["rc"] != 0 and "Traceback" not in out["err"] + out["out"]


# ------------------------------------------------------------------ bad input through build
@pytest.mark.slow
def test_strict_build_names_the_mislabelled_file(isolated, tmp_path):
    """Class: plain text named .jsonl.gz under `strict: true`. Gets: the build stops with
    `jsonl:x.jsonl.gz:1: bad_compression (the name says gzip ...) [strict: true]`."""
    body = PIPE.replace("x.jsonl, text: text", "x.jsonl.gz, text: text, strict: true")
    out = cli(isolated, tmp_path, ["build", "p.yaml"], {"p.yaml": body, "x.jsonl.gz": '{"text": "a"}\n'})
    line = one_line_error(out, "jsonl:x.jsonl.gz:1: bad_compression", "sources[0].jsonl", rc=1)
    assert "the name says gzip" in line and "[strict: true]" in line


@pytest.mark.slow
def test_build_quarantines_and_records_encoding_in_the_manifest(isolated, tmp_path):
    """Class: a build over a mislabelled .gz and a cp1252 file with UTF-8 lines (strict: false).
    Gets: `bad_compression` in rejects.jsonl; the manifest's source stats name each file's
    encoding, compression and `utf8_fallback_lines`."""
    body = ("name: p\nsources:\n  - jsonl: {path: [x.jsonl.gz, y.jsonl], text: text}\n"
            "outputs:\n  - jsonl: {path: out/x.jsonl}\n")
    y = '{"text": "café"}\n'.encode("cp1252") * 5000 + '{"text": "naïve"}\n'.encode()
    out = cli(isolated, tmp_path, ["build", "p.yaml"], {"p.yaml": body, "x.jsonl.gz": '{"text": "a"}\n', "y.jsonl": y})
    assert out["rc"] == 0, out["err"]
    rejects = [json.loads(ln) for ln in (tmp_path / "out/p/rejects.jsonl").read_text().splitlines()]
    assert [(r["source"], r["reason"]) for r in rejects] == [("jsonl:x.jsonl.gz:1", "bad_compression")]
    files = json.loads((tmp_path / "out/p/manifest.json").read_text())["sources"][0]["stats"]["files"]
    assert files["y.jsonl"] == {"compression": "none", "encoding": "cp1252", "utf8_fallback_lines": 1}
    assert files["x.jsonl.gz"] == {"problem": "bad_compression"}
    texts = [json.loads(ln)["text"] for ln in (tmp_path / "out/x.jsonl").read_text().splitlines()]
    assert texts.count("café") == 5000 and texts[-1] == "naïve"


