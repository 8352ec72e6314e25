"""Shared loading for the real benchmarks (GSM8K, MATH-500, MBPP): records through `datasets`.

A local file goes through `datasets.load_dataset("json", data_files=...)`, the same reader the hub
uses for JSON/JSONL, so local and hub runs see identical records. Without a path the hub name is
loaded (needs internet or a warm HF cache). Records missing a required field are skipped, counted
and logged once per load. A line that is not JSON at all is a broken file, not a missing field:
`check_data_path` / `check_json_file` name the file and line (datasets itself would end in three
tracebacks and a `DatasetGenerationError`); the config validator runs them before anything is built.
Splits that a benchmark does not ship are carved out by `seeded_split`, reproducibly from a seed.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterable, Sequence
from pathlib import Path

from gfpo_bench.config_schema import require
from gfpo_bench.errors import ConfigError

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
    check_json_file(file, what)
    return datasets.load_dataset("json", data_files=str(file), split="train").to_list()


DATA_SUFFIXES = (".jsonl", ".json")


def check_data_path(path: str | Path, what: str) -> None:
    """A local data path (a file, or a directory of .jsonl/.json files) exists and every data file in
    it parses; else one `ConfigError` naming the file (and line)."""
    root = Path(path).expanduser()
    if not root.exists():
        raise ConfigError(
            f"{what}: data path not found: {root} (give a directory or a .jsonl file, or null for the hub)"
        )
    files = [root] if root.is_file() else sorted(f for f in root.iterdir() if f.suffix in DATA_SUFFIXES)
    if not files:
        raise ConfigError(f"{what}: {root} holds no .jsonl or .json file")
    for file in files:
        check_json_file(file, what)


def check_json_file(file: Path, what: str) -> None:
    """The file holds records: a JSON document (a list of objects) or JSON Lines, one object a line.

    >>> import tempfile; f = Path(tempfile.mkdtemp()) / "d.jsonl"; _ = f.write_text('{"a": 1}\\n{"a": \\n')
    >>> check_json_file(f, "gsm8k")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    gfpo_bench.errors.ConfigError: gsm8k: .../d.jsonl:2: not valid JSON at column 7 (Expecting value); fix or delete that line
    """
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{what}: cannot read {file}: {e}") from None
    if not text.strip():
        raise ConfigError(f"{what}: {file} is empty")
    if file.suffix == ".json" and text.lstrip()[:1] in "[{":
        try:
            json.loads(text)
            return
        except ValueError:
            pass  # maybe JSON Lines under a .json name: the line check below finds the bad line
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as e:
            msg, col = getattr(e, "msg", str(e)), getattr(e, "colno", "?")
            raise ConfigError(
                f"{what}: {file}:{lineno}: not valid JSON at column {col} ({msg}); fix or delete that line"
            ) from None
        if not isinstance(record, dict):
            raise ConfigError(
                f"{what}: {file}:{lineno}: a record must be a JSON object, got {type(record).__name__}"
            )


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
    require("task.val_size", val_size)  # range: config_schema.py
    order = list(range(n))
    random.Random(seed).shuffle(order)
    val = sorted(order[:val_size])
    train = sorted(order[val_size:])
    return train, val


def take(items: list, limit: int | None) -> list:
    """The first `limit` items (all when None); `task.limit`'s rule (>= 1: 0 would take nothing,
    and an empty split is refused anyway)."""
    require("task.limit", limit)
    return items if limit is None else items[:limit]
