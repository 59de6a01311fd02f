"""Data-stage timings: ml-100k end to end (the < 30 s acceptance figure) and Amazon-2018-format
throughput on synthetic raw files.

    python benchmarks/bench_data.py [--ml100k DIR] [--amazon_users 20000] [--repeats 3] [--json PATH]

``--ml100k`` defaults to ../shared/data/movielens_100k_recbole (or run data/fetch_movielens.sh and
pass its folder).  Figures are wall-clock seconds; the end-to-end figure runs the real
``data/movielens_process.sh`` in a fresh interpreter, imports included.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def time_ml100k_script(folder: Path, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            subprocess.run(
                ["bash", str(ROOT / "data" / "movielens_process.sh"), str(ROOT / "configs" / "ml-100k.yaml"),
                 "--input_path", str(folder), "--output_path", out],
                check=True, capture_output=True, env={**os.environ, "PYTHON": sys.executable},
            )
            times.append(time.perf_counter() - start)
    return times


def time_amazon_phases(users: int, repeats: int) -> dict[str, float]:
    from minionerec.preprocess import ProtocolOptions, build_dataset, read_amazon18, write_dataset
    from minionerec.synthetic import SyntheticConfig, write_synthetic

    with tempfile.TemporaryDirectory() as tmp:
        cfg = SyntheticConfig(output_path=f"{tmp}/raw", dataset="Bench", n_users=users, n_items=max(100, users // 10),
                              n_clusters=10, days=2000)
        reviews, meta = write_synthetic(cfg)
        options = ProtocolOptions(dataset="Bench", output_path=f"{tmp}/out", user_k=5, item_k=5,
                                  st_year=2015, st_month=1, ed_year=2030, ed_month=1)
        phases: dict[str, list[float]] = {"read": [], "protocol": [], "write": []}
        n_reviews = 0
        for _ in range(repeats):
            t0 = time.perf_counter()
            raw = read_amazon18(reviews, meta)
            t1 = time.perf_counter()
            ds = build_dataset(raw, options)
            t2 = time.perf_counter()
            write_dataset(ds, raw.items, f"{tmp}/out/Bench", "Bench")
            t3 = time.perf_counter()
            phases["read"].append(t1 - t0)
            phases["protocol"].append(t2 - t1)
            phases["write"].append(t3 - t2)
            n_reviews = len(raw.interactions)
    result = {f"{k}_s": statistics.median(v) for k, v in phases.items()}
    result["reviews"] = n_reviews
    result["reviews_per_s"] = n_reviews / sum(result[f"{k}_s"] for k in phases)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ml100k", default=str(ROOT.parent / "shared" / "data" / "movielens_100k_recbole"))
    parser.add_argument("--amazon_users", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default="", help="also write the figures to this JSON file")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))

    figures: dict[str, object] = {"cpu_count": os.cpu_count()}
    folder = Path(args.ml100k)
    if (folder / "ml-100k.inter").is_file():
        times = time_ml100k_script(folder, args.repeats)
        figures["ml100k_end_to_end_s"] = {"median": statistics.median(times), "max": max(times), "runs": times}
        print(f"ml-100k end to end (data/movielens_process.sh): median {statistics.median(times):.2f} s, "
              f"max {max(times):.2f} s over {len(times)} runs")
    else:
        print(f"ml-100k not found in {folder}: skipped (run data/fetch_movielens.sh and pass --ml100k)")
    if args.amazon_users > 0:
        amazon = time_amazon_phases(args.amazon_users, args.repeats)
        figures["amazon18_synthetic"] = amazon
        print(f"Amazon'18-format synthetic, {amazon['reviews']} reviews: read {amazon['read_s']:.2f} s, "
              f"protocol {amazon['protocol_s']:.2f} s, write {amazon['write_s']:.2f} s "
              f"({amazon['reviews_per_s']:.0f} reviews/s)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
