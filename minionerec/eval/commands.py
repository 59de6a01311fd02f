"""The ``metrics`` and ``compare`` subcommands of evaluate.py: numbers from predictions files already written.

    python evaluate.py metrics --result_json predictions.json --info_file info.txt [--ks 1,5,10]
    python evaluate.py compare --a sft/predictions.json --b rl/predictions.json [--ks 10]   # paired bootstrap
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from minionerec.cli import exit_on_input_error
from minionerec.errors import InputError
from minionerec.eval.results import metrics_from_files
from minionerec.metrics import DEFAULT_KS, compare_predictions


def parse_ks(text: str) -> list[int]:
    try:
        return [int(k) for k in text.split(",") if k.strip()]
    except ValueError:
        raise InputError(f"--ks must be comma-separated integers, got {text!r}") from None


@exit_on_input_error
def metrics_command(argv: Sequence[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="evaluate.py metrics", description=metrics_from_files.__doc__)
    parser.add_argument("--result_json", required=True)
    parser.add_argument("--info_file", required=True)
    parser.add_argument("--ks", default=",".join(map(str, DEFAULT_KS)), help="comma-separated K values")
    args = parser.parse_args(list(argv))
    result = metrics_from_files(args.result_json, args.info_file, parse_ks(args.ks))
    print(json.dumps(result, indent=2))
    return result


@exit_on_input_error
def compare_command(argv: Sequence[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="evaluate.py compare", description=compare_predictions.__doc__)
    parser.add_argument("--a", required=True, help="predictions.json of the reference model (e.g. SFT)")
    parser.add_argument("--b", required=True, help="predictions.json of the model compared with it (e.g. SFT+RL)")
    parser.add_argument("--ks", default="10", help="comma-separated K values")
    parser.add_argument("--n_resamples", type=int, default=2000)
    args = parser.parse_args(list(argv))
    result = compare_predictions(args.a, args.b, parse_ks(args.ks), args.n_resamples)
    print(json.dumps(result, indent=2))
    return result
