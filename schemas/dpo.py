"""DPO preference data (TRL ``prompt``/``chosen``/``rejected``): pair normalisation and the ``dpo``
JSONL output. The ``dpo_pairs`` step that rejects unusable pairs lives in
:mod:`curate.steps.dpo_pairs` and uses the rules here.

Pure functions (:func:`split_implicit`, :func:`pair_problem`, :func:`hh_to_messages`,
:func:`to_record`, :func:`pairs_from_labels`) hold the rules so synth steps and the train runner
can reuse them. Format reference: ``/work/shared/reference/dpo-format.md``.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Literal

import polars as pl
import xxhash
from pydantic import BaseModel, ConfigDict, Field

from curate import records as R
from curate.storage import atomic_path
from curate.errors import CurateError, DataError
from curate.registry import register_output
from curate.sink import Sink, SplitSinkConfig

SCHEMA_PATH = Path(__file__).with_name("dpo.schema.json")

HH_HUMAN, HH_ASSISTANT = "\n\nHuman:", "\n\nAssistant:"
_HH_TURN = re.compile(r"\n\n(Human|Assistant):")
_ROLES = {"Human": "user", "Assistant": "assistant"}

#: Reasons the ``dpo_pairs`` step records for pairs that cannot be trained on.
REASONS = ("empty_chosen", "empty_rejected", "chosen_equals_rejected", "no_common_prompt",
           "multi_turn_completion", "no_other_label")

Text = str | list[dict[str, Any]]


class PairError(ValueError):
    """A preference pair that cannot be written; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


# ============================================================================ pure functions
def is_messages(v: Any) -> bool:
    """True for a chat message list (``[{"role": ..., "content": ...}, ...]``)."""
    return isinstance(v, list) and bool(v) and isinstance(v[0], dict) and "role" in v[0]


def is_hh(text: Any) -> bool:
    """True for Anthropic hh-rlhf style text (``"\\n\\nHuman: ...\\n\\nAssistant: ..."``)."""
    return isinstance(text, str) and HH_ASSISTANT in text and HH_HUMAN in text


def _blank(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, str):
        return not v.strip()
    if isinstance(v, list):
        return not v or all(_blank(m.get("content") if isinstance(m, dict) else m) for m in v)
    return False


def pair_problem(prompt: Text | None, chosen: Text | None, rejected: Text | None) -> str | None:
    """The reason an (explicit or implicit) pair is unusable, or None."""
    if _blank(chosen):
        return "empty_chosen"
    if _blank(rejected):
        return "empty_rejected"
    if chosen == rejected:
        return "chosen_equals_rejected"
    return None


def split_implicit(chosen: Text, rejected: Text, split_at: Literal["word", "char"] = "word") -> tuple[Text, Text, Text]:
    """Implicit → explicit prompt: the longest common prefix of ``chosen`` and ``rejected``.

    hh-style text is cut back to the last ``"\\n\\nAssistant:"`` (the prompt ends with it, the
    completions start with ``" ..."``); other text is cut back to the last whitespace
    (``split_at="word"``; the completion keeps the space) or right at the first differing character
    (``"char"``); message lists split before the first differing message, keeping the prompt's
    last turn a user turn. Always ``prompt + chosen == chosen_in`` (same for rejected). Raises
    :class:`PairError` (``no_common_prompt``) only; emptiness is :func:`pair_problem`'s business.
    """
    if is_messages(chosen) or is_messages(rejected):
        if not (is_messages(chosen) and is_messages(rejected)):
            raise PairError("no_common_prompt", "one of chosen/rejected is a message list, the other is not")
        n = 0
        while n < min(len(chosen), len(rejected)) and chosen[n] == rejected[n]:
            n += 1
        while n > 0 and chosen[n - 1].get("role") != "user":   # the prompt ends with a user turn
            n -= 1
        if n == 0:
            raise PairError("no_common_prompt", "chosen and rejected share no user turn")
        return chosen[:n], chosen[n:], rejected[n:]
    if not isinstance(chosen, str) or not isinstance(rejected, str):
        raise PairError("no_common_prompt", "chosen/rejected must both be strings or message lists")
    lcp = os.path.commonprefix([chosen, rejected])
    if is_hh(chosen) and is_hh(rejected):
        cut = lcp.rfind(HH_ASSISTANT)
        if cut < 0:
            raise PairError("no_common_prompt", "chosen and rejected differ before the first Assistant turn")
        cut += len(HH_ASSISTANT)
    else:
        cut = len(lcp)
        if split_at == "word":
            ws = max(lcp.rfind(c) for c in (" ", "\n", "\t"))
            if ws > 0:
                cut = ws
        if cut == 0:
            raise PairError("no_common_prompt", "chosen and rejected share no leading text")
    return chosen[:cut], chosen[cut:], rejected[cut:]


def hh_to_messages(text: str, first_role: str = "user") -> list[dict[str, str]]:
    """Parse hh-style text into messages (Human→user, Assistant→assistant; contents stripped).

    Text before the first marker (e.g. a completion ``" Sure..."``) gets ``first_role``; an empty
    trailing turn (the ``"\\n\\nAssistant:"`` ending a prompt) is dropped.
    """
    parts = _HH_TURN.split(text)
    msgs: list[dict[str, str]] = []
    if parts[0].strip():
        msgs.append({"role": first_role, "content": parts[0].strip()})
    for role, content in zip(parts[1::2], parts[2::2]):
        msgs.append({"role": _ROLES[role], "content": content.strip()})
    while msgs and not msgs[-1]["content"]:
        msgs.pop()
    return msgs


def to_messages(prompt: Text, completion_chosen: Text, completion_rejected: Text) -> tuple[list, list, list]:
    """Explicit pair → conversational messages: prompt ends with a user turn, completions hold
    only assistant turns. Raises :class:`PairError` when a completion holds a user turn."""
    def prompt_msgs(p: Text) -> list:
        if is_messages(p):
            return list(p)
        return hh_to_messages(p) if HH_HUMAN in p else [{"role": "user", "content": p.strip()}]

    def completion_msgs(c: Text, which: str) -> list:
        msgs = list(c) if is_messages(c) else (hh_to_messages(c, "assistant") if HH_HUMAN in c or HH_ASSISTANT in c
                                               else [{"role": "assistant", "content": c.strip()}])
        if any(m.get("role") != "assistant" for m in msgs):
            raise PairError("multi_turn_completion", f"{which} continues the dialogue after the first "
                                                     "differing turn; conversational DPO wants assistant turns only")
        return msgs

    p = prompt_msgs(prompt)
    if not p or p[-1].get("role") != "user":
        raise PairError("no_common_prompt", "the prompt does not end with a user turn")
    return p, completion_msgs(completion_chosen, "chosen"), completion_msgs(completion_rejected, "rejected")


def normalise_pair(prompt: Text | None, chosen: Text, rejected: Text,
                   split_at: Literal["word", "char"] = "word") -> tuple[Text, Text, Text]:
    """An explicit ``(prompt, chosen, rejected)`` from an explicit or implicit pair (PairError if bad)."""
    problem = pair_problem(prompt, chosen, rejected)
    if problem:
        raise PairError(problem)
    if prompt is None or (isinstance(prompt, str) and prompt == "") or prompt == []:
        prompt, chosen, rejected = split_implicit(chosen, rejected, split_at)
        problem = pair_problem(prompt, chosen, rejected)
        if problem:
            raise PairError(problem, "the completion is empty once the shared prompt is removed")
    return prompt, chosen, rejected


def to_record(prompt: Text, chosen: Text, rejected: Text, fmt: Literal["standard", "conversational"] = "standard",
              prompt_style: Literal["explicit", "implicit"] = "explicit") -> dict[str, Any]:
    """One output row in TRL's layout from an explicit pair (PairError if it cannot be expressed)."""
    if fmt == "conversational":
        p, c, r = to_messages(prompt, chosen, rejected)
    else:
        if any(is_messages(x) for x in (prompt, chosen, rejected)):
            raise PairError("no_common_prompt", "message lists cannot be written as format: standard; "
                                                "use format: conversational")
        p, c, r = prompt, chosen, rejected
    if prompt_style == "implicit":
        return {"chosen": p + c, "rejected": p + r}
    return {"prompt": p, "chosen": c, "rejected": r}


def _pick(seed: int, key: str, n: int) -> int:
    return xxhash.xxh3_64_intdigest(f"{seed}:{key}".encode()) % n


def pairs_from_labels(df: pl.DataFrame, prompt_template: str, label: str = "label",
                      labels: list[str] | None = None, seed: int = 0,
                      completion_prefix: str = " ") -> pl.DataFrame:
    """One DPO row per input row: chosen = its real label, rejected = another label of the set
    (seeded per row id). Rows whose label is missing (null or empty) get ``chosen = null``; rows
    whose label has no alternative get ``rejected = null``.

    ``prompt_template`` is formatted with the row's columns (e.g. ``"SMS: {text}\\nLabel:"``).
    """
    R.require_column(df, label, "dpo from_labels", "label column")
    names = set(re.findall(r"{(\w+)}", prompt_template))
    missing = [n for n in names if n not in df.columns]
    if missing:
        raise DataError(f"dpo from_labels: prompt_template uses {{{missing[0]}}}, which is not a column")
    labs = df[label].cast(pl.String)
    blank = labs.is_null() | (labs.str.strip_chars() == "")       # an empty label is not a class
    labs = labs.zip_with(~blank, pl.repeat(None, labs.len(), dtype=pl.String, eager=True))
    label_set = [str(x) for x in labels] if labels is not None else sorted(labs.drop_nulls().unique().to_list())
    ids = df[R.ID].cast(pl.String).to_list() if R.ID in df.columns else [str(i) for i in range(df.height)]
    rows = df.select(sorted(names)).to_dicts() if names else [{}] * df.height
    prompts, chosen, rejected = [], [], []
    for rid, lab, ctx in zip(ids, labs.to_list(), rows):
        prompts.append(prompt_template.format(**ctx))
        others = [x for x in label_set if x != lab]
        chosen.append(None if lab is None else completion_prefix + lab)
        wrong = others[_pick(seed, rid, len(others))] if lab is not None and others else None
        rejected.append(None if wrong is None else completion_prefix + wrong)
    return df.with_columns(pl.Series("prompt", prompts, dtype=pl.String),
                           pl.Series("chosen", chosen, dtype=pl.String),
                           pl.Series("rejected", rejected, dtype=pl.String))


# ============================================================================ config shared by step and sink
class FromLabels(BaseModel):
    """Build preference pairs from real labels: chosen = the row's label, rejected = another one."""

    model_config = ConfigDict(extra="forbid")
    prompt_template: str = Field(description="Prompt, formatted with the row's columns, e.g. "
                                             "'Is this SMS spam or ham?\\n{text}\\nAnswer:'.")
    label: str = Field(default="label", description="Column with the true label.")
    labels: list[str] | None = Field(default=None, description="The label set (default: all values seen).")
    completion_prefix: str = Field(default=" ", description="Put before each label (standard format).")


class PairColumns(BaseModel):
    """Column names of a preference pair."""

    prompt: str = Field(default="prompt", description="Prompt column (absent/empty = implicit pair).")
    chosen: str = Field(default="chosen", description="Preferred completion (or full sequence).")
    rejected: str = Field(default="rejected", description="Dispreferred completion (or full sequence).")
    split_at: Literal["word", "char"] = Field(
        default="word", description="Where to cut a non-hh implicit pair: last whitespace or first difference.")
    from_labels: FromLabels | None = Field(default=None, description="Build pairs from a label column instead.")


def column_values(df: pl.DataFrame, col: str) -> list[Any]:
    return df[col].to_list() if col in df.columns else [None] * df.height


def pairs_frame(df: pl.DataFrame, cfg: PairColumns, seed: int) -> tuple[pl.DataFrame, dict[str, str]]:
    """The input with from_labels applied; returns the frame and the prompt/chosen/rejected names."""
    if cfg.from_labels is not None:
        fl = cfg.from_labels
        df = pairs_from_labels(df, fl.prompt_template, fl.label, fl.labels, seed, fl.completion_prefix)
        return df, {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected"}
    cols = {"prompt": cfg.prompt, "chosen": cfg.chosen, "rejected": cfg.rejected}
    for k in ("chosen", "rejected"):
        R.require_column(df, cols[k], "dpo", f"{k} column", hint=f" (set `{k}:` or `from_labels:`)")
    return df, cols


# ============================================================================ output
class DpoOutputConfig(SplitSinkConfig, PairColumns):
    """Options of the ``dpo`` output."""

    path: str = Field(description="JSONL file to write.")
    format: Literal["standard", "conversational"] = Field(
        default="standard", description="Strings, or chat message lists (hh-style text is parsed into turns).")
    prompt_style: Literal["explicit", "implicit"] = Field(
        default="explicit", description="explicit: prompt/chosen/rejected (TRL's DPO default); implicit: "
                                        "chosen/rejected hold the full sequence.")
    extra_columns: list[str] = Field(default_factory=list,
                                     description="Further columns to copy into each row (e.g. id, source).")


@register_output("dpo")
class DpoOutput(Sink):
    """DPO preference pairs as JSONL for TRL (standard or conversational; explicit or implicit prompt)."""

    Config = DpoOutputConfig
    version = "1"

    def targets(self) -> list[Path]:
        return [self.path(self.config.path)]

    def records(self, df: pl.DataFrame, seed: int = 0) -> list[dict[str, Any]]:
        """The rows to write; raises :class:`CurateError` naming the first bad rows."""
        cfg = self.config
        work, cols = pairs_frame(df, cfg, seed)
        missing = [c for c in cfg.extra_columns if c not in work.columns]
        if missing:
            raise DataError(f"dpo output: extra column {missing[0]!r} not found")
        prompts, chosen, rejected = (column_values(work, cols[k]) for k in ("prompt", "chosen", "rejected"))
        extras = work.select(cfg.extra_columns).to_dicts() if cfg.extra_columns else [{}] * work.height
        where = column_values(work, R.SOURCE) if R.SOURCE in work.columns else [None] * work.height
        ids = column_values(work, R.ID)
        out, bad = [], []
        for i, (p, c, r) in enumerate(zip(prompts, chosen, rejected)):
            try:
                rec = to_record(*normalise_pair(p, c, r, cfg.split_at), cfg.format, cfg.prompt_style)
            except PairError as e:
                bad.append(f"row {i} (id {ids[i]}, {where[i]}): {e}")
                continue
            rec.update(extras[i])
            out.append(rec)
        if bad:
            raise CurateError(f"dpo output {cfg.path}: {len(bad)} pair(s) cannot be written: "
                              + "; ".join(bad[:3]) + ("; ..." if len(bad) > 3 else "")
                              + ". Add a `dpo_pairs` step before the output to reject them with a reason.")
        return out

    def write_split(self, df: pl.DataFrame, seed: int, split: str | None) -> list[Path]:
        recs = self.records(df, seed)
        path = self.path(self.config.path, split)
        with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
            for rec in recs:
                f.write(json.dumps(rec, ensure_ascii=False, allow_nan=False) + "\n")
        return [path]
