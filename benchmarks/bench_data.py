"""Data-stage timings: ml-100k end to end (the < 30 s acceptance figure) and Amazon-2018-format
throughput on synthetic raw files.

    python benchmarks/bench_data.py [--ml100k DIR] [--amazon_users 20000] [--repeats 3] [--json PATH]

``--ml100k`` defaults to ../shared/data/movielens_100k_recbole (or run data/fetch_movielens.sh and
pass its folder).  Figures are wall-clock seconds; the end-to-end figure runs the real
``data/movielens_process.sh`` in a fresh interpreter, imports included.
"""

from __future__ import annotations

import argparse
import gzip
import io
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
                 "--input_path", str(folder), "--output_dir", out],
                check=True, capture_output=True, env={**os.environ, "PYTHON": sys.executable},
            )
            times.append(time.perf_counter() - start)
    return times


def time_amazon_phases(users: int, repeats: int) -> dict[str, float]:
    from minionerec.data import ProtocolOptions, build_dataset, read_amazon18, write_dataset
    from minionerec.synthetic import SyntheticConfig, write_synthetic

    with tempfile.TemporaryDirectory() as tmp:
        cfg = SyntheticConfig(output_dir=f"{tmp}/raw", dataset="Bench", n_users=users, n_items=max(100, users // 10),
                              n_clusters=10, days=2000)
        reviews, meta = write_synthetic(cfg)
        options = ProtocolOptions(dataset="Bench", output_dir=f"{tmp}/out", user_k=5, item_k=5,
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


# --------------------------------------------------------------------------------------------
# --reviews N: the columnar stage at scale (wall, peak RSS, ratio to the decompression floor)
# --------------------------------------------------------------------------------------------

def write_power_law_reviews(folder: Path, n_reviews: int, seed: int = 0) -> tuple[Path, Path]:
    """``Bench.json.gz`` (Amazon 2018 reviews) and ``meta_Bench.json.gz`` with power-law users and items:
    index = floor(n * r**3), r uniform, so low indices are the heavy users/items."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    n_users, n_items = max(10, n_reviews // 8), max(10, n_reviews // 30)
    folder.mkdir(parents=True, exist_ok=True)
    reviews = folder / "Bench.json.gz"
    step = 1_000_000
    with subprocess.Popen(["gzip", "-1", "-c"], stdin=subprocess.PIPE, stdout=open(reviews, "wb")) as gz:
        for start in range(0, n_reviews, step):
            n = min(step, n_reviews - start)
            users = (n_users * rng.random(n) ** 3).astype(np.int64)
            items = (n_items * rng.random(n) ** 3).astype(np.int64)
            frame = pl.DataFrame({
                "overall": rng.integers(1, 6, n).astype(np.float64),
                "verified": np.ones(n, dtype=bool),
                "reviewTime": ["01 1, 2016"] * n,
                "reviewerID": "A" + pl.Series(users).cast(pl.String).str.zfill(12),
                "asin": "B" + pl.Series(items).cast(pl.String).str.zfill(9),
                "reviewText": ["Works as described, would buy again."] * n,
                "summary": ["Good"] * n,
                "unixReviewTime": rng.integers(1_300_000_000, 1_530_000_000, n),
            })
            buffer = io.BytesIO()
            frame.write_ndjson(buffer)
            gz.stdin.write(buffer.getvalue())
        gz.stdin.close()
    meta = folder / "meta_Bench.json.gz"
    asins = ("B" + pl.Series(np.arange(n_items)).cast(pl.String).str.zfill(9)).to_list()
    with gzip.open(meta, "wt", compresslevel=1) as f:
        for k, asin in enumerate(asins):
            f.write(json.dumps({"asin": asin, "title": f"Bench item {k}", "brand": "Acme",
                                "category": ["Bench", f"Group {k % 50}"], "description": ["A test item."],
                                "price": "$9.99"}) + "\n")
    return reviews, meta


PROCESS_CHILD = """
import logging
logging.basicConfig(level=logging.WARNING)
module = __import__({module!r}, fromlist=["x"])
options = module.ProtocolOptions(dataset="Bench", output_dir={out!r}, user_k=5, item_k=5,
                                 st_year=1996, st_month=10, ed_year=2018, ed_month=10)
raw = module.read_amazon18({reviews!r}, {meta!r})
ds = module.build_dataset(raw, options) if {module!r} == "reference_preprocess" else module.build_frames(raw, options)
module.write_dataset(ds, raw.items, {out!r} + "/Bench", "Bench")
"""


def run_measured(args: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of a child process (this tree and tests/, for the oracle, importable)."""
    path = os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])
    start = time.perf_counter()
    child = subprocess.Popen(args, env={**os.environ, "PYTHONPATH": path})
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{args[:2]} failed with status {status}")
    return wall, usage.ru_maxrss / 1024


def bench_reviews(n_reviews: int, raw_dir: str, implementation: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        if raw_dir:
            reviews, meta = Path(raw_dir) / "Bench.json.gz", Path(raw_dir) / "meta_Bench.json.gz"
        else:
            reviews, meta = write_power_law_reviews(Path(tmp) / "raw", n_reviews)
        start = time.perf_counter()
        lines = subprocess.run(f"zcat {reviews} | wc -l", shell=True, check=True, capture_output=True, text=True)
        floor = time.perf_counter() - start
        module = "reference_preprocess" if implementation == "oracle" else "minionerec.data"
        code = PROCESS_CHILD.format(module=module, out=f"{tmp}/out",
                                    reviews=str(reviews), meta=str(meta))
        wall, rss = run_measured([sys.executable, "-c", code])
        stats = json.loads((Path(tmp) / "out" / "Bench" / "Bench.stats.json").read_text())
    return {"reviews": int(lines.stdout.split()[0]), "implementation": implementation, "wall_s": wall,
            "peak_rss_mb": rss, "decompress_floor_s": floor, "ratio_to_floor": wall / floor,
            "interactions": stats["interactions"], "samples": stats["samples"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ml100k", default=str(ROOT.parent / "shared" / "data" / "movielens_100k_recbole"))
    parser.add_argument("--amazon_users", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reviews", type=int, nargs="*", default=[],
                        help="also time the Amazon'18 stage on N generated power-law reviews (e.g. 1000000 3000000)")
    parser.add_argument("--raw", default="", help="with --reviews: read Bench.json.gz/meta_Bench.json.gz from here")
    parser.add_argument("--implementation", choices=["columnar", "oracle"], default="columnar",
                        help="oracle = the row-by-row reference in tests/ (the before figure)")
    parser.add_argument("--json", default="", help="also write the figures to this JSON file")
    args = parser.parse_args()

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
    for n in args.reviews:
        result = bench_reviews(n, args.raw, args.implementation)
        figures[f"reviews_{n}"] = result
        print(f"{result['reviews']} reviews ({args.implementation}): wall {result['wall_s']:.1f} s, peak RSS "
              f"{result['peak_rss_mb']:.0f} MB, decompression floor (zcat | wc -l) "
              f"{result['decompress_floor_s']:.2f} s, ratio {result['ratio_to_floor']:.1f}x; "
              f"{result['interactions']} interactions, samples {result['samples']}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
