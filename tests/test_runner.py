"""run_all.sh as a process: the workdir lock, kills and signals, checks before anything runs, the failure hint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from minionerec import pipeline, runlock
from minionerec.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="process checks read /proc (Linux)")

# A stand-in stage: a python process that, like a launcher's rank, also starts a second python process
# (which gets no parent-death signal); both record their PID and sleep, unless FAKE_FAST is set.
FAKE_STAGE = r"""
import os, sys, time
from minionerec import runlock
runlock.watch_runner(0.2)
open(os.path.join(sys.argv[1], f"pid.{os.getpid()}"), "w").close()
if not os.environ.get("FAKE_FAST"):
    time.sleep(600)
"""
DRIVER = r"""
import sys
from minionerec import pipeline
fake, pids, launcher = sys.argv[1], sys.argv[2], sys.argv[3]
rank = f"{sys.executable} {fake} {pids}"
if launcher == "torchrun":  # two ranks, each in a session of its own (torch elastic's choice)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "0", fake, pids]
else:
    command = ["bash", "-c", f"{rank} & {rank}; wait"]
pipeline.Stage.command = lambda self, config_path, extra: command
pipeline.main(sys.argv[4:])
"""


def tiny_config(tmp_path: Path) -> str:
    body = {"common": {"dataset": "Tiny", "workdir": str(tmp_path / "run")},
            "synthetic": {"output_dir": str(tmp_path / "run" / "raw"), "n_users": 20, "n_items": 10}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(body))
    return str(path)


def start_runner(tmp_path: Path, config: str, fast: bool = False,
                 launcher: str = "bash") -> tuple[subprocess.Popen, Path]:
    (tmp_path / "fake.py").write_text(FAKE_STAGE)
    (tmp_path / "driver.py").write_text(DRIVER)
    pids = tmp_path / f"pids{time.monotonic_ns()}"
    pids.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), **({"FAKE_FAST": "1"} if fast else {})}
    proc = subprocess.Popen([sys.executable, str(tmp_path / "driver.py"), str(tmp_path / "fake.py"), str(pids),
                             launcher, config, "--report", "false"],
                            cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    return proc, pids


def stage_pids(pids: Path, count: int = 2, timeout: float = 60.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [int(p.name.split(".")[1]) for p in pids.glob("pid.*")]
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"the fake stage did not start within {timeout} s")


def running(pid: int) -> bool:
    """Alive and not a zombie (read from /proc)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def wait_gone(pids: list[int], timeout: float = 15.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(running(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if running(p)]


def test_sigkill_of_the_runner_takes_its_stage_along_and_leaves_a_stale_lock(tmp_path):
    config = tiny_config(tmp_path)
    runner, pids = start_runner(tmp_path, config)
    try:
        children = stage_pids(pids)
        lock = runlock.lock_path(tmp_path / "run")
        assert runlock.read_lock(tmp_path / "run")["pid"] == runner.pid
        # a second run, and a stage script started by hand, are refused while the runner lives
        second = subprocess.run([sys.executable, "-m", "minionerec.pipeline", config, "--report", "false"],
                                cwd=ROOT, capture_output=True, text=True)
        assert second.returncode == 2 and f"PID {runner.pid}" in second.stderr and str(lock) in second.stderr
        by_hand = subprocess.run(["bash", "data/synthetic.sh", config], cwd=ROOT, capture_output=True, text=True)
        assert by_hand.returncode == 2 and f"workdir in use by PID {runner.pid}" in by_hand.stderr
        runner.kill()
        runner.wait()
        assert wait_gone(children) == []
    finally:
        for pid in stage_pids(pids, 0):
            if running(pid):
                os.kill(pid, signal.SIGKILL)
    assert lock.is_file()  # left behind by the SIGKILL: the next run takes it over
    rerun, pids = start_runner(tmp_path, config, fast=True)
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert "taking over a stale lock" in err and not lock.exists()


def test_sigkill_of_the_runner_ends_torchrun_ranks_too(tmp_path):
    runner, pids = start_runner(tmp_path, tiny_config(tmp_path), launcher="torchrun")
    try:
        ranks = stage_pids(pids)
        runner.kill()
        runner.wait()
        assert wait_gone(ranks) == []
    finally:
        for pid in stage_pids(pids, 0):
            if running(pid):
                os.kill(pid, signal.SIGKILL)


def test_sigterm_is_forwarded_to_the_stage_and_the_runner_exits_non_zero(tmp_path):
    config = tiny_config(tmp_path)
    runner, pids = start_runner(tmp_path, config)
    children = stage_pids(pids)
    runner.send_signal(signal.SIGTERM)
    _, err = runner.communicate(timeout=60)
    assert runner.returncode == 128 + signal.SIGTERM
    assert "got SIGTERM and stopped stage 'synthetic'" in err and "--from synthetic" in err
    assert wait_gone(children) == []
    assert not runlock.lock_path(tmp_path / "run").exists()


def test_failure_hint_repeats_every_override_and_names_a_kill(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    config = tiny_config(tmp_path)
    workdir = str(tmp_path / "other run")
    monkeypatch.setattr(pipeline.Stage, "command", lambda self, path, extra: ["bash", "-c", "exit 3"])
    with pytest.raises(SystemExit):
        pipeline.main([config, "--workdir", workdir, "--synthetic.n_users", "30", "--report", "false"])
    with pytest.raises(InputError) as failed:
        pipeline.run(config, {"workdir": workdir, "synthetic.n_users": "30"},
                     rerun_command=["bash", "run_all.sh", config, f"--workdir={workdir}", "--synthetic.n_users=30"])
    assert "fix the error above" in str(failed.value)
    hint = f"bash run_all.sh {config} '--workdir={workdir}' --synthetic.n_users=30 --from synthetic"
    assert hint in str(failed.value)
    monkeypatch.setattr(pipeline.Stage, "command", lambda self, path, extra: ["bash", "-c", "kill -KILL $$"])
    with pytest.raises(InputError, match=r"killed by signal 9 \(SIGKILL\)") as killed:
        pipeline.run(config, {"workdir": workdir})
    assert "fix the error above" not in str(killed.value)
    assert pipeline.killed_by(128 + 15) == 15 and pipeline.killed_by(2) is None


def test_dry_run_checks_every_section_and_override_before_anything_runs(tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(ROOT)
    workdir = str(tmp_path / "run")
    bad = ["--sft.max_stepz", "1", "--sft.learning_rate", "abc", "--max_steps", "2",
           "--rl.output_dir", "${common.nope}", "--evaluate.num_beamz", "3"]
    with pytest.raises(SystemExit) as stop:
        pipeline.main(["configs/synthetic.yaml", "--workdir", workdir, *bad, "--dry_run"])
    assert stop.value.code == 2
    text = capfd.readouterr().err
    assert "5 problem(s), nothing was run" in text
    assert ("--sft.max_stepz (command line): section 'sft' has no key 'max_stepz' "
            "(did you mean --sft.max_steps?)") in text
    assert "sft.learning_rate: expected a number, got 'abc' (from the command line: --sft.learning_rate abc)" in text
    assert "did you mean --sft.max_steps (or --rl.max_steps)?" in text
    assert "reference ${common.nope} does not name a key in rl.output_dir (from the command line" in text
    assert "(did you mean --evaluate.num_beams?)" in text
    assert not Path(workdir).exists()  # nothing ran, no lock taken
    with pytest.raises(SystemExit):
        pipeline.main(["configs/synthetic.yaml", "--workdir", workdir, "--data.source", "bogus", "--dry_run"])
    assert "got 'bogus' (from the command line: --data.source bogus)" in capfd.readouterr().err
    pipeline.main(["configs/synthetic.yaml", "--workdir", workdir, "--dry_run"])  # a good config passes
    assert "dry run: config and overrides are valid" in capfd.readouterr().err


def test_a_bad_value_in_the_file_and_a_missing_first_input_are_found_before_running(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    body = {"common": {"dataset": "Tiny", "workdir": str(tmp_path / "run")},
            "data": {"source": "amazon18", "input_path": str(tmp_path / "absent"), "output_dir": str(tmp_path / "d")},
            "convert": {"data_dir": str(tmp_path / "d" / "Tiny"), "output_dir": str(tmp_path / "llm"),
                        "seed": "x"}}
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump(body))
    with pytest.raises(InputError) as caught:
        pipeline.run(str(config), {})
    message = str(caught.value)
    assert f"data.input_path = {tmp_path / 'absent'}, which does not exist (from config file {config})" in message
    assert f"convert.seed: expected an integer, got 'x' (from config file {config})" in message
    assert "convert.data_dir" not in message  # written by the data stage: not required up front


def script(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHON": sys.executable}
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, env=env, timeout=120)


def test_lcrec_process_says_what_it_wrote(tmp_path):
    import json

    (tmp_path / "in").mkdir()
    sequences = {str(u): [(u + j) % 6 for j in range(5)] for u in range(4)}
    (tmp_path / "in" / "T.inter.json").write_text(json.dumps(sequences))
    (tmp_path / "in" / "T.item.json").write_text(json.dumps({str(i): {"title": f"item {i}"} for i in range(6)}))
    done = script("bash", str(ROOT / "data/lcrec_process.sh"), "--input_path", "in", "--dataset", "T",
                  "--output_dir", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "T: 4 users, 6 items; train/valid/test 8/4/4 rows" in done.stderr and "out/T/T" in done.stderr


def test_a_method_script_neither_lists_nor_takes_method():
    shown = script(sys.executable, "rq/rqkmeans_faiss.py", "--help")
    assert shown.returncode == 0 and "--num_levels" in shown.stdout and "--method" not in shown.stdout
    refused = script(sys.executable, "rq/rqkmeans_faiss.py", "--method", "rqvae")
    assert refused.returncode == 2 and "rqkmeans_faiss.py always runs rqkmeans_faiss" in refused.stderr


def test_paper_table_without_its_input_is_one_clear_error(tmp_path):
    missing = script(sys.executable, "benchmarks/paper_table.py", "--dataset", "office", "--results",
                     str(tmp_path / "results.json"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert f"{tmp_path / 'results.json'} does not exist" in missing.stderr
    (tmp_path / "results.json").write_text("{not json")
    broken = script(sys.executable, "benchmarks/paper_table.py", "--dataset", "office", "--results",
                    str(tmp_path / "results.json"))
    assert broken.returncode == 2 and "is not a results.json" in broken.stderr


def test_an_interrupted_stage_ends_with_one_line_and_exit_130(tmp_path, monkeypatch):
    from minionerec.cli import run_cli

    monkeypatch.chdir(tmp_path)

    def interrupted(args: list[str]) -> None:
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as stop:
        run_cli(interrupted, [])
    assert stop.value.code == 128 + signal.SIGINT


def test_taking_over_a_stale_lock_ends_what_is_left_of_its_stage(tmp_path):
    import json

    leftover = subprocess.Popen(["sleep", "60"], start_new_session=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    runlock.lock_path(tmp_path).write_text(json.dumps({"pid": dead.pid, "host": None, "stage_pgid": leftover.pid}))
    with runlock.held(tmp_path, ["test"]):
        assert leftover.poll() == -signal.SIGKILL
        assert runlock.read_lock(tmp_path)["pid"] == os.getpid()
    assert runlock.read_lock(tmp_path) is None


def test_ctrl_c_between_stages_prints_the_resume_command(tmp_path, monkeypatch, capfd):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "run", interrupted)
    config = tiny_config(tmp_path)
    with pytest.raises(SystemExit) as stop:
        pipeline.main([config, "--seed", "7"])
    assert stop.value.code == 128 + signal.SIGINT
    assert f"resume with: bash run_all.sh {config} --seed=7" in capfd.readouterr().err
    assert not runlock.lock_path(tmp_path / "run").exists()


def test_a_misspelt_stage_name_gets_a_did_you_mean(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    with pytest.raises(InputError, match=r"--from synthetc: unknown stage \(did you mean synthetic\?\)"):
        pipeline.run(tiny_config(tmp_path), {}, start="synthetc", dry_run=True)
