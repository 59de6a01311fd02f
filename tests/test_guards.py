"""Guards where a run would otherwise be silently wrong: shared SIDs, degenerate embeddings, bad weight files,
BOM CSVs, empty histories, RL's beam keys, and third-party log noise."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from minionerec.catalogue import CatalogueItem, read_info, write_info
from minionerec.checkpoints import (
    load_safetensors_file,
    load_torch_file,
    read_model_weights,
    resume_errors,
    without_tied_missing_keys,
)
from minionerec.config import load_config
from minionerec.errors import InputError
from minionerec.io import InterRow, SplitRow, read_split_csv, write_index_json, write_split_csv
from minionerec.sid import check_shared_sids, codes_to_sid, load_embeddings, sid_to_string

SIDS = [codes_to_sid((i // 4, i % 4, 0)) for i in range(8)]


def shared_catalogue(folder: Path) -> Path:
    """An info file of 8 items where items 6 and 7 share one SID."""
    items = [CatalogueItem(SIDS[i], f"title {i}", i) for i in range(7)] + [CatalogueItem(SIDS[6], "title 7", 7)]
    return write_info(folder / "info" / "Toy.txt", items)


def rows(n: int) -> list[SplitRow]:
    out = []
    for r in range(n):
        hist, target = [r % 6, (r + 1) % 6], (r + 2) % 6
        out.append(SplitRow(f"A{r}", tuple(f"title {i}" for i in hist), f"title {target}", tuple(hist), target,
                            tuple(sid_to_string(SIDS[i]) for i in hist), sid_to_string(SIDS[target])))
    return out


# --------------------------------------------------------------------------------------------
# Shared SIDs
# --------------------------------------------------------------------------------------------

def test_check_shared_sids_refuses_names_the_file_and_allows_on_request(caplog):
    index = {0: SIDS[0], 1: SIDS[1], 2: SIDS[1], 3: SIDS[1]}
    with pytest.raises(InputError) as err:
        check_shared_sids(index, "idx.json", allow_shared_sids=False)
    text = str(err.value)
    assert "idx.json" in text and "3 of 4 items share 1 SID" in text and "items [1, 2, 3]" in text
    assert "allow_shared_sids: true" in text and "collision_mode" in text
    with caplog.at_level(logging.WARNING):
        assert check_shared_sids(index, "idx.json", allow_shared_sids=True) == 3
    assert "allowed by allow_shared_sids" in caplog.text
    assert check_shared_sids({0: SIDS[0], 1: SIDS[1]}, "idx.json", allow_shared_sids=False) == 0


def test_allow_shared_sids_is_a_common_key_every_llm_stage_reads(tmp_path):
    from minionerec.eval import EvaluateConfig
    from minionerec.llm import SFTConfig
    from minionerec.rl import RLConfig

    config = tmp_path / "c.yaml"
    config.write_text("common:\n  allow_shared_sids: true\n")
    for schema in (SFTConfig, RLConfig, EvaluateConfig):
        assert load_config(schema, config).allow_shared_sids is True
        assert load_config(schema, None).allow_shared_sids is False


def test_evaluate_refuses_shared_sids_before_loading_a_model(tmp_path):
    from minionerec.eval import EvaluateConfig, run_evaluation

    info = shared_catalogue(tmp_path)
    write_split_csv(tmp_path / "test.csv", rows(3))
    cfg = load_config(EvaluateConfig, None, {"info_file": str(info), "test_file": str(tmp_path / "test.csv"),
                                             "model_path": str(tmp_path / "no_model"), "device": "cpu"})
    with pytest.raises(InputError, match=r"Toy.txt: 2 of 8 items share 1 SID.*allow_shared_sids"):
        run_evaluation(cfg)


def test_rl_refuses_shared_sids(tmp_path):
    from minionerec.rl import RLConfig, main

    shared_catalogue(tmp_path)
    write_split_csv(tmp_path / "train" / "Toy.csv", rows(4))
    cfg = load_config(RLConfig, None, {"common.dataset": "Toy", "rl.data_dir": str(tmp_path),
                                       "rl.output_dir": str(tmp_path / "rl"), "rl.model_path": str(tmp_path / "x")})
    with pytest.raises(InputError, match=r"Toy.txt: 2 of 8 items share 1 SID"):
        main(cfg)


def test_sft_refuses_a_shared_sid_index_and_trains_on_it_when_allowed(tmp_path):
    from minionerec.llm import SFTConfig, load_sft_data

    write_index_json(tmp_path / "Toy.index.json", {i: SIDS[min(i, 6)] for i in range(8)})
    info = shared_catalogue(tmp_path)
    write_split_csv(tmp_path / "train" / "Toy.csv", rows(4))
    base = {"common.dataset": "Toy", "sft.data_dir": str(tmp_path), "sft.index_path": str(tmp_path / "Toy.index.json"),
            "sft.info_file": str(info), "sft.item_json_path": ""}
    with pytest.raises(InputError, match=r"Toy.index.json: 2 of 8 items share 1 SID"):
        load_sft_data(load_config(SFTConfig, None, base))
    loaded = load_sft_data(load_config(SFTConfig, None, base | {"common.allow_shared_sids": "true"}))
    assert len(loaded.items) == 8


def test_report_shows_item_level_beside_sid_level_when_sids_are_shared():
    from minionerec.report import markdown_table, shared_sid_lines

    metrics = {"sid_level": {"HR@3": 0.2083}, "item_level": {"HR@3": 0.1667}, "shared_sid_items": 2}
    rows_ = {"sft": {"metrics": metrics, "source": "m.json"}}
    lines = shared_sid_lines(rows_)
    assert "2 items share SIDs" in lines[0]
    assert "0.1667" in "\n".join(lines) and "0.2083" in markdown_table(rows_)
    assert shared_sid_lines({"sft": {"metrics": {"sid_level": {}, "item_level": {}, "shared_sid_items": 0}}}) == []


# --------------------------------------------------------------------------------------------
# Degenerate embeddings
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make, message", [
    (lambda x: x.__setitem__((3, 1), np.nan), r"1 row\(s\) contain NaN or inf"),
    (lambda x: x.__setitem__(slice(2, 5), 0.0), r"3 of 20 row\(s\) are all zeros"),
    (lambda x: x.__setitem__(slice(None), x[0]), r"all 20 rows are identical"),
    (lambda x: x.__setitem__(slice(3, None), x[0]), r"only 3 distinct rows among 20 \(17 duplicates\).*codebook_size=8"),
])
def test_degenerate_embeddings_are_one_clear_error(tmp_path, make, message):
    x = np.random.RandomState(0).rand(20, 6).astype(np.float32)
    make(x)
    path = tmp_path / "emb.npy"
    np.save(path, x)
    with pytest.raises(InputError, match=message) as err:
        load_embeddings(path, codebook_size=8)
    assert str(path) in str(err.value)


def test_a_few_duplicate_embedding_rows_pass(tmp_path):
    x = np.random.RandomState(0).rand(20, 6).astype(np.float32)
    x[1] = x[0]
    np.save(tmp_path / "emb.npy", x)
    assert load_embeddings(tmp_path / "emb.npy", codebook_size=8).shape == (20, 6)


def test_sid_stage_refuses_degenerate_embeddings_before_clustering(tmp_path):
    from minionerec.sid import SidConfig, run_kmeans_method

    np.save(tmp_path / "emb.npy", np.ones((20, 6), dtype=np.float32))
    cfg = load_config(SidConfig, None, {"data_path": str(tmp_path / "emb.npy"), "codebook_size": "4",
                                        "output_path": str(tmp_path / "x.index.json")})
    with pytest.raises(InputError, match="all 20 rows are identical"):
        run_kmeans_method(cfg, "rqkmeans_faiss")
    assert not (tmp_path / "x.index.json").exists()


def test_faiss_kmeans_prints_no_training_points_warning(capfd):
    from minionerec.sid import faiss_kmeans

    faiss_kmeans(np.random.RandomState(0).rand(40, 4).astype(np.float32), 4, 2, 0)
    assert "training points" not in capfd.readouterr().err


# --------------------------------------------------------------------------------------------
# Weight and checkpoint files
# --------------------------------------------------------------------------------------------

class Payload:
    """A pickled object: weights_only=True refuses it."""


def test_pickle_and_truncated_weight_files_name_the_file_and_the_fix(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    with open(folder / "pytorch_model.bin", "wb") as f:
        pickle.dump({"w": Payload()}, f)
    with pytest.raises(InputError) as err:
        read_model_weights(folder)
    assert "pytorch_model.bin" in str(err.value) and "re-save the model folder" in str(err.value)
    assert "\n" not in str(err.value)

    from safetensors.torch import save_file

    save_file({"w": torch.zeros(64, 64)}, str(folder / "model.safetensors"))
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"model.safetensors is not a readable safetensors file"):
        read_model_weights(folder)
    with pytest.raises(InputError, match="not found"):
        load_safetensors_file(tmp_path / "absent.safetensors", "CF model weights", "train it")


def test_ref_model_and_train_state_files_go_through_the_loader(tmp_path):
    (tmp_path / "ref_model.pt").write_bytes(b"not a torch file")
    with pytest.raises(InputError, match=r"synced reference model .*ref_model.pt cannot be read.*delete"):
        load_torch_file(tmp_path / "ref_model.pt", "synced reference model", "delete the checkpoint folder")
    torch.save({"a": torch.ones(2)}, tmp_path / "ok.pt")
    assert torch.equal(load_torch_file(tmp_path / "ok.pt", "x", "y")["a"], torch.ones(2))


def test_train_state_error_names_the_file_and_the_fix(tmp_path):
    from minionerec.baselines import TRAIN_STATE

    (tmp_path / TRAIN_STATE).write_bytes(b"\x80garbage")
    with pytest.raises(InputError, match=r"baseline training state .*train_state.pt.*delete it"):
        load_torch_file(tmp_path / TRAIN_STATE, "baseline training state", "delete it to train from scratch")


def test_resume_errors_names_the_checkpoint_only_for_hf_loader_failures(tmp_path):
    def _load_rng_state():
        raise pickle.UnpicklingError("Weights only load failed.\nmany lines")

    with pytest.raises(InputError) as err:
        with resume_errors(tmp_path / "checkpoint-5"):
            _load_rng_state()
    assert "checkpoint-5" in str(err.value) and "rng_state" in str(err.value) and "delete that checkpoint" in str(err.value)
    with pytest.raises(ValueError):  # an error of training itself is not blamed on the checkpoint
        with resume_errors(tmp_path / "checkpoint-5"):
            raise ValueError("loss is nan")
    with pytest.raises(pickle.UnpicklingError):  # no resume: nothing to blame
        with resume_errors(None):
            _load_rng_state()


def test_hf_trainer_resume_with_a_corrupt_rng_state_is_an_input_error(tmp_path):
    from transformers import Trainer, TrainingArguments

    from minionerec.checkpoints import TiedWeightsLoadMixin

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 1)

        def forward(self, x, labels=None):
            loss = ((self.lin(x).squeeze(-1) - labels) ** 2).mean()
            return {"loss": loss}

    data = [{"x": torch.ones(2), "labels": torch.tensor(1.0)} for _ in range(4)]
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=2, save_steps=1, per_device_train_batch_size=2,
                             report_to="none", use_cpu=True, logging_strategy="no", save_strategy="steps")

    class T(TiedWeightsLoadMixin, Trainer):
        pass

    T(model=Tiny(), args=args, train_dataset=data).train()
    checkpoint = tmp_path / "checkpoint-1"
    for rng in checkpoint.glob("rng_state*.pth"):
        rng.write_bytes(b"corrupt")
    args.max_steps = 3
    trainer = T(model=Tiny(), args=args, train_dataset=data)
    with pytest.raises(InputError, match=r"checkpoint-1 cannot be resumed from: rng_state"):
        with resume_errors(checkpoint):
            trainer.train(resume_from_checkpoint=str(checkpoint))


def test_unreadable_model_folder_in_evaluate_is_named(tmp_path):
    from minionerec.eval import load_checkpoint

    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text("{not json")
    with pytest.raises(InputError, match=r"model folder .*ckpt cannot be loaded.*re-run the stage"):
        load_checkpoint(folder, torch.device("cpu"), torch.float32)


def test_tied_head_is_not_a_missing_key_but_a_real_one_is():
    from minionerec.llm import TinyModelSpec, build_tiny_qwen2

    model = build_tiny_qwen2(50, TinyModelSpec(hidden_size=16, num_layers=1, num_heads=2, num_kv_heads=1,
                                               intermediate_size=32), 1, 0)
    state = {k: v for k, v in model.state_dict().items() if k != "lm_head.weight"}
    assert without_tied_missing_keys(model, model.load_state_dict(state, strict=False)).missing_keys == []
    del state["model.norm.weight"]
    assert without_tied_missing_keys(model, model.load_state_dict(state, strict=False)).missing_keys == [
        "model.norm.weight"]


def test_deepspeed_cpu_notice_is_filtered_without_cuda():
    from minionerec.cli import setup_logging

    setup_logging()
    ds = logging.getLogger("DeepSpeed")
    notice = ds.makeRecord("DeepSpeed", logging.WARNING, "x", 1, "Setting accelerator to CPU. If you have GPU", (), None)
    other = ds.makeRecord("DeepSpeed", logging.WARNING, "x", 1, "something else", (), None)
    assert ds.filter(notice) == torch.cuda.is_available()
    assert ds.filter(other)


def test_trl_gradient_checkpointing_deprecation_is_silenced_and_other_future_warnings_are_not():
    import warnings

    from minionerec.cli import setup_logging

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        setup_logging()
        warnings.warn("`is_gradient_checkpointing` is deprecated and will be removed in v6.", FutureWarning)
        warnings.warn("something else is deprecated", FutureWarning)
    assert [str(w.message) for w in caught] == ["something else is deprecated"]


# --------------------------------------------------------------------------------------------
# Smaller items
# --------------------------------------------------------------------------------------------

def test_csv_and_info_with_a_utf8_bom_read(tmp_path):
    path = write_split_csv(tmp_path / "t.csv", rows(2))
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert [r.user_id for r in read_split_csv(path)] == ["A0", "A1"]
    info = write_info(tmp_path / "i.txt", [CatalogueItem(SIDS[0], "t", 0)])
    info.write_bytes(b"\xef\xbb\xbf" + info.read_bytes())
    assert read_info(info)[0].item_id == 0


def test_convert_drops_empty_history_rows_with_one_warning(tmp_path, caplog):
    from minionerec.convert import split_rows

    index = {i: SIDS[i] for i in range(4)}
    items = {i: {"title": f"title {i}"} for i in range(4)}
    inter = [InterRow(1, (), 0), InterRow(1, (0,), 1), InterRow(2, (), 2)]
    with caplog.at_level(logging.WARNING):
        out = split_rows(inter, items, index, tmp_path / "Toy.train.inter")
    assert [r.item_id for r in out] == [1]
    assert "dropped 2 row(s) with an empty history" in caplog.text
    path = tmp_path / "empty.csv"
    write_split_csv(path, [SplitRow("A1", (), "t", (), 0, (), sid_to_string(SIDS[0]))])
    with pytest.raises(InputError, match="convert_dataset.py, which drops such rows"):
        read_split_csv(path)


def test_rl_beam_count_error_names_rl_keys(tmp_path):
    from minionerec.decoding import check_num_beams

    class Trie:
        num_sids = 5

    with pytest.raises(InputError) as err:
        check_num_beams(8, Trie(), "info.txt", option="rl.num_generations")
    assert "set rl.num_generations to 5 or fewer" in str(err.value) and "--num_beams" not in str(err.value)


def test_trainer_loading_the_best_tied_model_warns_only_without_the_mixin(tmp_path):
    from transformers import Trainer, TrainingArguments
    from transformers.utils import logging as hf_logging

    from minionerec.checkpoints import TiedWeightsLoadMixin
    from minionerec.llm import TinyModelSpec, build_tiny_qwen2

    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    handler = Collect()
    hf_logging.get_logger("transformers").addHandler(handler)
    spec = TinyModelSpec(hidden_size=16, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=32)
    data = [{"input_ids": torch.arange(6), "labels": torch.arange(6)} for _ in range(4)]
    warned = {}
    try:
        for name, bases in (("plain", (Trainer,)), ("mixin", (TiedWeightsLoadMixin, Trainer))):
            messages.clear()
            args = TrainingArguments(output_dir=str(tmp_path / name), max_steps=2, save_steps=1, eval_steps=1,
                                     eval_strategy="steps", per_device_train_batch_size=2, report_to="none",
                                     use_cpu=True, load_best_model_at_end=True, logging_strategy="no",
                                     disable_tqdm=True)
            trainer = type("T", bases, {})(model=build_tiny_qwen2(50, spec, 1, 0), args=args, train_dataset=data,
                                           eval_dataset=data)
            trainer.train()
            warned[name] = any("missing keys" in m and "lm_head.weight" in m for m in messages)
    finally:
        hf_logging.get_logger("transformers").removeHandler(handler)
    assert warned == {"plain": True, "mixin": False}


def test_gpr_converter_keeps_its_side_columns_aligned_when_empty_histories_are_dropped(tmp_path):
    from minionerec.convert import split_rows
    from minionerec.gpr import gpr_rows

    index = {i: SIDS[i] for i in range(3)}
    items = {i: {"title": f"title {i}"} for i in range(3)}
    inter = [InterRow(1, (), 0), InterRow(1, (0,), 1), InterRow(2, (), 0), InterRow(2, (0,), 2)]
    plain = split_rows(inter, items, index, tmp_path / "T.train.inter")
    contexts = [(1, 0, "[E0]"), (1, 1, "[E1]"), (2, 0, "[E2]"), (2, 2, "[E3]")]
    out = gpr_rows(inter, plain, contexts, {1: "[U1]", 2: "[U2]"}, {0: "I", 1: "O", 2: "I"},
                   tmp_path / "T.train.inter", tmp_path / "T.train.ctx")
    assert [(r.row.item_id, r.context_token, r.user_token, r.target_type) for r in out] == [
        (1, "[E1]", "[U1]", "O"), (2, "[E3]", "[U2]", "I")]
