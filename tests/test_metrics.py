from __future__ import annotations

import math
import random

import pytest

import numpy as np
import torch

from minionerec.errors import InputError
from minionerec.metrics import (
    evaluate_predictions,
    hr_ndcg,
    item_rank,
    metric_value,
    paired_bootstrap,
    per_sample_ndcg,
    sid_rank,
)

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


def test_per_sample_ndcg_matches_the_mean_metric():
    ranks = [0, 1, None, 4, 12]
    per_sample = per_sample_ndcg(ranks, 10)
    assert per_sample[:3] == [1.0, pytest.approx(1 / math.log2(3)), 0.0]
    assert per_sample[4] == 0.0  # rank 12 is outside the top 10
    assert sum(per_sample) / len(ranks) == pytest.approx(hr_ndcg(ranks, (10,))["NDCG@10"])


def test_paired_bootstrap_interval_covers_the_delta_and_detects_a_shift():
    rng = random.Random(0)
    a = [rng.random() for _ in range(400)]
    same = paired_bootstrap(a, list(a))
    assert same.delta == 0 and same.ci_low == 0 and same.ci_high == 0 and not same.significant
    shifted = paired_bootstrap(a, [x + 0.05 + rng.gauss(0, 0.01) for x in a], seed=1)
    assert shifted.ci_low < shifted.delta < shifted.ci_high
    assert shifted.significant and shifted.ci_low > 0.04
    noisy = paired_bootstrap(a, [x + rng.gauss(0, 0.3) for x in a], seed=1)
    assert noisy.ci_low < 0 < noisy.ci_high  # zero-mean noise: no significant difference
    assert paired_bootstrap(a, list(a), seed=3).as_dict()["significant"] is False
    with pytest.raises(ValueError, match="length"):
        paired_bootstrap(a, a[:-1])


def test_one_hr_ndcg_for_lists_numpy_and_torch_ranks():
    """The baselines (torch rank tensors) and evaluation (lists with misses) share one formula."""
    ranks = [0, 4, 1, 12, 2, 0, 7]
    expected = hr_ndcg(ranks, (1, 3, 10))
    assert expected["NDCG@3"] == (1 + 1 / math.log2(3) + 1 / math.log2(4) + 1) / 7
    assert hr_ndcg(torch.tensor(ranks), (1, 3, 10)) == expected
    assert hr_ndcg(np.array(ranks), (1, 3, 10)) == expected
    assert hr_ndcg([0, None, 1], (2,)) == {"HR@2": 2 / 3, "NDCG@2": (1 + 1 / math.log2(3)) / 3}
    assert metric_value(torch.tensor(ranks), "NDCG@3") == expected["NDCG@3"]
    assert metric_value(ranks, "HR@10") == expected["HR@10"]
    assert sum(per_sample_ndcg(torch.tensor(ranks), 3)) / 7 == pytest.approx(expected["NDCG@3"])
    with pytest.raises(InputError, match="NDCG@10 or HR@5"):
        metric_value(ranks, "MRR@10")
