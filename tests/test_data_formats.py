"""Raw-format readers, outputs, bad input, determinism, no leakage, and a cross-check against an
independent, deliberately naive implementation of the reference protocol."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import logging
from collections import defaultdict
from pathlib import Path

import pytest

from minionerec.errors import InputError
from minionerec.io import (
    LineSkips,
    find_upstream_layout,
    iter_json_lines,
    leave_one_out_split,
    read_id_map,
    read_inter,
    read_inter_json,
    read_item_json,
    read_lcrec_dataset,
)
from minionerec.data import (
    ProtocolOptions,
    amazon18_files,
    amazon23_files,
    build_dataset,
    process,
    read_amazon18,
    read_amazon23,
    read_movielens,
)
from minionerec.synthetic import SyntheticConfig, generate, write_synthetic
from conftest import shared_path

DAY = 86400


def write_jsonl(path: Path, records, raw_lines=()) -> Path:
    lines = [json.dumps(r) for r in records] + list(raw_lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def opts(tmp_path: Path, **kw) -> ProtocolOptions:
    base = dict(dataset="D", output_dir=str(tmp_path / "out"), user_k=0, item_k=0, st_year=0, ed_year=0)
    base.update(kw)
    return ProtocolOptions(**base)


def review18(user, asin, day, **extra):
    return {"reviewerID": user, "asin": asin, "overall": 4.0, "unixReviewTime": day * DAY, **extra}


def meta18(asin, title, **extra):
    return {"asin": asin, "title": title, **extra}


# ---------------------------------------------------------------------------------- JSON lines

def test_iter_json_lines_counts_malformed_lines_and_reads_gzip(tmp_path, caplog):
    path = tmp_path / "x.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write('{"a": 1}\n\n{broken\n[1, 2]\n{"a": 2}\n')
    skips = LineSkips(path)
    assert [(n, r["a"]) for n, r in iter_json_lines(path, skips)] == [(1, 1), (5, 2)]
    assert skips.counts == {"malformed JSON": 2} and skips.first_line == {"malformed JSON": 3}
    with caplog.at_level(logging.WARNING):
        skips.log()
    assert "skipped 2 line(s)" in caplog.text and f"{path}:3" in caplog.text
    with pytest.raises(InputError, match=rf"{path}:3 is not a valid JSON object"):
        list(iter_json_lines(path, strict=True))


def test_truncated_gzip_is_an_input_error(tmp_path):
    data = gzip.compress(b'{"a": 1}\n' * 1000)
    path = tmp_path / "t.json.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cannot be read"):
        list(iter_json_lines(path))


# ---------------------------------------------------------------------------------- Amazon 2018

def test_amazon18_file_discovery_prefers_5core(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        amazon18_files(tmp_path / "nope", "D")
    with pytest.raises(InputError, match="reviews file not found.*D_5.json.*amazon_v2"):
        amazon18_files(tmp_path, "D")
    write_jsonl(tmp_path / "D.json", [])
    with pytest.raises(InputError, match="meta file not found.*meta_D.json"):
        amazon18_files(tmp_path, "D")
    write_jsonl(tmp_path / "meta_D.json.gz", [])
    assert amazon18_files(tmp_path, "D") == (tmp_path / "D.json", tmp_path / "meta_D.json.gz")
    write_jsonl(tmp_path / "D_5.json", [])
    assert amazon18_files(tmp_path, "D")[0] == tmp_path / "D_5.json"


def test_amazon18_features_and_outputs(tmp_path):
    meta = [
        meta18("A1", "Tape &amp; Roll", description=["<b>Strong</b> tape", "it's red"], brand="by\n  3M ",
               category=["Industrial &amp; Scientific", "Tapes"], price="$4.99"),
        meta18("A2", "Glue", description=[], brand="Elmer"),
        meta18("A3", '<span id="x">Bad</span>'),
        {"asin": "A4"},
    ]
    reviews = [review18("u1", "A1", 1), review18("u1", "A2", 2), review18("u2", "A2", 1), review18("u2", "A1", 3),
               review18("u2", "A3", 4), review18("u1", "A4", 5)]
    write_jsonl(tmp_path / "meta_D.json", meta)
    write_jsonl(tmp_path / "D.json", reviews)
    raw = read_amazon18(tmp_path / "D.json", tmp_path / "meta_D.json")
    assert set(raw.items) == {"A1", "A2"}
    out = process(raw, opts(tmp_path))
    items = json.loads((out / "D.item.json").read_text())
    assert items == {
        "0": {"title": "Tape & Roll", "description": "['Strong tape', \"it's red\"]", "brand": "3M",
              "categories": "Industrial & Scientific, Tapes", "price": "$4.99"},
        "1": {"title": "Glue", "description": "", "brand": "Elmer", "categories": "", "price": ""},
    }
    assert read_id_map(out / "D.user2id") == {"u1": 0, "u2": 1}
    assert read_id_map(out / "D.item2id") == {"A1": 0, "A2": 1}
    assert read_inter_json(out / "D.inter.json") == {0: [0, 1], 1: [1, 0]}
    rows = read_inter(out / "D.train.inter") + read_inter(out / "D.valid.inter") + read_inter(out / "D.test.inter")
    assert [(r.user, r.history, r.target) for r in rows] == [(0, (0,), 1), (1, (1,), 0)]
    assert (out / "D.train.inter").read_text().splitlines()[0] == "user_id:token\titem_id_list:token_seq\titem_id:token"
    stats = json.loads((out / "D.stats.json").read_text())
    assert stats["users"] == 2 and stats["items"] == 2 and stats["samples"]["total"] == 2
    assert stats["counts"]["meta_dropped_by_title_filter"] == 2
    assert (out / "data.config.yaml").is_file()
    assert read_item_json(out / "D.item.json")[0]["title"] == "Tape & Roll"
    assert not list(out.glob(".*.tmp"))


def test_amazon18_bad_records_are_counted_or_strict_errors(tmp_path, caplog):
    write_jsonl(tmp_path / "meta_D.json", [meta18("A1", "One"), meta18("A2", "Two")], raw_lines=["{not json"])
    write_jsonl(tmp_path / "D.json",
                [review18("u1", "A1", 1), {"reviewerID": "u1", "asin": "A2"}, {"asin": "A1", "unixReviewTime": 5},
                 review18("u1", "A2", 2)])
    with caplog.at_level(logging.WARNING):
        raw = read_amazon18(tmp_path / "D.json", tmp_path / "meta_D.json")
    assert len(raw.interactions) == 2
    assert raw.counts["meta_lines_skipped"] == {"malformed JSON": 1}
    assert raw.counts["review_lines_skipped"] == {
        "a review without an integer 'unixReviewTime'": 1, "a review without 'reviewerID' or 'asin'": 1}
    assert f"{tmp_path / 'D.json'}:2" in caplog.text and "skipped 1 line(s)" in caplog.text
    with pytest.raises(InputError, match=r"meta_D.json:3 is not a valid JSON object"):
        read_amazon18(tmp_path / "D.json", tmp_path / "meta_D.json", strict=True)
    write_jsonl(tmp_path / "meta_D.json", [meta18("A1", "One"), meta18("A2", "Two")])
    with pytest.raises(InputError, match=r"D.json:2: a review without an integer 'unixReviewTime'"):
        read_amazon18(tmp_path / "D.json", tmp_path / "meta_D.json", strict=True)


def test_amazon18_meta_without_titles_and_empty_files(tmp_path):
    write_jsonl(tmp_path / "D.json", [review18("u1", "A1", 1)])
    write_jsonl(tmp_path / "meta_D.json", [{"asin": "A1"}, meta18("A2", "X")])
    with pytest.raises(InputError, match="none of its 2 records has a usable title"):
        read_amazon18(tmp_path / "D.json", tmp_path / "meta_D.json")
    write_jsonl(tmp_path / "meta_D.json", [], raw_lines=["garbage"])
    with pytest.raises(InputError, match="no usable record"):
        read_amazon18(tmp_path / "D.json", tmp_path / "meta_D.json")
    write_jsonl(tmp_path / "meta_D.json", [meta18("A1", "Fine")])
    write_jsonl(tmp_path / "D.json", [{"foo": 1}])
    with pytest.raises(InputError, match="no usable review"):
        read_amazon18(tmp_path / "D.json", tmp_path / "meta_D.json")


# ---------------------------------------------------------------------------------- Amazon 2023

def test_amazon23_reader(tmp_path):
    ms = 1588687728923  # 2020-05-05 14:08:48.923 UTC
    meta = [
        {"parent_asin": "P1", "title": " <i>Lip</i>  Balm &amp; Co ", "description": ["Soft.", "<b>Smooth</b>"],
         "store": "Burt &amp; Bees", "categories": ["Beauty", "Lips"], "features": ["a", "b"],
         "details": {"Brand": "B"}, "images": [{"hi_res": None, "large": "L"}, {"large": "L2", "thumb": "T"}]},
        {"parent_asin": "P2", "title": "   "},
        {"parent_asin": "P3", "title": "Cream", "store": None, "details": {"Brand": "Nivea"}, "price": 3.5},
    ]
    reviews = [
        {"user_id": "U1", "parent_asin": "P1", "asin": "C1", "rating": 5.0, "timestamp": ms, "helpful_vote": 2},
        {"user_id": "U1", "parent_asin": "P3", "asin": "C9", "rating": 4.0, "timestamp": ms + 999},
        {"user_id": "U1", "asin": "C3", "rating": 4.0, "timestamp": ms},
        {"user_id": "U1", "parent_asin": "P1", "rating": 4.0, "timestamp": "not a time"},
    ]
    write_jsonl(tmp_path / "All_Beauty.jsonl", reviews)
    write_jsonl(tmp_path / "meta_All_Beauty.jsonl", meta)
    r, m = amazon23_files(tmp_path, "All_Beauty")
    raw = read_amazon23(r, m)
    assert [(x.user, x.item, x.timestamp) for x in raw.interaction_rows()] == [
        ("U1", "P1", 1588687728), ("U1", "P3", 1588687729)]
    assert raw.counts["review_lines_skipped"] == {"a review without 'user_id' or 'parent_asin'": 1,
                                                  "a review without an integer 'timestamp'": 1}
    assert set(raw.items) == {"P1", "P3"}
    assert raw.items["P1"] == {"title": "Lip Balm & Co", "description": "Soft. Smooth", "brand": "Burt & Bees",
                               "categories": "Beauty, Lips", "features": "a b", "details": {"Brand": "B"},
                               "images": [None, "L2"], "price": None}
    assert raw.items["P3"]["brand"] == "Nivea" and raw.items["P3"]["price"] == 3.5
    ds = build_dataset(raw, ProtocolOptions(dataset="All_Beauty", user_k=0, item_k=0, st_year=0, ed_year=0))
    assert ds.stats["category_phrase"] == "all beauty items"
    assert [(s.history, s.target) for s in ds.test] == [((0,), 1)]


# ---------------------------------------------------------------------------------- MovieLens

def test_movielens_recbole_format(tmp_path):
    (tmp_path / "ml.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "7\t2\t4\t100\n7\t1\t3\t100\n8\t1\t5\t50\n8\t3\t5\t200\n", encoding="utf-8")
    (tmp_path / "ml.item").write_text(
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "1\tToy Story\t1995\tAnimation Children's Comedy\n2\tHeat\t1995\tAction Crime\n3\tunkonwn\tunkonwn\tunknown\n",
        encoding="utf-8")
    raw = read_movielens(tmp_path, "ml")
    assert raw.items["1"] == {"title": "Toy Story (1995)", "description": "Genres: Animation, Children's, Comedy.",
                              "brand": "", "categories": "Animation, Children's, Comedy"}
    assert raw.items["3"] == {"title": "unkonwn", "description": "", "brand": "", "categories": ""}
    ds = build_dataset(raw, ProtocolOptions(dataset="ml", user_k=0, item_k=0, st_year=0, ed_year=0))
    assert ds.user2id == {"7": 0, "8": 1}
    assert ds.item2id == {"2": 0, "1": 1, "3": 2}  # user 7's same-second ties keep file order


def test_movielens_grouplens_formats(tmp_path):
    ml100k = tmp_path / "a"
    ml100k.mkdir()
    flags = ["0"] * 19
    flags[3] = flags[5] = "1"
    (ml100k / "u.item").write_bytes(("1|Toy Story (1995)|01-Jan-1995||http://x|" + "|".join(flags) + "\n"
                                     "2|Caf\xe9 (1996)|01-Jan-1996||http://y|" + "|".join(["0"] * 18 + ["1"]) + "\n"
                                     ).encode("latin-1"))
    (ml100k / "u.data").write_text("5\t1\t4\t881250949\n5\t2\t3\t881250950\n", encoding="utf-8")
    raw = read_movielens(ml100k, "ml-100k")
    assert raw.items["1"]["title"] == "Toy Story (1995)"
    assert raw.items["1"]["categories"] == "Animation, Comedy"
    assert raw.items["2"]["title"] == "Café (1996)" and raw.items["2"]["categories"] == "Western"
    assert [(x.user, x.item, x.timestamp, x.rating) for x in raw.interaction_rows()] == [
        ("5", "1", 881250949, 4.0), ("5", "2", 881250950, 3.0)]

    ml1m = tmp_path / "b"
    ml1m.mkdir()
    (ml1m / "movies.dat").write_bytes("1::Toy Story (1995)::Animation|Children's|Comedy\n".encode("latin-1"))
    (ml1m / "ratings.dat").write_text("1::1::5::978300760\n", encoding="utf-8")
    raw = read_movielens(ml1m, "ml-1m")
    assert raw.items["1"]["categories"] == "Animation, Children's, Comedy"
    assert raw.interaction_rows()[0].timestamp == 978300760

    with pytest.raises(InputError, match="no MovieLens files"):
        read_movielens(tmp_path, "ml-100k")
    with pytest.raises(InputError, match="does not exist.*fetch_movielens"):
        read_movielens(tmp_path / "missing", "ml-100k")
    (ml1m / "ratings.dat").write_text("1::1::5\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"ratings.dat:1: expected"):
        read_movielens(ml1m, "ml-1m")


# ---------------------------------------------------------------------------------- LC-Rec and upstream layouts

def test_lcrec_reader_and_leave_one_out(tmp_path):
    (tmp_path / "S.inter.json").write_text(json.dumps({"0": [0, 1, 2, 3], "1": [2, 1], "2": [3]}))
    (tmp_path / "S.item.json").write_text(json.dumps({str(i): {"title": f"t{i}"} for i in range(4)}))
    data = read_lcrec_dataset(tmp_path, "S")
    train, valid, test = leave_one_out_split(data.sequences)
    assert [(r.user, r.history, r.target) for r in train] == [(0, (0,), 1)]
    assert [(r.user, r.history, r.target) for r in valid] == [(0, (0, 1), 2)]
    assert [(r.user, r.history, r.target) for r in test] == [(0, (0, 1, 2), 3), (1, (2,), 1)]
    long = {0: list(range(15))}
    assert leave_one_out_split(long)[2][0].history == tuple(range(4, 14))
    (tmp_path / "S.inter.json").write_text(json.dumps({"0": [0, 9]}))
    with pytest.raises(InputError, match="missing from S.item.json"):
        read_lcrec_dataset(tmp_path, "S")


def test_upstream_layout_finder(tmp_path):
    with pytest.raises(InputError, match="not an upstream MiniOneRec layout"):
        find_upstream_layout(tmp_path, "Ind")
    for sub in ("valid", "test", "info", "index"):
        (tmp_path / sub).mkdir()
    (tmp_path / "valid" / "Ind_5_2016-10-2018-11.csv").write_text("x")
    (tmp_path / "test" / "Ind_5_2016-10-2018-11.csv").write_text("x")
    (tmp_path / "index" / "Ind.index.json").write_text("{}")
    layout = find_upstream_layout(tmp_path, "Ind")
    assert layout.splits.train is None and layout.splits.valid.name == "Ind_5_2016-10-2018-11.csv"
    assert layout.index == tmp_path / "index" / "Ind.index.json" and layout.item is None


# ---------------------------------------------------------------------------------- determinism, leakage

def _synthetic(tmp_path: Path, seed: int = 3, **kw) -> tuple[Path, Path]:
    cfg = SyntheticConfig(output_dir=str(tmp_path / f"raw{seed}"), dataset="Syn", seed=seed,
                          n_users=80, n_items=40, n_clusters=4, **kw)
    return write_synthetic(cfg)


def test_outputs_are_deterministic_and_leak_free(tmp_path):
    reviews, meta = _synthetic(tmp_path)
    outs = []
    for run in ("a", "b"):
        options = ProtocolOptions(dataset="Syn", output_dir=str(tmp_path / run), user_k=3, item_k=3,
                                  st_year=2015, st_month=1, ed_year=2019, ed_month=1)
        outs.append(process(read_amazon18(reviews, meta), options))
    names = sorted(p.name for p in outs[0].iterdir())
    assert names == sorted(p.name for p in outs[1].iterdir())
    for name in names:
        if name not in ("data.config.yaml", "data.done.json"):  # hold the output path, which differs on purpose
            assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name

    # no leakage: every valid/test target time >= every train target time
    ds = build_dataset(read_amazon18(reviews, meta), ProtocolOptions(
        dataset="Syn", user_k=3, item_k=3, st_year=2015, st_month=1, ed_year=2019, ed_month=1))
    times = {name: [s.timestamp for s in getattr(ds, name)] for name in ("train", "valid", "test")}
    assert max(times["train"]) <= min(times["valid"]) <= max(times["valid"]) <= min(times["test"])
    assert times["train"] == sorted(times["train"])


def test_synthetic_generator_is_seeded_and_learnable(tmp_path):
    a = generate(SyntheticConfig(seed=1, n_users=50, n_items=30, n_clusters=3))
    b = generate(SyntheticConfig(seed=1, n_users=50, n_items=30, n_clusters=3))
    c = generate(SyntheticConfig(seed=2, n_users=50, n_items=30, n_clusters=3))
    assert a == b and a != c
    reviews, meta = a
    assert {"reviewerID", "asin", "overall", "unixReviewTime", "reviewText", "summary"} <= set(reviews[0])
    assert {"asin", "title", "description", "brand", "category"} <= set(meta[0])
    assert all(r["unixReviewTime"] % DAY == 0 for r in reviews)
    # planted structure: the most frequent successor of an item predicts the next item well
    by_user = defaultdict(list)
    for r in sorted(reviews, key=lambda r: r["unixReviewTime"]):
        by_user[r["reviewerID"]].append(r["asin"])
    pairs = [(s[i], s[i + 1]) for s in by_user.values() for i in range(len(s) - 1)]
    best = defaultdict(lambda: defaultdict(int))
    for x, y in pairs:
        best[x][y] += 1
    hits = sum(max(best[x].values()) for x in best)
    assert hits / len(pairs) > 0.5
    gz_reviews, gz_meta = write_synthetic(SyntheticConfig(output_dir=str(tmp_path / "gz"), seed=1, n_users=5,
                                                          n_items=10, n_clusters=2, gzip=True))
    assert gz_reviews.name == "Synthetic.json.gz" and gzip.decompress(gz_reviews.read_bytes())
    with pytest.raises(InputError, match="invalid settings"):
        generate(SyntheticConfig(n_clusters=0))


# ---------------------------------------------------------------------------------- independent cross-check

def reference_protocol(reviews_path: Path, meta_path: Path, user_k: int, item_k: int, st: tuple, ed: tuple):
    """A direct, naive reading of reference §2 (no shared code): returns (user2id, item2id, splits)."""
    titles = {}
    for line in open(meta_path, encoding="utf-8"):
        record = json.loads(line)
        if "title" not in record or record["title"].find("<span id") > -1:
            continue
        title = record["title"].replace("&quot;", '"').replace("&amp;", "&").strip(" ").strip('"')
        if len(title) > 1 and len(title.split(" ")) <= 20:
            titles[record["asin"]] = title
    reviews = [json.loads(line) for line in open(reviews_path, encoding="utf-8")]
    start = dt.datetime(st[0], st[1], 1, tzinfo=dt.timezone.utc).timestamp()
    end = dt.datetime(ed[0], ed[1], 1, tzinfo=dt.timezone.utc).timestamp()
    removed_users: set = set()
    removed_items: set = set()

    def alive(r):
        return (start <= r["unixReviewTime"] <= end and r["asin"] in titles
                and r["reviewerID"] not in removed_users and r["asin"] not in removed_items)

    while True:
        user_count: dict = defaultdict(int)
        item_count: dict = defaultdict(int)
        for r in reviews:
            if alive(r):
                user_count[r["reviewerID"]] += 1
                item_count[r["asin"]] += 1
        new_users = {u for u, c in user_count.items() if c < user_k}
        new_items = {i for i, c in item_count.items() if c < item_k}
        if not new_users and not new_items:
            break
        removed_users |= new_users
        removed_items |= new_items
    kept = [r for r in reviews if alive(r)]
    user2id: dict = {}
    per_user: dict = defaultdict(list)
    for r in kept:
        user2id.setdefault(r["reviewerID"], len(user2id))
        per_user[r["reviewerID"]].append(r)
    item2id: dict = {}
    samples = []
    for user in user2id:
        seq = sorted(per_user[user], key=lambda r: r["unixReviewTime"])
        for r in seq:
            item2id.setdefault(r["asin"], len(item2id))
        for i in range(1, len(seq)):
            history = [r["asin"] for r in seq[max(0, i - 10):i]]
            samples.append((user, history, seq[i]["asin"], seq[i]["unixReviewTime"]))
    samples.sort(key=lambda s: s[3])
    n = len(samples)
    return user2id, item2id, (samples[:int(n * 0.8)], samples[int(n * 0.8):int(n * 0.9)], samples[int(n * 0.9):])


@pytest.mark.parametrize("seed, user_k, item_k, st, ed", [
    (11, 5, 5, (2015, 1), (2019, 1)),
    (12, 3, 6, (2016, 6), (2017, 9)),   # the window cuts users in the middle of their sequences
    (13, 6, 2, (2016, 1), (2017, 1)),
])
def test_matches_an_independent_reference_implementation(tmp_path, seed, user_k, item_k, st, ed):
    reviews_path, meta_path = _synthetic(tmp_path, seed=seed, max_gap_days=2, noise=0.15)
    # extra noise: reviews of items without meta, duplicated and re-titled meta lines
    reviews = [json.loads(x) for x in reviews_path.read_text().splitlines()]
    meta = [json.loads(x) for x in meta_path.read_text().splitlines()]
    reviews += [review18(reviews[k]["reviewerID"], "NO_META", 16900 + k) for k in range(0, len(reviews), 7)]
    meta += [dict(meta[3], title=" &quot;Renamed " + meta[3].get("title", "x") + "&quot; ")]
    write_jsonl(reviews_path, reviews)
    write_jsonl(meta_path, meta)

    expected_users, expected_items, expected_splits = reference_protocol(
        reviews_path, meta_path, user_k, item_k, st, ed)
    options = ProtocolOptions(dataset="Syn", output_dir=str(tmp_path / "out"), user_k=user_k, item_k=item_k,
                              st_year=st[0], st_month=st[1], ed_year=ed[0], ed_month=ed[1])
    out = process(read_amazon18(reviews_path, meta_path), options)
    assert read_id_map(out / "Syn.user2id") == expected_users
    assert read_id_map(out / "Syn.item2id") == expected_items
    id2user = {v: k for k, v in expected_users.items()}
    id2item = {v: k for k, v in expected_items.items()}
    for name, expected in zip(("train", "valid", "test"), expected_splits):
        rows = read_inter(out / f"Syn.{name}.inter")
        got = [(id2user[r.user], [id2item[i] for i in r.history], id2item[r.target]) for r in rows]
        assert got == [(u, h, t) for u, h, t, _ in expected], name
    assert sum(len(s) for s in expected_splits) > 100


# ---------------------------------------------------------------------------------- real data (slow)

@pytest.mark.slow
def test_ml100k_from_shared_data_reproduces_the_reference_counts(tmp_path):
    folder = shared_path("movielens_100k_recbole")
    options = ProtocolOptions(dataset="ml-100k", output_dir=str(tmp_path), user_k=0, item_k=0, st_year=0, ed_year=0)
    out = process(read_movielens(folder, "ml-100k"), options)
    stats = json.loads((out / "ml-100k.stats.json").read_text())
    assert stats["samples"] == {"train": 79245, "valid": 9906, "test": 9906, "total": 99057}
    assert (stats["users"], stats["items"]) == (943, 1682)


@pytest.mark.slow
def test_lcrec_scientific_from_shared_data():
    folder = shared_path("amazon18_scientific_lcrec")
    data = read_lcrec_dataset(folder, "Scientific")
    assert (len(data.sequences), len(data.items)) == (8317, 4344)
    train, valid, test = leave_one_out_split(data.sequences)
    assert len(valid) == len(test) == 8317
    assert len(train) + len(valid) + len(test) == 58492 - 8317


@pytest.mark.slow
def test_upstream_layout_of_shared_data():
    folder = shared_path("minionerec_amazon")
    layout = find_upstream_layout(folder, "Industrial_and_Scientific", train_subdir="train_reconstructed_partial")
    assert layout.splits.train and layout.splits.valid and layout.splits.test and layout.splits.info
    assert layout.index and layout.item


def test_an_interrupted_write_keeps_the_previous_outputs_and_no_done_record(tmp_path, monkeypatch):
    from minionerec.data import writers

    reviews, meta = _synthetic(tmp_path)
    options = ProtocolOptions(dataset="Syn", output_dir=str(tmp_path / "out"), user_k=3, item_k=3,
                              st_year=2015, st_month=1, ed_year=2019, ed_month=1)
    out = process(read_amazon18(reviews, meta), options)
    assert (out / "Syn.stats.json").is_file() and (out / "data.done.json").is_file()
    before = {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith("data.")}

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(writers, "write_id_map", crash)
    with pytest.raises(OSError):
        process(read_amazon18(reviews, meta), options)
    assert {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith("data.")} == before
    assert not (out / "data.done.json").exists()
    assert not list(out.glob(".*.tmp")) and not [p for p in out.parent.iterdir() if p.name.startswith(".")]
