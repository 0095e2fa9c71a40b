"""Self-Instruct (Wang et al. 2023): sample seed tasks into a prompt, generate new instructions,
keep those that pass length/blocklist/format filters and are novel (ROUGE-L < threshold against
everything kept so far), classify the task type, then generate instances — input-first for
generation tasks, output-first (label, then an input for it) for classification tasks — and
emit one row per instance, grouped by ``task`` (one task per generated instruction).

Every round is one resumable shard: a killed run restarts at the first unfinished round with
the same novelty index it had, so the output equals an uninterrupted run's.
"""
from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import xxhash

from curate import records as R
from curate.errors import DataError
from curate.step import StepContext
from curate.steps.synth._rouge import RougeIndex

#: Self-Instruct's blocklist: tasks a text-only model cannot do.
DEFAULT_BLOCKLIST = ["image", "images", "graph", "graphs", "picture", "pictures", "file", "files",
                     "map", "maps", "draw", "plot", "go to", "video", "audio", "music", "flowchart",
                     "diagram"]

#: Words that mark a classification task when no LLM classifies (``classify: heuristic``).
CLASSIFICATION_CUES = re.compile(
    r"\b(classify|classification|categori[sz]e|which (?:category|class|one)|is (?:it|this|the) "
    r"|true or false|yes or no|positive or negative|label|detect whether|determine whether|identify whether)",
    re.I)

PROMPT_HEAD = "Come up with a series of tasks:\n\n"
CLASSIFY_PROMPT = ("Can the following task be regarded as a classification task with finite output labels?\n\n"
                   "Task: {instruction}\nAnswer Yes or No.\nAnswer:")
LABELS_PROMPT = ("Task: {instruction}\nList the possible output labels (classes) of this task, "
                 "separated by commas.\nLabels:")
INPUT_FOR_LABEL_PROMPT = ("Task: {instruction}\nClass label: {label}\n"
                          "Write one input for this task that belongs to this class.\nInput:")
INPUT_PROMPT = ("Task: {instruction}\nWrite one new example input for this task "
                "(write \"<noinput>\" if the task needs no input).\nInput:")
OUTPUT_PROMPT = "Task: {instruction}\n{input_block}Output:"


@dataclass
class Seed:
    instruction: str
    instances: list[dict[str, str]] = field(default_factory=list)
    is_classification: bool = False


def load_seed_file(path: str | Path) -> list[Seed]:
    """Seed tasks in the Self-Instruct ``seed_tasks.jsonl`` format."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"synthesize: seeds file {p} not found")
    seeds = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"synthesize: seeds file {p}:{n}: invalid JSON ({e.msg})") from None
        if not isinstance(obj, dict) or not str(obj.get("instruction", "")).strip():
            raise DataError(f"synthesize: seeds file {p}:{n}: a seed needs a non-empty `instruction`")
        seeds.append(Seed(str(obj["instruction"]).strip(), list(obj.get("instances") or []),
                          bool(obj.get("is_classification", False))))
    return seeds


def seeds_from_frame(df: pl.DataFrame, column: str) -> list[Seed]:
    """Seed tasks from input rows (``instruction`` column; ``instances``/``is_classification`` optional)."""
    if column not in df.columns:
        raise DataError(f"synthesize (instructions): input rows have no {column!r} column and no `seeds:` "
                        f"file was given; columns are: {', '.join(map(repr, df.columns))}")
    cols = df.select([c for c in (column, "instances", "is_classification") if c in df.columns]).to_dicts()
    out = []
    for r in cols:
        text = (r.get(column) or "").strip()
        if text:
            out.append(Seed(text, list(r.get("instances") or []), bool(r.get("is_classification") or False)))
    return out


def parse_instructions(text: str, first_number: int) -> list[str]:
    """Split a Self-Instruct continuation into candidate instructions.

    The prompt ends with ``Task {first_number}:`` so the text begins with that task; later tasks
    follow as ``Task N:`` (or ``N.``) markers. Only the first paragraph of each is kept.
    """
    parts = re.split(r"(?:^|\n)\s*(?:Task\s*\d+\s*[:.)]|\d+\s*[.)])\s*", text)
    out = []
    for p in parts:
        p = p.strip().split("\n\n")[0].strip()
        p = re.sub(r"\s+", " ", p)
        if p:
            out.append(p)
    return out


def instruction_problem(inst: str, cfg, blocklist: list[str]) -> tuple[str, str] | None:
    """(reason, detail) when a candidate fails a cheap filter, else None."""
    words = inst.split()
    if len(words) < cfg.min_words:
        return "too_short", f"{len(words)} words < {cfg.min_words}"
    if len(words) > cfg.max_words:
        return "too_long", f"{len(words)} words > {cfg.max_words}"
    low = inst.lower()
    for b in blocklist:
        if re.search(r"\b" + re.escape(b.lower()) + r"\b", low):
            return "blocklisted", f"contains {b!r}"
    if not inst[0].isascii() or not (inst[0].isalnum() or inst[0] in "\"'("):
        return "bad_start", f"starts with {inst[0]!r}"
    return None


def parse_labels(text: str, max_labels: int) -> list[str]:
    """A comma/semicolon/newline/'or' separated label list (2..max_labels short, distinct labels)."""
    first = text.strip().split("\n\n")[0]
    raw = re.split(r",|;|\n|\bor\b|\|", first)
    labels: list[str] = []
    for r in raw:
        lab = re.sub(r"^[\s\-*\d.)]+", "", r).strip().strip(".\"'").strip()
        if lab and len(lab.split()) <= 5 and lab.lower() not in (x.lower() for x in labels):
            labels.append(lab)
    return labels[:max_labels] if len(labels) >= 2 else []


def parse_yes_no(text: str) -> bool | None:
    m = re.match(r"\W*(yes|no)\b", text.strip(), re.I)
    return None if m is None else m.group(1).lower() == "yes"


def _first_block(text: str) -> str:
    t = text.strip()
    t = re.split(r"\n\s*(?:Output|Input|Task|Class label)\s*:", t)[0]
    return t.split("\n\n")[0].strip()


def _row_id(locator: str) -> str:
    return "si-" + xxhash.xxh3_64_hexdigest(locator.encode())


class SelfInstruct:
    """One run of the instructions kind over a seed pool (used by the ``synthesize`` step)."""

    def __init__(self, cfg, ctx: StepContext, seeds: list[Seed], locator: str) -> None:
        if not seeds:
            raise DataError("synthesize (instructions): no seed tasks (give `seeds:` or rows with an `instruction`)")
        self.cfg, self.ctx, self.seeds = cfg, ctx, seeds
        self.locator = locator
        self.seed = cfg.seed if cfg.seed is not None else ctx.seed
        self.blocklist = cfg.blocklist if cfg.blocklist is not None else DEFAULT_BLOCKLIST
        self.index = RougeIndex(s.instruction for s in seeds)
        self.machine: list[str] = []          # generated instructions kept so far
        self._llm = None

    @property
    def llm(self):
        if self._llm is None:
            self._llm = self.cfg.llm()
        return self._llm

    # ------------------------------------------------------------------ the loop
    def run(self) -> tuple[list[pl.DataFrame], list[pl.DataFrame], dict[str, Any]]:
        cfg, ctx = self.cfg, self.ctx
        kept, rejected, stats = [], [], []
        n_tasks = 0
        for rnd in range(cfg.max_rounds):
            if n_tasks >= cfg.n:
                break
            key = f"r{rnd:06d}"
            if ctx.shards is not None and ctx.shards.done(key):
                k, r, s = ctx.shards.read(key)
            else:
                k, r, s = self.round(rnd, cfg.n - n_tasks)
                if ctx.shards is not None:
                    ctx.shards.write(key, k, r, s)
            for inst in s.pop("indexed", []):  # replay the novelty index exactly
                self.index.add(inst)
                self.machine.append(inst)
            n_tasks += s.get("tasks_emitted", 0)
            kept.append(k)
            rejected.append(r)
            stats.append(s)
            ctx.progress(1, cfg.max_rounds)
        from curate.step import merge_numeric
        total = merge_numeric(stats)
        total["rounds"] = len(stats)
        total.pop("indexed", None)
        c = total.get("candidates", 0)
        total["instruction_acceptance_rate"] = round(total.get("instructions_kept", 0) / c, 4) if c else None
        return kept, rejected, total

    def _prompt(self, rng: random.Random) -> tuple[str, int]:
        cfg = self.cfg
        n_machine = min(cfg.machine_in_prompt, len(self.machine))
        n_seed = min(len(self.seeds), cfg.prompt_instructions - n_machine)
        chosen = [s.instruction for s in rng.sample(self.seeds, n_seed)]
        chosen += rng.sample(self.machine, n_machine)
        rng.shuffle(chosen)
        flat = [" ".join(t.split()) for t in chosen]
        body = "".join(f"Task {i + 1}: {t}\n" for i, t in enumerate(flat))
        return PROMPT_HEAD + body + f"Task {len(chosen) + 1}:", len(chosen) + 1

    def round(self, rnd: int, quota: int) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]]:
        cfg, ctx = self.cfg, self.ctx
        rng = random.Random(f"{self.seed}:{rnd}")
        prompts, firsts = zip(*[self._prompt(rng) for _ in range(cfg.prompts_per_round)])
        params = cfg.sampling(ctx, seed=self.seed * 7_919 + rnd)
        gens = self.llm.generate(list(prompts), params)
        stats: dict[str, Any] = {"candidates": 0, "instructions_kept": 0, "tasks_emitted": 0,
                                 "rejected_by_reason": {}, "completion_tokens": 0, "indexed": []}
        rej_rows: list[dict[str, Any]] = []
        accepted: list[str] = []

        def reject(inst: str, reason: str, detail: str, loc: str) -> None:
            rej_rows.append({R.ID: _row_id(loc), R.SOURCE: loc, "instruction": inst, R.REASON: reason,
                             R.DETAIL: detail})
            stats["rejected_by_reason"][reason] = stats["rejected_by_reason"].get(reason, 0) + 1

        for p, (g,) in enumerate(gens):
            stats["completion_tokens"] += g.completion_tokens
            for c, inst in enumerate(parse_instructions(g.text, firsts[p])):
                stats["candidates"] += 1
                loc = f"{self.locator}:r{rnd}:p{p}:c{c}"
                bad = instruction_problem(inst, cfg, self.blocklist)
                if bad is None:
                    sim, j = self.index.max_sim(inst)
                    if sim >= cfg.rouge_threshold:
                        bad = ("too_similar", f"rouge_l={sim:.3f} >= {cfg.rouge_threshold}")
                if bad is None and len(accepted) >= quota:
                    bad = ("quota_reached", f"n={cfg.n} tasks already generated")
                if bad is not None:
                    reject(inst, bad[0], bad[1], loc)
                    continue
                self.index.add(inst)
                stats["indexed"].append(inst)
                accepted.append(inst)
        # the index/machine pool for later rounds is updated by run() from stats["indexed"]
        for inst in stats["indexed"]:
            self.index.toks.pop()
        stats["instructions_kept"] = len(accepted)
        kept = self.instances(rnd, accepted, stats, reject)
        rejected = pl.DataFrame(rej_rows, schema={R.ID: pl.String, R.SOURCE: pl.String, "instruction": pl.String,
                                                  R.REASON: pl.String, R.DETAIL: pl.String})
        rejected = rejected.with_columns(pl.lit(cfg.origin).alias(R.ORIGIN), pl.lit("instructions").alias("synth_kind"),
                                         pl.lit(rnd).alias("synth_round"))
        return kept, rejected, stats

    # ------------------------------------------------------------------ instances
    def classify(self, insts: list[str], ctx: StepContext, rnd: int) -> list[tuple[bool, str]]:
        """(is_classification, how it was decided) per instruction."""
        heur = [bool(CLASSIFICATION_CUES.search(i)) for i in insts]
        if self.cfg.classify == "heuristic" or not insts:
            return [(h, "heuristic") for h in heur]
        gens = self.llm.generate([CLASSIFY_PROMPT.format(instruction=i) for i in insts],
                                 self.cfg.sampling(ctx, temperature=0.0, max_new_tokens=4, seed=rnd))
        out = []
        for (g,), h in zip(gens, heur):
            v = parse_yes_no(g.text)
            out.append((v, "llm") if v is not None else (h, "heuristic_fallback"))
        return out

    def instances(self, rnd: int, insts: list[str], stats: dict[str, Any], reject) -> pl.DataFrame:
        cfg, ctx = self.cfg, self.ctx
        k = cfg.instances_per_task
        kinds = self.classify(insts, ctx, rnd)
        base_seed = (self.seed * 7_919 + rnd) * 31
        # classification: label set first
        cls_idx = [i for i, (c, _) in enumerate(kinds) if c]
        labels: dict[int, list[str]] = {}
        if cls_idx:
            gens = self.llm.generate([LABELS_PROMPT.format(instruction=insts[i]) for i in cls_idx],
                                     cfg.sampling(ctx, temperature=0.0, max_new_tokens=48, seed=base_seed + 1))
            for i, (g,) in zip(cls_idx, gens):
                labels[i] = parse_labels(g.text, cfg.max_labels)
        # inputs: output-first for classification (one input per label, cycled), input-first otherwise
        in_prompts, in_meta = [], []
        for i, inst in enumerate(insts):
            if kinds[i][0]:
                if not labels.get(i):
                    reject(inst, "no_label_set", "classification task: the label list did not parse",
                           f"{self.locator}:r{rnd}:task{i}")
                    continue
                for j in range(k):
                    lab = labels[i][j % len(labels[i])]
                    in_prompts.append(INPUT_FOR_LABEL_PROMPT.format(instruction=inst, label=lab))
                    in_meta.append((i, j, lab))
            else:
                for j in range(k):
                    in_prompts.append(INPUT_PROMPT.format(instruction=inst))
                    in_meta.append((i, j, None))
        in_gens = self.llm.generate(in_prompts, cfg.sampling(ctx, seed=base_seed + 2,
                                                             max_new_tokens=cfg.max_input_tokens))
        rows: list[dict[str, Any]] = []
        out_prompts, out_rows = [], []
        for (i, j, lab), (g,) in zip(in_meta, in_gens):
            stats["completion_tokens"] += g.completion_tokens
            text = _first_block(g.text)
            if text.lower().strip("<>\" ") in ("noinput", "no input", "none"):
                text = ""
            loc = f"{self.locator}:r{rnd}:task{i}:i{j}"
            row = {R.ID: _row_id(loc), R.SOURCE: loc, "task": f"{cfg.origin}_r{rnd:03d}_t{i:03d}",
                   "instruction": insts[i], "text": text, "output": lab, "label": lab,
                   "is_classification": kinds[i][0], "labels": labels.get(i) if kinds[i][0] else None,
                   "type_source": kinds[i][1], "synth_round": rnd}
            rows.append(row)
            if lab is None:
                block = f"Input: {text}\n" if text else ""
                out_prompts.append(OUTPUT_PROMPT.format(instruction=insts[i], input_block=block))
                out_rows.append(row)
        if out_prompts:
            out_gens = self.llm.generate(out_prompts, cfg.sampling(ctx, seed=base_seed + 3))
            for row, (g,) in zip(out_rows, out_gens):
                stats["completion_tokens"] += g.completion_tokens
                row["output"] = _first_block(g.text)
        tasks_with_rows = {r["task"] for r in rows}
        stats["tasks_emitted"] = len(tasks_with_rows)
        stats["classification_tasks"] = sum(1 for i in cls_idx if labels.get(i))
        stats["instances"] = len(rows)
        schema = {R.ID: pl.String, R.SOURCE: pl.String, "task": pl.String, "instruction": pl.String,
                  "text": pl.String, "output": pl.String, "label": pl.String, "is_classification": pl.Boolean,
                  "labels": pl.List(pl.String), "type_source": pl.String, "synth_round": pl.Int64}
        df = pl.DataFrame(rows, schema=schema)
        return df.with_columns(pl.lit(cfg.origin).alias(R.ORIGIN), pl.lit("instructions").alias("synth_kind"),
                               pl.lit(cfg.model).alias("synth_model"))
