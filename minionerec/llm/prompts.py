"""Every prompt wording, once: the Alpaca-style skeleton, the next-item prompt and the auxiliary task templates.

The next-item prompt (:func:`next_item_prompt`) is the one string that SFT, RL and evaluation all
use, so RL optimises the prompt that is evaluated.  Skeleton (as upstream)::

    Below is an instruction ... completes the request. \\n\\n### Instruction:\\n{instruction}\\n\\n
    ### User Input: \\n{input}\\n\\n### Response:\\n

Each auxiliary task's wording is one :class:`TaskPrompt`: SFT's instruction and input, and the RL
form of the same task.  Upstream's RL prompts (rl.py's datasets) have no header and no instruction
(``### User Input: \\n{input}\\n\\n### Response:\\n``), and its title-history task words the input
differently (:data:`TITLE_HISTORY2SID_RL_INPUT`); ``TaskPrompt.rl`` writes that form.

The response is ``{output}\\n`` (:func:`format_response`) followed by the tokenizer's EOS token.
The ``{category}`` phrase of the title prompts is :func:`minionerec.text.category_phrase` (the data
stages use it too, so it lives in the core; this package re-exports it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from minionerec.text import UPSTREAM_CATEGORY_PHRASES, category_phrase

__all__ = [
    "ALIGN_INSTRUCTION", "DESCRIPTION2SID_INPUT", "NEXT_ITEM_INPUT", "NEXT_ITEM_INSTRUCTION", "PROMPT_HEADER",
    "RESPONSE_TAG", "SID2TITLE_INPUT", "SID_HISTORY2TITLE_INPUT", "SID_HISTORY2TITLE_INSTRUCTION",
    "TASK_PROMPTS", "TITLE2SID_INPUT", "TITLE_HISTORY2SID_INPUT", "TITLE_HISTORY2SID_INSTRUCTION",
    "TITLE_HISTORY2SID_RL_INPUT", "TITLE_HISTORY2TITLE_INPUT", "TITLE_HISTORY2TITLE_INSTRUCTION",
    "UPSTREAM_CATEGORY_PHRASES", "TaskPrompt", "category_phrase", "format_prompt", "format_response",
    "next_item_prompt", "quoted_titles",
]

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
#: Upstream rl.py's title-history -> SID input (RLSeqTitle2SidDataset; reference 7.2), RL's form of the task.
TITLE_HISTORY2SID_RL_INPUT = (
    "Given the title sequence of user historical interactive items: {history}, "
    "can you recommend a suitable next item for the user?"
)


def format_prompt(instruction: str | None, user_input: str) -> str:
    """The full prompt for one task: header, instruction, input, and the response tag.

    ``instruction=None`` leaves out the header and the instruction (upstream's RL prompt form).
    """
    head = "" if instruction is None else f"{PROMPT_HEADER}### Instruction:\n{instruction}\n\n"
    return f"{head}### User Input: \n{user_input}\n\n{RESPONSE_TAG}"


@dataclass(frozen=True)
class TaskPrompt:
    """One task's wording, the one definition its SFT and RL prompts come from.

    ``instruction`` and ``input`` are templates (``str.format`` fields such as ``{history}``,
    ``{title}``, ``{category}``).  :meth:`sft` is the full prompt; :meth:`rl` is upstream rl.py's form
    of the same task: no header, no instruction, and ``rl_input`` instead of ``input`` where upstream's
    RL dataset words the input differently (empty: the same input).
    """

    instruction: str
    input: str
    rl_input: str = ""

    def sft(self, **fields: str) -> str:
        """The SFT prompt: header, instruction, input, response tag."""
        return format_prompt(self.instruction.format(**fields), self.input.format(**fields))

    def rl(self, **fields: str) -> str:
        """The RL prompt (upstream rl.py's form): input and response tag only."""
        return format_prompt(None, (self.rl_input or self.input).format(**fields))

    def render(self, rl: bool = False, **fields: str) -> str:
        """:meth:`rl` when ``rl`` else :meth:`sft`."""
        return self.rl(**fields) if rl else self.sft(**fields)


#: The auxiliary tasks' wordings by task name (the next-item task is :func:`next_item_prompt`, one
#: string for SFT, RL and evaluation).
TASK_PROMPTS: dict[str, TaskPrompt] = {
    "title2sid": TaskPrompt(ALIGN_INSTRUCTION, TITLE2SID_INPUT),
    "sid2title": TaskPrompt(ALIGN_INSTRUCTION, SID2TITLE_INPUT),
    "description2sid": TaskPrompt(ALIGN_INSTRUCTION, DESCRIPTION2SID_INPUT),
    "sid_history2title": TaskPrompt(SID_HISTORY2TITLE_INSTRUCTION, SID_HISTORY2TITLE_INPUT),
    "title_history2title": TaskPrompt(TITLE_HISTORY2TITLE_INSTRUCTION, TITLE_HISTORY2TITLE_INPUT),
    "title_history2sid": TaskPrompt(TITLE_HISTORY2SID_INSTRUCTION, TITLE_HISTORY2SID_INPUT, TITLE_HISTORY2SID_RL_INPUT),
}


def format_response(output: str) -> str:
    """The response text a model is trained to produce (EOS is appended at tokenization)."""
    return f"{output}\n"


def next_item_prompt(history_sids: Sequence[str]) -> str:
    """The next-item prompt used by SFT, RL and evaluation: SID history -> next SID."""
    if not history_sids:
        raise ValueError("next_item_prompt needs at least one history item")
    return format_prompt(NEXT_ITEM_INSTRUCTION, NEXT_ITEM_INPUT.format(history=", ".join(history_sids)))


def quoted_titles(titles: Sequence[str]) -> str:
    """``"t1", "t2"``: how title histories appear in prompts."""
    return ", ".join(f'"{t}"' for t in titles)
