"""Score a policy on a task: accuracy (math) or pass@1 / pass@k (code), plus every scored sample.

Metric names: `val/math/accuracy` and `val/<task>/accuracy` for math tasks; `val/code/pass@1`,
`val/<task>/pass@1` (and pass@k when k > 1 samples are drawn) for code tasks. A completion whose
check raises counts as wrong (detail "reward fault") and is logged; the evaluation goes on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from gfpo_bench.eval.passk import mean_pass_at_k
from gfpo_bench.tasks.base import Score, Task
from gfpo_bench.tasks.checked import FAULT, describe, score_safely, verify_safely
from gfpo_bench.tasks.format import parse_completion
from gfpo_bench.types import Problem

log = logging.getLogger(__name__)


@dataclass
class EvalResult:
    metrics: dict[str, float]
    records: list[dict]  # one per scored sample: uid, prompt, completion, extracted, correct, ...


def evaluate_policy(
    policy, task: Task, problems: list[Problem], prefix: str = "val", n: int = 1, ks: tuple[int, ...] = (1,)
) -> EvalResult:
    """`policy.complete(problems)` (n == 1) or `policy.complete(problems, n=n)` -> scores and metrics."""
    completions = policy.complete(problems) if n == 1 else policy.complete(problems, n=n)
    expanded = [p for p in problems for _ in range(n)]
    scores, errors = score_safely(task, expanded, completions)
    records = []
    for i, (p, c, s) in enumerate(zip(expanded, completions, scores)):
        parsed = parse_completion(c)
        steps, err = verify_safely(task, p, parsed.steps)
        if err is not None:
            errors.setdefault(i, err)
            s = Score(correct=False, extracted=s.extracted, detail=FAULT)
        records.append(
            {
                "uid": p.uid,
                "prompt": task.prompt(p),
                "completion": c,
                "extracted": s.extracted,
                "correct": bool(s.correct),
                "detail": s.detail,
                "format_ok": parsed.format_ok,
                "step_scores": steps,
            }
        )
    if errors:
        first = describe(next(iter(errors.values())))
        log.warning(
            "%s: checking %d of %d completions raised (%s); counted as wrong",
            task.name,
            len(errors),
            len(records),
            first,
        )
    per_problem: dict[str, list[bool]] = {}
    for r in records:
        per_problem.setdefault(r["uid"], []).append(r["correct"])
    metrics: dict[str, float] = {}
    if task.kind == "math":
        acc = sum(r["correct"] for r in records) / max(1, len(records))
        metrics[f"{prefix}/math/accuracy"] = acc
        metrics[f"{prefix}/{task.name}/accuracy"] = acc
    else:
        counts = [(len(v), sum(v)) for v in per_problem.values()]
        for k in ks:
            if k <= n:
                val = mean_pass_at_k(counts, k)
                metrics[f"{prefix}/code/pass@{k}"] = val
                metrics[f"{prefix}/{task.name}/pass@{k}"] = val
    metrics[f"{prefix}/{task.name}/format"] = sum(r["format_ok"] for r in records) / max(1, len(records))
    return EvalResult(metrics, records)
