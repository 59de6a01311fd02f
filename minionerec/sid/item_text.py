"""The text of an item that text2emb embeds: cleaned title + description.

Upstream embedded the raw list-repr description (``"['para 1', 'para 2']"``, brackets and
quotes included) and silently dropped any field of 2,000 characters or more.  Here list-repr
strings are parsed (as data, with ``ast.literal_eval``) and joined, HTML is unescaped and tags
removed, whitespace is collapsed, and a long field is cut at a word boundary to a character
budget instead of being dropped.
"""

from __future__ import annotations

import ast
import html
import re
from collections.abc import Mapping, Sequence
from typing import Any

_TAG = re.compile(r"<[^>]{0,200}>")
_SPACE = re.compile(r"\s+")
_TRAILING_DOTS = re.compile(r"[.\s]+$")
UNKNOWN_ITEM = "unknown item"

__all__ = ["UNKNOWN_ITEM", "clean_text", "item_text", "truncate"]


def _as_parts(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [p for v in value for p in _as_parts(v)]
    text = str(value)
    stripped = text.strip()
    if stripped.startswith("[") and stripped.endswith("]"):
        try:
            parsed = ast.literal_eval(stripped)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            parsed = None
        if isinstance(parsed, (list, tuple)):
            return _as_parts(list(parsed))
    return [text]


def clean_text(value: Any) -> str:
    """One cleaned sentence-like string from a string, a list, or a list-repr string ('' if empty)."""
    parts = []
    for part in _as_parts(value):
        part = _TAG.sub(" ", html.unescape(part))
        part = _SPACE.sub(" ", part).strip()
        if part:
            parts.append(part)
    text = " ".join(parts)
    text = _TRAILING_DOTS.sub("", text)
    return f"{text}." if text else ""


def truncate(text: str, budget: int) -> str:
    """``text`` cut to at most ``budget`` characters at a word boundary (``budget <= 0``: no limit)."""
    if budget <= 0 or len(text) <= budget:
        return text
    cut = text[:budget]
    space = cut.rfind(" ")
    return (cut[:space] if space > budget // 2 else cut).rstrip(" ,;:") + "..."


def item_text(record: Mapping[str, Any], fields: Sequence[str] = ("title", "description"),
              char_budget: Mapping[str, int] | None = None) -> str:
    """Cleaned, budgeted fields joined by a space; ``"unknown item"`` when all are empty."""
    pieces = []
    for name in fields:
        text = truncate(clean_text(record.get(name)), (char_budget or {}).get(name, 0))
        if text:
            pieces.append(text)
    return " ".join(pieces) or UNKNOWN_ITEM
