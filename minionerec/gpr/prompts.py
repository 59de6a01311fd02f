"""The GPR next-item prompt (one definition for SFT, RL and evaluation), its checks and its decoding trie.

::

    {U} {E} The user has interacted with items [I_TOKEN]<a_1><b_2><c_3>, [O_TOKEN]<a_4>... in
    chronological order. Can you predict the next possible item that the user may expect?

With ``target_type_prefix`` the response is ``{type token}{SID}\\n``; constrained decoding then
uses :func:`type_prefixed_trie` (every catalogue SID behind its item's type token).  The info side
file ``info/<name>.gpr.json`` lists the tokens for the tokenizer and every item's type.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from minionerec.errors import InputError
from minionerec.gpr.rows import GPRRow
from minionerec.gpr.sidefiles import _read_json_file
from minionerec.gpr.tokens import CONTEXT_TOKENS, ITEM_TYPE_TOKENS, KNOWN_TOKENS, USER_UNKNOWN, check_token, gpr_vocabulary
from minionerec.io import SplitRow, write_json

if TYPE_CHECKING:
    from minionerec.gpr.config import GPRConfig


def typed_history(row: GPRRow) -> list[str]:
    """History entries with their type token glued to the SID (``[I_TOKEN]<a_1><b_2><c_3>``)."""
    return [ITEM_TYPE_TOKENS[t] + sid for t, sid in zip(row.history_types, row.row.history_item_sid)]


def gpr_next_item_prompt(row: GPRRow, use_tokens: bool = True) -> str:
    """The next-item prompt of SFT, RL and evaluation; ``use_tokens=False`` gives the plain ``next_item_prompt``."""
    from minionerec.llm import NEXT_ITEM_INPUT, NEXT_ITEM_INSTRUCTION, format_prompt, next_item_prompt

    if not use_tokens:
        return next_item_prompt(row.row.history_item_sid)
    if not row.row.history_item_sid:
        raise ValueError("gpr_next_item_prompt needs at least one history item")
    text = NEXT_ITEM_INPUT.format(history=", ".join(typed_history(row)))
    return format_prompt(NEXT_ITEM_INSTRUCTION, f"{row.user_token} {row.context_token} {text}")


def gpr_template_pieces() -> list[str]:
    """The constant text of the GPR next-item prompt between its variable parts (U, E, typed SIDs).

    The plain prompt's pieces (``minionerec.llm.prompt_template_pieces``) do not cover it (the U/E tokens cut
    the plain header), so a tokenizer that holds template pieces as whole tokens gets these too;
    whitespace-only pieces are left out (an added token matches anywhere in any text).
    """
    sentinel = "\x00"
    row = GPRRow(SplitRow("A0", (sentinel,), sentinel, (0,), 0, (sentinel,), sentinel), USER_UNKNOWN,
                 CONTEXT_TOKENS["gap"][0], ("I",), "I")
    prompt = gpr_next_item_prompt(row)
    for token in (USER_UNKNOWN, CONTEXT_TOKENS["gap"][0], ITEM_TYPE_TOKENS["I"]):
        prompt = prompt.replace(token, sentinel)
    return list(dict.fromkeys(p for p in prompt.split(sentinel) if p.strip()))


def gpr_next_sid_samples(rows: Sequence[GPRRow], use_tokens: bool = True, type_prefix: bool = False) -> list[Any]:
    """``TaskSample`` records of the GPR next-item task.

    ``target`` stays the plain SID (rewards and metrics compare plain SIDs); with
    ``type_prefix`` the trained completion is ``{type token}{SID}\\n``.
    """
    from minionerec.llm import TaskSample, format_response

    out = []
    for g in rows:
        r = g.row
        answer = (ITEM_TYPE_TOKENS[g.target_type] if type_prefix else "") + r.item_sid
        history = typed_history(g) if use_tokens else list(r.history_item_sid)
        out.append(TaskSample("next_sid", gpr_next_item_prompt(g, use_tokens), format_response(answer), r.item_sid,
                              r.item_id, r.history_item_id, tuple(history)))
    return out


PROMPT_SETTINGS = ("use_tokens", "target_type_prefix")


def check_checkpoint_prompt(model_path: str | Path, cfg: GPRConfig) -> None:
    """InputError unless the checkpoint was trained with the same prompt settings as ``cfg``.

    ``sft_gpr.py``/``rl_gpr.py`` save ``gpr.config.yaml`` beside the model; a checkpoint without it
    (plain sft.py/rl.py) only matches the plain prompt.
    """
    import yaml

    saved_path = Path(model_path) / "gpr.config.yaml"
    if not saved_path.is_file():
        if cfg.use_tokens or cfg.target_type_prefix:
            raise InputError(f"{model_path} has no gpr.config.yaml, so it was not trained on the GPR prompt: train it "
                             "with sft_gpr.py, or pass --gpr.use_tokens false --gpr.target_type_prefix false")
        return
    saved = (yaml.safe_load(saved_path.read_text(encoding="utf-8")) or {}).get("gpr", {})
    for key in PROMPT_SETTINGS:
        if key in saved and bool(saved[key]) != bool(getattr(cfg, key)):
            raise InputError(f"{saved_path}: the model was trained with gpr.{key}={str(saved[key]).lower()} but this "
                             f"run uses {str(getattr(cfg, key)).lower()}; pass --gpr.{key} {str(saved[key]).lower()} so "
                             "the prompt matches the one it learned")


# --------------------------------------------------------------------------------------------
# Info side file (tokens for the tokenizer, item types for the type-prefixed trie)
# --------------------------------------------------------------------------------------------

def info_side_path(info_path: str | Path) -> Path:
    """``info/<name>.txt`` -> ``info/<name>.gpr.json``."""
    info_path = Path(info_path)
    return info_path.with_name(info_path.stem + ".gpr.json")


def write_info_side(info_path: str | Path, item_types: Mapping[int, str], config: Mapping[str, Any]) -> Path:
    return write_json(info_side_path(info_path), {"special_tokens": gpr_vocabulary(), "config": dict(config),
                                                  "item_types": {str(i): t for i, t in sorted(item_types.items())}})


def read_info_side(info_path: str | Path) -> tuple[list[str], dict[int, str]]:
    """``(special tokens, {item: I|O})`` from ``info/<name>.gpr.json``."""
    path = info_side_path(info_path)
    raw = _read_json_file(path, "GPR info side file (tokens + item types)")
    if not isinstance(raw, dict) or "special_tokens" not in raw or "item_types" not in raw:
        raise InputError(f"{path}: expected {{special_tokens, item_types}}; run convert_dataset_gpr.py again")
    tokens = [check_token(t, KNOWN_TOKENS, str(path)) for t in raw["special_tokens"]]
    types = {}
    for key, t in raw["item_types"].items():
        if t not in ITEM_TYPE_TOKENS:
            raise InputError(f"{path}: item {key} has unknown type {t!r}; expected I or O")
        types[int(key)] = t
    return tokens, types


def sid_types(pairs: Iterable[tuple[str, int]], item_types: Mapping[int, str], source: str) -> dict[str, str]:
    """``{SID string: I|O}`` from ``(SID, item id)`` pairs; a SID shared by items of both types counts as I."""
    out: dict[str, str] = {}
    for sid, item in pairs:
        t = item_types.get(int(item))
        if t is None:
            raise InputError(f"{source}: item {item} of the info file has no type; run convert_dataset_gpr.py again")
        out[sid] = "I" if out.get(sid) == "I" else t
    return out


def type_prefixed_trie(sids: Sequence[str], types: Mapping[str, str], tokenizer: Any, device: Any = "cpu") -> Any:
    """A ``minionerec.decoding.SIDTrie`` whose completions are ``[type token] + tokenize(sid + "\\n") + [eos]``.

    Leaves stay the plain SID strings, so predictions and metrics are unchanged.
    """
    from minionerec.decoding import SIDTrie, completion_token_ids

    distinct = list(dict.fromkeys(sids))
    type_ids = {t: tokenizer.convert_tokens_to_ids(tok) for t, tok in ITEM_TYPE_TOKENS.items()}
    for t, tok in ITEM_TYPE_TOKENS.items():
        if type_ids[t] is None or tokenizer.encode(tok, add_special_tokens=False) != [type_ids[t]]:
            raise InputError(f"the tokenizer lacks the GPR type token {tok}: use a checkpoint trained by sft_gpr.py")
    sequences = [[type_ids[types[s]]] + completion_token_ids(tokenizer, s) for s in distinct]
    SIDTrie.from_sids(distinct, tokenizer)  # the same SID-token checks as the plain trie
    return SIDTrie.from_sequences(distinct, sequences, int(tokenizer.eos_token_id), device)
