"""LoRA (``sft.lora_r``) and frozen lower layers (``sft.freeze_layers``) on the tiny model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from test_sft import N_ITEMS, config, make_dataset

from minionerec import llm
from minionerec.errors import InputError
from minionerec.llm.efficient import apply_efficiency_keys


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("toy_efficient"))


def sid_mask(tokenizer) -> torch.Tensor:
    ids = [i for t, i in tokenizer.get_vocab().items() if re.fullmatch(r"<[a-h]_\d+>", t)]
    assert len(ids) == 4 + 3 + N_ITEMS
    mask = torch.zeros(len(tokenizer), dtype=torch.bool)
    mask[ids] = True
    return mask


def losses_of(run: Path, step: int) -> list[float]:
    history = json.loads((run / f"checkpoint-{step}" / "trainer_state.json").read_text())["log_history"]
    return [h["loss"] for h in history if "loss" in h]


def test_lora_trains_adapters_and_sid_rows_and_saves_the_merged_model(toy: Path) -> None:
    pytest.importorskip("peft")
    cfg = config(toy, output_dir=toy / "run_lora", num_layers=2, lora_r=4, lora_alpha=8, lora_dropout=0.0,
                 learning_rate=1e-2, max_steps=24, eval_steps=12)
    start, tokenizer, sid_ids = llm.build_model(cfg, llm.load_sft_data(cfg).items)
    start_weights = {k: v.detach().clone() for k, v in start.state_dict().items()}
    peft_model = apply_efficiency_keys(cfg, start, sid_ids)
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    hidden, inter = cfg.hidden_size, cfg.intermediate_size
    kv = hidden // cfg.num_heads * cfg.num_kv_heads
    # all-linear: q, k, v, o, gate, up, down; each adapter has r * (in + out) values
    per_layer = 4 * ((hidden + hidden) + (hidden + kv) * 2 + (hidden + hidden)) + 4 * ((hidden + inter) * 3)
    assert trainable == cfg.num_layers * per_layer + len(sid_ids) * hidden

    llm.main(cfg)
    out = Path(cfg.output_dir)
    losses = losses_of(out, 24)  # (a random tiny model learns slowly through rank-4 adapters)
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.1, losses
    assert not (out / "adapter_config.json").exists() and (out / "model.safetensors").is_file()
    trained, tokenizer = llm.load_pretrained(str(out))
    assert type(trained).__name__ == "Qwen2ForCausalLM" and trained.dtype == torch.float32
    weights = trained.state_dict()
    assert not any("lora" in k for k in weights)
    mask = sid_mask(tokenizer)
    embedding = "model.embed_tokens.weight"
    assert torch.equal(weights[embedding][~mask], start_weights[embedding][~mask])
    assert not torch.equal(weights[embedding][mask], start_weights[embedding][mask])
    assert not torch.equal(weights["model.layers.0.self_attn.q_proj.weight"],
                           start_weights["model.layers.0.self_attn.q_proj.weight"])  # adapters merged in
    assert torch.equal(weights["model.norm.weight"], start_weights["model.norm.weight"])


def test_freeze_layers_trains_only_the_upper_layers_and_sid_rows(toy: Path) -> None:
    cfg = config(toy, output_dir=toy / "run_freeze_layers", num_layers=2, freeze_layers=1, max_steps=12,
                 weight_decay=0.1)
    start, _, _ = llm.build_model(cfg, llm.load_sft_data(cfg).items)
    llm.main(cfg)
    out = Path(cfg.output_dir)
    losses = losses_of(out, 12)
    assert losses[-1] < losses[0], losses
    trained, tokenizer = llm.load_pretrained(str(out))
    mask = sid_mask(tokenizer)
    before = dict(start.named_parameters())
    for name, p in trained.named_parameters():
        if name.endswith("embed_tokens.weight"):
            assert torch.equal(p[~mask], before[name][~mask])
            assert not torch.equal(p[mask], before[name][mask])
        elif ".layers.0." in name:
            assert torch.equal(p, before[name]), name
        elif ".layers.1." in name and name.endswith("proj.weight"):
            assert not torch.equal(p, before[name]), name


def test_efficiency_keys_are_off_by_default_and_exclusive(toy: Path) -> None:
    cfg = config(toy)
    assert (cfg.lora_r, cfg.freeze_layers) == (0, 0)
    model, _, sid_ids = llm.build_model(cfg, llm.load_sft_data(cfg).items)
    assert apply_efficiency_keys(cfg, model, sid_ids) is model
    assert all(p.requires_grad for p in model.parameters())
    with pytest.raises(InputError, match="choose one"):
        apply_efficiency_keys(config(toy, lora_r=4, freeze_layers=1), model, sid_ids)
    with pytest.raises(InputError, match="freeze_layers must be in"):
        apply_efficiency_keys(config(toy, freeze_layers=5), model, sid_ids)
