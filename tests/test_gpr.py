"""GPR variants: features from training-period signals, side files, converter, prompts, VAFT, HEPO."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import root_script

from minionerec import convert as convert_dataset
from minionerec import gpr, llm
from minionerec.convert import ConvertConfig
from minionerec.data import Interaction, ProtocolOptions, RawData, build_dataset, process
from minionerec.errors import InputError
from minionerec.holdout import split_valid_by_user
from minionerec.io import find_llm_data_files, read_split_csv, write_index_json
from minionerec.sid import codes_to_sid

convert_dataset_gpr = root_script("convert_dataset_gpr")  # the GPR convert stage's main lives in the script

DAY = 86400
T0 = 1_500_000_000  # a Friday, 02:40 UTC


def raw_data() -> RawData:
    """4 users x 6 interactions over 6 items; user u0 rates 5, u1 4, u2 2; u3 appears only late."""
    prices = {"i0": "$10.00", "i1": "$200.00", "i2": "", "i3": "$55.50", "i4": "$1,000.00", "i5": "$5.00 - $9.00"}
    items = {k: {"title": f"Item {k}", "description": "", "brand": "", "categories": "", "price": p}
             for k, p in prices.items()}
    gaps = [0, 3600, 3 * DAY, 20 * DAY, 60 * DAY, 2 * DAY]
    inter = []
    for u, rating in (("u0", 5.0), ("u1", 4.0), ("u2", 2.0)):
        t = T0 + {"u0": 0, "u1": 10, "u2": 20}[u]
        for k in range(6):
            t += gaps[k]
            inter.append(Interaction(u, f"i{(k + int(u[1])) % 6}", t, rating))
    for k in range(5):  # 4 samples, all after the others': the valid + test samples
        inter.append(Interaction("u3", f"i{k}", T0 + 400 * DAY + k * DAY, 1.0))
    return RawData(inter, items, "hand-made")


def options(tmp_path) -> ProtocolOptions:
    return ProtocolOptions(input_path=str(tmp_path), dataset="T", output_dir=str(tmp_path / "data"), user_k=0,
                           item_k=0, st_year=0, ed_year=0)


def gcfg(tmp_path, **overrides) -> gpr.GPRConfig:
    cfg = gpr.GPRConfig(enabled=True, dataset="T", workdir=str(tmp_path), data_dir=str(tmp_path / "data" / "T"))
    for k, v in overrides.items():
        setattr(cfg, k, v)
    return cfg


@pytest.fixture
def processed(tmp_path):
    raw = raw_data()
    out = process(raw, options(tmp_path), gpr.GPRVariant(gcfg(tmp_path)))
    index = {i: codes_to_sid((i % 2, i % 3, i)) for i in range(6)}
    write_index_json(out / "T.index.json", index)
    return out


# ------------------------------------------------------------------------------ features

def test_features_use_training_period_signals_only(tmp_path):
    ds = build_dataset(raw_data(), options(tmp_path))
    records = {i: {"price": p} for i, p in enumerate(["$10", "$200", "", "$55.50", "$1,000.00", "bad"])}
    feats = gpr.extract_features(ds, records, gcfg(tmp_path))
    user_of = {name: i for name, i in ds.user2id.items()}
    # u3 only interacts after the train cutoff (its samples are all valid/test): unknown, not LOW.
    assert feats.users[user_of["u3"]] == "[USER_UNKNOWN]"
    assert feats.users[user_of["u0"]] == "[USER_HIGH_RATING]"
    assert feats.users[user_of["u1"]] == "[USER_MID_RATING]"
    assert feats.users[user_of["u2"]] == "[USER_LOW_RATING]"
    cutoff = feats.summary["train_cutoff_timestamp"]
    assert all(s.timestamp <= cutoff for s in ds.train)
    counts = {i: f.train_count for i, f in feats.items.items()}
    assert sum(counts.values()) == sum(len(ds.sequences[u][:k + 1]) for u, k in
                                       _train_positions(ds).items())
    values = [f.value for f in feats.items.values()]
    assert all(0.0 <= v <= 1.0 for v in values) and min(values) == 0.0
    assert {f.type for f in feats.items.values()} <= {"I", "O"}
    # price rule: unknown price -> O whatever the popularity
    assert feats.items[ds.item2id["i5"]].type == "O" and feats.items[ds.item2id["i2"]].type == "O"


def _train_positions(ds):
    per_user = {}
    for s in ds.train:
        per_user[s.user] = per_user.get(s.user, 0) + 1
    return per_user


def test_context_rules_by_hand():
    rng = __import__("random").Random(0)
    assert gpr.context_token("gap", T0 + 3600, T0, rng) == "[CTX_GAP_DAY]"
    assert gpr.context_token("gap", T0 + 3 * DAY, T0, rng) == "[CTX_GAP_WEEK]"
    assert gpr.context_token("gap", T0 + 20 * DAY, T0, rng) == "[CTX_GAP_MONTH]"
    assert gpr.context_token("gap", T0 + 60 * DAY, T0, rng) == "[CTX_GAP_LONG]"
    assert gpr.context_token("weekday", T0, None, rng) == "[CTX_WEEKDAY]"       # Friday
    assert gpr.context_token("weekday", T0 + DAY, None, rng) == "[CTX_WEEKEND]"  # Saturday


def test_extraction_is_deterministic_under_a_seed(tmp_path):
    ds = build_dataset(raw_data(), options(tmp_path))
    records = {i: {"price": "$1"} for i in range(6)}
    a = gpr.extract_features(ds, records, gcfg(tmp_path, context_rule="random", seed=3))
    b = gpr.extract_features(ds, records, gcfg(tmp_path, context_rule="random", seed=3))
    c = gpr.extract_features(ds, records, gcfg(tmp_path, context_rule="random", seed=4))
    assert a.contexts == b.contexts and a.users == b.users and a.items == b.items
    assert a.contexts != c.contexts
    gap = gpr.extract_features(ds, records, gcfg(tmp_path))
    assert {t for rows in gap.contexts.values() for _, _, t in rows} <= set(gpr.CONTEXT_TOKENS["gap"])


def test_side_files_written_twice_are_identical(tmp_path):
    first = process(raw_data(), options(tmp_path), gpr.GPRVariant(gcfg(tmp_path)))
    before = {p.name: p.read_bytes() for p in first.glob("T.*gpr*")}
    process(raw_data(), options(tmp_path), gpr.GPRVariant(gcfg(tmp_path)))
    after = {p.name: p.read_bytes() for p in first.glob("T.*gpr*")}
    assert before == after and len(before) == 6


# ------------------------------------------------------------------------------ bad input

def test_bad_side_files_are_clear_errors(tmp_path, processed):
    files = gpr.SideFiles.of(processed, "T")
    items = json.loads(files.items.read_text())
    for bad, message in ((float("nan"), "NaN"), (-0.5, ">= 0"), (1.5, "[0, 1]")):
        items["0"]["value"] = bad
        files.items.write_text(json.dumps(items))
        with pytest.raises(InputError, match=message.replace("[", r"\[")):
            gpr.read_item_features(files.items)
    items["0"].update(value=0.5, type="X")
    files.items.write_text(json.dumps(items))
    with pytest.raises(InputError, match="unknown item type 'X'"):
        gpr.read_item_features(files.items)
    files.users.write_text(json.dumps({"0": "[USER_VIP]"}))
    with pytest.raises(InputError, match="unknown GPR token"):
        gpr.read_user_tokens(files.users)


def test_missing_side_files_stop_the_converter(tmp_path, processed):
    gpr.SideFiles.of(processed, "T").users.unlink()
    cfg = ConvertConfig(dataset="T", data_dir=str(processed), output_dir=str(tmp_path / "llm"))
    with pytest.raises(InputError, match="amazon18_data_process_gpr"):
        convert_dataset.main(cfg, gpr.GPRVariant(gcfg(tmp_path)))
    assert not (tmp_path / "llm").exists()  # nothing written before the check


def test_misaligned_context_file_is_a_clear_error(tmp_path, processed):
    path = gpr.SideFiles.of(processed, "T").contexts["train"]
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n")
    cfg = ConvertConfig(dataset="T", data_dir=str(processed), output_dir=str(tmp_path / "llm"))
    with pytest.raises(InputError, match="rows but"):
        convert_dataset.main(cfg, gpr.GPRVariant(gcfg(tmp_path)))


def test_unknown_token_in_a_gpr_csv_names_the_line(tmp_path, processed):
    cfg = convert_dataset.ConvertConfig(dataset="T", data_dir=str(processed), output_dir=str(tmp_path / "llm"))
    written = convert_dataset.main(cfg, gpr.GPRVariant(gcfg(tmp_path)))
    text = written["train"].read_text().replace("[CTX_GAP_", "[CTX_NOPE_", 1)
    written["train"].write_text(text)
    with pytest.raises(InputError, match=r"T.csv:2: unknown GPR token"):
        gpr.read_gpr_csv(written["train"])


# ------------------------------------------------------------------------------ converter + prompt

def converted(tmp_path, processed):
    cfg = convert_dataset.ConvertConfig(dataset="T", data_dir=str(processed), output_dir=str(tmp_path / "llm"))
    return convert_dataset.main(cfg, gpr.GPRVariant(gcfg(tmp_path)))


def test_converter_adds_token_columns_and_keeps_plain_rows(tmp_path, processed):
    written = converted(tmp_path, processed)
    rows = gpr.read_gpr_csv(written["train"])
    assert [g.row for g in rows] == read_split_csv(written["train"])  # plain readers see the plain rows
    users = gpr.read_user_tokens(gpr.SideFiles.of(processed, "T").users)
    feats = gpr.read_item_features(gpr.SideFiles.of(processed, "T").items)
    for g in rows:
        assert g.user_token == users[int(g.row.user_id[1:])]
        assert g.history_types == tuple(feats[i].type for i in g.row.history_item_id)
        assert g.target_type == feats[g.row.item_id].type
    tokens, types = gpr.read_info_side(written["info"])
    assert tokens == gpr.gpr_vocabulary() and types == {i: f.type for i, f in feats.items()}


def test_gpr_prompt_injects_the_tokens_and_falls_back_to_the_plain_prompt(tmp_path, processed):
    g = gpr.read_gpr_csv(converted(tmp_path, processed)["test"])[0]
    prompt = gpr.gpr_next_item_prompt(g)
    assert f"### User Input: \n{g.user_token} {g.context_token} The user has interacted with items " in prompt
    typed = ", ".join(gpr.ITEM_TYPE_TOKENS[t] + s for t, s in zip(g.history_types, g.row.history_item_sid))
    assert typed in prompt and prompt.endswith(llm.RESPONSE_TAG)
    assert gpr.gpr_next_item_prompt(g, use_tokens=False) == llm.next_item_prompt(g.row.history_item_sid)
    sample = gpr.gpr_next_sid_samples([g], type_prefix=True)[0]
    assert sample.target == g.row.item_sid
    assert sample.completion == gpr.ITEM_TYPE_TOKENS[g.target_type] + g.row.item_sid + "\n"
    assert not llm.find_leaks(gpr.gpr_next_sid_samples([g]))


def info_of(cfg):
    return find_llm_data_files(cfg.data_dir, cfg.dataset, cfg.train_subdir).info


def sft_config(tmp_path, processed, **overrides) -> llm.SFTConfig:
    cfg = llm.SFTConfig(dataset="T", workdir=str(tmp_path), data_dir=str(tmp_path / "llm"),
                        index_path=str(processed / "T.index.json"), item_json_path=str(processed / "T.item.json"),
                        output_dir=str(tmp_path / "sft"), bpe_vocab_size=300, hidden_size=32, num_layers=1,
                        num_heads=2, num_kv_heads=1, intermediate_size=64)
    for k, v in overrides.items():
        setattr(cfg, k, v)
    return cfg


def test_heterogeneous_tokens_reach_the_tokenized_sft_inputs(tmp_path, processed):
    converted(tmp_path, processed)
    cfg, g = sft_config(tmp_path, processed), gcfg(tmp_path, target_type_prefix=True)
    sft_data = llm.load_sft_data(cfg, gpr.GPRVariant(g))
    model, tokenizer, _ = llm.build_model(cfg, sft_data.items, gpr.GPRVariant(g).special_tokens(info_of(cfg)), gpr.gpr_template_pieces())
    encoded = llm.tokenize_samples(tokenizer, sft_data.train, cfg.max_len)
    token_ids = {t: tokenizer.convert_tokens_to_ids(t) for t in gpr.gpr_vocabulary()}
    assert all(tokenizer.encode(t, add_special_tokens=False) == [i] for t, i in token_ids.items())
    next_items = [(s, ids, lab) for s, ids, lab in zip(sft_data.train, encoded["input_ids"], encoded["labels"])
                  if s.task == "next_sid"]
    assert next_items
    for sample, ids, labels in next_items:
        row_tokens = [t for t in gpr.gpr_vocabulary() if t in sample.prompt]
        assert len(row_tokens) >= 3  # U, E and at least one type token
        for t in row_tokens:
            assert token_ids[t] in ids
        answer = [i for i, lab in zip(ids, labels) if lab != -100]
        assert answer[0] in (token_ids["[I_TOKEN]"], token_ids["[O_TOKEN]"])  # the type-prefixed target is trained
    assert model.get_input_embeddings().weight.shape[0] >= len(tokenizer)
    # the constant GPR prompt text is a few whole tokens, as the plain prompt's is
    prompt_ids = tokenizer.encode(next_items[0][0].prompt, add_special_tokens=False)
    n_history = len(next_items[0][0].history_items)
    assert len(prompt_ids) <= 3 + 3 + 5 * n_history + 2
    # special tokens: decoding skips them, so rewards and metrics see plain SIDs
    ids = tokenizer.encode("[I_TOKEN]" + sft_data.items[0].sid, add_special_tokens=False)
    assert tokenizer.decode(ids, skip_special_tokens=True) == sft_data.items[0].sid


def test_all_flags_off_gives_the_plain_sft_data(tmp_path, processed):
    converted(tmp_path, processed)
    cfg = sft_config(tmp_path, processed)
    plain = llm.load_sft_data(cfg)
    variant = llm.load_sft_data(cfg, gpr.GPRVariant(gcfg(tmp_path, use_tokens=False)))
    assert variant.train == plain.train and variant.valid == plain.valid and variant.train_weights is None
    assert gpr.GPRVariant(gcfg(tmp_path, use_tokens=False)).special_tokens(info_of(cfg)) == []


# ------------------------------------------------------------------------------ VAFT

def test_vaft_weights_have_mean_one_and_are_flat_for_equal_values():
    w = gpr.vaft_weights([0.0, 0.5, 1.0], floor=0.5)
    assert math.isclose(sum(w) / 3, 1.0) and w == sorted(w)
    assert math.isclose(w[2] / w[0], 1.5 / 0.5)
    assert gpr.vaft_weights([0.3] * 4, floor=0.5) == [1.0] * 4
    with pytest.raises(InputError):
        gpr.vaft_weights([float("nan")], 0.5)
    with pytest.raises(InputError):
        gpr.vaft_weights([0.0, 0.0], 0.0)


def test_vaft_weights_reach_the_loss_by_the_expected_factor(tmp_path, processed):
    from minionerec.llm import TinyModelSpec, build_tiny_qwen2, train_bpe_tokenizer

    tokenizer = train_bpe_tokenizer(["a b c d e f g"] * 10, 280)
    model = build_tiny_qwen2(len(tokenizer), TinyModelSpec(32, 1, 2, 1, 64), tokenizer.eos_token_id, 0).eval()
    collate = llm.PaddingCollator(tokenizer.pad_token_id)
    features = [{"input_ids": [5, 6, 7, 8, 9], "labels": [-100, -100, 7, 8, 9]},
                {"input_ids": [10, 11, 12], "labels": [-100, 12, 3]}]
    plain, _ = llm.response_loss(model, collate(features))
    ones, _ = llm.response_loss(model, collate([{**f, "sample_weight": 1.0} for f in features]))
    assert torch.allclose(ones, plain)
    scaled, _ = llm.response_loss(model, collate([{**f, "sample_weight": 2.5} for f in features]))
    assert torch.allclose(scaled, 2.5 * plain)
    # mixed weights: a weighted token mean (3 tokens of row 0, 2 of row 1), computed from per-row losses
    row0, _ = llm.response_loss(model, collate(features[:1]))
    row1, _ = llm.response_loss(model, collate(features[1:]))
    mixed, _ = llm.response_loss(model, collate([{**features[0], "sample_weight": 0.5},
                                                 {**features[1], "sample_weight": 2.0}]))
    assert torch.allclose(mixed, (0.5 * 3 * row0 + 2.0 * 2 * row1) / 5, atol=1e-5)


def test_vaft_sft_data_carries_value_weights(tmp_path, processed):
    converted(tmp_path, processed)
    cfg = sft_config(tmp_path, processed)
    sft_data = llm.load_sft_data(cfg, gpr.GPRVariant(gcfg(tmp_path, vaft=True)))
    values = gpr.read_item_features(gpr.SideFiles.of(processed, "T").items)
    next_w = [w for s, w in zip(sft_data.train, sft_data.train_weights) if s.task == "next_sid"]
    other_w = [w for s, w in zip(sft_data.train, sft_data.train_weights) if s.task != "next_sid"]
    assert math.isclose(sum(next_w) / len(next_w), 1.0, rel_tol=1e-9) and set(other_w) == {1.0}
    by_target = {s.target_item: w for s, w in zip(sft_data.train, sft_data.train_weights) if s.task == "next_sid"}
    ranked = sorted(by_target, key=lambda i: values[i].value)
    assert [by_target[i] for i in ranked] == sorted(by_target.values())


# ------------------------------------------------------------------------------ HEPO

TARGET = "<a_1><b_2><c_3>"
GROUP = ["<a_9><b_2><c_3>", "<a_1><b_9><c_9>", "<a_1><b_2><c_9>", TARGET]  # wrong / a / a+b / all three


def test_hepo_level_rewards_on_a_hand_made_group():
    terminal = [0.0, 0.0, 0.0, 1.0]  # e.g. the rule reward
    r = gpr.level_rewards(GROUP, [TARGET] * 4, terminal, alphas=[0.1, 0.2], num_levels=3)
    expected = torch.tensor([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.1, 0.2, 0.0], [0.1, 0.2, 1.0]])
    assert torch.allclose(r, expected)
    returns = gpr.level_returns(r, gamma=1.0)
    assert torch.allclose(returns, torch.tensor([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.3, 0.2, 0.0], [1.3, 1.2, 1.0]]))
    adv = gpr.level_advantages(returns, group_size=4)
    # level a: the three beams right on a beat the wrong one; level b: a+b beats a-only; level c: only the exact one
    assert adv[0, 0] < adv[1, 0] < adv[2, 0] < adv[3, 0]
    assert adv[1, 1] == adv[0, 1] < adv[2, 1] < adv[3, 1]
    assert adv[0, 2] == adv[1, 2] == adv[2, 2] < adv[3, 2]
    assert torch.allclose(adv.mean(dim=0), torch.zeros(3), atol=1e-6)
    # plain GRPO on the same terminal reward gives the a-only and a+b beams the same advantage as the wrong one
    from minionerec.rl import group_advantages

    plain = group_advantages(torch.tensor(terminal), 4)
    assert plain[0] == plain[1] == plain[2]


def test_hepo_gamma_discounts_later_levels():
    r = torch.tensor([[0.1, 0.2, 1.0]])
    assert torch.allclose(gpr.level_returns(r, gamma=0.5), torch.tensor([[0.1 + 0.1 + 0.25, 0.2 + 0.5, 1.0]]))


def test_hepo_token_advantages_follow_the_levels():
    level_adv = torch.tensor([[1.0, 2.0, 3.0]])
    sid_ids = torch.tensor([10, 11, 12])
    type_tok, newline, eos = 50, 51, 52
    ids = torch.tensor([[type_tok, 10, 11, 12, newline, eos, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 0]])
    out = gpr.token_level_advantages(level_adv, ids, mask, sid_ids, coefs=[1.0, 1.0, 0.5])
    assert torch.allclose(out, torch.tensor([[1.0, 1.0, 2.0, 1.5, 1.5, 1.5, 0.0]]))


def test_hepo_rejects_bad_settings():
    cfg = gpr.GPRConfig(hepo_gamma=1.5)
    with pytest.raises(InputError, match="hepo_gamma"):
        cfg.check()
    with pytest.raises(InputError, match="hepo_alphas"):
        gpr.GPRConfig(hepo_alphas=[float("nan")]).check()


# ------------------------------------------------------------------------------ scripts

def test_amazon23_gpr_script_writes_plain_outputs_and_side_files(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    raw = tmp_path / "raw"
    raw.mkdir()
    meta = [{"parent_asin": f"P{i}", "title": f"Widget {i}", "price": [3.5, None, 120.0, 40.0][i], "store": "S"}
            for i in range(4)]
    reviews = [{"user_id": f"U{u}", "parent_asin": f"P{(u + k) % 4}", "rating": 5.0 - u, "timestamp": (T0 + k * DAY + u) * 1000}
               for u in range(3) for k in range(4)]
    (raw / "meta_Tiny.jsonl").write_text("\n".join(json.dumps(m) for m in meta) + "\n")
    (raw / "Tiny.jsonl").write_text("\n".join(json.dumps(r) for r in reviews) + "\n")
    cmd = [sys.executable, str(root / "data" / "amazon23_data_process_gpr.py"), "--dataset", "Tiny", "--input_path",
           str(raw), "--output_dir", str(tmp_path / "data"), "--user_k", "0", "--item_k", "0", "--st_year", "0",
           "--ed_year", "0", "--gpr.context_rule", "weekday"]
    done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    out = tmp_path / "data" / "Tiny"
    assert (out / "Tiny.train.inter").read_text().startswith("user_id:token\titem_id_list:token_seq\titem_id:token\n")
    feats = gpr.read_item_features(out / "Tiny.gpr.items.json")
    item2id = dict(line.split("\t") for line in (out / "Tiny.item2id").read_text().splitlines())
    assert feats[int(item2id["P1"])].price is None and feats[int(item2id["P1"])].type == "O"
    assert feats[int(item2id["P2"])].price == 120.0 and feats[int(item2id["P2"])].type == "I"
    contexts = gpr.read_contexts(out / "Tiny.test.gpr.tsv")
    assert {t for _, _, t in contexts} <= set(gpr.CONTEXT_TOKENS["weekday"])
    with pytest.raises(InputError, match="gpr.context_rule"):
        gpr.load_gpr_config(None, {"gpr.context_rule": "moon", "user_k": "0"})


def test_a_checkpoint_is_evaluated_with_the_prompt_it_learned(tmp_path):
    import yaml

    plain_ckpt = tmp_path / "plain"
    plain_ckpt.mkdir()
    with pytest.raises(InputError, match="not trained on the GPR prompt"):
        gpr.check_checkpoint_prompt(plain_ckpt, gpr.GPRConfig())
    gpr.check_checkpoint_prompt(plain_ckpt, gpr.GPRConfig(use_tokens=False))
    gpr_ckpt = tmp_path / "gpr"
    gpr_ckpt.mkdir()
    (gpr_ckpt / "gpr.config.yaml").write_text(yaml.safe_dump({"gpr": {"use_tokens": True, "target_type_prefix": True}}))
    gpr.check_checkpoint_prompt(gpr_ckpt, gpr.GPRConfig(use_tokens=True, target_type_prefix=True))
    with pytest.raises(InputError, match="target_type_prefix=true"):
        gpr.check_checkpoint_prompt(gpr_ckpt, gpr.GPRConfig(use_tokens=True, target_type_prefix=False))


def test_rl_samples_use_the_gpr_prompt_and_equal_rl_py_without_tokens(tmp_path, processed):
    from minionerec import rl

    written = converted(tmp_path, processed)
    cfg = rl.RLConfig(dataset="T", data_dir=str(tmp_path / "llm"), index_path=str(processed / "T.index.json"),
                      title_history_samples=5, eval_samples=3)
    items = llm.load_items(cfg.index_path, processed / "T.item.json")
    files = find_llm_data_files(cfg.data_dir, cfg.dataset)
    plain, plain_validation = rl.RLVariant().samples(cfg, files, items)
    off = gpr.GPRVariant(gcfg(tmp_path, use_tokens=False)).rl_variant(cfg)
    assert off.samples(cfg, files, items) == (plain, plain_validation) and len(plain_validation) > 0
    cfg.train_on_valid, cfg.eval_samples = True, 1  # both variants add the same valid rows
    with_valid, _ = rl.RLVariant().samples(cfg, files, items)
    next_sid_count = sum(x.task == "next_sid" for x in with_valid) - sum(x.task == "next_sid" for x in plain)
    _, rest = split_valid_by_user(read_split_csv(written["valid"]), 1, cfg.seed)
    assert off.samples(cfg, files, items)[0] == with_valid and next_sid_count == len(rest)
    cfg.train_on_valid, cfg.eval_samples = False, 3
    on, _ = gpr.GPRVariant(gcfg(tmp_path)).rl_variant(cfg).samples(cfg, files, items)
    assert [s.task for s in on] == [s.task for s in plain]
    for ours, theirs in zip(on, plain):
        if ours.task == "next_sid":
            assert ours.prompt != theirs.prompt and "[USER_" in ours.prompt and ours.target == theirs.target
        else:
            assert ours == theirs


# ------------------------------------------------------------------------------ the switch and its config

def test_bare_common_overrides_reach_the_gpr_section_and_the_switch_is_off_by_default(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("common:\n  dataset: T\n  workdir: runs/yaml\n  seed: 1\ngpr:\n  vaft: true\n")
    cfg = gpr.load_gpr_config(path, {"workdir": str(tmp_path / "w"), "seed": "7", "learning_rate": "0.1"})
    assert cfg.data_dir == f"{tmp_path / 'w'}/data/T" and cfg.seed == 7 and cfg.vaft and not cfg.enabled
    assert gpr.load_gpr_config(path, {"common.workdir": "x"}).data_dir == "x/data/T"
    assert gpr.load_gpr_config(path, {}, force_on=True).enabled
    assert gpr.load_gpr_config(path, {"gpr.enabled": "true"}).enabled


def test_switch_off_hooks_are_the_plain_behaviour(tmp_path):
    from minionerec.rl import RLVariant

    off = gpr.GPRVariant()
    assert not off.enabled and off.special_tokens(None) == [] and off.template_pieces() == []
    assert off.sample_weights([], "T") is None
    assert type(off.rl_variant(object())) is RLVariant
    off.check_checkpoint(tmp_path / "no-such-checkpoint")  # nothing to check with the switch off


# ------------------------------------------------------------------------------ upstream's GPR files

def upstream_layout(processed):
    """Turn the processed folder into what upstream's GPR data script writes: 4-column .inter files
    (one line left at 3 columns), item_type/final_value in item.json, user.json keyed by reviewer id."""
    files = gpr.SideFiles.of(processed, "T")
    contexts = {split: gpr.read_contexts(files.contexts[split]) for split in ("train", "valid", "test")}
    for p in (files.users, files.items, files.summary, *files.contexts.values()):
        p.unlink()
    upstream_e = ("[CTX_BROWSE]", "[CTX_SEARCH]", "[CTX_HOMEPAGE]")
    expected = {}
    for split in ("train", "valid", "test"):
        path = processed / f"T.{split}.inter"
        lines = path.read_text().splitlines()
        out = ["\t".join(gpr.UPSTREAM_INTER_HEADER)]
        tokens = []
        for k, line in enumerate(lines[1:]):
            token = upstream_e[k % 3]
            if split == "train" and k == 1:
                out.append(line)  # a 3-column line: upstream's default E token
                token = gpr.UPSTREAM_DEFAULT_CONTEXT
            else:
                out.append(f"{line}\t{token}")
            tokens.append(token)
        path.write_text("\n".join(out) + "\n")
        expected[split] = tokens
    items = json.loads((processed / "T.item.json").read_text())
    for key, rec in items.items():
        rec.update(item_type="I" if int(key) % 2 else "O", final_value=int(key) / 10)
    (processed / "T.item.json").write_text(json.dumps(items))
    (processed / "T.user.json").write_text(json.dumps({"u0": "[USER_HIGH_RATING]", "u2": "[USER_LOW_RATING]"}))
    return expected, contexts


def test_upstream_four_column_inter_files_and_item_fields_are_converted(tmp_path, processed):
    expected, _ = upstream_layout(processed)
    cfg = convert_dataset.ConvertConfig(dataset="T", data_dir=str(processed), output_dir=str(tmp_path / "llm"))
    written = convert_dataset.main(cfg, gpr.GPRVariant(gcfg(tmp_path)))
    inter_rows, _ = gpr.read_inter_with_contexts(processed / "T.train.inter")
    rows = gpr.read_gpr_csv(written["train"])
    kept = [t for r, t in zip(inter_rows, expected["train"]) if r.history]
    assert [g.context_token for g in rows] == kept and gpr.UPSTREAM_DEFAULT_CONTEXT in kept
    for g in rows:
        assert g.target_type == ("I" if g.row.item_id % 2 else "O")
        assert g.history_types == tuple("I" if i % 2 else "O" for i in g.row.history_item_id)
    users = {g.row.user_id: g.user_token for g in rows}
    assert users["A0"] == "[USER_HIGH_RATING]" and users["A1"] == "[USER_UNKNOWN]"  # joined through T.user2id
    assert [g.row for g in rows] == read_split_csv(written["train"])
    # VAFT reads upstream's final_value when our item file is absent
    values = gpr.GPRVariant(gcfg(tmp_path, vaft=True)).item_values(processed, "T", processed / "T.item.json")
    assert values[3].value == 0.3 and values[3].type == "I"


def test_a_bad_fourth_inter_column_names_the_line(tmp_path, processed):
    upstream_layout(processed)
    path = processed / "T.test.inter"
    lines = path.read_text().splitlines()
    lines[2] = lines[2].rsplit("\t", 1)[0] + "\t[CTX_MOON]"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"T.test.inter:3: unknown GPR token '\[CTX_MOON\]'"):
        gpr.read_inter_with_contexts(path)


UPSTREAM_CSV_HEADER = ("user_id,user_id_original_str,history_item_title,item_title,history_item_id,item_id,"
                       "history_item_sid,item_sid,e_token")


def test_upstream_gpr_csv_columns_are_read(tmp_path):
    path = tmp_path / "up.csv"
    path.write_text(UPSTREAM_CSV_HEADER + "\n"
                    "A5,5,\"['t1', 't2']\",t3,\"[1, 2]\",3,\"['<a_1><b_1>', '<a_2><b_2>']\",<a_3><b_3>,[CTX_SEARCH]\n"
                    "A6,6,['t1'],t2,[1],2,['<a_1><b_1>'],<a_2><b_2>,[CTX_BROWSE]\n")
    rows = gpr.read_gpr_csv(path, item_types={2: "I", 3: "I"}, user_tokens={6: "[USER_MID_RATING]"})
    assert [g.row for g in rows] == read_split_csv(path)  # the plain reader sees the plain columns
    assert [(g.user_token, g.context_token, g.history_types, g.target_type) for g in rows] == [
        ("[USER_UNKNOWN]", "[CTX_SEARCH]", ("O", "I"), "I"), ("[USER_MID_RATING]", "[CTX_BROWSE]", ("O",), "I")]
    prompt = gpr.gpr_next_item_prompt(rows[0])
    assert "[USER_UNKNOWN] [CTX_SEARCH] The user has interacted with items [O_TOKEN]<a_1><b_1>, [I_TOKEN]<a_2><b_2>" in prompt
    path.write_text(path.read_text().replace("[CTX_BROWSE]", "[CTX_NOWHERE]"))
    with pytest.raises(InputError, match=r"up.csv:3: unknown GPR token"):
        gpr.read_gpr_csv(path)
    path.write_text(UPSTREAM_CSV_HEADER.replace(",e_token", "") + "\nA6,6,['t1'],t2,[1],2,['<a_1><b_1>'],<a_2><b_2>\n")
    with pytest.raises(InputError, match="missing GPR column"):
        gpr.read_gpr_csv(path)


def test_evaluation_test_set_reads_the_csv_once_and_uses_the_gpr_prompt(tmp_path, processed, monkeypatch):
    from minionerec.gpr import rows as gpr_rows_module

    test_csv = converted(tmp_path, processed)["test"]
    calls = []
    real = gpr_rows_module.read_split_csv
    monkeypatch.setattr(gpr_rows_module, "read_split_csv", lambda path: calls.append(path) or real(path))
    expected = gpr.read_gpr_csv(test_csv)
    calls.clear()

    class Catalogue:  # the one method the test set needs
        @staticmethod
        def sid_to_items():
            return {g.row.item_sid: [g.row.item_id] for g in expected}

    from minionerec.eval import load_test_set

    test = load_test_set(test_csv, Catalogue(), 2, gpr.GPRVariant(gcfg(tmp_path)))
    assert calls == [test_csv]
    assert test.prompts == [gpr.gpr_next_item_prompt(g) for g in expected[:2]]
    assert test.target_sids == [g.row.item_sid for g in expected[:2]]
