"""Python labelling functions for pipelines/annotate_sms.yaml (each takes the text, returns
"spam", "ham" or None to abstain)."""
from __future__ import annotations

import re

_MONEY = re.compile(r"[£$€]\s?\d|\d+\s?(?:p|ppm|pence)\b|\bcash\b", re.IGNORECASE)
_SHOUT = re.compile(r"\b[A-Z]{4,}\b")


def money(text: str) -> str | None:
    """Prices and cash offers."""
    return "spam" if _MONEY.search(text) else None


def shouting(text: str) -> str | None:
    """Three or more all-caps words of 4+ letters."""
    return "spam" if len(_SHOUT.findall(text)) >= 3 else None


def short_and_casual(text: str) -> str | None:
    """Short messages with no digits read like friends texting."""
    return "ham" if len(text.split()) <= 12 and not any(ch.isdigit() for ch in text) else None
