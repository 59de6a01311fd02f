"""SID quality of every method on the Industrial item texts (MiniLM embeddings).

Prints, per method: collision rate before/after resolution, per-level utilisation and
normalised entropy, largest prefix group, PAS, seconds; plus the upstream shipped index
(RQ-VAE over Qwen3-Embedding-4B) as a reference row.

    nice python benchmarks/sid_quality.py [--rqvae_epochs 100 --rqvae_layers 512,256,128] [--json runs/bench/sid_quality.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from minionerec.cli import setup_logging
from minionerec.io import read_index_json, read_item_json, save_npy, write_json
from minionerec.sid import parse_token
from minionerec.sid.build import SidConfig, build_sids
from minionerec.sid.index import collision_rate, level_statistics, path_average_similarity
from minionerec.sid.item_text import item_text
from minionerec.sid.text_embed import default_encoder_path, embed_batches, load_encoder, merge_in_order, plan_batches

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ITEMS = ROOT.parent / "shared" / "data" / "minionerec_amazon" / "index" / "Industrial_and_Scientific.item.json"

logger = logging.getLogger("sid_quality")


def embeddings(item_path: Path, cache: Path) -> tuple[np.ndarray, float]:
    if cache.is_file():
        return np.load(cache), float(json.loads(cache.with_suffix(".json").read_text())["seconds"])
    start = time.perf_counter()
    items = read_item_json(item_path)
    texts = [item_text(items[i], ("title", "description"), {"description": 1500}) for i in sorted(items)]
    model, tokenizer = load_encoder(default_encoder_path(), "cpu")
    parts = embed_batches(texts, plan_batches(texts, 64), model, tokenizer, "mean", True, 256)
    matrix = merge_in_order([parts], len(texts))
    seconds = time.perf_counter() - start
    save_npy(cache, matrix)
    write_json(cache.with_suffix(".json"), {"seconds": seconds, "items": len(texts)})
    return matrix, seconds


def upstream_row(index_path: Path, x: np.ndarray) -> dict:
    index = read_index_json(index_path)
    codes = np.array([[parse_token(t)[1] for t in index[i][:3]] for i in sorted(index)])
    return {"method": "upstream shipped (RQ-VAE, Qwen3-4B)", "collision_rate_before": collision_rate(codes),
            "collision_rate_after": collision_rate(codes), "levels": level_statistics(codes, 256),
            "path_average_similarity": path_average_similarity(codes, x), "seconds": float("nan")}


def runs(args) -> list[tuple[str, dict]]:
    common = dict(num_levels=3, codebook_size=256, seed=args.seed, collision_mode="reassign")
    vae = dict(epochs=args.rqvae_epochs, eval_step=max(1, args.rqvae_epochs // 5), batch_size=args.rqvae_batch_size,
               layers=[int(v) for v in args.rqvae_layers.split(",")], resume=False)
    return [
        ("rqkmeans_faiss", dict(method="rqkmeans_faiss")),
        ("rqkmeans_constrained (exact)", dict(method="rqkmeans_constrained", balance="exact")),
        ("rqkmeans_constrained (scalable)", dict(method="rqkmeans_constrained", balance="scalable")),
        ("rqvae", dict(method="rqvae", lr=1e-3, **vae)),
        # warm start from the exact constrained run above (reference 4.5)
        ("rqkmeans_plus", dict(method="rqkmeans_plus", lr=1e-4, **vae, codebook_path=str(
            args.out_dir / "rqkmeans_constrained_exact" / "Industrial.codebooks.npz"))),
        ("rqkmeans_faiss + extra_level", dict(method="rqkmeans_faiss", collision_mode="extra_level")),
    ], common


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--item_path", type=Path, default=DEFAULT_ITEMS)
    parser.add_argument("--out_dir", type=Path, default=ROOT / "runs" / "bench" / "sid_quality")
    # a CPU budget; upstream trains 10000 epochs with [2048, 1024, 512, 256, 128, 64] on a GPU
    parser.add_argument("--rqvae_epochs", type=int, default=100)
    parser.add_argument("--rqvae_layers", default="512,256,128")
    parser.add_argument("--rqvae_batch_size", type=int, default=512)
    parser.add_argument("--methods", default="", help="comma-separated subset of the row names' first words")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    setup_logging("WARNING")
    if not args.item_path.is_file():
        sys.exit(f"item file not found: {args.item_path} (place ../shared/data or pass --item_path)")
    x, emb_seconds = embeddings(args.item_path, args.out_dir / "Industrial.emb-minilm.npy")
    print(f"MiniLM embeddings: {x.shape} in {emb_seconds:.1f} s")
    rows = []
    upstream_index = args.item_path.with_name(args.item_path.name.replace(".item.json", ".index.json"))
    if upstream_index.is_file():
        rows.append(upstream_row(upstream_index, x))
    wanted = {m.strip() for m in args.methods.split(",") if m.strip()}
    todo, common = runs(args)
    for name, overrides in todo:
        if wanted and name.split()[0] not in wanted:
            continue
        slug = name.replace(" ", "").replace("(", "_").replace(")", "").replace("+", "_")
        cfg = SidConfig(data_path=str(args.out_dir / "Industrial.emb-minilm.npy"),
                        output_path=str(args.out_dir / slug / "Industrial.index.json"), **{**common, **overrides})
        report = build_sids(cfg)
        report["method"] = name
        rows.append(report)
        log_row(report)
    print()
    print_table(rows)
    if args.json:
        write_json(args.json, {"embedding_seconds": emb_seconds, "items": int(x.shape[0]), "rows": rows})


def log_row(r: dict) -> None:
    logger.warning("%s done: collisions %.4f -> %.4f, %.1f s", r["method"], r["collision_rate_before"],
                   r["collision_rate_after"], r["seconds"])


def print_table(rows: list[dict]) -> None:
    print(f"{'method':40s} {'coll.before':>11s} {'coll.after':>10s} {'util a/b/c':>17s} {'H a/b/c':>17s} "
          f"{'max/prefix a,ab':>15s} {'PAS':>6s} {'seconds':>8s}")
    for r in rows:
        lv = r["levels"]
        util = "/".join(f"{s['utilisation']:.2f}" for s in lv)
        ent = "/".join(f"{s['normalised_entropy']:.2f}" for s in lv)
        prefix = f"{lv[0]['max_items_per_prefix']},{lv[1]['max_items_per_prefix']}"
        pas = r.get("path_average_similarity")
        print(f"{r['method']:40s} {r['collision_rate_before']:11.4f} {r['collision_rate_after']:10.4f} {util:>17s} "
              f"{ent:>17s} {prefix:>15s} {pas if pas is None else round(pas, 3)!s:>6s} {r['seconds']:8.1f}")


if __name__ == "__main__":
    main()
