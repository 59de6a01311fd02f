"""Throughput of the ``sasrec`` CF reward model (what one RL step pays for the sasrec reward).

    python benchmarks/cf_scorer.py [--model_dir runs/x/baselines/sasrec --info runs/x/llm/info/X.txt]
                                   [--batch 64] [--group 16] [--n_items 3686] [--repeats 20] [--json out.json]

Without ``--model_dir`` a randomly initialised SASRec of the default size is timed on a synthetic
catalogue of ``--n_items`` items.  Prints the median time of one ``CFScorer.score`` call on
``batch`` histories x ``group`` candidates, and rows per second.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from minionerec.baselines import CFScorer, ModelConfig, build_model
from minionerec.catalogue import Catalogue, CatalogueItem, write_info


def random_scorer(n_items: int, model_type: str, device: str) -> CFScorer:
    info = Path(tempfile.mkdtemp()) / "info.txt"
    write_info(info, [CatalogueItem((f"<a_{i // 256}>", f"<b_{i % 256}>", "<c_0>"), f"item {i}", i) for i in range(n_items)])
    catalogue = Catalogue.from_info(info)
    return CFScorer(build_model(ModelConfig(model_type=model_type, n_items=n_items)), catalogue, device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", default="")
    parser.add_argument("--info", default="")
    parser.add_argument("--model_type", default="sasrec")
    parser.add_argument("--n_items", type=int, default=3686)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--group", type=int, default=16)
    parser.add_argument("--history", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    scorer = (CFScorer.load(args.model_dir, args.info, args.device) if args.model_dir
              else random_scorer(args.n_items, args.model_type, args.device))
    ids = torch.tensor(scorer.catalogue.item_ids)
    n = len(ids)
    histories = [ids[torch.randint(0, n, (args.history,))].tolist() for _ in range(args.batch)]
    candidates = ids[torch.randint(0, n, (args.batch, args.group))].tolist()
    scorer.score(histories, candidates)  # warm-up
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        scorer.score(histories, candidates)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    result = {"model": args.model_dir or f"random {args.model_type}", "n_items": n, "batch": args.batch,
              "group": args.group, "threads": args.threads, "device": args.device,
              "median_seconds_per_call": median, "rows_per_second": args.batch / median,
              "completions_per_second": args.batch * args.group / median}
    print(f"CFScorer.score: {args.batch} histories x {args.group} candidates over {n} items: "
          f"{median * 1000:.1f} ms per call, {result['completions_per_second']:.0f} completions/s "
          f"({args.device}, {args.threads} thread(s))")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
