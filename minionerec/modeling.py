"""Old import path of the base-model code, kept for callers not yet switched: the code lives in
:mod:`minionerec.llm.modeling` (models, tokenizers, SID tokens), :mod:`minionerec.device` (bf16/dtype/device)
and :mod:`minionerec.hub` (model sources, offline failures).  New code imports from those."""

from minionerec.device import bf16_available, cpu_has_native_bf16, use_bf16  # noqa: F401
from minionerec.hub import PATH_PREFIXES, hub_cache_dir, require_fetchable, resolve_model_source  # noqa: F401
from minionerec.llm.modeling import *  # noqa: F401,F403
from minionerec.llm.modeling import __all__ as _llm_all

__all__ = [*_llm_all, "PATH_PREFIXES", "bf16_available", "cpu_has_native_bf16", "hub_cache_dir",
           "require_fetchable", "resolve_model_source", "use_bf16"]
