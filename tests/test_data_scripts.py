"""The data/ scripts as users run them: .sh wrappers, CONFIG.yaml + overrides, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, shared_path

SCRIPTS = ROOT / "data"


def run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPTS / script), *args], cwd=cwd, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable, "MINIONEREC_LOG_LEVEL": "WARNING",
                               "PYTHONPATH": str(ROOT)},  # this tree, not an installed copy
                          timeout=120)


def test_synthetic_config_runs_generator_then_amazon18(tmp_path):
    config = tmp_path / "synthetic.yaml"
    body = yaml.safe_load((ROOT / "configs" / "synthetic.yaml").read_text())
    body["synthetic"].update(n_users=60, n_items=30, n_clusters=3)
    config.write_text(yaml.safe_dump(body))
    generated = run("synthetic.sh", str(config), cwd=tmp_path)
    assert generated.returncode == 0, generated.stderr
    assert (tmp_path / "runs/synthetic/raw/Synthetic.json").is_file()
    processed = run("amazon18_data_process.sh", str(config), "--user_k", "3", "--data.item_k", "3", cwd=tmp_path)
    assert processed.returncode == 0, processed.stderr
    out = tmp_path / "runs/synthetic/data/Synthetic"
    stats = json.loads((out / "Synthetic.stats.json").read_text())
    assert stats["filters"]["user_k"] == 3 and stats["filters"]["item_k"] == 3
    saved = yaml.safe_load((out / "data.config.yaml").read_text())["data"]
    assert saved["user_k"] == 3 and saved["input_path"] == "runs/synthetic/raw"


def test_a_missing_input_folder_is_one_line_without_traceback(tmp_path):
    missing = run("amazon18_data_process.sh", "--input_path", "nowhere", "--dataset", "X", cwd=tmp_path)
    assert missing.returncode == 2
    assert "input folder nowhere does not exist" in missing.stderr and "Traceback" not in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


def test_an_unknown_flag_is_refused(tmp_path):
    unknown = run("amazon23_data_process.sh", "--no_such_flag", "1", cwd=tmp_path)
    assert unknown.returncode == 2 and "unknown option" in unknown.stderr


def test_a_missing_dataset_name_is_refused(tmp_path):
    no_name = run("movielens_process.sh", "--input_path", ".", cwd=tmp_path)
    assert no_name.returncode == 2 and "pass --dataset" in no_name.stderr


def test_a_config_of_another_source_names_its_script(tmp_path):
    wrong_source = run("movielens_process.sh", str(ROOT / "configs" / "synthetic.yaml"), cwd=tmp_path)
    assert wrong_source.returncode == 2 and "run data/amazon18_data_process.sh" in wrong_source.stderr


def test_an_empty_time_window_is_an_error_and_writes_nothing(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "D.json").write_text(json.dumps({"reviewerID": "u", "asin": "a", "unixReviewTime": 1}) + "\n")
    (raw / "meta_D.json").write_text(json.dumps({"asin": "a", "title": "Title"}) + "\n")
    window = run("amazon18_data_process.sh", "--input_path", "raw", "--dataset", "D", "--user_k", "0",
                 "--item_k", "0", cwd=tmp_path)
    assert window.returncode == 2 and "no review falls in the time window" in window.stderr
    assert not (tmp_path / "runs").exists()  # nothing half-written


@pytest.mark.slow
def test_fetch_and_process_ml100k_with_the_config(tmp_path):
    shared = shared_path("movielens_100k_recbole")
    dest = tmp_path / "runs/ml-100k/raw/ml-100k"
    dest.mkdir(parents=True)
    for name in ("ml-100k.inter", "ml-100k.item"):  # no network in tests: pre-place the files
        (dest / name).write_bytes((shared / name).read_bytes())
    fetched = run("fetch_movielens.sh", str(dest), cwd=tmp_path)
    assert fetched.returncode == 0 and "already" in fetched.stdout
    done = run("movielens_process.sh", str(ROOT / "configs" / "ml-100k.yaml"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    stats = json.loads((tmp_path / "runs/ml-100k/data/ml-100k/ml-100k.stats.json").read_text())
    assert stats["samples"]["total"] == 99057


@pytest.mark.slow
def test_lcrec_script_on_shared_scientific(tmp_path):
    folder = shared_path("amazon18_scientific_lcrec")
    done = run("lcrec_process.sh", "--input_path", str(folder), "--dataset", "Scientific", "--output_dir", "out",
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    stats = json.loads((tmp_path / "out/Scientific/Scientific.stats.json").read_text())
    assert stats["samples"]["total"] == 50175 and stats["items"] == 4344
