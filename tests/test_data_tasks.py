"""minionerec.llm tasks (re-exported by data.py): prompts, no-leak, mixture weights, tokenisation."""

from __future__ import annotations

import pytest

from minionerec import llm
from minionerec.errors import InputError
from minionerec.io import SplitRow

ITEMS = [
    llm.ItemText(0, "<a_0><b_1><c_2>", "Red tape", "Sticky red vinyl tape."),
    llm.ItemText(1, "<a_0><b_1><c_3>", "Blue tape", ""),
    llm.ItemText(2, "<a_1><b_0><c_0><d_1>", "Glue gun", "Hot glue gun, 40 W."),
    llm.ItemText(3, "<a_1><b_0><c_0><d_0>", "Glue sticks", "Refill sticks."),
]


def row(history: list[int], target: int, user: str = "A1") -> SplitRow:
    return SplitRow(user, tuple(ITEMS[i].title for i in history), ITEMS[target].title, tuple(history), target,
                    tuple(ITEMS[i].sid for i in history), ITEMS[target].sid)


ROWS = [row([0], 1), row([0, 1], 2), row([0, 1, 2], 3), row([3, 2], 2, "A2")]  # the last is a repeat


def all_samples() -> list[llm.TaskSample]:
    built = llm.build_task_samples(llm.TASK_NAMES, ROWS, ITEMS, "tools")
    return [s for samples in built.values() for s in samples]


def test_every_task_builds_and_nothing_leaks() -> None:
    samples = all_samples()
    assert {s.task for s in samples} == set(llm.TASK_NAMES)
    assert llm.find_leaks(samples) == []
    for s in samples:
        assert s.prompt.endswith(llm.RESPONSE_TAG)
        assert s.completion == s.target + "\n"


def test_leak_detector_catches_upstream_bug() -> None:
    good = llm.title_to_sid_samples(ITEMS[:1])[0]
    leaked = llm.TaskSample(good.task, good.prompt + good.target, good.completion, good.target, good.target_item)
    assert llm.find_leaks([leaked]) == [leaked]
    in_body = llm.TaskSample(good.task, good.target + good.prompt, good.completion, good.target, good.target_item)
    assert llm.find_leaks([in_body]) == [in_body]


def test_next_sid_prompt_is_the_shared_prompt_and_sids_stay_whole() -> None:
    samples = llm.next_sid_samples(ROWS)
    assert samples[2].prompt == llm.next_item_prompt(list(ROWS[2].history_item_sid))
    assert samples[2].target == "<a_1><b_0><c_0><d_0>"  # four-level SID kept whole
    assert "<a_1><b_0><c_0><d_1>" in samples[2].prompt


def test_mixture_weights() -> None:
    mix = llm.build_task_mixture({"next_sid": 2.0, "title2sid": 0.5}, ROWS, ITEMS, "tools", seed=1)
    counts = {t: sum(s.task == t for s in mix) for t in llm.TASK_NAMES}
    assert counts["next_sid"] == 2 * len(ROWS)
    assert counts["title2sid"] == 2
    assert counts["sid2title"] == 0
    assert mix == llm.build_task_mixture({"next_sid": 2.0, "title2sid": 0.5}, ROWS, ITEMS, "tools", seed=1)
    with pytest.raises(InputError, match="unknown task"):
        llm.build_task_mixture({"nope": 1.0}, ROWS, ITEMS, "tools")


def test_default_mixture_is_newer_upstream() -> None:
    active = {t for t, w in llm.DEFAULT_TASK_WEIGHTS.items() if w > 0}
    assert active == {"next_sid", "sid2title", "title2sid", "sid_history2title"}


def test_category_phrase() -> None:
    assert llm.category_phrase("movies", "ml-100k") == "movies"
    assert llm.category_phrase("", "Industrial_and_Scientific") == "industrial and scientific items"
    prompt = llm.title_history_to_sid_samples(ROWS[:1], "movies")[0].prompt
    assert "following movies in chronological order" in prompt


def test_rows_with_unknown_sid_are_rejected() -> None:
    bad = SplitRow("A9", ("x",), "y", (0,), 1, ("<a_9><b_9><c_9>",), ITEMS[1].sid)
    with pytest.raises(InputError, match="data row 2 .*not in the SID index"):
        llm.check_rows_against_index([ROWS[0], bad], ITEMS, "train.csv")


def test_clean_description() -> None:
    assert llm.clean_description("['a  b', 'c']") == "a b c"
    assert llm.clean_description("x " * 500, max_chars=10) == "x x x x x"


class CharTokenizer:
    """A minimal tokenizer: one id per character, EOS = 0."""

    eos_token_id = 0

    def __call__(self, texts, add_special_tokens=False):
        return {"input_ids": [[ord(ch) for ch in t] for t in texts]}


def test_tokenize_masks_prompt_appends_eos_and_truncates_left() -> None:
    samples = llm.next_sid_samples(ROWS[:2])
    out = llm.tokenize_samples(CharTokenizer(), samples, max_len=10_000)
    for s, ids, labels in zip(samples, out["input_ids"], out["labels"]):
        n_prompt = len(s.prompt)
        assert labels[:n_prompt] == [-100] * n_prompt
        assert labels[n_prompt:] == ids[n_prompt:]
        assert ids[-1] == 0 and "".join(map(chr, ids[n_prompt:-1])) == s.completion
    short = llm.tokenize_samples(CharTokenizer(), samples, max_len=30)
    assert all(len(ids) == 30 for ids in short["input_ids"])
    assert short["input_ids"][0] == out["input_ids"][0][-30:]
    assert short["labels"][0] == out["labels"][0][-30:]


def test_repeat_in_history_is_not_a_leak_but_an_extra_copy_is() -> None:
    repeat = llm.next_sid_samples([ROWS[3]])[0]
    assert repeat.target in repeat.prompt and llm.find_leaks([repeat]) == []
    doubled = llm.TaskSample(repeat.task, repeat.target + repeat.prompt, repeat.completion, repeat.target,
                              repeat.target_item, repeat.history_items, repeat.history)
    assert llm.find_leaks([doubled]) == [doubled]


def test_prompt_template_pieces_cover_the_fixed_text_of_every_prompt() -> None:
    pieces = llm.prompt_template_pieces("tools")
    assert all("\x00" not in p for p in pieces) and ", " in pieces
    for s in all_samples():
        rest = s.prompt
        for piece in sorted(pieces, key=len, reverse=True):
            rest = rest.replace(piece, "")
        assert llm.PROMPT_HEADER not in rest and llm.RESPONSE_TAG not in rest


# Upstream rl.py's RL prompts, verbatim from the reference (original-minionerec.md 7.2): no header, no instruction.
UPSTREAM_RL_TITLE2SID = "### User Input: \nWhich item has the title: Red tape?\n\n### Response:\n"
UPSTREAM_RL_DESCRIPTION2SID = ('### User Input: \nAn item can be described as follows: "Sticky red vinyl tape.". '
                               "Which item is it describing?\n\n### Response:\n")
UPSTREAM_RL_TITLE_HISTORY2SID = ('### User Input: \nGiven the title sequence of user historical interactive items: '
                                 '"Red tape", "Blue tape", can you recommend a suitable next item for the user?'
                                 "\n\n### Response:\n")


def test_rl_prompts_are_upstreams_rl_wording() -> None:
    built = llm.build_task_samples(["title2sid", "description2sid", "title_history2sid"], ROWS, ITEMS, "tools",
                                   rl=True)
    assert built["title2sid"][0].prompt == UPSTREAM_RL_TITLE2SID
    assert built["description2sid"][0].prompt == UPSTREAM_RL_DESCRIPTION2SID
    assert built["title_history2sid"][1].prompt == UPSTREAM_RL_TITLE_HISTORY2SID  # ROWS[1]: history items 0, 1
    assert [s.target for s in built["title_history2sid"]] == [r.item_sid for r in ROWS]


def test_rl_keeps_the_shared_next_item_prompt_and_sft_keeps_its_header() -> None:
    rl_next = llm.build_task_samples(["next_sid"], ROWS, ITEMS, "tools", rl=True)["next_sid"]
    assert rl_next == llm.next_sid_samples(ROWS)  # the evaluated prompt, header included
    sft = llm.title_history_to_sid_samples(ROWS[1:2], "tools")[0].prompt
    assert sft.startswith(llm.PROMPT_HEADER) and "### Instruction:\n" + llm.TITLE_HISTORY2SID_INSTRUCTION in sft
    assert "The user has interacted with the following tools in chronological order" in sft


def test_every_rl_prompt_is_its_task_definition_without_header_and_leaks_nothing() -> None:
    built = llm.build_task_samples(llm.TASK_NAMES, ROWS, ITEMS, "tools", rl=True)
    rl_samples = [s for task, samples in built.items() if task != "next_sid" for s in samples]
    assert {s.task for s in rl_samples} == set(llm.TASK_PROMPTS) and llm.find_leaks(rl_samples) == []
    sft = {(s.task, s.target, s.history): s.prompt for s in all_samples()}
    for s in rl_samples:
        definition = llm.TASK_PROMPTS[s.task]
        assert s.prompt.startswith("### User Input: \n") and llm.PROMPT_HEADER not in s.prompt
        rl_input = s.prompt.removeprefix("### User Input: \n").removesuffix("\n\n" + llm.RESPONSE_TAG)
        if not definition.rl_input:  # the same input as SFT's: the SFT prompt is header + instruction + this
            assert sft[(s.task, s.target, s.history)].endswith(s.prompt)
        else:
            assert rl_input not in sft[(s.task, s.target, s.history)]


def test_format_prompt_without_instruction_is_upstreams_rl_skeleton() -> None:
    assert llm.format_prompt(None, "X") == "### User Input: \nX\n\n### Response:\n"
    full = llm.PROMPT_HEADER + "### Instruction:\nI\n\n### User Input: \nX\n\n### Response:\n"
    assert llm.format_prompt("I", "X") == full
