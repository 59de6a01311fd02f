"""Prompt templates and the SFT/RL task datasets.

Every prompt wording lives here, once.  The next-item prompt (:func:`next_item_prompt`) is the
one string that SFT, RL and evaluation all use, so RL optimises the prompt that is evaluated.

Prompt skeleton (Alpaca style, as upstream)::

    Below is an instruction ... completes the request. \\n\\n### Instruction:\\n{instruction}\\n\\n
    ### User Input: \\n{input}\\n\\n### Response:\\n

The response is ``{output}\\n`` followed by the tokenizer's EOS token; the loss covers only the
response.  No prompt ever contains its own answer (upstream's alignment prompts did): every
prompt ends with ``### Response:\\n``, and the answer appears earlier in the prompt only when it
is a genuine repeat of a history item (see :func:`find_leaks`).

Public API (used by sft.py, rl.py and evaluate.py)
--------------------------------------------------
Each task is one function returning :class:`TaskSample` records (``task``, ``prompt``,
``completion`` = ``format_response(target)``, ``target`` = the answer text, ``target_item``,
``history_items``).  SIDs are kept whole (3 or 4 tokens, never truncated).

- ``next_sid_samples(rows)``: SID history -> next SID (the main task; the evaluation prompt).
- ``title_to_sid_samples(items)`` / ``sid_to_title_samples(items)``: alignment over all items.
- ``sid_history_to_title_samples(rows)``: SID history -> next title.
- ``title_history_to_title_samples(rows, category)``: title history -> next title.
- ``title_history_to_sid_samples(rows, category)``: title history -> next SID.
- ``description_to_sid_samples(items)``: item description -> SID (items with a description).
- ``build_task_samples(tasks, rows, items, category)``: ``{task: [TaskSample]}`` for named tasks
  (RL uses this with ``("next_sid", "title2sid", "title_history2sid")``).
- ``build_task_mixture(weights, rows, items, category, seed)``: the weighted SFT mixture.
- ``load_items(index_path, item_json_path=None, info_path=None)``: the item texts + SIDs.
- ``check_rows_against_index(rows, items, path)``: InputError for CSV SIDs not in the index.
- ``tokenize_samples(tokenizer, samples, max_len, history_label_ids=())``: batched tokenisation, labels -100 on the
  prompt, EOS appended, left-truncation.  ``encode_prompts(tokenizer, prompts)`` is the one way
  to turn prompts into ids for generation (no special tokens added).
- ``category_phrase(category, dataset, phrase)``: the ``{category}`` phrase of the title prompts.
- ``prompt_template_pieces(category)``: the constant pieces of all prompts (tokenizer building).
"""

from __future__ import annotations

import ast
import logging
import random
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minionerec.errors import InputError
from minionerec.io import SplitRow, read_index_json, read_info, read_item_json
from minionerec.sid import sid_to_string
from minionerec.text import category_phrase as text_category_phrase

logger = logging.getLogger(__name__)

PROMPT_HEADER = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request. \n\n"
)
RESPONSE_TAG = "### Response:\n"

NEXT_ITEM_INSTRUCTION = "Can you predict the next possible item that the user may expect?"
NEXT_ITEM_INPUT = (
    "The user has interacted with items {history} in chronological order. "
    "Can you predict the next possible item that the user may expect?"
)


def format_prompt(instruction: str, user_input: str) -> str:
    """The full prompt for one task: header, instruction, input, and the response tag."""
    return f"{PROMPT_HEADER}### Instruction:\n{instruction}\n\n### User Input: \n{user_input}\n\n{RESPONSE_TAG}"


def format_response(output: str) -> str:
    """The response text a model is trained to produce (EOS is appended at tokenization)."""
    return f"{output}\n"


def next_item_prompt(history_sids: Sequence[str]) -> str:
    """The next-item prompt used by SFT, RL and evaluation: SID history -> next SID."""
    if not history_sids:
        raise ValueError("next_item_prompt needs at least one history item")
    return format_prompt(NEXT_ITEM_INSTRUCTION, NEXT_ITEM_INPUT.format(history=", ".join(history_sids)))



# --------------------------------------------------------------------------------------------
# Auxiliary task templates (the next-item template is above)
# --------------------------------------------------------------------------------------------

ALIGN_INSTRUCTION = "Answer the question about item identification."
TITLE2SID_INPUT = "Which item has the title: {title}?"
SID2TITLE_INPUT = 'What is the title of item "{sid}"?'
DESCRIPTION2SID_INPUT = 'An item can be described as follows: "{description}". Which item is it describing?'

SID_HISTORY2TITLE_INSTRUCTION = "Can you recommend the next item for the user based on their interaction history?"
SID_HISTORY2TITLE_INPUT = (
    "The user has sequentially interacted with items {history}. "
    "Can you recommend the next item for him? Tell me the title of the item"
)
TITLE_HISTORY2TITLE_INSTRUCTION = (
    "Given the {category} the user interacted with, in chronological order, "
    "write the title of the next one the user may choose."
)
TITLE_HISTORY2TITLE_INPUT = "The user has interacted with the following {category} before: {history}"
TITLE_HISTORY2SID_INSTRUCTION = (
    "Based on the user's historical interaction with item titles, "
    "predict the semantic ID of the next item they may expect."
)
TITLE_HISTORY2SID_INPUT = (
    "The user has interacted with the following {category} in chronological order: {history}. "
    "Can you predict the next item the user may expect?"
)


def quoted_titles(titles: Sequence[str]) -> str:
    """``"t1", "t2"``: how title histories appear in prompts."""
    return ", ".join(f'"{t}"' for t in titles)


def category_phrase(category: str, dataset: str, phrase: str = "") -> str:
    """The ``{category}`` phrase of the title prompts.

    ``phrase`` (``common.category_phrase``) is used verbatim when set; else ``category`` (upstream's
    ``--category``: a dataset name such as ``Industrial_and_Scientific``, or a phrase), else the
    dataset name, is mapped by :func:`minionerec.text.category_phrase`.
    """
    if phrase.strip():
        return phrase.strip()
    return text_category_phrase(category.strip() or dataset)


# --------------------------------------------------------------------------------------------
# Samples and items
# --------------------------------------------------------------------------------------------

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


@dataclass(frozen=True)
class ItemText:
    """One catalogue item: id, full SID string, title and (possibly empty) description."""

    item_id: int
    sid: str
    title: str
    description: str = ""


def _sample(task: str, instruction: str, user_input: str, target: str, target_item: int | None,
            history_items: Sequence[int] = (), history: Sequence[str] = ()) -> TaskSample:
    return TaskSample(task, format_prompt(instruction, user_input), format_response(target), target, target_item,
                      tuple(history_items), tuple(history))


def clean_description(raw: Any, max_chars: int = 300) -> str:
    """Item description as plain text: list reprs joined, whitespace collapsed, cut to ``max_chars``."""
    if isinstance(raw, list):
        parts = [str(p) for p in raw]
    else:
        text = str(raw or "").strip()
        parts = [text]
        if text.startswith("[") and text.endswith("]"):
            try:
                value = ast.literal_eval(text)
                if isinstance(value, list):
                    parts = [str(p) for p in value]
            except (ValueError, SyntaxError):
                pass
    text = " ".join(" ".join(parts).split())
    if len(text) > max_chars:
        text = text[:max_chars].rsplit(" ", 1)[0]
    return text


def load_items(index_path: str | Path, item_json_path: str | Path | None = None,
               info_path: str | Path | None = None, description_chars: int = 300) -> list[ItemText]:
    """Items with SIDs, titles and descriptions, in item-id order.

    SIDs come from the index; titles and descriptions from ``item_json_path`` when given, else
    titles from the info file.  Items without a SID are skipped (they cannot be a target).
    """
    index = read_index_json(index_path)
    if item_json_path:
        records = read_item_json(item_json_path)
        texts = {item: (rec["title"], clean_description(rec.get("description", ""), description_chars))
                 for item, rec in records.items()}
    elif info_path:
        texts = {entry.item_id: (entry.title, "") for entry in read_info(info_path)}
    else:
        raise InputError("load_items needs item_json_path or info_path for item titles")
    missing = [item for item in index if item not in texts]
    if missing:
        source = item_json_path or info_path
        raise InputError(f"{source}: no title for {len(missing)} item(s) of the SID index {index_path} "
                         f"(e.g. item {missing[0]}); pass the item file that matches the index")
    return [ItemText(item, sid_to_string(sid), " ".join(texts[item][0].split()), texts[item][1])
            for item, sid in sorted(index.items())]


def check_rows_against_index(rows: Sequence[SplitRow], items: Sequence[ItemText], path: str | Path) -> None:
    """Raise InputError naming the first CSV row whose history or target SID is not in the index."""
    known = {item.sid for item in items}
    for number, row in enumerate(rows, start=1):
        for sid in (*row.history_item_sid, row.item_sid):
            if sid not in known:
                raise InputError(
                    f"{path}: data row {number} (user {row.user_id}) has SID {sid} that is not in the SID index; "
                    "the CSV and index.json must come from the same convert_dataset.py run"
                )


# --------------------------------------------------------------------------------------------
# One function per task
# --------------------------------------------------------------------------------------------

def next_sid_samples(rows: Iterable[SplitRow]) -> list[TaskSample]:
    """SID history -> next SID; the prompt is :func:`next_item_prompt` (shared with RL and evaluation)."""
    return [TaskSample("next_sid", next_item_prompt(r.history_item_sid), format_response(r.item_sid), r.item_sid,
                       r.item_id, r.history_item_id, r.history_item_sid) for r in rows]


def sid_history_to_title_samples(rows: Iterable[SplitRow]) -> list[TaskSample]:
    """SID history -> the next item's title."""
    return [_sample("sid_history2title", SID_HISTORY2TITLE_INSTRUCTION,
                    SID_HISTORY2TITLE_INPUT.format(history=", ".join(r.history_item_sid)),
                    r.item_title, r.item_id, r.history_item_id, r.history_item_sid) for r in rows]


def title_history_to_title_samples(rows: Iterable[SplitRow], category: str) -> list[TaskSample]:
    """Title history -> the next item's title."""
    return [_sample("title_history2title", TITLE_HISTORY2TITLE_INSTRUCTION.format(category=category),
                    TITLE_HISTORY2TITLE_INPUT.format(category=category, history=quoted_titles(r.history_item_title)),
                    r.item_title, r.item_id, r.history_item_id, r.history_item_title) for r in rows]


def title_history_to_sid_samples(rows: Iterable[SplitRow], category: str) -> list[TaskSample]:
    """Title history -> the next item's SID."""
    return [_sample("title_history2sid", TITLE_HISTORY2SID_INSTRUCTION,
                    TITLE_HISTORY2SID_INPUT.format(category=category, history=quoted_titles(r.history_item_title)),
                    r.item_sid, r.item_id, r.history_item_id, r.history_item_title) for r in rows]


def title_to_sid_samples(items: Iterable[ItemText]) -> list[TaskSample]:
    """Title -> SID for every item (colliding SIDs and duplicate titles keep one sample per item)."""
    return [_sample("title2sid", ALIGN_INSTRUCTION, TITLE2SID_INPUT.format(title=i.title), i.sid, i.item_id)
            for i in items]


def sid_to_title_samples(items: Iterable[ItemText]) -> list[TaskSample]:
    """SID -> title for every item."""
    return [_sample("sid2title", ALIGN_INSTRUCTION, SID2TITLE_INPUT.format(sid=i.sid), i.title, i.item_id)
            for i in items]


def description_to_sid_samples(items: Iterable[ItemText]) -> list[TaskSample]:
    """Description -> SID for every item that has a description."""
    return [_sample("description2sid", ALIGN_INSTRUCTION, DESCRIPTION2SID_INPUT.format(description=i.description),
                    i.sid, i.item_id) for i in items if i.description]


_ROW_TASKS: dict[str, Callable[..., list[TaskSample]]] = {
    "next_sid": lambda rows, category: next_sid_samples(rows),
    "sid_history2title": lambda rows, category: sid_history_to_title_samples(rows),
    "title_history2title": title_history_to_title_samples,
    "title_history2sid": title_history_to_sid_samples,
}
_ITEM_TASKS: dict[str, Callable[[Sequence[ItemText]], list[TaskSample]]] = {
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
                       category: str) -> dict[str, list[TaskSample]]:
    """``{task: samples}`` for the named tasks (row tasks over ``rows``, item tasks over ``items``)."""
    out: dict[str, list[TaskSample]] = {}
    for task in tasks:
        if task in _ROW_TASKS:
            out[task] = _ROW_TASKS[task](rows, category)
        elif task in _ITEM_TASKS:
            out[task] = _ITEM_TASKS[task](items)
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
                       category: str, seed: int = 42) -> list[TaskSample]:
    """The SFT training set: every task with a positive weight, replicated by its weight."""
    unknown = sorted(set(weights) - set(TASK_NAMES))
    if unknown:
        raise InputError(f"sft.task_weights: unknown task(s) {', '.join(unknown)}; known tasks: {', '.join(TASK_NAMES)}")
    active = [task for task in TASK_NAMES if float(weights.get(task, 0.0)) > 0]
    rng = random.Random(seed)
    mixture: list[TaskSample] = []
    for task, samples in build_task_samples(active, rows, items, category).items():
        chosen = replicate_by_weight(samples, float(weights[task]), rng)
        logger.info("task %-20s %7d samples (weight %g)", task, len(chosen), float(weights[task]))
        mixture += chosen
    return mixture


_SENTINEL = "\x00"


def prompt_template_pieces(category: str) -> list[str]:
    """The constant text pieces of every task's prompt (what surrounds the variable parts), plus ``", "``.

    A tokenizer that holds each piece as one token encodes the fixed part of any prompt in a
    handful of tokens (see ``minionerec.modeling.train_bpe_tokenizer``).
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


# --------------------------------------------------------------------------------------------
# Tokenisation
# --------------------------------------------------------------------------------------------

def encode_prompts(tokenizer: Any, prompts: Sequence[str], batch_size: int = 4096) -> list[list[int]]:
    """Token ids of prompts, batched, with no special tokens: what generation feeds the model."""
    ids: list[list[int]] = []
    for start in range(0, len(prompts), batch_size):
        chunk = list(prompts[start:start + batch_size])
        ids += tokenizer(chunk, add_special_tokens=False)["input_ids"]
    return ids


def history_sid_labels(prompt_ids: Sequence[int], sid_ids: Collection[int]) -> list[int]:
    """Prompt labels of the sequence objective: the SID tokens of every history item after the first.

    An item is a run of consecutive SID tokens; the first run has no earlier item to be predicted
    from, so it stays -100 like the rest of the prompt.
    """
    labels = [-100] * len(prompt_ids)
    first_run_over = False
    for position, token in enumerate(prompt_ids):
        if token in sid_ids:
            if first_run_over:
                labels[position] = token
        elif position and prompt_ids[position - 1] in sid_ids:
            first_run_over = True
    return labels


def tokenize_samples(tokenizer: Any, samples: Sequence[TaskSample], max_len: int,
                     batch_size: int = 4096, history_label_ids: Collection[int] = ()) -> dict[str, list[list[int]]]:
    """``{"input_ids", "labels"}``: prompt + completion + EOS, labels -100 on the prompt.

    Prompt and completion are encoded separately (batched) so the prompt boundary is exact;
    sequences longer than ``max_len`` keep their last ``max_len`` tokens (left truncation).
    With ``history_label_ids`` (the SID token ids: the sequence objective) the prompt's history
    SIDs after the first are labelled too (:func:`history_sid_labels`), so one causal pass trains
    the prediction of every next item of the row.
    """
    if tokenizer.eos_token_id is None:
        raise InputError("the tokenizer has no EOS token; set one before training")
    eos = tokenizer.eos_token_id
    prompt_ids = encode_prompts(tokenizer, [s.prompt for s in samples], batch_size)
    completion_ids = encode_prompts(tokenizer, [s.completion for s in samples], batch_size)
    input_ids, labels = [], []
    truncated = 0
    for p, c in zip(prompt_ids, completion_ids):
        ids = p + c + [eos]
        lab = (history_sid_labels(p, history_label_ids) if history_label_ids else [-100] * len(p)) + c + [eos]
        if len(ids) > max_len:
            truncated += 1
            ids, lab = ids[-max_len:], lab[-max_len:]
        input_ids.append(ids)
        labels.append(lab)
    if truncated:
        logger.warning("%d of %d samples were longer than max_len=%d and lost their first tokens",
                       truncated, len(samples), max_len)
    return {"input_ids": input_ids, "labels": labels}
