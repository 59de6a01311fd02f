"""The GPR text variant of amazon_text2emb.py (reference ``gpr-and-amazon23.md`` §3).

    bash rq/text2emb/amazon_text2emb_gpr.sh configs/synthetic_gpr.yaml [--text2emb.key value ...]

Only two things differ from the plain script, whose code (batching, pooling, sharding, sidecar)
runs unchanged:

- an item whose every embedded field is empty is embedded as the literal ``[EMPTY]`` (upstream's
  GPR marker) instead of the plain script's ``unknown item``;
- the default output is ``<D>.emb-<encoder>-td.npy`` (upstream's GPR file name), so the plain
  embeddings are not overwritten.

As upstream, the text is title + description: the U/E/I/O tokens are prompt tokens, not item text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from amazon_text2emb import Text2EmbConfig, main  # the plain stage; this file changes only the texts

from minionerec.cli import run_stage
from minionerec.io import read_item_json
from minionerec.sid import clean_text

EMPTY_TEXT = "[EMPTY]"
_DATA_DIR = "${common.workdir}/data/${common.dataset}"


@dataclass
class GPRText2EmbConfig(Text2EmbConfig):
    output_path: str = field(default=f"{_DATA_DIR}/${{common.dataset}}.emb-${{text2emb.encoder_name}}-td.npy",
                             metadata={"help": "Output .npy (GPR default: ...emb-<encoder>-td.npy); sidecar = same path with .json."})


def gpr_texts(cfg: Text2EmbConfig) -> tuple[list[int], list[str]]:
    """The plain texts, with ``[EMPTY]`` for items whose embedded fields are all empty."""
    from amazon_text2emb import build_texts

    ids, texts = build_texts(cfg)
    records = read_item_json(cfg.item_path)
    empty = {i for i in ids if not any(clean_text(records[i].get(name)) for name in cfg.fields)}
    return ids, [EMPTY_TEXT if i in empty else text for i, text in zip(ids, texts)]


if __name__ == "__main__":
    run_stage(GPRText2EmbConfig, lambda cfg: main(cfg, texts_of=gpr_texts))
