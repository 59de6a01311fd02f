"""Shared test fixtures: paths to ../shared/data and small helpers."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from minionerec.sid import codes_to_sid, sid_to_string

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHARED_DATA = Path(os.environ.get("MINIONEREC_SHARED_DATA", ROOT.parent / "shared" / "data"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test with a clear message when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not found at {path} (set MINIONEREC_SHARED_DATA or place ../shared/data)")
    return path


@pytest.fixture
def shared_data() -> Path:
    return shared_path()


@pytest.fixture(scope="module")
def single_torch_thread():
    """Tiny models run fastest single-threaded on a shared 2-core machine (thread start-up costs more than it saves)."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


#: A 12-item 3-level catalogue for the GRPO tests (rl and rl_gpr).
TOY_SIDS = [sid_to_string(codes_to_sid((i // 4, i % 4, i % 3))) for i in range(12)]


def toy_next_sid_rows(n: int) -> list:
    """``n`` next-SID rows over :data:`TOY_SIDS`: three history items, the following item as target."""
    from data import TaskSample, format_response, next_item_prompt

    rows = []
    for r in range(n):
        history = [TOY_SIDS[(r + k) % len(TOY_SIDS)] for k in range(3)]
        target = (r + 3) % len(TOY_SIDS)
        rows.append(TaskSample("next_sid", next_item_prompt(history), format_response(TOY_SIDS[target]),
                               TOY_SIDS[target], target, tuple((r + k) % len(TOY_SIDS) for k in range(3))))
    return rows


def cpu_ranks_env(**extra: str) -> dict[str, str]:
    """Environment for a multi-process test run: no GPU visible (gloo ranks on CPU), one thread per rank."""
    return {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", **extra}


def accelerate_cpu_ranks(num_processes: int, port: int) -> list[str]:
    """``accelerate launch`` through its torchrun launcher: ``num_processes`` real ranks on CPU.

    (``accelerate launch --cpu`` would start a single process whatever ``--num_processes`` says.)
    """
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(num_processes),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port)]
