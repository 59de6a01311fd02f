"""An LC-Rec/LETTER prepared dataset (``<D>.inter.json`` + ``<D>.item.json``) -> this stage's outputs.

    bash data/lcrec_process.sh --input_path ../shared/data/amazon18_scientific_lcrec --dataset Scientific \\
        --output_path runs/scientific/data

LC-Rec files have no timestamps, so the global chronological 8:1:1 split is impossible; the
split is LC-Rec's leave-one-out (per user: last item = test, second to last = valid, earlier
positions = train), with the same 10-item history windows.  Item ids are kept as they are, so
``.user2id``/``.item2id`` are identity maps.  Later stages (text2emb, SIDs, convert) then run
unchanged on ``<output_path>/<dataset>/``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from minionerec.cli import run_stage
from minionerec.config import save_resolved_config
from minionerec.errors import InputError
from minionerec.io import (
    leave_one_out_split,
    read_lcrec_dataset,
    write_id_map,
    write_inter,
    write_inter_json,
    write_json,
)
from minionerec.preprocess import MAX_HISTORY, check_source
from minionerec.text import category_phrase

logger = logging.getLogger("minionerec.lcrec_process")


@dataclass
class LCRecConfig:
    """The ``data:`` section for an LC-Rec prepared dataset."""

    section: ClassVar[str] = "data"

    input_path: str = field(default="${common.workdir}/raw", metadata={"help": "Folder with <dataset>.inter.json and "
                                                                     "<dataset>.item.json."})
    dataset: str = field(default="", metadata={"help": "Dataset name (file prefix), e.g. Scientific."})
    output_path: str = field(
        default="${common.workdir}/data", metadata={"help": "Outputs go to <output_path>/<dataset>/."}
    )
    source: str = field(default="lcrec", metadata={"help": "Raw format of this config's data (lcrec)."})


def main(cfg: LCRecConfig) -> Path:
    check_source(cfg.source, "lcrec")
    if not cfg.dataset:
        raise InputError("no dataset name: pass --dataset NAME (the prefix of <NAME>.inter.json)")
    data = read_lcrec_dataset(cfg.input_path, cfg.dataset)
    n_items = len(data.items)
    if sorted(data.items) != list(range(n_items)):
        raise InputError(f"{cfg.input_path}/{cfg.dataset}.item.json: item ids must be 0..N-1 without gaps")
    train, valid, test = leave_one_out_split(data.sequences, MAX_HISTORY)
    out = Path(cfg.output_path) / cfg.dataset
    prefix = out / cfg.dataset
    for name, rows in (("train", train), ("valid", valid), ("test", test)):
        write_inter(f"{prefix}.{name}.inter", rows)
    write_json(f"{prefix}.item.json", {str(i): data.items[i] for i in range(n_items)})
    write_inter_json(f"{prefix}.inter.json", data.sequences)
    write_id_map(f"{prefix}.user2id", {str(u): u for u in data.sequences})
    write_id_map(f"{prefix}.item2id", {str(i): i for i in range(n_items)})
    write_json(f"{prefix}.stats.json", {
        "dataset": cfg.dataset,
        "source": str(cfg.input_path),
        "category_phrase": category_phrase(cfg.dataset),
        "users": len(data.sequences),
        "items": n_items,
        "interactions": sum(len(s) for s in data.sequences.values()),
        "samples": {"train": len(train), "valid": len(valid), "test": len(test),
                    "total": len(train) + len(valid) + len(test)},
        "filters": {"max_history": MAX_HISTORY, "split": "leave-one-out (LC-Rec layout has no timestamps)"},
    })
    # its outputs by name: later stages (text2emb, sid) write into the same folder
    written = (".train.inter", ".valid.inter", ".test.inter", ".item.json", ".inter.json", ".user2id",
               ".item2id", ".stats.json")
    save_resolved_config(cfg, out, outputs=[Path(f"{prefix}{suffix}") for suffix in written])
    logger.info("%s: %d users, %d items; train/valid/test %d/%d/%d rows (leave-one-out) -> "
                "%s.{train,valid,test}.inter, .item.json, .inter.json, .user2id, .item2id, .stats.json",
                cfg.dataset, len(data.sequences), n_items, len(train), len(valid), len(test), prefix)
    return out


if __name__ == "__main__":
    run_stage(LCRecConfig, main)
