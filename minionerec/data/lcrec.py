"""An LC-Rec/LETTER prepared dataset (``<D>.inter.json`` + ``<D>.item.json``) -> this stage's outputs.

LC-Rec files have no timestamps, so the global chronological 8:1:1 split is impossible; the
split is LC-Rec's leave-one-out (per user: last item = test, second to last = valid, earlier
positions = train), with the same 10-item history windows.  Item ids are kept as they are, so
``.user2id``/``.item2id`` are identity maps.  Later stages (text2emb, SIDs, convert) then run
unchanged on ``<output_dir>/<dataset>/``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from minionerec.config import save_resolved_config
from minionerec.errors import InputError
from minionerec.io import (
    LCRecDataset,
    leave_one_out_split,
    read_lcrec_dataset,
    write_id_map,
    write_inter,
    write_inter_json,
    write_json,
)
from minionerec.data.build import check_source
from minionerec.data.protocol import MAX_HISTORY
from minionerec.text import category_phrase

logger = logging.getLogger("minionerec.lcrec_process")

#: Every file the stage writes (later stages, text2emb and sid, write into the same folder).
WRITTEN = (".train.inter", ".valid.inter", ".test.inter", ".item.json", ".inter.json", ".user2id", ".item2id",
           ".stats.json")


@dataclass
class LCRecConfig:
    """The ``data:`` section for an LC-Rec prepared dataset."""

    section: ClassVar[str] = "data"

    input_path: str = field(default="${common.workdir}/raw", metadata={"help": "Folder with <dataset>.inter.json and "
                                                                     "<dataset>.item.json."})
    dataset: str = field(default="", metadata={"help": "Dataset name (file prefix), e.g. Scientific."})
    output_dir: str = field(
        default="${common.workdir}/data", metadata={"help": "Outputs go to <output_dir>/<dataset>/."}
    )
    source: str = field(default="lcrec", metadata={"help": "Raw format of this config's data (lcrec)."})


def read_lcrec(cfg: LCRecConfig) -> LCRecDataset:
    """The dataset, checked: item ids must be ``0..N-1`` without gaps."""
    if not cfg.dataset:
        raise InputError("no dataset name: pass --dataset NAME (the prefix of <NAME>.inter.json)")
    data = read_lcrec_dataset(cfg.input_path, cfg.dataset)
    if sorted(data.items) != list(range(len(data.items))):
        raise InputError(f"{cfg.input_path}/{cfg.dataset}.item.json: item ids must be 0..N-1 without gaps")
    return data


def run_lcrec(cfg: LCRecConfig) -> Path:
    """The stage: read, split leave-one-out, write every output and the resolved config."""
    check_source(cfg.source, "lcrec")
    data = read_lcrec(cfg)
    n_items = len(data.items)
    train, valid, test = leave_one_out_split(data.sequences, MAX_HISTORY)
    out = Path(cfg.output_dir) / cfg.dataset
    prefix = out / cfg.dataset
    for name, rows in (("train", train), ("valid", valid), ("test", test)):
        write_inter(f"{prefix}.{name}.inter", rows)
    write_json(f"{prefix}.item.json", {str(i): data.items[i] for i in range(n_items)})
    write_inter_json(f"{prefix}.inter.json", data.sequences)
    write_id_map(f"{prefix}.user2id", {str(u): u for u in data.sequences})
    write_id_map(f"{prefix}.item2id", {str(i): i for i in range(n_items)})
    write_json(f"{prefix}.stats.json", lcrec_stats(cfg, data, len(train), len(valid), len(test)))
    save_resolved_config(cfg, out, outputs=[Path(f"{prefix}{suffix}") for suffix in WRITTEN])
    logger.info("%s: %d users, %d items; train/valid/test %d/%d/%d rows (leave-one-out) -> "
                "%s.{train,valid,test}.inter, .item.json, .inter.json, .user2id, .item2id, .stats.json",
                cfg.dataset, len(data.sequences), n_items, len(train), len(valid), len(test), prefix)
    return out


def lcrec_stats(cfg: LCRecConfig, data: LCRecDataset, train: int, valid: int, test: int) -> dict[str, Any]:
    return {
        "dataset": cfg.dataset,
        "source": str(cfg.input_path),
        "category_phrase": category_phrase(cfg.dataset),
        "users": len(data.sequences),
        "items": len(data.items),
        "interactions": sum(len(s) for s in data.sequences.values()),
        "samples": {"train": train, "valid": valid, "test": test, "total": train + valid + test},
        "filters": {"max_history": MAX_HISTORY, "split": "leave-one-out (LC-Rec layout has no timestamps)"},
    }
