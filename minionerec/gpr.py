"""GPR-inspired variants: heterogeneous U/E/I/O tokens, VAFT value weights, HEPO level-wise advantages.

One home for everything the ``*_gpr`` scripts share (reference ``gpr-and-amazon23.md`` §2, §5, §6).

Features (from training-period signals only; every rule is deterministic, ``random`` contexts
are drawn from an RNG seeded with ``gpr.seed``)
-------------------------------------------------------------------------------------------
*Training-period interactions* of a user are the interactions the training split shows: its
first ``k + 1`` interactions when ``k`` of its samples are train samples.  (The split is a
stable sort by target time, so a user's train targets are always its positions ``1..k``.)

- **U** (one per user): mean rating of the user's training-period interactions;
  ``> user_high`` -> ``[USER_HIGH_RATING]``, ``> user_mid`` -> ``[USER_MID_RATING]``, else
  ``[USER_LOW_RATING]``; a user without training-period interactions gets ``[USER_UNKNOWN]``.
- **E** (one per sample, the context of the request at the target's time): ``gap`` (default)
  buckets the time since the user's previous interaction (same day / within a week / within 30
  days / longer); ``weekday`` is weekday vs weekend (UTC); ``random`` is upstream's simulated
  noise (browse / search / homepage), drawn from a seeded RNG, kept as a control.
- **I/O item type**: ``price`` (default) marks an item ``I`` when its price is known and at
  least the ``item_type_quantile`` quantile of the known prices of the training-period items,
  else ``O``; ``popularity`` marks it ``I`` when its training-period interaction count reaches
  that quantile of the training-period items' counts.
- **Item value** (VAFT): ``v_raw = ln(1 + price) + ln(1 + n_train)`` (unknown price counts as 0),
  min-max normalised with the minimum and maximum over the training-period items and clipped
  to ``[0, 1]`` (items seen only later get their clipped value).

Side files (beside the data stage's outputs; the plain ``.inter`` files are untouched):
``<D>.gpr.users.json`` (``{user: U token}``), ``<D>.gpr.items.json`` (``{item: {type, value,
price, train_count}}``), ``<D>.{train,valid,test}.gpr.tsv`` (``user, target, E token`` aligned
line by line with the ``.inter`` files) and ``<D>.gpr.json`` (rules, thresholds, counts).

Prompt (``convert_dataset_gpr.py`` stores the tokens as extra CSV columns; SFT, RL and
evaluation build the prompt with :func:`gpr_next_item_prompt`)::

    {U} {E} The user has interacted with items [I_TOKEN]<a_1><b_2><c_3>, [O_TOKEN]<a_4>... in
    chronological order. Can you predict the next possible item that the user may expect?

With ``target_type_prefix`` the response is ``{type token}{SID}\\n``; constrained decoding then
uses :func:`type_prefixed_trie` (every catalogue SID behind its item's type token).

VAFT: :func:`vaft_weights` turns the targets' values into per-sample weights
``(floor + v) / mean(floor + v)`` (mean exactly 1 over the training next-item samples; other
tasks weigh 1); ``sft.response_loss`` multiplies each response token's cross-entropy by its
sample's weight before the usual token mean.

HEPO: :func:`level_rewards` (prefix form of §6.4: ``alpha_l * 1[first l levels right]`` for the
levels before the candidate's last, the terminal reward of the configured reward functions at the
last level), :func:`level_returns` (``R_l = sum_{m>=l} gamma^(m-l) r_m``),
:func:`level_advantages` (z-score within each group, per level) and
:func:`token_level_advantages` (the level-l advantage, times ``c_l``, on the level-l SID token;
a type token before the SID gets level 1's, ``\\n``/EOS the last level's).
"""

from __future__ import annotations

import csv
import datetime as dt
import io as _io
import json
import logging
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from minionerec.errors import InputError, where
from minionerec.io import CSV_COLUMNS, SplitRow, atomic_write_text, read_split_csv, require_file, write_json
from minionerec.sid import try_parse_sid

if TYPE_CHECKING:  # torch is imported where HEPO needs it: the data scripts stay light
    import torch

logger = logging.getLogger(__name__)

USER_TOKENS = ("[USER_HIGH_RATING]", "[USER_MID_RATING]", "[USER_LOW_RATING]", "[USER_UNKNOWN]")
USER_UNKNOWN = "[USER_UNKNOWN]"
CONTEXT_TOKENS = {
    "gap": ("[CTX_GAP_DAY]", "[CTX_GAP_WEEK]", "[CTX_GAP_MONTH]", "[CTX_GAP_LONG]"),
    "weekday": ("[CTX_WEEKDAY]", "[CTX_WEEKEND]"),
    "random": ("[CTX_BROWSE]", "[CTX_SEARCH]", "[CTX_HOMEPAGE]"),
}
ITEM_TYPE_TOKENS = {"I": "[I_TOKEN]", "O": "[O_TOKEN]"}
USER_RULES = ("rating",)
ITEM_TYPE_RULES = ("price", "popularity")
GPR_COLUMNS = ("user_token", "context_token", "history_item_type", "item_type")
DAY = 86400


def gpr_vocabulary() -> list[str]:
    """Every heterogeneous token, in a fixed order: what the tokenizer gets (as special tokens)."""
    tokens = list(USER_TOKENS)
    for rule in CONTEXT_TOKENS.values():
        tokens += rule
    return tokens + list(ITEM_TYPE_TOKENS.values())


_KNOWN_TOKENS = frozenset(gpr_vocabulary())
_CONTEXT_SET = frozenset(t for rule in CONTEXT_TOKENS.values() for t in rule)


@dataclass
class GPRConfig:
    """The ``gpr:`` section, read by every ``*_gpr`` script beside its own stage section."""

    section: ClassVar[str] = "gpr"

    dataset: str = field(default="", metadata={"help": "Dataset name (from common)."})
    workdir: str = field(default="runs/default", metadata={"help": "Experiment root (from common)."})
    seed: int = field(default=42, metadata={"help": "Seed of the random context rule (the other rules need none)."})
    data_dir: str = field(default="${common.workdir}/data/${common.dataset}",
                          metadata={"help": "Folder of the data stage's outputs and the GPR side files."})
    user_rule: str = field(default="rating", metadata={"help": "U token rule: rating (mean training-period rating bucket)."})
    user_high: float = field(default=4.5, metadata={"help": "Mean rating above this -> [USER_HIGH_RATING]."})
    user_mid: float = field(default=3.5, metadata={"help": "Mean rating above this -> [USER_MID_RATING] (else LOW)."})
    context_rule: str = field(default="gap", metadata={"help": "E token rule: gap, weekday or random (seeded noise, a control)."})
    item_type_rule: str = field(default="price", metadata={"help": "I/O rule: price or popularity (>= the quantile below -> I)."})
    item_type_quantile: float = field(default=0.5, metadata={"help": "Quantile (over training-period items) that makes an item I."})
    use_tokens: bool = field(default=True, metadata={"help": "Inject U/E and the history items' type tokens into the next-item prompt."})
    target_type_prefix: bool = field(default=False, metadata={"help": "The response starts with the target's type token (decoding uses a type-prefixed trie)."})
    vaft: bool = field(default=False, metadata={"help": "SFT: weight next-item samples by their target's value (mean 1)."})
    vaft_floor: float = field(default=0.5, metadata={"help": "VAFT weight before normalisation is floor + value (value in [0, 1])."})
    hepo: bool = field(default=False, metadata={"help": "RL: level-wise rewards and advantages over the SID levels (off = rl.py)."})
    hepo_alphas: list[float] = field(default_factory=lambda: [0.1, 0.1, 0.1],
                                     metadata={"help": "Process reward per level before the last (prefix right); the last level gets the terminal reward."})
    hepo_gamma: float = field(default=1.0, metadata={"help": "Discount over levels of the level returns."})
    hepo_coefs: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0, 1.0],
                                    metadata={"help": "c_l: scale of the level-l advantage (levels beyond the list use its last value)."})

    def check(self) -> None:
        if self.user_rule not in USER_RULES:
            raise InputError(f"gpr.user_rule must be one of {', '.join(USER_RULES)}, got {self.user_rule!r}")
        if self.context_rule not in CONTEXT_TOKENS:
            raise InputError(f"gpr.context_rule must be one of {', '.join(CONTEXT_TOKENS)}, got {self.context_rule!r}")
        if self.item_type_rule not in ITEM_TYPE_RULES:
            raise InputError(f"gpr.item_type_rule must be one of {', '.join(ITEM_TYPE_RULES)}, got {self.item_type_rule!r}")
        if not 0.0 <= self.item_type_quantile <= 1.0:
            raise InputError(f"gpr.item_type_quantile must be in [0, 1], got {self.item_type_quantile}")
        if not (math.isfinite(self.vaft_floor) and self.vaft_floor >= 0):
            raise InputError(f"gpr.vaft_floor must be a finite number >= 0, got {self.vaft_floor}")
        for name in ("hepo_alphas", "hepo_coefs"):
            values = getattr(self, name)
            if not values or any(not math.isfinite(v) for v in values):
                raise InputError(f"gpr.{name} must be a non-empty list of finite numbers, got {values}")
        if not 0.0 <= self.hepo_gamma <= 1.0:
            raise InputError(f"gpr.hepo_gamma must be in [0, 1], got {self.hepo_gamma}")


# --------------------------------------------------------------------------------------------
# Command line: a stage section plus the gpr section
# --------------------------------------------------------------------------------------------

def load_gpr_config(config_path: str | Path | None, overrides: Mapping[str, Any]) -> GPRConfig:
    """The ``gpr`` section, with only the ``--gpr.key`` / ``--common.key`` overrides applied."""
    from minionerec.config import load_config

    picked = {k: v for k, v in overrides.items() if k.startswith(("gpr.", "common."))}
    cfg = load_config(GPRConfig, config_path, picked)
    cfg.check()
    return cfg


def run_gpr_stage(schema: type, main: Any, argv: Sequence[str] | None = None) -> Any:
    """``main(stage cfg, gpr cfg)`` from ``[CONFIG.yaml] [--key v | --gpr.key v ...]``; InputError -> exit 2."""
    from minionerec.cli import run_cli
    from minionerec.config import load_config, parse_cli

    def build_and_run(args: list[str]) -> Any:
        config_path, overrides = parse_cli(args)
        return main(load_config(schema, config_path, overrides), load_gpr_config(config_path, overrides))

    return run_cli(build_and_run, None if argv is None else list(argv), schema, GPRConfig)


# --------------------------------------------------------------------------------------------
# Side-file paths
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SideFiles:
    users: Path
    items: Path
    summary: Path
    contexts: dict[str, Path]

    @classmethod
    def of(cls, data_dir: str | Path, dataset: str) -> SideFiles:
        prefix = Path(data_dir) / dataset
        return cls(Path(f"{prefix}.gpr.users.json"), Path(f"{prefix}.gpr.items.json"), Path(f"{prefix}.gpr.json"),
                   {split: Path(f"{prefix}.{split}.gpr.tsv") for split in ("train", "valid", "test")})


SIDE_FILES_FIX = "run data/amazon18_data_process_gpr.py (or --source amazon23) with this config first"


# --------------------------------------------------------------------------------------------
# Feature extraction
# --------------------------------------------------------------------------------------------

class ItemFeature(NamedTuple):
    type: str              # "I" or "O"
    value: float           # VAFT value in [0, 1]
    price: float | None
    train_count: int


def parse_price(raw: Any) -> float | None:
    """A price as a float, or None: Amazon'18 strings like ``"$1,234.50"``; ranges and junk -> None."""
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        value = float(raw)
    else:
        text = str(raw).strip().replace("$", "").replace(",", "")
        try:
            value = float(text)
        except ValueError:
            return None
    return value if math.isfinite(value) and value >= 0 else None


def training_interactions(sequences: Mapping[int, Sequence[tuple[int, int, float]]],
                          train_targets_per_user: Mapping[int, int]) -> dict[int, list[tuple[int, int, float]]]:
    """``{user: its first k + 1 interactions}`` for users with ``k >= 1`` train samples."""
    return {user: list(sequences[user][: k + 1]) for user, k in train_targets_per_user.items() if k > 0}


def user_tokens(train_seqs: Mapping[int, Sequence[tuple[int, int, float]]], users: Sequence[int],
                high: float, mid: float) -> dict[int, str]:
    """U token of every user in ``users`` from its training-period ratings."""
    out = {}
    for user in users:
        seq = train_seqs.get(user)
        if not seq:
            out[user] = USER_UNKNOWN
            continue
        mean = sum(r for _, _, r in seq) / len(seq)
        out[user] = USER_TOKENS[0] if mean > high else USER_TOKENS[1] if mean > mid else USER_TOKENS[2]
    return out


def quantile(values: Sequence[float], q: float) -> float:
    """The lower ``q`` quantile (an element of ``values``; no interpolation)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def item_features(records: Mapping[int, Mapping[str, Any]], train_seqs: Mapping[int, Sequence[tuple[int, int, float]]],
                  rule: str, q: float) -> tuple[dict[int, ItemFeature], dict[str, Any]]:
    """Type and value of every item in ``records``; statistics over the training-period items."""
    counts: dict[int, int] = {}
    for seq in train_seqs.values():
        for item, _, _ in seq:
            counts[item] = counts.get(item, 0) + 1
    prices = {item: parse_price(rec.get("price")) for item, rec in records.items()}
    train_items = sorted(counts)
    if not train_items:
        raise InputError("no training-period interaction: the train split is empty, so GPR features cannot be fitted")
    known = [prices[i] for i in train_items if prices.get(i) is not None]
    if rule == "price":
        if not known:
            raise InputError("gpr.item_type_rule=price but no training-period item has a parseable price; "
                             "use gpr.item_type_rule popularity for this dataset")
        threshold = quantile(known, q)
        is_i = {i: prices[i] is not None and prices[i] >= threshold for i in records}
    else:
        threshold = quantile([counts[i] for i in train_items], q)
        is_i = {i: counts.get(i, 0) >= threshold for i in records}
    raw = {i: math.log1p(prices[i] or 0.0) + math.log1p(counts.get(i, 0)) for i in records}
    low = min(raw[i] for i in train_items)
    high = max(raw[i] for i in train_items)
    span = high - low
    feats = {}
    for i in records:
        value = 0.5 if span <= 0 else min(1.0, max(0.0, (raw[i] - low) / span))
        feats[i] = ItemFeature("I" if is_i[i] else "O", value, prices[i], counts.get(i, 0))
    stats = {"type_threshold": threshold, "items_with_price": sum(p is not None for p in prices.values()),
             "train_items": len(train_items), "type_I": sum(f.type == "I" for f in feats.values()),
             "value_raw_min": low, "value_raw_max": high}
    return feats, stats


def context_token(rule: str, timestamp: int, previous: int | None, rng: random.Random) -> str:
    """E token of one request (the sample's target time; ``previous`` = the last history interaction's time)."""
    tokens = CONTEXT_TOKENS[rule]
    if rule == "random":
        return rng.choice(tokens)
    if rule == "weekday":
        return tokens[1] if dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).weekday() >= 5 else tokens[0]
    gap = timestamp - (previous if previous is not None else timestamp)
    return tokens[0] if gap < DAY else tokens[1] if gap < 7 * DAY else tokens[2] if gap < 30 * DAY else tokens[3]


def previous_timestamps(samples: Sequence[Any], sequences: Mapping[int, Sequence[tuple[int, int, float]]],
                        max_history: int = 10) -> list[int]:
    """For each sample, the time of the interaction just before its target in the user's timeline.

    A sample is located by (user, target time, target, history) among the user's positions; the
    positions of one user are consumed in order, so repeated identical windows stay aligned.
    """
    positions: dict[tuple[int, int, int, tuple[int, ...]], list[int]] = {}
    for user, seq in sequences.items():
        items = [x[0] for x in seq]
        for i in range(1, len(seq)):
            key = (user, seq[i][1], seq[i][0], tuple(items[max(0, i - max_history):i]))
            positions.setdefault(key, []).append(seq[i - 1][1])
    out: list[int | None] = []
    for s in samples:
        key = (s.user, s.timestamp, s.target, tuple(s.history))
        found = positions.get(key)
        if not found:
            raise RuntimeError(f"sample {key} is not a position of user {s.user}'s timeline: the samples and the "
                               "sequences come from different runs (or another history length)")
        out.append(found.pop(0))
    return out


@dataclass
class GPRFeatures:
    users: dict[int, str]
    items: dict[int, ItemFeature]
    contexts: dict[str, list[tuple[int, int, str]]]   # split -> [(user, target, E)] aligned with the .inter rows
    summary: dict[str, Any]


def extract_features(ds: Any, records: Mapping[int, Mapping[str, Any]], cfg: GPRConfig) -> GPRFeatures:
    """All GPR features of a processed dataset (``minionerec.preprocess.ProcessedDataset``)."""
    cfg.check()
    per_user: dict[int, int] = {}
    for s in ds.train:
        per_user[s.user] = per_user.get(s.user, 0) + 1
    train_seqs = training_interactions(ds.sequences, per_user)
    users = user_tokens(train_seqs, sorted(ds.sequences), cfg.user_high, cfg.user_mid)
    items, item_stats = item_features(records, train_seqs, cfg.item_type_rule, cfg.item_type_quantile)
    rng = random.Random(cfg.seed)
    contexts = {}
    for split in ("train", "valid", "test"):
        samples = getattr(ds, split)
        previous = previous_timestamps(samples, ds.sequences)
        contexts[split] = [(s.user, s.target, context_token(cfg.context_rule, s.timestamp, p, rng))
                           for s, p in zip(samples, previous)]
    train_cutoff = max((s.timestamp for s in ds.train), default=None)
    summary = {
        "rules": {"user": cfg.user_rule, "user_high": cfg.user_high, "user_mid": cfg.user_mid,
                  "context": cfg.context_rule, "item_type": cfg.item_type_rule, "item_type_quantile": cfg.item_type_quantile,
                  "value": "minmax(ln(1+price) + ln(1+train_count)) over training-period items"},
        "seed": cfg.seed,
        "train_cutoff_timestamp": train_cutoff,
        "user_token_counts": _counts(users.values()),
        "context_token_counts": {split: _counts(t for _, _, t in rows) for split, rows in contexts.items()},
        "items": item_stats,
        "tokens": gpr_vocabulary(),
    }
    return GPRFeatures(users, items, contexts, summary)


def _counts(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))


def process_with_features(raw: Any, options: Any, cfg: GPRConfig) -> Path:
    """The plain data protocol (same outputs as the plain scripts) plus the GPR side files."""
    from minionerec.config import save_resolved_config
    from minionerec.preprocess import build_dataset, output_dir, write_dataset
    from minionerec.records import stage_outputs

    cfg.check()
    dataset = build_dataset(raw, options)
    out = output_dir(options)
    id2item = {index: item for item, index in dataset.item2id.items()}
    records = {i: raw.items[id2item[i]] for i in range(len(id2item))}
    features = extract_features(dataset, records, cfg)
    with stage_outputs(options, out) as staging:  # plain + side files published together, the done-record last
        write_dataset(dataset, raw.items, staging, options.dataset)
        files = write_side_files(features, staging, options.dataset)
    save_resolved_config(cfg, out)
    logger.info("GPR side files: %s, %s, %s; U %s; types %s", files.users.name, files.items.name, files.summary.name,
                features.summary["user_token_counts"], {"I": features.summary["items"]["type_I"],
                                                        "O": len(features.items) - features.summary["items"]["type_I"]})
    return out


def write_side_files(features: GPRFeatures, data_dir: str | Path, dataset: str) -> SideFiles:
    files = SideFiles.of(data_dir, dataset)
    files.summary.unlink(missing_ok=True)  # completion marker: written last
    write_json(files.users, {str(u): t for u, t in sorted(features.users.items())})
    write_json(files.items, {str(i): {"type": f.type, "value": round(f.value, 6), "price": f.price,
                                      "train_count": f.train_count} for i, f in sorted(features.items.items())})
    for split, rows in features.contexts.items():
        lines = ["user_id:token\titem_id:token\tcontext:token"] + [f"{u}\t{i}\t{t}" for u, i, t in rows]
        atomic_write_text(files.contexts[split], "\n".join(lines) + "\n")
    write_json(files.summary, features.summary)
    return files


# --------------------------------------------------------------------------------------------
# Reading and validating side files
# --------------------------------------------------------------------------------------------

def _read_json_file(path: Path, what: str) -> Any:
    require_file(path, what, SIDE_FILES_FIX)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{where(path, exc.lineno)}: not valid JSON ({exc.msg}); {SIDE_FILES_FIX}") from None


def check_token(token: str, allowed: Sequence[str] | frozenset[str], source: str) -> str:
    if token not in allowed:
        raise InputError(f"{source}: unknown GPR token {token!r}; known: {', '.join(sorted(allowed))}")
    return token


def read_user_tokens(path: str | Path) -> dict[int, str]:
    raw = _read_json_file(Path(path), "GPR user-token file")
    if not isinstance(raw, dict):
        raise InputError(f"{path}: expected {{user id: U token}}")
    out = {}
    for key, token in raw.items():
        try:
            user = int(key)
        except ValueError:
            raise InputError(f"{path}: user key {key!r} is not an integer user id") from None
        out[user] = check_token(str(token), USER_TOKENS, f"{path} (user {key})")
    return out


def read_item_features(path: str | Path) -> dict[int, ItemFeature]:
    """``{item: ItemFeature}``; InputError for unknown types and NaN, infinite, negative or > 1 values."""
    raw = _read_json_file(Path(path), "GPR item-feature file")
    if not isinstance(raw, dict):
        raise InputError(f"{path}: expected {{item id: {{type, value, price, train_count}}}}")
    out = {}
    for key, rec in raw.items():
        source = f"{path} (item {key})"
        if not isinstance(rec, dict) or "type" not in rec or "value" not in rec:
            raise InputError(f"{source}: each item needs 'type' (I or O) and 'value'")
        if rec["type"] not in ITEM_TYPE_TOKENS:
            raise InputError(f"{source}: unknown item type {rec['type']!r}; expected I or O")
        value = _finite_fraction(rec["value"], source, "value")
        price = rec.get("price")
        if price is not None:
            price = _finite_nonnegative(price, source, "price")
        try:
            item = int(key)
        except ValueError:
            raise InputError(f"{path}: item key {key!r} is not an integer item id") from None
        out[item] = ItemFeature(rec["type"], value, price, int(rec.get("train_count", 0)))
    return out


def _finite_nonnegative(value: Any, source: str, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{source}: {name} {value!r} is not a number") from None
    if not math.isfinite(number) or number < 0:
        raise InputError(f"{source}: {name} {value!r} must be a finite number >= 0 (NaN/inf/negative values "
                         "are not allowed); fix the item file or re-run the GPR data stage")
    return number


def _finite_fraction(value: Any, source: str, name: str) -> float:
    number = _finite_nonnegative(value, source, name)
    if number > 1:
        raise InputError(f"{source}: {name} {number} must be in [0, 1] (values are min-max normalised)")
    return number


def read_contexts(path: str | Path) -> list[tuple[int, int, str]]:
    path = require_file(path, "GPR context file", SIDE_FILES_FIX)
    rows = []
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if header != ["user_id:token", "item_id:token", "context:token"]:
            raise InputError(f"{where(path, 1)}: expected the header user_id:token<TAB>item_id:token<TAB>context:token")
        for lineno, line in enumerate(f, start=2):
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 3:
                raise InputError(f"{where(path, lineno)}: expected 3 tab-separated columns, got {len(parts)}")
            try:
                user, item = int(parts[0]), int(parts[1])
            except ValueError:
                raise InputError(f"{where(path, lineno)}: user and item must be integers") from None
            rows.append((user, item, check_token(parts[2], _CONTEXT_SET, where(path, lineno))))
    return rows


# --------------------------------------------------------------------------------------------
# GPR CSV rows (the upstream columns + the token columns)
# --------------------------------------------------------------------------------------------

class GPRRow(NamedTuple):
    """An upstream CSV row plus its heterogeneous tokens (``history_types``/``target_type``: I or O)."""

    row: SplitRow
    user_token: str
    context_token: str
    history_types: tuple[str, ...]
    target_type: str

    # The duck-typed attributes that convert_dataset.keep_longest_per_user reads.
    @property
    def user_id(self) -> str:
        return self.row.user_id

    @property
    def history_item_id(self) -> tuple[int, ...]:
        return self.row.history_item_id


def write_gpr_csv(path: str | Path, rows: Sequence[GPRRow]) -> Path:
    """The upstream columns (as ``write_split_csv``) followed by :data:`GPR_COLUMNS`."""
    buffer = _io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS + GPR_COLUMNS)
    for g in rows:
        r = g.row
        writer.writerow([r.user_id, str(list(r.history_item_title)), r.item_title, str(list(r.history_item_id)),
                         r.item_id, str(list(r.history_item_sid)), r.item_sid, g.user_token, g.context_token,
                         str(list(g.history_types)), g.target_type])
    return atomic_write_text(path, buffer.getvalue())


def read_gpr_csv(path: str | Path) -> list[GPRRow]:
    """Rows of a CSV written by ``convert_dataset_gpr.py``; InputError names the line of a bad token."""
    import ast

    rows = read_split_csv(path)
    out = []
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in GPR_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{path}: missing GPR column(s) {', '.join(missing)}; this is not a convert_dataset_gpr.py "
                             "CSV: run bash convert_dataset_gpr.sh with the GPR config")
        for row, record in zip(rows, reader):
            source = where(path, reader.line_num)
            try:
                types = ast.literal_eval(record["history_item_type"])
            except (ValueError, SyntaxError):
                raise InputError(f"{source}: history_item_type is not a list literal") from None
            if not isinstance(types, list) or len(types) != len(row.history_item_id):
                raise InputError(f"{source}: history_item_type must list one type per history item")
            for t in [*types, record["item_type"]]:
                if t not in ITEM_TYPE_TOKENS:
                    raise InputError(f"{source}: unknown item type {t!r}; expected I or O")
            out.append(GPRRow(row, check_token(record["user_token"], USER_TOKENS, source),
                              check_token(record["context_token"], _CONTEXT_SET, source),
                              tuple(types), record["item_type"]))
    return out


# --------------------------------------------------------------------------------------------
# Prompts
# --------------------------------------------------------------------------------------------

def typed_history(row: GPRRow) -> list[str]:
    """History entries with their type token glued to the SID (``[I_TOKEN]<a_1><b_2><c_3>``)."""
    return [ITEM_TYPE_TOKENS[t] + sid for t, sid in zip(row.history_types, row.row.history_item_sid)]


def gpr_next_item_prompt(row: GPRRow, use_tokens: bool = True) -> str:
    """The next-item prompt of SFT, RL and evaluation; ``use_tokens=False`` gives ``data.next_item_prompt``."""
    from data import NEXT_ITEM_INPUT, NEXT_ITEM_INSTRUCTION, format_prompt, next_item_prompt

    if not use_tokens:
        return next_item_prompt(row.row.history_item_sid)
    if not row.row.history_item_sid:
        raise ValueError("gpr_next_item_prompt needs at least one history item")
    text = NEXT_ITEM_INPUT.format(history=", ".join(typed_history(row)))
    return format_prompt(NEXT_ITEM_INSTRUCTION, f"{row.user_token} {row.context_token} {text}")


def gpr_template_pieces() -> list[str]:
    """The constant text of the GPR next-item prompt between its variable parts (U, E, typed SIDs).

    The plain prompt's pieces (``data.prompt_template_pieces``) do not cover it (the U/E tokens cut
    the plain header), so a tokenizer that holds template pieces as whole tokens gets these too;
    whitespace-only pieces are left out (an added token matches anywhere in any text).
    """
    sentinel = "\x00"
    row = GPRRow(SplitRow("A0", (sentinel,), sentinel, (0,), 0, (sentinel,), sentinel), USER_UNKNOWN,
                 CONTEXT_TOKENS["gap"][0], ("I",), "I")
    prompt = gpr_next_item_prompt(row)
    for token in (USER_UNKNOWN, CONTEXT_TOKENS["gap"][0], ITEM_TYPE_TOKENS["I"]):
        prompt = prompt.replace(token, sentinel)
    return list(dict.fromkeys(p for p in prompt.split(sentinel) if p.strip()))


def gpr_next_sid_samples(rows: Sequence[GPRRow], use_tokens: bool = True, type_prefix: bool = False) -> list[Any]:
    """``data.TaskSample`` records of the GPR next-item task.

    ``target`` stays the plain SID (rewards and metrics compare plain SIDs); with
    ``type_prefix`` the trained completion is ``{type token}{SID}\\n``.
    """
    from data import TaskSample, format_response

    out = []
    for g in rows:
        r = g.row
        answer = (ITEM_TYPE_TOKENS[g.target_type] if type_prefix else "") + r.item_sid
        history = typed_history(g) if use_tokens else list(r.history_item_sid)
        out.append(TaskSample("next_sid", gpr_next_item_prompt(g, use_tokens), format_response(answer), r.item_sid,
                              r.item_id, r.history_item_id, tuple(history)))
    return out


PROMPT_SETTINGS = ("use_tokens", "target_type_prefix")


def check_checkpoint_prompt(model_path: str | Path, cfg: GPRConfig) -> None:
    """InputError unless the checkpoint was trained with the same prompt settings as ``cfg``.

    ``sft_gpr.py``/``rl_gpr.py`` save ``gpr.config.yaml`` beside the model; a checkpoint without it
    (plain sft.py/rl.py) only matches the plain prompt.
    """
    import yaml

    saved_path = Path(model_path) / "gpr.config.yaml"
    if not saved_path.is_file():
        if cfg.use_tokens or cfg.target_type_prefix:
            raise InputError(f"{model_path} has no gpr.config.yaml, so it was not trained on the GPR prompt: train it "
                             "with sft_gpr.py, or pass --gpr.use_tokens false --gpr.target_type_prefix false")
        return
    saved = (yaml.safe_load(saved_path.read_text(encoding="utf-8")) or {}).get("gpr", {})
    for key in PROMPT_SETTINGS:
        if key in saved and bool(saved[key]) != bool(getattr(cfg, key)):
            raise InputError(f"{saved_path}: the model was trained with gpr.{key}={str(saved[key]).lower()} but this "
                             f"run uses {str(getattr(cfg, key)).lower()}; pass --gpr.{key} {str(saved[key]).lower()} so "
                             "the prompt matches the one it learned")


# --------------------------------------------------------------------------------------------
# Info side file (tokens for the tokenizer, item types for the type-prefixed trie)
# --------------------------------------------------------------------------------------------

def info_side_path(info_path: str | Path) -> Path:
    """``info/<name>.txt`` -> ``info/<name>.gpr.json``."""
    info_path = Path(info_path)
    return info_path.with_name(info_path.stem + ".gpr.json")


def write_info_side(info_path: str | Path, item_types: Mapping[int, str], config: Mapping[str, Any]) -> Path:
    return write_json(info_side_path(info_path), {"special_tokens": gpr_vocabulary(), "config": dict(config),
                                                  "item_types": {str(i): t for i, t in sorted(item_types.items())}})


def read_info_side(info_path: str | Path) -> tuple[list[str], dict[int, str]]:
    """``(special tokens, {item: I|O})`` from ``info/<name>.gpr.json``."""
    path = info_side_path(info_path)
    raw = _read_json_file(path, "GPR info side file (tokens + item types)")
    if not isinstance(raw, dict) or "special_tokens" not in raw or "item_types" not in raw:
        raise InputError(f"{path}: expected {{special_tokens, item_types}}; run convert_dataset_gpr.py again")
    tokens = [check_token(t, _KNOWN_TOKENS, str(path)) for t in raw["special_tokens"]]
    types = {}
    for key, t in raw["item_types"].items():
        if t not in ITEM_TYPE_TOKENS:
            raise InputError(f"{path}: item {key} has unknown type {t!r}; expected I or O")
        types[int(key)] = t
    return tokens, types


def sid_types(pairs: Iterable[tuple[str, int]], item_types: Mapping[int, str], source: str) -> dict[str, str]:
    """``{SID string: I|O}`` from ``(SID, item id)`` pairs; a SID shared by items of both types counts as I."""
    out: dict[str, str] = {}
    for sid, item in pairs:
        t = item_types.get(int(item))
        if t is None:
            raise InputError(f"{source}: item {item} of the info file has no type; run convert_dataset_gpr.py again")
        out[sid] = "I" if out.get(sid) == "I" else t
    return out


def type_prefixed_trie(sids: Sequence[str], types: Mapping[str, str], tokenizer: Any, device: Any = "cpu") -> Any:
    """A ``LogitProcessor.SIDTrie`` whose completions are ``[type token] + tokenize(sid + "\\n") + [eos]``.

    Leaves stay the plain SID strings, so predictions and metrics are unchanged.
    """
    from LogitProcessor import SIDTrie, completion_token_ids

    distinct = list(dict.fromkeys(sids))
    type_ids = {t: tokenizer.convert_tokens_to_ids(tok) for t, tok in ITEM_TYPE_TOKENS.items()}
    for t, tok in ITEM_TYPE_TOKENS.items():
        if type_ids[t] is None or tokenizer.encode(tok, add_special_tokens=False) != [type_ids[t]]:
            raise InputError(f"the tokenizer lacks the GPR type token {tok}: use a checkpoint trained by sft_gpr.py")
    sequences = [[type_ids[types[s]]] + completion_token_ids(tokenizer, s) for s in distinct]
    SIDTrie.from_sids(distinct, tokenizer)  # the same SID-token checks as the plain trie
    return SIDTrie.from_sequences(distinct, sequences, int(tokenizer.eos_token_id), device)


# --------------------------------------------------------------------------------------------
# VAFT
# --------------------------------------------------------------------------------------------

def vaft_weights(values: Sequence[float], floor: float) -> list[float]:
    """Per-sample weights ``(floor + v) / mean(floor + v)``: mean exactly 1, all equal when the values are."""
    if not values:
        return []
    raw = []
    for v in values:
        if not (math.isfinite(v) and v >= 0):
            raise InputError(f"VAFT: item value {v!r} must be a finite number >= 0")
        raw.append(floor + v)
    mean = sum(raw) / len(raw)
    if mean <= 0:
        raise InputError("VAFT: every weight is 0 (vaft_floor 0 and all values 0); set gpr.vaft_floor > 0")
    return [w / mean for w in raw]


# --------------------------------------------------------------------------------------------
# HEPO
# --------------------------------------------------------------------------------------------

def sid_levels(text: str) -> tuple[str, ...]:
    """The level tokens of a decoded SID (``<a_1><b_2>`` -> ``("<a_1>", "<b_2>")``); () when unparsable."""
    parsed = try_parse_sid(text.strip())
    return tuple(parsed) if parsed else ()


def level_rewards(completions: Sequence[str], targets: Sequence[str], terminal: Sequence[float],
                  alphas: Sequence[float], num_levels: int) -> torch.Tensor:
    """(N, num_levels) rewards: ``alpha_l * 1[first l levels equal the target's]`` for the levels before
    the candidate's last one, the terminal reward at its last level, 0 beyond it."""
    import torch

    out = torch.zeros((len(completions), num_levels), dtype=torch.float32)
    for i, (completion, target) in enumerate(zip(completions, targets)):
        cand, gold = sid_levels(completion), sid_levels(target)
        depth = min(max(1, len(cand)), num_levels)
        for level in range(depth - 1):
            if len(gold) > level and cand[: level + 1] == gold[: level + 1]:
                out[i, level] = alphas[min(level, len(alphas) - 1)]
        out[i, depth - 1] = float(terminal[i])
    return out


def level_returns(rewards: torch.Tensor, gamma: float = 1.0) -> torch.Tensor:
    """``R_l = sum_{m >= l} gamma^(m - l) r_m`` per row."""
    import torch

    returns = torch.zeros_like(rewards)
    running = torch.zeros(rewards.shape[0], dtype=rewards.dtype)
    for level in range(rewards.shape[1] - 1, -1, -1):
        running = rewards[:, level] + gamma * running
        returns[:, level] = running
    return returns


def level_advantages(returns: torch.Tensor, group_size: int, epsilon: float = 1e-4, scale: bool = True) -> torch.Tensor:
    """Group z-score of each level's return: ``(R - mean_g) / (std_g + eps)`` per level (unbiased std)."""
    import torch

    grouped = returns.view(-1, group_size, returns.shape[1])
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    if scale:
        std = grouped.std(dim=1, keepdim=True) if group_size > 1 else torch.zeros_like(centred[:, :1])
        centred = centred / (std + epsilon)
    return centred.reshape(returns.shape)


def token_level_advantages(level_adv: torch.Tensor, completion_ids: torch.Tensor, completion_mask: torch.Tensor,
                           sid_token_ids: torch.Tensor, coefs: Sequence[float]) -> torch.Tensor:
    """(N, L) per-token advantages: the k-th SID token of a completion gets ``c_k * A_k``; tokens before
    the first SID token (a type marker) get level 1's, tokens after the last SID token its level's."""
    import torch

    is_sid = torch.isin(completion_ids, sid_token_ids.to(completion_ids.device)) & completion_mask.bool()
    level = (is_sid.long().cumsum(dim=1) - 1).clamp(min=0, max=level_adv.shape[1] - 1)
    coef = torch.tensor([coefs[min(k, len(coefs) - 1)] for k in range(level_adv.shape[1])],
                        dtype=level_adv.dtype, device=level_adv.device)
    scaled = level_adv * coef
    return scaled.to(completion_ids.device).gather(1, level) * completion_mask.to(scaled.dtype)
