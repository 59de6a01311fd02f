"""A seeded generator of Amazon 2018-format raw files with a learnable sequential structure.

Items form ``n_clusters`` topical clusters; the items of a cluster form a chain (a product
line).  Each user prefers one cluster and walks its chain: the next item is the chain successor
of the current one with probability ``p_follow``; otherwise it is a random item of the same
cluster (``p_same_cluster``) or of any cluster.  A recommender that learns "successor of the
last item" therefore beats popularity by far, and titles/descriptions carry the cluster's
vocabulary so text embeddings (and SIDs) group items of one cluster.

Timestamps are day-granular (midnight UTC) like Amazon 2018, with same-day ties.  A small
``noise`` fraction of items gets metadata that the title filter must reject (no title, a
``<span id`` title, a title over 20 words) and HTML entities/tags appear in titles and
descriptions, so the smoke run exercises every cleaning rule.  Reviews are written grouped by
item, as in the Amazon files.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from minionerec.errors import InputError
from minionerec.io import atomic_write_bytes

logger = logging.getLogger(__name__)

DAY = 86400

_CLUSTERS = [
    ("Lab Glassware", ["beaker", "flask", "borosilicate", "graduated", "pipette", "cylinder"]),
    ("Soldering Tools", ["solder", "iron", "flux", "tip", "station", "desoldering"]),
    ("Safety Gear", ["gloves", "goggles", "respirator", "nitrile", "helmet", "vest"]),
    ("Fasteners", ["screw", "bolt", "washer", "stainless", "hex", "anchor"]),
    ("Adhesive Tapes", ["tape", "adhesive", "vinyl", "masking", "duct", "roll"]),
    ("Measuring Instruments", ["caliper", "multimeter", "gauge", "digital", "thermometer", "scale"]),
    ("Cleaning Supplies", ["wipes", "cleaner", "brush", "microfiber", "spray", "degreaser"]),
    ("Electrical Parts", ["relay", "capacitor", "fuse", "terminal", "connector", "switch"]),
    ("Storage Bins", ["bin", "organizer", "drawer", "container", "stackable", "rack"]),
    ("Pumps and Valves", ["pump", "valve", "hose", "fitting", "pressure", "coupling"]),
]
_ADJECTIVES = ["Heavy-Duty", "Compact", "Professional", "Premium", "Industrial", "Lightweight", "Precision",
               "Reusable", "Universal", "Durable"]
_BRANDS = ["Acme", "Norwell", "Kestrel", "Tamarind", "Vantage", "Orbis", "Halcyon", "Brightline"]


@dataclass
class SyntheticConfig:
    """The ``synthetic:`` section: sizes and structure of the generated raw data."""

    section: ClassVar[str] = "synthetic"

    output_dir: str = field(default="${common.workdir}/raw", metadata={"help": "Folder for the raw files."})
    dataset: str = field(default="Synthetic", metadata={"help": "Name: writes <dataset>.json and meta_<dataset>.json."})
    seed: int = field(default=42, metadata={"help": "Random seed; the same seed gives byte-identical files."})
    n_users: int = field(default=300, metadata={"help": "Number of users."})
    n_items: int = field(default=120, metadata={"help": "Number of items (before the title-filter noise)."})
    n_clusters: int = field(default=6, metadata={"help": "Topical clusters (item chains), at most 10."})
    min_length: int = field(default=5, metadata={"help": "Shortest user sequence."})
    max_length: int = field(default=20, metadata={"help": "Longest user sequence."})
    p_follow: float = field(default=0.8, metadata={"help": "Probability that the next item is the chain successor."})
    p_same_cluster: float = field(default=0.5, metadata={"help": "Otherwise: probability of staying in the cluster."})
    start_date: str = field(default="2016-01-01", metadata={"help": "First possible review day (UTC, YYYY-MM-DD)."})
    days: int = field(default=700, metadata={"help": "Days over which users start their sequences."})
    max_gap_days: int = field(
        default=10, metadata={"help": "Largest gap between two reviews of a user (0 = same day)."}
    )
    noise: float = field(default=0.05, metadata={"help": "Fraction of items whose metadata the title filter rejects."})
    gzip: bool = field(default=False, metadata={"help": "Write .json.gz files instead of plain .json."})


def _check(cfg: SyntheticConfig) -> None:
    problems = []
    if cfg.n_users < 1 or cfg.n_items < 2:
        problems.append("n_users >= 1 and n_items >= 2")
    if not 1 <= cfg.n_clusters <= min(len(_CLUSTERS), cfg.n_items):
        problems.append(f"1 <= n_clusters <= {min(len(_CLUSTERS), cfg.n_items)}")
    if not 2 <= cfg.min_length <= cfg.max_length:
        problems.append("2 <= min_length <= max_length")
    if not (0 <= cfg.p_follow <= 1 and 0 <= cfg.p_same_cluster <= 1 and 0 <= cfg.noise < 1):
        problems.append("p_follow, p_same_cluster in [0, 1] and noise in [0, 1)")
    if cfg.days < 1 or cfg.max_gap_days < 0:
        problems.append("days >= 1 and max_gap_days >= 0")
    if problems:
        raise InputError(f"synthetic: invalid settings, need {'; '.join(problems)}")


def _start_timestamp(text: str) -> int:
    try:
        day = dt.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise InputError(f"synthetic.start_date must be YYYY-MM-DD, got {text!r}") from None
    return int(day.timestamp())


def _code(rng: random.Random, prefix: str, length: int) -> str:
    return prefix + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(length))


def _unique_codes(rng: random.Random, prefix: str, length: int, count: int) -> list[str]:
    codes: list[str] = []
    seen: set[str] = set()
    while len(codes) < count:
        code = _code(rng, prefix, length)
        if code not in seen:
            seen.add(code)
            codes.append(code)
    return codes


def _meta_record(rng: random.Random, asin: str, cluster: int, position: int, noisy: bool) -> dict[str, Any]:
    name, words = _CLUSTERS[cluster]
    # Brands mostly follow the cluster, so titles (and their embeddings) group by cluster.
    brand = _BRANDS[cluster % len(_BRANDS)] if rng.random() < 0.8 else rng.choice(_BRANDS)
    title = f"{brand} {name} {words[position % len(words)].title()} {words[(position + 2) % len(words)].title()}, " \
            f"{rng.choice(_ADJECTIVES)}, Model {cluster}{position:03d}"
    if rng.random() < 0.1:
        title = f"{title} &amp; {words[(position + 1) % len(words)].title()} Kit"
    if rng.random() < 0.05:
        title = f'"{title}"'
    record: dict[str, Any] = {
        "asin": asin,
        "title": title,
        "description": [
            f"<b>{name}</b> for everyday {words[0]} work: {words[1]}, {words[2]} and {words[3]}.",
            f"Part {position} of the {brand} {name.lower()} line &amp; compatible with model {position + 1}.",
        ],
        "brand": ("by\n    " if rng.random() < 0.2 else "") + brand,
        "category": ["Industrial &amp; Scientific", name],
        "price": f"${rng.randint(3, 200)}.{rng.randint(0, 99):02d}",
    }
    if noisy:
        kind = rng.randrange(3)
        if kind == 0:
            del record["title"]
        elif kind == 1:
            record["title"] = f'<span id="parentalAdvisory">{title}</span>'
        else:
            record["title"] = " ".join([title] + words * 4)
    return record


def _walk(rng: random.Random, cfg: SyntheticConfig, chains: list[list[int]], cluster_of: list[int],
          position_of: list[int]) -> list[int]:
    cluster = rng.randrange(len(chains))
    current = rng.choice(chains[cluster])
    length = rng.randint(cfg.min_length, cfg.max_length)
    sequence = [current]
    while len(sequence) < length:
        chain = chains[cluster_of[current]]
        if rng.random() < cfg.p_follow:
            current = chain[(position_of[current] + 1) % len(chain)]
        elif rng.random() < cfg.p_same_cluster:
            current = rng.choice(chain)
        else:
            current = rng.randrange(len(cluster_of))
        sequence.append(current)
    return sequence


def generate(cfg: SyntheticConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(reviews, meta)`` records, deterministic in ``cfg``."""
    _check(cfg)
    rng = random.Random(cfg.seed)
    start = _start_timestamp(cfg.start_date)
    asins = _unique_codes(rng, "B", 9, cfg.n_items)
    users = _unique_codes(rng, "A", 13, cfg.n_users)
    cluster_of = [i % cfg.n_clusters for i in range(cfg.n_items)]
    chains: list[list[int]] = [[] for _ in range(cfg.n_clusters)]
    position_of = [0] * cfg.n_items
    for item in range(cfg.n_items):
        position_of[item] = len(chains[cluster_of[item]])
        chains[cluster_of[item]].append(item)
    noisy = set(rng.sample(range(cfg.n_items), int(cfg.noise * cfg.n_items)))
    meta = [_meta_record(rng, asins[i], cluster_of[i], position_of[i], i in noisy) for i in range(cfg.n_items)]

    reviews = []
    for user in users:
        day = start + rng.randrange(cfg.days) * DAY
        for step, item in enumerate(_walk(rng, cfg, chains, cluster_of, position_of)):
            if step:
                day += rng.randint(0, cfg.max_gap_days) * DAY
            when = dt.datetime.fromtimestamp(day, tz=dt.timezone.utc)
            rating = float(rng.choice([3, 4, 4, 5, 5, 5]))
            reviews.append({
                "overall": rating,
                "verified": True,
                "reviewTime": f"{when.month:02d} {when.day}, {when.year}",
                "reviewerID": user,
                "asin": asins[item],
                "reviewText": f"Works as described ({rating:.0f} stars).",
                "summary": "Good" if rating >= 4 else "OK",
                "unixReviewTime": day,
            })
    order = {asin: index for index, asin in enumerate(asins)}
    reviews.sort(key=lambda r: (order[r["asin"]], r["unixReviewTime"]))  # Amazon files are grouped by item
    return reviews, meta


def _jsonl_bytes(records: list[dict[str, Any]], compress: bool) -> bytes:
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
    return gzip.compress(data, mtime=0) if compress else data


def write_synthetic(cfg: SyntheticConfig) -> tuple[Path, Path]:
    """Generate and write the reviews and meta files (atomically); returns their paths."""
    from minionerec.config import save_resolved_config

    reviews, meta = generate(cfg)
    folder = Path(cfg.output_dir)
    suffix = ".json.gz" if cfg.gzip else ".json"
    reviews_path = folder / f"{cfg.dataset}{suffix}"
    meta_path = folder / f"meta_{cfg.dataset}{suffix}"
    atomic_write_bytes(reviews_path, _jsonl_bytes(reviews, cfg.gzip))
    atomic_write_bytes(meta_path, _jsonl_bytes(meta, cfg.gzip))
    save_resolved_config(cfg, folder)
    logger.info("synthetic: %d reviews by %d users of %d items -> %s, %s",
                len(reviews), cfg.n_users, cfg.n_items, reviews_path, meta_path)
    return reviews_path, meta_path
