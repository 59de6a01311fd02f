"""minionerec.convert (convert_dataset.py): upstream CSV/info format, errors, and a byte-for-byte round trip."""

from __future__ import annotations

import json

import pytest

from conftest import shared_path
from minionerec.catalogue import read_info
from minionerec.convert import ConvertConfig, convert, main
from minionerec.errors import InputError
from minionerec.io import InterRow, read_index_json, read_item_json, read_split_csv, write_index_json, write_inter

ITEMS = {
    "0": {"title": "Tape, 3/4 in", "description": "['a']"},
    "1": {"title": 'Glue "super"  12-Pack', "description": ""},
    "2": {"title": "Saw", "description": ""},
}
INDEX = {0: ("<a_1>", "<b_2>", "<c_3>"), 1: ("<a_1>", "<b_2>", "<c_4>"), 2: ("<a_0>", "<b_0>", "<c_0>")}


def make_data(tmp_path, index=INDEX, items=ITEMS):
    data = tmp_path / "data"
    data.mkdir()
    (data / "D.item.json").write_text(json.dumps(items))
    write_index_json(data / "D.index.json", index)
    write_inter(data / "D.train.inter", [InterRow(0, (0,), 1), InterRow(0, (0, 1), 2), InterRow(1, (2,), 0)])
    write_inter(data / "D.valid.inter", [InterRow(1, (2, 0), 1)])
    write_inter(data / "D.test.inter", [InterRow(0, (0, 1, 2), 0)])
    return data


def run(tmp_path, **kw):
    cfg = ConvertConfig(dataset="D", data_dir=str(tmp_path / "data"), output_dir=str(tmp_path / "llm"), **kw)
    return main(cfg)


def test_writes_upstream_columns_and_info(tmp_path):
    make_data(tmp_path)
    written = run(tmp_path)
    text = written["valid"].read_text()
    assert text.splitlines()[0] == "user_id,history_item_title,item_title,history_item_id,item_id,history_item_sid,item_sid"
    assert text.splitlines()[1] == (
        "A1,\"['Saw', 'Tape, 3/4 in']\",\"Glue \"\"super\"\"  12-Pack\",\"[2, 0]\",1,"
        "\"['<a_0><b_0><c_0>', '<a_1><b_2><c_3>']\",<a_1><b_2><c_4>"
    )
    rows = read_split_csv(written["train"])
    assert [r.item_id for r in rows] == [1, 2, 0]
    assert rows[1].history_item_sid == ("<a_1><b_2><c_3>", "<a_1><b_2><c_4>")
    info = read_info(written["info"])
    assert [(i.sid_string, i.title, i.item_id) for i in info][1] == ("<a_1><b_2><c_4>", 'Glue "super"  12-Pack', 1)
    assert (tmp_path / "llm" / "convert.config.yaml").is_file()


def test_keep_longest_and_subsample(tmp_path):
    make_data(tmp_path)
    written = run(tmp_path, keep_longest_only=True)
    assert [len(r.history_item_id) for r in read_split_csv(written["train"])] == [2, 1]


def test_missing_sid_is_a_clear_error(tmp_path):
    make_data(tmp_path, index={0: INDEX[0], 2: INDEX[2]})
    with pytest.raises(InputError, match=r"D.train.inter:2: item 1 has no SID"):
        run(tmp_path)


def test_missing_item_and_empty_title(tmp_path):
    items = dict(ITEMS)
    items["2"] = {"title": "  "}
    make_data(tmp_path, items=items)
    with pytest.raises(InputError, match=r"item 2 has an empty title"):
        run(tmp_path)


def test_malformed_index_token(tmp_path):
    make_data(tmp_path)
    (tmp_path / "data" / "D.index.json").write_text(json.dumps({"0": ["<a_1>", "b_2"]}))
    with pytest.raises(InputError, match="item 0"):
        run(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("split", ["valid", "test"])
def test_round_trip_with_upstream_csv(tmp_path, split):
    root = shared_path("minionerec_amazon")
    upstream = next((root / split).glob("*.csv"))
    item_path = root / "index" / "Industrial_and_Scientific.item.json"
    rows = read_split_csv(upstream)
    inter = [InterRow(int(r.user_id[1:]), r.history_item_id, r.item_id) for r in rows]
    written = convert({split: (inter, upstream)}, read_item_json(item_path),
                      read_index_json(root / "index" / "Industrial_and_Scientific.index.json"),
                      item_path, tmp_path, "Industrial_and_Scientific")
    assert written[split].read_bytes() == upstream.read_bytes()
    assert written["info"].read_bytes() == next((root / "info").glob("*.txt")).read_bytes()


def test_a_failed_convert_keeps_the_previous_outputs_and_no_done_record(tmp_path):
    data = make_data(tmp_path)
    first = run(tmp_path)
    before = {split: path.read_bytes() for split, path in first.items()}
    assert (tmp_path / "llm" / "convert.done.json").is_file()
    write_inter(data / "D.train.inter", [InterRow(0, (0,), 2), InterRow(1, (2,), 1)])  # new train/valid rows ...
    write_inter(data / "D.test.inter", [InterRow(0, (0, 1), 9)])  # ... but a test row names an unknown item
    with pytest.raises(InputError, match="9"):
        run(tmp_path)
    assert {split: path.read_bytes() for split, path in first.items()} == before  # no new train beside an old test
    assert not (tmp_path / "llm" / "convert.done.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # the staging folder is gone
    assert sorted(p.name for p in (tmp_path / "llm").iterdir()) == ["convert.attempt.json", "convert.config.yaml",
                                                                     "info", "test", "train", "valid"]
