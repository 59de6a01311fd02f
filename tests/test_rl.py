"""GRPO trainer: advantages, losses, constrained rollouts, dynamic sampling, a few real steps."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import TOY_SIDS, toy_next_sid_rows

from minionerec.decoding import SIDTrie
from minionerec.errors import InputError
from minionerec.llm import (
    TaskSample,
    TinyModelSpec,
    build_tiny_qwen2,
    extend_with_sid_tokens,
    format_response,
    train_bpe_tokenizer,
)
from minionerec.rl import (
    MiniOneRecGRPOConfig,
    MiniOneRecGRPOTrainer,
    TrieRollout,
    build_reward_set,
    full_sequence_logps,
    group_advantages,
    grpo_loss,
    k3_kl,
    nonzero_groups,
    shared_prefix_logps,
)
from minionerec.sid import parse_sid, sid_vocabulary

SIDS = TOY_SIDS
G = 4


def make_rows(n: int = 16) -> list[TaskSample]:
    return toy_next_sid_rows(n)


@pytest.fixture(scope="module")
def tiny():
    rows = make_rows()
    tokenizer = train_bpe_tokenizer([r.prompt for r in rows], vocab_size=320)
    spec = TinyModelSpec(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64)
    model = build_tiny_qwen2(len(tokenizer), spec, tokenizer.eos_token_id, seed=0)
    extend_with_sid_tokens(model, tokenizer, sid_vocabulary(parse_sid(s) for s in SIDS))
    with torch.no_grad():  # sharper logits so beam order and KL are meaningful
        model.get_input_embeddings().weight.normal_(0.0, 1.0)
    trie = SIDTrie.from_sids(SIDS, tokenizer)
    return model, tokenizer, trie, rows


def make_trainer(tiny, tmp_path, rows=None, reward_fn=None, **overrides):
    model, tokenizer, trie, default_rows = tiny
    settings = dict(
        output_dir=str(tmp_path / "rl"), per_device_train_batch_size=2 * G, num_generations=G, max_steps=3,
        learning_rate=5e-3, beta=0.04, logging_steps=1, save_strategy="no", report_to="none", use_cpu=True,
        seed=0, lr_scheduler_type="constant",
    )
    settings.update(overrides)
    args = MiniOneRecGRPOConfig(**settings)
    return MiniOneRecGRPOTrainer(
        model=model, args=args, train_dataset=rows or default_rows, processing_class=tokenizer,
        reward_fn=reward_fn or build_reward_set({"ranking": 1.0}),
        rollout_fn=TrieRollout(trie, tokenizer.pad_token_id, seed=0), valid_sids=set(SIDS),
    )


# ------------------------------------------------------------------------------ pure pieces

def test_group_advantages_by_hand():
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.5, 0.5])
    adv = group_advantages(rewards, 4, epsilon=1e-4)
    std = torch.tensor([1.0, 0.0, 0.0, 0.0]).std().item()  # unbiased, 0.5
    assert adv[:4].tolist() == pytest.approx([0.75 / (std + 1e-4), -0.25 / (std + 1e-4)] + [-0.25 / (std + 1e-4)] * 2)
    assert adv[4:].tolist() == [0.0] * 4
    assert group_advantages(rewards, 4, scale=False)[:2].tolist() == pytest.approx([0.75, -0.25])
    assert nonzero_groups(adv, 4).tolist() == [True, False]


def test_k3_kl_is_zero_at_equality_and_positive_otherwise():
    logp = torch.log(torch.tensor([0.5, 0.2]))
    assert k3_kl(logp, logp).abs().max() == 0
    ref = torch.log(torch.tensor([0.25, 0.4]))
    expected = [math.exp(r - p) - (r - p) - 1 for p, r in zip(logp.tolist(), ref.tolist())]
    assert k3_kl(logp, ref).tolist() == pytest.approx(expected)


def test_loss_aggregations_differ_as_specified():
    logps = torch.log(torch.tensor([[0.5, 0.5, 0.5], [0.25, 0.5, 0.5]])).requires_grad_()
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    adv = torch.tensor([1.0, -1.0])
    # ratio == 1 (one update per rollout), beta 0: grpo = -mean_seq(mean_tok(A)) = 0, dapo = -(3 - 1)/4.
    grpo, _ = grpo_loss(logps, logps.detach(), None, adv, mask, 0.0, "grpo")
    dapo, _ = grpo_loss(logps, logps.detach(), None, adv, mask, 0.0, "dapo")
    gspo, _ = grpo_loss(logps, logps.detach(), None, adv, mask, 0.0, "gspo")
    assert grpo.item() == pytest.approx(0.0)
    assert dapo.item() == pytest.approx(-0.5)
    assert gspo.item() == pytest.approx(0.0)
    # The policy gradient equals upstream's exp(logp - sg(logp)) * A: d/dlogp = -A / n_tokens(seq) / n_seq.
    grad, = torch.autograd.grad(grpo, logps)
    assert grad[0].tolist() == pytest.approx([-1 / 6] * 3)
    assert grad[1].tolist() == pytest.approx([0.5, 0.0, 0.0])


def test_ppo_clipping_stops_the_gradient_outside_the_range():
    old = torch.zeros(1, 2)
    logps = torch.tensor([[0.5, -0.5]], requires_grad=True)  # ratios e^0.5 = 1.65, e^-0.5 = 0.61
    loss, stats = grpo_loss(logps, old, None, torch.tensor([1.0]), torch.ones(1, 2), 0.0, "grpo", 0.2, 0.2)
    grad, = torch.autograd.grad(loss, logps)
    assert grad[0, 0].item() == 0.0      # positive advantage, ratio above 1 + eps: clipped
    assert grad[0, 1].item() != 0.0      # ratio below 1 - eps with A > 0: min keeps the unclipped term
    assert stats["clip_frac"].item() == pytest.approx(0.5)


def test_batch_not_divisible_by_group_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="multiple of num_generations"):
        MiniOneRecGRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=6, num_generations=4, use_cpu=True)


def test_shared_prompt_prefill_matches_the_full_forward_in_values_and_gradients(tiny):
    model, tokenizer, trie, rows = tiny
    prompts = tokenizer([r.prompt for r in rows[:2]], add_special_tokens=False, padding=True, return_tensors="pt")
    ids, mask = TrieRollout(trie, tokenizer.pad_token_id)(model, prompts["input_ids"], prompts["attention_mask"], G,
                                                          "beam_search", 1.0)
    ids[1, -1], mask[1, -1] = tokenizer.pad_token_id, 0  # a shorter completion: right padding must not matter
    args = (prompts["input_ids"], prompts["attention_mask"], ids, mask)
    model.train()
    full = full_sequence_logps(model, *args)
    grad_full = torch.autograd.grad((full * mask).sum(), list(model.parameters()), allow_unused=True)
    shared = shared_prefix_logps(model, *args)
    grad_shared = torch.autograd.grad((shared * mask).sum(), list(model.parameters()), allow_unused=True)
    model.eval()
    assert torch.allclose(full * mask, shared * mask, atol=1e-4)
    for a, b in zip(grad_full, grad_shared):
        if a is not None:
            assert torch.allclose(a, b, atol=1e-4, rtol=1e-3)


# ------------------------------------------------------------------------------- rollouts

@pytest.mark.parametrize("mode", ["beam_search", "beam_sample", "sample"])
def test_every_rollout_is_a_valid_item(tiny, mode):
    model, tokenizer, trie, rows = tiny
    rollout = TrieRollout(trie, tokenizer.pad_token_id, seed=0)
    prompts = tokenizer([r.prompt for r in rows[:3]], add_special_tokens=False, padding=True, return_tensors="pt")
    ids, mask = rollout(model, prompts["input_ids"], prompts["attention_mask"], G, mode, 1.5)
    assert ids.shape[0] == 3 * G
    texts = tokenizer.batch_decode([r[m.bool()].tolist() for r, m in zip(ids, mask)], skip_special_tokens=True)
    sids = [t.strip() for t in texts]
    assert all(s in SIDS for s in sids)
    assert all(r[m.bool()][-1].item() == tokenizer.eos_token_id for r, m in zip(ids, mask))
    if mode != "sample":
        for g in range(3):
            assert len(set(sids[g * G:(g + 1) * G])) == G  # beams are distinct items


def test_duplicate_history_rows_each_get_their_own_reward(tiny, tmp_path):
    model, tokenizer, trie, rows = tiny
    base = rows[0]
    trainer = make_trainer(tiny, tmp_path)
    prompts = tokenizer([base.prompt], add_special_tokens=False, return_tensors="pt")
    beams = trie.sids
    ids, mask = TrieRollout(trie, tokenizer.pad_token_id)(model, prompts["input_ids"], prompts["attention_mask"], G,
                                                          "beam_search", 1.0)
    top = [t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True)]
    assert set(top) <= set(beams)
    # Same prompt (same history), different targets: beam 0 and beam 2 of the same G beams.
    row_a = TaskSample("next_sid", base.prompt, format_response(top[0]), top[0], SIDS.index(top[0]), base.history_items)
    row_b = TaskSample("next_sid", base.prompt, format_response(top[2]), top[2], SIDS.index(top[2]), base.history_items)
    scored = trainer._score([row_a, row_b])
    assert scored.completions[:G] == scored.completions[G:]
    assert scored.parts["ranking"][0].item() == 1.0 and scored.parts["ranking"][G + 2].item() == 1.0
    assert scored.parts["ranking"][2].item() < 0 and scored.parts["ranking"][G].item() < 0


def test_add_gt_puts_the_missing_target_last_and_leaves_groups_with_a_hit_alone(tiny, tmp_path):
    model, tokenizer, trie, rows = tiny
    base = rows[0]
    plain = make_trainer(tiny, tmp_path)._score([base])
    beams = plain.completions[:G]
    missing = next(s for s in SIDS if s not in beams)
    row_hit = TaskSample("next_sid", base.prompt, format_response(beams[1]), beams[1], SIDS.index(beams[1]),
                         base.history_items)
    row_miss = TaskSample("next_sid", base.prompt, format_response(missing), missing, SIDS.index(missing),
                          base.history_items)
    scored = make_trainer(tiny, tmp_path, add_gt=True)._score([row_hit, row_miss])
    assert scored.completions[:G] == beams  # the target was among the beams: unchanged
    assert scored.completions[G:2 * G - 1] == beams[:-1] and scored.completions[-1] == missing
    expected_ids = tokenizer(format_response(missing), add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert scored.completion_ids[-1] == expected_ids
    # ... tokenized exactly as the constrained decoder emits an item:
    assert plain.completion_ids[0] == tokenizer(format_response(beams[0]), add_special_tokens=False)["input_ids"] + [
        tokenizer.eos_token_id]
    assert scored.parts["ranking"][-1].item() == 1.0
    assert nonzero_groups(scored.advantages, G).all()


def test_dynamic_sampling_drops_exactly_the_zero_variance_groups(tiny, tmp_path):
    rows = make_rows()
    informative = {r.prompt for i, r in enumerate(rows) if i % 2 == 0}

    def reward(completions, batch_rows, group_size):
        # Even rows: rank-dependent rewards (non-zero advantages); odd rows: constant (all-zero advantages).
        out = []
        for i, row in enumerate(batch_rows):
            out.append(float(i % group_size) if row.prompt in informative else 1.0)
        return out, {"probe": out}

    trainer = make_trainer(tiny, tmp_path, rows=rows, reward_fn=reward, dynamic_sampling=True, max_refill_rounds=20,
                           per_device_train_batch_size=4 * G)
    first = [rows[0], rows[1], rows[2], rows[3]]
    batch, stats = trainer._collect_groups(first)
    assert len(batch.rows) == 4
    assert all(r.prompt in informative for r in batch.rows)
    assert batch.rows[:2] == [rows[0], rows[2]]
    assert stats["zero_adv_frac"] == pytest.approx(0.5)
    assert 0 < stats["dropped_frac"] < 1
    assert nonzero_groups(batch.advantages, G).all()


# ------------------------------------------------------------------------------ training

def test_a_few_grpo_steps_change_the_policy_and_keep_kl_finite(tiny, tmp_path):
    model = tiny[0]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = make_trainer(tiny, tmp_path, max_steps=3)
    trainer.train()
    changed = sum(not torch.equal(before[n], p.detach()) for n, p in model.named_parameters())
    assert changed > 0
    logs = [h for h in trainer.state.log_history if "kl" in h]
    assert len(logs) == 3
    for entry in logs:
        assert math.isfinite(entry["kl"]) and entry["kl"] >= 0
        assert entry["valid_rate"] == 1.0
        for key in ("reward", "reward_std", "zero_adv_frac", "time/rollout", "time/scoring", "time/update"):
            assert key in entry
    assert logs[-1]["kl"] > 0  # the policy moved away from the reference


def test_reference_model_is_ema_synced(tiny, tmp_path):
    model = tiny[0]
    trainer = make_trainer(tiny, tmp_path, max_steps=1, sync_ref_model=True, ref_model_sync_steps=1,
                           ref_model_mixup_alpha=0.5)
    ref_before = [p.detach().clone() for p in trainer.ref_model.parameters()]
    trainer.train()
    for before, ref, policy in zip(ref_before, trainer.ref_model.parameters(), model.parameters()):
        assert torch.allclose(ref, 0.5 * before + 0.5 * policy.detach(), atol=1e-6)
    assert any(not torch.equal(b, r) for b, r in zip(ref_before, trainer.ref_model.parameters()))


def test_several_updates_per_rollout_reuse_the_rollout(tiny, tmp_path):
    calls = []
    model, tokenizer, trie, rows = tiny
    rollout = TrieRollout(trie, tokenizer.pad_token_id)

    def counting(*args):
        calls.append(torch.is_grad_enabled())
        return rollout(*args)

    trainer = make_trainer(tiny, tmp_path, max_steps=4, num_iterations=2, beta=0.0)
    trainer.rollout_fn = counting
    seen = []  # (batch, max |log pi - log pi_rollout|) per update
    compute_loss = trainer.compute_loss

    def recording(model, inputs, *args, **kwargs):
        with torch.no_grad():
            drift = (trainer._completion_logps(model, inputs) - inputs["old_logps"]).abs().max().item()
        seen.append((inputs, drift))
        return compute_loss(model, inputs, *args, **kwargs)

    trainer.compute_loss = recording
    trainer.train()
    assert len(calls) == 2
    assert not any(calls)  # rollouts build no autograd graph
    batches = [b for b, _ in seen]
    assert len(batches) == 4 and batches[0] is batches[1] and batches[2] is batches[3] and batches[0] is not batches[2]
    # the first update of a rollout sees the rollout policy (ratio 1); the second one a moved policy (ratio != 1)
    assert seen[0][1] < 1e-5 and seen[2][1] < 1e-5
    assert seen[1][1] > 1e-4 and seen[3][1] > 1e-4
    assert all(0.0 <= h["clip_frac"] <= 1.0 for h in trainer.state.log_history if "clip_frac" in h)


def test_rl_samples_use_upstreams_rl_wording_and_the_evaluated_next_item_prompt():
    from minionerec.io import SplitRow
    from minionerec.llm import ItemText, next_item_prompt
    from minionerec.rl import RLConfig, build_rl_samples

    items = [ItemText(i, sid, f"Item {i}", f"Thing number {i}." if i % 2 else "") for i, sid in enumerate(SIDS)]
    rows = [SplitRow("U1", ("Item 0", "Item 1"), "Item 2", (0, 1), 2, (SIDS[0], SIDS[1]), SIDS[2])]
    cfg = RLConfig(dataset="T", tasks=["next_sid", "title2sid", "description2sid", "title_history2sid"],
                   title_history_samples=0, category="Industrial_and_Scientific")
    by_task: dict[str, list[TaskSample]] = {}
    for s in build_rl_samples(cfg, rows, items):
        by_task.setdefault(s.task, []).append(s)
    assert [s.prompt for s in by_task["next_sid"]] == [next_item_prompt([SIDS[0], SIDS[1]])]
    # upstream rl.py's prompts (reference 7.2), verbatim: no header, no instruction, the RL sentence
    assert [s.prompt for s in by_task["title_history2sid"]] == [(
        '### User Input: \nGiven the title sequence of user historical interactive items: "Item 0", "Item 1", '
        "can you recommend a suitable next item for the user?\n\n### Response:\n")]
    assert by_task["title2sid"][3].prompt == "### User Input: \nWhich item has the title: Item 3?\n\n### Response:\n"
    assert by_task["description2sid"][0].prompt == (
        '### User Input: \nAn item can be described as follows: "Thing number 1.". Which item is it describing?'
        "\n\n### Response:\n")
    assert [s.target_item for s in by_task["description2sid"]] == [i for i in range(len(SIDS)) if i % 2]
