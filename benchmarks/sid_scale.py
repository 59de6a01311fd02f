"""Scale of RQ-Kmeans (faiss) and the scalable balanced RQ-Kmeans on synthetic embeddings.

Each case runs in its own process (so its peak RSS is its own): clustered Gaussian data
(N x d, float32), 3 levels x 256 codes, collision_mode=reassign, index + report written.
Goal: 1M items -> unique 3-level SIDs in < 10 min on 2 cores and < 8 GB RAM.

    nice python benchmarks/sid_scale.py [--cases 100000x384,1000000x256] [--methods rqkmeans_faiss,scalable]
                                        [--json runs/bench/sid_scale.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

METHODS = {"rqkmeans_faiss": {"method": "rqkmeans_faiss"},
           "scalable": {"method": "rqkmeans_constrained", "balance": "scalable"}}


def synthetic_embeddings(n: int, d: int, seed: int, clusters: int = 2000) -> np.ndarray:
    """Clustered data: Gaussian blobs around random centres, written in chunks (float32 only)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, d)).astype(np.float32)
    x = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        labels = rng.integers(0, clusters, stop - start)
        x[start:stop] = centres[labels] + 0.5 * rng.standard_normal((stop - start, d), dtype=np.float32)
    return x


def worker(n: int, d: int, method: str, seed: int, out_dir: Path) -> dict:
    from minionerec.cli import setup_logging
    from minionerec.sid.build import SidConfig, run_kmeans_method

    setup_logging("WARNING")
    x = synthetic_embeddings(n, d, seed)
    cfg = SidConfig(output_path=str(out_dir / "S.index.json"), num_levels=3, codebook_size=256, seed=seed,
                    collision_mode="reassign", **{k: v for k, v in METHODS[method].items() if k != "method"})
    start = time.perf_counter()
    report = run_kmeans_method(cfg, METHODS[method]["method"], x)
    total = time.perf_counter() - start
    return {
        "items": n, "dims": d, "method": method, "seconds_total": total, "seconds_sids": report["seconds"],
        "cpu_seconds": resource.getrusage(resource.RUSAGE_SELF).ru_utime + resource.getrusage(resource.RUSAGE_SELF).ru_stime,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
        "collision_rate_before": report["collision_rate_before"], "collision_rate_after": report["collision_rate_after"],
        "level_utilisation": [s["utilisation"] for s in report["levels"]],
        "max_cluster_size_l0": report["levels"][0]["max_items_per_prefix"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="100000x384,1000000x256")
    parser.add_argument("--methods", default="rqkmeans_faiss,scalable")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--worker", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        n, d, method = args.worker.split(",")
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(worker(int(n), int(d), method, args.seed, Path(tmp))))
        return
    results = []
    for case in args.cases.split(","):
        n, d = (int(v) for v in case.lower().split("x"))
        for method in args.methods.split(","):
            proc = subprocess.run([sys.executable, __file__, "--worker", f"{n},{d},{method}", "--seed", str(args.seed)],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(f"{case} {method} failed:\n{proc.stderr[-3000:]}")
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            results.append(row)
            print(f"{n:>9d} x {d:<4d} {method:15s} {row['seconds_total']:8.1f} s (cpu {row['cpu_seconds']:.0f} s)  peak RSS {row['peak_rss_gb']:5.2f} GB  "
                  f"collisions {row['collision_rate_before']:.4f} -> {row['collision_rate_after']:.4f}  "
                  f"utilisation {'/'.join(f'{u:.2f}' for u in row['level_utilisation'])}  "
                  f"largest level-0 cluster {row['max_cluster_size_l0']}", flush=True)
    if args.json:
        from minionerec.io import write_json

        write_json(args.json, {"results": results})


if __name__ == "__main__":
    main()
