"""Where a model comes from: a local folder or a hub id, with fast, clear failures when neither is there.

Used by every stage that loads a model (the SFT base model, the text encoder): a missing path-like
value fails at once naming the folder; a hub id that is neither cached nor reachable fails within
seconds (``from_pretrained`` alone retries for ~50 s and ends with a generic connection message).
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

from minionerec.errors import InputError

PATH_PREFIXES = (".", "~", "/", "models/", "model/", "checkpoints/", "output/", "outputs/")


def looks_like_hub_id(source: str) -> bool:
    """``owner/name`` (one slash, no path prefix, owner not a local folder): what the hub accepts."""
    parts = source.split("/")
    return (len(parts) == 2 and all(parts) and "\\" not in source and not source.startswith(PATH_PREFIXES)
            and not Path(parts[0]).expanduser().is_dir())


def hub_cache_dir() -> str:
    """Where ``from_pretrained`` caches hub models (HF_HOME / HF_HUB_CACHE)."""
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def require_fetchable(hub_id: str, key: str, probe_timeout_s: float = 3.0) -> None:
    """InputError within seconds when ``hub_id`` is neither cached nor reachable (offline, or a dead endpoint)."""
    from huggingface_hub import constants, try_to_load_from_cache

    if isinstance(try_to_load_from_cache(hub_id, "config.json"), str):
        return
    fix = (f"it would be cached under {hub_cache_dir()} (set HF_HOME to move it); download it where there is "
           f"network (huggingface-cli download {hub_id}) or pass {key} = a local model folder")
    if constants.HF_HUB_OFFLINE or os.environ.get("TRANSFORMERS_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise InputError(f"{key} {hub_id!r} is a hub id, the hub is offline (HF_HUB_OFFLINE) and it is not cached: "
                         f"{fix}")
    url = f"{constants.ENDPOINT.rstrip('/')}/api/models/{hub_id}"
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=probe_timeout_s).close()
    except urllib.error.HTTPError:
        return  # the hub answered; from_pretrained reports a missing or gated repository itself
    except (OSError, ValueError) as exc:
        raise InputError(f"{key} {hub_id!r} is a hub id, the hub ({constants.ENDPOINT}) is unreachable "
                         f"({exc}) and it is not cached: {fix}") from None


def resolve_model_source(source: str, key: str) -> str:
    """A local folder (must exist) or a fetchable hub id; a missing path-like value fails at once, naming it."""
    path = Path(source).expanduser()
    if path.exists():
        return str(path)
    if not looks_like_hub_id(source):
        raise InputError(f"{key} {source!r} does not exist as a folder (looked at {path.resolve()}): pass an existing "
                         f"local model folder or a hub id (owner/name)")
    require_fetchable(source, key)
    return source
