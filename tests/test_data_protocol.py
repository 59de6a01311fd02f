"""Hand-computed fixtures for every rule of the data protocol (minionerec/data/, text.py)."""

from __future__ import annotations

import os
import time

import pytest

from minionerec.errors import InputError
from minionerec.data import (
    Interaction,
    ProtocolOptions,
    RawData,
    Sample,
    build_dataset,
    make_window,
    month_start_utc,
    split_indices,
)
# The single steps on Python records are checked on the row-by-row oracle; test_data_oracle.py checks that
# the columnar stage gives byte-identical outputs, and the build_dataset tests below run the columnar stage.
from reference_preprocess import chronological_split, filter_interactions, kcore, remap_ids, sliding_samples
from minionerec.text import (
    amazon18_brand,
    amazon18_description,
    category_phrase,
    clean_amazon18_title,
    clean_amazon23_title,
    clean_html,
)

DAY = 86400


def ix(user: str, item: str, t: int) -> Interaction:
    return Interaction(user, item, t, 5.0)


def options(**kw) -> ProtocolOptions:
    base = dict(dataset="T", user_k=0, item_k=0, st_year=0, ed_year=0, min_items=0)
    base.update(kw)
    return ProtocolOptions(**base)


# ---------------------------------------------------------------------------------- title filter

@pytest.mark.parametrize(
    "raw, expected",
    [
        (None, None),                                       # no title
        (["a list"], None),                                 # not a string
        ('<span id="x">Good title</span>', None),           # <span id rule, before cleaning
        ("&quot;Foo&quot; &amp; Bar", 'Foo" & Bar'),        # decode, then strip quotes at both ends only
        ('  "AB"  ', "AB"),                                 # strip spaces, then quotes
        ("A", None),                                        # must be longer than 1 character
        ('"A"', None),                                      # ... after cleaning
        ("Caf&eacute; &Oslash; tool", "Caf&eacute; &Oslash; tool"),  # other entities stay (upstream)
        ("\tTabbed", "\tTabbed"),                           # only spaces are stripped, not tabs
        (" ".join(["w"] * 20), " ".join(["w"] * 20)),       # 20 words: kept
        (" ".join(["w"] * 21), None),                       # 21 words: dropped
        ("&amp;quot;x&amp;quot;", "&quot;x&quot;"),         # one replacement pass only
    ],
)
def test_amazon18_title_filter(raw, expected):
    assert clean_amazon18_title(raw) == expected


def test_double_space_word_count_boundary():
    # "a" + 9 x "  b" = 1 + 9*2 = 19 fields (the empty strings count), + " c" = 20: kept.
    title = "a" + "  b" * 9 + " c"
    assert len(title.split(" ")) == 20
    assert clean_amazon18_title(title) == title
    assert clean_amazon18_title(title + " d") is None


def test_amazon23_title_and_text_cleaning():
    assert clean_amazon23_title("  <b>Big</b>   &amp; Bold\n") == "Big & Bold"
    assert clean_amazon23_title("   ") is None
    assert clean_amazon23_title(None) is None
    long = " ".join(["w"] * 40)
    assert clean_amazon23_title(long) == long  # no word limit in the 2023 rule
    assert clean_html("a&amp;amp;b") == "a&amp;b"
    assert clean_html("a&amp;amp;b", amazon18=True) == "a&b"


def test_amazon18_description_brand():
    assert amazon18_description(["<p>Heavy-duty</p> staples", "For  duty\n stapling"]) == \
        "['Heavy-duty staples', 'For duty\\n stapling']"
    assert amazon18_description(["it's"]) == '["it\'s"]'
    assert amazon18_description(None) == ""
    assert amazon18_description([]) == ""
    assert amazon18_brand("by\n    Scotch ") == "Scotch"
    assert amazon18_brand(None) == ""


@pytest.mark.parametrize(
    "name, phrase",
    [
        ("Industrial_and_Scientific", "industrial and scientific items"),
        ("Office_Products", "office products"),
        ("Toys_and_Games", "toys and games"),
        ("Sports_and_Outdoors", "sports and outdoors"),
        ("Books", "books"),
        ("All_Beauty", "all beauty items"),
        ("Video_Games", "video games"),
    ],
)
def test_category_phrase_is_derived(name, phrase):
    assert category_phrase(name) == phrase


# ---------------------------------------------------------------------------------- time window

def test_month_start_is_utc_midnight():
    assert month_start_utc(2018, 10) == 1538352000
    assert month_start_utc(1996, 10) == 844128000
    assert month_start_utc(2023, 12) == 1701388800


def test_window_does_not_depend_on_local_time_zone():
    if not hasattr(time, "tzset"):
        pytest.skip("no time.tzset on this platform")
    expected = make_window(2016, 10, 2018, 11)
    original = os.environ.get("TZ")
    try:
        for zone in ("America/Los_Angeles", "Asia/Shanghai"):
            os.environ["TZ"] = zone
            time.tzset()
            assert make_window(2016, 10, 2018, 11) == expected
    finally:
        if original is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = original
        time.tzset()


def test_window_bounds_are_inclusive():
    window = make_window(2018, 1, 2018, 2)
    start, end = window.start, window.end
    rows = [ix("u", "i", start - 1), ix("u", "i", start), ix("u", "i", end), ix("u", "i", end + 1)]
    kept, counts = filter_interactions(rows, {"i": {}}, window, 0, 0)
    assert [x.timestamp for x in kept] == [start, end]
    assert counts["removed_outside_window"] == 2


def test_window_off_when_a_year_is_zero():
    assert make_window(0, 1, 2018, 1) is None
    assert make_window(2018, 1, 0, 1) is None
    with pytest.raises(InputError, match="starts after it ends"):
        make_window(2019, 1, 2018, 1)
    with pytest.raises(InputError, match="month"):
        make_window(2018, 13, 2019, 1)


# ---------------------------------------------------------------------------------- k-core

def test_kcore_separate_user_and_item_thresholds():
    # u1: a,b,c ; u2: a,b ; u3: a
    rows = [ix("u1", "a", 1), ix("u1", "b", 2), ix("u1", "c", 3), ix("u2", "a", 1), ix("u2", "b", 2), ix("u3", "a", 1)]
    # user_k=2, item_k=1: u3 goes (1 review); items all stay.
    kept, _ = kcore(rows, 2, 1)
    assert {(x.user, x.item) for x in kept} == {("u1", "a"), ("u1", "b"), ("u1", "c"), ("u2", "a"), ("u2", "b")}
    # user_k=1, item_k=2: c goes (1 review); users all stay.
    kept, _ = kcore(rows, 1, 2)
    assert {(x.user, x.item) for x in kept} == {("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "b"), ("u3", "a")}
    # user_k=2, item_k=2: pass 1 removes u3 and c; then a has 2, b has 2, u1 has 2, u2 has 2: stable.
    kept, passes = kcore(rows, 2, 2)
    assert {(x.user, x.item) for x in kept} == {("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "b")}
    assert passes == 2


def test_kcore_cascades_until_stable_and_counts_repeats():
    # u1 reviews x twice (repeats count); u2 reviews x and y; y has one review.
    rows = [ix("u1", "x", 1), ix("u1", "x", 2), ix("u2", "x", 3), ix("u2", "y", 4)]
    kept, passes = kcore(rows, 2, 2)
    # pass 1: y (1) removed; pass 2: u2 has 1 left -> removed; pass 3: x has 2 (u1's repeats), u1 has 2: stable.
    assert [(x.user, x.item) for x in kept] == [("u1", "x"), ("u1", "x")]
    assert passes == 3


def test_items_without_title_are_removed_before_kcore():
    rows = [ix("u1", "a", 1), ix("u1", "untitled", 2), ix("u2", "a", 3)]
    kept, counts = filter_interactions(rows, {"a": {}}, None, 2, 0)
    assert kept == []  # u1 has only 1 titled review left
    assert counts["removed_item_without_title"] == 1


# ---------------------------------------------------------------------------------- remapping

def test_users_by_first_appearance_items_by_user_walk_in_time_order():
    rows = [
        ix("B", "y", 20),
        ix("A", "z", 5),
        ix("B", "x", 10),
        ix("A", "y", 30),
        ix("A", "x", 1),
    ]
    user2id, item2id, timelines = remap_ids(rows)
    assert user2id == {"B": 0, "A": 1}
    # B in time order: x(10), y(20) -> x=0, y=1; A in time order: x(1), z(5), y(30) -> z=2.
    assert item2id == {"x": 0, "y": 1, "z": 2}
    assert [x.item for x in timelines[1]] == ["x", "z", "y"]


def test_same_time_ties_keep_file_order():
    rows = [ix("u", "c", 7), ix("u", "a", 7), ix("u", "b", 3)]
    _, item2id, timelines = remap_ids(rows)
    assert [x.item for x in timelines[0]] == ["b", "c", "a"]
    assert item2id == {"b": 0, "c": 1, "a": 2}


def test_first_appearance_counts_only_kept_reviews():
    # u_late's first line is outside the window, so u_early (first kept line) becomes user 0.
    window = make_window(2018, 1, 2018, 6)
    t = window.start + DAY
    rows = [ix("u_late", "i", window.start - DAY), ix("u_early", "i", t), ix("u_late", "j", t), ix("u_early", "j", t)]
    kept, _ = filter_interactions(rows, {"i": {}, "j": {}}, window, 0, 0)
    user2id, _, _ = remap_ids(kept)
    assert user2id == {"u_early": 0, "u_late": 1}


# ---------------------------------------------------------------------------------- windows & split

def test_sliding_windows_cap_history_at_ten():
    rows = [ix("u", f"i{k:02d}", k) for k in range(13)]
    _, item2id, timelines = remap_ids(rows)
    samples = sliding_samples(timelines, item2id)
    assert len(samples) == 12  # n - 1
    assert samples[0] == Sample(0, (0,), 1, 1)
    assert samples[9].history == tuple(range(10)) and samples[9].target == 10
    assert samples[10].history == tuple(range(1, 11)) and samples[10].target == 11
    assert samples[11].history == tuple(range(2, 12)) and samples[11].target == 12
    assert max(len(s.history) for s in samples) == 10


def test_repeated_interactions_are_kept():
    rows = [ix("u", "a", 1), ix("u", "a", 2), ix("u", "b", 3)]
    _, item2id, timelines = remap_ids(rows)
    samples = sliding_samples(timelines, item2id)
    assert [(s.history, s.target) for s in samples] == [((0,), 0), ((0, 0), 1)]


@pytest.mark.parametrize("total, sizes", [(10, (8, 1, 1)), (7, (5, 1, 1)), (3, (2, 0, 1)), (1, (0, 0, 1)),
                                          (99057, (79245, 9906, 9906)), (45324, (36259, 4532, 4533))])
def test_split_sizes(total, sizes):
    train_end, valid_end = split_indices(total)
    assert (train_end, valid_end - train_end, total - valid_end) == sizes


def test_split_is_a_stable_sort_on_target_time():
    # Samples in upstream order (user id, then position); equal times keep that order.
    samples = [Sample(0, (9,), 1, 50), Sample(0, (1,), 2, 10), Sample(1, (3,), 4, 10), Sample(1, (4,), 5, 30),
               Sample(2, (6,), 7, 10), Sample(2, (7,), 8, 20), Sample(3, (1,), 1, 40), Sample(3, (1,), 2, 60),
               Sample(4, (2,), 3, 5), Sample(4, (3,), 4, 70)]
    train, valid, test = chronological_split(samples)
    order = [(s.user, s.target) for s in train + valid + test]
    assert order == [(4, 3), (0, 2), (1, 4), (2, 7), (2, 8), (1, 5), (3, 1), (0, 1), (3, 2), (4, 4)]
    assert (len(train), len(valid), len(test)) == (8, 1, 1)


# ---------------------------------------------------------------------------------- whole protocol

def _raw(rows, titled) -> RawData:
    return RawData(rows, {i: {"title": i} for i in titled}, "fixture")


def test_build_dataset_end_to_end_fixture():
    # Two users, day-granular; the title filter removes "bad"; the 2-core then removes u3.
    rows = [
        ix("u2", "p", 3 * DAY), ix("u1", "q", 2 * DAY), ix("u1", "p", 1 * DAY), ix("u2", "q", 1 * DAY),
        ix("u3", "p", 9 * DAY), ix("u3", "bad", 9 * DAY), ix("u1", "r", 4 * DAY), ix("u2", "r", 4 * DAY),
    ]
    ds = build_dataset(_raw(rows, ["p", "q", "r"]), options(user_k=2, item_k=2))
    assert ds.user2id == {"u2": 0, "u1": 1}
    assert ds.item2id == {"q": 0, "p": 1, "r": 2}  # u2 in time order: q(1), p(3), r(4)
    assert ds.sequences == {0: [(0, DAY, 5.0), (1, 3 * DAY, 5.0), (2, 4 * DAY, 5.0)],
                            1: [(1, DAY, 5.0), (0, 2 * DAY, 5.0), (2, 4 * DAY, 5.0)]}
    # samples: u2: (q)->p @3, (q,p)->r @4 ; u1: (p)->q @2, (p,q)->r @4 ; T=4 -> 3/0/1
    assert [(s.user, s.history, s.target) for s in ds.train] == [(1, (1,), 0), (0, (0,), 1), (0, (0, 1), 2)]
    assert ds.valid == []
    assert [(s.user, s.history, s.target) for s in ds.test] == [(1, (1, 0), 2)]
    assert ds.stats["samples"] == {"train": 3, "valid": 0, "test": 1, "total": 4}
    assert ds.stats["counts"]["removed_item_without_title"] == 1
    assert ds.stats["counts"]["removed_by_kcore"] == 1


def test_min_items_widens_the_start_year():
    y2017 = month_start_utc(2017, 3)
    y2015 = month_start_utc(2015, 3)
    rows = [ix("u1", "a", y2017), ix("u1", "b", y2017 + DAY), ix("u2", "c", y2015), ix("u2", "d", y2015 + DAY)]
    raw = _raw(rows, "abcd")
    narrow = build_dataset(raw, options(st_year=2017, st_month=1, ed_year=2018, ed_month=1))
    assert narrow.stats["items"] == 2
    wide = build_dataset(raw, options(st_year=2017, st_month=1, ed_year=2018, ed_month=1, min_items=4))
    assert wide.stats["items"] == 4
    assert wide.stats["filters"]["window"]["st_year"] == 2015
    assert wide.stats["filters"]["widened_from_st_year"] == 2017


def test_empty_result_and_empty_window_are_clear_errors():
    rows = [ix("u1", "a", 100 * DAY), ix("u1", "b", 101 * DAY)]
    with pytest.raises(InputError, match="no review falls in the time window"):
        build_dataset(_raw(rows, "ab"), options(st_year=2018, st_month=1, ed_year=2019, ed_month=1))
    with pytest.raises(InputError, match="nothing is left after filtering"):
        build_dataset(_raw(rows, "ab"), options(user_k=5))
    with pytest.raises(InputError, match="none of the reviewed items"):
        build_dataset(_raw(rows, "xy"), options())
    with pytest.raises(InputError, match="single interaction"):
        build_dataset(_raw([ix("u1", "a", 1), ix("u2", "b", 2)], "ab"), options())


def test_dedup_keeps_the_earliest_of_each_pair_in_file_order():
    rows = [ix("u", "a", 5), ix("u", "b", 3), ix("u", "a", 2), ix("v", "a", 9), ix("u", "a", 2), ix("u", "b", 3)]
    kept, counts = filter_interactions(rows, {"a": {}, "b": {}}, None, 0, 0, dedup=True)
    assert kept == [ix("u", "b", 3), ix("u", "a", 2), ix("v", "a", 9)]
    assert counts["removed_as_repeat"] == 3
    kept, counts = filter_interactions(rows, {"a": {}, "b": {}}, None, 0, 0)
    assert kept == rows and counts["removed_as_repeat"] == 0
