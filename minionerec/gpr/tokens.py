"""The heterogeneous GPR tokens (U user, E context, I/O item type) and their checks.

Upstream's own tokens (``[USER_*_RATING]``, ``[CTX_BROWSE|SEARCH|HOMEPAGE]``, ``[I_TOKEN]``/``[O_TOKEN]``,
reference ``gpr-and-amazon23.md`` §2.2-§2.4) are members of these sets, so upstream's files validate.
"""

from __future__ import annotations

from collections.abc import Sequence

from minionerec.errors import InputError

USER_TOKENS = ("[USER_HIGH_RATING]", "[USER_MID_RATING]", "[USER_LOW_RATING]", "[USER_UNKNOWN]")
USER_UNKNOWN = "[USER_UNKNOWN]"
CONTEXT_TOKENS = {
    "gap": ("[CTX_GAP_DAY]", "[CTX_GAP_WEEK]", "[CTX_GAP_MONTH]", "[CTX_GAP_LONG]"),
    "weekday": ("[CTX_WEEKDAY]", "[CTX_WEEKEND]"),
    "random": ("[CTX_BROWSE]", "[CTX_SEARCH]", "[CTX_HOMEPAGE]"),
}
#: Upstream's converter gives a 3-column ``.inter`` line this E token (reference §2.3).
UPSTREAM_DEFAULT_CONTEXT = "[CTX_HOMEPAGE]"
ITEM_TYPE_TOKENS = {"I": "[I_TOKEN]", "O": "[O_TOKEN]"}
USER_RULES = ("rating",)
ITEM_TYPE_RULES = ("price", "popularity")
DAY = 86400


def gpr_vocabulary() -> list[str]:
    """Every heterogeneous token, in a fixed order: what the tokenizer gets (as special tokens)."""
    tokens = list(USER_TOKENS)
    for rule in CONTEXT_TOKENS.values():
        tokens += rule
    return tokens + list(ITEM_TYPE_TOKENS.values())


KNOWN_TOKENS = frozenset(gpr_vocabulary())
CONTEXT_SET = frozenset(t for rule in CONTEXT_TOKENS.values() for t in rule)


def check_token(token: str, allowed: Sequence[str] | frozenset[str], source: str) -> str:
    """``token`` when it is one of ``allowed``; InputError naming ``source`` otherwise."""
    if token not in allowed:
        raise InputError(f"{source}: unknown GPR token {token!r}; known: {', '.join(sorted(allowed))}")
    return token
