"""Regex PII redaction for ``redact_pii`` and ``clean``: emails, IP addresses, credit-card numbers (Luhn
checked) and phone numbers, replaced by typed placeholders with a count per type.

Emails, IPs and phones are counted and replaced by polars (Rust regex) over the whole column.
Card numbers need the Luhn checksum, so only rows holding a 13–19 digit candidate go through
Python; candidates that fail the checksum are shielded from the phone pattern and kept as they are.
"""
from __future__ import annotations

import re

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PII_TYPES = ("email", "ip", "credit_card", "phone")
DEFAULT_REPLACEMENT = {"email": "<EMAIL>", "ip": "<IP>", "credit_card": "<CREDIT_CARD>",
                       "phone": "<PHONE>"}

EMAIL_RE = r"(?i)\b[a-z0-9][a-z0-9._%+-]*@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*\.[a-z]{2,}\b"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_H = r"[0-9A-Fa-f]{1,4}"
IP_RE = (rf"\b{_OCTET}(?:\.{_OCTET}){{3}}\b"                       # IPv4
         rf"|\b(?:{_H}:){{7}}{_H}\b"                                # full IPv6
         rf"|\b(?:{_H}:){{1,6}}:(?:{_H}(?::{_H}){{0,5}})?\b"        # compressed IPv6 (a::b)
         rf"|::(?:ffff:)?{_OCTET}(?:\.{_OCTET}){{3}}\b")            # ::ffff:1.2.3.4
# 13-19 digits, optionally in groups separated by single spaces or hyphens.
CARD_RE = r"\b[0-9](?:[ -]?[0-9]){12,18}\b"
# "+" and 7-15 digits (E.164), or an optional country code then (area) + groups, separated
# groups (555-123-4567, 020 7946 0958) or a 9-13 digit run.
PHONE_RE = (r"\+[0-9]{7,15}\b"
            r"|(?:\+[0-9]{1,3}[ .-]?)?"
            r"(?:\([0-9]{1,5}\)[ .-]?[0-9]{3,4}[ .-]?[0-9]{3,4}"
            r"|\b(?:[0-9]{2,5}[ .-][0-9]{3,4}[ .-][0-9]{3,4}|[0-9]{9,13}))\b")

# Card candidates that fail Luhn have their separators swapped for private-use characters while
# the phone pattern runs, so "4111 1111 1111 1112" is not half-redacted as a phone number.
_SHIELD = {" ": "\ue000", "-": "\ue001"}
_CARD_PY = re.compile(r"\b[0-9](?:[ -]?[0-9]){12,18}\b")


class PiiConfig(BaseModel):
    """Which PII types to redact and what to put in their place.

    Naming types with ``true`` redacts only those (``{emails: true}``: emails only); naming them
    only with ``false`` redacts every other type (``{phones: false}``); naming none (``pii: true``,
    ``{}`` or only ``replacement``) redacts every type."""

    model_config = ConfigDict(extra="forbid")
    emails: bool | None = Field(default=None, description="Redact email addresses.")
    phones: bool | None = Field(default=None, description="Redact phone numbers (international, grouped, 9-13 digit runs).")
    ips: bool | None = Field(default=None, description="Redact IPv4 and IPv6 addresses.")
    credit_cards: bool | None = Field(default=None, description="Redact 13-19 digit card numbers that pass the Luhn check.")
    replacement: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_REPLACEMENT),
        description="Placeholder per type (email, phone, ip, credit_card); unspecified types keep "
                    "the default (<EMAIL>, <PHONE>, <IP>, <CREDIT_CARD>).")

    @field_validator("replacement")
    @classmethod
    def _known_types(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v) - set(PII_TYPES))
        if unknown:
            raise ValueError(f"unknown PII type(s) {unknown}; known: {list(PII_TYPES)}")
        return {**DEFAULT_REPLACEMENT, **v}

    @model_validator(mode="after")
    def _resolve(self) -> "PiiConfig":
        """Unnamed types follow the named ones: off if any type is named `true`, else on."""
        flags = ("emails", "phones", "ips", "credit_cards")
        any_on = any(getattr(self, f) is True for f in flags)
        for f in flags:
            if getattr(self, f) is None:
                object.__setattr__(self, f, not any_on)
        return self


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) checksum used by payment card numbers."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_sub(text: str, replacement: str) -> tuple[str, int]:
    found = 0

    def sub(m: re.Match) -> str:
        nonlocal found
        digits = re.sub(r"[ -]", "", m.group(0))
        if luhn_ok(digits):
            found += 1
            return replacement
        return m.group(0).translate(str.maketrans(_SHIELD))
    return _CARD_PY.sub(sub, text), found


# What every match of a pattern contains: a cheap scan picks the rows the pattern can match
# before the full pattern (Unicode word boundaries, bounded repeats) runs on those rows only.
EMAIL_NEEDS = "@"
# IPv4 has "d.d{1,3}.d"; full IPv6 "h:h{1,4}:h"; compressed IPv6 "::"
IP_NEEDS = r"[0-9]\.[0-9]{1,3}\.[0-9]|[0-9A-Fa-f]:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]|::"
# every phone form has two groups of 3+ digits, at most one separator apart
PHONE_NEEDS = r"[0-9]{3}[ .-]?[0-9]{3}"


def _regex_pass(s: pl.Series, pattern: str, replacement: str, needs: str | None = None) -> tuple[pl.Series, int]:
    if needs is not None:
        idx = s.str.contains(needs).fill_null(False).arg_true()
        if idx.len() == 0:
            return s, 0
        sub, n = _regex_pass(s.gather(idx), pattern, replacement)
        return (s.clone().scatter(idx, sub) if n else s), n
    n = int(s.str.count_matches(pattern).sum() or 0)
    if n:
        # Literal placeholder: escape "$" so it is not read as a capture-group reference.
        s = s.str.replace_all(pattern, replacement.replace("$", "$$"))
    return s, n


def redact(s: pl.Series, cfg: PiiConfig) -> tuple[pl.Series, dict[str, int], int]:
    """Redact PII in ``s``; return the new series, the count per type and the rows changed."""
    orig = s
    rep = cfg.replacement
    counts = {t: 0 for t, on in (("email", cfg.emails), ("ip", cfg.ips),
                                 ("credit_card", cfg.credit_cards), ("phone", cfg.phones)) if on}
    if cfg.emails:
        s, counts["email"] = _regex_pass(s, EMAIL_RE, rep["email"], EMAIL_NEEDS)
    if cfg.ips:
        s, counts["ip"] = _regex_pass(s, IP_RE, rep["ip"], IP_NEEDS)
    shielded = False
    if cfg.credit_cards:
        idx = s.str.contains(CARD_RE).fill_null(False).arg_true()
        if idx.len():
            pairs = [_card_sub(t, rep["credit_card"]) for t in s.gather(idx).to_list()]
            counts["credit_card"] = sum(n for _, n in pairs)
            s = s.clone().scatter(idx, pl.Series([t for t, _ in pairs], dtype=pl.String))
            shielded = True
    if cfg.phones:
        s, counts["phone"] = _regex_pass(s, PHONE_RE, rep["phone"], PHONE_NEEDS)
    if shielded:
        s = s.str.replace_many(list(_SHIELD.values()), list(_SHIELD.keys()))
    changed = int((s != orig).sum() or 0)
    return s, counts, changed
