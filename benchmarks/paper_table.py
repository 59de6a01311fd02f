"""Print the paper's Table 1 layout with the paper's numbers beside a run's numbers.

    python benchmarks/paper_table.py --results results/industrial/results.json --dataset industrial
    python benchmarks/paper_table.py --results results/office/results.json --dataset office [--json out.json]

The paper's rows come from arXiv 2510.24431 Table 1 (``../shared/reference/paper-results.md``). The
run's rows are the models found in ``results.json`` (written by ``run_all.sh`` /
``python -m minionerec.report``), at SID level as in the paper.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from minionerec.cli import exit_on_input_error
from minionerec.errors import InputError

COLUMNS = ("HR@3", "NDCG@3", "HR@5", "NDCG@5", "HR@10", "NDCG@10")

PAPER_TABLE_1 = {
    "industrial": {
        "GRU4Rec": (0.0638, 0.0542, 0.0774, 0.0598, 0.0999, 0.0669),
        "Caser": (0.0618, 0.0514, 0.0717, 0.0555, 0.0942, 0.0628),
        "SASRec": (0.0790, 0.0700, 0.0909, 0.0748, 0.1088, 0.0806),
        "HSTU": (0.0927, 0.0885, 0.1037, 0.0918, 0.1163, 0.0958),
        "TIGER": (0.0852, 0.0742, 0.1010, 0.0807, 0.1321, 0.0908),
        "LC-Rec": (0.0915, 0.0805, 0.1057, 0.0862, 0.1332, 0.0952),
        "BIGRec": (0.0931, 0.0841, 0.1092, 0.0907, 0.1370, 0.0997),
        "D3": (0.1024, 0.0991, 0.1213, 0.0989, 0.1500, 0.1082),
        "S-DPO": (0.1032, 0.0906, 0.1238, 0.0991, 0.1524, 0.1082),
        "MiniOneRec": (0.1143, 0.1011, 0.1321, 0.1084, 0.1586, 0.1167),
    },
    "office": {
        "GRU4Rec": (0.0629, 0.0528, 0.0789, 0.0595, 0.1019, 0.0669),
        "Caser": (0.0748, 0.0615, 0.0865, 0.0664, 0.1093, 0.0737),
        "SASRec": (0.0861, 0.0769, 0.0949, 0.0805, 0.1120, 0.0858),
        "HSTU": (0.1134, 0.1031, 0.1252, 0.1079, 0.1400, 0.1126),
        "TIGER": (0.0986, 0.0852, 0.1163, 0.0960, 0.1408, 0.1002),
        "LC-Rec": (0.0921, 0.0807, 0.1048, 0.0859, 0.1237, 0.0920),
        "BIGRec": (0.1069, 0.0961, 0.1204, 0.1017, 0.1434, 0.1091),
        "D3": (0.1204, 0.1055, 0.1406, 0.1139, 0.1634, 0.1213),
        "S-DPO": (0.1169, 0.1033, 0.1356, 0.1110, 0.1587, 0.1255),
        "MiniOneRec": (0.1217, 0.1088, 0.1420, 0.1172, 0.1634, 0.1242),
    },
}
RUN_LABELS = {"sft": "SFT", "rl": "SFT+RL (MiniOneRec)", "sasrec": "SASRec", "gru4rec": "GRU4Rec",
              "markov": "Markov", "popularity": "Popularity"}


def run_rows(results: dict) -> dict[str, tuple[float | None, ...]]:
    rows = {}
    for name, metrics in results.get("models", {}).items():
        level = metrics.get("sid_level") or metrics.get("item_level") or {}
        rows[RUN_LABELS.get(name, name)] = tuple(level.get(c) for c in COLUMNS)
    return rows


def format_table(paper: dict[str, tuple], ours: dict[str, tuple], title: str) -> str:
    def cells(values: tuple) -> str:
        return " | ".join(f"{v:.4f}" if isinstance(v, (int, float)) else "-" for v in values)

    lines = [f"### {title}", "", "| Source | Method | " + " | ".join(COLUMNS) + " |", "|---|---|" + "---|" * len(COLUMNS)]
    lines += [f"| paper | {name} | {cells(values)} |" for name, values in paper.items()]
    lines += [f"| this run | {name} | {cells(values)} |" for name, values in ours.items()]
    return "\n".join(lines)


def read_results(path: str) -> dict:
    """A run's ``results.json``, or one InputError naming the file and how to make it."""
    file = Path(path)
    if not file.is_file():
        raise InputError(f"{file} does not exist: pass the results.json that run_all.sh (or python -m "
                         f"minionerec.report CONFIG) wrote under results/<dataset>/, or omit --results")
    try:
        results = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{file} is not a results.json ({exc}); regenerate it with "
                         f"python -m minionerec.report CONFIG") from None
    if not isinstance(results, dict):
        raise InputError(f"{file}: expected a JSON object with a 'models' mapping, got {type(results).__name__}")
    return results


@exit_on_input_error
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=sorted(PAPER_TABLE_1), required=True)
    parser.add_argument("--results", help="results.json of a run (omit to print the paper's rows only)")
    parser.add_argument("--json", help="also write both tables as JSON here")
    args = parser.parse_args()
    ours = run_rows(read_results(args.results)) if args.results else {}
    paper = PAPER_TABLE_1[args.dataset]
    sys.stdout.write(format_table(paper, ours, f"Table 1, {args.dataset} (SID-level HR/NDCG, test split)") + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps({"columns": COLUMNS, "paper": paper, "run": ours}, indent=2))


if __name__ == "__main__":
    main()
