"""The ``verify`` step: checks every synthetic (or any) row before anyone trains on it and records
each check's result per row (``check_<name>`` columns; null = not applied).

Cheap checks run on every row: ``format`` (expected fields present and parseable), ``label``
(classification label in the allowed set), ``length`` (word bounds), ``junk`` (control or
replacement characters, script mixing, symbol soup, repetition loops, keyboard mashing and random
strings by a shipped character-trigram model; on by default), ``language`` (lingua confidence
floor, when ``languages`` is set), ``perplexity`` (under a small causal LM, when
``perplexity_model`` is set) and ``novelty`` (ROUGE-L against seeds and earlier rows, exact
duplicates). LLM checks run only on rows that passed them:
``judge`` (score ≥ ``min_score``; unparsable judgements fail as ``judge_unparsable``),
``self_consistency`` (k sampled answers to a short-answer row agree with its answer) and
``round_trip`` (a greedy re-answer is close to the answer). Failed rows go to rejects with the
first failing check as ``reason`` and every failure in ``detail``; the manifest gets acceptance
rates per check.
"""
from __future__ import annotations

import json
import re
from typing import Any, Literal

import polars as pl
from pydantic import Field

from curate import records as R
from curate.errors import DataError
from curate.registry import register_step
from curate.step import Step, StepContext, StepResult
from curate.steps.synth._junk import JunkOptions, junk_reasons
from curate.steps.synth._llm_options import LLMOptions
from curate.steps.synth._rouge import RougeIndex, rouge_l_matrix, tokens

CHECKS = ("format", "label", "length", "junk", "language", "perplexity", "novelty", "judge", "self_consistency",
          "round_trip")
SAME_MODEL = "same-model"


class VerifyConfig(LLMOptions):
    """Options of the ``verify`` step."""

    model: str | None = Field(default=None, description=f"Model for self-consistency/round-trip checks "
                                                        f"(default: `{SAME_MODEL}`, the row's synth_model).")
    format: Literal["auto", "instructions", "responses", "preferences"] = Field(
        default="auto", description="Expected row format (auto: preferences if `chosen` is set, instructions "
                                    "if `instruction` is set, else responses).")
    response_column: str = Field(default="response", description="responses format: the answer column.")
    prompt_column: str = Field(default="prompt", description="responses format: the prompt column (fallback `text`).")
    json_fields: list[str] = Field(default_factory=list, description="Columns whose value must parse as JSON.")
    labels: list[str] | None = Field(default=None, description="Allowed labels (default: each row's `labels` list) "
                                                               "for rows with is_classification.")
    label_column: str = Field(default="label", description="Column with the label of classification rows.")
    min_words: int = Field(default=1, ge=0, description="Shortest answer (words).")
    max_words: int = Field(default=1000, ge=1, description="Longest answer (words).")
    junk: bool | JunkOptions = Field(default=True, description="Reject junk without an LLM (true, false, or "
                                                               "thresholds: see `curate show verify`).")
    languages: list[str] | None = Field(default=None, description="ISO 639-1 codes the text must be in (lingua); "
                                                                  "unset = no language check.")
    min_language_confidence: float = Field(default=0.5, ge=0.0, le=1.0,
                                           description="Least lingua confidence that the text is in `languages`.")
    language_min_words: int = Field(default=4, ge=1, description="Shorter texts skip the language check (too little "
                                                                 "evidence).")
    perplexity_model: str | None = Field(default=None, description="Causal LM (hub name or local path) whose "
                                                                   "perplexity bounds the answer; unset = no check.")
    max_perplexity: float = Field(default=1000.0, gt=1.0, description="Most perplexity of the answer under "
                                                                       "`perplexity_model`.")
    novelty: bool = Field(default=True, description="Run the novelty check.")
    novelty_threshold: float = Field(default=0.7, gt=0.0, le=1.0,
                                     description="Fail when ROUGE-L vs a seed or an earlier row is ≥ this.")
    seeds: str | None = Field(default=None, description="Seed tasks (Self-Instruct jsonl) to check novelty against.")
    judge: str | None = Field(default=None, description=f"Judge model (`{SAME_MODEL}` = the row's synth_model); "
                                                        "unset = no judge check.")
    min_score: float = Field(default=5.0, description="Least acceptable judge score.")
    score_range: tuple[float, float] = Field(default=(1, 10), description="Judge scale [low, high].")
    rubric: str | None = Field(default=None, description="Judge rubric ({low}/{high} placeholders).")
    judge_max_new_tokens: int = Field(default=64, ge=1, description="Tokens for each judgement.")
    self_consistency: int = Field(default=0, ge=0, le=32, description="k samples for the self-consistency check (0 = off).")
    short_answer_words: int = Field(default=5, ge=1, description="Self-consistency applies to answers up to this many words.")
    agreement: float = Field(default=0.5, ge=0.0, le=1.0, description="Least fraction of the k samples that must agree.")
    round_trip: bool = Field(default=False, description="Re-answer greedily and compare (ROUGE-L).")
    round_trip_threshold: float = Field(default=0.5, ge=0.0, le=1.0, description="Least ROUGE-L of re-answer vs answer.")


def _norm(s: str | None) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", (s or "").lower()).split())


@register_step("verify")
class Verify(Step):
    """Check synthetic rows (format, label, length, novelty, judge, self-consistency, round-trip)."""

    Config = VerifyConfig
    scope = "global"
    version = "1"
    memory = ("its input rows as one frame: the novelty check compares each row with the seeds and "
              "every earlier row (a ROUGE-L index over the table); the other checks are per row.")

    # ------------------------------------------------------------------ row views
    def _views(self, df: pl.DataFrame) -> pl.DataFrame:
        """Add ``_kind``, ``_q`` (question/prompt) and ``_a`` (answer) helper columns."""
        cfg: VerifyConfig = self.config  # type: ignore[assignment]
        s = lambda c: pl.col(c).cast(pl.String) if c in df.columns else pl.lit(None, pl.String)  # noqa: E731
        if cfg.format == "auto":
            kind = (pl.when(s("chosen").is_not_null()).then(pl.lit("preferences"))
                    .when(s("instruction").is_not_null()).then(pl.lit("instructions"))
                    .otherwise(pl.lit("responses")))
        else:
            kind = pl.lit(cfg.format)
        inp = s("text")
        instr_q = (pl.when(inp.is_null() | (inp.str.strip_chars() == "")).then(s("instruction"))
                   .otherwise(pl.concat_str([s("instruction"), pl.lit("\n\n"), inp])))
        resp_q = pl.coalesce(s(cfg.prompt_column), s("text"))
        work = df.with_columns(kind.alias("_kind"))
        return work.with_columns(
            pl.when(pl.col("_kind") == "preferences").then(s("prompt"))
            .when(pl.col("_kind") == "instructions").then(instr_q).otherwise(resp_q).alias("_q"),
            pl.when(pl.col("_kind") == "preferences").then(s("chosen"))
            .when(pl.col("_kind") == "instructions").then(s("output"))
            .otherwise(s(cfg.response_column)).alias("_a"),
            pl.when(pl.col("_kind") == "instructions").then(s("instruction")).otherwise(
                pl.when(pl.col("_kind") == "preferences").then(s("prompt")).otherwise(resp_q)).alias("_key"))

    # ------------------------------------------------------------------ cheap checks
    def _format(self, w: pl.DataFrame) -> tuple[pl.Series, list[str | None]]:
        cfg: VerifyConfig = self.config  # type: ignore[assignment]
        s = lambda c: pl.col(c).cast(pl.String) if c in w.columns else pl.lit(None, pl.String)  # noqa: E731
        filled = lambda e: e.is_not_null() & (e.str.strip_chars() != "")  # noqa: E731
        ok = (pl.when(pl.col("_kind") == "preferences")
              .then(filled(s("prompt")) & filled(s("chosen")) & filled(s("rejected")) & (s("chosen") != s("rejected")))
              .when(pl.col("_kind") == "instructions").then(filled(s("instruction")) & filled(s("output")))
              .otherwise(filled(pl.col("_q")) & filled(pl.col("_a")))).fill_null(False)
        res = w.select(ok.alias("ok"))["ok"].to_list()
        det: list[str | None] = [None if o else "missing or empty required field" for o in res]
        for col in cfg.json_fields:
            if col not in w.columns:
                raise DataError(f"verify: json_fields names {col!r}, which is not a column")
            for i, v in enumerate(w[col].to_list()):
                if not res[i] or v is None:
                    continue
                try:
                    json.loads(v) if isinstance(v, str) else None
                except json.JSONDecodeError as e:
                    res[i], det[i] = False, f"{col} is not valid JSON ({e.msg})"
        return pl.Series(res, dtype=pl.Boolean), det

    def _label(self, w: pl.DataFrame) -> tuple[pl.Series, list[str | None]]:
        cfg: VerifyConfig = self.config  # type: ignore[assignment]
        n = w.height
        if cfg.label_column not in w.columns:
            return pl.Series([None] * n, dtype=pl.Boolean), [None] * n
        lab = pl.col(cfg.label_column).cast(pl.String)
        applies = pl.col("is_classification").fill_null(False) if "is_classification" in w.columns else pl.lit(cfg.labels is not None)
        if cfg.labels is not None:
            allowed = lab.is_in(cfg.labels)
        elif "labels" in w.columns:
            allowed = pl.col("labels").list.contains(lab)
        else:
            return pl.Series([None] * n, dtype=pl.Boolean), [None] * n
        out = w.select(pl.when(applies).then(allowed.fill_null(False)).otherwise(None).alias("ok"),
                       lab.alias("lab"))
        det = [f"label {lab!r} not in the allowed set" if ok is False else None
               for ok, lab in zip(out["ok"].to_list(), out["lab"].to_list())]
        return out["ok"], det

    def _length(self, w: pl.DataFrame) -> tuple[pl.Series, list[str | None]]:
        cfg: VerifyConfig = self.config  # type: ignore[assignment]
        words = w.select(pl.col("_a").fill_null("").str.split(" ").list.eval(
            pl.element().filter(pl.element().str.strip_chars() != "")).list.len().alias("n"))["n"]
        ok = (words >= cfg.min_words) & (words <= cfg.max_words)
        det = [None if o else f"{k} words outside {cfg.min_words}..{cfg.max_words}" for o, k in zip(ok.to_list(), words.to_list())]
        return ok, det

    def _junk(self, w: pl.DataFrame) -> tuple[pl.Series, list[str | None]]:
        cfg: VerifyConfig = self.config  # type: ignore[assignment]
        opts = cfg.junk if isinstance(cfg.junk, JunkOptions) else JunkOptions()
        on_q, on_a = junk_reasons(w["_q"].to_list(), opts), junk_reasons(w["_a"].to_list(), opts)
        det = [f"answer: {ra}" if ra else (f"prompt: {rq}" if rq else None) for rq, ra in zip(on_q, on_a)]
        return pl.Series([d is None for d in det], dtype=pl.Boolean), det

    def _language(self, w: pl.DataFrame) -> tuple[pl.Series, list[str | None]]:
        cfg: VerifyConfig = self.config  # type: ignore[assignment]
        from curate.steps.synth._textcheck import language_confidence
        answers = w["_a"].to_list()
        conf = language_confidence(answers, cfg.languages or [], cfg.language_min_words)
        ok = [None if c is None else c >= cfg.min_language_confidence for c in conf]
        det = [f"confidence {c:.2f} in {cfg.languages} < {cfg.min_language_confidence:g}" if o is False else None
               for o, c in zip(ok, conf)]
        return pl.Series(ok, dtype=pl.Boolean), det

    def _perplexity(self, w: pl.DataFrame) -> tuple[pl.Series, list[str | None]]:
        cfg: VerifyConfig = self.config  # type: ignore[assignment]
        from curate.steps.synth._textcheck import perplexities
        ppl = perplexities(w["_a"].to_list(), cfg.perplexity_model or "", min(cfg.max_batch_size, 32))
        ok = [None if p is None else p <= cfg.max_perplexity for p in ppl]
        det = [f"perplexity {p:.1f} > {cfg.max_perplexity:g}" if o is False else None for o, p in zip(ok, ppl)]
        return pl.Series(ok, dtype=pl.Boolean), det

    def _novelty(self, w: pl.DataFrame) -> tuple[pl.Series, list[str | None]]:
        cfg: VerifyConfig = self.config  # type: ignore[assignment]
        seeds: list[str] = []
        if cfg.seeds:
            from curate.steps.synth.instructions import load_seed_file
            seeds = [s.instruction for s in load_seed_file(cfg.seeds)]
        keys, kinds = w["_key"].to_list(), w["_kind"].to_list()
        # one index per row format: a DPO prompt built from an instruction is not a near-copy of it
        indexes: dict[str, tuple[RougeIndex, list[str], int]] = {}
        verdict: dict[tuple[str, str], tuple[bool, str | None]] = {}
        for k, kind in zip(keys, kinds):
            if k is None or (kind, k) in verdict:
                continue
            if kind not in indexes:
                base = seeds if kind == "instructions" else []
                indexes[kind] = (RougeIndex(base), base[:], len(base))
            index, texts, n_seeds = indexes[kind]
            sim, j = index.max_sim(k)
            if sim >= cfg.novelty_threshold:
                what = "seed" if j < n_seeds else "earlier row"
                verdict[(kind, k)] = (False, f"rouge_l={sim:.3f} vs {what} {texts[j][:60]!r}")
            else:
                verdict[(kind, k)] = (True, None)
            index.add(k)
            texts.append(k)
        ok, det = [], []
        seen_pairs: set[tuple] = set()
        for k, kind, q, a in zip(keys, kinds, w["_q"].to_list(), w["_a"].to_list()):
            v = verdict.get((kind, k), (True, None)) if k is not None else (True, None)
            pair = (kind, _norm(q), _norm(a))
            if v[0] and pair in seen_pairs:
                v = (False, "exact duplicate of an earlier row")
            seen_pairs.add(pair)
            ok.append(v[0])
            det.append(v[1])
        return pl.Series(ok, dtype=pl.Boolean), det

    # ------------------------------------------------------------------ LLM checks
    def _llm_for(self, model: str):
        cfg: VerifyConfig = self.config  # type: ignore[assignment]
        return cfg.llm(model)

    def _models(self, w: pl.DataFrame, rows: list[int], which: str | None) -> dict[str, list[int]]:
        """Group row positions by the model that should check them."""
        if which is None or which == SAME_MODEL:
            if "synth_model" not in w.columns:
                raise DataError(f"verify: `{SAME_MODEL}` needs a synth_model column (rows made by synthesize); "
                                "name a model instead")
            ms = w["synth_model"].to_list()
            groups: dict[str, list[int]] = {}
            for i in rows:
                if ms[i] is None:
                    raise DataError(f"verify: row {w[R.ID][i]!r} has no synth_model; name a model instead of {SAME_MODEL}")
                groups.setdefault(ms[i], []).append(i)
            return groups
        return {which: list(rows)} if rows else {}

    def _judge(self, w, rows, ctx, ok, det, scores, stats) -> None:
        cfg: VerifyConfig = self.config  # type: ignore[assignment]
        from curate.llm.judge import judge_prompt, parse_score
        lo, hi = cfg.score_range
        q, a = w["_q"].to_list(), w["_a"].to_list()
        for model, idx in self._models(w, rows, cfg.judge).items():
            gens = self._llm_for(model).generate(
                [judge_prompt(q[i], a[i], cfg.rubric, lo, hi) for i in idx],
                cfg.sampling(ctx, temperature=0.0, max_new_tokens=cfg.judge_max_new_tokens))
            for i, (g,) in zip(idx, gens):
                res = parse_score(g.text, lo, hi)
                scores[i] = res.score
                if res.score is None:
                    ok[i], det[i] = False, f"unparsable judgement: {res.error}"
                    stats["judge_unparsable"] += 1
                elif res.score < cfg.min_score:
                    ok[i], det[i] = False, f"judge score {res.score:g} < {cfg.min_score:g}"
                else:
                    ok[i] = True

    def _self_consistency(self, w, rows, ctx, ok, det) -> None:
        cfg: VerifyConfig = self.config  # type: ignore[assignment]
        q, a = w["_q"].to_list(), w["_a"].to_list()
        short = [i for i in rows if len((a[i] or "").split()) <= cfg.short_answer_words]
        for model, idx in self._models(w, short, cfg.model).items():
            gens = self._llm_for(model).generate([q[i] for i in idx], cfg.sampling(
                ctx, n=cfg.self_consistency, max_new_tokens=min(cfg.max_new_tokens, 4 * cfg.short_answer_words + 8)))
            for i, gs in zip(idx, gens):
                target = _norm(a[i])
                agree = sum(_norm(g.text) == target for g in gs) / len(gs)
                ok[i] = agree >= cfg.agreement
                if not ok[i]:
                    det[i] = f"{agree:.2f} of {len(gs)} samples agree < {cfg.agreement:g}"

    def _round_trip(self, w, rows, ctx, ok, det) -> None:
        cfg: VerifyConfig = self.config  # type: ignore[assignment]
        q, a = w["_q"].to_list(), w["_a"].to_list()
        for model, idx in self._models(w, rows, cfg.model).items():
            gens = self._llm_for(model).generate([q[i] for i in idx], cfg.sampling(ctx, temperature=0.0))
            sims = rouge_l_matrix([tokens(g[0].text) for g in gens], [tokens(a[i]) for i in idx]).diagonal() \
                if idx else []
            for i, sim in zip(idx, sims):
                ok[i] = bool(sim >= cfg.round_trip_threshold)
                if not ok[i]:
                    det[i] = f"re-answer rouge_l={sim:.3f} < {cfg.round_trip_threshold:g}"

    # ------------------------------------------------------------------ process
    def process(self, df: pl.DataFrame, ctx: StepContext) -> StepResult:
        cfg: VerifyConfig = self.config  # type: ignore[assignment]
        w = self._views(df)
        n = w.height
        results: dict[str, tuple[list, list]] = {}
        cheap = [("format", self._format), ("label", self._label), ("length", self._length)]
        cheap += [("junk", self._junk)] if cfg.junk is not False else []
        cheap += [("language", self._language)] if cfg.languages else []
        cheap += [("perplexity", self._perplexity)] if cfg.perplexity_model else []
        for name, fn in cheap:
            ok, det = fn(w)
            results[name] = (ok.to_list(), det)
        if cfg.novelty:
            ok, det = self._novelty(w)
            results["novelty"] = (ok.to_list(), det)
        stats: dict[str, Any] = {"judge_unparsable": 0}

        def passing() -> list[int]:
            return [i for i in range(n) if all(r[0][i] is not False for r in results.values())]

        scores: list[float | None] = [None] * n
        for name, enabled, fn in (("judge", cfg.judge is not None, self._judge),
                                  ("self_consistency", cfg.self_consistency > 0, self._self_consistency),
                                  ("round_trip", cfg.round_trip, self._round_trip)):
            if not enabled:
                continue
            ok_l: list[bool | None] = [None] * n
            det_l: list[str | None] = [None] * n
            rows = passing()
            if name == "judge":
                fn(w, rows, ctx, ok_l, det_l, scores, stats)
            else:
                fn(w, rows, ctx, ok_l, det_l)
            results[name] = (ok_l, det_l)

        # ---- per-row outcome
        reasons: list[str | None] = []
        details: list[str | None] = []
        for i in range(n):
            failed = [(name, r[1][i]) for name, r in results.items() if r[0][i] is False]
            if not failed:
                reasons.append(None)
                details.append(None)
                continue
            name, d = failed[0]
            if name == "judge" and d and d.startswith("unparsable"):
                name = "judge_unparsable"
            reasons.append(name)
            details.append("; ".join(f"{nm}: {dd}" for nm, dd in failed))
        cols = [pl.Series(f"check_{name}", r[0], dtype=pl.Boolean) for name, r in results.items()]
        if cfg.judge is not None:
            cols.append(pl.Series("judge_score", scores, dtype=pl.Float64))
        out = df.with_columns(cols).with_columns(pl.Series("_reason", reasons, dtype=pl.String),
                                                 pl.Series("_detail", details, dtype=pl.String))
        kept = out.filter(pl.col("_reason").is_null()).drop("_reason", "_detail")
        rej = out.filter(pl.col("_reason").is_not_null())
        rej = R.reject(rej, self.name, pl.col("_reason"), pl.col("_detail")).drop("_reason", "_detail")

        checks = {}
        for name, (ok, _) in results.items():
            applied = sum(o is not None for o in ok)
            passed = sum(o is True for o in ok)
            checks[name] = {"applied": applied, "passed": passed,
                            "acceptance_rate": round(passed / applied, 4) if applied else None}
        stats["checks"] = checks
        stats["rejected_by_reason"] = dict(rej.group_by(R.REASON).len().rows()) if rej.height else {}
        stats["acceptance_rate"] = round(kept.height / n, 4) if n else None
        judged = [s for s in scores if s is not None]
        if judged:
            stats["judge_mean_score"] = round(sum(judged) / len(judged), 3)
        return StepResult(kept, rej, stats)
