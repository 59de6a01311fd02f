"""Shared test fixtures: paths to ../shared/data and small helpers.

Tests import the package (``minionerec``), never a root script as a module: a test of a root entry point itself
runs it (``subprocess``) or loads it from its file with :func:`root_script`.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

from minionerec.sid import codes_to_sid, sid_to_string

ROOT = Path(__file__).resolve().parents[1]

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


def root_script(name: str) -> ModuleType:
    """The root script ``<name>.py`` loaded from its file (tests never rely on the repository root being on sys.path).

    For the tests of an entry point or facade itself ("the root script re-exports its stage config"); it runs the
    module body, never its ``__main__`` block.
    """
    path = ROOT / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_root_script_{name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    from minionerec.llm import TaskSample, format_response, next_item_prompt

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


# Tiny tokenizer/model builders of the decoding and evaluation tests (formerly tests/test_decoding_fixtures.py).

#: The text the tiny BPE tokenizer is trained on (prompt words become few tokens).
DECODING_TEXTS = (
    (
        "Below is an instruction that describes a task, paired with an input that provides further context. "
        "The user has interacted with items in chronological order. Can you predict the next possible item?"
    ),
)


def build_tokenizer(sid_tokens, train_texts=DECODING_TEXTS, vocab_size: int = 400):
    """A byte-level BPE tokenizer with EOS/pad ``<|endoftext|>`` and the SID tokens added."""
    from minionerec.llm import train_bpe_tokenizer
    from minionerec.sid import add_sid_tokens

    tokenizer = train_bpe_tokenizer(train_texts, vocab_size)
    add_sid_tokens(tokenizer, list(sid_tokens))
    return tokenizer


def build_model(vocab_size: int, seed: int = 0, hidden: int = 48, layers: int = 2, eos_token_id: int = 0):
    """A random tiny Qwen2 (fp32, SDPA, eval mode) with N(0, 1) embeddings.

    The 0.02-std default init makes every next-token distribution nearly uniform; unit-variance
    embeddings give distinct, well-separated beam scores, so orders are meaningful in tests.
    """
    import torch

    from minionerec.llm import TinyModelSpec, build_tiny_qwen2

    spec = TinyModelSpec(hidden_size=hidden, num_layers=layers, num_heads=4, num_kv_heads=2,
                         intermediate_size=hidden * 2, max_position_embeddings=2048)
    model = build_tiny_qwen2(vocab_size, spec, eos_token_id, seed).eval()
    with torch.no_grad():
        model.model.embed_tokens.weight.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(seed))
    return model
