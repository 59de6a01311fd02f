"""Upstream MiniOneRec's flags: one alias table, refusals that name the key, and upstream's command lines."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from test_sft import N_ITEMS, config, make_dataset

from minionerec import llm, upstream
from minionerec.catalogue import CatalogueItem, write_info
from minionerec.config import CommonConfig, parse_cli
from minionerec.config import load_config as _load_config
from minionerec.convert import ConvertConfig
from minionerec.data import ProtocolOptions
from minionerec.errors import InputError
from minionerec.eval import EvaluateConfig
from minionerec.io import read_index_json, read_item_json, read_split_csv, write_split_csv
from minionerec.rl import RLConfig
from minionerec.sid import SidConfig, Text2EmbConfig
from minionerec.text import category_phrase

ROOT = Path(__file__).resolve().parents[1]


def load(schema: type, line: str):
    return _load_config(schema, *parse_cli(line.split()))


def test_sft_aliases_and_total_batch_as_upstream_derives_it(caplog, monkeypatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    upstream._announced.clear()
    with caplog.at_level(logging.INFO, logger="minionerec.upstream"):
        cfg = load(llm.SFTConfig, "--eval_file V.csv --sid_index_path I.json --item_meta_path I.item.json "
                   "--freeze_LLM True --batch_size 64 --micro_batch_size 8 --cutoff_len 256 --num_epochs 3 --sample 5")
        load(llm.SFTConfig, "--cutoff_len 128")
    assert (cfg.valid_file, cfg.index_path, cfg.item_json_path) == ("V.csv", "I.json", "I.item.json")
    assert cfg.freeze_llm and cfg.per_device_train_batch_size == 8 and cfg.gradient_accumulation_steps == 8
    assert (cfg.max_len, cfg.num_train_epochs, cfg.train_samples) == (256, 3.0, 5)
    assert sum("upstream's --cutoff_len is --sft.max_len here" in m for m in caplog.messages) == 1  # once
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert load(llm.SFTConfig, "--micro_batch_size 4 --batch_size 64").gradient_accumulation_steps == 8
    with pytest.raises(InputError, match="multiple of micro_batch_size"):
        load(llm.SFTConfig, "--micro_batch_size 8 --batch_size 12")
    assert load(llm.SFTConfig, "--sft.micro_batch_size 2").per_device_train_batch_size == 2  # qualified form


def test_rl_aliases_and_rl_sh_knobs_with_a_config(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("WANDB_NAME", raising=False)
    (tmp_path / "c.yaml").write_text("common: {workdir: w}\nrl: {data_dir: d}\n")
    knobs = ("--model_path m --train_batch_size 64 --eval_batch_size 128 --num_train_epochs 2 "
             "--gradient_accumulation_steps 2 --sample_train False --eval_step 0.0999 --reward_type ranking "
             "--num_generations 16 --mask_all_zero False --dynamic_sampling False --sync_ref_model True --beam_search "
             "True --test_during_training False --temperature 1.0 --learning_rate 1e-5 --add_gt False --beta 1e-3 "
             "--dapo False --output_dir o --wandb_run_name run1 --sid_index_path I.json --item_meta_path I.item.json")
    cfg = _load_config(RLConfig, *parse_cli([str(tmp_path / "c.yaml"), *knobs.split()]))
    assert (cfg.data_dir, cfg.model_path, cfg.per_device_train_batch_size) == ("d", "m", 64)
    assert cfg.rollout_mode == "beam_search"
    assert __import__("os").environ["WANDB_NAME"] == "run1"
    cfg = load(RLConfig, "--train_batch_size 32 --eval_step 0.0999 --reward_type rule --beam_search False "
               "--dapo True --test_beam 10 --sid_index_path I.json --item_meta_path I.item.json")
    assert (cfg.per_device_train_batch_size, cfg.eval_steps, cfg.rewards) == (32, 0.0999, {"rule": 1.0})
    assert (cfg.rollout_mode, cfg.loss_type, cfg.validation_beams) == ("sample", "dapo", 10)
    assert (cfg.index_path, cfg.item_json_path) == ("I.json", "I.item.json")
    assert load(RLConfig, "--beam_search True --gspo False").rollout_mode == "beam_search"


def test_evaluate_aliases_and_knobs_that_change_nothing() -> None:
    cfg = load(EvaluateConfig, "--base_model O --test_data_path T.csv --result_json_data R.json "
               "--exp_name x --max_new_tokens 256 --length_penalty 0.0 --batch_size 4 --num_beams 5")
    assert (cfg.model_path, cfg.test_file, cfg.result_json, cfg.name) == ("O", "T.csv", "R.json", "x")
    assert (cfg.batch_size, cfg.num_beams) == (4, 5)


def test_convert_data_rq_and_text2emb_aliases() -> None:
    cfg = load(ConvertConfig, "--dataset_name Office_Products --category Office_Products --data_dir D")
    assert (cfg.dataset, cfg.name, cfg.data_dir) == ("Office_Products", "Office_Products", "D")
    sid = load(SidConfig, "--num_emb_list 128 128 128 128 --dropout_prob 0.1 --bn True "
               "--pretrained_codebook_path C.npz")
    assert (sid.codebook_size, sid.num_levels, sid.dropout, sid.batch_norm) == (128, 4, 0.1, True)
    assert sid.codebook_path == "C.npz"
    emb = load(Text2EmbConfig, "--plm_name qwen --plm_checkpoint P --max_sent_len 2048 --word_drop_ratio -1")
    assert (emb.encoder_name, emb.model_path, emb.max_length) == ("qwen", "P", 2048)


@pytest.mark.parametrize(("schema", "line", "message"), [
    (RLConfig, "--sample_train True", "--rl.train_subset N"),
    (ProtocolOptions, "--metadata_file m.json", "--data.input_path"),
    (EvaluateConfig, "--temperature 1.0", "beam search"),
    (SidConfig, "--num_emb_list 256 0 64", "one codebook size >= 1 per level"),
    (SidConfig, "--uniform_typo 1", "unknown option"),
    (Text2EmbConfig, "--root data/x", "--text2emb.item_json_path"),
])
def test_a_flag_whose_meaning_differs_is_refused_with_the_key_to_use(schema, line, message) -> None:
    with pytest.raises(InputError, match=message) as caught:
        load(schema, line)
    assert "(command line)" in str(caught.value)


def test_category_maps_upstream_names_and_keeps_a_free_phrase() -> None:
    assert category_phrase("Industrial_and_Scientific") == "industrial and scientific items"
    assert category_phrase("Sports") == "sports and outdoors"
    assert category_phrase("Office_Products") == "office products"
    assert category_phrase("office products") == "office products"  # a phrase maps to itself
    assert llm.category_phrase("Industrial_and_Scientific", "Toy") == "industrial and scientific items"
    assert llm.category_phrase("", "Toys_and_Games") == "toys and games"
    assert llm.category_phrase("Sports", "x", "sporting goods") == "sporting goods"
    common = load(CommonConfig, "--common.category_phrase gadgets")
    assert common.category_phrase == "gadgets"


def test_help_prints_the_stage_alias_table() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "sft.py"), "--help"], capture_output=True, text=True, check=True)
    assert "upstream MiniOneRec flags" in out.stdout and "--micro_batch_size" in out.stdout
    assert "--micro_batch_size         is --per_device_train_batch_size" in out.stdout


def test_upstream_sft_and_evaluate_command_lines_run_unchanged(tmp_path: Path) -> None:
    root = make_dataset(tmp_path)
    llm.main(config(root, output_dir=root / "M", max_steps=1, eval_steps=1))  # a local tiny Qwen2 + tokenizer
    index = read_index_json(root / "Toy.index.json")
    titles = {i: r["title"] for i, r in read_item_json(root / "Toy.item.json").items()}
    write_info(root / "F.txt", [CatalogueItem(index[i], titles[i], i) for i in range(N_ITEMS)])
    write_split_csv(root / "TEST.csv", read_split_csv(root / "llm" / "valid" / "Toy.csv")[:6])

    def run(script: str, line: str) -> str:
        result = subprocess.run([sys.executable, str(ROOT / script), *line.split()], cwd=root, capture_output=True,
                                text=True, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stderr

    log = run("sft.py", "--base_model M --train_file llm/train/Toy.csv --eval_file llm/valid/Toy.csv --output_dir O "
              "--category Industrial_and_Scientific --train_from_scratch False --seed 42 --sid_index_path "
              "Toy.index.json --item_meta_path Toy.item.json --freeze_LLM False --batch_size 16 "
              "--micro_batch_size 8 --num_epochs 1 --sample 64")
    assert "upstream's --micro_batch_size is --sft.per_device_train_batch_size here" in log
    summary = json.loads((root / "O" / "sft.summary.json").read_text())
    saved = (root / "O" / "sft.config.yaml").read_text()
    assert "gradient_accumulation_steps: 2" in saved and "train_samples: 64" in saved
    assert summary["global_step"] >= 1

    run("evaluate.py", "--base_model O --info_file F.txt --category Industrial_and_Scientific --test_data_path "
        "TEST.csv --result_json_data R.json --batch_size 16 --num_beams 5")
    records = json.loads((root / "R.json").read_text())
    assert len(records) == 6 and all(set(r) == {"input", "output", "predict"} for r in records)
    assert all(len(r["predict"]) == 5 and r["output"].endswith("\n") for r in records)


def test_readme_table_is_the_alias_table() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert upstream.markdown_table() in readme


@pytest.mark.parametrize("name", ["industrial", "office"])
def test_paper_configs_train_upstreams_task_mixture(name: str) -> None:
    path = ROOT / "configs" / f"{name}.yaml"
    weights = _load_config(llm.SFTConfig, path).task_weights
    assert {t for t, w in weights.items() if w > 0} == {"next_sid", "sid2title", "title2sid", "sid_history2title",
                                                        "title_history2title", "title_history2sid"}
    assert {w for w in weights.values() if w > 0} == {1.0}  # upstream concatenates each dataset once
    cfg = _load_config(RLConfig, path)
    assert set(cfg.tasks) == {"next_sid", "title2sid", "description2sid", "title_history2sid"}
    assert cfg.item_json_path.endswith(".item.json")  # descriptions for description2sid
