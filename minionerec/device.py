"""The one device/dtype resolver: ``auto`` devices, ``auto`` dtypes and the stages' ``bf16`` key.

Every stage that places a model or picks a precision asks here, so "auto" means the same thing
everywhere:

- :func:`resolve_device`: ``auto`` is the process's accelerate device when one is given, else CUDA
  when present, else the CPU; anything else is passed to ``torch.device``.
- :func:`resolve_dtype`: ``auto`` is bf16 where bf16 pays (:func:`bf16_available`: a bf16 GPU, or
  a CPU that computes bf16 natively), else fp32; names (``float32``/``fp32``, ``bfloat16``/``bf16``,
  ``float16``/``fp16``) map to their torch dtype.
- :func:`use_bf16`: a Trainer stage's ``bf16`` key (``auto``/``true``/``false``) as the Trainer's flag.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from minionerec.errors import InputError

#: dtype names a config may give, with their torch dtype.
DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32, "fp32": torch.float32,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16,
}
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


def accelerator_available() -> bool:
    """True when torch sees an accelerator (``torch.accelerator`` where it exists, else CUDA)."""
    accelerator = getattr(torch, "accelerator", None)
    return accelerator.is_available() if accelerator is not None else torch.cuda.is_available()


def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bf16 natively (AVX512-BF16 or AMX), where bf16 autocast is 1.5-2.6x faster."""
    if torch.backends.cpu.get_cpu_capability().upper().startswith("AMX"):
        return True
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def bf16_available(device_type: str | None = None) -> bool:
    """bf16 pays on ``device_type`` (default: CUDA when present, else the CPU): a bf16 GPU or a native-bf16 CPU."""
    device_type = device_type or ("cuda" if torch.cuda.is_available() else "cpu")
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    # DeepSpeed's bf16 is not autocast: it keeps the module's weights in bf16 (measured CPU gain is autocast's)
    deepspeed = os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() in _TRUE
    return device_type == "cpu" and not deepspeed and cpu_has_native_bf16()


def use_bf16(setting: str, key: str) -> bool:
    """A stage's ``bf16`` key (``auto``, ``true`` or ``false``) as the Trainer's flag.

    ``auto`` means :func:`bf16_available`; the Trainer then runs the forward pass under bf16 autocast
    over fp32 master weights, and the losses compute their softmax statistics in fp32.
    """
    value = setting.strip().lower()
    if value == "auto":
        return bf16_available()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InputError(f"{key} must be auto, true or false, got {setting!r}")


def resolve_device(device: str | torch.device = "auto", preferred: torch.device | None = None) -> torch.device:
    """``auto`` -> ``preferred`` (e.g. accelerate's ``PartialState().device``) or CUDA when present, else the CPU."""
    if isinstance(device, torch.device):
        return device
    if device.strip().lower() == "auto":
        return preferred or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device.strip())
    except RuntimeError as exc:
        raise InputError(f"device must be auto, cpu, cuda or cuda:N, got {device!r} ({exc})") from None


def resolve_dtype(name: str, device: str | torch.device = "auto", key: str = "dtype", *,
                  cpu_bf16: bool = True, gpu_fallback: torch.dtype = torch.float32) -> torch.dtype:
    """A ``dtype`` key as a torch dtype for ``device``.

    ``auto``: bf16 where :func:`bf16_available` says it pays on the device, else fp32.  Two knobs
    keep a caller's historical ``auto``: ``cpu_bf16=False`` never picks bf16 on a CPU, and
    ``gpu_fallback`` is the dtype of a GPU without bf16 (e.g. ``torch.float16`` for inference).
    """
    value = name.strip().lower()
    if value == "auto":
        kind = resolve_device(device).type
        if kind == "cpu" and not cpu_bf16:
            return torch.float32
        if bf16_available(kind):
            return torch.bfloat16
        return gpu_fallback if kind == "cuda" else torch.float32
    if value not in DTYPES:
        raise InputError(f"{key} must be auto, float32, bfloat16 or float16, got {name!r}")
    return DTYPES[value]


def dtype_name(dtype: Any) -> str:
    """``torch.bfloat16`` -> ``bfloat16`` (for logs and records)."""
    return str(dtype).replace("torch.", "")
