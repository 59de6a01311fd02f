"""Rewards on hand-computed groups."""

from __future__ import annotations

import math

import numpy as np
import pytest

from minionerec.catalogue import CatalogueItem
from minionerec.errors import InputError
from minionerec.llm import TaskSample
from minionerec.rl import (
    CollaborativeReward,
    SemanticReward,
    build_reward_set,
    prefix_reward,
    rank_discounts,
    ranking_only_reward,
    ranking_reward,
    rule_reward,
)
from minionerec.sid import parse_sid

A, B, C, D = "<a_1><b_1><c_1>", "<a_1><b_2><c_1>", "<a_2><b_1><c_1>", "<a_3><b_3><c_3>"
CATALOGUE = [CatalogueItem(parse_sid(s), f"t{i}", i) for i, s in enumerate([A, B, C, D])]


def row(target: str, history=(0,), prompt="p") -> TaskSample:
    item_id = [A, B, C, D].index(target)
    return TaskSample("next_sid", prompt, f"{target}\n", target, item_id, tuple(history))


def test_rank_discounts_match_upstream_for_16():
    d = rank_discounts(16)
    assert sum(d) == pytest.approx(1.0)
    assert [round(x, 3) for x in d[:4]] == [0.164, 0.103, 0.082, 0.071]
    assert round(d[-1], 3) == 0.040


def test_rule_reward():
    rows = [row(B)] * 4
    assert rule_reward([A, B, C, D], rows, 4) == [0.0, 1.0, 0.0, 0.0]
    # Whitespace, newline and quotes around the completion do not matter.
    assert rule_reward([f' "{B}"\n', A], [row(B)] * 2, 2) == [1.0, 0.0]


def test_ranking_rewards_by_hand():
    g = 4
    z = sum(1 / math.log2(i + 2) for i in range(g))
    rows = [row(C)] * g
    got = ranking_only_reward([A, B, C, D], rows, g)
    expected = [-1 / z, -1 / math.log2(3) / z, 0.0, -1 / math.log2(5) / z]
    assert got == pytest.approx(expected)
    assert ranking_reward([A, B, C, D], rows, g) == pytest.approx([expected[0], expected[1], 1.0, expected[3]])
    # A group without its target is all zero.
    assert ranking_reward([A, B, D, D], rows, g) == [0.0] * g


def test_prefix_reward_credits_the_shared_sid_levels():
    rows = [row(A)] * 4
    # B shares only <a_1> with A; C and D share nothing.
    assert prefix_reward([A, B, C, D], rows, 4) == pytest.approx([1.0, 1 / 3, 0.0, 0.0])
    assert prefix_reward(["<a_1><b_1><c_9>", "not a sid"], [row(A)] * 2, 2) == pytest.approx([2 / 3, 0.0])
    assert build_reward_set({"prefix": 1.0}).functions["prefix"] is prefix_reward


def test_each_group_uses_its_own_rows_target_with_duplicate_history():
    # Two rows with the SAME prompt (identical history) but different targets.
    row1 = row(A, history=(3,), prompt="same history")
    row2 = row(B, history=(3,), prompt="same history")
    completions = [A, B, B, A]  # identical beams would come out for identical prompts in practice
    rows = [row1, row1, row2, row2]
    assert rule_reward(completions, rows, 2) == [1.0, 0.0, 1.0, 0.0]
    ranked = ranking_reward(completions, rows, 2)
    assert ranked[0] == 1.0 and ranked[2] == 1.0
    assert ranked[1] < 0 and ranked[3] < 0


def test_semantic_reward_is_cosine_of_item_embeddings():
    emb = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [-3.0, 0.0]])
    fn = SemanticReward(emb, CATALOGUE)
    got = fn([A, B, C, D, "<a_9><b_9><c_9>"], [row(A)] * 5, 5)
    assert got == pytest.approx([1.0, 0.0, 1 / math.sqrt(2), -1.0, 0.0])


def test_semantic_reward_rejects_wrong_embedding_rows():
    with pytest.raises(InputError, match="rows"):
        SemanticReward(np.zeros((2, 3)), CATALOGUE)


class FakeScorer:
    """score = 10 * last history item + candidate item; -1 (invalid) gets invalid_score."""

    class catalogue:  # noqa: N801 - mimics sasrec.CFScorer.catalogue
        item_ids = (0, 1, 2, 3)

    def score(self, histories, candidates, kind="logit", invalid_score=0.0):
        return [[10.0 * h[-1] + c if c >= 0 else invalid_score for c in cands] for h, cands in zip(histories, candidates)]


def test_collaborative_reward_uses_each_rows_history():
    fn = CollaborativeReward(FakeScorer(), CATALOGUE)
    rows = [row(A, history=(1,)), row(A, history=(1,)), row(B, history=(2,)), row(B, history=(2,)),
            row(B, history=()), row(B, history=())]
    assert fn([A, D, A, "bad", A, B], rows, 2) == [10.0, 13.0, 20.0, 0.0, 0.0, 0.0]


def test_collaborative_reward_rejects_other_catalogue():
    class Other(FakeScorer):
        class catalogue:  # noqa: N801
            item_ids = (0, 1, 2, 3, 4, 5, 6)

    with pytest.raises(InputError, match="differs from this dataset"):
        CollaborativeReward(Other(), CATALOGUE)


def test_reward_set_weights_and_unknown_name():
    rs = build_reward_set({"rule": 2.0, "ranking_only": 0.5})
    total, parts = rs([A, B], [row(A)] * 2, 2)
    assert set(parts) == {"rule", "ranking_only"}
    assert total[0] == pytest.approx(2.0)
    assert total[1] == pytest.approx(0.5 * parts["ranking_only"][1])
    with pytest.raises(InputError, match="unknown reward 'ndcg'"):
        build_reward_set({"ndcg": 1.0})
    with pytest.raises(InputError, match="embedding_path"):
        build_reward_set({"semantic": 1.0}, catalogue=CATALOGUE)
