"""Constrained SID decoding: trie, logits processor, dedicated beam search, sampling."""

from __future__ import annotations

import random

import pytest
import torch
from conftest import build_model, build_tokenizer
from transformers import GenerationConfig

from minionerec.decoding import (
    SIDTrie,
    TrieLogitsProcessor,
    encode_prompts,
    generate_with_trie,
    left_pad,
    pad_token_id_of,
    sid_beam_search,
    sid_sample,
)
from minionerec.errors import InputError
from minionerec.llm import next_item_prompt
from minionerec.metrics import evaluate_predictions
from minionerec.sid import parse_sid, sid_vocabulary

HAND_MADE = [
    "<a_1><b_1><c_1>",
    "<a_1><b_1><c_2>",
    "<a_1><b_2><c_1>",
    "<a_2><b_1><c_1>",
    "<a_1><b_1><c_1><d_0>",   # a 3-token SID that is a prefix of 4-token ones
    "<a_1><b_1><c_1><d_1>",
    "<a_3><b_4><c_5><d_0>",
]


def _catalogue(seed: int = 0, n: int = 40) -> list[str]:
    rng = random.Random(seed)
    sids = sorted({f"<a_{rng.randrange(5)}><b_{rng.randrange(4)}><c_{rng.randrange(4)}>" for _ in range(n)})
    return sids + [sids[0] + "<d_0>", sids[0] + "<d_1>", sids[2] + "<d_0>"]


pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def setup():
    sids = _catalogue()
    tok = build_tokenizer(sid_vocabulary([parse_sid(s) for s in sids]))
    model = build_model(len(tok), seed=3)
    trie = SIDTrie.from_sids(sids, tok)
    rng = random.Random(1)
    prompts = [next_item_prompt(rng.sample(sids, rng.randint(1, 5))) for _ in range(5)]
    return sids, tok, model, trie, encode_prompts(tok, prompts)


def _ids(tok, text: str) -> list[int]:
    return tok.encode(text, add_special_tokens=False)


def _hf_sids(tok, generated: torch.Tensor, per_user: int) -> list[list[str]]:
    texts = [t.strip() for t in tok.batch_decode(generated, skip_special_tokens=True)]
    return [texts[i:i + per_user] for i in range(0, len(texts), per_user)]


# --------------------------------------------------------------------------------------------
# Trie
# --------------------------------------------------------------------------------------------

def test_trie_hand_made_mixed_lengths_and_shared_prefixes():
    tok = build_tokenizer(sid_vocabulary([parse_sid(s) for s in HAND_MADE]))
    trie = SIDTrie.from_sids(HAND_MADE + [HAND_MADE[0]], tok)  # duplicate SIDs (collisions) collapse
    assert trie.num_sids == len(HAND_MADE)
    nl, eos = _ids(tok, "\n"), tok.eos_token_id
    assert len(nl) == 1
    tid = {t: _ids(tok, t)[0] for t in sid_vocabulary([parse_sid(s) for s in HAND_MADE])}

    def allowed_after(prefix: list[int]) -> set[int]:
        node = trie.walk(torch.tensor([prefix], dtype=torch.long).reshape(1, -1))
        tokens, nxt, _ = trie.allowed(node)
        return {t for t, n in zip(tokens[0].tolist(), nxt[0].tolist()) if n >= 0} or set(tokens[0].tolist())

    assert allowed_after([]) == {tid["<a_1>"], tid["<a_2>"], tid["<a_3>"]}
    assert allowed_after([tid["<a_1>"]]) == {tid["<b_1>"], tid["<b_2>"]}
    assert allowed_after([tid["<a_1>"], tid["<b_1>"]]) == {tid["<c_1>"], tid["<c_2>"]}
    # after <a_1><b_1><c_1>: end the 3-token SID or continue to a 4th level
    assert allowed_after([tid["<a_1>"], tid["<b_1>"], tid["<c_1>"]]) == {nl[0], tid["<d_0>"], tid["<d_1>"]}
    assert allowed_after([tid["<a_3>"], tid["<b_4>"], tid["<c_5>"]]) == {tid["<d_0>"]}
    assert allowed_after([tid["<a_1>"], tid["<b_1>"], tid["<c_2>"], nl[0]]) == {eos}
    # off the trie: only EOS, and the walk stays dead
    assert allowed_after([tid["<a_2>"], tid["<b_2>"]]) == {eos}
    assert allowed_after([tid["<b_1>"]]) == {eos}
    # every SID's completion ends at its own leaf
    for index, seq in enumerate(trie.sequences):
        node = trie.walk(torch.tensor([seq]))
        assert trie.leaf_sid[node].item() == index
        assert seq[-2:] == [nl[0], eos]
    assert trie.max_depth == 6
    # forced tails: after <a_1><b_1><c_1> the completion still branches; deeper nodes never do
    assert trie.forced_from_depth == 4
    a3 = trie.walk(torch.tensor([[tid["<a_3>"]]]))
    assert trie.tail_leaf[a3].item() == HAND_MADE.index("<a_3><b_4><c_5><d_0>")
    assert trie.tail_tokens[a3][0, :5].tolist() == [tid["<b_4>"], tid["<c_5>"], tid["<d_0>"], nl[0], eos]
    assert trie.tail_leaf[0].item() == -1


def test_allowed_normalization_skips_forced_steps_and_equals_generate():
    sids = _catalogue(seed=4)[:-3]            # uniform 3-token SIDs: the tail is forced from depth 3
    tok = build_tokenizer(sid_vocabulary([parse_sid(s) for s in sids]))
    model = build_model(len(tok), seed=2)
    trie = SIDTrie.from_sids(sids, tok)
    assert trie.forced_from_depth == 3
    rng = random.Random(3)
    prompts = encode_prompts(tok, [next_item_prompt(rng.sample(sids, 3)) for _ in range(3)])
    pad = pad_token_id_of(tok)
    mine = sid_beam_search(model, trie, prompts, 10, pad, normalization="allowed")
    ids, mask = left_pad(prompts, pad)
    generated = generate_with_trie(model, trie, ids, mask, num_beams=10, pad_token_id=pad, normalization="allowed")
    assert mine.sid_strings(trie) == _hf_sids(tok, generated, 10)
    for u in range(3):
        for j in range(10):
            comp = mine.completion_ids[u, j][mine.completion_mask[u, j].bool()].tolist()
            assert comp == trie.sequences[mine.sid_index[u, j].item()]
    sampled = sid_sample(model, trie, prompts, 5, pad, normalization="allowed", generator=torch.Generator().manual_seed(0))
    assert (sampled.sid_index >= 0).all()
    for u in range(3):
        for j in range(5):
            comp = sampled.completion_ids[u, j][sampled.completion_mask[u, j].bool()].tolist()
            assert comp == trie.sequences[sampled.sid_index[u, j].item()]


def test_trie_rejects_tokenizer_without_sid_tokens():
    tok = build_tokenizer(["<a_1>", "<b_1>"])
    with pytest.raises(InputError, match="lacks"):
        SIDTrie.from_sids(["<a_1><b_1><c_1>"], tok)


def test_trie_rejects_malformed_sid():
    tok = build_tokenizer(["<a_1>", "<b_1>", "<c_1>"])
    with pytest.raises(ValueError):
        SIDTrie.from_sids(["<a_1><c_1>"], tok)


# --------------------------------------------------------------------------------------------
# Logits processor
# --------------------------------------------------------------------------------------------

def test_processor_is_stateless_and_masks_with_minus_inf(setup):
    sids, tok, model, trie, prompts = setup
    ids, _ = left_pad(prompts[:2], pad_token_id_of(tok))
    proc = TrieLogitsProcessor(trie, ids.shape[1])
    scores = torch.randn(2, len(tok))
    first = proc(ids, scores.clone())
    again = proc(ids, scores.clone())
    assert torch.equal(first, again)
    allowed = torch.isfinite(first[0]).nonzero().flatten().tolist()
    assert set(allowed) == set(trie.child_tokens[0].tolist())
    assert torch.equal(first[0, allowed], scores[0, allowed])
    # a row that left the trie may only end
    junk = torch.cat([ids, torch.full((2, 1), _ids(tok, "x")[0])], 1)
    dead = proc(junk, scores.clone())
    assert torch.isfinite(dead).sum(-1).tolist() == [1, 1]
    assert dead[:, tok.eos_token_id].isfinite().all()


def test_processor_trie_normalization_sums_to_one(setup):
    _, tok, _, trie, prompts = setup
    ids, _ = left_pad(prompts[:3], pad_token_id_of(tok))
    scores = torch.log_softmax(torch.randn(3, len(tok)), -1)
    out = TrieLogitsProcessor(trie, ids.shape[1], "trie")(ids, scores)
    root = trie.child_tokens[0]
    full = torch.log_softmax(scores[:, trie.vocab], -1)
    expected = full[:, torch.searchsorted(trie.vocab, root)]
    assert torch.allclose(out[:, root], expected, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Dedicated search == generate + processor
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("normalization", ["full", "trie", "allowed"])
@pytest.mark.parametrize("num_beams", [4, 12])
def test_dedicated_search_equals_generate(setup, normalization, num_beams):
    sids, tok, model, trie, prompts = setup
    pad = pad_token_id_of(tok)
    mine = sid_beam_search(model, trie, prompts, num_beams, pad, batch_size=2, normalization=normalization)
    ids, mask = left_pad(prompts, pad)
    generated = generate_with_trie(model, trie, ids, mask, num_beams=num_beams, pad_token_id=pad, normalization=normalization)
    assert mine.sid_strings(trie) == _hf_sids(tok, generated, num_beams)
    assert (mine.sid_index >= 0).all()
    assert torch.all(mine.scores[:, :-1] >= mine.scores[:, 1:])


def _completion_lengths(decoded) -> torch.Tensor:
    return decoded.completion_mask.sum(-1).float()


@pytest.mark.parametrize("normalization", ["full", "allowed"])
@pytest.mark.parametrize("length_penalty", [1.0, -1.0])
def test_length_penalty_equals_generate(setup, normalization, length_penalty):
    """Mixed 3/4-token SIDs: finished beams rank by score / length ** lp, as HF's beam search."""
    sids, tok, model, trie, prompts = setup
    pad = pad_token_id_of(tok)
    mine = sid_beam_search(model, trie, prompts, 12, pad, batch_size=2, normalization=normalization,
                           length_penalty=length_penalty)
    ids, mask = left_pad(prompts, pad)
    generated = generate_with_trie(model, trie, ids, mask, num_beams=12, pad_token_id=pad,
                                   normalization=normalization, length_penalty=length_penalty)
    assert mine.sid_strings(trie) == _hf_sids(tok, generated, 12)
    keys = mine.scores / _completion_lengths(mine) ** length_penalty
    assert torch.all(keys[:, :-1] >= keys[:, 1:])


def test_length_penalty_reorders_only_completions_of_different_lengths(setup):
    sids, tok, model, trie, prompts = setup
    pad = pad_token_id_of(tok)
    plain = sid_beam_search(model, trie, prompts, 12, pad)
    assert torch.equal(sid_beam_search(model, trie, prompts, 12, pad, length_penalty=0.0).scores, plain.scores)
    longer = sid_beam_search(model, trie, prompts, 12, pad, length_penalty=3.0)
    assert longer.sid_strings(trie) != plain.sid_strings(trie)   # the 4-token SIDs move up
    lengths = _completion_lengths(longer)
    for u in range(len(prompts)):
        for length in lengths[u].unique():
            same = lengths[u] == length
            # among completions of one length the order is the plain score order
            assert torch.all(longer.scores[u][same][:-1] >= longer.scores[u][same][1:])

    uniform = _catalogue(seed=4)[:-3]           # every SID has 3 tokens: one completion length
    tok3 = build_tokenizer(sid_vocabulary([parse_sid(s) for s in uniform]))
    model3 = build_model(len(tok3), seed=2)
    trie3 = SIDTrie.from_sids(uniform, tok3)
    rng = random.Random(5)
    prompts3 = encode_prompts(tok3, [next_item_prompt(rng.sample(uniform, 3)) for _ in range(3)])
    pad3 = pad_token_id_of(tok3)
    base = sid_beam_search(model3, trie3, prompts3, 8, pad3)
    for lp in (2.0, -1.0):
        ranked = sid_beam_search(model3, trie3, prompts3, 8, pad3, length_penalty=lp)
        assert ranked.sid_strings(trie3) == base.sid_strings(trie3)
        assert torch.equal(ranked.scores, base.scores)


def test_length_penalty_stop_heuristic_is_hfs_early_stopping_false():
    """A user stops taking finished beams once its pool is full and its best running beam, normalised at
    the current length, cannot beat the pool's worst (HF's ``early_stopping=False`` heuristic)."""
    from minionerec.decoding.search import _still_open

    inf = float("inf")
    keys = torch.tensor([[-1.0, -2.0], [-1.0, -inf], [-1.0, -2.0], [-1.0, -2.0]])
    done = (keys, keys, torch.zeros(4, 2, dtype=torch.long), torch.zeros(4, 2, 3, dtype=torch.long))
    running = torch.tensor([[-9.0, -10.0], [-9.0, -10.0], [-3.0, -4.0], [-9.0, -10.0]])
    still = _still_open(torch.tensor([[True], [True], [True], [False]]), done, running, 3, 1.0)
    # full and -9/3 <= -2: closed; pool not full: open; -3/3 > -2: open; closed stays closed
    assert still.squeeze(-1).tolist() == [False, True, True, False]


def test_shared_prefix_attention_equals_expanded_cache(setup):
    sids, tok, model, trie, prompts = setup
    pad = pad_token_id_of(tok)
    shared = sid_beam_search(model, trie, prompts, 12, pad, batch_size=3, shared_prefix=True)
    expanded = sid_beam_search(model, trie, prompts, 12, pad, batch_size=3, shared_prefix=False)
    assert shared.sid_strings(trie) == expanded.sid_strings(trie)
    assert torch.allclose(shared.scores, expanded.scores, atol=1e-4)
    assert torch.equal(shared.completion_ids, expanded.completion_ids)
    assert model.config._attn_implementation == "sdpa"  # restored after decoding


def test_scores_and_completions_match_a_teacher_forced_forward(setup):
    sids, tok, model, trie, prompts = setup
    pad = pad_token_id_of(tok)
    res = sid_beam_search(model, trie, prompts[:2], 3, pad, batch_size=2)
    for u in range(2):
        for j in range(3):
            comp = res.completion_ids[u, j][res.completion_mask[u, j].bool()].tolist()
            assert comp == trie.sequences[res.sid_index[u, j].item()]
            full = torch.tensor([prompts[u] + comp])
            with torch.no_grad():
                logp = torch.log_softmax(model(full).logits[0, :-1].float(), -1)
            target = full[0, 1:]
            seq_logp = logp[torch.arange(len(target)), target][-len(comp):].sum()
            assert seq_logp.item() == pytest.approx(res.scores[u, j].item(), abs=1e-3)


def test_checkpoint_generation_config_cannot_leak(setup):
    sids, tok, model, trie, prompts = setup
    pad = pad_token_id_of(tok)
    ids, mask = left_pad(prompts[:2], pad)
    clean = generate_with_trie(model, trie, ids, mask, num_beams=5, pad_token_id=pad)
    saved = model.generation_config
    model.generation_config = GenerationConfig(do_sample=True, top_k=1, top_p=0.1, temperature=0.3,
                                               repetition_penalty=5.0, no_repeat_ngram_size=1, num_beams=2)
    try:
        leaky = generate_with_trie(model, trie, ids, mask, num_beams=5, pad_token_id=pad)
        mine = sid_beam_search(model, trie, prompts[:2], 5, pad)
    finally:
        model.generation_config = saved
    assert torch.equal(clean, leaky)
    assert mine.sid_strings(trie) == _hf_sids(tok, clean, 5)


# --------------------------------------------------------------------------------------------
# Validity under adversarial logits; sampling
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def adversarial(setup):
    """An untied LM head whose bias favours every token the trie never allows next."""
    sids, tok, _, trie, prompts = setup
    model = build_model(len(tok), seed=5)
    head = torch.nn.Linear(model.config.hidden_size, len(tok), bias=True)
    with torch.no_grad():
        head.weight.copy_(model.lm_head.weight)
        head.bias.fill_(25.0)
        head.bias[trie.vocab] = -25.0
        head.bias[trie.child_tokens[0]] = -60.0  # first-level tokens are least likely of all
    model.lm_head = head
    return model


def test_cc_is_zero_under_adversarial_logits(setup, adversarial):
    sids, tok, _, trie, prompts = setup
    pad = pad_token_id_of(tok)
    catalogue = {s: [i] for i, s in enumerate(trie.sids)}
    targets = [trie.sids[0]] * len(prompts)
    gen = torch.Generator().manual_seed(0)
    outputs = {
        "beam": sid_beam_search(adversarial, trie, prompts, 8, pad).sid_strings(trie),
        "beam-trie-norm": sid_beam_search(adversarial, trie, prompts, 8, pad, normalization="trie").sid_strings(trie),
        "beam-sample": sid_beam_search(adversarial, trie, prompts, 8, pad, sample=True, generator=gen).sid_strings(trie),
        "sample": sid_sample(adversarial, trie, prompts, 8, pad, temperature=1.5, generator=gen).sid_strings(trie),
        "sample-allowed": sid_sample(adversarial, trie, prompts, 8, pad, normalization="allowed",
                                     generator=gen).sid_strings(trie),
        "beam-allowed": sid_beam_search(adversarial, trie, prompts, 8, pad, normalization="allowed").sid_strings(trie),
    }
    ids, mask = left_pad(prompts, pad)
    outputs["generate"] = _hf_sids(tok, generate_with_trie(adversarial, trie, ids, mask, num_beams=8, pad_token_id=pad), 8)
    outputs["generate-sample"] = _hf_sids(tok, generate_with_trie(
        adversarial, trie, ids, mask, num_beams=1, num_return_sequences=8, pad_token_id=pad, do_sample=True,
        temperature=2.0, generator_seed=0), 8)
    for name, preds in outputs.items():
        assert all(len(p) == 8 for p in preds), name
        assert evaluate_predictions(preds, targets, catalogue, ks=(1, 5)).cc == 0, name
    assert outputs["beam"] == outputs["generate"]
    for preds in outputs["beam"] + outputs["beam-sample"]:
        assert len(set(preds)) == len(preds)  # beam outputs are distinct items


def test_sampling_is_seeded_and_scores_are_log_probs(setup):
    sids, tok, model, trie, prompts = setup
    pad = pad_token_id_of(tok)
    a = sid_sample(model, trie, prompts[:2], 6, pad, generator=torch.Generator().manual_seed(7))
    b = sid_sample(model, trie, prompts[:2], 6, pad, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a.sid_index, b.sid_index) and torch.equal(a.completion_ids, b.completion_ids)
    assert (a.sid_index >= 0).all()
    comp = a.completion_ids[0, 0][a.completion_mask[0, 0].bool()].tolist()
    full = torch.tensor([prompts[0] + comp])
    with torch.no_grad():
        logp = torch.log_softmax(model(full).logits[0, :-1].float(), -1)
    seq = logp[torch.arange(full.shape[1] - 1), full[0, 1:]][-len(comp):].sum()
    assert seq.item() == pytest.approx(a.scores[0, 0].item(), abs=1e-3)


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------

def test_more_beams_than_items_is_an_input_error(setup):
    sids, tok, model, trie, prompts = setup
    with pytest.raises(InputError, match="num_beams"):
        sid_beam_search(model, trie, prompts[:1], trie.num_sids + 1, pad_token_id_of(tok))


def test_empty_prompt_is_an_input_error(setup):
    _, tok, _, _, _ = setup
    with pytest.raises(InputError, match="empty"):
        encode_prompts(tok, ["a prompt", ""])
    with pytest.raises(InputError, match="empty"):
        left_pad([[1, 2], []], 0)


def test_catalogue_groups_colliding_rows_and_maps_decoded_items(setup):
    from minionerec.catalogue import CatalogueItem
    from minionerec.decoding import Catalogue, Decoded

    items = [CatalogueItem(parse_sid(s), f"t{i}", 100 + i) for i, s in enumerate(HAND_MADE[:3] + [HAND_MADE[1]])]
    catalogue = Catalogue.from_info(items)
    assert catalogue.sids == HAND_MADE[:3] and catalogue.sid_rows == [[0], [1, 3], [2]]
    assert catalogue.sid_to_items() == {HAND_MADE[0]: [100], HAND_MADE[1]: [101, 103], HAND_MADE[2]: [102]}
    decoded = Decoded(torch.tensor([[1, 2, 0]]), torch.zeros(1, 3), torch.zeros(1, 3, 5, dtype=torch.long),
                      torch.zeros(1, 3, 5, dtype=torch.long))
    assert decoded.item_rows(catalogue) == [[1, 2, 0]]
