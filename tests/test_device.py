"""minionerec.device: the one device/dtype resolver; one category phrase and one prompt encoder for every caller."""

from __future__ import annotations

import pytest
import torch

from minionerec import device, llm, text
from minionerec.errors import InputError


def test_resolve_device_auto_prefers_the_given_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device.resolve_device("auto") == torch.device("cpu")
    assert device.resolve_device("auto", torch.device("cuda:1")) == torch.device("cuda:1")
    assert device.resolve_device("cpu", torch.device("cuda:1")) == torch.device("cpu")
    assert device.resolve_device(torch.device("cuda:0")) == torch.device("cuda:0")
    with pytest.raises(InputError, match="device must be auto"):
        device.resolve_device("gpu-please")


@pytest.mark.parametrize("native", [True, False])
def test_resolve_dtype_auto_and_names(native: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: native)
    assert device.resolve_dtype("auto", "cpu") == (torch.bfloat16 if native else torch.float32)
    assert device.resolve_dtype("auto", "cpu", cpu_bf16=False) == torch.float32  # text2emb's historical auto
    for name, dtype in (("fp32", torch.float32), ("float32", torch.float32), ("bf16", torch.bfloat16),
                        ("BFloat16", torch.bfloat16), ("fp16", torch.float16), ("float16", torch.float16)):
        assert device.resolve_dtype(name, "cpu") == dtype
    with pytest.raises(InputError, match="evaluate.dtype must be auto"):
        device.resolve_dtype("int8", "cpu", "evaluate.dtype")


def test_resolve_dtype_on_a_gpu_without_bf16_uses_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    assert device.resolve_dtype("auto", "cuda") == torch.float32
    assert device.resolve_dtype("auto", "cuda:0", gpu_fallback=torch.float16) == torch.float16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    assert device.resolve_dtype("auto", "cuda") == torch.bfloat16


def test_deepspeed_never_gets_cpu_bf16_autocast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    assert device.bf16_available("cpu") is False


def test_one_category_phrase_for_prompts_and_data_stages() -> None:
    assert llm.category_phrase is text.category_phrase
    assert llm.category_phrase("Office_Products") == "office products"  # upstream's dict, not "... items"
    assert llm.category_phrase("", "Office_Products") == "office products"
    assert llm.category_phrase("Video_Games") == "video games"
    assert llm.category_phrase("Glass") == "glass items"
    assert llm.category_phrase("", "") == "items"


class _Tokenizer:
    """Whitespace 'tokenizer' counting its calls (the encoder must batch)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, texts, add_special_tokens=True):
        assert add_special_tokens is False
        self.calls += 1
        return {"input_ids": [[len(word) for word in t.split()] for t in texts]}


def test_encode_prompts_batches_and_rejects_empty_prompts() -> None:
    tokenizer = _Tokenizer()
    assert llm.encode_prompts(tokenizer, ["a bb", "ccc", "dd e f"], batch_size=2) == [[1, 2], [3], [2, 1, 1]]
    assert tokenizer.calls == 2
    with pytest.raises(InputError, match="prompt 1 is empty"):
        llm.encode_prompts(tokenizer, ["a", "  "])
    with pytest.raises(InputError, match="prompt 0 encodes to no tokens"):
        llm.encode_prompts(lambda texts, add_special_tokens: {"input_ids": [[]]}, ["x"])
