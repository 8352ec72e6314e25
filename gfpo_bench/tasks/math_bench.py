"""Real math benchmarks: GSM8K (Cobbe et al. 2021) and MATH-500 (Lightman et al. 2023).

Both load through `datasets` (a local JSON/JSONL file, or the hub name) and become `Problem`s whose
`solution` is a reference completion in the shared format (`tasks/format.py`):

- GSM8K: steps are the worked-solution lines before `#### N`, calculator annotations `<<48/2=24>>`
  removed; the answer is N with thousands commas dropped ("1,080" -> "1080").
- MATH-500: steps are the solution's lines, split further into sentences outside `$...$`; the
  answer is the dataset's `answer` field (the solution's last `\\boxed{}`).

Scoring parses the `<answer>` block and compares it with `answers_match` (math-verify; see
`checkers/answers.py`). Step scores come from the arithmetic checker `check_equation_step`.

Splits. GSM8K ships train (7,473) and test (1,319): `val` is a seeded `val_size` slice held out of
train, `train` the rest. MATH-500 is an evaluation set of 500 problems with no training split;
`test` is all 500, and `train`/`val` are seeded disjoint slices of those same problems. Training on
MATH-500 therefore measures nothing: it exists for smoke tests of the pipeline only.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from gfpo_bench.checkers.answers import answers_match
from gfpo_bench.checkers.equations import check_equation_step, strip_calc_annotations
from gfpo_bench.config_schema import require
from gfpo_bench.tasks.base import Score, Split, Task, require_nonempty
from gfpo_bench.tasks.bench_data import (
    check_split,
    keep_complete,
    load_hub_records,
    load_json_records,
    seeded_split,
    take,
)
from gfpo_bench.tasks.format import parse_completion, render_completion
from gfpo_bench.types import Problem

log = logging.getLogger(__name__)


class _MathBenchTask(Task):
    """Shared checking for math benchmarks; subclasses only load problems."""

    kind = "math"

    def __init__(self, val_size: int, seed: int, limit: int | None) -> None:
        require("task.val_size", val_size)  # ranges: config_schema.py
        require("task.limit", limit)
        self.val_size, self.seed, self.limit = val_size, seed, limit
        self._cache: dict[str, list[Problem]] = {}
        self._pools: dict[str, list[Problem]] = {}  # whole upstream files, before splitting

    def problems(self, split: Split) -> list[Problem]:
        check_split(split, self.name)
        if split not in self._cache:
            found = take(self._load(split), self.limit)
            self._cache[split] = require_nonempty(found, f"{self.name}/{split}")
        return self._cache[split]

    def _load(self, split: Split) -> list[Problem]:
        raise NotImplementedError

    def score(self, problems: list[Problem], completions: list[str]) -> list[Score]:
        if len(problems) != len(completions):
            raise ValueError(f"{self.name}: {len(problems)} problems but {len(completions)} completions")
        out = []
        for problem, completion in zip(problems, completions, strict=True):
            answer = parse_completion(completion).answer
            if answer is None:
                out.append(Score(False, None, "no answer block"))
            else:
                ok = answers_match(answer, problem.answer)
                out.append(Score(ok, answer, "" if ok else "wrong answer"))
        return out

    def verify_steps(self, problem: Problem, steps: list[str]) -> list[int]:
        return [check_equation_step(s) for s in steps]


# --- GSM8K ------------------------------------------------------------------------------------


def gsm8k_problem(record: dict, uid: str) -> Problem | None:
    """One GSM8K record as a Problem; None if its answer has no `####` line."""
    worked, sep, final = record["answer"].rpartition("####")
    answer = final.strip().replace(",", "")
    if not sep or not answer:
        return None
    steps = [strip_calc_annotations(line).strip() for line in worked.split("\n")]
    steps = [s for s in steps if s]
    return Problem(
        uid=uid,
        question=record["question"].strip(),
        answer=answer,
        solution=render_completion(steps, answer),
        meta={"benchmark": "gsm8k"},
    )


class GSM8KTask(_MathBenchTask):
    """GSM8K grade-school word problems. `path`: a directory with train.jsonl and test.jsonl, or a
    file (see `_file`); None loads `hub_name`."""

    name = "gsm8k"

    def __init__(
        self,
        path: str | None = None,
        hub_name: str = "openai/gsm8k",
        hub_config: str = "main",
        val_size: int = 200,
        seed: int = 0,
        limit: int | None = None,
    ) -> None:
        super().__init__(val_size, seed, limit)
        self.path, self.hub_name, self.hub_config = path, hub_name, hub_config

    def _source(self, source: str) -> list[Problem]:
        """All problems of the upstream "train" or "test" file."""
        if source not in self._pools:
            self._pools[source] = self._read(source)
        return self._pools[source]

    def _file(self, source: str) -> Path:
        """`{dir}/{source}.jsonl`; a file path serves the source its name starts with ("train...",
        else test), and the other source is read from `{source}.jsonl` beside it."""
        root = Path(str(self.path)).expanduser()
        if root.is_dir():
            return root / f"{source}.jsonl"
        own = "train" if root.name.startswith("train") else "test"
        return root if source == own else root.parent / f"{source}.jsonl"

    def _read(self, source: str) -> list[Problem]:
        if self.path is None:
            records = load_hub_records(self.hub_name, self.hub_config, [source], self.name)
        else:
            records = load_json_records(self._file(source), self.name)
        records = keep_complete(records, ("question", "answer"), f"{self.name}/{source}")
        problems = [gsm8k_problem(r, f"gsm8k/{source}/{i}") for i, r in enumerate(records)]
        kept = [p for p in problems if p is not None]
        if len(kept) < len(problems):
            log.warning(
                "%s/%s: skipped %d record(s) without a '#### N' answer line",
                self.name,
                source,
                len(problems) - len(kept),
            )
        return kept

    def _load(self, split: Split) -> list[Problem]:
        if split == "test":
            return self._source("test")
        pool = self._source("train")
        train_idx, val_idx = seeded_split(len(pool), self.val_size, self.seed)
        return [pool[i] for i in (train_idx if split == "train" else val_idx)]


# --- MATH-500 ---------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\\$(])")


def split_sentences(text: str) -> list[str]:
    """Non-empty lines, each split at sentence ends that lie outside `$...$` math.

    >>> split_sentences("We have $x = 1. 5$ here. So $y=2$.\\n\\nDone!")
    ['We have $x = 1. 5$ here.', 'So $y=2$.', 'Done!']
    """
    out = []
    for line in text.split("\n"):
        start = 0
        for m in _SENTENCE_END.finditer(line):
            if line.count("$", 0, m.start()) % 2 == 0:
                out.append(line[start : m.start()])
                start = m.end()
        out.append(line[start:])
    return [s.strip() for s in out if s.strip()]


def math500_problem(record: dict) -> Problem:
    answer = str(record["answer"]).strip()
    return Problem(
        uid=f"math500/{record['unique_id']}",
        question=record["problem"].strip(),
        answer=answer,
        solution=render_completion(split_sentences(record["solution"]), answer),
        meta={"benchmark": "math500", "subject": record.get("subject"), "level": record.get("level")},
    )


class MATH500Task(_MathBenchTask):
    """MATH-500, the 500-problem test subset of MATH. `path`: test.jsonl or its directory."""

    name = "math500"

    def __init__(
        self,
        path: str | None = None,
        hub_name: str = "HuggingFaceH4/MATH-500",
        hub_config: str | None = None,
        val_size: int = 100,
        seed: int = 0,
        limit: int | None = None,
    ) -> None:
        super().__init__(val_size, seed, limit)
        self.path, self.hub_name, self.hub_config = path, hub_name, hub_config

    def _read(self) -> list[Problem]:
        if self.path is None:
            records = load_hub_records(self.hub_name, self.hub_config, ["test"], self.name)
        else:
            root = Path(self.path).expanduser()
            records = load_json_records(root / "test.jsonl" if root.is_dir() else root, self.name)
        required = ("problem", "solution", "answer", "unique_id")
        return [math500_problem(r) for r in keep_complete(records, required, self.name)]

    def _load(self, split: Split) -> list[Problem]:
        if "test" not in self._pools:
            self._pools["test"] = self._read()
        pool = self._pools["test"]
        if split == "test":
            return pool
        train_idx, val_idx = seeded_split(len(pool), self.val_size, self.seed)
        return [pool[i] for i in (train_idx if split == "train" else val_idx)]
