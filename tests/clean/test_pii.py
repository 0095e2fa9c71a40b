"""PII redaction: emails, phones, IPs, Luhn-valid cards; counts per type."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from curate.steps.clean._pii import luhn_ok
from curate.steps.clean import CleanConfig


def test_each_type_redacted_with_counts(run):
    texts = [
        "Write to jane.doe+news@example.co.uk or bob@mail.example.com today",
        "Call +44 20 7946 0958, (415) 555-2671 or 09061701461 now",
        "Server at 192.168.10.254 and 2001:0db8:85a3:0000:0000:8a2e:0370:7334 is down",
        "Pay with 4111 1111 1111 1111 or 5500-0000-0000-0004 please",
        "Nothing personal here at all",
    ]
    res = run(texts, pii=True)
    out = res.kept["text"].to_list()
    assert out == [
        "Write to <EMAIL> or <EMAIL> today",
        "Call <PHONE>, <PHONE> or <PHONE> now",
        "Server at <IP> and <IP> is down",
        "Pay with <CREDIT_CARD> or <CREDIT_CARD> please",
        "Nothing personal here at all",
    ]
    assert res.stats["pii_redacted"] == {"email": 2, "phone": 3, "ip": 2, "credit_card": 2}
    assert res.stats["pii_rows"] == 4


def test_non_luhn_16_digit_number_is_kept(run):
    texts = ["order 1234 5678 9012 3456 shipped", "ref 1234567890123456 ok", "card 4111111111111111"]
    res = run(texts, pii=True)
    assert res.kept["text"].to_list() == ["order 1234 5678 9012 3456 shipped", "ref 1234567890123456 ok",
                                          "card <CREDIT_CARD>"]
    assert res.stats["pii_redacted"]["credit_card"] == 1
    assert res.stats["pii_redacted"]["phone"] == 0


def test_dates_times_and_prices_are_not_pii(run):
    text = "Meet 2024-05-17 at 12:30, it costs 100.50 for 3 people"
    res = run([text], pii=True)
    assert res.kept["text"][0] == text
    assert sum(res.stats["pii_redacted"].values()) == 0


def test_types_can_be_switched_off_and_placeholders_changed(run):
    text = "mail a.b@example.org from 10.0.0.1"
    res = run([text], pii={"ips": False, "replacement": {"email": "[$EMAIL]"}})
    assert res.kept["text"][0] == "mail [$EMAIL] from 10.0.0.1"
    assert "ip" not in res.stats["pii_redacted"]


def test_unknown_pii_type_is_a_config_error():
    with pytest.raises(ValidationError, match="unknown PII type"):
        CleanConfig(pii={"replacement": {"ssn": "<SSN>"}})


@pytest.mark.parametrize("number,ok", [("4111111111111111", True), ("5500000000000004", True),
                                       ("378282246310005", True), ("4111111111111112", False),
                                       ("1234567890123456", False)])
def test_luhn(number, ok):
    assert luhn_ok(number) is ok
