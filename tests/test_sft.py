"""SFT (minionerec.llm, run by sft.py): response-only loss, padding, prompts shared with RL/evaluation, training, resume, bad input."""

from __future__ import annotations

import json
import math
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import cpu_ranks_env

import minionerec.llm.sft as sft_stage
from minionerec import llm
from minionerec.config import load_config
from minionerec.errors import InputError
from minionerec.io import SplitRow, write_index_json, write_split_csv
from minionerec.sid import codes_to_sid, sid_to_string

ROOT = Path(__file__).resolve().parents[1]
N_ITEMS = 24


def make_dataset(root: Path, n_users: int = 40, seed: int = 0) -> Path:
    """A tiny upstream-layout dataset with a planted rule: item i is followed by item i+1."""
    rng = random.Random(seed)
    index = {i: codes_to_sid([i % 4, (i // 4) % 3, i]) for i in range(N_ITEMS)}
    sids = {i: sid_to_string(s) for i, s in index.items()}
    titles = {i: f"Widget model {i} in colour {['red', 'blue', 'green'][i % 3]}" for i in range(N_ITEMS)}
    write_index_json(root / "Toy.index.json", index)
    (root / "Toy.item.json").write_text(json.dumps({str(i): {"title": t, "description": f"A widget, size {i}."}
                                                    for i, t in titles.items()}))

    def rows(users: range) -> list[SplitRow]:
        out = []
        for u in users:
            start = rng.randrange(N_ITEMS)
            seq = [(start + k) % N_ITEMS for k in range(rng.randint(3, 6))]
            for t in range(1, len(seq)):
                hist = seq[max(0, t - 10):t]
                out.append(SplitRow(f"A{u}", tuple(titles[i] for i in hist), titles[seq[t]], tuple(hist), seq[t],
                                    tuple(sids[i] for i in hist), sids[seq[t]]))
        return out

    write_split_csv(root / "llm" / "train" / "Toy.csv", rows(range(n_users)))
    write_split_csv(root / "llm" / "valid" / "Toy.csv", rows(range(n_users, n_users + 8)))
    return root


def config(root: Path, **overrides) -> llm.SFTConfig:
    base = {
        "dataset": "Toy", "workdir": str(root), "data_dir": str(root / "llm"),
        "index_path": str(root / "Toy.index.json"), "item_json_path": str(root / "Toy.item.json"),
        "output_dir": str(root / "sft"), "bpe_vocab_size": 400, "hidden_size": 32, "num_layers": 1,
        "num_heads": 2, "num_kv_heads": 1, "intermediate_size": 64, "per_device_train_batch_size": 16,
        "learning_rate": 3e-3, "warmup_steps": 0, "max_steps": 12, "eval_steps": 6, "logging_steps": 2,
        "early_stopping_patience": 0, "num_threads": 1,
    }
    base.update(overrides)
    return load_config(llm.SFTConfig, None, {k: str(v) for k, v in base.items()})


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("toy"))


def test_response_loss_is_padding_side_invariant_and_matches_full_logits() -> None:
    from minionerec.llm import TinyModelSpec, build_tiny_qwen2

    model = build_tiny_qwen2(200, TinyModelSpec(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1,
                                                intermediate_size=64), 0, seed=0)
    g = torch.Generator().manual_seed(0)
    features = []
    for n in (5, 9, 14):
        ids = torch.randint(1, 200, (n,), generator=g).tolist()
        features.append({"input_ids": ids, "labels": [-100] * (n - 3) + ids[-3:]})
    losses = []
    for side in ("left", "right"):
        batch = llm.PaddingCollator(0, side)(features)
        assert batch["input_ids"].shape[1] % 8 == 0
        loss, _ = llm.response_loss(model, batch)
        full = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                     position_ids=batch["position_ids"], labels=batch["labels"]).loss
        assert torch.allclose(loss, full, atol=1e-5)
        losses.append(loss)
    assert torch.allclose(losses[0], losses[1], atol=1e-5)


def test_labels_mask_the_prompt_with_the_real_tokenizer(toy: Path) -> None:
    cfg = config(toy)
    loaded = llm.load_sft_data(cfg)
    _, tokenizer, _ = llm.build_model(cfg, loaded.items)
    samples = loaded.train[:20]
    encoded = llm.tokenize_samples(tokenizer, samples, cfg.max_len)
    for s, ids, labels in zip(samples, encoded["input_ids"], encoded["labels"]):
        n_prompt = sum(1 for label in labels if label == -100)
        assert tokenizer.decode(ids[:n_prompt]) == s.prompt
        assert labels[n_prompt:] == ids[n_prompt:] and ids[-1] == tokenizer.eos_token_id
        assert tokenizer.decode(ids[n_prompt:-1]) == s.completion


def test_history_sid_labels_label_every_item_after_the_first() -> None:
    sid = {10, 11, 12, 20, 21, 22}
    # "items" <a><b><c> ", " <a><b><c> ", " <a><b><c> "?" : three history items of 3 SID tokens
    prompt = [1, 10, 21, 12, 2, 20, 11, 22, 2, 10, 11, 12, 3]
    assert llm.history_sid_labels(prompt, sid) == [-100] * 5 + [20, 11, 22, -100, 10, 11, 12, -100]
    assert llm.history_sid_labels([1, 10, 11, 12, 3], sid) == [-100] * 5  # one item: nothing to predict


def test_sequence_loss_labels_history_sids_of_next_sid_rows_only(toy: Path) -> None:
    cfg = config(toy, sequence_loss=True)
    loaded = llm.load_sft_data(cfg)
    _, tokenizer, sid_ids = llm.build_model(cfg, loaded.items)
    title_task = llm.title_to_sid_samples(loaded.items[:2])
    samples = [s for s in loaded.train if len(s.history) == 3][:1] + title_task
    encoded = llm.encode_train_samples(cfg, tokenizer, samples, set(sid_ids))
    plain = llm.tokenize_samples(tokenizer, samples, cfg.max_len)
    assert encoded["input_ids"] == plain["input_ids"]
    assert encoded["labels"][1:] == plain["labels"][1:]  # other tasks keep response-only labels
    ids, labels = encoded["input_ids"][0], encoded["labels"][0]
    n_prompt = len(ids) - sum(1 for label in plain["labels"][0] if label != -100)
    history_labels = [t for t in labels[:n_prompt] if t != -100]
    later_items = samples[0].history[1:]
    assert tokenizer.decode(history_labels) == "".join(later_items)
    assert labels[n_prompt:] == plain["labels"][0][n_prompt:]


def test_sequence_loss_run_trains_and_lowers_the_loss(toy: Path) -> None:
    cfg = config(toy, output_dir=toy / "run_seq", sequence_loss=True, max_steps=24, eval_steps=12)
    summary = llm.main(cfg)
    history = json.loads((Path(cfg.output_dir) / "checkpoint-24" / "trainer_state.json").read_text())["log_history"]
    losses = [h["loss"] for h in history if "loss" in h]
    assert summary["global_step"] == 24 and losses[-1] < losses[0] * 0.8, losses


def test_history_label_weight_interpolates_between_next_sid_and_every_next_item(toy: Path) -> None:
    cfg = config(toy, sequence_loss=True)
    loaded = llm.load_sft_data(cfg)
    model, tokenizer, sid_ids = llm.build_model(cfg, loaded.items)
    model.eval()
    samples = [s for s in loaded.train if len(s.history) >= 3][:3] + llm.title_to_sid_samples(loaded.items[:2])
    encoded = llm.encode_train_samples(cfg, tokenizer, samples, set(sid_ids))
    plain = llm.tokenize_samples(tokenizer, samples, cfg.max_len)
    features = [{k: encoded[k][i] for k in encoded} for i in range(len(samples))]
    plain_features = [{k: plain[k][i] for k in plain} for i in range(len(samples))]
    assert [f["response_len"] for f in features] == [sum(1 for t in f["labels"] if t != -100) for f in plain_features]

    def loss(padding_side: str, weight: float, rows: list[dict]) -> torch.Tensor:
        return llm.response_loss(model, llm.PaddingCollator(tokenizer.pad_token_id, padding_side)(rows),
                                 history_label_weight=weight)[0]

    everything, target_only = loss("left", 1.0, features), loss("left", 1.0, plain_features)
    assert torch.allclose(loss("left", 0.0, features), target_only, atol=1e-5)  # 0: next-SID only
    assert torch.allclose(loss("right", 0.3, features), loss("left", 0.3, features), atol=1e-5)
    n_target = sum(f["response_len"] for f in features)
    n_all = sum(sum(1 for t in f["labels"] if t != -100) for f in features)
    history_mean = (everything * n_all - target_only * n_target) / (n_all - n_target)
    expected = (target_only * n_target + 0.3 * history_mean * (n_all - n_target)) / (n_target + 0.3 * (n_all - n_target))
    assert n_all > n_target and torch.allclose(loss("left", 0.3, features), expected, atol=1e-5)
    with pytest.raises(InputError, match="history_label_weight"):
        llm.check_history_label_weight(-0.5)


def tiny_model_and_batch(n_vocab: int = 200):
    from minionerec.llm import TinyModelSpec, build_tiny_qwen2

    model = build_tiny_qwen2(n_vocab, TinyModelSpec(hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1,
                                                    intermediate_size=64), 0, seed=0)
    g = torch.Generator().manual_seed(1)
    features = []
    for n in (6, 11):
        ids = torch.randint(1, n_vocab, (n,), generator=g).tolist()
        features.append({"input_ids": ids, "labels": [-100] * (n - 4) + ids[-4:]})
    return model, llm.PaddingCollator(0, "left")(features)


def test_label_smoothing_matches_its_definition_and_leaves_the_validation_loss_plain() -> None:
    model, batch = tiny_model_and_batch()
    model.eval()
    plain, out = llm.response_loss(model, batch)
    smooth, _ = llm.response_loss(model, batch, label_smoothing=0.2)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                   position_ids=batch["position_ids"]).logits[:, :-1].float()
    targets = batch["labels"][:, 1:]
    logp = torch.log_softmax(logits[targets != -100], dim=-1)
    uniform = -logp.mean(dim=-1).mean()
    assert torch.allclose(smooth, 0.8 * plain + 0.2 * uniform, atol=1e-5)
    assert smooth > plain  # random logits: the uniform part costs more than the target's share saves

    trainer_class = llm.response_only_trainer_class()
    trainer = trainer_class.__new__(trainer_class)  # compute_loss reads only label_smoothing
    trainer.label_smoothing = 0.2
    model.train()
    assert torch.allclose(trainer.compute_loss(model, batch), smooth, atol=1e-5)
    model.eval()
    assert torch.allclose(trainer.compute_loss(model, batch), plain, atol=1e-5)
    with pytest.raises(InputError, match="label_smoothing"):
        llm.check_label_smoothing(1.0)


def test_attention_dropout_acts_in_training_only_and_minus_one_keeps_the_model() -> None:
    model, batch = tiny_model_and_batch()
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "position_ids")}
    assert llm.set_attention_dropout(model, -1.0) == 0
    model.eval()
    reference = model(**inputs).logits
    assert llm.set_attention_dropout(model, 0.5) == 2 and model.config.attention_dropout == 0.5
    assert torch.equal(model(**inputs).logits, reference)  # eval: no dropout
    model.train()
    torch.manual_seed(0)
    assert not torch.allclose(model(**inputs).logits, reference)
    with pytest.raises(InputError, match="attention_dropout"):
        llm.set_attention_dropout(model, 1.0)
    with pytest.raises(InputError, match="attention_dropout"):
        llm.set_attention_dropout(torch.nn.Linear(2, 2), 0.1)


def test_regularised_run_trains_and_records_its_keys(toy: Path) -> None:
    cfg = config(toy, output_dir=toy / "run_reg", label_smoothing=0.1, attention_dropout=0.1, weight_decay=0.1,
                 max_steps=12, eval_steps=6)
    summary = llm.main(cfg)
    resolved = (Path(cfg.output_dir) / "sft.config.yaml").read_text()
    assert summary["global_step"] == 12 and math.isfinite(summary["best_eval_loss"])
    assert "label_smoothing: 0.1" in resolved and "attention_dropout: 0.1" in resolved


def test_sid_init_text_sets_rows_from_the_items_text_embeddings(toy: Path, tmp_path: Path) -> None:
    import numpy as np

    vectors = np.eye(8, dtype=np.float32)[[i % 4 for i in range(N_ITEMS)]]  # item i "reads like" i % 4
    np.save(tmp_path / "emb.npy", vectors)
    cfg = config(toy, sid_init="text", text_embedding_path=tmp_path / "emb.npy")
    model, tokenizer, _ = llm.build_model(cfg, llm.load_sft_data(cfg).items)
    weight = model.get_input_embeddings().weight
    row = {t: weight[tokenizer.convert_tokens_to_ids(t)] for t in ("<a_0>", "<a_1>", "<c_5>", "<b_0>", "<b_2>")}
    assert torch.allclose(row["<c_5>"], row["<a_1>"])  # item 5 is the only <c_5> item and reads like the <a_1> items
    assert torch.allclose(row["<b_0>"], row["<b_2>"])  # every <b_j> holds all four kinds equally
    assert not torch.allclose(row["<a_0>"], row["<a_1>"])
    random_model, _, _ = llm.build_model(config(toy), llm.load_sft_data(cfg).items)
    assert not torch.allclose(random_model.get_input_embeddings().weight[tokenizer.convert_tokens_to_ids("<a_0>")],
                              row["<a_0>"])
    with pytest.raises(InputError, match="do not cover item ids"):
        np.save(tmp_path / "short.npy", vectors[:3])
        llm.build_model(config(toy, sid_init="text", text_embedding_path=tmp_path / "short.npy"),
                        llm.load_sft_data(cfg).items)


def test_item_tokens_give_each_history_item_one_position_in_sft_and_its_checkpoint(toy: Path, tmp_path: Path) -> None:
    import numpy as np
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from minionerec.decoding import SIDTrie, pad_token_id_of, sid_beam_search
    from minionerec.sid import item_token

    cfg = config(toy, item_tokens="true", text_embedding_path=tmp_path / "absent.npy", output_dir=tmp_path / "items")
    items = llm.load_sft_data(cfg).items
    model, tokenizer, ids = llm.build_model(cfg, items)
    vocab = tokenizer.get_vocab()
    assert all(item_token(i.sid) in vocab for i in items) and len(ids) == len(set(ids)) == 4 + 3 + N_ITEMS + N_ITEMS
    weight = model.get_input_embeddings().weight.detach()
    mean = weight[:min(ids[4 + 3 + N_ITEMS:])].mean(dim=0)  # the rows the tokenizer had before the item tokens
    levels = [vocab[t] for t in ("<a_1>", "<b_1>", "<c_5>")]
    expected = mean + (weight[levels] - mean).sum(dim=0) / 3 ** 0.5
    assert torch.allclose(weight[vocab["<item_1_1_5>"]], expected, atol=1e-5)  # item 5 is <a_1><b_1><c_5>

    history = [items[3].sid, items[4].sid]
    plain = llm.next_item_prompt(history)
    (encoded,) = llm.encode_prompts(tokenizer, [plain])
    assert [vocab[item_token(s)] for s in history] == [t for t in encoded if t in set(ids[4 + 3 + N_ITEMS:])]
    assert not set(encoded) & {vocab[t] for t in ("<a_3>", "<b_0>", "<c_3>")}  # no SID level token left in the prompt
    sample = llm.TaskSample("next_sid", plain, llm.format_response(items[5].sid), items[5].sid, 5, (3, 4),
                            tuple(history))
    labels = [t for t in llm.tokenize_samples(tokenizer, [sample], 512)["labels"][0] if t != -100]
    assert tokenizer.convert_ids_to_tokens(labels[:3]) == ["<a_1>", "<b_1>", "<c_5>"]  # the answer stays SID tokens
    seq = llm.tokenize_samples(tokenizer, [sample], 512, history_label_ids=set(ids))["labels"][0]
    assert vocab[item_token(history[1])] in seq and vocab[item_token(history[0])] not in seq

    np.save(tmp_path / "emb.npy", np.random.default_rng(0).normal(size=(N_ITEMS, 8)).astype(np.float32))
    with_text, _, _ = llm.build_model(config(toy, item_tokens="true", text_embedding_path=tmp_path / "emb.npy"), items)
    assert not torch.allclose(with_text.get_input_embeddings().weight[vocab["<item_1_1_5>"]], expected)

    llm.main(cfg)
    saved = AutoTokenizer.from_pretrained(cfg.output_dir)
    assert llm.encode_prompts(saved, [plain]) == [encoded]  # RL and evaluation rebuild the same prompt ids
    trained = AutoModelForCausalLM.from_pretrained(cfg.output_dir)
    trie = SIDTrie.from_sids([i.sid for i in items], saved)
    decoded = sid_beam_search(trained, trie, [encoded], num_beams=5, pad_token_id=pad_token_id_of(saved))
    assert len(set(decoded.sid_strings(trie)[0])) == 5 and set(decoded.sid_strings(trie)[0]) <= {i.sid for i in items}


def test_next_item_prompt_identical_across_sft_rl_and_evaluation(toy: Path, tmp_path: Path) -> None:
    from minionerec.catalogue import Catalogue, CatalogueItem, read_info, write_info
    from minionerec.eval import load_test_set
    from minionerec.io import read_split_csv
    from minionerec.rl import RLConfig, build_rl_samples

    rows = read_split_csv(toy / "llm" / "valid" / "Toy.csv")
    sft_prompts = [s.prompt for s in llm.next_sid_samples(rows)]
    assert sft_prompts == [llm.next_item_prompt(list(r.history_item_sid)) for r in rows]
    items = llm.load_items(toy / "Toy.index.json", toy / "Toy.item.json")

    info = tmp_path / "Toy.txt"
    write_info(info, [CatalogueItem(tuple(f"<{x}" for x in i.sid.split("<")[1:]), i.title, i.item_id) for i in items])
    catalogue = Catalogue.from_info(read_info(info))
    eval_prompts = load_test_set(toy / "llm" / "valid" / "Toy.csv", catalogue).prompts
    assert eval_prompts == sft_prompts

    rl_cfg = load_config(RLConfig, None, {"tasks": "[next_sid]", "dataset": "Toy"})
    rl_prompts = [s.prompt for s in build_rl_samples(rl_cfg, rows, items)]
    assert rl_prompts == sft_prompts


def test_a_few_steps_lower_the_loss_and_save_a_usable_checkpoint(toy: Path) -> None:
    cfg = config(toy, output_dir=toy / "run_loss", max_steps=24, eval_steps=12)
    summary = llm.main(cfg)
    out = Path(cfg.output_dir)
    history = json.loads((out / "checkpoint-24" / "trainer_state.json").read_text())["log_history"]
    losses = [h["loss"] for h in history if "loss" in h]
    assert losses[-1] < losses[0] * 0.8, losses
    assert summary["global_step"] == 24 and summary["tokens_per_s"] > 0
    for name in ("config.json", "tokenizer.json", "sft.config.yaml", "sft.summary.json", "model.safetensors"):
        assert (out / name).is_file(), name
    from minionerec.llm import load_pretrained

    model, tokenizer = load_pretrained(str(out))
    prompt = llm.next_item_prompt(["<a_1><b_1><c_5>"])
    ids = torch.tensor(llm.encode_prompts(tokenizer, [prompt]))
    generated = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=4, do_sample=False)
    assert generated.shape[1] > ids.shape[1]
    assert all(t in tokenizer.get_vocab() for t in ("<a_0>", "<b_2>", f"<c_{N_ITEMS - 1}>"))


class Killed(Exception):
    pass


def test_a_plain_rerun_after_a_kill_resumes_bit_exactly(toy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from safetensors.torch import load_file

    out = toy / "run_resume"
    trainer_class = llm.response_only_trainer_class()

    class KilledAtStep6(trainer_class):  # the process dies right after checkpoint-6 is complete
        def _save_checkpoint(self, *args, **kwargs):
            super()._save_checkpoint(*args, **kwargs)
            if self.state.global_step == 6:
                raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(sft_stage, "response_only_trainer_class", lambda: KilledAtStep6)
        with pytest.raises(Killed):
            llm.main(config(toy, output_dir=out, max_steps=9, eval_steps=3))
    assert (out / "checkpoint-6").is_dir() and not (out / "sft.done.json").exists()
    resumed = llm.main(config(toy, output_dir=out, max_steps=9, eval_steps=3))  # no resume flag
    assert resumed["global_step"] == 9 and (out / "checkpoint-6").is_dir()
    history = json.loads((out / "checkpoint-9" / "trainer_state.json").read_text())["log_history"]
    steps = [h["step"] for h in history if "loss" in h]
    assert steps == sorted(set(steps)) and steps[-1] == 8  # logged every 2 steps, one run's history continued
    fresh = llm.main(config(toy, output_dir=toy / "run_fresh", max_steps=9, eval_steps=3))
    assert fresh["global_step"] == 9  # (train_loss of a resumed run averages only the steps after the resume)
    weights, expected = load_file(out / "model.safetensors"), load_file(toy / "run_fresh" / "model.safetensors")
    assert all(torch.equal(weights[k], expected[k]) for k in expected)
    # a finished run is never trained further: a rerun (even with more steps) starts from step 0
    again = llm.main(config(toy, output_dir=out, max_steps=12, eval_steps=3))
    history = json.loads((out / "checkpoint-12" / "trainer_state.json").read_text())["log_history"]
    assert again["global_step"] == 12 and [h["step"] for h in history if "loss" in h][0] == 2
    assert json.loads((out / "checkpoint-9" / "trainer_state.json").read_text())["max_steps"] == 12  # the new run's


def test_freeze_llm_run_changes_only_sid_rows(toy: Path) -> None:
    cfg = config(toy, output_dir=toy / "run_frozen", freeze_llm="true", max_steps=4, weight_decay=0.1)
    loaded = llm.load_sft_data(cfg)
    model, _, _ = llm.build_model(config(toy, max_steps=4), loaded.items)  # same seed: the starting weights
    llm.main(cfg)
    from minionerec.llm import load_pretrained

    trained, tokenizer = load_pretrained(cfg.output_dir)
    sid_ids = [i for t, i in tokenizer.get_vocab().items() if re.fullmatch(r"<[a-h]_\d+>", t)]
    assert len(sid_ids) == 4 + 3 + N_ITEMS
    mask = torch.zeros(len(tokenizer), dtype=torch.bool)
    mask[sid_ids] = True
    start = dict(model.named_parameters())
    for name, p in trained.named_parameters():
        if name.endswith("embed_tokens.weight"):
            assert torch.equal(p[~mask], start[name][~mask])
            assert not torch.equal(p[mask], start[name][mask])
        else:
            assert torch.equal(p, start[name]), name


def test_bad_input_is_reported_clearly(toy: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        llm.main(config(toy, base_model=str(tmp_path / "nowhere")))
    with pytest.raises(InputError, match="training set is empty"):
        llm.main(config(toy, task_weights="{next_sid: 0}"))
    bad = make_dataset(tmp_path / "bad")
    index = json.loads((bad / "Toy.index.json").read_text())
    index.pop("3")
    (bad / "Toy.index.json").write_text(json.dumps(index))
    (bad / "Toy.item.json").write_text(json.dumps({k: v for k, v in json.loads((bad / "Toy.item.json").read_text()).items()}))
    with pytest.raises(InputError, match="not in the SID index"):
        llm.main(config(bad))


def test_cli_reports_input_errors_in_one_line(toy: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "sft.py"), "--dataset", "Toy", "--data_dir", str(toy / "llm"),
         "--index_path", str(toy / "Toy.index.json"), "--item_json_path", str(toy / "Toy.item.json"),
         "--base_model", str(tmp_path / "missing-model")],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow  # two CPU ranks through sft.sh: plain DDP, DeepSpeed ZeRO-2 and ZeRO-3 (~15 s each)
@pytest.mark.parametrize("deepspeed", ["", "zero2", "zero3"])
def test_two_cpu_processes_through_sft_sh(toy: Path, deepspeed: str) -> None:
    if deepspeed:
        pytest.importorskip("deepspeed", reason="DeepSpeed is not installed (pip install -r requirements.txt)")
    out = toy / f"run_ddp{deepspeed}"
    args = ["--dataset", "Toy", "--workdir", str(toy), "--data_dir", str(toy / "llm"),
            "--index_path", str(toy / "Toy.index.json"), "--item_json_path", str(toy / "Toy.item.json"),
            "--output_dir", str(out), "--bpe_vocab_size", "400", "--hidden_size", "32", "--num_layers", "1",
            "--num_heads", "2", "--num_kv_heads", "1", "--intermediate_size", "64", "--max_steps", "4",
            "--eval_steps", "2", "--per_device_train_batch_size", "8", "--num_threads", "1"]
    env = cpu_ranks_env(NUM_PROCESSES="2", MAIN_PROCESS_PORT="29533", DEEPSPEED=deepspeed)
    result = subprocess.run(["bash", str(ROOT / "sft.sh"), *args], capture_output=True, text=True, cwd=ROOT,
                            timeout=600, env=env, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "sft.summary.json").read_text())
    assert summary["global_step"] == 4 and summary["num_processes"] == 2
    assert summary["distributed_type"] == ("DEEPSPEED" if deepspeed else "MULTI_CPU")
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    from safetensors.torch import load_file

    assert all(t.numel() > 0 for t in load_file(out / "model.safetensors").values())  # gathered under ZeRO-3


@pytest.mark.slow  # 135M parameters: loads the GGUF, takes 2 optimizer steps, saves ~0.5 GB (~25 s)
def test_sft_fine_tunes_the_gguf_smollm2(toy: Path) -> None:
    pytest.importorskip("gguf")
    from minionerec.llm import SMOLLM2, load_pretrained, smollm2_dir

    try:
        smollm2_dir()
    except InputError as exc:
        pytest.skip(str(exc))
    cfg = config(toy, output_dir=toy / "run_smollm2", base_model=SMOLLM2, max_steps=2, eval_steps=2,
                 per_device_train_batch_size=2, eval_samples=2, learning_rate=1e-4, num_threads=2)
    summary = llm.main(cfg)
    assert summary["global_step"] == 2 and math.isfinite(summary["train_loss"])
    saved = json.loads((Path(cfg.output_dir) / "config.json").read_text())
    assert "quantization_config" not in saved  # de-quantized weights are saved as a plain checkpoint
    model, tokenizer = load_pretrained(cfg.output_dir)
    assert not getattr(model, "is_quantized", False) and "<a_0>" in tokenizer.get_vocab()
