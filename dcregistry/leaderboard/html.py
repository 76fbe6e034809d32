"""Escaping and the page frame shared by every leaderboard page.

Every string that comes from a record, a store or a card goes through :func:`esc` (``& < > " '``
escaped, so it is text both in element content and in quoted attributes; control characters
shown as ``\\xNN``), and the card's Markdown is rendered with raw HTML off and markdown-it's link
validation (no ``javascript:`` links). Pages carry a strict Content-Security-Policy in a
``<meta>`` element (a static site has no headers of its own); ``dcreg serve`` sends it as a
header too.
"""

from __future__ import annotations

import re
from typing import Any

from .assets import CSP

__all__ = ["esc", "page", "render_markdown"]

#: C0/C1 controls, line/paragraph separators, bidi overrides and isolates (which could make a
#: name read as another), the BOM.
_CONTROL_RE = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2028\u2029\u2066-\u2069\ufeff]"
)
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}
_ESCAPE_RE = re.compile(r"[&<>\"']")


def esc(value: Any) -> str:
    """``value`` as HTML text (element content or a quoted attribute value)."""
    text = value if isinstance(value, str) else str(value)
    text = _CONTROL_RE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else "\ufffd", text)
    text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates
    return _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group()], text)


def render_markdown(text: str) -> str:
    """Markdown -> HTML with raw HTML escaped, tables on, unsafe link schemes dropped."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
    html: str = md.render(_CONTROL_RE.sub("\ufffd", text))
    return html


def page(title: str, body: str, *, depth: int = 0, crumbs: str = "") -> str:
    """A whole page: ``body`` (already HTML) in the site's frame; ``depth`` is how many folders
    below the site's root the page lies (for the relative links to the style sheet and script)."""
    up = "../" * depth
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{esc(title)} · dcregistry leaderboard</title>\n"
        f'<link rel="icon" href="{up}favicon.svg" type="image/svg+xml">\n'
        f'<link rel="stylesheet" href="{up}style.css">\n'
        f'<script src="{up}sort.js" defer></script>\n'
        "</head>\n<body>\n"
        f'<header class="top"><a href="{up}index.html">dcregistry leaderboard</a>'
        f"<span>{crumbs}</span></header>\n"
        f"<main>\n{body}\n</main>\n</body>\n</html>\n"
    )
