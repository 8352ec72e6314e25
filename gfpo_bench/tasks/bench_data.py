"""Shared loading for the real benchmarks (GSM8K, MATH-500, MBPP): records through `datasets`.

A local file goes through `datasets.load_dataset("json", data_files=...)`, the same reader the hub
uses for JSON/JSONL, so local and hub runs see identical records. Without a path the hub name is
loaded (needs internet or a warm HF cache). Records missing a required field are skipped, counted
and logged once per load, so one malformed line does not take down a run. Splits that a benchmark
does not ship are carved out by `seeded_split`, reproducibly from a seed.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def check_split(split: str, what: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"{what}: unknown split {split!r}; valid: {', '.join(SPLITS)}")


def load_json_records(path: str | Path, what: str) -> list[dict]:
    """All records of a local JSON/JSONL file, through `datasets`. A missing file names its path."""
    import datasets  # heavy import, only when real data is needed

    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"{what}: data file not found: {file}")
    return datasets.load_dataset("json", data_files=str(file), split="train").to_list()


def load_hub_records(name: str, config: str | None, splits: Sequence[str], what: str) -> list[dict]:
    """Records of the given hub splits, concatenated in order."""
    import datasets

    try:
        loaded = datasets.load_dataset(name, config)
    except Exception as e:  # network, auth, unknown name: one message saying what was tried
        cfg = f" (config {config!r})" if config else ""
        raise ValueError(f"{what}: could not load hub dataset {name!r}{cfg}: {e}") from e
    missing = [s for s in splits if s not in loaded]
    if missing:
        raise ValueError(f"{what}: hub dataset {name!r} has no split(s) {missing}; has {list(loaded)}")
    return [r for s in splits for r in loaded[s].to_list()]


def keep_complete(records: Iterable[dict], required: Sequence[str], what: str) -> list[dict]:
    """Records whose required fields are all present and non-empty; others skipped, one warning."""
    kept, skipped = [], 0
    for r in records:
        if all(r.get(k) not in (None, "", []) for k in required):
            kept.append(r)
        else:
            skipped += 1
    if skipped:
        log.warning("%s: skipped %d record(s) missing one of %s", what, skipped, list(required))
    return kept


def seeded_split(n: int, val_size: int, seed: int) -> tuple[list[int], list[int]]:
    """Disjoint (train, val) index lists covering range(n); val has min(val_size, n) items.

    Both come back sorted, so problems keep the file's order within a split.

    >>> seeded_split(6, 2, seed=0)
    ([0, 1, 3, 5], [2, 4])
    """
    if val_size < 0:
        raise ValueError(f"val_size must be >= 0, got {val_size}")
    order = list(range(n))
    random.Random(seed).shuffle(order)
    val = sorted(order[:val_size])
    train = sorted(order[val_size:])
    return train, val


def take(items: list, limit: int | None) -> list:
    """The first `limit` items (all when None)."""
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, got {limit}")
    return items if limit is None else items[:limit]
