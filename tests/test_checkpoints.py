"""Which checkpoint a run resumes from, and an earlier run's checkpoints."""

from __future__ import annotations

import pytest

from minionerec.checkpoints import checkpoints_in, remove_stale_checkpoints, resolve_resume
from minionerec.errors import InputError


def make(tmp_path, *steps):
    for step in steps:
        (tmp_path / f"checkpoint-{step}").mkdir()
    (tmp_path / "checkpoint-notes.txt").write_text("not a checkpoint")


def test_auto_resumes_from_the_highest_step_not_the_last_in_name_order(tmp_path):
    make(tmp_path, 9, 10, 100)
    assert [p.name for p in checkpoints_in(tmp_path)] == ["checkpoint-9", "checkpoint-10", "checkpoint-100"]
    assert resolve_resume("auto", tmp_path, "rl").endswith("checkpoint-100")
    assert resolve_resume("", tmp_path, "rl") is None and resolve_resume("false", tmp_path, "rl") is None
    assert resolve_resume("auto", tmp_path / "empty", "rl") is None
    with pytest.raises(InputError, match="sft.resume_from_checkpoint .* is not a checkpoint folder"):
        resolve_resume(str(tmp_path / "missing"), tmp_path, "sft")


def test_a_fresh_run_removes_only_checkpoint_folders(tmp_path):
    make(tmp_path, 50, 1024)
    (tmp_path / "model.safetensors").write_text("x")
    remove_stale_checkpoints(tmp_path)
    assert checkpoints_in(tmp_path) == []
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "checkpoint-notes.txt").is_file()
