"""Text cleaning for raw item metadata (Amazon 2018 / 2023, MovieLens).

The rules follow upstream's preprocessing scripts (reference ``original-minionerec.md`` §2.1,
§2.8 and ``gpr-and-amazon23.md`` §1.2) so that titles, and therefore the title filter, match
exactly:

- :func:`clean_amazon18_title` is the Amazon 2018 title filter + cleaning: reject a missing title
  or one containing ``<span id``; decode only ``&quot;`` and ``&amp;``; strip spaces, then
  double quotes; keep it when it is longer than 1 character and has at most 20 space-separated
  words.  Other HTML entities stay in the title, as upstream.
- :func:`clean_html` is the feature cleaning used for descriptions, brands, categories: drop
  ``<...>`` tags, HTML-unescape, collapse whitespace runs, trim.  ``amazon18=True`` also decodes
  a second level of ``&quot;``/``&amp;`` as upstream's Amazon 2018 ``clean_text`` did.
- :func:`category_phrase` is the one ``{category}`` phrase of the prompts (``minionerec.llm`` re-exports
  it; the data stages record it): upstream's five-entry dict for its datasets (upstream raised KeyError
  for the rest), derived from the name otherwise.  It lives here, in the core, because the data stages
  (which may not import ``minionerec.llm``) use it too.
"""

from __future__ import annotations

import html
import re
from typing import Any

_TAG = re.compile(r"<[^>]+>")
_WHITESPACE = re.compile(r"\s+")

MAX_TITLE_WORDS = 20


def clean_html(text: str, amazon18: bool = False) -> str:
    """Remove tags, unescape HTML entities, collapse whitespace and trim."""
    text = _TAG.sub("", text)
    text = html.unescape(text)
    if amazon18:
        text = text.replace("&quot;", '"').replace("&amp;", "&")
    return _WHITESPACE.sub(" ", text).strip()


def clean_amazon18_title(raw: Any) -> str | None:
    """The cleaned title of an Amazon 2018 meta record, or None when the item must be dropped."""
    if not isinstance(raw, str) or "<span id" in raw:
        return None
    title = raw.replace("&quot;", '"').replace("&amp;", "&").strip(" ").strip('"')
    if len(title) > 1 and len(title.split(" ")) <= MAX_TITLE_WORDS:
        return title
    return None


def clean_amazon23_title(raw: Any) -> str | None:
    """The cleaned title of an Amazon 2023 meta record, or None when it is empty or missing."""
    if not isinstance(raw, str):
        return None
    return clean_html(raw) or None


def amazon18_description(raw: Any) -> str:
    """Upstream's Amazon 2018 description: the cleaned Python ``str()`` of the description list.

    The list repr (brackets and quotes) is kept on purpose: downstream files and embeddings of
    the original pipeline were built on it.  A missing or empty description is ``""``.
    """
    if raw is None or raw == [] or raw == "":
        return ""
    return clean_html(str(raw), amazon18=True)


def amazon18_brand(raw: Any) -> str:
    """Upstream's brand: the string with ``"by\\n"`` removed, whitespace-trimmed."""
    if not isinstance(raw, str):
        return ""
    return raw.replace("by\n", "").strip()


def join_cleaned(values: Any, separator: str) -> str:
    """Clean every string of a list (or a single string) and join the non-empty ones."""
    if values is None:
        return ""
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, (list, tuple)):
        return ""
    cleaned = (clean_html(v) for v in values if isinstance(v, str))
    return separator.join(v for v in cleaned if v)


#: Upstream's hard-coded ``--category`` phrases (sft.py, rl.py, evaluate.py); other names are derived.
UPSTREAM_CATEGORY_PHRASES = {
    "Industrial_and_Scientific": "industrial and scientific items",
    "Office_Products": "office products",
    "Toys_and_Games": "toys and games",
    "Sports": "sports and outdoors",
    "Books": "books",
}


def category_phrase(category: str, dataset: str = "", phrase: str = "") -> str:
    """The ``{category}`` phrase of the title prompts: the one mapping, used by the prompts and the data stages.

    ``phrase`` (``common.category_phrase``) is used verbatim when set.  Otherwise ``category``
    (upstream's ``--category``: a dataset name such as ``Industrial_and_Scientific``, or a phrase),
    else ``dataset``, is mapped: upstream's five names as upstream's dict does
    (:data:`UPSTREAM_CATEGORY_PHRASES`, ``Industrial_and_Scientific`` -> ``industrial and scientific
    items``); for other names, one whose last word is already a plural noun keeps it (``Video_Games``
    -> ``video games``), others get ``items`` appended.  A phrase such as ``office products`` maps to
    itself; an empty name gives ``items``.
    """
    if phrase.strip():
        return phrase.strip()
    name = category.strip() or dataset.strip()
    if name in UPSTREAM_CATEGORY_PHRASES:
        return UPSTREAM_CATEGORY_PHRASES[name]
    words = [w for w in re.split(r"[_\-\s]+", name.lower()) if w]
    if not words:
        return "items"
    joined = " ".join(words)
    return joined if words[-1].endswith("s") and not words[-1].endswith("ss") else f"{joined} items"
