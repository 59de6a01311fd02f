"""SASRec / GRU4Rec: planted pattern, selection on valid, saving/loading, the CF reward model API."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from minionerec.baselines import (
    MODEL_META,
    MODEL_WEIGHTS,
    TRAIN_STATE,
    CFScorer,
    ModelConfig,
    SequenceBatch,
    TrainConfig,
    build_model,
    dro_loss,
    load_model,
    pad_histories,
    position_targets,
    propensity,
    sequence_loss,
    target_ranks,
    train_sequential_model,
)
from minionerec.catalogue import Catalogue, CatalogueItem, write_info
from minionerec.errors import InputError
from minionerec.metrics import hr_ndcg

N_ITEMS = 24


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models: one intra-op thread is fastest, and much faster on a busy shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_catalogue(path: Path, n_items: int = N_ITEMS, offset: int = 100) -> Catalogue:
    write_info(path, [CatalogueItem((f"<a_{i}>", f"<b_{i % 3}>", "<c_0>"), f"item {i}", offset + i)
                      for i in range(n_items)])
    return Catalogue.from_info(path)


def planted(n_rows: int, seed: int, n_items: int = N_ITEMS, step: int = 1) -> SequenceBatch:
    """Histories of consecutive catalogue indices (i, i+step, ...); the target continues the run."""
    rng = random.Random(seed)
    histories, targets = [], []
    for _ in range(n_rows):
        length = rng.randint(1, 6)
        start = rng.randrange(n_items)
        seq = [(start + step * j) % n_items for j in range(length + 1)]
        histories.append([i + 1 for i in seq[:-1]])
        targets.append(seq[-1])
    seqs, lengths = pad_histories(histories, 10)
    return SequenceBatch(seqs, lengths, torch.tensor(targets))


def tiny(model_type: str = "sasrec") -> ModelConfig:
    return ModelConfig(model_type=model_type, n_items=N_ITEMS, hidden_size=32, num_blocks=1, num_heads=2,
                       dropout=0.0, max_history=10)


FAST = dict(learning_rate=1e-2, batch_size=64, max_epochs=12, patience=3, seed=0)


@pytest.mark.parametrize("model_type,loss", [("sasrec", "ce"), ("gru4rec", "ce"), ("sasrec", "bce")])
def test_models_learn_a_planted_next_item_pattern(tmp_path, model_type, loss):
    catalogue = make_catalogue(tmp_path / "info.txt")
    result = train_sequential_model(tiny(model_type), TrainConfig(loss=loss, num_negatives=8, **FAST),
                                     planted(600, 1), planted(100, 2), catalogue, device="cpu")
    metrics = hr_ndcg(target_ranks(result.model, planted(200, 3)), [1])
    assert metrics["HR@1"] > 0.9, (model_type, loss, metrics)


def test_position_targets_shift_the_history_and_end_with_the_row_target():
    seqs, lengths = pad_histories([[3, 4, 5], [7]], 4)
    batch = SequenceBatch(seqs, lengths, torch.tensor([8, 9]))
    targets, mask = position_targets(batch, all_positions=True)
    # Embedding rows are catalogue index + 1: the next history item 4 is catalogue index 3.
    assert targets[0, :3].tolist() == [3, 4, 8] and mask[0].tolist() == [True, True, True, False]
    assert targets[1, 0].item() == 9 and mask[1].tolist() == [True, False, False, False]
    _, last_only = position_targets(batch, all_positions=False)
    assert last_only.tolist() == [[False, False, True, False], [True, False, False, False]]


def test_selection_uses_valid_and_never_sees_test(tmp_path):
    """The best epoch is the argmax of the valid history; test data cannot change the model."""
    catalogue = make_catalogue(tmp_path / "info.txt")
    cfg = TrainConfig(**{**FAST, "max_epochs": 6, "patience": 6})
    train, valid = planted(300, 1), planted(60, 2, step=2)  # valid follows another pattern
    result = train_sequential_model(tiny(), cfg, train, valid, catalogue, out_dir=tmp_path / "m", device="cpu")
    values = [h["valid"]["NDCG@10"] for h in result.history]
    assert result.best_epoch == 1 + max(range(len(values)), key=lambda i: (values[i], -i))
    assert result.best_valid == result.history[result.best_epoch - 1]["valid"]
    # The kept model is the one of the best epoch: its valid metric is the recorded one.
    again = hr_ndcg(target_ranks(result.model, valid), [10])["NDCG@10"]
    assert again == pytest.approx(result.best_valid["NDCG@10"])
    meta = json.loads((tmp_path / "m" / MODEL_META).read_text())
    assert meta["best_epoch"] == result.best_epoch and len(meta["valid_history"]) == len(values)
    assert "test" not in json.dumps(meta["train"])


def test_training_is_seeded_and_a_finished_run_is_reused(tmp_path):
    catalogue = make_catalogue(tmp_path / "info.txt")
    cfg = TrainConfig(**{**FAST, "max_epochs": 3})
    first = train_sequential_model(tiny(), cfg, planted(200, 1), planted(50, 2), catalogue, tmp_path / "a", "cpu")
    second = train_sequential_model(tiny(), cfg, planted(200, 1), planted(50, 2), catalogue, tmp_path / "b", "cpu")
    for (name, a), b in zip(first.model.state_dict().items(), second.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert (tmp_path / "a" / TRAIN_STATE).is_file()
    reused = train_sequential_model(tiny(), cfg, planted(200, 1), planted(50, 2), catalogue, tmp_path / "a", "cpu")
    assert reused.history == first.history and reused.best_epoch == first.best_epoch
    for a, b in zip(first.model.state_dict().values(), reused.model.state_dict().values()):
        assert torch.equal(a, b)


def test_an_interrupted_run_resumes_to_the_same_result(tmp_path):
    catalogue = make_catalogue(tmp_path / "info.txt")
    cfg = TrainConfig(**{**FAST, "max_epochs": 4, "patience": 10})
    train, valid = planted(200, 1), planted(50, 2)
    full = train_sequential_model(tiny(), cfg, train, valid, catalogue, tmp_path / "full", "cpu")
    # A run cut short after 2 epochs (stopping limits are not part of the run's identity) ...
    cut = TrainConfig(**{**FAST, "max_epochs": 2, "patience": 10})
    assert len(train_sequential_model(tiny(), cut, train, valid, catalogue, tmp_path / "cut", "cpu").history) == 2
    # ... continues from its saved state to the same model as the uninterrupted run.
    resumed = train_sequential_model(tiny(), cfg, train, valid, catalogue, tmp_path / "cut", "cpu")
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    assert resumed.history[:2] == full.history[:2] and resumed.best_epoch == full.best_epoch
    for a, b in zip(full.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.allclose(a, b)
    # A saved state of other settings (here: another learning rate) is ignored, not resumed.
    other = TrainConfig(**{**FAST, "max_epochs": 1, "learning_rate": 3e-3})
    assert len(train_sequential_model(tiny(), other, train, valid, catalogue, tmp_path / "cut", "cpu").history) == 1


def test_cf_scorer_scores_candidates_and_marks_invalid_completions(tmp_path):
    catalogue = make_catalogue(tmp_path / "info.txt")
    result = train_sequential_model(tiny(), TrainConfig(**FAST), planted(600, 1), planted(100, 2), catalogue,
                                    out_dir=tmp_path / "cf", device="cpu")
    assert (tmp_path / "cf" / MODEL_WEIGHTS).is_file()
    scorer = CFScorer.load(tmp_path / "cf", tmp_path / "info.txt")
    ids = catalogue.item_ids
    histories = [[ids[3], ids[4]], [ids[10]]]
    scores = scorer.score(histories, [[ids[5], ids[9], -1], [ids[11], ids[0], ids[11]]])
    assert scores.shape == (2, 3)
    assert scores[0, 0] > scores[0, 1] and scores[1, 0] > scores[1, 1]  # the planted next item wins
    assert scores[0, 2].item() == 0.0 and scores[1, 0] == scores[1, 2]
    full = scorer.score_all(histories)
    assert scores[0, 1] == full[0, 9]
    probs = scorer.score(histories, [[ids[5]], [ids[11]]], kind="prob")
    assert 0.5 < probs[0, 0].item() <= 1.0
    assert torch.allclose(scorer.score_all(histories, "log_prob").exp().sum(1), torch.ones(2))
    # The same model object without reloading gives the same scores.
    direct = CFScorer(result.model, catalogue).score(histories, [[ids[5], ids[9], -1], [ids[11], ids[0], ids[11]]])
    assert torch.allclose(direct, scores)
    with pytest.raises(InputError, match="candidate item id 7 is not in the catalogue"):
        scorer.score(histories, [[7], [ids[0]]])
    with pytest.raises(InputError, match="history 1: item id 5 is not in the catalogue"):
        scorer.score_all([[ids[0]], [5]])
    with pytest.raises(InputError, match="one row per history"):
        scorer.score(histories, [[ids[0]]])


def test_cf_model_from_another_catalogue_is_refused(tmp_path):
    catalogue = make_catalogue(tmp_path / "info.txt")
    train_sequential_model(tiny(), TrainConfig(**{**FAST, "max_epochs": 1}), planted(100, 1), planted(20, 2),
                           catalogue, out_dir=tmp_path / "cf", device="cpu")
    make_catalogue(tmp_path / "other.txt", n_items=N_ITEMS + 1)
    with pytest.raises(InputError, match=r"trained on another catalogue: 24 items.*has 25 items.*--model sasrec"):
        CFScorer.load(tmp_path / "cf", tmp_path / "other.txt")
    # Same size, different content (a re-built SID index) is refused too.
    make_catalogue(tmp_path / "shifted.txt", offset=500)
    with pytest.raises(InputError, match="another catalogue"):
        CFScorer.load(tmp_path / "cf", tmp_path / "shifted.txt")
    with pytest.raises(InputError, match="model.json.*not found"):
        load_model(tmp_path / "missing", catalogue)


def test_bad_training_settings_are_input_errors():
    with pytest.raises(InputError, match="loss must be"):
        TrainConfig(loss="bpr")
    with pytest.raises(InputError, match="select_metric"):
        TrainConfig(select_metric="MRR")
    with pytest.raises(InputError, match="divisible"):
        ModelConfig(hidden_size=30, num_heads=4)
    with pytest.raises(InputError, match="unknown model_type"):
        ModelConfig(model_type="caser")
    with pytest.raises(InputError, match="dro_alpha"):
        TrainConfig(dro_alpha=-0.1)
    with pytest.raises(InputError, match="dro_beta"):
        TrainConfig(dro_beta=0.0)


# --------------------------------------------------------------------------------------------
# Upstream's DRO term (sasrec.py --alpha / --beta; issue 19)
# --------------------------------------------------------------------------------------------

def test_propensity_is_upstreams_smoothed_popularity_to_the_power_0_05():
    batch = SequenceBatch(torch.ones((4, 2), dtype=torch.long), torch.ones(4, dtype=torch.long), torch.tensor([0, 0, 2, 0]))
    counts = torch.tensor([3.0, 0.0, 1.0], dtype=torch.float64) + 1  # item 0 three times, item 1 never, item 2 once
    assert torch.allclose(propensity(batch, 3), (counts / counts.sum()) ** 0.05, atol=0, rtol=1e-12)


def test_dro_loss_is_upstreams_formula_and_stays_finite_for_large_logits():
    torch.manual_seed(0)
    logits, gold, ps, beta = torch.randn(5, 7, dtype=torch.float64), torch.tensor([0, 3, 6, 2, 2]), torch.rand(7).double(), 0.7
    # Upstream's expression, written out term by term.
    pos_sq = (ps * logits * logits).gather(1, gold[:, None]).squeeze(1)
    pos_loss = (ps * (logits - 1) * (logits - 1)).gather(1, gold[:, None]).squeeze(1)
    inner = torch.exp(ps * logits * logits / beta).sum(1) - torch.exp(pos_sq / beta) + torch.exp(pos_loss / beta)
    assert dro_loss(logits, gold, ps, beta).item() == pytest.approx(torch.log(inner + 1e-24).mean().item(), rel=1e-12)
    assert torch.isfinite(dro_loss(logits * 100, gold, ps, beta))  # upstream's exp(z^2) overflows here


def test_dro_term_is_off_by_default_and_adds_alpha_times_the_term():
    torch.manual_seed(0)
    model, batch = build_model(tiny()), planted(32, 1)
    ps = propensity(batch, N_ITEMS)
    plain = sequence_loss(model, batch, TrainConfig(), torch.Generator().manual_seed(0))
    assert TrainConfig().dro_alpha == 0.0 and TrainConfig().dro_beta == 1.0  # upstream's defaults: off
    with_dro = sequence_loss(model, batch, TrainConfig(dro_alpha=0.5, dro_beta=2.0), torch.Generator().manual_seed(0), ps)
    targets, mask = position_targets(batch, True)
    logits = model.encode(batch.seqs)[mask] @ model.item_vectors().T
    expected = plain + 0.5 * dro_loss(logits, targets[mask], ps, 2.0)
    assert with_dro.item() == pytest.approx(expected.item(), rel=1e-6)


def test_training_with_dro_records_it_and_without_keeps_the_old_model_json(tmp_path):
    catalogue = make_catalogue(tmp_path / "info.txt")
    data = planted(200, 1), planted(50, 2)
    off = train_sequential_model(tiny(), TrainConfig(**{**FAST, "max_epochs": 2}), *data, catalogue, tmp_path / "off", "cpu")
    on = train_sequential_model(tiny(), TrainConfig(**{**FAST, "max_epochs": 2}, dro_alpha=0.1, loss="bce", num_negatives=4),
                                *data, catalogue, tmp_path / "on", "cpu")
    assert "dro_alpha" not in json.loads((tmp_path / "off" / MODEL_META).read_text())["train"]
    recorded = json.loads((tmp_path / "on" / MODEL_META).read_text())["train"]
    assert recorded["dro_alpha"] == 0.1 and recorded["dro_beta"] == 1.0
    assert all(torch.isfinite(torch.tensor(h["train_loss"])) for h in on.history)
    assert any(not torch.equal(a, b) for a, b in zip(off.model.state_dict().values(), on.model.state_dict().values()))
