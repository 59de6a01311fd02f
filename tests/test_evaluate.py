"""evaluate.py: end-to-end on a tiny checkpoint, metrics subcommand, bad input, 2 processes == 1."""

from __future__ import annotations

import json
import math
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import build_model, build_tokenizer, cpu_ranks_env, root_script

from minionerec.catalogue import CatalogueItem, write_info
from minionerec.config import load_config
from minionerec.errors import InputError
from minionerec.eval import (
    EvaluateConfig,
    compare_command,
    metrics_command,
    metrics_from_files,
    run_evaluation,
    run_fingerprint,
)
from minionerec.io import SplitRow, read_json, write_split_csv
from minionerec.metrics import compare_predictions
from minionerec.sid import parse_sid, sid_vocabulary

ROOT = Path(__file__).resolve().parents[1]


def _make_experiment(folder: Path, n_users: int = 9) -> dict[str, Path]:
    rng = random.Random(0)
    sids = sorted({f"<a_{rng.randrange(4)}><b_{rng.randrange(4)}><c_{rng.randrange(3)}>" for _ in range(30)})
    sids.append(sids[0] + "<d_0>")
    items = [CatalogueItem(parse_sid(s), f"item {i}", i) for i, s in enumerate(sids)]
    items.append(CatalogueItem(parse_sid(sids[1]), "collides with item 1", len(items)))
    write_info(folder / "info.txt", items)
    rows = []
    for u in range(n_users):
        hist = rng.sample(range(len(items)), rng.randint(1, 4))
        target = rng.randrange(len(items))
        rows.append(SplitRow(f"A{u}", tuple(items[h].title for h in hist), items[target].title, tuple(hist), target,
                             tuple(items[h].sid_string for h in hist), items[target].sid_string))
    write_split_csv(folder / "test.csv", rows)
    tokenizer = build_tokenizer(sid_vocabulary([parse_sid(s) for s in sids]))
    model = build_model(len(tokenizer), seed=3)
    model.generation_config.do_sample = True  # a checkpoint default that must not leak into decoding
    model.generation_config.top_k = 1
    model.save_pretrained(folder / "ckpt")
    tokenizer.save_pretrained(folder / "ckpt")
    return {"model": folder / "ckpt", "test": folder / "test.csv", "info": folder / "info.txt"}


pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    return _make_experiment(tmp_path_factory.mktemp("evaluate"))


def _cfg(experiment, out: Path, **extra) -> EvaluateConfig:
    overrides = {"model_path": str(experiment["model"]), "test_file": str(experiment["test"]),
                 "info_file": str(experiment["info"]), "output_dir": str(out), "num_beams": 6, "batch_size": 4,
                 "device": "cpu", "allow_shared_sids": True} | extra  # the fixture has one shared SID
    return load_config(EvaluateConfig, None, overrides)


@pytest.fixture(scope="module")
def one_process(experiment, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval1")
    metrics = run_evaluation(_cfg(experiment, out))
    return out, metrics


def test_evaluate_writes_upstream_predictions_and_metrics(experiment, one_process):
    out, metrics = one_process
    records = read_json(out / "predictions.json")
    assert len(records) == 9
    for r in records:
        assert set(r) == {"input", "output", "predict", "item_id"}
        assert r["output"].endswith("\n") and "### Response:\n" in r["input"]
        assert len(r["predict"]) == 6 and len(set(r["predict"])) == 6
    saved = read_json(out / "metrics.json")
    assert saved["CC"] == 0 and saved["ks"] == [1, 3, 5]
    assert saved["timing"]["num_processes"] == 1 and saved["timing"]["users_per_second"] > 0
    assert (out / "evaluate.config.yaml").is_file()
    assert not (out / "partial").exists()
    recomputed = metrics_from_files(out / "predictions.json", experiment["info"], ks=(1, 3, 5))
    assert recomputed == {k: saved[k] for k in recomputed}


def test_metrics_subcommand_prints_json(experiment, one_process, capsys):
    out, _ = one_process
    result = metrics_command(["--result_json", str(out / "predictions.json"), "--info_file",
                                       str(experiment["info"]), "--ks", "1,5"])
    printed = json.loads(capsys.readouterr().out)
    assert printed == result and printed["ks"] == [1, 5]


def test_resume_reuses_finished_batches(experiment, one_process, tmp_path):
    out, _ = one_process
    records = read_json(out / "predictions.json")
    cfg = _cfg(experiment, tmp_path)
    partial = tmp_path / "partial" / f"rank0-of-1-{run_fingerprint(cfg)}.jsonl"
    partial.parent.mkdir()
    (tmp_path / "partial" / "rank0-of-1-0123456789ab.jsonl").write_text(  # another run's leftovers: ignored
        json.dumps(["<a_1><b_1><c_1>"] * 6) + "\n", encoding="utf-8")
    fake = [["<a_0><b_0><c_0>"] * 6] * 4   # what a killed run left behind; must be reused verbatim
    partial.write_text("".join(json.dumps(p) + "\n" for p in fake) + '["torn', encoding="utf-8")
    run_evaluation(cfg)
    resumed = read_json(tmp_path / "predictions.json")
    assert [r["predict"] for r in resumed[:4]] == fake
    assert [r["predict"] for r in resumed[4:]] == [r["predict"] for r in records[4:]]
    assert not (tmp_path / "partial").exists()


def test_bad_inputs_are_clear_errors(experiment, tmp_path):
    with pytest.raises(InputError, match="num_beams"):
        run_evaluation(_cfg(experiment, tmp_path, num_beams=500))
    bad_info = tmp_path / "bad_info.txt"
    bad_info.write_text("<a_1><b_1><c_1>\tno item id\n", encoding="utf-8")
    with pytest.raises(InputError, match="bad_info.txt:1"):
        run_evaluation(_cfg(experiment, tmp_path, info_file=str(bad_info)))
    # a target missing from the catalogue
    lines = experiment["info"].read_text(encoding="utf-8").splitlines()
    test_rows = experiment["test"].read_text(encoding="utf-8").splitlines()
    first_target = test_rows[1].rsplit(",", 1)[1]
    pruned = tmp_path / "pruned_info.txt"
    pruned.write_text("\n".join(l for l in lines if not l.startswith(first_target + "\t")) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="test.csv:2: target SID"):
        run_evaluation(_cfg(experiment, tmp_path, info_file=str(pruned)))
    # a tokenizer without the SID tokens
    plain = tmp_path / "plain"
    shutil.copytree(experiment["model"], plain)
    build_tokenizer([]).save_pretrained(plain)
    with pytest.raises(InputError, match="lacks"):
        run_evaluation(_cfg(experiment, tmp_path, model_path=str(plain)))


def test_two_processes_equal_one(experiment, one_process, tmp_path):
    out1, _ = one_process
    env = cpu_ranks_env(PYTHONPATH=str(ROOT), NUM_PROCESSES="2", MAIN_PROCESS_PORT="29537")
    # evaluate.sh's launcher: accelerate's torchrun path starts 2 gloo ranks on CPU; device "auto" must see both
    cmd = ["bash", str(ROOT / "evaluate.sh"), "--model_path", str(experiment["model"]), "--test_file", str(experiment["test"]),
           "--info_file", str(experiment["info"]), "--output_dir", str(tmp_path), "--num_beams", "6",
           "--batch_size", "4", "--allow_shared_sids", "true"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    two = read_json(tmp_path / "metrics.json")
    assert two["timing"]["num_processes"] == 2
    assert read_json(tmp_path / "predictions.json") == read_json(out1 / "predictions.json")
    one = read_json(out1 / "metrics.json")
    assert {k: two[k] for k in ("sid_level", "item_level", "CC", "n_samples")} == \
           {k: one[k] for k in ("sid_level", "item_level", "CC", "n_samples")}


def test_metrics_from_files_hand_computed(tmp_path):
    info = tmp_path / "info.txt"
    write_info(info, [CatalogueItem(parse_sid("<a_1><b_1><c_1>"), "x", 0),
                      CatalogueItem(parse_sid("<a_1><b_1><c_2>"), "y", 1),
                      CatalogueItem(parse_sid("<a_1><b_1><c_2>"), "y twin", 2),   # collides with item 1
                      CatalogueItem(parse_sid("<a_2><b_1><c_1>"), "z", 3)])
    records = [
        # hit at rank 0
        {"input": "p", "output": "<a_1><b_1><c_1>\n", "predict": ["<a_1><b_1><c_1>", "<a_2><b_1><c_1>"], "item_id": 0},
        # duplicate removed before ranking, then hit at rank 1; an invalid prediction counts in CC
        {"input": "p", "output": "<a_2><b_1><c_1>\n", "predict": ["<a_9><b_9><c_9>", "<a_9><b_9><c_9>", "<a_2><b_1><c_1>"],
         "item_id": 3},
        # colliding SID: a SID-level hit at rank 0, item level ranks item 1 before item 2 -> rank 1
        {"input": "p", "output": "<a_1><b_1><c_2>\n", "predict": ["<a_1><b_1><c_2>", "<a_1><b_1><c_1>"], "item_id": 2},
        # miss
        {"input": "p", "output": "<a_1><b_1><c_1>\n", "predict": ["<a_2><b_1><c_1>", "<a_1><b_1><c_2>"], "item_id": 0},
    ]
    result_json = tmp_path / "r.json"
    result_json.write_text(json.dumps(records), encoding="utf-8")
    m = metrics_from_files(result_json, info, ks=(1, 3))
    assert m["CC"] == 2
    assert m["sid_level"]["HR@1"] == pytest.approx(2 / 4)
    assert m["sid_level"]["NDCG@3"] == pytest.approx((1 + 1 / math.log2(3) + 1 + 0) / 4)
    # item level: invalid SIDs expand to no items, so record 2's target ranks 0 there
    assert m["item_level"]["HR@1"] == pytest.approx(2 / 4)
    assert m["item_level"]["NDCG@3"] == pytest.approx((1 + 1 + 1 / math.log2(3)) / 4)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"input": "p", "predict": []}]), encoding="utf-8")
    with pytest.raises(InputError, match="record 0"):
        metrics_from_files(bad, info)


def test_compare_gives_paired_deltas_and_refuses_different_rows(tmp_path, capsys):
    def write(name, predicts, outputs=None):
        outputs = outputs or ["<a_1><b_1>"] * len(predicts)
        path = tmp_path / name
        path.write_text(json.dumps([{"input": f"p{i}", "output": o + "\n", "predict": p}
                                    for i, (p, o) in enumerate(zip(predicts, outputs))]), encoding="utf-8")
        return path

    # A: a hit at rank 1 on every row; B: the same row set with the hit moved to rank 0 on half the rows
    a = write("a.json", [["<a_2><b_1>", "<a_1><b_1>"]] * 40)
    b = write("b.json", [["<a_1><b_1>", "<a_2><b_1>"]] * 20 + [["<a_2><b_1>", "<a_1><b_1>"]] * 20)
    result = compare_command(["--a", str(a), "--b", str(b), "--ks", "1,2", "--n_resamples", "500"])
    assert json.loads(capsys.readouterr().out)["HR@1"]["delta"] == pytest.approx(0.5)
    assert result["HR@2"]["delta"] == 0 and not result["HR@2"]["significant"]
    ndcg = result["NDCG@2"]
    assert ndcg["delta"] == pytest.approx(0.5 * (1 - 1 / math.log2(3)))
    assert ndcg["significant"] and ndcg["ci_low"] > 0
    other = write("other.json", [["<a_1><b_1>"]] * 40, ["<a_2><b_1>"] * 40)
    with pytest.raises(InputError, match="row 0 differs"):
        compare_predictions(a, other)
    with pytest.raises(InputError, match="40 rows"):
        compare_predictions(a, write("short.json", [["<a_1><b_1>"]] * 39))


@pytest.mark.slow
def test_industrial_catalogue_decodes_valid_distinct_items(tmp_path):
    """Real data: the Industrial info/test files, a random tiny checkpoint, B=50 on a few users."""
    from conftest import shared_path

    info = shared_path("minionerec_amazon", "info", "Industrial_and_Scientific_5_2016-10-2018-11.txt")
    test = shared_path("minionerec_amazon", "test", "Industrial_and_Scientific_5_2016-10-2018-11.csv")
    from minionerec.catalogue import read_info

    sids = [i.sid_string for i in read_info(info)]
    tokenizer = build_tokenizer(sid_vocabulary([parse_sid(s) for s in sids]))
    model = build_model(len(tokenizer), seed=0)
    model.save_pretrained(tmp_path / "ckpt")
    tokenizer.save_pretrained(tmp_path / "ckpt")
    cfg = load_config(EvaluateConfig, None, {
        "model_path": str(tmp_path / "ckpt"), "test_file": str(test), "info_file": str(info),
        "output_dir": str(tmp_path / "out"), "num_beams": 50, "batch_size": 8, "max_samples": 16, "device": "cpu",
        "allow_shared_sids": True})  # upstream's released index shares 15 SIDs
    metrics = run_evaluation(cfg)
    assert metrics["CC"] == 0 and metrics["n_samples"] == 16
    for record in read_json(tmp_path / "out" / "predictions.json"):
        assert len(set(record["predict"])) == 50


def test_the_stage_config_lives_in_the_package_and_the_root_script_reexports_it():
    evaluate = root_script("evaluate")

    assert EvaluateConfig.__module__ == "minionerec.eval.evaluate"
    assert evaluate.EvaluateConfig is EvaluateConfig and evaluate.main is run_evaluation


def test_length_penalty_is_recorded_and_keeps_the_ranking_of_equal_length_sids(experiment, one_process, tmp_path):
    out, _ = one_process
    metrics = run_evaluation(_cfg(experiment, tmp_path, length_penalty=2.0))
    assert metrics["length_penalty"] == 2.0 and "length_penalty" not in read_json(out / "metrics.json")
    # every SID of the fixture has three tokens + EOS: dividing by the same length**2 keeps the order
    assert [r["predict"] for r in read_json(tmp_path / "predictions.json")] == \
        [r["predict"] for r in read_json(out / "predictions.json")]


def test_upstreams_length_penalty_flag_reaches_the_search():
    from minionerec.upstream import ALIASES, Alias

    assert ALIASES["evaluate"]["length_penalty"] == Alias("length_penalty")
