"""scripts/launch.sh, the one launcher behind every stage wrapper, in its dry-run mode (LAUNCH_DRY_RUN=1 prints the
command it would run)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ACCELERATE = ROOT / "configs" / "accelerate"


def launch(wrapper: str, *args: str, gpu: bool = False, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """Run ``bash WRAPPER ARGS`` dry; a fake ``nvidia-smi`` on PATH says whether a GPU is visible."""
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "nvidia-smi").write_text(f"#!/bin/sh\n{'echo GPU 0: fake' if gpu else 'exit 9'}\n")
    (fake / "nvidia-smi").chmod(0o755)
    base = {k: v for k, v in os.environ.items() if k not in (
        "NUM_PROCESSES", "NPROC", "DEEPSPEED", "CPU", "MAIN_PROCESS_PORT", "MAIN_PORT", "ACCELERATE_CONFIG",
        "CUDA_VISIBLE_DEVICES", "SFT_SCRIPT", "RL_SCRIPT", "PYTHON")}
    base["PATH"] = f"{fake}:{base.get('PATH', '/usr/bin:/bin')}"
    return subprocess.run(["bash", str(ROOT / wrapper), *args], capture_output=True, text=True, cwd=tmp_path,
                          env={**base, "LAUNCH_DRY_RUN": "1", **env}, timeout=30, check=False)


def words(result: subprocess.CompletedProcess) -> list[str]:
    assert result.returncode == 0, result.stderr
    return shlex.split(result.stdout)


def test_one_process_is_the_plain_interpreter(tmp_path):
    assert words(launch("sft.sh", "c.yaml", "--sft.max_steps", "3", tmp_path=tmp_path)) == \
        ["python3", str(ROOT / "sft.py"), "c.yaml", "--sft.max_steps", "3"]
    assert words(launch("data/synthetic.sh", "c.yaml", tmp_path=tmp_path, PYTHON="/opt/py")) == \
        ["/opt/py", str(ROOT / "data" / "synthetic.py"), "c.yaml"]


def accelerate(config: str, n: int, script: str, *rest: str, port: int = 29511) -> list[str]:
    return ["python3", "-m", "accelerate.commands.launch", "--config_file", str(ACCELERATE / config),
            "--num_processes", str(n), "--main_process_port", str(port), str(ROOT / script), *rest]


def test_num_processes_runs_accelerate_with_a_config_file(tmp_path):
    assert words(launch("sft.sh", "c.yaml", tmp_path=tmp_path, NUM_PROCESSES="2")) == \
        accelerate("multi_gpu.yaml", 2, "sft.py", "c.yaml")
    assert words(launch("evaluate.sh", "c.yaml", tmp_path=tmp_path, NUM_PROCESSES="2", MAIN_PROCESS_PORT="29999")) \
        == accelerate("multi_gpu.yaml", 2, "evaluate.py", "c.yaml", port=29999)
    text2emb = launch("rq/text2emb/amazon_text2emb.sh", "c.yaml", tmp_path=tmp_path, NUM_PROCESSES="2")
    assert words(text2emb) == accelerate("multi_gpu.yaml", 2, "rq/text2emb/amazon_text2emb.py", "c.yaml")


def test_deepspeed_picks_its_accelerate_config(tmp_path):
    assert words(launch("sft.sh", "c.yaml", tmp_path=tmp_path, DEEPSPEED="zero2")) == \
        accelerate("deepspeed_zero2.yaml", 1, "sft.py", "c.yaml")
    assert words(launch("rl.sh", "c.yaml", tmp_path=tmp_path, DEEPSPEED="zero3", NUM_PROCESSES="8", gpu=True)) == \
        accelerate("deepspeed_zero3.yaml", 8, "rl.py", "c.yaml")
    # rl on GPUs keeps upstream's ZeRO-2 unless told otherwise; on CPU ranks it is plain DDP
    assert words(launch("rl.sh", "c.yaml", tmp_path=tmp_path, NUM_PROCESSES="8", gpu=True)) == \
        accelerate("deepspeed_zero2.yaml", 8, "rl.py", "c.yaml")
    assert words(launch("rl.sh", "c.yaml", tmp_path=tmp_path, NUM_PROCESSES="8", DEEPSPEED="none", gpu=True)) == \
        accelerate("multi_gpu.yaml", 8, "rl.py", "c.yaml")
    assert words(launch("rl.sh", "c.yaml", tmp_path=tmp_path, NUM_PROCESSES="2")) == \
        accelerate("multi_gpu.yaml", 2, "rl.py", "c.yaml")
    bad = launch("sft.sh", "c.yaml", tmp_path=tmp_path, DEEPSPEED="zero9")
    assert bad.returncode == 2 and "DEEPSPEED must be zero2, zero3 or none" in bad.stderr


def test_cpu_ranks_hide_the_gpus(tmp_path):
    result = launch("rl.sh", "c.yaml", tmp_path=tmp_path, CPU="1", NUM_PROCESSES="2", gpu=True)
    assert words(result) == ["CUDA_VISIBLE_DEVICES=", *accelerate("multi_gpu.yaml", 2, "rl.py", "c.yaml")]


def test_old_names_still_work_with_a_deprecation_note(tmp_path):
    result = launch("rl.sh", "c.yaml", tmp_path=tmp_path, NPROC="2", MAIN_PORT="29617", CPU="1")
    assert words(result) == ["CUDA_VISIBLE_DEVICES=", *accelerate("multi_gpu.yaml", 2, "rl.py", "c.yaml", port=29617)]
    assert "NPROC is deprecated: use NUM_PROCESSES=2" in result.stderr
    assert "MAIN_PORT is deprecated" in result.stderr
    # sft_gpr.sh / rl_gpr.sh pick their script through SFT_SCRIPT / RL_SCRIPT
    assert words(launch("sft.sh", "c.yaml", tmp_path=tmp_path, SFT_SCRIPT="sft_gpr.py"))[1] == str(ROOT / "sft_gpr.py")
    own = str(ACCELERATE / "deepspeed_zero3.yaml")
    assert own in words(launch("rl.sh", "c", tmp_path=tmp_path, NUM_PROCESSES="2", ACCELERATE_CONFIG=own))


def test_single_process_stages_ignore_num_processes(tmp_path):
    result = launch("baselines.sh", "c.yaml", tmp_path=tmp_path, NUM_PROCESSES="4")
    assert words(result) == ["python3", str(ROOT / "baselines.py"), "c.yaml"]
    assert "baselines runs in one process" in result.stderr
    assert words(launch("evaluate.sh", "metrics", "--result_json", "r.json", tmp_path=tmp_path,
                        NUM_PROCESSES="2"))[:3] == ["python3", str(ROOT / "evaluate.py"), "metrics"]


def test_bad_stage_and_process_count_are_one_line_errors(tmp_path):
    unknown = launch("scripts/launch.sh", "sfx", tmp_path=tmp_path)
    assert unknown.returncode == 2 and "unknown stage 'sfx'" in unknown.stderr
    count = launch("sft.sh", tmp_path=tmp_path, NUM_PROCESSES="two")
    assert count.returncode == 2 and "NUM_PROCESSES must be a positive whole number" in count.stderr


def stage_table() -> dict[str, str]:
    text = (ROOT / "scripts" / "launch.sh").read_text()
    return dict(re.findall(r"^\s+(\w+)\)\s+echo \"(\S+) \w+\" ;;", text, flags=re.M))


def test_every_wrapper_is_one_line_calling_the_launcher():
    table = stage_table()
    assert all((ROOT / script).is_file() for script in table.values()), table
    wrappers = [ROOT / "sft.sh", ROOT / "rl.sh", ROOT / "evaluate.sh", ROOT / "baselines.sh",
                ROOT / "convert_dataset.sh", *sorted(ROOT.glob("*_gpr.sh")), *sorted((ROOT / "rq").glob("*.sh")),
                *sorted((ROOT / "rq" / "text2emb").glob("*.sh")),
                *[p for p in sorted((ROOT / "data").glob("*.sh")) if p.name != "fetch_movielens.sh"]]
    assert {"sft_gpr", "rl_gpr", "evaluate_gpr", "convert_dataset_gpr", "amazon18_data_process_gpr",
            "amazon_text2emb_gpr"} <= {w.stem for w in wrappers}
    for wrapper in wrappers:
        commands = [line for line in wrapper.read_text().splitlines() if line.strip() and not line.startswith("#")]
        assert len(commands) == 1 and "scripts/launch.sh" in commands[0], wrapper
        assert wrapper.stem in table, wrapper
        if wrapper.stem not in ("sft", "rl"):  # those two take SFT_SCRIPT / RL_SCRIPT (sft_gpr.sh, rl_gpr.sh)
            assert commands[0].endswith(f'launch.sh" {wrapper.stem} "$@"'), wrapper


@pytest.mark.parametrize("wrapper", ["rl.sh", "sft.sh"])
def test_wrapper_defaults_to_its_own_script(wrapper, tmp_path):
    assert words(launch(wrapper, tmp_path=tmp_path))[1] == str(ROOT / wrapper.replace(".sh", ".py"))
