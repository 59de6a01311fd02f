"""SFT data and prompts (upstream's ``data.py`` role): the prompt templates, the task samples and mixture,
the item texts and the tokenisation, re-exported from :mod:`minionerec.llm` where they live.

Every prompt wording lives once, in :mod:`minionerec.llm.prompts`; the next-item prompt
(:func:`next_item_prompt`) is the one string that SFT, RL and evaluation all use.

- ``next_sid_samples(rows)``, ``title_to_sid_samples(items)``, ``sid_to_title_samples(items)``,
  ``sid_history_to_title_samples(rows)``, ``title_history_to_title_samples(rows, category)``,
  ``title_history_to_sid_samples(rows, category)``, ``description_to_sid_samples(items)``: one function per
  task, each returning :class:`TaskSample` records (:mod:`minionerec.llm.tasks`).
- ``build_task_samples(tasks, rows, items, category, rl=False)`` / ``build_task_mixture(weights, rows, items,
  category, seed)``: named tasks (``rl``: the RL stage's wording, :class:`TaskPrompt`) / the weighted SFT mixture.
- ``load_items(index_path, item_json_path=None, info_path=None)``, ``check_rows_against_index(rows, items,
  path)``: the item texts + SIDs (:mod:`minionerec.llm.items`).
- ``tokenize_samples(tokenizer, samples, max_len, history_label_ids=())`` and ``encode_prompts(tokenizer,
  prompts)``, the one prompt tokenisation (:mod:`minionerec.llm.tokenization`).
- ``category_phrase(category, dataset, phrase)``: the ``{category}`` phrase (:mod:`minionerec.text`).
- ``prompt_template_pieces(category)``, ``find_leaks(samples)``.
"""

from minionerec.llm.items import ItemText, check_rows_against_index, clean_description, load_items
from minionerec.llm.prompts import (
    ALIGN_INSTRUCTION,
    DESCRIPTION2SID_INPUT,
    NEXT_ITEM_INPUT,
    NEXT_ITEM_INSTRUCTION,
    PROMPT_HEADER,
    RESPONSE_TAG,
    SID2TITLE_INPUT,
    SID_HISTORY2TITLE_INPUT,
    SID_HISTORY2TITLE_INSTRUCTION,
    TASK_PROMPTS,
    TITLE2SID_INPUT,
    TITLE_HISTORY2SID_INPUT,
    TITLE_HISTORY2SID_INSTRUCTION,
    TITLE_HISTORY2SID_RL_INPUT,
    TITLE_HISTORY2TITLE_INPUT,
    TITLE_HISTORY2TITLE_INSTRUCTION,
    TaskPrompt,
    category_phrase,
    format_prompt,
    format_response,
    next_item_prompt,
    quoted_titles,
)
from minionerec.llm.tasks import (
    DEFAULT_TASK_WEIGHTS,
    TASK_NAMES,
    TaskSample,
    build_task_mixture,
    build_task_samples,
    description_to_sid_samples,
    find_leaks,
    next_sid_samples,
    prompt_template_pieces,
    replicate_by_weight,
    sid_history_to_title_samples,
    sid_to_title_samples,
    title_history_to_sid_samples,
    title_history_to_title_samples,
    title_to_sid_samples,
)
from minionerec.llm.tokenization import encode_prompts, history_sid_labels, tokenize_samples

__all__ = [
    "ALIGN_INSTRUCTION", "DEFAULT_TASK_WEIGHTS", "DESCRIPTION2SID_INPUT", "ItemText", "NEXT_ITEM_INPUT",
    "NEXT_ITEM_INSTRUCTION", "PROMPT_HEADER", "RESPONSE_TAG", "SID2TITLE_INPUT", "SID_HISTORY2TITLE_INPUT",
    "SID_HISTORY2TITLE_INSTRUCTION", "TASK_NAMES", "TASK_PROMPTS", "TITLE2SID_INPUT", "TITLE_HISTORY2SID_INPUT",
    "TITLE_HISTORY2SID_INSTRUCTION", "TITLE_HISTORY2SID_RL_INPUT", "TITLE_HISTORY2TITLE_INPUT",
    "TITLE_HISTORY2TITLE_INSTRUCTION", "TaskPrompt", "TaskSample",
    "build_task_mixture", "build_task_samples", "category_phrase", "check_rows_against_index", "clean_description",
    "description_to_sid_samples", "encode_prompts", "find_leaks", "format_prompt", "format_response",
    "history_sid_labels", "load_items", "next_item_prompt", "next_sid_samples", "prompt_template_pieces",
    "quoted_titles", "replicate_by_weight", "sid_history_to_title_samples", "sid_to_title_samples",
    "title_history_to_sid_samples", "title_history_to_title_samples", "title_to_sid_samples", "tokenize_samples",
]
