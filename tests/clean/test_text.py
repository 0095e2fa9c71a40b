"""Mappers: mojibake repair, Unicode normalisation, HTML to text, whitespace/control chars."""
from __future__ import annotations

import unicodedata

import polars as pl

from curate.steps.clean import _text as T

HTML_PAGE = """<!DOCTYPE html><html><head><title>Shop</title>
<style>body { color: red; }</style><script>var secret = "do not keep";</script></head>
<body><h1>Welcome</h1><p>Fresh <b>bread</b> &amp; caf&eacute; daily.</p>
<!-- a comment --><ul><li>Rye</li><li>Spelt</li></ul>
<noscript>Enable JS</noscript><table><tr><td>Mon</td><td>8-18</td></tr></table></body></html>"""


def test_mojibake_repaired_and_counted(run):
    res = run(["cafÃ© au lait", "Itâ€™s fine", "plain text"])
    assert res.kept["text"].to_list() == ["café au lait", "It’s fine", "plain text"]
    assert res.stats["unicode_fixed"] == 2


def test_fix_unicode_off_leaves_mojibake(run):
    res = run(["cafÃ© au lait"], fix_unicode=False)
    assert res.kept["text"][0] == "cafÃ© au lait"
    assert "unicode_fixed" not in res.stats


def test_only_flagged_rows_reach_python(run, monkeypatch):
    """Clean rows never pay for ftfy or BeautifulSoup: only regex-flagged rows are handed over."""
    import ftfy

    seen: list[str] = []
    real_fix, real_html = ftfy.fix_text, T.html_to_text
    monkeypatch.setattr(ftfy, "fix_text", lambda t, *a, **k: seen.append(t) or real_fix(t, *a, **k))
    monkeypatch.setattr(T, "html_to_text", lambda t: seen.append(t) or real_html(t))
    texts = [f"ordinary row number {i}" for i in range(500)] + ["cafÃ©", "<p>para</p>"]
    res = run(texts, strip_html=True)
    assert sorted(seen) == ["<p>para</p>", "cafÃ©"]
    assert res.kept["text"].to_list()[-2:] == ["café", "para"]


def test_nfc_composes_combining_characters(run):
    decomposed = "Cafe\u0301 Zu\u0308rich"
    res = run([decomposed])
    out = res.kept["text"][0]
    assert out == "Café Zürich" and unicodedata.is_normalized("NFC", out)
    assert res.stats["normalized"] == 1
    assert run([decomposed], normalize="none").kept["text"][0] == decomposed


def test_nfkc_folds_compatibility_characters(run):
    assert run(["ﬁne ２０２４"], normalize="NFKC").kept["text"][0] == "fine 2024"


def test_html_page_to_text_without_script_or_style(run):
    res = run([HTML_PAGE, "no markup < here > at all"], strip_html=True)
    page, plain = res.kept["text"].to_list()
    assert page == "Welcome\n\nFresh bread & café daily.\n\nRye\nSpelt\n\nMon\t8-18"
    for hidden in ("secret", "color: red", "comment", "Enable JS", "<", "&amp;"):
        assert hidden not in page
    assert plain == "no markup < here > at all"
    assert res.stats["html_stripped"] == 1


def test_entities_only_rows_are_unescaped(run):
    res = run(["Tom &amp; Jerry &lt;3 &#39;quoted&#39;"], strip_html=True)
    assert res.kept["text"][0] == "Tom & Jerry <3 'quoted'"


def test_html_left_alone_when_off(run):
    assert run(["<b>bold</b>"]).kept["text"][0] == "<b>bold</b>"


def test_whitespace_and_control_characters(run):
    raw = "  Hello\x00 \x07world\u200b!\r\nTab\there\t\t too\r\r\n\n\n\nEnd\u00a0\u00a0of  text \x1b "
    res = run([raw])
    assert res.kept["text"][0] == "Hello world!\nTab\there\ttoo\n\nEnd of text"
    assert res.stats["whitespace_fixed"] == 1


def test_whitespace_off_keeps_text_verbatim(run):
    raw = "a  b\x07"
    assert run([raw], whitespace=False).kept["text"][0] == raw


def test_all_listed_columns_are_cleaned(run):
    df = pl.DataFrame({"id": ["a"], "text": ["cafÃ©  x"], "response": ["<i>ok</i>   there"]})
    from pathlib import Path
    from curate.step import StepContext
    from curate.steps.clean import Clean
    res = Clean(columns=["text", "response"], strip_html=True).process(df, StepContext("clean", 0, 0, Path("/tmp")))
    assert res.kept.row(0) == ("a", "café x", "ok there")
