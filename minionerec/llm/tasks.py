"""The SFT/RL tasks: one function per task returning :class:`TaskSample` records, and the weighted mixture.

Each sample has ``task``, ``prompt``, ``completion`` = ``format_response(target)``, ``target`` (the
answer text), ``target_item`` and ``history_items``; SIDs are kept whole (3 or 4 tokens, never
truncated).  No prompt ever contains its own answer (upstream's alignment prompts did): every prompt
ends with ``### Response:\\n``, and the answer appears earlier in the prompt only when it is a genuine
repeat of a history item (:func:`find_leaks`).

- ``next_sid_samples(rows)``: SID history -> next SID (the main task; the evaluation prompt).
- ``title_to_sid_samples(items)`` / ``sid_to_title_samples(items)``: alignment over all items.
- ``sid_history_to_title_samples(rows)``: SID history -> next title.
- ``title_history_to_title_samples(rows, category)`` / ``title_history_to_sid_samples(rows, category)``.
- ``description_to_sid_samples(items)``: item description -> SID (items with a description).
- ``build_task_samples(tasks, rows, items, category, rl=False)``: ``{task: [TaskSample]}`` for named
  tasks; RL passes ``rl=True`` and gets upstream rl.py's wording of the auxiliary tasks (no header or
  instruction; the title-history task's own sentence), while the next-SID prompt stays the one string
  SFT, RL and evaluation share.
- Every sample function takes the same ``rl`` flag; the wordings live in :mod:`minionerec.llm.prompts`.
- ``build_task_mixture(weights, rows, items, category, seed)``: the weighted SFT mixture.
- ``prompt_template_pieces(category)``: the constant pieces of all SFT prompts (tokenizer building).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from minionerec.errors import InputError
from minionerec.io import SplitRow
from minionerec.llm.items import ItemText
from minionerec.llm.prompts import (
    RESPONSE_TAG,
    TASK_PROMPTS,
    format_response,
    next_item_prompt,
    quoted_titles,
)

__all__ = [
    "DEFAULT_TASK_WEIGHTS", "TASK_NAMES", "TaskSample", "build_task_mixture", "build_task_samples",
    "description_to_sid_samples", "find_leaks", "next_sid_samples", "prompt_template_pieces", "replicate_by_weight",
    "sid_history_to_title_samples", "sid_to_title_samples", "title_history_to_sid_samples",
    "title_history_to_title_samples", "title_to_sid_samples",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskSample:
    """One prompt/completion pair.  ``completion == format_response(target)``."""

    task: str
    prompt: str
    completion: str
    target: str
    target_item: int | None = None
    history_items: tuple[int, ...] = ()
    history: tuple[str, ...] = ()  # the history entries (SIDs or titles) shown in the prompt


def _sample(task: str, prompt: str, target: str, target_item: int | None, history_items: Sequence[int] = (),
            history: Sequence[str] = ()) -> TaskSample:
    return TaskSample(task, prompt, format_response(target), target, target_item, tuple(history_items), tuple(history))


def next_sid_samples(rows: Iterable[SplitRow], rl: bool = False) -> list[TaskSample]:
    """SID history -> next SID; the prompt is :func:`next_item_prompt` (shared with RL and evaluation).

    ``rl`` is accepted for symmetry with the other tasks and changes nothing: RL optimises the
    evaluated prompt (upstream's RL form of this task, without the header, is never evaluated).
    """
    return [TaskSample("next_sid", next_item_prompt(r.history_item_sid), format_response(r.item_sid), r.item_sid,
                       r.item_id, r.history_item_id, r.history_item_sid) for r in rows]


def sid_history_to_title_samples(rows: Iterable[SplitRow], rl: bool = False) -> list[TaskSample]:
    """SID history -> the next item's title."""
    prompt = TASK_PROMPTS["sid_history2title"]
    return [_sample("sid_history2title", prompt.render(rl, history=", ".join(r.history_item_sid)),
                    r.item_title, r.item_id, r.history_item_id, r.history_item_sid) for r in rows]


def title_history_to_title_samples(rows: Iterable[SplitRow], category: str, rl: bool = False) -> list[TaskSample]:
    """Title history -> the next item's title."""
    prompt = TASK_PROMPTS["title_history2title"]
    return [_sample("title_history2title", prompt.render(rl, category=category,
                                                         history=quoted_titles(r.history_item_title)),
                    r.item_title, r.item_id, r.history_item_id, r.history_item_title) for r in rows]


def title_history_to_sid_samples(rows: Iterable[SplitRow], category: str, rl: bool = False) -> list[TaskSample]:
    """Title history -> the next item's SID (``rl``: upstream rl.py's wording, which has no category)."""
    prompt = TASK_PROMPTS["title_history2sid"]
    return [_sample("title_history2sid", prompt.render(rl, category=category,
                                                       history=quoted_titles(r.history_item_title)),
                    r.item_sid, r.item_id, r.history_item_id, r.history_item_title) for r in rows]


def title_to_sid_samples(items: Iterable[ItemText], rl: bool = False) -> list[TaskSample]:
    """Title -> SID for every item (colliding SIDs and duplicate titles keep one sample per item)."""
    prompt = TASK_PROMPTS["title2sid"]
    return [_sample("title2sid", prompt.render(rl, title=i.title), i.sid, i.item_id) for i in items]


def sid_to_title_samples(items: Iterable[ItemText], rl: bool = False) -> list[TaskSample]:
    """SID -> title for every item."""
    prompt = TASK_PROMPTS["sid2title"]
    return [_sample("sid2title", prompt.render(rl, sid=i.sid), i.title, i.item_id) for i in items]


def description_to_sid_samples(items: Iterable[ItemText], rl: bool = False) -> list[TaskSample]:
    """Description -> SID for every item that has a description."""
    prompt = TASK_PROMPTS["description2sid"]
    return [_sample("description2sid", prompt.render(rl, description=i.description), i.sid, i.item_id)
            for i in items if i.description]


_ROW_TASKS: dict[str, Callable[..., list[TaskSample]]] = {
    "next_sid": lambda rows, category, rl: next_sid_samples(rows, rl),
    "sid_history2title": lambda rows, category, rl: sid_history_to_title_samples(rows, rl),
    "title_history2title": title_history_to_title_samples,
    "title_history2sid": title_history_to_sid_samples,
}
_ITEM_TASKS: dict[str, Callable[..., list[TaskSample]]] = {
    "sid2title": sid_to_title_samples,
    "title2sid": title_to_sid_samples,
    "description2sid": description_to_sid_samples,
}
TASK_NAMES = tuple(_ROW_TASKS) + tuple(_ITEM_TASKS)

#: The project's default mixture: upstream sft.py's five datasets without its two title-history tasks
#: (title_history2title, title_history2sid); configs/industrial.yaml and office.yaml train all five (reference 5.4).
DEFAULT_TASK_WEIGHTS: dict[str, float] = {
    "next_sid": 1.0,
    "sid2title": 1.0,
    "title2sid": 1.0,
    "sid_history2title": 1.0,
    "title_history2title": 0.0,
    "title_history2sid": 0.0,
    "description2sid": 0.0,
}


def build_task_samples(tasks: Iterable[str], rows: Sequence[SplitRow], items: Sequence[ItemText],
                       category: str, rl: bool = False) -> dict[str, list[TaskSample]]:
    """``{task: samples}`` for the named tasks (row tasks over ``rows``, item tasks over ``items``).

    ``rl``: the RL stage's prompts (:meth:`minionerec.llm.prompts.TaskPrompt.rl`, upstream rl.py's wording).
    """
    out: dict[str, list[TaskSample]] = {}
    for task in tasks:
        if task in _ROW_TASKS:
            out[task] = _ROW_TASKS[task](rows, category, rl)
        elif task in _ITEM_TASKS:
            out[task] = _ITEM_TASKS[task](items, rl)
        else:
            raise InputError(f"unknown task {task!r}; known tasks: {', '.join(TASK_NAMES)}")
    return out


def replicate_by_weight(samples: Sequence[TaskSample], weight: float, rng: random.Random) -> list[TaskSample]:
    """``floor(weight)`` copies of every sample plus a seeded random ``frac(weight)`` share."""
    if weight < 0:
        raise InputError(f"task weights must be >= 0, got {weight}")
    whole = int(weight)
    out = list(samples) * whole
    extra = round((weight - whole) * len(samples))
    if extra:
        out += rng.sample(list(samples), extra)
    return out


def build_task_mixture(weights: Mapping[str, float], rows: Sequence[SplitRow], items: Sequence[ItemText],
                       category: str, seed: int = 42,
                       replace: Mapping[str, Sequence[TaskSample]] | None = None) -> list[TaskSample]:
    """The SFT training set: every task with a positive weight, replicated by its weight.

    ``replace`` gives a task's samples instead of building them (a variant's own next-item prompts, e.g. GPR's);
    the task order and the one seeded RNG stay the same, so the other tasks draw exactly the plain samples.
    """
    unknown = sorted(set(weights) - set(TASK_NAMES))
    if unknown:
        raise InputError(f"sft.task_weights: unknown task(s) {', '.join(unknown)}; known tasks: {', '.join(TASK_NAMES)}")
    active = [task for task in TASK_NAMES if float(weights.get(task, 0.0)) > 0]
    replace = replace or {}
    built = build_task_samples([task for task in active if task not in replace], rows, items, category)
    rng = random.Random(seed)
    mixture: list[TaskSample] = []
    for task in active:
        samples = replace[task] if task in replace else built[task]
        chosen = replicate_by_weight(samples, float(weights[task]), rng)
        logger.info("task %-20s %7d samples (weight %g)", task, len(chosen), float(weights[task]))
        mixture += chosen
    return mixture


_SENTINEL = "\x00"


def prompt_template_pieces(category: str) -> list[str]:
    """The constant text pieces of every task's SFT prompt (what surrounds the variable parts), plus ``", "``.

    A tokenizer that holds each piece as one token encodes the fixed part of any prompt in a
    handful of tokens (see ``minionerec.llm.modeling.train_bpe_tokenizer``).  The RL wording of the
    auxiliary tasks is left out on purpose: SFT builds the tokenizer, so such pieces would be tokens
    SFT never trains; the RL prompts are encoded by the BPE merges instead.
    """
    s = _SENTINEL
    row = SplitRow("A0", (s,), s, (0,), 0, (s,), s)
    item = ItemText(0, s, s, s)
    pieces = [", ", '", "']
    for samples in build_task_samples(TASK_NAMES, [row], [item], category).values():
        for sample in samples:
            pieces += [p for p in sample.prompt.split(s) if p]
    return list(dict.fromkeys(pieces))


def find_leaks(samples: Iterable[TaskSample]) -> list[TaskSample]:
    """Samples whose prompt gives away the answer.

    A prompt must end with the response tag (nothing of the answer after it), and the answer
    may appear in it only inside history entries that carry it (a repeat purchase, or a history
    item sharing the target's SID or title): never more often than the history accounts for.
    """
    leaks = []
    for s in samples:
        if not s.prompt.endswith(RESPONSE_TAG) or s.completion != format_response(s.target):
            leaks.append(s)
        elif s.prompt.count(s.target) > sum(entry.count(s.target) for entry in s.history):
            leaks.append(s)
    return leaks
