"""Baselines: popularity and Markov rankings on hand-made data, metrics file shape, selection on valid."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import root_script

from minionerec.baselines import (
    BaselinesConfig,
    Markov,
    Popularity,
    load_splits,
    pad_histories,
    run_baselines,
    target_rank_with_prior,
    top_k_with_prior,
)
from minionerec.catalogue import Catalogue, CatalogueItem, write_info
from minionerec.errors import InputError
from minionerec.io import SplitRow, write_split_csv
from minionerec.metrics import Evaluation

ROOT = Path(__file__).resolve().parents[1]

DATASET = "Toy"
# Item ids deliberately differ from line numbers: everything must go through the info file.
ITEM_IDS = [10, 11, 12, 13, 14, 15]


def sid_of(item: int) -> str:
    return f"<a_{item}><b_0><c_0>"


def row(history: list[int], target: int, user: str = "A1") -> SplitRow:
    return SplitRow(user, tuple(f"t{i}" for i in history), f"t{target}", tuple(history), target,
                    tuple(sid_of(i) for i in history), sid_of(target))


def write_dataset(root: Path, train: list[SplitRow], valid: list[SplitRow], test: list[SplitRow],
                  item_ids: list[int] = ITEM_IDS) -> Path:
    write_info(root / "info" / f"{DATASET}.txt",
               [CatalogueItem((f"<a_{i}>", "<b_0>", "<c_0>"), f"t{i}", i) for i in item_ids])
    for name, rows in (("train", train), ("valid", valid), ("test", test)):
        write_split_csv(root / name / f"{DATASET}.csv", rows)
    return root


def config(root: Path, **overrides) -> BaselinesConfig:
    values = dict(dataset=DATASET, data_dir=str(root), output_dir=str(root / "out"), ks=[1, 3, 5], device="cpu")
    values.update(overrides)
    return BaselinesConfig(**values)


# Train targets: 13 x3, 11 x2, 15 x2, 10 x1 -> popularity order 13, 11, 15, 10, 12, 14.
# Transitions (last history item -> target): 10->11 x2, 10->12 x1, 11->13 x3, 14->15 x2, 12->10 x1.
TRAIN = [row([10], 11), row([10], 11), row([10], 12), row([11], 13), row([11], 13), row([11], 13),
         row([14], 15), row([14], 15), row([12], 10)]


def test_popularity_ranks_by_train_target_counts_with_catalogue_tiebreak(tmp_path):
    root = write_dataset(tmp_path, TRAIN, [row([10], 13)], [row([10], 13), row([12], 14)])
    splits = load_splits(root, DATASET)
    pop = Popularity(splits.catalogue, splits.train)
    assert [splits.catalogue.item_ids[i] for i in pop.order.tolist()] == [13, 11, 15, 10, 12, 14]

    summary = run_baselines(config(root, model="popularity"))
    metrics = json.loads((root / "out" / "popularity.metrics.json").read_text())
    # The same keys as evaluate.py's metrics file.
    assert set(metrics) == set(Evaluation(0, {}, {}, 0, ()).as_dict())
    assert metrics["ks"] == [1, 3, 5] and metrics["CC"] == 0 and metrics["n_samples"] == 2
    # Test target 13 is at rank 0 (hit everywhere); 14 is last (rank 5), outside every K.
    assert metrics["item_level"]["HR@1"] == pytest.approx(0.5)
    assert metrics["item_level"]["NDCG@5"] == pytest.approx(0.5)
    assert metrics["sid_level"] == metrics["item_level"]  # no SID collisions here
    assert summary["popularity"]["test"] == metrics


def test_markov_ranking_sums_decayed_transitions_and_fills_with_popularity(tmp_path):
    root = write_dataset(tmp_path, TRAIN, [row([10], 11)], [row([10], 11)])
    splits = load_splits(root, DATASET)
    chain = Markov(splits.catalogue, splits.train, "last")
    pop = Popularity(splits.catalogue, splits.train)
    index = splits.catalogue.index_of
    seqs, lengths = pad_histories([[index[11] + 1, index[10] + 1]], 10)

    # Window 1: only the last item (10): P(11|10)=2/3, P(12|10)=1/3, then popularity 13, 15, 10, 14.
    ranked = top_k_with_prior(chain.scores(seqs, lengths, 1, 1.0), pop.order, 6)
    assert [splits.catalogue.item_ids[i] for i in ranked[0].tolist()] == [11, 12, 13, 15, 10, 14]

    # Window 2, decay 0.9: 11 -> 2/3, 12 -> 1/3, 13 -> 0.9 * P(13|11) = 0.9.
    scores = chain.scores(seqs, lengths, 2, 0.9)
    assert scores[0, index[13]].item() == pytest.approx(0.9)
    ranked = top_k_with_prior(scores, pop.order, 6)
    assert [splits.catalogue.item_ids[i] for i in ranked[0].tolist()] == [13, 11, 12, 15, 10, 14]
    # The vectorised target rank agrees with the full ranking.
    for position, item in enumerate([13, 11, 12, 15, 10, 14]):
        assert target_rank_with_prior(scores, pop.rank, torch.tensor([index[item]])).item() == position


def test_markov_all_transitions_count_history_pairs_once_per_user(tmp_path):
    train = [row([10, 11], 12, "A1"), row([10, 11, 12], 13, "A1"), row([10, 11], 14, "A2")]
    root = write_dataset(tmp_path, train, [row([10], 11)], [row([10], 11)])
    splits = load_splits(root, DATASET)
    index = splits.catalogue.index_of
    chain = Markov(splits.catalogue, splits.train, "all")
    # 10->11 once for A1 (it appears in two of A1's rows) and once for A2; 11->12 once; 11->14 once.
    assert chain.transition[index[10], index[11]].item() == pytest.approx(1.0)
    assert chain.transition[index[11], index[12]].item() == pytest.approx(0.5)
    assert chain.transition[index[11], index[14]].item() == pytest.approx(0.5)
    last = Markov(splits.catalogue, splits.train, "last")
    assert last.transition[index[10]].sum().item() == 0  # no row ends its history with 10


def test_markov_settings_are_selected_on_valid_not_test(tmp_path):
    # From history [14, 10]: window 1 predicts 11 first (from 10), window 2 with decay 1 predicts
    # 15 first (P(15|14) = 1 > P(11|10) = 2/3).  Valid wants 15 and test wants 11.
    valid = [row([14, 10], 15)]
    test = [row([14, 10], 11)]
    root = write_dataset(tmp_path, TRAIN, valid, test)
    cfg = config(root, model="markov", markov_windows=[1, 2], markov_decays=[1.0], markov_transitions=["last"])
    summary = run_baselines(cfg)
    assert summary["markov"]["selected"] == {"transitions": "last", "window": 2, "decay": 1.0}
    # The selected setting is worse on test than window 1 would have been: test did not choose.
    assert summary["markov"]["test"]["item_level"]["HR@1"] == 0.0

    swapped = write_dataset(tmp_path / "swapped", TRAIN, test, valid)
    summary = run_baselines(config(swapped, model="markov", markov_windows=[1, 2], markov_decays=[1.0],
                                   markov_transitions=["last"]))
    assert summary["markov"]["selected"]["window"] == 1


def test_colliding_sids_count_at_sid_level_not_item_level(tmp_path):
    root = write_dataset(tmp_path, TRAIN, [row([10], 13)], [row([10], 11)])
    info = root / "info" / f"{DATASET}.txt"
    # Give items 13 (most popular) and 11 the same SID.
    info.write_text(info.read_text().replace("<a_13>", "<a_11>"))
    run_baselines(config(root, model="popularity"))
    metrics = json.loads((root / "out" / "popularity.metrics.json").read_text())
    assert metrics["sid_level"]["HR@1"] == 1.0  # SID of 13 equals the target's SID
    assert metrics["item_level"]["HR@1"] == 0.0 and metrics["item_level"]["HR@3"] == 1.0


def test_unknown_item_in_split_names_file_and_row(tmp_path):
    root = write_dataset(tmp_path, TRAIN, [row([10], 11), row([99], 11)], [row([10], 11)])
    with pytest.raises(InputError, match=r"valid.*Toy\.csv row 2: item id 99 is not in the catalogue"):
        load_splits(root, DATASET)


def test_missing_files_and_unknown_model_are_clear_errors(tmp_path):
    with pytest.raises(InputError, match="missing data file"):
        load_splits(tmp_path, DATASET)
    with pytest.raises(InputError, match="choose from popularity"):
        config(tmp_path, model="bpr").models()


def test_cli_writes_metrics_and_config(tmp_path, capsys):
    root = write_dataset(tmp_path, TRAIN, [row([10], 11)], [row([10], 11)])
    from minionerec.cli import run_stage

    run_stage(BaselinesConfig, run_baselines, ["--dataset", DATASET, "--data_dir", str(root), "--output_dir",
                                               str(root / "out"), "--model", "popularity,markov", "--ks", "[1,5]"])
    out = capsys.readouterr().out
    assert "popularity" in out and "markov" in out
    assert (root / "out" / "baselines.config.yaml").is_file()
    summary = json.loads((root / "out" / "summary.json").read_text())
    assert set(summary) >= {"popularity", "markov"}
    assert json.loads((root / "out" / "markov.metrics.json").read_text())["item_level"]["HR@1"] == 1.0


def test_catalogue_rejects_duplicate_item_ids(tmp_path):
    root = write_dataset(tmp_path, TRAIN, [row([10], 11)], [row([10], 11)], item_ids=ITEM_IDS + [12])
    with pytest.raises(InputError, match="item id 12 appears on several lines"):
        Catalogue.from_info(root / "info" / f"{DATASET}.txt")


def test_baselines_section_of_every_config_loads():
    from minionerec.config import load_config

    for path in sorted(ROOT.joinpath("configs").glob("*.yaml")):
        if "baselines:" not in path.read_text():
            continue
        cfg = load_config(BaselinesConfig, path)
        assert cfg.models() and cfg.dataset, path


def test_valid_holdout_keeps_whole_users_out_of_training(tmp_path):
    from minionerec.holdout import split_valid_by_user

    rows = [row([10 + (u + j) % 6], 10 + (u + j + 1) % 6, f"A{u}") for u in range(8) for j in range(3)]
    held, rest = split_valid_by_user(rows, 5, seed=1)
    assert len(held) >= 5 and len(held) + len(rest) == len(rows)
    assert not {r.user_id for r in held} & {r.user_id for r in rest}
    assert split_valid_by_user(rows, 5, seed=1) == (held, rest)
    assert split_valid_by_user(rows, 0, seed=1) == (rows, [])

    root = write_dataset(tmp_path, TRAIN, rows, [row([10], 11)])
    splits = load_splits(root, DATASET, eval_samples=5, train_on_valid=True, seed=1)
    assert splits.valid == held and splits.train == TRAIN + rest


@pytest.mark.slow
def test_markov_beats_popularity_on_industrial_partial(tmp_path):
    from conftest import shared_path
    from minionerec.config import load_config

    shared_path("minionerec_amazon", "train_reconstructed_partial")
    config_path = ROOT / "configs" / "industrial_partial.yaml"
    cfg = load_config(BaselinesConfig, config_path, {"output_dir": str(tmp_path), "model": "popularity,markov",
                                                      "data_dir": str(shared_path("minionerec_amazon"))})
    summary = run_baselines(cfg)
    pop, markov = (summary[m]["test"]["item_level"] for m in ("popularity", "markov"))
    assert summary["markov"]["test"]["n_samples"] == 4533
    # Measured: popularity HR@10 0.067, Markov HR@10 0.132 / NDCG@10 0.094.
    assert markov["HR@10"] > 0.12 and markov["NDCG@10"] > 0.085
    assert markov["HR@10"] > pop["HR@10"] + 0.05


def test_the_package_imports_no_root_module_and_the_root_names_are_the_packages():
    code = ("import sys; import minionerec.baselines; "
            "print(sorted(m for m in ('baselines', 'sasrec', 'evaluate', 'rl', 'sft', 'data', 'LogitProcessor') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
    from minionerec import baselines as package

    root_baselines, sasrec = root_script("baselines"), root_script("sasrec")
    assert root_baselines.BaselinesConfig is package.BaselinesConfig and sasrec.CFScorer is package.CFScorer
    assert sasrec.Catalogue is Catalogue and package.BaselinesConfig.__module__ == "minionerec.baselines.stage"
