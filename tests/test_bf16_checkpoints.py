"""bf16 where the CPU/GPU has it, checkpoints in the base model's dtype, fast clear failures for missing models."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from test_sft import config, make_dataset

from minionerec import device, hub, llm
from minionerec.eval import resolve_device_and_dtype
from minionerec.errors import InputError

SAMPLING_FIELDS = ("temperature", "top_p", "top_k", "repetition_penalty")


def test_auto_bf16_follows_native_cpu_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for native in (True, False):
        monkeypatch.setattr(device, "cpu_has_native_bf16", lambda native=native: native)
        assert device.use_bf16("auto", "sft.bf16") is native
        expected = torch.bfloat16 if native else torch.float32
        assert resolve_device_and_dtype("cpu", "auto", None) == (torch.device("cpu"), expected)
    assert device.use_bf16("false", "sft.bf16") is False
    with pytest.raises(InputError, match="sft.bf16"):
        device.use_bf16("maybe", "sft.bf16")


def test_missing_relative_folder_fails_at_once_naming_it() -> None:
    start = time.monotonic()
    for value in ("models/Qwen2.5-1.5B-Instruct", "./nowhere/model", "~/no/such/model"):
        with pytest.raises(InputError, match="does not exist as a folder") as err:
            llm.resolve_base_model(value)
        assert value in str(err.value)
    with pytest.raises(InputError, match="text2emb.model_path 'models/no-encoder' does not exist"):
        hub.resolve_model_source("models/no-encoder", "text2emb.model_path")
    assert time.monotonic() - start < 1.0


@pytest.mark.parametrize("offline", [True, False])
def test_unfetchable_hub_id_fails_fast_with_cache_path_and_local_folder_hint(
        offline: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing leaves the machine
    start = time.monotonic()
    with pytest.raises(InputError) as err:
        llm.resolve_base_model("nobody-here/no-such-model-xyz")
    message = str(err.value)
    assert time.monotonic() - start < 10
    assert ("offline" if offline else "unreachable") in message
    assert hub.hub_cache_dir() in message and "local model folder" in message
    from minionerec.sid import load_encoder

    with pytest.raises(InputError, match="text2emb.model_path 'nobody-here/no-such-model-xyz' is a hub id"):
        load_encoder("nobody-here/no-such-model-xyz", "cpu")


def test_sft_saves_in_the_base_dtype_with_a_decoding_generation_config(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    toy = make_dataset(tmp_path / "toy")
    fp32_cfg = config(toy, output_dir=toy / "fp32", max_steps=2, eval_steps=2, bf16="false")
    llm.main(fp32_cfg)
    base = tmp_path / "bf16-base"  # an "Instruct" base: bf16 weights and sampling defaults
    model = AutoModelForCausalLM.from_pretrained(fp32_cfg.output_dir, dtype=torch.bfloat16)
    model.generation_config.update(do_sample=True, temperature=0.7, top_p=0.8, top_k=20, repetition_penalty=1.05)
    model.save_pretrained(base)
    AutoTokenizer.from_pretrained(fp32_cfg.output_dir).save_pretrained(base)

    cfg = config(toy, output_dir=toy / "from-bf16", base_model=str(base), max_steps=2, eval_steps=2, bf16="false")
    llm.main(cfg)
    out = Path(cfg.output_dir)
    fp32_size = (Path(fp32_cfg.output_dir) / "model.safetensors").stat().st_size
    assert (out / "model.safetensors").stat().st_size < 0.6 * fp32_size
    assert AutoModelForCausalLM.from_pretrained(out).dtype == torch.bfloat16
    generation = json.loads((out / "generation_config.json").read_text())
    assert generation.get("do_sample", False) is False
    assert not any(f in generation for f in SAMPLING_FIELDS), generation
    assert generation["eos_token_id"] is not None and generation["pad_token_id"] is not None

    forced = config(toy, output_dir=toy / "forced", base_model=str(base), max_steps=2, eval_steps=2, bf16="false",
                    save_dtype="float32")
    llm.main(forced)
    assert AutoModelForCausalLM.from_pretrained(forced.output_dir).dtype == torch.float32


def test_rl_saves_the_policy_in_the_sft_checkpoints_dtype(tmp_path: Path) -> None:
    from test_rl_script import overrides, workdir  # noqa: F401  (the fixture's builder)
    from transformers import AutoModelForCausalLM

    from minionerec.config import load_config
    from minionerec.rl import RLConfig, main

    root = workdir.__wrapped__(_Factory(tmp_path))  # the RL test's tiny data and SFT checkpoint, built afresh
    sft_dir = root / "sft"
    AutoModelForCausalLM.from_pretrained(sft_dir, dtype=torch.bfloat16).save_pretrained(sft_dir)
    main(load_config(RLConfig, None, overrides(root, "rl-bf16", bf16="false")))
    saved = AutoModelForCausalLM.from_pretrained(root / "rl-bf16")
    assert saved.dtype == torch.bfloat16
    assert not any(f in json.loads((root / "rl-bf16" / "generation_config.json").read_text()) for f in SAMPLING_FIELDS)


class _Factory:
    def __init__(self, root: Path) -> None:
        self.root = root

    def mktemp(self, name: str) -> Path:
        path = self.root / name
        path.mkdir()
        return path
