"""chat (messages JSONL) and alpaca outputs for SFT."""
from __future__ import annotations

import json

import jsonschema
import polars as pl
import pytest

from curate.errors import CurateError, DataError
from curate.schemas import chat as C
from curate.schemas.chat import AlpacaOutput, ChatOutput, to_alpaca, to_messages

from .conftest import DATA, rows_source


def read_jsonl(path):
    return [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def seeds() -> list[dict]:
    """Self-instruct seed tasks flattened to instruction/input/output rows."""
    rows = []
    for line in (DATA / "self_instruct_seed_tasks.jsonl").read_text(encoding="utf-8").splitlines()[:40]:
        t = json.loads(line)
        inst = t["instances"][0]
        rows.append({"instruction": t["instruction"], "input": inst["input"], "output": inst["output"]})
    return rows


def validator(path):
    schema = json.loads(path.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_pure_builders():
    assert to_messages("Add.", "2+2", "4", system="Be brief.") == [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Add.\n\n2+2"},
        {"role": "assistant", "content": "4"}]
    assert to_messages("Say hi.", "  ", "hi") == [{"role": "user", "content": "Say hi."},
                                                  {"role": "assistant", "content": "hi"}]
    assert to_alpaca("Say hi.", None, "hi") == {"instruction": "Say hi.", "input": "", "output": "hi"}


@pytest.mark.slow
def test_chat_and_alpaca_load_in_datasets_and_trl(tmp_path, run_pipeline, seeds):
    from datasets import load_dataset
    from trl.data_utils import is_conversational, maybe_apply_chat_template

    from curate.testing import tiny_tokenizer

    chat, alpaca = tmp_path / "chat.jsonl", tmp_path / "alpaca.jsonl"
    run_pipeline([rows_source(seeds)], outputs=[ChatOutput(path=str(chat), system="You are helpful."),
                                                AlpacaOutput(path=str(alpaca))])
    cv, av = validator(C.CHAT_SCHEMA_PATH), validator(C.ALPACA_SCHEMA_PATH)
    crow, arow = read_jsonl(chat), read_jsonl(alpaca)
    assert len(crow) == len(arow) == 40
    for c, a, s in zip(crow, arow, seeds):
        cv.validate(c)
        av.validate(a)
        assert is_conversational(c)
        assert [m["role"] for m in c["messages"]] == ["system", "user", "assistant"]
        assert c["messages"][2]["content"] == s["output"] == a["output"]
        assert c["messages"][1]["content"].startswith(s["instruction"]) and a["input"] == s["input"]
    ds = load_dataset("json", data_files=str(chat), split="train")
    assert ds.num_rows == 40 and is_conversational(ds[0])
    ads = load_dataset("json", data_files=str(alpaca), split="train")
    assert ads.column_names == ["instruction", "input", "output"]
    tok = tiny_tokenizer(tmp_path / "tok")
    text = maybe_apply_chat_template(ds[0], tok)["text"]
    assert text.startswith("<|system|>\nYou are helpful.</s>\n<|user|>\n")


def test_fixed_instruction_from_labelled_rows(tmp_path, run_pipeline, sms_balanced):
    out = tmp_path / "sms_chat.jsonl"
    rows = sms_balanced.head(5).to_dicts()
    run_pipeline([rows_source(rows)], outputs=[ChatOutput(
        path=str(out), instruction=None, instruction_text="Is this SMS spam or ham?", input="text",
        output="label", extra_columns=["id"])])
    got = read_jsonl(out)
    assert [g["messages"][0]["content"] for g in got] == [f"Is this SMS spam or ham?\n\n{r['text']}" for r in rows]
    assert [g["messages"][1]["content"] for g in got] == [r["label"] for r in rows]
    assert all(len(g["id"]) >= 16 for g in got)


def test_list_output_takes_first_reference(tmp_path):
    df = pl.DataFrame({"instruction": ["Capital?"], "input": ["France"], "output": [["Paris", "paris"]]})
    AlpacaOutput(path=str(tmp_path / "a.jsonl")).write(df, 0)
    assert read_jsonl(tmp_path / "a.jsonl") == [{"instruction": "Capital?", "input": "France", "output": "Paris"}]


def test_missing_columns_and_empty_outputs_are_clear_errors(tmp_path):
    df = pl.DataFrame({"text": ["a"], "label": ["b"]})
    with pytest.raises(DataError, match="instruction column 'instruction' not found"):
        ChatOutput(path=str(tmp_path / "x.jsonl")).write(df, 0)
    with pytest.raises(DataError, match="output column 'output' not found"):
        AlpacaOutput(path=str(tmp_path / "x.jsonl"), instruction="text").write(df, 0)
    empty = pl.DataFrame({"instruction": ["a", "b"], "output": ["ok", " "]})
    with pytest.raises(CurateError, match="row 1 has an empty output"):
        AlpacaOutput(path=str(tmp_path / "x.jsonl")).write(empty, 0)
    assert not (tmp_path / "x.jsonl").exists()


def test_registered():
    from curate import registry
    assert registry.get("output", "chat") is ChatOutput and registry.get("output", "alpaca") is AlpacaOutput
