"""Prompt templates and the SFT/RL task datasets.

Every prompt wording lives here, once.  The next-item prompt (:func:`next_item_prompt`) is the
one string that SFT, RL and evaluation all use, so RL optimises the prompt that is evaluated.

Prompt skeleton (Alpaca style, as upstream)::

    Below is an instruction ... completes the request. \\n\\n### Instruction:\\n{instruction}\\n\\n
    ### User Input: \\n{input}\\n\\n### Response:\\n

The response is ``{output}\\n`` followed by the tokenizer's EOS token; the loss covers only the
response.  No prompt ever contains its own answer (upstream's alignment prompts did).
"""

from __future__ import annotations

from collections.abc import Sequence

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
