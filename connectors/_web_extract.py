"""Main-text extraction from HTML with BeautifulSoup (lxml parser): drop boilerplate (nav, header,
footer, aside, scripts, styles, forms), keep title, headings, paragraphs, list items and tables as
lightly marked-up text, plus the page's language, canonical URL and outgoing links."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urljoin

DROP_TAGS = ("script", "style", "noscript", "nav", "header", "footer", "aside", "form", "iframe",
             "svg", "template", "button", "select", "input", "textarea", "canvas", "object", "embed")
DROP_SELECTORS = ('[role="navigation"]', '[role="banner"]', '[role="contentinfo"]',
                  '[aria-hidden="true"]', "[hidden]")
BLOCKS = {"p", "div", "section", "article", "main", "blockquote", "pre", "ul", "ol", "li", "dl",
          "dt", "dd", "table", "thead", "tbody", "tfoot", "tr", "h1", "h2", "h3", "h4", "h5", "h6",
          "figure", "figcaption", "address", "details", "summary", "br", "hr", "caption"}
_WS = re.compile(r"[ \t\r\f\v\u00a0]+")


@dataclass
class Extracted:
    """What one HTML page yields."""

    title: str | None
    text: str
    language: str | None          # from <html lang> (primary subtag); detection happens later
    canonical: str | None
    links: list[str] = field(default_factory=list)


class _One:
    """A stand-in parent holding one element, so a selected element is laid out as a block."""

    def __init__(self, node) -> None:
        self.children = [node]


def _norm(s: str) -> str:
    return _WS.sub(" ", s).strip()


def _lines(node, out: list[str], markdown: bool) -> None:
    """Append text lines for ``node`` in document order (block tags start new lines)."""
    from bs4 import NavigableString, Tag
    from bs4.element import Comment, Doctype, ProcessingInstruction
    buf: list[str] = []

    def flush(prefix: str = "") -> None:
        line = _norm("".join(buf))
        buf.clear()
        if line:
            out.append(prefix + line)

    for child in node.children:
        if isinstance(child, (Comment, Doctype, ProcessingInstruction)):
            continue
        if isinstance(child, NavigableString):
            buf.append(str(child))
            continue
        if not isinstance(child, Tag):
            continue
        name = child.name
        if name not in BLOCKS:
            sub: list[str] = []
            _lines(child, sub, markdown)
            buf.append(" ".join(sub))
            continue
        flush()
        if name in ("h1", "h2", "h3", "h4", "h5", "h6"):
            text = _norm(child.get_text(" "))
            if text:
                out.append(("#" * int(name[1]) + " " if markdown else "") + text)
        elif name == "li":
            sub = []
            _lines(child, sub, markdown)
            if sub:
                out.append(("- " if markdown else "") + sub[0])
                out.extend("  " + s for s in sub[1:])
        elif name == "tr":
            cells = [_norm(td.get_text(" ")) for td in child.find_all(["td", "th"], recursive=False)]
            cells = [c for c in cells if c]
            if cells:
                out.append(" | ".join(cells))
        elif name == "pre":
            text = child.get_text().strip("\n")
            if text.strip():
                out.append(text)
        elif name in ("br", "hr"):
            pass
        else:
            _lines(child, out, markdown)
    flush()


def extract(html: str | bytes, base_url: str, selectors: list[str] | None = None,
            exclude: list[str] | None = None, markdown: bool = True) -> Extracted:
    """Parse ``html`` leniently and return its main text, title, language, canonical URL, links.

    ``selectors`` (CSS) choose the content roots for a site; otherwise ``<main>``/``<article>``
    when present, else ``<body>``. ``exclude`` adds CSS selectors to drop.
    """
    from bs4 import BeautifulSoup
    soup = BeautifulSoup(html, "lxml")
    title_tag = soup.find("title")
    title = _norm(title_tag.get_text(" ")) if title_tag else None
    html_tag = soup.find("html")
    lang = html_tag.get("lang") if html_tag is not None else None
    if isinstance(lang, list):
        lang = lang[0] if lang else None
    language = lang.strip().split("-")[0].split("_")[0].lower() if lang and lang.strip() else None
    canonical = None
    for link in soup.find_all("link", href=True):
        rel = link.get("rel") or []
        rel = rel if isinstance(rel, list) else str(rel).split()
        if "canonical" in [r.lower() for r in rel]:
            canonical = urljoin(base_url, link["href"].strip())
            break
    base_tag = soup.find("base", href=True)
    link_base = urljoin(base_url, base_tag["href"].strip()) if base_tag else base_url
    links = []
    for a in soup.find_all("a", href=True):
        rel = a.get("rel") or []
        if "nofollow" in (rel if isinstance(rel, list) else str(rel).split()):
            continue
        href = a["href"].strip()
        if href and not href.startswith("#"):
            links.append(urljoin(link_base, href))

    for tag in soup.find_all(DROP_TAGS):
        tag.decompose()
    for sel in (*DROP_SELECTORS, *(exclude or [])):
        for tag in soup.select(sel):
            tag.decompose()
    roots = []
    if selectors:
        picked = soup.select(", ".join(selectors))          # document order
        ids = {id(t) for t in picked}
        roots = [t for t in picked if not any(id(p) in ids for p in t.parents)]
        roots = [_One(t) for t in roots]                     # the element itself is the block
    if not roots:
        roots = soup.find_all("main") or soup.find_all("article")
    if not roots:
        body = soup.find("body")
        roots = [body if body is not None else soup]
    lines: list[str] = []
    for root in roots:
        _lines(root, lines, markdown)
    text = "\n".join(lines)
    return Extracted(title=title, text=text, language=language, canonical=canonical, links=links)
