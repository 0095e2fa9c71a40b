"""Natural Instructions writer, checks and reader."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import jsonschema
import polars as pl
import pytest

from curate import records as R
from curate.connectors.natural_instructions import NaturalInstructionsSource
from curate.errors import CurateError, DataError
from curate.schemas import natural_instructions as NI
from curate.schemas.natural_instructions import (
    TOP_KEYS,
    NaturalInstructionsOutput,
    TaskSpec,
    build_task,
    load_task,
    task_json,
    validate_task,
)

from .conftest import rows_source

SMS_DEF = "Given an SMS message, answer 'spam' if it is unsolicited advertising, else 'ham'."


def ni_out(dir, **kw):
    base = dict(dir=str(dir), definition=SMS_DEF, source=["sms_spam_collection"],
                url=["https://archive.ics.uci.edu/dataset/228/sms+spam+collection"],
                categories=["Spam Classification"], domains=["Social Media"],
                instance_license=["CC BY 4.0"], auto_examples={"positive": 2, "negative": 1})
    base.update(kw)
    return NaturalInstructionsOutput(**base)


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(NI.SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_written_task_follows_upstream_rules(tmp_path, run_pipeline, sms_balanced, validator):
    sink = ni_out(tmp_path / "ni")
    res = run_pipeline([rows_source(sms_balanced.to_dicts())], outputs=[sink])
    files = sorted((tmp_path / "ni").glob("*.json"))
    assert [f.name for f in files] == ["task9000_sms_spam_collection_classification.json"]
    text = files[0].read_text(encoding="utf-8")
    task = json.loads(text)
    assert list(task) == list(TOP_KEYS)
    assert validate_task(task, files[0].stem) == []
    validator.validate(task)
    assert text == json.dumps(task, indent=4, ensure_ascii=False)      # upstream layout: no final newline
    assert "NaN" not in text
    assert task["Definition"] == [SMS_DEF] and task["Input_language"] == ["English"]
    pos, neg = task["Positive Examples"], task["Negative Examples"]
    assert len(pos) == 2 and {e["output"] for e in pos} == {"ham", "spam"}
    inputs = [i["input"] for i in task["Instances"]]
    # examples never repeat instances: the picked positives and the negative's input are removed
    assert not set(inputs) & ({e["input"] for e in pos} | {neg[0]["input"]})
    assert len(inputs) == 600 - 3
    truth = dict(zip(sms_balanced["text"], sms_balanced["label"]))
    assert neg[0]["output"] in {"ham", "spam"} and neg[0]["output"] != truth[neg[0]["input"]]
    assert neg[0]["explanation"] == f"'{neg[0]['output']}' is incorrect; the correct answer is " \
                                    f"'{truth[neg[0]['input']]}'."
    assert pos[0]["explanation"] == f"The correct answer is '{pos[0]['output']}'."
    for inst in task["Instances"]:
        assert re.fullmatch(r"task9000-[0-9a-f]{32}", inst["id"])
        assert inst["output"] == [truth[inst["input"]]]
    assert res.manifest["outputs"][0]["rows"] == 600
    stats = sink.stats["tasks"][files[0].name]
    assert stats["removed_example_inputs"] == 3 and stats["problems"] == []
    assert sorted(stats["output_counts"].values()) == [298, 299] and stats["normalised_entropy"] > 0.99


def test_explicit_label_set_drives_classification_and_negatives():
    rows = [{"text": f"q{i}", "label": "yes" if i % 2 else "no"} for i in range(40)]
    df = R.with_ids(pl.DataFrame(rows))
    spec = TaskSpec(definition="Answer yes, no or maybe.", labels=["yes", "no", "maybe"],
                    auto_examples={"positive": 3, "negative": 5})
    task, stats = build_task(df, spec, seed=4)
    assert stats["classification"] is True
    assert {e["output"] for e in task["Positive Examples"]} == {"yes", "no"}
    truth = {r["text"]: r["label"] for r in rows}
    negs = task["Negative Examples"]
    assert len(negs) == 5 and all(e["output"] != truth[e["input"]] for e in negs)
    assert {e["output"] for e in negs} <= {"yes", "no", "maybe"}
    assert validate_task(task) == []


def test_rerun_is_byte_identical(tmp_path, run_pipeline, sms_balanced):
    rows = sms_balanced.to_dicts()
    run_pipeline([rows_source(rows)], outputs=[ni_out(tmp_path / "a")], sub="a")
    run_pipeline([rows_source(rows)], outputs=[ni_out(tmp_path / "b")], sub="b")
    a = (tmp_path / "a" / "task9000_sms_spam_collection_classification.json").read_bytes()
    b = (tmp_path / "b" / "task9000_sms_spam_collection_classification.json").read_bytes()
    assert a == b


def test_imbalanced_sms_fails_balance_rule_with_numbers(sms):
    df = R.with_ids(sms)
    task, stats = build_task(df, TaskSpec(definition=SMS_DEF, auto_examples={}, repeated_inputs="merge"), seed=0)
    problems = validate_task(task)
    assert len(problems) == 1
    m = re.match(r"balance rule: normalised output entropy (0\.\d\d) ≤ 0.8 \(ham (\d+), spam (\d+)\); "
                 r"balance the labels first, e.g. with a `balance` step", problems[0])
    assert m, problems
    ham, spam = int(m.group(2)), int(m.group(3))
    p = ham / (ham + spam)
    assert float(m.group(1)) == round(-(p * math.log(p) + (1 - p) * math.log(1 - p)) / math.log(2), 2)
    # duplicate SMS texts are merged, so counts are below the raw 4827/747
    assert ham + spam == stats["instances"] and stats["merged_duplicate_inputs"] > 0


def test_strict_raises_and_lenient_writes_with_recorded_warning(tmp_path, sms):
    df = R.with_ids(sms.head(2000).unique("text", keep="first", maintain_order=True))
    with pytest.raises(CurateError, match="balance rule: normalised output entropy"):
        ni_out(tmp_path / "strict").write(df, seed=0)
    assert not (tmp_path / "strict").exists()
    sink = ni_out(tmp_path / "lenient", strict=False)
    paths = sink.write(df, seed=0)
    assert len(paths) == 1 and paths[0].exists()
    stats = sink.stats["tasks"][paths[0].name]
    assert any(p.startswith("balance rule") for p in stats["problems"])
    assert stats["output_counts"]["ham"] > stats["output_counts"]["spam"]


def test_generation_task_needs_explicit_negative_examples(tmp_path):
    rows = [{"text": f"question {i}", "label": f"answer {i}"} for i in range(40)]
    df = R.with_ids(pl.DataFrame(rows))
    with pytest.raises(CurateError, match="negative_examples"):
        build_task(df, TaskSpec(definition="Answer.", auto_examples={"positive": 2, "negative": 1}))
    neg = [{"input": "question 0", "output": "banana", "explanation": "Not the answer."}]
    task, stats = build_task(df, TaskSpec(definition="Answer.", auto_examples={"positive": 2},
                                          negative_examples=neg))
    assert task["Negative Examples"] == neg and len(task["Positive Examples"]) == 2
    assert stats["classification"] is False and len(task["Instances"]) == 38
    assert validate_task(task) == []


def test_duplicate_inputs_merge_outputs_like_upstream():
    rows = [{"text": f"q{i}", "label": "a" if i % 2 else "b"} for i in range(30)]
    rows += [{"text": "q1", "label": "b"}, {"text": "q1", "label": "a"}, {"text": "q3", "label": "c"}]
    df = R.with_ids(pl.DataFrame(rows))
    task, stats = build_task(df, TaskSpec(definition="x", repeated_inputs="merge", positive_examples=[
        {"input": "p1", "output": "a", "explanation": "e"}, {"input": "p2", "output": "b", "explanation": "e"}],
        negative_examples=[{"input": "p3", "output": "a", "explanation": "e"}]))
    by_input = {i["input"]: i["output"] for i in task["Instances"]}
    assert by_input["q1"] == ["a", "b"] and by_input["q3"] == ["a", "c"] and by_input["q2"] == ["b"]
    assert len(task["Instances"]) == 30 and stats["merged_duplicate_inputs"] == 3
    assert [i["input"] for i in task["Instances"]][:3] == ["q0", "q1", "q2"]


def test_list_output_column_gives_several_references():
    rows = [{"text": f"q{i}", "refs": [f"r{i}", f"s{i}"]} for i in range(30)]
    df = R.with_ids(pl.DataFrame(rows))
    neg = [{"input": "q0", "output": "x", "explanation": "wrong"}]
    task, _ = build_task(df, TaskSpec(definition="x", output="refs", auto_examples={"positive": 2},
                                      negative_examples=neg))
    assert all(len(i["output"]) == 2 for i in task["Instances"])
    assert all(isinstance(e["output"], str) for e in task["Positive Examples"])


def test_max_instances_is_seeded(sms_balanced):
    df = R.with_ids(sms_balanced)
    spec = TaskSpec(definition="x", auto_examples={}, max_instances=100)
    a, sa = build_task(df, spec, seed=1)
    b, _ = build_task(df, spec, seed=1)
    c, _ = build_task(df, spec, seed=2)
    assert len(a["Instances"]) == 100 and sa["sampled_out"] == 597 - 100
    assert a == b and [i["id"] for i in a["Instances"]] != [i["id"] for i in c["Instances"]]


def test_split_by_origin_writes_one_task_per_value(tmp_path, run_pipeline, sms_balanced):
    half = sms_balanced.sample(fraction=1.0, seed=3, shuffle=True)
    a, b = half.head(300).to_dicts(), half.tail(300).to_dicts()
    run_pipeline([rows_source(a, name="part_a"), rows_source(b, name="part_b")],
                 outputs=[ni_out(tmp_path / "ni", split_by="origin", task_number=1500, task_name="sms spam")])
    names = sorted(p.name for p in (tmp_path / "ni").glob("*.json"))
    assert names == ["task1500_sms_spam_part_a.json", "task1501_sms_spam_part_b.json"]
    t = json.loads((tmp_path / "ni" / names[1]).read_text())
    assert {i["input"] for i in t["Instances"]} <= {r["text"] for r in b}
    assert all(i["id"].startswith("task1501-") for i in t["Instances"])
    sink = ni_out(tmp_path / "ni2", split_by="grp", strict=False)
    sink.write(R.with_ids(pl.DataFrame({"text": ["a", "b", "c"], "label": ["x", "y", "x"],
                                        "grp": ["g", None, "g"]})), seed=0)
    assert sink.stats["rows_without_split_value"] == 1


def test_rule_violations_are_named():
    inst = [{"id": f"task7-{i:032x}", "input": f"x{i}", "output": ["same"]} for i in range(10)]
    task = {"Contributors": [], "Source": ["s"], "URL": [float("nan")], "Categories": ["c"], "Reasoning": [],
            "Definition": ["d"], "Input_language": ["Englsh"], "Output_language": ["English"],
            "Instruction_language": ["English"], "Domains": [], "Positive Examples": [
                {"input": "x1", "output": "same", "explanation": 3}],
            "Negative Examples": [], "Instances": inst + [inst[2]], "Instance License": ["u"]}
    probs = "\n".join(validate_task(task, "task8_s_t"))
    for rule in ("type: 'URL' must be a list of strings (got NaN)", "language names: Input_language value 'Englsh'",
                 "'Positive Examples' has 1; at least 2", "'Negative Examples' has 0; at least 1",
                 "Positive Examples[0] needs string", "instance count: 11 instances",
                 "ids do not match task8-", "ids repeat", "unique inputs: 1 inputs repeat",
                 "positive examples: 1 instance inputs equal", "distinct outputs: 1 distinct"):
        assert rule in probs, rule
    spanish = dict(task, Input_language=["Spanish"])
    assert any(p.startswith("definition language: input language 'Spanish'") for p in validate_task(spanish))
    task2 = dict(task, input_language=["English"])
    assert any("unknown key: 'input_language' (did you mean 'Input_language'?)" in p
               for p in validate_task(task2))


def test_writer_never_emits_nan(tmp_path):
    task = {"URL": [float("nan")], "Instances": []}
    out = task_json(task)
    assert "NaN" not in out and json.loads(out)["URL"] == [""]


def test_config_bounds_and_unknown_keys():
    with pytest.raises(ValueError):
        TaskSpec(definition="x", max_instances=7000)
    with pytest.raises(ValueError):
        TaskSpec(definition="x", surprise=1)


# ------------------------------------------------------------------------------------ reader
def test_upstream_task_passes_checks(ni_task_path):
    task = load_task(ni_task_path)
    assert validate_task(task, ni_task_path.stem) == []


def test_reader_on_upstream_file(ni_task_path, run_pipeline):
    res = run_pipeline([NaturalInstructionsSource(path=str(ni_task_path))])
    df = res.data()
    raw = json.loads(ni_task_path.read_text())
    assert df.height == len(raw["Instances"]) == 231
    assert df["text"].to_list() == [i["input"] for i in raw["Instances"]]
    assert df["output"].to_list() == [i["output"] for i in raw["Instances"]]
    assert df["label"][0] == "Kabul" and set(df["task"]) == {"task1146_country_capital"}
    assert df["definition"][0] == raw["Definition"][0]
    assert df["source"][5] == f"natural_instructions:{ni_task_path}:5"
    assert df["instance_id"][0] == raw["Instances"][0]["id"]


def test_reader_roundtrip_through_writer(tmp_path, ni_task_path, run_pipeline, validator):
    raw = json.loads(ni_task_path.read_text())
    out = NaturalInstructionsOutput(
        dir=str(tmp_path / "ni"), task_number=1146, task_name="country_capital", definition=raw["Definition"],
        contributors=raw["Contributors"], source=raw["Source"], url=raw["URL"], categories=raw["Categories"],
        domains=raw["Domains"], instance_license=raw["Instance License"], output="output",
        positive_examples=raw["Positive Examples"], negative_examples=raw["Negative Examples"])
    run_pipeline([NaturalInstructionsSource(path=str(ni_task_path))], outputs=[out])
    new = json.loads((tmp_path / "ni" / "task1146_country_capital.json").read_text())
    validator.validate(new)
    assert [(i["input"], i["output"]) for i in new["Instances"]] == \
           [(i["input"], i["output"]) for i in raw["Instances"]]
    assert {k: v for k, v in new.items() if k != "Instances"} == {k: v for k, v in raw.items() if k != "Instances"}


def _legacy_file(path: Path) -> Path:
    inst = [{"input": f" item {i} ", "explanation": "unused", "output": [f"out{i % 3} "]} for i in range(30)]
    inst[3] = {"output": ["x"]}                                   # missing input
    inst[4] = {"input": "solo", "output": "not a list"}           # non-list output
    body = json.dumps({"Contributors": ["A"], "Source": ["s"], "URL": ["__NAN__"], "Categories": ["c"],
                       "Definition": "An old string definition.", "Positive Examples": [
                           {"input": "p", "explanation": "e", "output": "o"}],
                       "Negative Examples": [], "Instances": inst}, indent=4)
    path.write_text(body.replace('"__NAN__"', "NaN"), encoding="utf-8")
    return path


def test_reader_quirks_legacy_layout_nan_whitespace_quarantine(tmp_path, run_pipeline):
    f = _legacy_file(tmp_path / "task42_old_style.json")
    task = load_task(f)
    assert task["Definition"] == ["An old string definition."]
    assert isinstance(task["URL"][0], float) and math.isnan(task["URL"][0])
    ids = [i["id"] for i in task["Instances"]]
    assert all(re.fullmatch(r"task42-[0-9a-f]{32}", i) for i in ids) and len(set(ids)) == 30
    assert [i["id"] for i in load_task(f)["Instances"]] == ids          # deterministic
    assert any(p.startswith("type: 'URL'") for p in validate_task(task, f.stem))
    res = run_pipeline([NaturalInstructionsSource(path=str(tmp_path / "task*.json"))])
    df = res.data()
    assert df.height == 28
    assert df["text"][0] == " item 0 " and df["label"][0] == "out0 " and df["output"][0].to_list() == ["out0 "]
    assert df["definition"][0] == "An old string definition."
    rej = res.rejects().sort(R.SOURCE)
    assert rej[R.REASON].to_list() == ["missing_input", "output_not_list"]
    assert rej[R.SOURCE].to_list() == [f"natural_instructions:{f}:3", f"natural_instructions:{f}:4"]


def test_reader_errors_name_the_file(tmp_path, run_pipeline):
    bad = tmp_path / "task1_broken.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match="task1_broken.json: not valid JSON"):
        run_pipeline([NaturalInstructionsSource(path=str(bad))])
    with pytest.raises(DataError, match="no file matches"):
        list(NaturalInstructionsSource(path=str(tmp_path / "nothing*.json")).read())


def test_registered_and_import_is_cheap():
    import subprocess
    import sys

    from curate import registry
    assert registry.get("output", "natural_instructions") is NaturalInstructionsOutput
    assert registry.get("source", "natural_instructions") is NaturalInstructionsSource
    code = ("import sys, curate.schemas.natural_instructions, curate.schemas.dpo, curate.schemas.chat; "
            "heavy = [m for m in ('torch', 'transformers', 'datasets', 'trl', 'jsonschema') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


def test_definition_column_gives_each_split_task_its_own_definition(tmp_path):
    import polars as pl
    from curate.schemas.natural_instructions import NaturalInstructionsOutput
    rows = []
    for t, instr in (("a", "Reverse the word."), ("b", "Uppercase the word.")):
        for i in range(30):
            rows.append({"id": f"{t}{i}", "task": t, "instruction": instr if i else None,
                         "text": f"{t} word {i}", "output": [f"out {i}"]})
    out = NaturalInstructionsOutput(dir=str(tmp_path / "ni"), split_by="task", definition_column="instruction",
                                    definition="fallback", input="text", output="output",
                                    positive_examples=[{"input": "x", "output": "y", "explanation": "e"}] * 2,
                                    negative_examples=[{"input": "x", "output": "z", "explanation": "e"}],
                                    strict=False)
    files = out.write(pl.DataFrame(rows), seed=0)
    defs = sorted(json.loads(f.read_text())["Definition"][0] for f in files)
    assert defs == ["Reverse the word.", "Uppercase the word."]
