"""LLM-as-judge: a rubric prompt and robust parsing of the score out of free-form answers
(``Score: 8/10``, ``[[4]]``, ``{"score": 3}``, ``**Rating**: 4.5``, a bare ``7``).
Unparsable or out-of-range answers give ``None`` so callers can reject with a reason."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

DEFAULT_RUBRIC = (
    "Rate the response to the instruction for helpfulness, correctness and whether it follows "
    "the instruction. Use a scale from {low} (useless or wrong) to {high} (excellent)."
)

JUDGE_TEMPLATE = (
    "{rubric}\n\n### Instruction\n{instruction}\n\n### Response\n{response}\n\n"
    "Answer with a short justification, then the final line `Score: <number>` ({low}-{high})."
)

_WORDS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
          "eight": 8, "nine": 9, "ten": 10}
_NUM = r"(-?\d+(?:\.\d+)?|" + "|".join(_WORDS) + r")"
# Explicit, labelled forms first (most trustworthy), then bracketed, then fractions.
_PATTERNS = [
    re.compile(r"(?:final\s+)?(?:score|rating|grade|verdict)\s*(?:is|of|=|:)?\s*\**\s*:?\s*\**\s*\[{0,2}" + _NUM
               + r"(?:\s*(?:/|out of)\s*(\d+))?", re.I),
    re.compile(r"\[\[\s*" + _NUM + r"\s*\]\]"),
    re.compile(r"\b" + _NUM + r"\s*(?:/|out of)\s*(\d+)\b", re.I),
]


@dataclass
class JudgeResult:
    """A parsed score (``None`` when unparsable) and why parsing failed."""

    score: float | None
    error: str | None = None


def _num(s: str) -> float:
    return float(_WORDS.get(s.lower(), s)) if s.lower() in _WORDS else float(s)


def parse_score(text: str | None, low: float = 1, high: float = 10) -> JudgeResult:
    """Extract one score in ``[low, high]`` from a judge's answer.

    The last labelled score wins (judges often restate it); a fraction ``a/b`` is rescaled to the
    range when ``b`` differs from ``high``; a bare number is accepted only when it is the whole
    answer. Anything else is unparsable, not guessed.
    """
    if text is None or not text.strip():
        return JudgeResult(None, "empty judgement")
    t = text.strip()
    # JSON object with a score field
    m = re.search(r"\{[^{}]*\}", t)
    if m:
        try:
            obj = json.loads(m.group(0))
            for k in ("score", "rating", "grade"):
                if isinstance(obj, dict) and isinstance(obj.get(k), (int, float)) and not isinstance(obj.get(k), bool):
                    return _ranged(float(obj[k]), low, high)
        except json.JSONDecodeError:
            pass
    for pat in _PATTERNS:
        hits = list(pat.finditer(t))
        if hits:
            h = hits[-1]
            val = _num(h.group(1))
            denom = h.group(2) if h.lastindex and h.lastindex >= 2 else None
            if denom is not None:
                d = float(denom)
                if d <= 0:
                    return JudgeResult(None, f"bad scale {h.group(0)!r}")
                if d != high:
                    val = low + (val / d) * (high - low)
            return _ranged(val, low, high)
    bare = re.fullmatch(r"\**\s*" + _NUM + r"\s*\**\.?", t, re.I)
    if bare:
        return _ranged(_num(bare.group(1)), low, high)
    return JudgeResult(None, f"no score found in {t[:60]!r}")


def _ranged(v: float, low: float, high: float) -> JudgeResult:
    if v < low or v > high:
        return JudgeResult(None, f"score {v:g} outside {low:g}-{high:g}")
    return JudgeResult(v)


def judge_prompt(instruction: str, response: str, rubric: str | None = None, low: int = 1, high: int = 10) -> str:
    """The prompt sent to the judge model."""
    rub = (rubric or DEFAULT_RUBRIC).format(low=low, high=high)
    return JUDGE_TEMPLATE.format(rubric=rub, instruction=instruction, response=response, low=low, high=high)
