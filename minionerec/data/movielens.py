"""MovieLens (GroupLens ml-100k / ml-1m, RecBole atomic files): the columnar reader, its ``data:``
config and the stage run.

Item text is the title with the release year, the genres as description and categories.  The
ratings files are read as one column of lines and split by polars; only the few values polars
cannot parse are re-read with Python's ``int``/``float`` (the rules of record), so an odd value is
accepted or refused exactly as a line-by-line reader would, and an error names its line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from minionerec.errors import InputError, where
from minionerec.io import open_text, require_file
from minionerec.data.build import check_dataset_name, check_source, process
from minionerec.data.jsonl import as_float
from minionerec.data.protocol import CODED_SCHEMA, ProtocolOptions, RawData

ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
MOVIELENS_HELP = "run `bash data/fetch_movielens.sh DEST` (ml-100k from the recbole wheel) first"
#: What Python's ``str.strip()`` removes (whitespace as ``str.isspace`` defines it).
PY_WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
                 "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")


@dataclass
class MovieLensConfig(ProtocolOptions):
    """The ``data:`` section for MovieLens (defaults reproduce the reference protocol on ml-100k:
    no k-core, no time window, 99,057 samples = 79,245 / 9,906 / 9,906)."""

    input_path: str = field(default="${common.workdir}/raw/${common.dataset}",
                            metadata={"help": "Folder with <dataset>.inter/.item (RecBole), u.data/u.item or "
                                      "ratings.dat/movies.dat (GroupLens)."})
    user_k: int = field(default=0, metadata={"help": "k-core: users with fewer interactions are removed (0 = off)."})
    item_k: int = field(default=0, metadata={"help": "k-core: items with fewer interactions are removed (0 = off)."})
    st_year: int = field(default=0, metadata={"help": "Window start year (0 = no time window)."})
    st_month: int = field(default=1, metadata={"help": "Window start month; start = 00:00 UTC on its 1st day."})
    ed_year: int = field(default=0, metadata={"help": "Window end year (0 = no time window)."})
    ed_month: int = field(default=1, metadata={"help": "Window end month; end = 00:00 UTC on its 1st day (inclusive)."})
    source: str = field(default="movielens", metadata={"help": "Raw format of this config's data (movielens)."})


def run_movielens(cfg: MovieLensConfig) -> Path:
    """The stage: read the MovieLens folder, run the protocol, write every output."""
    check_source(cfg.source, "movielens")
    check_dataset_name(cfg)
    return process(read_movielens(cfg.input_path, cfg.dataset), cfg)


def movielens_item(title: str, year: str, genres: Sequence[str]) -> dict[str, Any]:
    """The item.json record of a movie: title (+ year), genres as description and categories."""
    title = " ".join(title.split())
    year = year.strip()
    if year and year.isdigit() and not title.endswith(f"({year})"):
        title = f"{title} ({year})"
    genres = [g for g in genres if g and g.lower() != "unknown"]
    return {
        "title": title,
        "description": f"Genres: {', '.join(genres)}." if genres else "",
        "brand": "",
        "categories": ", ".join(genres),
    }


def read_movielens(input_path: str | Path, dataset: str) -> RawData:
    """Read MovieLens from ``input_path``: RecBole ``<D>.inter``/``<D>.item``, GroupLens ml-100k
    ``u.data``/``u.item`` or GroupLens ml-1m ``ratings.dat``/``movies.dat``."""
    folder = Path(input_path)
    if not folder.is_dir():
        raise InputError(f"MovieLens folder {folder} does not exist; {MOVIELENS_HELP}")
    if (folder / f"{dataset}.inter").is_file():
        return read_recbole(folder / f"{dataset}.inter",
                            require_file(folder / f"{dataset}.item", "RecBole item file", MOVIELENS_HELP))
    if (folder / "u.data").is_file():
        return read_grouplens(folder / "u.data", require_file(folder / "u.item", "ml-100k item file (u.item)"),
                              "\t", "|")
    if (folder / "ratings.dat").is_file():
        return read_grouplens(folder / "ratings.dat",
                              require_file(folder / "movies.dat", "ml-1m item file (movies.dat)"), "::", "::")
    raise InputError(
        f"no MovieLens files in {folder}: expected {dataset}.inter + {dataset}.item (RecBole), "
        f"u.data + u.item (GroupLens ml-100k) or ratings.dat + movies.dat (GroupLens ml-1m); {MOVIELENS_HELP}"
    )


# --------------------------------------------------------------------------------------------
# Lines as a column
# --------------------------------------------------------------------------------------------

def text_lines(text: str, first_lineno: int) -> pl.DataFrame:
    """``lineno, line`` of every non-blank line of ``text`` (line breaks as text-mode files read them:
    ``\\n``, ``\\r\\n`` and ``\\r``)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = pl.DataFrame({"line": [text]}).select(pl.col("line").str.split("\n").explode())
    lines = lines.with_row_index("lineno", offset=first_lineno)
    return lines.filter(pl.col("line").str.strip_chars(PY_WHITESPACE) != "")


def parsed(values: pl.Series, dtype: pl.DataType, parse: Callable[[str], Any]) -> tuple[pl.Series, int | None]:
    """``values`` cast to ``dtype`` and the position of the first value that cannot be (None: all can).

    polars casts in bulk; a value it cannot cast goes to Python's ``parse`` (the rule of record:
    ``int``, ``float``, ...), so an odd value is accepted or refused as a line-by-line reader would.
    A missing value (null) or a non-finite float cannot be cast.
    """
    cast = values.cast(dtype, strict=False)
    odd = cast.is_null().arg_true()
    bad: list[int] = []
    if odd.len():
        fixed = []
        for position, value in zip(odd.to_list(), values.gather(odd).to_list()):
            try:
                fixed.append(None if value is None else parse(value))
            except (ValueError, OverflowError):
                fixed.append(None)
            if fixed[-1] is None:
                bad.append(position)
        cast = cast.scatter(odd, pl.Series(fixed, dtype=dtype))
    return cast, min(bad, default=None)


def _recbole_time(value: str) -> int:
    return int(float(value))


def _interactions(
    lines: pl.DataFrame, sep: str, fields: dict[str, int | None], parsers: dict[str, Callable[[str], Any]],
    path: Path, error: str,
) -> pl.DataFrame:
    """The coded interactions of the non-blank ``lines``.

    ``fields`` gives the field index of user, item, timestamp and rating (rating None: 0.0);
    ``parsers`` the Python rule of record of timestamp and rating.  The first line with a missing
    or unparsable field (in file order) is an InputError naming it.
    """
    parts = lines.select(pl.col("line").str.split(sep))["line"]
    get = {name: parts.list.get(index, null_on_oob=True) for name, index in fields.items() if index is not None}
    first_bad = [int(p) for p in (get["user"].is_null() | get["item"].is_null()).arg_true().head(1)]
    if parsers["timestamp"] is _recbole_time:  # int(float(value)): the float must be finite
        seconds, bad = parsed(get["timestamp"], pl.Float64, float)
        not_finite = (seconds.is_nan() | seconds.is_infinite()).arg_true().head(1).to_list()
        first_bad += [p for p in (bad, *not_finite) if p is not None]
        timestamp = seconds.cast(pl.Int64, strict=False)
    else:
        timestamp, bad = parsed(get["timestamp"], pl.Int64, parsers["timestamp"])
        first_bad += [bad] if bad is not None else []
    if "rating" in get:
        rating, bad = parsed(get["rating"], pl.Float64, parsers["rating"])
        first_bad += [bad] if bad is not None else []
    else:
        rating = pl.Series("rating", [0.0] * lines.height, dtype=pl.Float64)
    if first_bad:
        raise InputError(f"{where(path, int(lines['lineno'][min(first_bad)]))}: {error}")
    if parsers.get("rating") is as_float:  # lenient: a non-finite rating is 0.0
        rating = pl.select(pl.when(rating.is_finite()).then(rating).otherwise(0.0)).to_series()
    frame = pl.DataFrame({"user": get["user"], "item": get["item"], "timestamp": timestamp, "rating": rating})
    return frame.cast(CODED_SCHEMA)


# --------------------------------------------------------------------------------------------
# RecBole atomic files
# --------------------------------------------------------------------------------------------

def _recbole_header(path: Path) -> tuple[list[str], str]:
    """Header names (without ``:type``) and the rest of the file."""
    with open_text(path) as f:
        header = [h.split(":")[0] for h in f.readline().rstrip("\n").split("\t")]
        return header, f.read()


def _column(header: Sequence[str], path: Path, *candidates: str, required: bool = True) -> int | None:
    for name in candidates:
        if name in header:
            return header.index(name)
    if required:
        raise InputError(f"{where(path, 1)}: header has no {' or '.join(candidates)} column (header: {header})")
    return None


def read_recbole(inter_path: Path, item_path: Path) -> RawData:
    """RecBole ``<D>.inter`` (``user_id, item_id, timestamp[, rating]``) and ``<D>.item`` files."""
    items = _recbole_items(item_path)
    header, body = _recbole_header(inter_path)
    fields = {
        "user": _column(header, inter_path, "user_id"),
        "item": _column(header, inter_path, "item_id"),
        "timestamp": _column(header, inter_path, "timestamp"),
        "rating": _column(header, inter_path, "rating", required=False),
    }
    interactions = _interactions(text_lines(body, 2), "\t", fields, {"timestamp": _recbole_time, "rating": as_float},
                                 inter_path, "expected user_id, item_id and a numeric timestamp")
    return RawData(interactions, items, f"{inter_path} + {item_path}", {"reviews_read": interactions.height,
                                                                      "items_with_title": len(items)})


def _recbole_items(item_path: Path) -> dict[str, dict[str, Any]]:
    """One record per movie (a loop per movie, not per interaction)."""
    header, body = _recbole_header(item_path)
    id_col = _column(header, item_path, "item_id")
    title_col = _column(header, item_path, "movie_title", "title")
    year_col = _column(header, item_path, "release_year", "year", required=False)
    genre_col = _column(header, item_path, "class", "genre", "genres", required=False)
    items: dict[str, dict[str, Any]] = {}
    for lineno, line in text_lines(body, 2).iter_rows():
        parts = line.split("\t")
        parts = parts + [""] * (len(header) - len(parts))
        title = parts[title_col].strip()
        if not parts[id_col] or not title:
            raise InputError(f"{where(item_path, lineno)}: a movie needs an item_id and a title")
        year = parts[year_col] if year_col is not None else ""
        genres = parts[genre_col].split() if genre_col is not None else []
        items[parts[id_col]] = movielens_item(title, year, genres)
    return items


# --------------------------------------------------------------------------------------------
# GroupLens files
# --------------------------------------------------------------------------------------------

def read_grouplens(ratings_path: Path, movies_path: Path, rating_sep: str, movie_sep: str) -> RawData:
    """GroupLens ml-100k (``u.data`` + ``u.item``) or ml-1m (``ratings.dat`` + ``movies.dat``)."""
    items = _grouplens_movies(movies_path, movie_sep)
    lines = text_lines(ratings_path.read_text(encoding="latin-1"), 1)
    lines = lines.with_columns(pl.col("line").str.strip_chars(PY_WHITESPACE))
    interactions = _interactions(
        lines, rating_sep, {"user": 0, "item": 1, "timestamp": 3, "rating": 2}, {"timestamp": int, "rating": float},
        ratings_path, f"expected 'user{rating_sep}item{rating_sep}rating{rating_sep}timestamp'",
    )
    return RawData(interactions, items, f"{ratings_path} + {movies_path}", {"reviews_read": interactions.height,
                                                                          "items_with_title": len(items)})


def _grouplens_movies(movies_path: Path, movie_sep: str) -> dict[str, dict[str, Any]]:
    """One record per movie (a loop per movie, not per interaction)."""
    items: dict[str, dict[str, Any]] = {}
    for lineno, line in text_lines(movies_path.read_text(encoding="latin-1"), 1).iter_rows():
        parts = line.split(movie_sep)
        if len(parts) < 3:
            raise InputError(f"{where(movies_path, lineno)}: expected 'id{movie_sep}title{movie_sep}...'")
        if movie_sep == "|":  # ml-100k: id|title|date|video date|url|19 genre flags
            flags = parts[5:5 + len(ML100K_GENRES)]
            genres = [g for g, flag in zip(ML100K_GENRES, flags) if flag == "1"]
            year = parts[2][-4:] if parts[2][-4:].isdigit() else ""
        else:  # ml-1m: id::Title (Year)::Genre|Genre
            genres, year = parts[2].split("|"), ""
        items[parts[0]] = movielens_item(parts[1], year, genres)
    return items
