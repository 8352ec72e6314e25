"""docs/tournament.md from the tournament's committed run summaries (scripts/tournament.py tables).

Reads results/tournament/{tune,report}/<row>/<job>/summary.json and choices.json; runs nothing.
Every number is a mean over the row's report seeds with its 95% Student-t interval; the verdicts are
gfpo_bench.compare.stats.recommendation_verdicts over the Table 2 rows that have runs (docs/protocol.md).
A row with missing runs is shown with what it has, and its count says so.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from tournament import (
    ACC,
    KNOBS,
    LRS,
    PASS1,
    REPORT_SEEDS,
    ROWS,
    TABLES_MD,
    TUNE_ROW,
    TUNE_SEEDS,
    held_out,
    report_jobs,
    tuning_jobs,
)

from gfpo_bench.compare.stats import Sample, ci95_halfwidth, recommendation_verdicts

PAIR_COLUMNS = {  # pair_stats key: column title (means over a run's steps, then over seeds)
    "groups_with_spread": "groups with a reward spread",
    "groups_right_and_wrong": "groups with right and wrong paths",
    "pairs_per_step": "pairs (or scored paths) per step",
    "pairable_group_rate": "groups with a pair",
    "prefix_frac": "shared prefix of a pair",
    "diverge_is_first_wrong": "pairs split at the worse path's first wrong step",
}


def runs(jobs: list) -> dict[str, list[dict]]:
    """{method: [summary, ...]} of the finished runs among `jobs` (the plan's, at the current choices:
    a summary left from other settings is not read)."""
    out: dict[str, list[dict]] = {}
    for job in jobs:
        if job.result.is_file():
            out.setdefault(job.method, []).append(json.loads(job.result.read_text()))
    return out


def split_of(summary: dict) -> str:
    return summary["config"]["callbacks"]["eval"]["split"]


def accuracy(summaries: list[dict]) -> tuple[float, float, int]:
    """Mean, 95% CI half-width and n of the final held-out accuracy."""
    accs = [held_out(s) for s in summaries]
    return float(np.mean(accs)), ci95_halfwidth(accs), len(accs)


def sample_of(summaries: list[dict]) -> Sample:
    """Mean, sample sd (ddof=1; NaN for one run) and n of the final held-out scores: a Welch input."""
    scores = [held_out(s) for s in summaries]
    sd = float(np.std(scores, ddof=1)) if len(scores) > 1 else math.nan
    return Sample(float(np.mean(scores)), sd, len(scores))


def fmt(mean: float, ci: float) -> str:
    return f"{100 * mean:.1f}" + ("" if math.isnan(ci) else f" ± {100 * ci:.1f}")


def start_accuracy(summaries: list[dict]) -> float:
    """The warm start's accuracy: the evaluation at step 0 of the row's runs (the same weights)."""
    first = [
        s["eval_history"][0].get(ACC, s["eval_history"][0].get(PASS1))
        for s in summaries
        if s["eval_history"] and s["eval_history"][0]["step"] == 0
    ]
    return float(np.mean(first)) if first else math.nan


def pair_mean(summaries: list[dict], key: str) -> float:
    vals = [s["pair_stats"].get(key) for s in summaries if isinstance(s.get("pair_stats"), dict)]
    vals = [v for v in vals if v is not None and not math.isnan(v)]
    return float(np.mean(vals)) if vals else math.nan


def tuning_table(choices: dict) -> list[str]:
    lines = [
        "## Tuning (val, chosen once, reused in every row)", "",
        f"Row `{TUNE_ROW}`, tuning seeds {', '.join(map(str, TUNE_SEEDS))}, greedy val accuracy at the end of "
        f"the budget (mean over the seeds). Grid: `optim.lr` in {{{', '.join(LRS)}}} x two values of the "
        "method's own knob (the first is today's default): 4 trials, 8 runs per method.", "",
        "| method | knob | trials (runs) | " + " | ".join(f"lr {lr}, knob {i + 1}" for lr in LRS for i in range(2))
        + " | chosen |",
        "|---|---|---:|" + "---:|" * 4 + "---|",
    ]  # fmt: skip
    for method, (knob, values) in KNOBS.items():
        if method not in choices:
            lines.append(f"| {method} | `{knob}` in {{{', '.join(values)}}} | not finished | | | | | |")
            continue
        c = choices[method]
        cells = [f"{100 * t['val_accuracy']:.1f}" for t in c["trials"]]
        chosen = ", ".join(f"`{k}={v}`" for k, v in c["settings"].items())
        lines.append(f"| {method} | `{knob}` in {{{', '.join(values)}}} | {c['n_trials']} ({c['runs']}) | "
                     + " | ".join(cells) + f" | {chosen} |")  # fmt: skip
    return lines + [""]


def row_table(row: str, by_method: dict[str, list[dict]]) -> list[str]:
    methods, about = ROWS[row]
    any_run = next(s for ss in by_method.values() for s in ss)
    sampler = any_run["config"]["sampler"]["_target_"].rsplit(".", 1)[-1]
    lines = [
        f"### `{row}`: {about}", "",
        f"{any_run['budget']['max_tokens']:,} generated tokens per run, sampler {sampler}, warm start "
        f"`{(any_run.get('warm_start') or {}).get('weights_sha256', '?')[:12]}`, greedy test accuracy "
        f"{100 * start_accuracy([s for ss in by_method.values() for s in ss]):.1f}% before RL.", "",
        "| method | test accuracy % (mean ± 95% CI) | runs | optimizer steps | tokens | "
        + " | ".join(PAIR_COLUMNS.values()) + " |",
        "|---|---:|---:|---:|---:|" + "---:|" * len(PAIR_COLUMNS),
    ]  # fmt: skip
    for method in methods:
        ss = by_method.get(method, [])
        if not ss:
            lines.append(f"| {method} | not run | 0 | | |" + " |" * len(PAIR_COLUMNS))
            continue
        assert all(split_of(s) == "test" for s in ss), (
            f"{row}/{method}: a reported run evaluated another split"
        )
        mean, ci, n = accuracy(ss)
        steps = np.mean([s["steps"] for s in ss])
        tokens = np.mean([s["tokens_generated"] for s in ss])
        cells = [pair_mean(ss, k) for k in PAIR_COLUMNS]
        if method == "grpo":  # no pairs: its signal is the groups with a spread
            cells = [c if k.startswith("groups_") else math.nan for k, c in zip(PAIR_COLUMNS, cells)]
        pairs = " | ".join("–" if math.isnan(c) else f"{c:.2f}" for c in cells)
        lines.append(f"| {method} | {fmt(mean, ci)} | {n} | {steps:.0f} | {tokens:,.0f} | {pairs} |")
    return lines + [""]


def verdict_table(rows: list[str], report: dict[str, dict[str, list[dict]]]) -> list[str]:
    tested = {}
    for row in rows:
        rec, *alts = ROWS[row][0]
        have = report[row]
        if all(len(have.get(m, [])) == len(REPORT_SEEDS) for m in (rec, *alts)):  # complete rows only
            tested[row] = (sample_of(have[rec]), {m: sample_of(have[m]) for m in alts})
    verdicts = recommendation_verdicts(tested)
    lines = [
        "## Table 2: which method to use when", "",
        "Held: the recommended method beats every alternative of its row (largest one-sided Welch p over "
        "the alternatives, Holm across the rows, < 0.05). Did not hold: an alternative beats it (smallest "
        "one-sided p, Holm across the rows, < 0.05). Otherwise: not shown. A row is judged only when every "
        "method of it has all its runs, and the Holm family is the judged rows. Test split, report seeds "
        f"{', '.join(map(str, REPORT_SEEDS))}.", "",
        "| row | recommended | its accuracy % | best alternative | its accuracy % | p, recommended > every "
        "alternative (Holm) | p, an alternative > recommended (Holm) | verdict |",
        "|---|---|---:|---|---:|---:|---:|---|",
    ]  # fmt: skip
    for row in rows:
        rec = ROWS[row][0][0]
        if row not in verdicts:
            done = sum(len(v) for v in report[row].values())
            lines.append(
                f"| `{row}` | {rec} | incomplete: {done}/{len(ROWS[row][0]) * len(REPORT_SEEDS)} runs | | | | | |"
            )
            continue
        v, have = verdicts[row], report[row]
        alt = max((m for m in have if m != rec), key=lambda m: sample_of(have[m]).mean)
        p = lambda x, who: "n/a" if math.isnan(x) else f"{x:.2g} ({who})"  # noqa: E731
        lines.append(f"| `{row}` | {rec} | {fmt(*accuracy(have[rec])[:2])} | {alt} | {fmt(*accuracy(have[alt])[:2])} | "
                     f"{p(v.p_held_holm, v.weakest)} | {p(v.p_failed_holm, v.strongest)} | {v.verdict} |")  # fmt: skip
    return lines + [""]


def spread_table(base: dict[str, list[dict]], other: dict[str, list[dict]]) -> list[str]:
    """Each method's mean from two warm starts (model.seed 0 and 1) of the reasoning row."""
    lines = [
        "## Spread between warm starts", "",
        "The seeds' CIs cover RL noise from one warm start. The reasoning row again from a second warm start "
        "(`model.seed=1`, its own SFT build; same report seeds) shows how far a method's mean moves "
        "between warm starts.", "",
        "| method | warm start model.seed=0 | warm start model.seed=1 | difference (pts) |",
        "|---|---:|---:|---:|",
    ]  # fmt: skip
    diffs = []
    for method in ROWS["table2_reasoning"][0]:
        if method in base and method in other:
            a, b = accuracy(base[method]), accuracy(other[method])
            diffs.append(100 * (b[0] - a[0]))
            lines.append(f"| {method} | {fmt(*a[:2])} | {fmt(*b[:2])} | {diffs[-1]:+.1f} |")
    if diffs:
        lines += [
            "",
            f"Mean absolute difference: {np.mean(np.abs(diffs)):.1f} points over {len(diffs)} methods.",
            "",
        ]
    return lines + [""]


def write_tables(choices: dict, path: Path = TABLES_MD) -> str:
    report = {row: runs(report_jobs([row], choices)) for row in ROWS}
    tune = runs(tuning_jobs())
    minutes = sum(s["wall_time_s"] for ss in [*report.values(), {"": [x for v in tune.values() for x in v]}]
                  for v in ss.values() for s in v) / 60  # fmt: skip
    lines = [
        "# The tournament: every method tuned alike on val, reported on test", "",
        "<!-- written by `python scripts/tournament.py tables` from results/tournament/; do not edit -->", "",
        f"Protocol: docs/protocol.md. Runs so far: {sum(len(v) for v in tune.values())} tuning, "
        f"{sum(len(v) for r in report.values() for v in r.values())} reported; {minutes:.0f} min of run time "
        "(one CPU thread each, two at a time).", "",
        *tuning_table(choices),
    ]  # fmt: skip
    table2 = [r for r in ROWS if r.startswith("table2_")]
    lines += verdict_table(table2, report)
    if report.get("spread_reasoning_model_seed1"):
        lines += spread_table(report["table2_reasoning"], report["spread_reasoning_model_seed1"])
    lines += ["## Every method per row", ""]
    for row in ROWS:
        if report[row]:
            lines += row_table(row, report[row])
        else:
            lines += [f"### `{row}`: {ROWS[row][1]}", "", "Not run yet.", ""]
    text = "\n".join(lines)
    path.write_text(text)
    return text
