#!/usr/bin/env bash
# scripts/reproduce_tables.sh        # both tables, 3 seeds, 2 parallel jobs: ~35-60 min on a 2-core CPU
#
# Reproduces the two tables of the README (what each method learns; which method to use when). Each
# row is an experiment config (conf/experiment/table*.yaml) that fixes everything but the method,
# including an equal budget of generated tokens; this script sweeps the row's methods over seeds with
# the joblib launcher, compares each row with gfpo-bench-compare, and writes both tables to
# $TABLES_MD with the measured numbers.
#
#   SEEDS=0,1,2,3,4 N_JOBS=4 scripts/reproduce_tables.sh      # more seeds, more parallel jobs
#   ROWS="table1_pairs table2_noisy_reward" scripts/reproduce_tables.sh     # some rows only
#   BUDGET_SCALE=0.25 scripts/reproduce_tables.sh  # every row's token budget x 0.25 (a quick look)
#   EXTRA="callbacks.eval.max_problems=50" scripts/reproduce_tables.sh      # extra overrides, every run
#   LOGGER=default scripts/reproduce_tables.sh     # also W&B (offline without a key), group = row
#   DRY_RUN=1 scripts/reproduce_tables.sh          # print the sweeps, run nothing
#
# Running the same command again skips finished jobs and resumes interrupted ones (same $OUT).
#
# This script runs every method at today's defaults and reports val: a quick look, untuned for every
# method alike. The verdicts of record come from scripts/tournament.py, which follows docs/protocol.md
# (every method tuned alike on val, fresh seeds reported on test) and writes docs/tournament.md.
set -euo pipefail
cd "$(dirname "$0")/.."

SEEDS=${SEEDS:-0,1,2}               # seeds per method (a comma list, as Hydra sweeps it)
N_JOBS=${N_JOBS:-2}                 # runs in parallel (joblib); each uses one CPU thread
OUT=${OUT:-artifacts/tables}        # one sweep dir per row: $OUT/<experiment>
TABLES_MD=${TABLES_MD:-docs/tables.md}
LOGGER=${LOGGER:-csv}
SWITCH_FRAC=${SWITCH_FRAC:-0.5}     # schedules switch strategy at this fraction of the token budget
BUDGET_SCALE=${BUDGET_SCALE:-1}     # multiplies each row's budget.max_tokens (rows keep their ratios)
EXTRA=${EXTRA:-}
ROWS=${ROWS:-"table1_pairs table1_pairs_varied table2_small_compute table2_noisy_reward table2_reasoning table2_reasoning_varied table2_cold_start table2_sft_mixed table2_code"}
# Two threads per run on a 2-core machine shared by parallel runs make every run several times slower.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

# The methods of each row: one sweep per line (a schedule is a separate sweep into the same dir).
methods() {
  case $1 in
    table1_pairs*)        echo "pairing=srpo,vapo,gfpo,dapo,top2,random,grpo" ;;
    table2_small_compute) echo "pairing=srpo,vapo,dapo,gfpo,grpo" ;;
    table2_noisy_reward)  echo "pairing=vapo,srpo,dapo,gfpo,grpo,top2,random" ;;
    table2_reasoning*)    echo "pairing=gfpo,srpo,vapo,dapo,grpo" ;;
    table2_code)          echo "pairing=gfpo,srpo,vapo,dapo,grpo" ;;
    table2_cold_start)    echo "schedule=srpo_to_gfpo schedule.second.start_tokens_frac=$SWITCH_FRAC"
                          echo "pairing=gfpo,srpo,grpo" ;;
    table2_sft_mixed)     echo "schedule=dapo_to_gfpo schedule.second.start_tokens_frac=$SWITCH_FRAC"
                          echo "pairing=dapo,gfpo,grpo" ;;
    *) echo "unknown row: $1" >&2; return 1 ;;
  esac
}

t0=$(date +%s)
for row in $ROWS; do
  mapfile -t sweeps < <(methods "$row")
  budget=()
  if [[ $BUDGET_SCALE != 1 ]]; then
    tokens=$(gfpo-bench "experiment=$row" --cfg job -p budget | awk '/max_tokens/ {print $2}')
    budget=("budget.max_tokens=$(python -c "print(round($tokens * $BUDGET_SCALE))")")
  fi
  # Build the row's cached warm start in one process first: parallel jobs must not race to build it.
  # shellcheck disable=SC2206
  warm=(gfpo-bench "experiment=$row" stage=sft trainer.max_steps=1 callbacks.eval.max_problems=1 logger=csv
        "hydra.run.dir=$OUT/.warm_start/$row" $EXTRA)
  if [[ -n ${DRY_RUN:-} ]]; then echo "# warm start: ${warm[*]}"; else echo "== $row: warm start"; "${warm[@]}" > /dev/null; fi
  for sweep in "${sweeps[@]}"; do
    # shellcheck disable=SC2206
    cmd=(gfpo-bench -m "experiment=$row" $sweep "seed=$SEEDS" "${budget[@]}" "logger=$LOGGER" hydra/launcher=joblib
         "hydra.launcher.n_jobs=$N_JOBS" "hydra.sweep.dir=$OUT/$row" $EXTRA)
    if [[ -n ${DRY_RUN:-} ]]; then echo "${cmd[*]}"; else echo "== $row: $sweep (seeds $SEEDS)"; "${cmd[@]}"; fi
  done
  metric=val/math/accuracy; [[ $row == table2_code ]] && metric=val/code/pass@1
  [[ -n ${DRY_RUN:-} ]] || gfpo-bench-compare "$OUT/$row" --metrics $metric --out "$OUT/$row/comparison" > /dev/null
done
[[ -n ${DRY_RUN:-} ]] && exit 0

mkdir -p "$(dirname "$TABLES_MD")"
python - "$OUT" "$TABLES_MD" "$SEEDS" "$(( $(date +%s) - t0 ))" "$ROWS" "$BUDGET_SCALE" <<'EOF'
"""Both tables from the per-row comparisons (table.csv of gfpo-bench-compare) and the run summaries."""
import json
import math
import os
import sys
from pathlib import Path

import pandas as pd

from gfpo_bench.compare.stats import Sample, recommendation_verdicts

out, md_path, seeds, wall, rows, scale = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5].split(), sys.argv[6]
ACC, PASS1 = "val/math/accuracy", "val/code/pass@1"
PAIRS = {"srpo": "correct vs wrong path", "vapo": "highest vs lowest reward", "gfpo": "long shared prefix, split at one step",
         "dapo": "every informative pair (+ NLL, dynamic sampling)", "top2": "top-1 vs top-2 reward", "random": "any two with different reward",
         "grpo": "no pairs: group-relative advantages on every path"}
SITUATIONS = {  # row: (situation, recommended method)
    "table2_small_compute": ("small model / tight compute", "srpo"),
    "table2_noisy_reward": ("noisy reward (20% of R_final flipped)", "vapo"),
    "table2_reasoning": ("reasoning math (multi-step arithmetic)", "gfpo"),
    "table2_reasoning_varied": ("reasoning math, harmless variation before the first error", "gfpo"),
    "table2_code": ("code (pass@1 as accuracy)", "gfpo"),
    "table2_cold_start": ("cold start (weak warm start)", "srpo_to_gfpo"),
    "table2_sft_mixed": ("SFT + RL mixed", "dapo_to_gfpo"),
}


def table(row):
    """The row's comparison; a code row's pass@1 is read as its accuracy."""
    t = pd.read_csv(out / row / "comparison" / "table.csv").set_index("method")
    return t.rename(columns=lambda c: c.replace(PASS1, ACC))


def start_acc(row):
    """Greedy accuracy of the row's warm start, before any RL step (eval at step 0 of each run)."""
    hists = [json.loads(p.read_text()).get("eval_history") or [] for p in (out / row).glob("*/summary.json")]
    vals = [h[0].get(ACC, h[0].get(PASS1)) for h in hists if h and h[0]["step"] == 0]
    return sum(vals) / len(vals) if vals else math.nan


def budget(row):
    s = json.loads(next((out / row).glob("*/summary.json")).read_text())
    return s["budget"]["max_tokens"]


def acc(t, m):
    ci = t.loc[m, f"{ACC}:ci95"]
    return f"{t.loc[m, f'{ACC}:mean']:.3f}" + ("" if math.isnan(ci) else f" ± {ci:.3f}")


def sample(t, m):
    """A method's accuracy over seeds: mean, sd, n (gfpo_bench.compare.stats.Sample)."""
    return Sample(*(float(t.loc[m, f"{ACC}:{k}"]) for k in ("mean", "sd")), int(t.loc[m, f"{ACC}:n"]))


def pval(p, vs):
    return "n/a" if math.isnan(p) else f"{p:.2g} (vs {vs})"


runs = [json.loads(p.read_text()) for row in rows for p in (out / row).glob("*/summary.json")]
n_val = next((r["config"]["callbacks"]["eval"]["max_problems"] for r in runs if r.get("config")), "?")
run_min = sum(r.get("wall_time_s") or 0 for r in runs) / 60
lines = [f"<!-- scripts/reproduce_tables.sh SEEDS={seeds} BUDGET_SCALE={scale} on {os.cpu_count()} CPUs: {len(runs)} runs, "
         f"{run_min:.0f} min of run time; this invocation took {wall / 60:.0f} min -->", ""]
if "table1_pairs" in rows:
    t = table("table1_pairs")
    lines += ["### Table 1: what each method learns (pair statistics)", "",
              f"Same branched rollouts for every strategy (`experiment=table1_pairs`, {budget('table1_pairs'):,} generated "
              f"tokens per run, seeds {seeds}); means over the run's steps, then over seeds.", "",
              "| method | pairs | share of groups with a reward spread | share of groups with right and wrong paths | pairs per step | share of groups with a pair | mean reward gap of a pair | mean shared prefix of a pair | share of pairs split at the worse path's first wrong step | greedy val accuracy (mean ± 95% CI) |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for m in sorted(t.index, key=lambda m: list(PAIRS).index(m) if m in PAIRS else len(PAIRS)):
        g = lambda c: t.loc[m, f"pair/{c}:mean"] if f"pair/{c}:mean" in t else math.nan  # noqa: E731
        lines.append(f"| {m} | {PAIRS.get(m, '')} | {g('groups_with_spread'):.2f} | {g('groups_right_and_wrong'):.2f} | "
                     f"{g('pairs_per_step'):.1f} | {g('pairable_group_rate'):.2f} | "
                     f"{g('reward_gap'):.2f} | {g('prefix_frac'):.2f} | {g('diverge_is_first_wrong'):.2f} | {acc(t, m)} |")
    lines += ["", "Reward gap: R(better) - R(worse). Shared prefix: shared completion tokens / shorter completion. "
              "Split at the first wrong step: fraction of pairs whose divergent step is the worse path's first step "
              "the step verifier marks wrong.", ""]

t2 = [r for r in rows if r in SITUATIONS]
if t2:
    lines += ["### Table 2: which method to use when", "",
              f"Each row compares the recommended method with the alternatives at an equal budget of generated tokens, "
              f"seeds {seeds}; accuracy is greedy `{ACC}` on the {n_val} held-out problems after the budget is spent "
              "(mean ± 95% CI over seeds). Verdict (docs/protocol.md, `gfpo_bench.compare.stats.recommendation_verdicts`): "
              "held if the recommended method beats every alternative of its row (the largest one-sided Welch p over "
              "the alternatives, Holm-adjusted across the rows, < 0.05); did not hold if an alternative beats it (the "
              "smallest one-sided p of alternative > recommended, Holm across the rows, < 0.05); otherwise not shown.", "",
              "| situation | generated tokens per run | warm-start greedy accuracy | recommended | its accuracy | "
              "its share of groups with a pair | best alternative (by mean) | its accuracy | "
              "p, recommended > every alternative (max, Holm) | p, an alternative > recommended (min, Holm) | verdict |",
              "|---|---:|---:|---|---:|---:|---|---:|---:|---:|---|"]
    done = {row: table(row) for row in t2}
    tested = {row: (sample(t, SITUATIONS[row][1]), {m: sample(t, m) for m in t.index if m != SITUATIONS[row][1]})
              for row, t in done.items() if SITUATIONS[row][1] in t.index and len(t.index) > 1}
    verdicts = recommendation_verdicts(tested)
    for row in t2:
        situation, rec = SITUATIONS[row]
        t = done[row]
        if row not in verdicts:
            lines.append(f"| {situation} | | | {rec} | no completed run to compare | | | | | | |")
            continue
        v = verdicts[row]
        alt = t.drop(index=rec)[f"{ACC}:mean"].idxmax()
        mixed = t.loc[rec, "pair/pairable_group_rate:mean"] if "pair/pairable_group_rate:mean" in t else math.nan
        lines.append(f"| {situation} | {budget(row):,} | {start_acc(row):.3f} | {rec} | {acc(t, rec)} | {mixed:.2f} | {alt} | "
                     f"{acc(t, alt)} | {pval(v.p_held_holm, v.weakest)} | {pval(v.p_failed_holm, v.strongest)} | {v.verdict} |")
    lines.append("")
    lines += ["Every method per row, from `gfpo-bench-compare`:", ""]
    for row in t2:
        t = table(row)
        cells = ", ".join(f"{m} {acc(t, m)}" for m in t.index)
        lines.append(f"- `{row}`: {cells}")
    lines.append("")

md = "\n".join(lines)
md_path.write_text(md)
print(md)
print(f"wrote {md_path}; per-row reports: {out}/<row>/comparison/table.md")
EOF
