"""Pieces of ``benchmarks/gpu_check.sh``: a seeded SFT data set and the summary of the check's figures.

    python benchmarks/gpu_check.py data OUT_DIR [--items 3000 --users 4000]
    python benchmarks/gpu_check.py summary OUT_DIR            # prints the table, writes OUT_DIR/gpu_check.json

The data set needs nothing beyond the standard library, so the check runs on a bare GPU image: items with
unique random 3-level SIDs (256 codes a level) and users whose next item mostly follows a fixed successor,
written in the upstream formats (split CSVs, info file, ``.index.json``, ``.item.json``).
"""
from __future__ import annotations

import argparse
import csv
import json
import random
from pathlib import Path

DATASET = "GpuCheck"
CSV_COLUMNS = ("user_id", "history_item_title", "item_title", "history_item_id", "item_id", "history_item_sid",
               "item_sid")


def make_catalogue(n_items: int, rng: random.Random) -> list[tuple[str, str]]:
    """``(sid, title)`` per item id; SIDs unique."""
    seen: set[str] = set()
    items = []
    while len(items) < n_items:
        sid = f"<a_{rng.randrange(256)}><b_{rng.randrange(256)}><c_{rng.randrange(256)}>"
        if sid in seen:
            continue
        seen.add(sid)
        items.append((sid, f"Item {len(items)} of line {rng.randrange(40)}, model {rng.randrange(10_000)}"))
    return items


def make_sequences(n_users: int, n_items: int, rng: random.Random) -> list[list[int]]:
    successor = [rng.randrange(n_items) for _ in range(n_items)]
    sequences = []
    for _ in range(n_users):
        item = rng.randrange(n_items)
        sequence = [item]
        for _ in range(rng.randint(4, 12)):
            item = successor[item] if rng.random() < 0.7 else rng.randrange(n_items)
            sequence.append(item)
        sequences.append(sequence)
    return sequences


def split_rows(sequences: list[list[int]], items: list[tuple[str, str]]) -> dict[str, list[list[str]]]:
    """Last item of a user -> test, the one before -> valid, every earlier prefix -> train (history <= 10)."""
    splits: dict[str, list[list[str]]] = {"train": [], "valid": [], "test": []}
    for user, sequence in enumerate(sequences):
        for end in range(1, len(sequence)):
            split = "test" if end == len(sequence) - 1 else "valid" if end == len(sequence) - 2 else "train"
            history = sequence[max(0, end - 10):end]
            target = sequence[end]
            splits[split].append([
                f"U{user}", str([items[i][1] for i in history]), items[target][1], str(history), str(target),
                str([items[i][0] for i in history]), items[target][0],
            ])
    return splits


def write_data(out: Path, n_items: int, n_users: int, seed: int) -> None:
    rng = random.Random(seed)
    items = make_catalogue(n_items, rng)
    splits = split_rows(make_sequences(n_users, n_items, rng), items)
    for split, rows in splits.items():
        (out / split).mkdir(parents=True, exist_ok=True)
        with open(out / split / f"{DATASET}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_COLUMNS)
            writer.writerows(rows)
    (out / "info").mkdir(parents=True, exist_ok=True)
    with open(out / "info" / f"{DATASET}.txt", "w") as handle:
        handle.writelines(f"{sid}\t{title}\t{item}\n" for item, (sid, title) in enumerate(items))
    index = {str(i): [f"<{p}" for p in sid[1:].split("<")] for i, (sid, _) in enumerate(items)}
    (out / f"{DATASET}.index.json").write_text(json.dumps(index))
    meta = {str(i): {"title": title, "description": f"A product called {title}."} for i, (_, title) in enumerate(items)}
    (out / f"{DATASET}.item.json").write_text(json.dumps(meta))
    print(f"gpu_check data: {n_items} items, {n_users} users, "
          + ", ".join(f"{len(rows)} {split}" for split, rows in splits.items()) + f" rows in {out}")


def summarise(out: Path) -> dict:
    report: dict = {}
    for name in ("sft_single", "sft_zero2"):
        summary = out / name / "sft.summary.json"
        if summary.exists():
            s = json.loads(summary.read_text())
            report[name] = {key: s.get(key) for key in ("tokens_per_s", "train_wall_s", "global_step",
                                                        "num_processes", "distributed_type", "train_loss")}
    attention = out / "attention.txt"
    if attention.exists():
        report["attention"] = attention.read_text().strip()
    decoding = out / "decoding.json"
    if decoding.exists():
        d = json.loads(decoding.read_text())
        report["decoding"] = {"model": d.get("model"), "device": d.get("device"), "identical": d.get("identical"),
                              "by_beams": [{"beams": r["beams"],
                                            **{m: r[m]["users_per_second"] for m in
                                               ("dedicated", "generate_trie", "generate_python_prefix")},
                                            "dedicated_vs_generate_trie": r["speedup_vs_generate_trie"]}
                                           for r in d.get("by_beams", [])]}
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    for name in ("sft_single", "sft_zero2"):
        if name in report:
            r = report[name]
            print(f"{name:11s} {r['tokens_per_s'] or 0:10.0f} tokens/s  {r['global_step']} steps in "
                  f"{r['train_wall_s'] or 0:.1f} s  ({r['num_processes']} process(es), {r['distributed_type']})")
        else:
            print(f"{name:11s} missing (see the log above)")
    for row in report.get("decoding", {}).get("by_beams", []):
        print(f"decoding B={row['beams']}: dedicated {row['dedicated']:.2f} users/s, generate+trie "
              f"{row['generate_trie']:.2f}, python-prefix {row['generate_python_prefix']:.2f} "
              f"(dedicated {row['dedicated_vs_generate_trie']:.1f}x generate+trie); identical outputs: "
              f"{report['decoding']['identical']}")
    print(f"figures: {out / 'gpu_check.json'}")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    data = sub.add_parser("data", help="write the seeded data set")
    data.add_argument("out", type=Path)
    data.add_argument("--items", type=int, default=3000)
    data.add_argument("--users", type=int, default=4000)
    data.add_argument("--seed", type=int, default=0)
    summary = sub.add_parser("summary", help="print and save the figures")
    summary.add_argument("out", type=Path)
    args = parser.parse_args()
    if args.command == "data":
        write_data(args.out, args.items, args.users, args.seed)
    else:
        summarise(args.out)


if __name__ == "__main__":
    main()
