"""DPO: implicit→explicit conversion, the dpo_pairs step, and the dpo output as TRL reads it."""
from __future__ import annotations

import json

import jsonschema
import polars as pl
import pytest

from curate import records as R
from curate.errors import CurateError
from curate.schemas import dpo as D
from curate.schemas.dpo import DpoOutput, PairError, hh_to_messages, normalise_pair, split_implicit
from curate.steps.dpo_pairs import DpoPairs

from .conftest import rows_source


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(D.SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def read_jsonl(path):
    return [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines()]


# ------------------------------------------------------------------------------------ pure functions
def test_hh_sample_converts_to_explicit_for_every_row(hh_rows):
    assert len(hh_rows) == 300
    for r in hh_rows:
        p, c, j = split_implicit(r["chosen"], r["rejected"])
        assert p + c == r["chosen"] and p + j == r["rejected"]
        assert p.endswith("\n\nAssistant:") and p.startswith("\n\nHuman:")
        assert c.startswith(" ") and j.startswith(" ")
        assert "\n\nHuman:" not in c and "\n\nHuman:" not in j


def test_plain_text_split_at_word_or_char():
    assert split_implicit("The sky is blue.", "The sky is green.") == ("The sky is", " blue.", " green.")
    assert split_implicit("The sky is blue.", "The sky is bright.") == ("The sky is", " blue.", " bright.")
    assert split_implicit("The sky is blue.", "The sky is bright.", "char") == ("The sky is b", "lue.", "right.")
    with pytest.raises(PairError) as e:
        split_implicit("Blue sky.", "Green sky.")
    assert e.value.reason == "no_common_prompt"


def test_message_lists_split_before_final_assistant_turn():
    u = {"role": "user", "content": "What color is the sky?"}
    c = [u, {"role": "assistant", "content": "It is blue."}]
    r = [u, {"role": "assistant", "content": "It is green."}]
    assert split_implicit(c, r) == ([u], c[1:], r[1:])


@pytest.mark.parametrize("chosen,rejected,reason", [
    ("", "x y", "empty_chosen"), ("a b", "   ", "empty_rejected"), ("a b", "a b", "chosen_equals_rejected"),
    ("abc", "xyz", "no_common_prompt"), ("\n\nHuman: hi\n\nAssistant: ", "\n\nHuman: hi\n\nAssistant: yo",
                                         "empty_chosen")])
def test_bad_pairs_have_reasons(chosen, rejected, reason):
    with pytest.raises(PairError) as e:
        normalise_pair(None, chosen, rejected)
    assert e.value.reason == reason


def test_hh_to_messages_roles_and_trailing_prompt_turn():
    msgs = hh_to_messages("\n\nHuman: Hi there\n\nAssistant: Hello!\n\nHuman: Bye\n\nAssistant:")
    assert msgs == [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello!"},
                    {"role": "user", "content": "Bye"}]


# ------------------------------------------------------------------------------------ step + sink
@pytest.mark.slow
def test_hh_pipeline_step_rejects_and_output_loads_in_trl(tmp_path, run_pipeline, hh_rows, validator):
    from datasets import load_dataset
    from trl.data_utils import extract_prompt, is_conversational, maybe_extract_prompt

    out = tmp_path / "dpo.jsonl"
    res = run_pipeline([rows_source(hh_rows)], steps=[DpoPairs()],
                       outputs=[DpoOutput(path=str(out), extra_columns=["id"])])
    step = res.manifest["steps"][0]
    # row 86 of the sample ends its chosen dialogue with an empty assistant turn
    assert step["rows_rejected"] == 1 and step["stats"]["rejected_by_reason"] == {"empty_chosen": 1}
    assert step["stats"]["implicit_converted"] == 300
    rej = res.rejects()
    assert rej[R.REASON].to_list() == ["empty_chosen"] and rej[R.SOURCE].to_list() == ["inline:86"]

    ds = load_dataset("json", data_files=str(out), split="train")
    assert ds.num_rows == 299 and set(ds.column_names) == {"prompt", "chosen", "rejected", "id"}
    originals = {(r["chosen"], r["rejected"]) for r in hh_rows}
    for row in ds:
        validator.validate({k: row[k] for k in ("prompt", "chosen", "rejected")})
        assert not is_conversational(row)
        assert maybe_extract_prompt(row) == row                # TRL sees an explicit prompt
        assert (row["prompt"] + row["chosen"], row["prompt"] + row["rejected"]) in originals
        trl = extract_prompt({"chosen": row["prompt"] + row["chosen"], "rejected": row["prompt"] + row["rejected"]})
        assert trl["prompt"].startswith(row["prompt"])          # TRL's char-level cut lies at or after ours


@pytest.mark.slow
def test_conversational_output_passes_trl_chat_template(tmp_path, run_pipeline, hh_rows, validator):
    from datasets import load_dataset
    from trl.data_utils import is_conversational, maybe_apply_chat_template

    from curate.testing import tiny_tokenizer

    out = tmp_path / "dpo_conv.jsonl"
    run_pipeline([rows_source(hh_rows[:90])], steps=[DpoPairs()],
                 outputs=[DpoOutput(path=str(out), format="conversational")])
    rows = read_jsonl(out)
    assert len(rows) == 90 - 1   # row 86 has an empty chosen turn
    tok = tiny_tokenizer(tmp_path / "tok")
    for row in rows:
        validator.validate(row)
        assert is_conversational(row)
        assert row["prompt"][0]["role"] == "user" and row["prompt"][-1]["role"] == "user"
        assert [m["role"] for m in row["chosen"]] == ["assistant"] == [m["role"] for m in row["rejected"]]
        assert row["chosen"] != row["rejected"]
    first = hh_rows[0]
    assert rows[0]["chosen"][0]["content"] == first["chosen"].rsplit("\n\nAssistant:", 1)[1].strip()
    templ = maybe_apply_chat_template(rows[0], tok)
    assert templ["prompt"].endswith("<|assistant|>\n") and templ["chosen"].startswith(rows[0]["chosen"][0]["content"])
    ds = load_dataset("json", data_files=str(out), split="train")
    assert ds.num_rows == 89 and is_conversational(ds[0])


def test_implicit_prompt_style_and_validation(tmp_path, validator):
    df = pl.DataFrame({"id": ["a"], "prompt": ["The sky is"], "chosen": [" blue."], "rejected": [" green."]})
    DpoOutput(path=str(tmp_path / "i.jsonl"), prompt_style="implicit").write(df, 0)
    rows = read_jsonl(tmp_path / "i.jsonl")
    assert rows == [{"chosen": "The sky is blue.", "rejected": "The sky is green."}]
    validator.validate(rows[0])
    DpoOutput(path=str(tmp_path / "c.jsonl"), prompt_style="implicit", format="conversational").write(df, 0)
    row = read_jsonl(tmp_path / "c.jsonl")[0]
    assert row["chosen"] == [{"role": "user", "content": "The sky is"}, {"role": "assistant", "content": "blue."}]
    validator.validate(row)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({"prompt": "p", "chosen": "", "rejected": "x"})


def test_sink_refuses_bad_rows_and_points_to_step(tmp_path):
    df = pl.DataFrame({"id": ["a", "b"], "source": ["x:1", "x:2"], "chosen": ["A b", "Same text"],
                       "rejected": ["A c", "Same text"]})
    with pytest.raises(CurateError, match=r"row 1 \(id b, x:2\): chosen_equals_rejected.*dpo_pairs"):
        DpoOutput(path=str(tmp_path / "d.jsonl")).write(df, 0)
    assert not (tmp_path / "d.jsonl").exists()


def test_step_rejects_each_bad_pair_kind(run_pipeline):
    rows = [{"prompt": None, "chosen": "Q: 1? A: yes", "rejected": "Q: 1? A: no"},
            {"prompt": None, "chosen": "", "rejected": "x"},
            {"prompt": None, "chosen": "x y", "rejected": ""},
            {"prompt": None, "chosen": "same", "rejected": "same"},
            {"prompt": None, "chosen": "alpha", "rejected": "beta"},
            {"prompt": "Explicit:", "chosen": " ok", "rejected": " no"}]
    res = run_pipeline([rows_source(rows)], steps=[DpoPairs()])
    kept = res.data().sort("source")
    assert kept.select("prompt", "chosen", "rejected").rows() == [("Q: 1? A:", " yes", " no"),
                                                                ("Explicit:", " ok", " no")]
    rej = res.rejects().sort("source")
    assert rej[R.REASON].to_list() == ["empty_chosen", "empty_rejected", "chosen_equals_rejected",
                                       "no_common_prompt"]


def test_from_labels_uses_real_labels(tmp_path, run_pipeline, sms_balanced):
    rows = sms_balanced.head(20).to_dicts() + sms_balanced.tail(20).to_dicts()
    fl = {"prompt_template": "Is this SMS spam or ham?\n{text}\nAnswer:"}
    out = tmp_path / "lab.jsonl"
    res = run_pipeline([rows_source(rows)], steps=[DpoPairs(from_labels=fl)],
                       outputs=[DpoOutput(path=str(out), extra_columns=["label"])])
    written = read_jsonl(out)
    assert len(written) == 40 and res.manifest["steps"][0]["rows_rejected"] == 0
    for w in written:
        assert w["chosen"] == " " + w["label"] and w["rejected"] == " " + ({"ham", "spam"} - {w["label"]}).pop()
        assert w["prompt"].startswith("Is this SMS spam or ham?\n") and w["prompt"].endswith("\nAnswer:")
    # the sink can build the same pairs itself
    out2 = tmp_path / "lab2.jsonl"
    run_pipeline([rows_source(rows)], outputs=[DpoOutput(path=str(out2), from_labels=fl, extra_columns=["label"])],
                 sub="b")
    assert out2.read_text() == out.read_text()


def test_from_labels_with_several_labels_is_seeded_and_single_label_rejected(run_pipeline):
    rows = [{"text": f"t{i}", "label": "abcd"[i % 4]} for i in range(40)] + [{"text": "odd", "label": None}]
    df = R.with_ids(pl.DataFrame(rows))
    a = D.pairs_from_labels(df, "{text}", seed=1)
    b = D.pairs_from_labels(df, "{text}", seed=1)
    c = D.pairs_from_labels(df, "{text}", seed=2)
    assert a.equals(b) and not a.equals(c)
    pairs = a.head(40)
    assert (pairs["chosen"] != pairs["rejected"]).all()
    assert set(pairs["rejected"].str.strip_chars()) == set("abcd")
    one = [{"text": f"t{i}", "label": "only"} for i in range(3)]
    res = run_pipeline([rows_source(one)], steps=[DpoPairs(from_labels={"prompt_template": "{text}"})])
    assert set(res.rejects()[R.REASON]) == {"no_other_label"}


def test_from_labels_rejects_rows_without_a_label(run_pipeline):
    """An empty label is not a class: no pair is built from it, nor is it offered as a wrong answer."""
    rows = [{"text": f"t{i}", "label": "ab"[i % 2]} for i in range(10)]
    rows += [{"text": "blank", "label": ""}, {"text": "none", "label": None}]
    res = run_pipeline([rows_source(rows)], steps=[DpoPairs(from_labels={"prompt_template": "{text}"})], sub="m")
    rej = res.rejects()
    assert sorted(rej["text"]) == ["blank", "none"] and set(rej[R.REASON]) == {"missing_label"}
    assert set(res.data()["rejected"].str.strip_chars()) == {"a", "b"}
    pairs = D.pairs_from_labels(R.with_ids(pl.DataFrame(rows)), "{text}")
    assert pairs["chosen"].tail(2).to_list() == [None, None] and "" not in pairs["rejected"].str.strip_chars()


def test_registered():
    from curate import registry
    assert registry.get("output", "dpo") is DpoOutput and registry.get("step", "dpo_pairs") is DpoPairs


def test_conversational_implicit_rows_through_step_and_sink(tmp_path, run_pipeline, validator):
    def conv(q, a):
        return [{"role": "system", "content": "Be kind."}, {"role": "user", "content": q},
                {"role": "assistant", "content": a}]
    rows = [{"chosen": conv("Sky colour?", "Blue."), "rejected": conv("Sky colour?", "Green.")},
            {"chosen": conv("Two plus two?", "Four."), "rejected": conv("Two plus two?", "Four.")},
            {"chosen": conv("Hi?", "Hello."), "rejected": conv("Hey?", "Hello.")}]
    out = tmp_path / "conv.jsonl"
    res = run_pipeline([rows_source(rows)], steps=[DpoPairs()],
                       outputs=[DpoOutput(path=str(out), format="conversational")])
    assert sorted(res.rejects()[R.REASON]) == ["chosen_equals_rejected", "no_common_prompt"]
    (row,) = read_jsonl(out)
    validator.validate(row)
    assert row == {"prompt": conv("Sky colour?", "")[:2], "chosen": [{"role": "assistant", "content": "Blue."}],
                   "rejected": [{"role": "assistant", "content": "Green."}]}
    with pytest.raises(CurateError, match="format: conversational"):
        DpoOutput(path=str(tmp_path / "s.jsonl")).write(res.data(), 0)


@pytest.mark.slow
def test_trl_dpo_trainer_trains_on_written_file(tmp_path, run_pipeline, hh_rows):
    """One DPOTrainer step on a tiny random Llama: TRL tokenises and trains on our conversational file."""
    import math as _math

    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from curate.testing import tiny_llama

    out = tmp_path / "dpo.jsonl"
    run_pipeline([rows_source(hh_rows[:8])], steps=[DpoPairs()],
                 outputs=[DpoOutput(path=str(out), format="conversational")])
    model_dir = tiny_llama(tmp_path / "m")
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    ds = load_dataset("json", data_files=str(out), split="train")
    args = DPOConfig(output_dir=str(tmp_path / "o"), max_steps=1, per_device_train_batch_size=4, report_to=[],
                     max_length=96, save_strategy="no", use_cpu=True, disable_tqdm=True)
    result = DPOTrainer(model=model, args=args, train_dataset=ds, processing_class=tok).train()
    assert result.global_step == 1 and _math.isfinite(result.training_loss)
