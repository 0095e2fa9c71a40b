"""The synthesize step: Self-Instruct filters and instance generation, preference pairs,
responses, reproducibility with a seed (tiny model) — through real pipelines."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import polars as pl
import pytest

from curate import Pipeline
from curate.steps.synth.instructions import instruction_problem, parse_instructions, parse_labels

SEEDS = Path(__file__).resolve().parents[2] / "pipelines" / "data" / "self_instruct_seed_tasks.jsonl"


def run(tmp, steps, rows=None, name="t", seed=0):
    rows = rows or [{"x": 1}]
    p = Pipeline(name=name, seed=seed, sources=[{"synth_rows": {"rows": rows}}], steps=steps,
                 workdir=str(tmp / ".curate"), out_dir=str(tmp / "out"))
    return p.run()


def http(srv, **kw):
    return {"model": "scripted", "backend": "http", "base_url": srv.url, **kw}


# ---------------------------------------------------------------------------- pure helpers
def test_parse_instructions_and_labels():
    text = " Sort the numbers.\nTask 10: Give the antonym of a word.\n11. Translate to French.\n\nextra"
    assert parse_instructions(text, 9) == ["Sort the numbers.", "Give the antonym of a word.", "Translate to French."]
    assert parse_labels("positive, negative, Positive", 10) == ["positive", "negative"]
    assert parse_labels("just one", 10) == []


class _Cfg:
    min_words, max_words = 3, 20


@pytest.mark.parametrize("inst,reason", [
    ("Hi there", "too_short"), ("word " * 21, "too_long"), ("Draw a picture of a cat.", "blocklisted"),
    ("Describe this image in detail.", "blocklisted"), ("#Rewrite the text below.", "bad_start"),
])
def test_instruction_filters(inst, reason):
    from curate.steps.synth.instructions import DEFAULT_BLOCKLIST
    assert instruction_problem(inst, _Cfg, DEFAULT_BLOCKLIST)[0] == reason
    assert instruction_problem("Rewrite the paragraph in passive voice.", _Cfg, DEFAULT_BLOCKLIST) is None


# ---------------------------------------------------------------------------- self-instruct
def self_instruct_script():
    counter = itertools.count()
    inputs = itertools.count()       # own counter: requests arrive concurrently, in any order
    seed0 = json.loads(SEEDS.read_text().splitlines()[0])["instruction"]

    def answer(prompt: str, j: int) -> str:
        if prompt.startswith("Come up with a series of tasks"):
            return (f" {seed0}\nTask 10: Draw a picture of a happy dog.\nTask 11: Hi\n"
                    "Task 12: Classify the review as positive or negative.\n"
                    "Task 13: Write a limerick about a cat who loves the rain.\n"
                    "Task 14: Write a limerick about a cat who loves the rain today.")
        if prompt.startswith("Can the following task"):
            return "Yes" if "Classify" in prompt else "No"
        if "List the possible output labels" in prompt:
            return "positive, negative"
        if "Class label:" in prompt:
            return f"review number {next(counter)}"
        if "Write one new example input" in prompt:
            return "<noinput>" if next(inputs) == 0 else f"a cat named Tom {next(counter)}"
        return f"answer {next(counter)}"
    return answer


def test_self_instruct_filters_classifies_and_balances(tmp_path, scripted_server):
    srv = scripted_server(self_instruct_script())
    r = run(tmp_path, [{"synthesize": http(srv, kind="instructions", n=2, seeds=str(SEEDS), prompts_per_round=1,
                                            instances_per_task=6, max_new_tokens=64)}])
    df = r.data().filter(pl.col("origin") == "self_instruct")
    rej = r.rejects()
    reasons = dict(zip(rej["instruction"].to_list(), rej["reason"].to_list()))
    seed0 = json.loads(SEEDS.read_text().splitlines()[0])["instruction"]
    assert reasons[seed0] == "too_similar"
    assert reasons["Draw a picture of a happy dog."] == "blocklisted"
    assert reasons["Hi"] == "too_short"
    # the near-copy of an instruction kept in the same round is caught by ROUGE-L
    assert reasons["Write a limerick about a cat who loves the rain today."] == "too_similar"
    tasks = df.group_by("task").agg(pl.col("is_classification").first(), pl.len(), pl.col("label"),
                                    pl.col("instruction").first())
    assert tasks.height == 2 and set(tasks["len"]) == {6}
    cls = tasks.filter(pl.col("is_classification"))
    assert cls["instruction"][0].startswith("Classify")
    labels = cls["label"][0].to_list()
    assert sorted(labels) == ["negative"] * 3 + ["positive"] * 3        # output-first, balanced
    gen = df.filter(~pl.col("is_classification"))
    assert gen["label"].null_count() == gen.height and gen["output"].str.starts_with("answer").all()
    assert (gen["text"] == "").any()                                     # <noinput> -> empty input
    st = r.manifest["steps"][0]["stats"]
    assert st["instructions_kept"] == 2 and st["rejected_by_reason"]["too_similar"] == 2
    assert st["classification_tasks"] == 1
    assert r.manifest["steps"][0]["rows_created"] == df.height + rej.height


@pytest.mark.slow
def test_tiny_model_instructions_are_reproducible(tmp_path, tiny_model):
    step = {"synthesize": {"kind": "instructions", "model": str(tiny_model), "n": 2, "seeds": str(SEEDS),
                           "prompts_per_round": 2, "max_new_tokens": 24, "max_input_tokens": 12,
                           "classify": "heuristic", "instances_per_task": 2, "min_words": 2, "max_rounds": 4}}
    a = run(tmp_path / "a", [step], seed=5)
    b = run(tmp_path / "b", [step], seed=5)
    c = run(tmp_path / "c", [step], seed=6)
    da, db, dc = (x.data().drop("source") for x in (a, b, c))
    assert da.height > 1 and da.equals(db)
    assert a.rejects().equals(b.rejects())
    assert not da.equals(dc)


# ---------------------------------------------------------------------------- preferences
def pref_script(judge_by_marker):
    return lambda prompt, j: _pref(judge_by_marker, prompt, j)


def _pref(judge_by_marker, prompt: str, j: int) -> str:
    if "### Response" in prompt:
        return judge_by_marker(prompt, j)
    if "tie" in prompt:
        return f"SCORE5 same quality {j}"
    if "unparsable" in prompt:
        return "UNPARSABLE" if j else "SCORE9 fine"
    if "small" in prompt:
        return f"SCORE{5 + (j % 2)} answer {j}"
    return f"SCORE{2 + 2 * j} answer {j}"


def test_preferences_chosen_best_rejected_worst(tmp_path, scripted_server, judge_marker):
    srv = scripted_server(pref_script(judge_marker))
    rows = [{"prompt": p} for p in ("good one", "tie please", "unparsable please", "small margin")]
    r = run(tmp_path, [{"synthesize": http(srv, kind="preferences", candidates=4, min_margin=2.0)}], rows=rows)
    data = r.data()
    pairs = data.filter(pl.col("origin") == "preferences")
    assert pairs.height == 1
    row = pairs.row(0, named=True)
    assert row["prompt"] == "good one" and row["chosen"] == "SCORE8 answer 3" and row["rejected"] == "SCORE2 answer 0"
    assert (row["chosen_score"], row["rejected_score"], row["margin"]) == (8.0, 2.0, 6.0)
    assert data.filter(pl.col("origin") != "preferences").height == 4          # inputs pass through
    rej = {r_["prompt"]: r_ for r_ in r.rejects().to_dicts()}
    assert rej["tie please"]["reason"] == "tie"
    assert rej["unparsable please"]["reason"] == "unscorable"
    assert "judge: no score found" in rej["unparsable please"]["detail"]
    assert rej["small margin"]["reason"] == "margin_below_threshold"
    st = r.manifest["steps"][0]["stats"]
    assert st["pairs"] == 1 and st["unparsable_judgements"] == 3 and st["pair_acceptance_rate"] == 0.25


def test_preferences_with_programmatic_checks(tmp_path, scripted_server):
    srv = scripted_server(lambda p, j: ["As an AI I cannot", "a fine short answer here", "x"][j])
    r = run(tmp_path, [{"synthesize": http(srv, kind="preferences", candidates=3, scorer="checks",
                                            checks={"min_words": 3}, min_margin=1, keep_inputs=False)}],
            rows=[{"text": "say something"}])
    pairs = r.data()
    assert pairs.height == 1 and pairs["chosen"][0] == "a fine short answer here"
    assert pairs["rejected"][0] == "As an AI I cannot"
    assert r.rejects()["reason"].to_list() == ["consumed"]


@pytest.mark.slow
def test_preferences_with_reward_model_and_responses(tmp_path, tiny_model, tiny_reward):
    rows = [{"instruction": f"Write about topic {i}", "text": "" if i % 2 else "some input"} for i in range(3)]
    r = run(tmp_path, [
        {"synthesize": {"kind": "responses", "model": str(tiny_model), "max_new_tokens": 8}},
        {"synthesize": {"kind": "preferences", "model": str(tiny_model), "candidates": 3, "scorer": "reward",
                        "reward_model": str(tiny_reward), "max_new_tokens": 8, "min_margin": 0.0}}], rows=rows)
    data = r.data()
    resp = data.filter(pl.col("origin") != "preferences")
    assert resp.height == 3 and resp["response"].null_count() == 0
    pairs = data.filter(pl.col("origin") == "preferences")
    rej = r.rejects()
    assert pairs.height + rej.height == 3
    assert (pairs["chosen_score"] > pairs["rejected_score"]).all()


def test_config_errors_name_the_problem():
    from pydantic import ValidationError
    from curate.steps.synth.synthesize import Synthesize
    with pytest.raises(ValidationError, match="reward_model"):
        Synthesize(kind="preferences", model="m", scorer="reward")
    with pytest.raises(ValidationError, match="extra"):
        Synthesize(kind="responses", model="m", temprature=0.5)
    with pytest.raises(ValidationError):
        Synthesize(kind="instructions", model="m", rouge_threshold=1.5)
    s = Synthesize(kind="responses", model="m", backend="http", base_url="http://127.0.0.1:1/v1", api_key_env="K")
    assert s.config.backend_spec().api_key_env == "K" and "K" == s.raw_config["api_key_env"]


# ---------------------------------------------------------------------------- evol
def evol_script(prompt: str, j: int) -> str:
    given = prompt.split("#The Given Prompt#:\n")[1].split("\n\n#Rewritten Prompt#")[0]
    if "unchanged" in given:
        return given
    if "leak" in given:
        return "#Rewritten Prompt#: something"
    return given + " Answer in exactly three bullet points and cite one source."


def test_evol_deepens_and_rejects_failed_rewrites(tmp_path, scripted_server):
    srv = scripted_server(evol_script)
    rows = [{"instruction": "Explain how tides work on the coast."},
            {"instruction": "Keep this unchanged please now."}, {"instruction": "Make a leak test prompt."}]
    r = run(tmp_path, [{"synthesize": http(srv, kind="evol", evol_rounds=2,
                                            evol_operations=["constraints", "deepen"])}], rows=rows)
    ev = r.data().filter(pl.col("origin") == "evol").sort("evol_round")
    assert ev["evol_round"].to_list() == [1, 2]
    assert ev["instruction"][1].startswith(ev["instruction"][0]) and ev["evolved_from"][1] == ev["instruction"][0]
    assert ev["parent_id"].n_unique() == 1
    reasons = sorted(r.rejects()["reason"].to_list())
    assert reasons == ["not_evolved", "prompt_leak"]                   # failed lineages stop evolving
