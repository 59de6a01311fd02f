from __future__ import annotations

import math

import pytest

from minionerec.metrics import evaluate_predictions, hr_ndcg, item_rank, sid_rank

CAT = {"<a_1><b_1>": [0], "<a_1><b_2>": [1, 2], "<a_2><b_1>": [3]}


def test_hit_at_rank_zero_and_miss():
    ev = evaluate_predictions([["<a_1><b_1>", "<a_2><b_1>"], ["<a_2><b_1>", "<a_1><b_1>"], ["<a_2><b_1>"]],
                              ["<a_1><b_1>", "<a_1><b_1>", "<a_1><b_2>"], CAT, ks=(1, 2))
    assert ev.sid_level["HR@1"] == pytest.approx(1 / 3)
    assert ev.sid_level["HR@2"] == pytest.approx(2 / 3)
    assert ev.sid_level["NDCG@2"] == pytest.approx((1 + 1 / math.log2(3)) / 3)
    assert ev.cc == 0


def test_duplicates_are_removed_before_ranking():
    assert sid_rank(["x", "x", "y"], "y") == 1


def test_cc_counts_every_invalid_prediction():
    ev = evaluate_predictions([["bad", "<a_1><b_1>", "worse"]], ["<a_1><b_1>"], CAT, ks=(1, 3))
    assert ev.cc == 2
    assert ev.sid_level["HR@3"] == 1.0 and ev.sid_level["HR@1"] == 0.0


def test_colliding_sid_sid_level_vs_item_level():
    # target item 2 shares its SID with item 1: SID level counts the hit at rank 0,
    # item level expands the SID to items [1, 2] so item 2 sits at rank 1.
    ev = evaluate_predictions([["<a_1><b_2>", "<a_2><b_1>", "<a_1><b_1>"]], ["<a_1><b_2>"], CAT, target_items=[2], ks=(1, 3))
    assert ev.sid_level["HR@1"] == 1.0
    assert ev.item_level["HR@1"] == 0.0 and ev.item_level["HR@3"] == 1.0
    assert item_rank(["<a_2><b_1>", "<a_1><b_2>"], 1, CAT) == 1


def test_ks_limited_to_beams_and_empty():
    ev = evaluate_predictions([["<a_1><b_1>"] * 3], ["<a_1><b_1>"], CAT)
    assert ev.ks == (1, 3)
    assert hr_ndcg([], (1,)) == {"HR@1": 0.0, "NDCG@1": 0.0}
