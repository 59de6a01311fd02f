"""Done-records: file fingerprints, what counts as a change, and staged multi-file outputs."""

from __future__ import annotations

import os

import pytest

from minionerec import records
from minionerec.io import publish_together


def test_a_change_is_content_for_small_files_and_mtime_for_big_ones(tmp_path, monkeypatch):
    small = tmp_path / "small.txt"
    small.write_text("abc")
    saved = records.describe(small)
    small.write_text("abc")  # same bytes, new mtime
    os.utime(small, ns=(saved["mtime_ns"] + 10**9, saved["mtime_ns"] + 10**9))
    assert records.entry_change(str(small), saved) is None
    small.write_text("abd")  # same size, other bytes
    assert records.entry_change(str(small), saved) == f"{small} changed"
    monkeypatch.setattr(records, "FULL_HASH_LIMIT", 4)
    monkeypatch.setattr(records, "EDGE_BYTES", 2)
    big = tmp_path / "big.bin"
    big.write_bytes(b"0123456789")
    saved = records.describe(big)
    assert "edges_sha256" in saved and "sha256" not in saved
    assert records.entry_change(str(big), saved) is None
    os.utime(big, ns=(saved["mtime_ns"] + 10**9, saved["mtime_ns"] + 10**9))
    assert records.entry_change(str(big), saved) == f"{big} changed"  # big: a moved mtime is a change
    big.unlink()
    assert records.entry_change(str(big), saved) == f"{big} missing"


def test_a_folder_input_sees_added_and_removed_files_but_not_records_or_temp_files(tmp_path):
    folder = tmp_path / "llm"
    (folder / "train").mkdir(parents=True)
    (folder / "train" / "D.csv").write_text("x")
    saved = records.describe(folder)
    (folder / "convert.done.json").write_text("{}")
    (folder / ".D.csv.123.tmp").write_text("partial")
    assert records.entry_change(str(folder), saved) is None
    (folder / "valid").mkdir()
    (folder / "valid" / "D.csv").write_text("y")
    assert records.entry_change(str(folder), saved) == f"{folder / 'valid' / 'D.csv'} added"
    assert records.entry_change(str(folder), saved, added_counts=False) is None  # an output folder
    (folder / "train" / "D.csv").unlink()
    assert records.entry_change(str(folder), saved) == f"{folder / 'train' / 'D.csv'} missing"


def test_publish_together_is_all_or_nothing(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "a.txt").write_text("old a")
    (target / "b.txt").write_text("old b")
    with pytest.raises(RuntimeError):
        with publish_together(target) as (staging, _):
            (staging / "a.txt").write_text("new a")
            raise RuntimeError("the stage failed before b")
    assert (target / "a.txt").read_text() == "old a" and sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with publish_together(target) as (staging, published):
        (staging / "a.txt").write_text("new a")
        (staging / "sub").mkdir()
        (staging / "sub" / "c.txt").write_text("c")
    assert sorted(published) == [target / "a.txt", target / "sub" / "c.txt"]
    assert (target / "a.txt").read_text() == "new a" and (target / "b.txt").read_text() == "old b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
