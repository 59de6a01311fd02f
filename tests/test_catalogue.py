"""minionerec.catalogue: one Catalogue for decoding/evaluation (SID groups) and the baselines (item rows, fingerprint)."""

from __future__ import annotations

import pytest

from minionerec.catalogue import Catalogue, CatalogueItem, read_info, write_info
from minionerec.errors import InputError
from minionerec.sid import parse_sid

SIDS = ["<a_1><b_1><c_1>", "<a_1><b_2><c_1>", "<a_2><b_1><c_1>"]


def items(ids=(100, 101, 102, 103)) -> list[CatalogueItem]:
    sids = [SIDS[0], SIDS[1], SIDS[2], SIDS[1]]  # rows 1 and 3 share a SID
    return [CatalogueItem(parse_sid(s), f"t{i}", item) for i, (s, item) in enumerate(zip(sids, ids))]


def test_rows_are_grouped_by_sid_in_first_appearance_order():
    catalogue = Catalogue.from_info(items())
    assert catalogue.sids == SIDS and catalogue.sid_rows == [[0], [1, 3], [2]]
    assert catalogue.sid_to_items() == {SIDS[0]: [100], SIDS[1]: [101, 103], SIDS[2]: [102]}
    assert catalogue.item_ids == (100, 101, 102, 103) and catalogue.sid_strings[3] == SIDS[1]
    assert catalogue.index_of == {100: 0, 101: 1, 102: 2, 103: 3} and catalogue.n_items == 4
    assert catalogue.to_rows([102, 100], "here") == [3, 1]
    with pytest.raises(InputError, match="here: item id 7 is not in the catalogue"):
        catalogue.to_rows([7], "here")


def test_a_path_and_its_rows_give_the_same_catalogue_and_the_path_adds_the_fingerprint(tmp_path):
    path = write_info(tmp_path / "info.txt", items())
    from_path, from_rows = Catalogue.from_info(path), Catalogue.from_info(read_info(path))
    assert (from_path.sids, from_path.sid_rows, from_path.item_ids) == (from_rows.sids, from_rows.sid_rows, from_rows.item_ids)
    assert Catalogue.read(path) == from_path and from_path.info_path == str(path) and len(from_path.info_sha256) == 64
    assert from_rows.info_sha256 == "" and from_path.fingerprint()["n_items"] == 4
    from_path.check_fingerprint(Catalogue.read(path).fingerprint(), "m")
    with pytest.raises(InputError, match="trained on another catalogue"):
        from_path.check_fingerprint({"n_items": 3, "info_sha256": "x"}, "m")


def test_reading_a_file_refuses_repeated_item_ids(tmp_path):
    path = write_info(tmp_path / "info.txt", items(ids=(1, 2, 1, 3)))
    with pytest.raises(InputError, match="item id 1 appears on several lines"):
        Catalogue.read(path)
    assert Catalogue.from_info(read_info(path)).sid_rows == [[0], [1, 3], [2]]  # rows: decoding needs no unique ids

