"""Supervised fine-tuning formats: ``chat`` (TRL ``messages`` JSONL) and ``alpaca``
(``instruction``/``input``/``output`` JSONL).

:func:`to_messages` and :func:`to_alpaca` are the pure row builders, reused by the train runner.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import polars as pl
from pydantic import Field

from curate.storage import atomic_path
from curate.errors import CurateError, DataError
from curate.registry import register_output
from curate.sink import Sink, SplitSinkConfig

CHAT_SCHEMA_PATH = Path(__file__).with_name("chat.schema.json")
ALPACA_SCHEMA_PATH = Path(__file__).with_name("alpaca.schema.json")


def _text(v: Any) -> str | None:
    """A cell as a string: lists (e.g. NI output references) give their first element."""
    if isinstance(v, list):
        v = v[0] if v else None
    return None if v is None else str(v)


def user_content(instruction: str, input: str | None, separator: str = "\n\n") -> str:
    """The user turn: the instruction, followed by the input when there is one."""
    return f"{instruction}{separator}{input}" if input and input.strip() else instruction


def to_messages(instruction: str, input: str | None, output: str,
                system: str | None = None, separator: str = "\n\n") -> list[dict[str, str]]:
    """One SFT conversation: optional system prompt, user = instruction (+ input), assistant = output."""
    msgs = [{"role": "system", "content": system}] if system else []
    msgs.append({"role": "user", "content": user_content(instruction, input, separator)})
    msgs.append({"role": "assistant", "content": output})
    return msgs


def to_alpaca(instruction: str, input: str | None, output: str) -> dict[str, str]:
    """One Alpaca row (``input`` is an empty string when there is none, as in Stanford Alpaca)."""
    return {"instruction": instruction, "input": input or "", "output": output}


class SFTColumns(SplitSinkConfig):
    """Columns an SFT row is built from."""

    path: str = Field(description="JSONL file to write.")
    instruction: str | None = Field(
        default="instruction", description="Instruction column; null = use the fixed `instruction_text`.")
    instruction_text: str | None = Field(
        default=None, description="A fixed instruction for every row (e.g. a classification prompt).")
    input: str | None = Field(default="input", description="Input column (optional; missing column = no input).")
    output: str = Field(default="output", description="Output column (a list column gives its first element).")
    extra_columns: list[str] = Field(default_factory=list, description="Further columns copied into each row.")


def _sft_rows(df: pl.DataFrame, cfg: SFTColumns, what: str,
              offset: int = 0) -> Iterable[tuple[str, str | None, str, dict]]:
    """(instruction, input, output, extras) per row; a missing column or empty output is an error
    (rows numbered from ``offset``: the rows of the split written before this part)."""
    if cfg.instruction_text is None and (cfg.instruction is None or cfg.instruction not in df.columns):
        raise DataError(f"{what} output {cfg.path}: instruction column {cfg.instruction!r} not found "
                        f"(columns: {', '.join(map(repr, df.columns))}); set `instruction:` to a column "
                        "or `instruction_text:` to a fixed instruction")
    if cfg.output not in df.columns:
        raise DataError(f"{what} output {cfg.path}: output column {cfg.output!r} not found "
                        f"(columns: {', '.join(map(repr, df.columns))}); set `output:`")
    missing = [c for c in cfg.extra_columns if c not in df.columns]
    if missing:
        raise DataError(f"{what} output {cfg.path}: extra column {missing[0]!r} not found")
    n = df.height
    instr = [cfg.instruction_text] * n if cfg.instruction_text is not None else df[cfg.instruction].to_list()
    inp = df[cfg.input].to_list() if cfg.input and cfg.input in df.columns else [None] * n
    out = df[cfg.output].to_list()
    extras = df.select(cfg.extra_columns).to_dicts() if cfg.extra_columns else [{}] * n
    for i in range(n):
        ins, o = _text(instr[i]), _text(out[i])
        if not ins or not ins.strip() or o is None or not o.strip():
            which = "instruction" if not ins or not ins.strip() else "output"
            raise CurateError(f"{what} output {cfg.path}: row {offset + i} has an empty {which}; filter such rows "
                              "before the output (e.g. a clean/filter step)")
        yield ins, _text(inp[i]), o, extras[i]


def _write_jsonl(rows: Iterable[dict[str, Any]], path: Path) -> Path:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for rec in rows:
            f.write(json.dumps(rec, ensure_ascii=False, allow_nan=False) + "\n")
    return path


class _JsonLines:
    """One target of a streamed SFT output (:meth:`Sink.stream_splits`): each part's records
    appended to a temp file as JSON lines, committed at the end."""

    def __init__(self, sink: "_SFTOutput", split: str | None) -> None:
        self.sink, self.path, self.rows = sink, sink.path(sink.config.path, split), 0

    def __enter__(self) -> "_JsonLines":
        from contextlib import ExitStack
        self._stack = ExitStack()
        self._f = self._stack.enter_context(open(self._stack.enter_context(atomic_path(self.path)), "w",
                                                 encoding="utf-8"))
        return self

    def write(self, df: pl.DataFrame) -> None:
        for rec in self.sink.records(df, self.rows):
            self._f.write(json.dumps(rec, ensure_ascii=False, allow_nan=False) + "\n")
        self.rows += df.height

    def __exit__(self, *exc) -> None:
        self._stack.__exit__(*exc)


class _SFTOutput(Sink):
    """An SFT JSONL output: one record per row, so the final table is written part by part."""

    def targets(self) -> list[Path]:
        return [self.path(self.config.path)]

    def records(self, df: pl.DataFrame, offset: int = 0) -> Iterable[dict[str, Any]]:
        raise NotImplementedError

    def write_split(self, df: pl.DataFrame, seed: int, split: str | None) -> list[Path]:
        return [_write_jsonl(self.records(df), self.path(self.config.path, split))]

    def streams(self, columns: list[str]) -> bool:
        return True

    def write_stream(self, frames, seed: int) -> tuple[list[Path], int]:
        return self.stream_splits(frames, lambda split: _JsonLines(self, split))


class ChatConfig(SFTColumns):
    """Options of the ``chat`` output."""

    system: str | None = Field(default=None, description="System prompt put first in every conversation.")
    separator: str = Field(default="\n\n", description="Between instruction and input in the user turn.")


@register_output("chat")
class ChatOutput(_SFTOutput):
    """SFT conversations as JSONL with a TRL `messages` column (system?, user, assistant)."""

    Config = ChatConfig

    def records(self, df: pl.DataFrame, offset: int = 0) -> list[dict[str, Any]]:
        cfg = self.config
        return [{"messages": to_messages(ins, inp, out, cfg.system, cfg.separator), **ex}
                for ins, inp, out, ex in _sft_rows(df, cfg, "chat", offset)]


@register_output("alpaca")
class AlpacaOutput(_SFTOutput):
    """SFT rows as Alpaca JSONL: instruction, input, output."""

    Config = SFTColumns

    def records(self, df: pl.DataFrame, offset: int = 0) -> list[dict[str, Any]]:
        return [{**to_alpaca(ins, inp, out), **ex}
                for ins, inp, out, ex in _sft_rows(df, self.config, "alpaca", offset)]
