"""The fair tournament (docs/protocol.md): every method tuned alike on val, reported on test.

    python scripts/tournament.py status              # planned, done and left, per phase and row
    python scripts/tournament.py tune                # the tuning grid on the reasoning row (val)
    python scripts/tournament.py choose              # each method's settings, chosen on val
    python scripts/tournament.py report ROW [ROW ..] # chosen settings, fresh seeds, test split
    python scripts/tournament.py tables              # docs/tournament.md from the committed summaries

Tuning: every method gets the same grid, `LRS` x two values of one knob of its own (`KNOBS`; the
first value is today's default), each on `TUNE_SEEDS`, on `TUNE_ROW`, evaluated once at the end,
greedily, on val. `choose` takes the best mean over the tuning seeds (ties: the earlier grid point,
so the default wins a tie) and writes results/tournament/choices.json. Reporting: each row's
methods with their chosen settings on `REPORT_SEEDS` (none of the tuning seeds, the same for every
method), evaluated greedily on test at the start (the warm start) and at the end of the row's token
budget. A schedule (srpo_to_gfpo, ...) runs each stage with its method's chosen knobs and the first
stage's learning rate; schedules are not tuned of their own.

Every row uses the branch sampler (its experiment file says so; tests/test_tournament.py checks).
Each finished run's summary.json is copied to results/tournament/<phase>/<row>/<job>/, which is
committed: a job whose summary is there is done, so re-running any command skips it and a later
session continues where this one stopped. The runs themselves (checkpoints, models, logs) live under
artifacts/tournament/ (not committed); an interrupted run resumes from its last checkpoint.
Runs go `--jobs` at a time (default 2), one CPU thread each.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "tournament"
RUNS = ROOT / "artifacts" / "tournament"
CHOICES = RESULTS / "choices.json"
TABLES_MD = ROOT / "docs" / "tournament.md"

LRS = ("3e-05", "1e-04")
KNOBS = {  # method: (its own knob, two values: today's default first)
    "gfpo": ("pairing.prefix_rule", ("lineage", "fraction")),
    "srpo": ("pairing.max_pairs_per_group", ("4", "16")),
    "vapo": ("loss.beta", ("0.1", "0.3")),  # one pair per group: its only lever is the loss
    "dapo": ("pairing.eps", ("1e-06", "0.1")),
    "grpo": ("pairing.aggregation", ("token", "sequence")),
    "top2": ("loss.beta", ("0.1", "0.3")),  # one pair per group, as vapo
    "random": ("pairing.max_pairs_per_group", ("4", "16")),
}
SCHEDULES = {
    "srpo_to_gfpo": ("srpo", "gfpo"),
    "dapo_to_gfpo": ("dapo", "gfpo"),
    "grpo_to_gfpo": ("grpo", "gfpo"),
}
TUNE_ROW = "table2_reasoning"
TUNE_SEEDS = (100, 101)
REPORT_SEEDS = (200, 201, 202, 203)
# row: its methods, the recommended one first (Table 2), and what the row is about
ROWS = {
    "table1_pairs": (
        ("srpo", "vapo", "gfpo", "dapo", "top2", "random", "grpo"),
        "pair statistics, plain arith",
    ),
    "table1_pairs_varied": (
        ("srpo", "vapo", "gfpo", "dapo", "top2", "random", "grpo"),
        "pair statistics, arith with harmless variation",
    ),
    "table2_reasoning": (("gfpo", "srpo", "vapo", "dapo", "grpo"), "reasoning math (multi-step arithmetic)"),
    "table2_reasoning_varied": (
        ("gfpo", "srpo", "vapo", "dapo", "grpo"),
        "reasoning math, harmless variation before the first error",
    ),
    "table2_small_compute": (("srpo", "vapo", "dapo", "gfpo", "grpo"), "small model / tight compute"),
    "table2_noisy_reward": (
        ("vapo", "srpo", "dapo", "gfpo", "grpo", "top2", "random"),
        "noisy reward (20% of R_final flipped)",
    ),
    "table2_cold_start": (("srpo_to_gfpo", "gfpo", "srpo", "grpo"), "cold start (weak warm start)"),
    "table2_sft_mixed": (("dapo_to_gfpo", "dapo", "gfpo", "grpo"), "SFT + RL mixed"),
    "table2_code": (("gfpo", "srpo", "vapo", "dapo", "grpo"), "code (program writing, sandboxed tests)"),
    # not a Table 2 row: the reasoning row again from a second warm start (model.seed=1), to measure
    # how much the verdicts move between warm starts, which the seeds' CIs do not cover
    "spread_reasoning_model_seed1": (
        ("gfpo", "srpo", "vapo", "dapo", "grpo"),
        "reasoning math, warm start model.seed=1",
    ),
}
# a row that is another row's experiment with overrides of its own
VARIANTS = {"spread_reasoning_model_seed1": ("table2_reasoning", ["model.seed=1"])}
TUNE_EVAL = ["callbacks.eval.split=val", "callbacks.eval.at_start=false"]
REPORT_EVAL = ["callbacks.eval.split=test"]  # + the warm start's evaluation, once per row and method
COMMON = [
    "logger=csv",
    "callbacks.eval.every_n_steps=0",  # 0: only at the start (if at_start) and at the end
    "callbacks.eval.sampled_n=0",  # greedy only
    "callbacks.pair_table.every_n_steps=0",
]
ACC = "val/math/accuracy"  # the held-out metric's name, whichever split the run evaluated (its config says)
PASS1 = "val/code/pass@1"  # ... on a code task


def held_out(summary: dict) -> float:
    """A run's final held-out score: greedy accuracy (math) or pass@1 (code)."""
    metrics = summary["metrics"]
    return metrics[ACC] if ACC in metrics else metrics[PASS1]


def experiment(row: str) -> list[str]:
    """The overrides that select a row: its experiment config, and a variant's own overrides."""
    name, extra = VARIANTS.get(row, (row, []))
    return [f"experiment={name}", *extra]


@dataclass(frozen=True)
class Job:
    phase: str  # "tune" or "report"
    row: str  # an experiment config (conf/experiment/<row>.yaml)
    method: str  # a pairing (srpo, ..., grpo) or a schedule (srpo_to_gfpo, ...)
    settings: tuple[tuple[str, str], ...]  # the tuned overrides: optim.lr and the method's knob
    seed: int

    @property
    def name(self) -> str:
        knobs = ",".join(f"{k.split('.')[-1]}={v}" for k, v in self.settings)
        return f"{self.method}/{knobs}/seed={self.seed}"

    @property
    def result(self) -> Path:
        return RESULTS / self.phase / self.row / self.name / "summary.json"

    @property
    def run_dir(self) -> Path:
        return RUNS / self.phase / self.row / self.name

    def overrides(self) -> list[str]:
        out = [*experiment(self.row), *method_overrides(self.method, dict(self.settings))]
        out += [f"seed={self.seed}", *(TUNE_EVAL if self.phase == "tune" else REPORT_EVAL), *COMMON]
        if self.phase == "report":  # greedy, so the same for every seed: the first seed's run measures it
            out.append(f"callbacks.eval.at_start={str(self.seed == REPORT_SEEDS[0]).lower()}")
        return out + [f"hydra.run.dir='{self.run_dir}'"]  # quoted: the path holds '=' and ','


def method_overrides(method: str, settings: dict[str, str]) -> list[str]:
    """The overrides that run `method` with `settings`; a schedule's stages get their knobs."""
    if method not in SCHEDULES:
        return [f"pairing={method}", *(f"{k}={v}" for k, v in settings.items())]
    out = [f"schedule={method}", "schedule.second.start_tokens_frac=0.5"]
    for key, value in settings.items():
        stage, _, knob = key.partition(":")  # "first:pairing.eps" -> schedule.first.pairing.eps
        out.append(f"schedule.{stage}.{knob}={value}" if knob else f"{key}={value}")
    return out


def tuning_jobs(methods=tuple(KNOBS)) -> list[Job]:
    jobs = []
    for method in methods:
        knob, values = KNOBS[method]
        for lr in LRS:
            for value in values:
                for seed in TUNE_SEEDS:
                    jobs.append(Job("tune", TUNE_ROW, method, (("optim.lr", lr), (knob, value)), seed))
    return jobs


def chosen_settings(method: str, choices: dict) -> tuple[tuple[str, str], ...]:
    """A method's tuned overrides; a schedule's: its stages' knobs and its first stage's lr."""
    if method not in SCHEDULES:
        return tuple(choices[method]["settings"].items())
    first, second = (choices[m]["settings"] for m in SCHEDULES[method])
    out = [("optim.lr", first["optim.lr"])]
    for stage, picked in (("first", first), ("second", second)):
        knobs = {k: v for k, v in picked.items() if k != "optim.lr"}
        if any(not k.startswith("pairing.") for k in knobs):  # e.g. loss.beta: one value for both stages
            raise SystemExit(f"{method}: a stage's tuned knob is not its pairing's ({knobs}); no rule for it")
        out += [(f"{stage}:{k}", v) for k, v in knobs.items()]
    names = [k.split(".")[-1] for k, _ in out]
    if len(set(names)) != len(names):  # Job.name keys a result dir by the knobs' last parts
        raise SystemExit(f"{method}: both stages tune {names}; the job name would not tell them apart")
    return tuple(out)


def report_jobs(rows: list[str], choices: dict) -> list[Job]:
    jobs = []
    for row in rows:
        for method in ROWS[row][0]:
            needed = SCHEDULES.get(method, (method,))
            if any(m not in choices for m in needed):
                continue  # not tuned yet: `status` lists it
            for seed in REPORT_SEEDS:
                jobs.append(Job("report", row, method, chosen_settings(method, choices), seed))
    return jobs


# --- running ----------------------------------------------------------------------------------
def prebuild_warm_start(row: str) -> None:
    """Build (or load) the row's warm start once, before parallel jobs could race to build it."""
    cmd = ["gfpo-bench", *experiment(row), "stage=sft", "trainer.max_steps=1", "callbacks.eval.max_problems=1",
           "callbacks.eval.at_start=false", "logger=csv", f"hydra.run.dir={RUNS / '.warm_start' / row}"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env=run_env())
    if done.returncode != 0:
        sys.exit(f"warm start of {row} failed:\n{done.stderr[-2000:]}")


def run_env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "WANDB_MODE": "offline"}


def run_job(job: Job) -> tuple[Job, bool, str]:
    job.run_dir.mkdir(parents=True, exist_ok=True)
    with open(job.run_dir / "tournament.log", "a") as log:
        done = subprocess.run(
            ["gfpo-bench", *job.overrides()], stdout=log, stderr=subprocess.STDOUT, env=run_env()
        )
    summary = job.run_dir / "summary.json"
    if done.returncode != 0 or not summary.is_file():
        return job, False, f"exit {done.returncode}; log: {job.run_dir / 'tournament.log'}"
    data = json.loads(summary.read_text())
    if data.get("status") != "completed":
        return job, False, f"status {data.get('status')}: {data.get('error')}"
    job.result.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(summary, job.result)
    return job, True, f"{held_out(data):.3f} in {data['wall_time_s'] / 60:.1f} min"


def run_jobs(jobs: list[Job], n_jobs: int) -> int:
    pending = [j for j in jobs if not j.result.is_file()]
    print(
        f"{len(jobs)} jobs, {len(jobs) - len(pending)} already done, {len(pending)} to run ({n_jobs} at a time)"
    )
    failed = 0
    with ThreadPoolExecutor(n_jobs) as pool, tqdm(total=len(pending), desc="runs", unit="run") as bar:
        # the rows' warm starts first, `n_jobs` at a time (a cached one loads in seconds), so that
        # parallel runs never race to build one
        list(pool.map(prebuild_warm_start, dict.fromkeys(j.row for j in pending)))
        for future in as_completed([pool.submit(run_job, j) for j in pending]):
            job, ok, info = future.result()
            failed += not ok
            bar.write(f"{'done' if ok else 'FAILED'} {job.phase}/{job.row}/{job.name}: {info}")
            bar.update()
    if failed:
        print(f"{failed} runs failed; their logs are named above. Re-running retries them.")
    return failed


# --- choosing and reporting -------------------------------------------------------------------
def load(path: Path) -> dict:
    return json.loads(path.read_text())


def choose() -> dict:
    """Each method's best grid point by mean val accuracy over the tuning seeds (complete grids only)."""
    choices = {}
    for method in KNOBS:
        trials = {}
        for job in tuning_jobs([method]):
            trials.setdefault(job.settings, []).append(job)
        if not all(j.result.is_file() for js in trials.values() for j in js):
            print(f"{method}: tuning incomplete, not chosen")
            continue
        scored = []
        for settings, js in trials.items():
            summaries = [load(j.result) for j in js]
            assert all(s["config"]["callbacks"]["eval"]["split"] == "val" for s in summaries)
            accs = [held_out(s) for s in summaries]
            scored.append(
                {"settings": dict(settings), "val_accuracy": float(np.mean(accs)), "per_seed": accs}
            )
        best = max(scored, key=lambda t: t["val_accuracy"])  # max keeps the first of equals: the default
        choices[method] = {"settings": best["settings"], "trials": scored, "n_trials": len(scored),
                           "runs": sum(len(js) for js in trials.values()), "tuning_seeds": list(TUNE_SEEDS)}  # fmt: skip
        print(f"{method}: {best['settings']} (val {best['val_accuracy']:.3f}; {len(scored)} trials)")
    CHOICES.parent.mkdir(parents=True, exist_ok=True)
    CHOICES.write_text(json.dumps(choices, indent=2) + "\n")
    return choices


def status(choices: dict) -> None:
    tune = tuning_jobs()
    print(f"tune ({TUNE_ROW}, seeds {TUNE_SEEDS}): {sum(j.result.is_file() for j in tune)}/{len(tune)} done")
    for row, (methods, _) in ROWS.items():
        jobs = report_jobs([row], choices)
        waiting = [m for m in methods if any(x not in choices for x in SCHEDULES.get(m, (m,)))]
        print(f"report {row}: {sum(j.result.is_file() for j in jobs)}/{len(methods) * len(REPORT_SEEDS)} done"
              + (f" (waiting for tuning: {', '.join(waiting)})" if waiting else ""))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["status", "tune", "choose", "report", "tables"])
    parser.add_argument("rows", nargs="*", help=f"report: rows to run ({', '.join(ROWS)})")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time, one CPU thread each")
    parser.add_argument("--methods", nargs="*", default=list(KNOBS), help="tune: these methods only")
    args = parser.parse_args()
    choices = load(CHOICES) if CHOICES.is_file() else {}
    if args.command == "status":
        status(choices)
    elif args.command == "tune":
        sys.exit(1 if run_jobs(tuning_jobs(args.methods), args.jobs) else 0)
    elif args.command == "choose":
        choose()
    elif args.command == "report":
        unknown = [r for r in args.rows if r not in ROWS]
        if unknown or not args.rows:
            sys.exit(
                f"report: name rows from {', '.join(ROWS)}" + (f" (unknown: {unknown})" if unknown else "")
            )
        sys.exit(1 if run_jobs(report_jobs(args.rows, choices), args.jobs) else 0)
    else:
        from tournament_tables import write_tables

        print(write_tables(choices))


if __name__ == "__main__":
    t0 = time.time()
    main()
    print(f"({(time.time() - t0) / 60:.1f} min)")
