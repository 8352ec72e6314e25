"""Tasks generated from a seed: the split-and-generate loop that `arith` and `code_synth` share.

A subclass draws one candidate problem from a seeded stream (`draw`) and turns the accepted draws
of a split into Problems (`build`); this base owns everything else: one random stream per split
(`"{stream}-{seed}-{split}"`), no question twice within a split, and disjoint splits. A
candidate's split is fixed by a hash of its `split_key` (arith: the question; code_synth: the
reference program), not by the order it was drawn in: 5% val, 5% test, 90% train, so each split
keeps the draws that hash into it and skips the rest. A split whose draws keep failing stops after
`50 * size + 1000` attempts (with fewer problems than asked; none at all is an error).
"""

from __future__ import annotations

import hashlib
import random
from abc import abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from gfpo_bench.config_schema import require
from gfpo_bench.tasks.base import Split, Task, require_nonempty
from gfpo_bench.types import Problem

SPLIT_BUCKETS = {"val": range(0, 5), "test": range(5, 10), "train": range(10, 100)}


def split_bucket(key: str) -> int:
    """0..99 from a hash of `key`: which split a candidate belongs to (see SPLIT_BUCKETS)."""
    return int(hashlib.sha1(key.encode()).hexdigest(), 16) % 100


@dataclass(frozen=True)
class Draw:
    question: str  # what the model sees; unique within a split
    split_key: str  # its hash picks the split
    parts: Any  # whatever the subclass needs to build the Problem (operands, ops, traces, ...)


class SyntheticTask(Task):
    """Problems of each split generated once from `seed`, in a fixed order, then cached."""

    stream: str = "synthetic"  # prefix of the split's random stream name (kept per task: data unchanged)

    def __init__(self, seed: int, n_train: int, n_val: int, n_test: int) -> None:
        sizes = {"train": n_train, "val": n_val, "test": n_test}
        for split, size in sizes.items():  # ranges: config_schema.py
            require(f"task.n_{split}", size)
        self.seed = seed
        self.sizes: dict[str, int] = sizes
        self._cache: dict[str, list[Problem]] = {}

    @abstractmethod
    def draw(self, rng: random.Random) -> Draw | None:
        """One candidate problem from `rng`; None if it is not worth asking (it is skipped)."""

    @abstractmethod
    def build(self, draws: list[Draw], split: Split) -> list[Problem]:
        """The split's Problems from its accepted draws, in order (uid: `uid(split, i)`)."""

    def uid(self, split: Split, i: int) -> str:
        return f"{self.name}/{split}/{i}"

    def problems(self, split: Split) -> list[Problem]:
        if split not in self.sizes:
            raise ValueError(f"{self.name}: unknown split {split!r}; valid: train, val, test")
        if split not in self._cache:
            built = self.build(list(self.draws(split)), split)
            self._cache[split] = require_nonempty(built, f"{self.name}/{split}")
        return self._cache[split]

    def draws(self, split: Split) -> Iterator[Draw]:
        """The split's accepted draws: its own seeded stream, deduplicated, hashed into this split."""
        rng = random.Random(f"{self.stream}-{self.seed}-{split}")
        want, seen, attempts = self.sizes[split], set(), 0
        while len(seen) < want and attempts < 50 * want + 1000:
            attempts += 1
            d = self.draw(rng)
            if d is None or d.question in seen or split_bucket(d.split_key) not in SPLIT_BUCKETS[split]:
                continue
            seen.add(d.question)
            yield d
