"""A trained sequential model on disk: ``model.safetensors`` + ``model.json``.

``model.json`` holds the hyperparameters, the selection history and the catalogue fingerprint
(number of items + sha256 of the info file); :func:`load_model` refuses a model trained on
another catalogue.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from minionerec.baselines.sequential import ModelConfig, SequentialRecommender, build_model
from minionerec.catalogue import Catalogue
from minionerec.checkpoints import load_safetensors_file
from minionerec.device import resolve_device
from minionerec.errors import InputError
from minionerec.io import atomic_path, read_json, write_json

MODEL_WEIGHTS = "model.safetensors"
MODEL_META = "model.json"


def save_model(out_dir: str | Path, model: SequentialRecommender, catalogue: Catalogue,
               meta: dict[str, Any] | None = None) -> Path:
    """Write ``model.safetensors`` and ``model.json`` (hyperparameters + catalogue fingerprint)."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    with atomic_path(out_dir / MODEL_WEIGHTS) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp))
    body = {"model": dataclasses.asdict(model.cfg), "catalogue": catalogue.fingerprint(), **(meta or {})}
    write_json(out_dir / MODEL_META, body)
    return out_dir


def load_model(model_dir: str | Path, catalogue: Catalogue | None = None,
               device: str = "cpu") -> SequentialRecommender:
    """Load a saved model; with ``catalogue``, refuse a model trained on another catalogue."""
    model_dir = Path(model_dir)
    fix = "train one with: bash baselines.sh CONFIG.yaml --model sasrec"
    meta = read_json(model_dir / MODEL_META, "CF model description (model.json)", fix)
    if not isinstance(meta, dict) or "model" not in meta or "catalogue" not in meta:
        raise InputError(f"{model_dir / MODEL_META} lacks the 'model' or 'catalogue' entry; {fix}")
    if catalogue is not None:
        catalogue.check_fingerprint(meta["catalogue"], model_dir)
    try:
        cfg = ModelConfig(**meta["model"])
    except TypeError as exc:
        raise InputError(f"{model_dir / MODEL_META}: bad model hyperparameters ({exc})") from None
    weights_path = model_dir / MODEL_WEIGHTS
    if not weights_path.is_file():
        raise InputError(f"CF model weights not found: {weights_path}; {fix}")
    model = build_model(cfg)
    try:
        model.load_state_dict(load_safetensors_file(weights_path, "CF model weights", fix))
    except RuntimeError as exc:
        raise InputError(f"{weights_path} does not match the hyperparameters in {MODEL_META}: {exc}") from None
    return model.to(resolve_device(device)).eval()
