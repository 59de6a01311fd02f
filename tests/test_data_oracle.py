"""The columnar data stage (minionerec.data) against the row-by-row oracle (tests/reference_preprocess.py):
byte-identical outputs on synthetic, hand-made and (slow) real raw data."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

import reference_preprocess as oracle
from minionerec import data as columnar
from minionerec.data import writers
from minionerec.errors import InputError
from minionerec.synthetic import SyntheticConfig, write_synthetic
from conftest import shared_path

COMPARED = (".train.inter", ".valid.inter", ".test.inter", ".item.json", ".inter.json", ".user2id", ".item2id",
            ".interactions.tsv", ".stats.json")


def _outputs(module, raw, options, out: Path) -> dict[str, bytes]:
    ds = module.build_dataset(raw, options) if module is oracle else module.build_frames(raw, options)
    module.write_dataset(ds, raw.items, out, options.dataset)
    return {suffix: (out / f"{options.dataset}{suffix}").read_bytes() for suffix in COMPARED}


def _assert_same(reader: str, args: tuple, tmp_path: Path, **option_values) -> None:
    results = []
    for name, module in (("old", oracle), ("new", columnar)):
        options = module.ProtocolOptions(dataset="D", output_dir=str(tmp_path / name), **option_values)
        raw = getattr(module, reader)(*args)
        results.append(_outputs(module, raw, options, tmp_path / name / "D"))
    old, new = results
    for suffix in COMPARED:
        assert new[suffix] == old[suffix], f"{suffix} differs"


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("opts", [
    dict(user_k=3, item_k=3, st_year=2015, st_month=1, ed_year=2019, ed_month=1),
    dict(user_k=5, item_k=2, st_year=0, dedup=True),
    dict(user_k=2, item_k=4, st_year=2018, st_month=6, ed_year=2019, ed_month=1, min_items=50),
])
def test_synthetic_amazon18_is_byte_identical(tmp_path, monkeypatch, gz, opts):
    monkeypatch.setattr(writers, "SLICE_ROWS", 37 if gz else 10**9)  # many slices / one slice
    cfg = SyntheticConfig(output_dir=str(tmp_path / "raw"), dataset="Syn", n_users=300, n_items=60, seed=3,
                          gzip=gz)
    reviews, meta = write_synthetic(cfg)
    _assert_same("read_amazon18", (reviews, meta), tmp_path, **opts)


def _write_lines(path: Path, lines: list[str]) -> Path:
    data = "".join(line + "\n" for line in lines).encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def test_bad_lines_and_ties_are_byte_identical(tmp_path):
    """Malformed lines, odd types, missing fields and timestamp ties: same rows and skip counts."""
    meta = _write_lines(tmp_path / "meta.json", [json.dumps({"asin": f"i{k}", "title": f"Item {k}"}) for k in range(6)])
    good = [json.dumps({"reviewerID": f"u{u}", "asin": f"i{(u + k) % 6}", "unixReviewTime": 1500000000 + (k // 2),
                        "overall": 4.0 + (k % 2) / 2}) for u in range(8) for k in range(6)]
    bad = ["{bad", "[1, 2]", "", json.dumps({"reviewerID": 7, "asin": "i1", "unixReviewTime": 1500000000}),
           json.dumps({"reviewerID": "u1", "asin": "i2", "unixReviewTime": "1500000009", "overall": "5"}),
           json.dumps({"reviewerID": "u2", "asin": "i3", "unixReviewTime": 1500000003.7}),
           json.dumps({"reviewerID": "u3", "asin": ""}), json.dumps({"reviewerID": "u4", "asin": "i4"})]
    reviews = _write_lines(tmp_path / "reviews.json.gz", good[:20] + bad + good[20:])
    _assert_same("read_amazon18", (reviews, meta), tmp_path, user_k=2, item_k=2, st_year=0)
    new = columnar.read_amazon18(reviews, meta)
    assert new.counts["review_lines_skipped"] == oracle.read_amazon18(reviews, meta).counts["review_lines_skipped"]
    assert new.counts["review_lines_skipped"]["malformed JSON"] == 2


def test_amazon23_is_byte_identical(tmp_path):
    meta = _write_lines(tmp_path / "meta.jsonl", [json.dumps({"parent_asin": f"p{k}", "title": f"Thing {k}",
                                                              "store": "S"}) for k in range(5)])
    reviews = _write_lines(tmp_path / "r.jsonl", [
        json.dumps({"user_id": f"u{u}", "parent_asin": f"p{(u * k) % 5}", "rating": 3,
                    "timestamp": 1600000000000 + 1000 * k + u}) for u in range(6) for k in range(5)])
    _assert_same("read_amazon23", (reviews, meta), tmp_path, user_k=2, item_k=2, st_year=0)


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["ml-100k"])
def test_ml100k_is_byte_identical(tmp_path, dataset):
    folder = shared_path("movielens_100k_recbole")
    _assert_same("read_movielens", (folder, dataset), tmp_path, user_k=5, item_k=5, st_year=0)


def _movielens_folders(tmp_path: Path) -> dict[str, Path]:
    """Small RecBole and GroupLens folders with odd but valid values, blank lines and CRLF breaks."""
    recbole, ml100k, ml1m = tmp_path / "recbole", tmp_path / "ml100k", tmp_path / "ml1m"
    for folder in (recbole, ml100k, ml1m):
        folder.mkdir(parents=True)
    (recbole / "ml.item").write_text("item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
                                     + "".join(f"{i}\tMovie {i}\t199{i % 10}\tDrama Comedy\n" for i in range(6)))
    inter = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    inter += [f"{u}\t{(u + k) % 6}\t{['4', ' 3 ', 'x', 'nan', '5.0', '1e0'][k]}\t{880000000 + 7 * k + u}.{k}"
              for u in range(5) for k in range(6)]
    inter.insert(7, "   ")
    (recbole / "ml.inter").write_bytes(("\r\n".join(inter) + "\r\n").encode())
    (ml100k / "u.item").write_text("".join(f"{i}|Film {i}|01-Jan-1995||url|" + "|".join(["0", "1"] * 9 + ["0"])
                                           + "\n" for i in range(1, 6)), encoding="latin-1")
    (ml100k / "u.data").write_text("".join(f" {u}\t{1 + (u * k) % 5}\t{k % 5 + 1}\t+{881250000 + k}\n"
                                           for u in range(1, 6) for k in range(6)) + "\n\n", encoding="latin-1")
    (ml1m / "movies.dat").write_text("".join(f"{i}::Film {i} (1999)::Drama|Comedy\n" for i in range(1, 6)),
                                     encoding="latin-1")
    (ml1m / "ratings.dat").write_text("".join(f"{u}::{1 + (u + k) % 5}::{k % 5 + 1}::97830{k}{u}\n"
                                              for u in range(1, 6) for k in range(6)), encoding="latin-1")
    return {"ml": recbole, "ml-100k": ml100k, "ml-1m": ml1m}


def test_columnar_movielens_readers_are_byte_identical(tmp_path):
    for dataset, folder in _movielens_folders(tmp_path / "raw").items():
        _assert_same("read_movielens", (folder, dataset), tmp_path / dataset, user_k=2, item_k=2, st_year=0)


@pytest.mark.parametrize("body, line", [
    ("1\t2\t3\t881250949\n\n1\t2\t3\n", 3),            # a missing field, after a blank line
    ("1\t2\t3\t881250949\n1\t2\tbad\t881250950\n", 2),  # an unparsable rating
    ("1\t2\t3\t8812.5\n1\t2\t3\n", 1),                  # a non-integer timestamp comes first
])
def test_columnar_movielens_errors_name_the_same_line(tmp_path, body, line):
    folder = tmp_path / "ml100k"
    folder.mkdir()
    (folder / "u.item").write_text("2|Film|01-Jan-1995||url|" + "|".join(["0"] * 19) + "\n", encoding="latin-1")
    (folder / "u.data").write_text(body, encoding="latin-1")
    messages = []
    for module in (oracle, columnar):
        with pytest.raises(InputError) as error:
            module.read_movielens(folder, "ml-100k")
        messages.append(str(error.value))
    assert messages[0] == messages[1] and f"u.data:{line}:" in messages[1]
