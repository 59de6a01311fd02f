"""The LLM stage: prompts, tasks, item texts, tokenisation, model building and supervised fine-tuning.

Follow the pipeline: :mod:`~minionerec.llm.prompts` (every wording once) -> :mod:`~minionerec.llm.tasks` (one
function per task, the weighted mixture) over :mod:`~minionerec.llm.items` -> :mod:`~minionerec.llm.tokenization`
(the one prompt encoder) -> :mod:`~minionerec.llm.modeling` (base models, SID tokens) -> the SFT stage
(:mod:`~minionerec.llm.sft`: ``SFTConfig`` and ``main``, with :mod:`~minionerec.llm.sft_data`,
:mod:`~minionerec.llm.build` and :mod:`~minionerec.llm.training`).  Other areas import from this package,
never from its submodules.  Devices/dtypes: :mod:`minionerec.device`; model sources: :mod:`minionerec.hub`.
"""

from __future__ import annotations

from minionerec.llm.prompts import (
    ALIGN_INSTRUCTION,
    DESCRIPTION2SID_INPUT,
    NEXT_ITEM_INPUT,
    NEXT_ITEM_INSTRUCTION,
    PROMPT_HEADER,
    RESPONSE_TAG,
    SID2TITLE_INPUT,
    SID_HISTORY2TITLE_INPUT,
    SID_HISTORY2TITLE_INSTRUCTION,
    TASK_PROMPTS,
    TITLE2SID_INPUT,
    TITLE_HISTORY2SID_INPUT,
    TITLE_HISTORY2SID_INSTRUCTION,
    TITLE_HISTORY2SID_RL_INPUT,
    TITLE_HISTORY2TITLE_INPUT,
    TITLE_HISTORY2TITLE_INSTRUCTION,
    TaskPrompt,
    UPSTREAM_CATEGORY_PHRASES,
    category_phrase,
    format_prompt,
    format_response,
    next_item_prompt,
    quoted_titles,
)
from minionerec.llm.items import (
    ItemText,
    check_rows_against_index,
    clean_description,
    load_items,
)
from minionerec.llm.tasks import (
    DEFAULT_TASK_WEIGHTS,
    TASK_NAMES,
    TaskSample,
    build_task_mixture,
    build_task_samples,
    description_to_sid_samples,
    find_leaks,
    next_sid_samples,
    prompt_template_pieces,
    replicate_by_weight,
    sid_history_to_title_samples,
    sid_to_title_samples,
    title_history_to_sid_samples,
    title_history_to_title_samples,
    title_to_sid_samples,
)
from minionerec.llm.tokenization import (
    encode_prompts,
    history_sid_labels,
    tokenize_samples,
)
from minionerec.llm.modeling import (
    EOS_TOKEN,
    QWEN2_PRETOKENIZE_REGEX,
    QWEN_SPECIAL_TOKENS,
    SMOLLM2,
    SMOLLM2_GGUF,
    TINY_QWEN2,
    TinyModelSpec,
    attention_implementation,
    base_dtype,
    build_tiny_qwen2,
    decoding_generation_config,
    extend_with_sid_tokens,
    freeze_llm,
    init_sid_rows_from_text,
    load_pretrained,
    prepare_tokenizer,
    qwen_tokenizer,
    resolve_base_model,
    save_dtype_of,
    save_in_dtype,
    sid_tokens_of,
    smollm2_dir,
    train_bpe_tokenizer,
)
from minionerec.llm.sft_data import (
    SFTData,
    load_index_items,
    load_sft_data,
    resolve_csvs,
    sample_rows,
)
from minionerec.llm.build import (
    SID_STRING,
    build_model,
    tiny_spec,
    tokenizer_corpus,
)
from minionerec.llm.training import (
    PaddingCollator,
    check_history_label_weight,
    check_label_smoothing,
    encode_train_samples,
    response_loss,
    response_only_trainer_class,
    set_attention_dropout,
    time_limit_callback,
    to_dataset,
    training_arguments,
)
from minionerec.llm.sft import (
    SFTConfig,
    main,
)

__all__ = [
    "ALIGN_INSTRUCTION", "DEFAULT_TASK_WEIGHTS", "DESCRIPTION2SID_INPUT", "EOS_TOKEN", "ItemText", "NEXT_ITEM_INPUT",
    "NEXT_ITEM_INSTRUCTION", "PROMPT_HEADER", "PaddingCollator", "QWEN2_PRETOKENIZE_REGEX", "QWEN_SPECIAL_TOKENS",
    "RESPONSE_TAG", "SFTConfig", "SFTData", "SID2TITLE_INPUT", "SID_HISTORY2TITLE_INPUT",
    "SID_HISTORY2TITLE_INSTRUCTION", "SID_STRING", "SMOLLM2", "SMOLLM2_GGUF", "TASK_NAMES", "TASK_PROMPTS",
    "TINY_QWEN2", "TITLE2SID_INPUT", "TITLE_HISTORY2SID_INPUT", "TITLE_HISTORY2SID_INSTRUCTION",
    "TITLE_HISTORY2SID_RL_INPUT", "TITLE_HISTORY2TITLE_INPUT", "TITLE_HISTORY2TITLE_INSTRUCTION", "TaskPrompt",
    "TaskSample", "TinyModelSpec", "UPSTREAM_CATEGORY_PHRASES", "attention_implementation", "base_dtype",
    "build_model", "build_task_mixture", "build_task_samples", "build_tiny_qwen2", "category_phrase",
    "check_history_label_weight", "check_label_smoothing", "check_rows_against_index", "clean_description", "decoding_generation_config",
    "description_to_sid_samples", "encode_prompts", "encode_train_samples", "extend_with_sid_tokens", "find_leaks",
    "format_prompt", "format_response", "freeze_llm", "history_sid_labels", "init_sid_rows_from_text",
    "load_index_items", "load_items", "load_pretrained", "load_sft_data", "main", "next_item_prompt",
    "next_sid_samples", "prepare_tokenizer", "prompt_template_pieces", "quoted_titles", "qwen_tokenizer",
    "replicate_by_weight", "resolve_base_model", "resolve_csvs", "response_loss",
    "response_only_trainer_class", "sample_rows", "save_dtype_of", "save_in_dtype", "set_attention_dropout", "sid_history_to_title_samples",
    "sid_to_title_samples", "sid_tokens_of", "smollm2_dir", "time_limit_callback", "tiny_spec",
    "title_history_to_sid_samples", "title_history_to_title_samples", "title_to_sid_samples", "to_dataset",
    "tokenize_samples", "tokenizer_corpus", "train_bpe_tokenizer", "training_arguments",
]
