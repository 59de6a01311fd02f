"""The SID vocabulary: token strings, parsing, and tokenizer extension.

A semantic ID is a short tuple of level tokens ``<a_12><b_3><c_200>`` (optionally a fourth
``<d_k>`` level, used to separate items whose first three codes collide).  Level ``l`` uses
the letter ``chr(ord('a') + l)``.  A SID *string* is the concatenation of its tokens with no
separator; lists of SIDs in prompts are joined with ``", "``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from minionerec.errors import InputError

LEVEL_LETTERS = "abcdefgh"
TOKEN_RE = re.compile(r"<([a-h])_(\d+)>")
_SID_STRING_RE = re.compile(r"(?:<[a-h]_\d+>)+")
ITEM_TOKEN_RE = re.compile(r"<item_(\d+(?:_\d+)*)>")

SID = tuple[str, ...]

logger = logging.getLogger(__name__)


def level_token(level: int, code: int) -> str:
    """The token of ``code`` at ``level`` (0-based): ``level_token(1, 7) == "<b_7>"``."""
    if not 0 <= level < len(LEVEL_LETTERS):
        raise ValueError(f"level {level} out of range 0..{len(LEVEL_LETTERS) - 1}")
    if code < 0:
        raise ValueError(f"code must be >= 0, got {code}")
    return f"<{LEVEL_LETTERS[level]}_{code}>"


def codes_to_sid(codes: Sequence[int]) -> SID:
    """``[12, 3, 200] -> ("<a_12>", "<b_3>", "<c_200>")``."""
    return tuple(level_token(level, int(code)) for level, code in enumerate(codes))


def sid_to_string(sid: Sequence[str]) -> str:
    """Concatenate tokens: ``("<a_1>", "<b_2>") -> "<a_1><b_2>"``."""
    return "".join(sid)


def parse_token(token: str) -> tuple[int, int]:
    """``"<b_7>" -> (1, 7)``; raises ValueError on a malformed token."""
    m = TOKEN_RE.fullmatch(token)
    if not m:
        raise ValueError(f"malformed SID token {token!r} (expected like '<a_12>')")
    return LEVEL_LETTERS.index(m.group(1)), int(m.group(2))


def parse_sid(text: str) -> SID:
    """Split a SID string into tokens, checking the levels run a, b, c, ... in order.

    Surrounding whitespace and double quotes are ignored (as upstream's metric code does).
    Raises ValueError if ``text`` is not a well-formed SID string.
    """
    cleaned = text.strip().strip('"').strip()
    if not _SID_STRING_RE.fullmatch(cleaned):
        raise ValueError(f"malformed SID string {text!r} (expected like '<a_1><b_2><c_3>')")
    tokens = tuple(m.group(0) for m in TOKEN_RE.finditer(cleaned))
    validate_sid(tokens)
    return tokens


def validate_sid(tokens: Sequence[str]) -> None:
    """Raise ValueError unless ``tokens`` are well formed with levels a, b, c, ... in order."""
    if not tokens:
        raise ValueError("empty SID")
    for expected_level, token in enumerate(tokens):
        level, _ = parse_token(token)
        if level != expected_level:
            raise ValueError(
                f"SID {''.join(tokens)!r}: token {token!r} is at position {expected_level} "
                f"but belongs to level {LEVEL_LETTERS[level]!r}"
            )


def try_parse_sid(text: str) -> SID | None:
    """Like :func:`parse_sid` but returns None for malformed input."""
    try:
        return parse_sid(text)
    except ValueError:
        return None


def item_token(sid: str | Sequence[str]) -> str:
    """The one-token form of an item (``sft.item_tokens``): ``"<a_12><b_3><c_200>" -> "<item_12_3_200>"``."""
    tokens = parse_sid(sid) if isinstance(sid, str) else tuple(sid)
    validate_sid(tokens)
    return "<item_" + "_".join(str(parse_token(t)[1]) for t in tokens) + ">"


def item_token_sid(token: str) -> SID | None:
    """The SID an item token stands for (``"<item_12_3>" -> ("<a_12>", "<b_3>")``); None for any other token."""
    m = ITEM_TOKEN_RE.fullmatch(token)
    if not m:
        return None
    codes = [int(c) for c in m.group(1).split("_")]
    return codes_to_sid(codes) if len(codes) <= len(LEVEL_LETTERS) else None


def sid_vocabulary(sids: Iterable[Sequence[str]]) -> list[str]:
    """Every distinct token of ``sids`` in natural order: ``<a_0>, <a_1>, ..., <a_255>, <b_0>, ...``.

    Upstream sorted lexicographically (``<a_0>, <a_1>, <a_10>, <a_100>, ...``); natural order
    makes token ids follow codes.
    """
    seen = {token for sid in sids for token in sid}
    return sorted(seen, key=parse_token)


def find_collisions(index: Mapping[Any, Sequence[str]]) -> dict[str, list[Any]]:
    """``{sid_string: [item, item, ...]}`` for every SID shared by more than one item."""
    groups: dict[str, list[Any]] = {}
    for item, sid in index.items():
        groups.setdefault(sid_to_string(sid), []).append(item)
    return {sid: items for sid, items in groups.items() if len(items) > 1}


def check_shared_sids(index: Mapping[Any, Sequence[str] | str], source: object, allow_shared_sids: bool) -> int:
    """Refuse an index/catalogue in which several items share one SID, unless ``allow_shared_sids``.

    With shared SIDs, training teaches one SID for several items and SID-level metrics count a
    hit for any of them, so results would silently differ from item level.  Returns the number
    of items on shared SIDs (0 for a collision-free index); when allowed, logs one warning.
    """
    collisions = find_collisions(index)
    if not collisions:
        return 0
    sid, items = next(iter(collisions.items()))
    n_items = sum(len(group) for group in collisions.values())
    shared = f"{n_items} of {len(index)} items share {len(collisions)} SID(s) (e.g. {sid} is items {items[:5]})"
    if not allow_shared_sids:
        raise InputError(
            f"{source}: {shared}; SID-level training and metrics cannot tell those items apart. Rebuild the SIDs "
            "with a collision step (an rq/ method with sid.collision_mode reassign or extra_level, then "
            "convert_dataset.py), or set allow_shared_sids: true in the config's common section to accept them "
            "(upstream's released indexes need it; results.md then shows item-level metrics beside SID-level ones)"
        )
    logger.warning("%s: %s; allowed by allow_shared_sids (SID-level metrics count a hit for any item of a shared SID)",
                   source, shared)
    return n_items


# --------------------------------------------------------------------------------------------
# Tokenizer extension
# --------------------------------------------------------------------------------------------

def add_sid_tokens(tokenizer: Any, tokens: Sequence[str]) -> list[int]:
    """Add SID tokens (in the given order) to a HF tokenizer as normal added tokens.

    Tokens already present are kept.  Returns the token ids of ``tokens`` and checks that each
    encodes to exactly one id.
    """
    missing = [t for t in tokens if t not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_tokens(list(missing))
    return check_sid_tokens(tokenizer, tokens)


def check_sid_tokens(tokenizer: Any, tokens: Sequence[str], source: str = "the tokenizer") -> list[int]:
    """Token ids of ``tokens``; raise InputError if any is missing or not a single token."""
    vocab = tokenizer.get_vocab()
    absent = [t for t in tokens if t not in vocab]
    if absent:
        raise InputError(
            f"{source} lacks {len(absent)} SID token(s) (e.g. {', '.join(absent[:3])}); "
            "use a checkpoint saved by sft.py (it adds the SID tokens) or run sft.py first"
        )
    ids = []
    for token in tokens:
        encoded = tokenizer.encode(token, add_special_tokens=False)
        if len(encoded) != 1:
            raise InputError(f"{source}: SID token {token!r} encodes to {len(encoded)} ids, expected 1")
        ids.append(encoded[0])
    return ids
