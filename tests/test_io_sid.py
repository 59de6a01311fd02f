from __future__ import annotations

import json

import pytest

from minionerec.catalogue import CatalogueItem, read_info, write_info
from minionerec.errors import InputError
from minionerec.io import (
    InterRow,
    SplitRow,
    atomic_path,
    read_index_json,
    read_inter,
    read_split_csv,
    write_inter,
    write_split_csv,
)
from minionerec.sid import codes_to_sid, find_collisions, parse_sid, sid_vocabulary

from conftest import shared_path


def test_sid_parse_and_natural_order():
    assert parse_sid(' "<a_1><b_20><c_3>"\n') == ("<a_1>", "<b_20>", "<c_3>")
    with pytest.raises(ValueError):
        parse_sid("<a_1><c_2>")
    vocab = sid_vocabulary([codes_to_sid([10, 2]), codes_to_sid([2, 100]), codes_to_sid([1, 1, 1, 0])])
    assert vocab == ["<a_1>", "<a_2>", "<a_10>", "<b_1>", "<b_2>", "<b_100>", "<c_1>", "<d_0>"]
    assert find_collisions({0: ("<a_1>",), 1: ("<a_1>",), 2: ("<a_2>",)}) == {"<a_1>": [0, 1]}


def test_atomic_write_leaves_nothing_on_crash(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_inter_round_trip_and_malformed(tmp_path):
    rows = [InterRow(0, (1, 2), 3), InterRow(1, (3,), 0)]
    write_inter(tmp_path / "d.train.inter", rows)
    assert read_inter(tmp_path / "d.train.inter") == rows
    bad = tmp_path / "bad.inter"
    bad.write_text("user_id:token\titem_id_list:token_seq\titem_id:token\n0\t1 x\t2\n")
    with pytest.raises(InputError, match=r"bad.inter:2"):
        read_inter(bad)


def test_info_and_index_errors(tmp_path):
    write_info(tmp_path / "i.txt", [CatalogueItem(("<a_1>", "<b_2>"), "A\ttitle", 0)])
    assert read_info(tmp_path / "i.txt")[0].title == "A title"
    (tmp_path / "bad.txt").write_text("<a_1><b_2>\tonly two\n")
    with pytest.raises(InputError, match="bad.txt:1"):
        read_info(tmp_path / "bad.txt")
    (tmp_path / "x.index.json").write_text(json.dumps({"0": ["<a_1>", "b_2"]}))
    with pytest.raises(InputError, match="item 0"):
        read_index_json(tmp_path / "x.index.json")
    with pytest.raises(InputError, match="not found"):
        read_info(tmp_path / "absent.txt")


def test_csv_round_trip_and_no_code_execution(tmp_path):
    row = SplitRow("A1", ("t, 'quoted'",), "target", (4,), 5, ("<a_1><b_2>",), "<a_3><b_4>")
    write_split_csv(tmp_path / "s.csv", [row])
    assert read_split_csv(tmp_path / "s.csv") == [row]
    evil = tmp_path / "evil.csv"
    evil.write_text(
        "user_id,history_item_title,item_title,history_item_id,item_id,history_item_sid,item_sid\n"
        'A1,"__import__(\'os\').system(\'echo pwned\')",t,[1],2,[\'<a_1>\'],<a_2>\n'
    )
    with pytest.raises(InputError, match="not a list literal"):
        read_split_csv(evil)


@pytest.mark.slow
def test_reads_upstream_shipped_files():
    base = shared_path("minionerec_amazon")
    test_rows = read_split_csv(next((base / "test").glob("*.csv")))
    assert len(test_rows) == 4533
    info = read_info(next((base / "info").glob("*.txt")))
    assert len(info) == 3686
    index = read_index_json(base / "index" / "Industrial_and_Scientific.index.json")
    assert len(index) == 3686 and len(find_collisions(index)) == 15


def test_item_token_round_trips_and_is_not_a_sid_token() -> None:
    from minionerec.sid import TOKEN_RE, item_token, item_token_sid

    assert item_token("<a_12><b_3><c_200>") == "<item_12_3_200>"
    assert item_token(("<a_1>", "<b_2>", "<c_3>", "<d_0>")) == "<item_1_2_3_0>"
    assert item_token_sid("<item_12_3_200>") == ("<a_12>", "<b_3>", "<c_200>")
    assert item_token_sid("<a_12>") is None and item_token_sid("<item_>") is None
    assert not TOKEN_RE.fullmatch(item_token("<a_1><b_2>"))  # never read as a SID level token
    with pytest.raises(ValueError):
        item_token("<b_1><a_2>")
