"""Score the reference solutions (and their corruptions) on every real benchmark and split.

    python scripts/check_references.py [--data ../shared/data] [--splits test] [--workers 2] [--timeout 30]

Prints, per benchmark and split, the accuracy of `ReferencePolicy` (should be 100%) and of
`CorruptedReferencePolicy` (should be ~0%), then every reference that failed with the sandbox or
checker detail. The default test suite (tests/test_benchmarks.py) runs the same check on the five
test splits; this script also covers train/val and prints the list instead of asserting.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from gfpo_bench.policies import CorruptedReferencePolicy, ReferencePolicy
from gfpo_bench.tasks.base import Task
from gfpo_bench.tasks.code_bench import HumanEvalTask, MBPPTask
from gfpo_bench.tasks.math_bench import GSM8KTask, MATH500Task

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def benchmarks(data: Path, workers: int, timeout_s: float) -> dict[str, Task]:
    sandbox = {"workers": workers, "timeout_s": timeout_s}
    return {
        "gsm8k": GSM8KTask(path=str(data / "gsm8k")),
        "math500": MATH500Task(path=str(data / "math500")),
        "humaneval": HumanEvalTask(**sandbox),
        "mbpp-full": MBPPTask("full", path=str(data / "mbpp"), **sandbox),
        "mbpp-sanitized": MBPPTask("sanitized", path=str(data / "mbpp"), **sandbox),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--splits", nargs="+", default=["train", "val", "test"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="seed of the corruption")
    # MBPP task 123 runs 2-4 s alone; a busy machine pushes it past the tasks' default 5 s
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per program")
    args = parser.parse_args()

    failures: list[str] = []
    print(f"{'benchmark':<16}{'split':<7}{'n':>6}{'reference':>11}{'corrupted':>11}{'seconds':>9}")
    for name, task in benchmarks(args.data, args.workers, args.timeout).items():
        for split in args.splits:
            problems = task.problems(split)
            start = time.perf_counter()
            ref = task.score(problems, ReferencePolicy().complete(problems))
            bad = task.score(problems, CorruptedReferencePolicy(args.seed).complete(problems))
            seconds = time.perf_counter() - start
            ref_acc = sum(s.correct for s in ref) / len(problems)
            bad_acc = sum(s.correct for s in bad) / len(problems)
            print(f"{name:<16}{split:<7}{len(problems):>6}{ref_acc:>10.1%}{bad_acc:>11.1%}{seconds:>9.1f}")
            failures += [
                f"{p.uid} ({split}): {s.detail}" for p, s in zip(problems, ref, strict=True) if not s.correct
            ]
    print(f"\nfailing references: {len(failures)}")
    for line in failures:
        print("  " + line)


if __name__ == "__main__":
    main()
