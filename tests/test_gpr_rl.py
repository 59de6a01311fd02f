"""HEPO inside the GRPO trainer (rl_gpr.HEPOTrainer) and the type-prefixed decoding trie."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import TOY_SIDS, toy_next_sid_rows

from data import TaskSample
from LogitProcessor import SIDTrie, sid_beam_search
from minionerec import gpr
from minionerec.modeling import TinyModelSpec, build_tiny_qwen2, extend_with_sid_tokens, train_bpe_tokenizer
from minionerec.rl import MiniOneRecGRPOConfig, MiniOneRecGRPOTrainer, TrieRollout, build_reward_set
from minionerec.sid import parse_sid, sid_vocabulary
from rl_gpr import HEPOSettings, HEPOTrainer

SIDS = TOY_SIDS
G = 4


def make_rows(n: int = 8) -> list[TaskSample]:
    return toy_next_sid_rows(n)


def fresh_tiny():
    rows = make_rows()
    tokenizer = train_bpe_tokenizer([r.prompt for r in rows], vocab_size=320)
    model = build_tiny_qwen2(len(tokenizer), TinyModelSpec(32, 1, 2, 1, 64), tokenizer.eos_token_id, seed=0)
    extend_with_sid_tokens(model, tokenizer, sid_vocabulary(parse_sid(s) for s in SIDS))
    tokenizer.add_tokens(list(gpr.ITEM_TYPE_TOKENS.values()), special_tokens=True)
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    with torch.no_grad():
        torch.manual_seed(0)
        model.get_input_embeddings().weight.normal_(0.0, 1.0)
    return model, tokenizer, rows


def rank_reward(completions, rows, group_size):
    """Rank-dependent rewards: every group has non-zero advantages, so one step always moves the policy."""
    out = [float(i % group_size) / group_size for i in range(len(completions))]
    return out, {"rank": out}


def one_step(cls, model, tokenizer, rows, tmp_path, **kwargs):
    args = MiniOneRecGRPOConfig(
        output_dir=str(tmp_path / cls.__name__), per_device_train_batch_size=2 * G, num_generations=G, max_steps=1,
        learning_rate=5e-2, beta=0.04, logging_steps=1, save_strategy="no", report_to="none", use_cpu=True, seed=0,
        lr_scheduler_type="constant")
    trainer = cls(model=model, args=args, train_dataset=rows, processing_class=tokenizer,
                  reward_fn=rank_reward, rollout_fn=TrieRollout(SIDTrie.from_sids(SIDS, tokenizer),
                                                                                  tokenizer.pad_token_id, seed=0),
                  valid_sids=set(SIDS), **kwargs)
    trainer.train()
    return {n: p.detach().clone() for n, p in model.named_parameters()}


@pytest.fixture(scope="module")
def plain_step(tmp_path_factory):
    """The tiny policy, its initial weights, and its weights after one step of rl.py's trainer."""
    model, tokenizer, rows = fresh_tiny()
    start = copy.deepcopy(model.state_dict())
    plain = one_step(MiniOneRecGRPOTrainer, model, tokenizer, rows, tmp_path_factory.mktemp("plain"))
    model.load_state_dict(start)
    return model, tokenizer, rows, start, plain


def test_hepo_off_gives_the_same_update_as_rl_py(plain_step, tmp_path):
    model, tokenizer, rows, start, plain = plain_step
    model.load_state_dict(start)
    off = one_step(HEPOTrainer, model, tokenizer, rows, tmp_path, hepo=None)
    assert plain.keys() == off.keys()
    assert any(not torch.equal(plain[n], start[n]) for n in plain)
    for name in plain:
        assert torch.equal(plain[name], off[name]), name


def test_hepo_on_changes_the_update_and_is_deterministic(plain_step, tmp_path):
    model, tokenizer, rows, start, plain = plain_step
    settings = HEPOSettings(alphas=(0.3, 0.3), gamma=1.0, coefs=(1.0,))
    model.load_state_dict(start)
    hepo_a = one_step(HEPOTrainer, model, tokenizer, rows, tmp_path, hepo=settings)
    model.load_state_dict(start)
    hepo_b = one_step(HEPOTrainer, model, tokenizer, rows, tmp_path, hepo=settings)
    assert all(torch.isfinite(v).all() for v in hepo_a.values())
    assert any(not torch.equal(plain[n], hepo_a[n]) for n in plain)
    for name in hepo_a:
        assert torch.equal(hepo_a[name], hepo_b[name]), name


def test_hepo_advantages_inside_the_trainer_are_level_wise(tmp_path):
    model, tokenizer, rows = fresh_tiny()
    args = MiniOneRecGRPOConfig(output_dir=str(tmp_path / "t"), per_device_train_batch_size=G, num_generations=G,
                                max_steps=1, save_strategy="no", report_to="none", use_cpu=True, beta=0.0)
    trainer = HEPOTrainer(model=model, args=args, train_dataset=rows, processing_class=tokenizer,
                          reward_fn=build_reward_set({"rule": 1.0}),
                          rollout_fn=TrieRollout(SIDTrie.from_sids(SIDS, tokenizer), tokenizer.pad_token_id),
                          valid_sids=set(SIDS), hepo=HEPOSettings((0.1, 0.1), 1.0, (1.0,)))
    scored = trainer._score(rows[:1])
    assert scored.advantages.shape == (G, 3)
    batch = trainer._build_update_batch(scored)
    assert batch["advantages"].shape == batch["completion_ids"].shape
    for i in range(G):
        n = int(batch["completion_mask"][i].sum())
        levels = scored.advantages[i]
        assert torch.allclose(batch["advantages"][i, :3], levels)
        assert torch.allclose(batch["advantages"][i, 3:n], levels[2].expand(n - 3))


def test_gspo_with_hepo_is_rejected(tmp_path):
    from minionerec.errors import InputError

    model, tokenizer, rows = fresh_tiny()
    args = MiniOneRecGRPOConfig(output_dir=str(tmp_path / "t"), per_device_train_batch_size=G, num_generations=G,
                                save_strategy="no", report_to="none", use_cpu=True, loss_type="gspo")
    with pytest.raises(InputError, match="gspo"):
        HEPOTrainer(model=model, args=args, train_dataset=rows, processing_class=tokenizer,
                    reward_fn=build_reward_set({"rule": 1.0}),
                    rollout_fn=TrieRollout(SIDTrie.from_sids(SIDS, tokenizer), tokenizer.pad_token_id),
                    valid_sids=set(SIDS), hepo=HEPOSettings((0.1,), 1.0, (1.0,)))


def test_type_prefixed_trie_decodes_plain_sids_behind_their_type_token():
    model, tokenizer, rows = fresh_tiny()
    types = {s: "I" if i % 2 else "O" for i, s in enumerate(SIDS)}
    trie = gpr.type_prefixed_trie(SIDS, types, tokenizer)
    assert trie.sids == SIDS
    prompts = [tokenizer.encode(r.prompt, add_special_tokens=False) for r in rows[:2]]
    result = sid_beam_search(model, trie, prompts, 6, tokenizer.pad_token_id)
    type_ids = {tokenizer.convert_tokens_to_ids(t): k for k, t in gpr.ITEM_TYPE_TOKENS.items()}
    for user, sids in enumerate(result.sid_strings(trie)):
        assert len(set(sids)) == 6 and set(sids) <= set(SIDS)
        for beam, sid in enumerate(sids):
            first = int(result.completion_ids[user, beam, 0])
            assert type_ids[first] == types[sid]
            text = tokenizer.decode(result.completion_ids[user, beam][result.completion_mask[user, beam].bool()].tolist(),
                                    skip_special_tokens=True)
            assert text.strip() == sid
