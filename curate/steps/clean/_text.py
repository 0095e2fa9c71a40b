"""Text repair mappers for the ``clean`` step: mojibake repair (ftfy), Unicode normalisation,
HTML to text (BeautifulSoup + lxml) and whitespace/control-character cleanup.

Each function takes a polars String Series and returns ``(new_series, rows_changed)``. The Python
paths (ftfy, BeautifulSoup) run only on the rows a vectorised polars regex flags as needing them,
so clean rows never leave Rust.
"""
from __future__ import annotations

import re
from typing import Callable, Literal

import polars as pl

# Markers of text decoded with the wrong codec (UTF-8 read as Latin-1/cp1252: "cafÃ©", "â€™",
# "Â "), the replacement character, a byte-order mark read as cp1252, and terminal escapes.
MOJIBAKE_RE = r"[ÃÂ]|â€|â„¢|[ÐÑ][\x{80}-\x{BF}]|\x{FFFD}|ï»¿|\x{1B}\["

# Names of HTML elements: only these (plus comments and <!DOCTYPE>) flag a row as markup, so
# "if a <b and c> d" in prose or code is not sent to the HTML parser.
HTML_ELEMENTS = (
    "a abbr address area article aside audio b base bdi bdo blockquote body br button canvas "
    "caption center cite code col colgroup data datalist dd del details dfn dialog div dl dt em "
    "embed fieldset figcaption figure font footer form frame frameset h1 h2 h3 h4 h5 h6 head "
    "header hgroup hr html i iframe img input ins kbd label legend li link main map mark menu meta "
    "meter nav noscript object ol optgroup option output p param picture pre progress q rp rt "
    "ruby s samp script section select small source span strike strong style sub summary sup svg "
    "table tbody td template textarea tfoot th thead time title tr track tt u ul var video wbr"
).split()
HTML_TAG_RE = (r"(?i)<(?:/?(?:" + "|".join(sorted(HTML_ELEMENTS, key=len, reverse=True))
               + r")(?:\s[^<>]*)?/?|!--[^<>]*|!doctype[^<>]*)>")
# A character entity: &amp; &#39; &#x27;
HTML_ENTITY_RE = r"&(?:[A-Za-z][A-Za-z0-9]{1,31}|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});"

#: Elements whose content is never text a reader sees.
DROP_TAGS = ("script", "style", "noscript", "template", "iframe", "svg", "canvas", "object", "head")
#: Elements that are paragraphs of their own (a blank line around them) ...
PARA_TAGS = ("address", "article", "aside", "blockquote", "details", "dialog", "dl", "fieldset",
             "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
             "main", "nav", "ol", "p", "pre", "section", "table", "ul", "title")
#: ... and elements that only start a new line.
LINE_TAGS = ("caption", "dd", "div", "dt", "figcaption", "li", "summary", "tbody", "tfoot", "thead",
             "tr")
CELL_TAGS = ("td", "th")
_PARA = "\x1d"   # placeholder for a paragraph break while the tree is flattened


def _apply_to_flagged(s: pl.Series, mask: pl.Series, fn: Callable[[str], str]) -> tuple[pl.Series, int]:
    """Run ``fn`` only on the rows where ``mask`` is true; return the new series and rows changed."""
    idx = mask.fill_null(False).arg_true()
    if idx.len() == 0:
        return s, 0
    old = s.gather(idx).to_list()
    new = [fn(v) for v in old]
    changed = sum(a != b for a, b in zip(old, new))
    if not changed:
        return s, 0
    return s.clone().scatter(idx, pl.Series(new, dtype=pl.String)), changed


# ---------------------------------------------------------------------------- unicode
def _ftfy_fixer() -> Callable[[str], str]:
    """ftfy restricted to encoding repair: no quote uncurling, width folding or normalisation
    (normalisation is a separate, vectorised option)."""
    import ftfy

    cfg = ftfy.TextFixerConfig(unescape_html=False, fix_latin_ligatures=False,
                               fix_character_width=False, uncurl_quotes=False,
                               fix_line_breaks=False, normalization=None, explain=False)
    return lambda t: ftfy.fix_text(t, cfg)


def fix_unicode(s: pl.Series) -> tuple[pl.Series, int]:
    """Repair mojibake with ftfy on the rows that carry mojibake markers."""
    return _apply_to_flagged(s, s.str.contains(MOJIBAKE_RE), _ftfy_fixer())


def normalize(s: pl.Series, form: Literal["NFC", "NFKC", "NFD", "NFKD"]) -> tuple[pl.Series, int]:
    """Unicode normalisation in Rust (polars ``str.normalize``), on the rows with a non-ASCII
    character only (ASCII text is in every normal form already)."""
    idx = (s.str.len_bytes() != s.str.len_chars()).fill_null(False).arg_true()
    if idx.len() == 0:
        return s, 0
    old = s.gather(idx)
    new = old.str.normalize(form)
    changed = int((new != old).sum() or 0)
    return (s.clone().scatter(idx, new) if changed else s), changed


# ---------------------------------------------------------------------------- html
def html_to_text(markup: str) -> str:
    """Visible text of an HTML document or fragment: scripts/styles dropped, block elements on
    their own lines, table cells separated by tabs, entities unescaped."""
    from bs4 import BeautifulSoup, Comment

    soup = BeautifulSoup(markup, "lxml")
    for tag in soup.find_all(DROP_TAGS):
        tag.decompose()
    for c in soup.find_all(string=lambda x: isinstance(x, Comment)):
        c.extract()
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for tag in soup.find_all(PARA_TAGS):
        tag.insert_before(_PARA)
        tag.insert_after(_PARA)
    for tag in soup.find_all(LINE_TAGS):
        tag.insert_before("\n")
        tag.insert_after("\n")
    for tag in soup.find_all(CELL_TAGS):
        tag.insert_after("\t")
    text = soup.get_text()
    text = re.sub(r"[ \t]*\n[ \t\n]*", "\n", text)
    text = re.sub(rf"\s*{_PARA}[\s{_PARA}]*", "\n\n", text)
    return text.strip()


def strip_html(s: pl.Series) -> tuple[pl.Series, int]:
    """HTML to text: BeautifulSoup(lxml) for rows with tags, ``html.unescape`` for rows with
    entities only; other rows are untouched."""
    import html

    has_tag = s.str.contains(HTML_TAG_RE).fill_null(False)
    s, n_tags = _apply_to_flagged(s, has_tag, html_to_text)
    only_entities = ~has_tag & s.str.contains(HTML_ENTITY_RE).fill_null(False)
    s, n_ent = _apply_to_flagged(s, only_entities, html.unescape)
    return s, n_tags + n_ent


# ---------------------------------------------------------------------------- whitespace
def whitespace_expr(e: pl.Expr) -> pl.Expr:
    """Newlines normalised to ``\\n``, control and zero-width characters dropped (``\\n``/``\\t``
    kept), horizontal runs collapsed, trailing spaces and 3+ newlines squeezed, ends stripped.

    The patterns only match where the text changes (a lone space or a bare newline is not a
    match), so typical text costs a regex scan, not a replacement per word."""
    return (
        e.str.replace_all(r"\r\n?|[\x{0B}\x{0C}\x{85}\x{2028}\x{2029}]", "\n")
        .str.replace_all(r"[\x{00}-\x{08}\x{0E}-\x{1F}\x{7F}-\x{84}\x{86}-\x{9F}\x{200B}\x{2060}\x{FEFF}]", "")
        .str.replace_all(r"[^\S\n]*\t[^\S\n]*", "\t")
        # a run of horizontal whitespace (tab excepted) -> one space: runs of 2+, or one non-space
        .str.replace_all(r"[^\S\n\t]{2,}|[^\S\n\t ]", " ")
        # spaces around a newline dropped
        .str.replace_all(r" +\n *|\n +", "\n")
        .str.replace_all(r"\n{3,}", "\n\n")
        .str.strip_chars()
    )


# Something ``whitespace_expr`` changes: a character it rewrites or drops, a tab, a run of two
# horizontal spaces or a non-space one, a space next to a newline, 3 newlines, or whitespace
# at either end. Rows without any are left as they are, without running the chain.
WHITESPACE_NEEDS = (r"[\r\t\x{0B}\x{0C}\x{85}\x{2028}\x{2029}\x{00}-\x{08}\x{0E}-\x{1F}\x{7F}-\x{84}"
                    r"\x{86}-\x{9F}\x{200B}\x{2060}\x{FEFF}]|[^\S\n\t]{2}|[^\S\n\t ]| \n|\n |\n\n\n|^\s|\s$")


def clean_whitespace(s: pl.Series) -> tuple[pl.Series, int]:
    idx = s.str.contains(WHITESPACE_NEEDS).fill_null(False).arg_true()
    if idx.len() == 0:
        return s, 0
    old = s.gather(idx)
    new = pl.select(whitespace_expr(pl.lit(old))).to_series()
    changed = int((new != old).sum() or 0)
    return (s.clone().scatter(idx, new) if changed else s), changed
