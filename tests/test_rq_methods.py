"""SID methods on small clustered embeddings: determinism, unique SIDs, coverage, well-formed
tokens, the collision step, bad input."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from minionerec.errors import InputError
from minionerec.io import read_index_json
from minionerec.sid.quantize import balanced_assign
from minionerec.sid import find_collisions
from minionerec.sid.build import SidConfig, build_sids
from minionerec.sid.index import report_paths, resolve_collisions

N, DIM, K = 200, 16, 16


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: thread start-up and spin-waits on a shared 2-core machine cost more than they save."""
    import faiss
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)


@pytest.fixture(scope="module")
def emb_path(tmp_path_factory):
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(8, DIM)) * 3
    x = (centers[rng.integers(0, 8, N)] + rng.normal(size=(N, DIM))).astype(np.float32)
    x[7] = x[3]  # identical texts give identical embeddings: a collision no method can avoid
    path = tmp_path_factory.mktemp("emb") / "E.emb.npy"
    np.save(path, x)
    return path


def config(emb_path, out_dir, **kw) -> SidConfig:
    base = dict(data_path=str(emb_path), output_path=str(out_dir / "E.index.json"), codebook_size=K, num_levels=3,
                seed=3, layers=[16], epochs=20, eval_step=10, batch_size=64, kmeans_iters=10, lr=1e-3, collision_rounds=3)
    base.update(kw)
    return SidConfig(**base)


CASES = [
    ("rqkmeans_faiss", {}),
    ("rqkmeans_constrained", {"balance": "exact", "constrained_n_init": 1, "constrained_max_iter": 20}),
    ("rqkmeans_constrained", {"balance": "scalable"}),
    ("rqvae", {"e_dim": 8}),
    ("rqkmeans_plus", {"balance": "scalable", "lr": 1e-4}),
]


@pytest.mark.parametrize("method,extra", CASES, ids=[f"{m}-{e.get('balance', '')}" for m, e in CASES])
def test_method_is_deterministic_unique_and_complete(tmp_path, emb_path, method, extra):
    indexes = []
    for run in ("a", "b"):
        out = tmp_path / run
        report = build_sids(config(emb_path, out, method=method, **extra))
        index = read_index_json(out / "E.index.json")  # validates every token
        assert sorted(index) == list(range(N))
        assert not find_collisions(index)
        assert all(len(sid) == 3 for sid in index.values())  # reassign keeps a fixed length
        assert report["collision_rate_after"] == 0.0 and report["collision_rate_before"] > 0.0
        json_path, png_path = report_paths(out / "E.index.json")
        assert json.loads(json_path.read_text())["levels"][0]["codes_used"] <= K
        assert png_path.read_bytes()[:4] == b"\x89PNG"
        indexes.append(index)
    assert indexes[0] == indexes[1]


def test_balanced_clusters_respect_bounds(tmp_path, emb_path):
    for balance in ("exact", "scalable"):
        build_sids(config(emb_path, tmp_path / balance, method="rqkmeans_constrained", balance=balance,
                          constrained_n_init=1, constrained_max_iter=20))
        codes = np.load(tmp_path / balance / "E.codebooks.npz")["codes"]
        for level in range(3):
            sizes = np.bincount(codes[:, level], minlength=K)
            assert sizes.max() <= N // K + 1
            if balance == "exact":
                assert sizes.min() >= N // K - 1


def test_balanced_assign_capacity():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1000, 8)).astype(np.float32)
    x[:600] += 5  # most points near one centroid
    centroids = rng.normal(size=(10, 8)).astype(np.float32)
    codes = balanced_assign(x, centroids, capacity=100, candidates=3)
    assert (np.bincount(codes, minlength=10) == 100).all()


def test_rqvae_resume_matches_straight_run(tmp_path, emb_path):
    straight = build_sids(config(emb_path, tmp_path / "s", method="rqvae", e_dim=8, epochs=20, checkpoint="last"))
    build_sids(config(emb_path, tmp_path / "r", method="rqvae", e_dim=8, epochs=10, checkpoint="last"))
    resumed = build_sids(config(emb_path, tmp_path / "r", method="rqvae", e_dim=8, epochs=20, checkpoint="last"))
    assert resumed["checkpoint_epoch"] == 20
    assert read_index_json(tmp_path / "s" / "E.index.json") == read_index_json(tmp_path / "r" / "E.index.json")
    assert straight["collision_rate_before"] == resumed["collision_rate_before"]


def test_forced_collisions_extra_level_and_reassign():
    codes = np.array([[0, 1, 2], [0, 1, 2], [0, 1, 2], [0, 1, 0], [3, 3, 3]])
    extra = resolve_collisions(codes, "extra_level", codebook_size=4)
    assert extra == [(0, 1, 2, 0), (0, 1, 2, 1), (0, 1, 2, 2), (0, 1, 0), (3, 3, 3)]
    # item 1 is closest to code 2, so it keeps it; the others take their cheapest free code
    costs = np.array([[0, 5, 1, 9], [9, 9, 0, 9], [0, 1, 2, 3], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=np.float32)
    moved = resolve_collisions(codes, "reassign", codebook_size=4, last_level_costs=lambda items: costs[items])
    assert moved == [(0, 1, 1), (0, 1, 2), (0, 1, 3), (0, 1, 0), (3, 3, 3)]
    # prefix (0, 1) has all 3 last-level codes taken: the third item moves to the sibling prefix (0, 2)
    assert resolve_collisions(codes, "reassign", codebook_size=3)[2] == (0, 2, 0)
    assert len(set(resolve_collisions(np.zeros((9, 2), dtype=int), "reassign", codebook_size=3))) == 9
    with pytest.raises(InputError, match="cannot make SIDs unique"):
        resolve_collisions(np.zeros((10, 2), dtype=int), "reassign", codebook_size=3)
    with pytest.raises(InputError, match="more than the 2 codes"):
        resolve_collisions(codes, "extra_level", codebook_size=2)


def test_bad_embeddings_are_clear_errors(tmp_path, emb_path):
    items = {str(i): {"title": f"t{i}"} for i in range(N + 1)}
    (tmp_path / "I.item.json").write_text(json.dumps(items))
    cfg = config(emb_path, tmp_path, item_json_path=str(tmp_path / "I.item.json"))
    with pytest.raises(InputError, match=f"has {N} rows but the item file has {N + 1} items"):
        build_sids(cfg)
    bad = np.load(emb_path)
    bad[4, 2] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(InputError, match=r"NaN or inf \(first rows: \[4\]\)"):
        build_sids(config(tmp_path / "nan.npy", tmp_path))
    with pytest.raises(InputError, match="fewer than codebook_size=256"):
        build_sids(dataclasses.replace(config(emb_path, tmp_path), codebook_size=256))
    with pytest.raises(InputError, match="collision_mode"):
        build_sids(config(emb_path, tmp_path, collision_mode="drop"))


def test_sinkhorn_spreads_a_crowded_code():
    import torch

    from minionerec.sid.rqvae import sinkhorn_assign

    distances = torch.tensor([[0.0, 1.0, 1.1, 1.2]] * 8) + torch.linspace(0, 0.01, 8)[:, None]
    assert (distances.argmin(1) == 0).all()
    codes = sinkhorn_assign(distances, epsilon=0.05, iters=100)
    assert torch.bincount(codes, minlength=4).max() <= 4  # argmin puts all 8 on code 0


def test_command_line_path_and_exit_code(tmp_path, emb_path):
    from minionerec.cli import run_stage
    from minionerec.sid.build import run_kmeans_method

    out = tmp_path / "cli.index.json"
    argv = ["--data_path", str(emb_path), "--output_path", str(out), "--num_levels", "2", "--codebook_size", "16",
            "--seed", "5"]
    run_stage(SidConfig, lambda cfg: run_kmeans_method(cfg, "rqkmeans_faiss"), argv)
    index = read_index_json(out)
    assert len(index) == N and all(len(s) == 2 for s in index.values())
    assert (tmp_path / "sid.config.yaml").is_file()
    with pytest.raises(SystemExit) as exit_info:
        run_stage(SidConfig, lambda cfg: run_kmeans_method(cfg, "rqkmeans_faiss"),
                  ["--data_path", str(tmp_path / "missing.npy"), "--output_path", str(out)])
    assert exit_info.value.code == 2


# --------------------------------------------------------------------------------------------
# Upstream parity (issue 19): per-level sizes, --uniform, RQ training choices, save_limit
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method,extra", [("rqkmeans_faiss", {}), ("rqkmeans_constrained", {"balance": "scalable"}),
                                          ("rqvae", {"e_dim": 8, "epochs": 10})])
def test_per_level_codebook_sizes(tmp_path, emb_path, method, extra):
    sizes = [16, 8, 4]
    report = build_sids(config(emb_path, tmp_path, method=method, codebook_sizes=sizes, **extra))
    index = read_index_json(tmp_path / "E.index.json")
    for level, size in enumerate(sizes):
        assert max(int(sid[level].split("_")[1].rstrip(">")) for sid in index.values()) < size
        assert report["levels"][level]["codes_used"] <= size
    assert report["codebook_sizes"] == sizes and report["codebook_size"] == 16
    assert not find_collisions(index) and sorted(index) == list(range(N))


def test_per_level_sizes_checks_and_the_trained_checkpoint(tmp_path, emb_path):
    with pytest.raises(InputError, match="one size >= 1 for each of the sid.num_levels=3"):
        build_sids(config(emb_path, tmp_path, codebook_sizes=[16, 8]))
    from minionerec.sid.build import generate_index

    build_sids(config(emb_path, tmp_path, method="rqvae", e_dim=8, epochs=10, codebook_sizes=[16, 8, 4]))
    with pytest.raises(InputError, match=r"levels of \[16, 8, 4\] codes"):
        generate_index(config(emb_path, tmp_path, method="rqvae", e_dim=8), "rqvae")


def test_per_level_sizes_in_the_collision_step():
    codes = np.array([[0, 0], [0, 0], [0, 0], [1, 0]])
    # level 1 has 2 codes: the third item of prefix (0,) moves to the sibling prefix (1,) of level 0 (4 codes)
    assert resolve_collisions(codes, "reassign", codebook_size=[4, 2]) == [(0, 0), (0, 1), (1, 1), (1, 0)]
    with pytest.raises(InputError, match="more than the 2 codes"):
        resolve_collisions(codes, "extra_level", codebook_size=[4, 2])


def test_sinkhorn_uniform_mapping_balances_every_level(tmp_path, emb_path):
    from minionerec.sid.quantize import sinkhorn_uniform_assign

    rng = np.random.default_rng(2)
    x = rng.normal(size=(103, 4)).astype(np.float32)
    x[:80] += 4  # most points crowd one region: nearest-centroid codes are unbalanced
    centroids = rng.normal(size=(10, 4)).astype(np.float32)
    codes = sinkhorn_uniform_assign(x, centroids, seed=42)
    assert sorted(np.bincount(codes, minlength=10).tolist()) == [10] * 7 + [11] * 3
    assert (sinkhorn_uniform_assign(x, centroids, seed=42) == codes).all()
    plain = build_sids(config(emb_path, tmp_path / "p", method="rqkmeans_faiss"))
    uniform = build_sids(config(emb_path, tmp_path / "u", method="rqkmeans_faiss", uniform=True))
    books = np.load(tmp_path / "u" / "E.codebooks.npz")["codes"]
    for level in range(3):
        assert np.bincount(books[:, level], minlength=K).max() <= -(-N // K)
    assert uniform["uniform"] and uniform["levels"][0]["normalised_entropy"] >= plain["levels"][0]["normalised_entropy"]
    with pytest.raises(InputError, match="rqkmeans_faiss option"):
        build_sids(config(emb_path, tmp_path / "c", method="rqkmeans_constrained", uniform=True))


def test_rq_learner_schedule_and_l1_loss(tmp_path, emb_path):
    import torch

    from minionerec.sid.rqvae import RQVAE, RQVAEArch, TrainSettings, build_optimizer, lr_factor

    model = RQVAE(RQVAEArch(in_dim=DIM, e_dim=4, layers=[8], num_levels=2, codebook_size=4))
    assert isinstance(build_optimizer(model, TrainSettings(learner="sgd")), torch.optim.SGD)
    assert isinstance(build_optimizer(model, TrainSettings(learner="AdamW")), torch.optim.AdamW)
    constant, linear = lr_factor("constant", 10, 100), lr_factor("linear", 10, 100)
    assert [constant(s) for s in (0, 9, 50, 99)] == [0.1, 1.0, 1.0, 1.0]
    assert [linear(s) for s in (0, 9, 54, 99)] == [0.1, 1.0, 0.5, 0.0]
    x = torch.randn(6, DIM)
    torch.manual_seed(0)
    mse = model.loss(x, loss_type="mse")
    l1 = model.loss(x, loss_type="l1")
    recon, quant, _ = model(x)
    assert torch.isclose(l1, torch.nn.functional.l1_loss(recon, x) + quant) and not torch.isclose(l1, mse)
    runs = {}
    for name, kw in {"default": {}, "sgd": {"learner": "sgd"}, "linear": {"lr_scheduler_type": "linear"},
                     "l1": {"loss_type": "l1"}}.items():
        build_sids(config(emb_path, tmp_path / name, method="rqvae", e_dim=8, epochs=10, warmup_epochs=2,
                          checkpoint="last", **kw))
        runs[name] = torch.load(tmp_path / name / "E.rqvae" / "last.pt", weights_only=True)["loss"]
    assert len(set(runs.values())) == 4  # each choice reaches the training loop


def test_save_limit_keeps_the_newest_rolling_checkpoints(tmp_path, emb_path):
    build_sids(config(emb_path, tmp_path, method="rqvae", e_dim=8, epochs=40, eval_step=5, save_limit=2))
    folder = tmp_path / "E.rqvae"
    assert sorted(p.name for p in folder.glob("epoch_*.pt")) == ["epoch_35.pt", "epoch_40.pt"]
    assert {"best_collision.pt", "best_loss.pt", "last.pt"} <= {p.name for p in folder.iterdir()}
    build_sids(config(emb_path, tmp_path / "none", method="rqvae", e_dim=8, epochs=10))
    assert not list((tmp_path / "none" / "E.rqvae").glob("epoch_*.pt"))


def test_upstream_rq_flags_reach_the_config():
    from minionerec.config import load_config, parse_cli

    line = ("--num_emb_list 256 128 64 --learner SGD --lr_scheduler_type linear --loss_type l1 --save_limit 5 "
            "--uniform true")
    cfg = load_config(SidConfig, *parse_cli(line.split()))
    assert (cfg.codebook_sizes, cfg.num_levels) == ([256, 128, 64], 3)
    assert (cfg.learner, cfg.lr_scheduler_type, cfg.loss_type, cfg.save_limit, cfg.uniform) == \
        ("SGD", "linear", "l1", 5, True)
