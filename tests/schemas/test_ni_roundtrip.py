"""NI round trip (source -> output with no steps gives back the same task), NI defaults (#18) and
what the NI output does with splits and with copies made by balancing (#12)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl
import pytest

from curate.connectors.natural_instructions import NaturalInstructionsSource
from curate.errors import DataError
from curate.schemas.natural_instructions import NaturalInstructionsOutput, validate_task

from .conftest import DATA, rows_source

REPO_TASK = DATA / "ni_tasks" / "task1146_country_capital.json"
#: Upstream tasks kept outside the repository (read-only; see /work/shared/data/README.md).
SHARED_TASKS = sorted((Path(__file__).resolve().parents[3] / "shared" / "data" / "ni_tasks").glob("task*.json"))


def _no_nan(o):
    """Upstream quirk: a bare NaN (not JSON) is written as "" — the one change a round trip makes."""
    if isinstance(o, float) and math.isnan(o):
        return ""
    if isinstance(o, list):
        return [_no_nan(x) for x in o]
    if isinstance(o, dict):
        return {k: _no_nan(v) for k, v in o.items()}
    return o


def roundtrip(run_pipeline, path: Path, out: Path, sub: str, **out_cfg) -> tuple[Path, object]:
    res = run_pipeline([NaturalInstructionsSource(path=str(path))],
                       outputs=[NaturalInstructionsOutput(dir=str(out), **out_cfg)], sub=sub)
    files = sorted(out.glob("*.json"))
    assert len(files) == 1, files
    return files[0], res


def test_roundtrip_gives_back_the_same_file(tmp_path, run_pipeline):
    written, res = roundtrip(run_pipeline, REPO_TASK, tmp_path / "ni", "a")
    assert written.name == REPO_TASK.name
    assert written.read_bytes() == REPO_TASK.read_bytes()        # same ids, header, examples, order, bytes
    stats = res.manifest["outputs"][0]["stats"]["tasks"][written.name]
    assert stats["examples_from"] == "task_meta" and stats["removed_example_inputs"] == 0


@pytest.mark.skipif(not SHARED_TASKS, reason="needs ../shared/data/ni_tasks (upstream tasks, not shipped)")
@pytest.mark.parametrize("path", SHARED_TASKS, ids=lambda p: p.stem)
def test_roundtrip_upstream_tasks(tmp_path, run_pipeline, path):
    written, _ = roundtrip(run_pipeline, path, tmp_path / "ni", path.stem)
    old = json.loads(path.read_text(encoding="utf-8"))
    new = json.loads(written.read_text(encoding="utf-8"))
    assert written.name == path.name
    assert new == _no_nan(old) and list(new) == list(old)
    assert [i["id"] for i in new["Instances"]] == [i["id"] for i in old["Instances"]]
    if "NaN" not in path.read_text(encoding="utf-8"):
        assert written.read_bytes() == path.read_bytes()


def test_roundtrip_config_overrides_only_what_it_sets(tmp_path, run_pipeline):
    written, _ = roundtrip(run_pipeline, REPO_TASK, tmp_path / "ni", "b", definition="Name the capital.",
                           contributors=["me"])
    raw, new = json.loads(REPO_TASK.read_text()), json.loads(written.read_text())
    assert new["Definition"] == ["Name the capital."] and new["Contributors"] == ["me"]
    assert {k: v for k, v in new.items() if k not in ("Definition", "Contributors")} == \
           {k: v for k, v in raw.items() if k not in ("Definition", "Contributors")}
    # another task number: the ids must carry it, so they are derived (deterministically)
    written, _ = roundtrip(run_pipeline, REPO_TASK, tmp_path / "ni2", "c", task_number=77)
    new = json.loads(written.read_text())
    assert written.name == "task77_country_capital.json" and validate_task(new, written.stem) == []
    assert all(i["id"].startswith("task77-") for i in new["Instances"])


def test_splits_write_one_task_per_split_with_examples_from_train(tmp_path, run_pipeline, sms_balanced):
    out = tmp_path / "ni"
    res = run_pipeline([rows_source(sms_balanced.to_dicts())], steps=[{"split": {"test": 0.2, "validation": 0.1}}],
                       outputs=[NaturalInstructionsOutput(dir=str(out), definition="Spam or ham?")])
    names = sorted(p.name for p in out.glob("*.json"))
    base = "task9000_t_classification"          # the pipeline is called "t" (default name, #18)
    assert names == sorted(f"{base}_{s}.json" for s in ("train", "validation", "test"))
    st = res.manifest["outputs"][0]["stats"]
    assert set(st["splits"]) == {"train", "validation", "test"}
    assert st["splits"]["test"]["files"] == [str(out / f"{base}_test.json")]
    assert sum(s["rows"] for s in st["splits"].values()) == 600
    tasks = {s: json.loads((out / f"{base}_{s}.json").read_text()) for s in ("train", "validation", "test")}
    split_of = dict(zip(res.data()["text"], res.data()["split"]))
    for s, t in tasks.items():
        assert {i["input"] for i in t["Instances"]} <= {x for x, sp in split_of.items() if sp == s}
        assert t["Positive Examples"] == tasks["train"]["Positive Examples"]     # one task, one set of examples
    for e in tasks["train"]["Positive Examples"] + tasks["train"]["Negative Examples"]:
        assert split_of[e["input"]] == "train"                                    # never a test row
    # defaults (#18): classification without examples in the config gets one positive per label
    assert {e["output"] for e in tasks["train"]["Positive Examples"]} == {"ham", "spam"}
    assert len(tasks["train"]["Negative Examples"]) == 1


def test_split_files_can_be_turned_off(tmp_path, run_pipeline, sms_balanced):
    out = tmp_path / "ni"
    run_pipeline([rows_source(sms_balanced.to_dicts())], steps=[{"split": {}}],
                 outputs=[NaturalInstructionsOutput(dir=str(out), definition="Spam or ham?", split_files=False,
                                                    task_name="sms")])
    assert [p.name for p in out.glob("*.json")] == ["task9000_sms.json"]


def test_copies_from_oversampling_stop_the_build_naming_the_step(tmp_path, run_pipeline, sms_balanced):
    rows = pl.concat([sms_balanced.filter(pl.col("label") == "ham"),
                      sms_balanced.filter(pl.col("label") == "spam").head(60)]).to_dicts()
    out = NaturalInstructionsOutput(dir=str(tmp_path / "ni"), definition="Spam or ham?")
    with pytest.raises(DataError, match=r"240 rows repeat an instance input.*240 made by step balance "
                                        r"\(oversample\) \(e\.g\. id '[0-9a-f]+-os1' copies"):
        run_pipeline([rows_source(rows)], steps=[{"balance": {"method": "oversample"}}], outputs=[out])
    assert not (tmp_path / "ni").exists()
    merged = NaturalInstructionsOutput(dir=str(tmp_path / "ni"), definition="Spam or ham?",
                                       repeated_inputs="merge", strict=False)
    res = run_pipeline([rows_source(rows)], steps=[{"balance": {"method": "oversample"}}], outputs=[merged],
                       sub="m")
    st = res.manifest["outputs"][0]["stats"]
    assert any("240 rows with a repeated input were merged" in w for w in st["warnings"])
