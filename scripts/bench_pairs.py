# python scripts/bench_pairs.py                      # defaults: 20k generated tokens x 3 seeds per sampler
# python scripts/bench_pairs.py --budget 5000 --seeds 0   # a quick look
# python scripts/bench_pairs.py --set sampler.roots=1 sampler.branches=2   # another branch shape
# python scripts/bench_pairs.py --prefix-rules fraction   # only gfpo's rule before prefix_rule=lineage
"""Valid `gfpo` pairs per 1,000 generated tokens and per prompt group: independent vs branch sampling,
same token budget, under each of gfpo's prefix rules (`pairing.prefix_rule`, scored on the same samples).

On the embedded default (tiny SFT-warm-started model, task=arith), each sampler draws batches of the
same prompts until it has generated `--budget` tokens (`Rollouts.generated_tokens`: a branch
sampler's shared prefixes count once). A valid pair is one `pairing=gfpo` may choose: same prompt,
|r_i - r_j| > eps, and passing `prefix_rule` (gfpo_bench/pairing/gfpo.py, conf/pairing/gfpo.yaml):
`lineage` (the default: siblings of one root split at or after their cut; other paths split after
the first step's opening and share >= min_prefix_tokens) or `fraction` (the rule before: shared
completion prefix >= min_prefix_tokens and >= min_prefix_frac of the shorter completion). `all`
counts every valid pair; `kept` applies the strategy's cap of max_pairs_per_group, i.e. what a
training step would use; `/group` divides by the prompt groups sampled. Medians over seeds.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

import hydra
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from gfpo_bench.checkers.steps import first_wrong_step
from gfpo_bench.models.factory import build_model, max_context
from gfpo_bench.pairing import annotate
from gfpo_bench.rewards.reward import Reward

VARIANTS = {
    "independent": ["sampler=independent"],
    "branch/uniform": ["sampler=branch", "sampler.branch_at=uniform"],
    "branch/first_wrong": ["sampler=branch", "sampler.branch_at=first_wrong"],
    "branch/entropy": ["sampler=branch", "sampler.branch_at=entropy"],
}


def composed(overrides: list[str]):
    with initialize_config_module(config_module="gfpo_bench.conf", version_base="1.3"):
        return compose(config_name="config", overrides=["pairing=gfpo", *overrides])


def measure(
    cfg, model, tok, fmt, task, seed: int, budget: int, prompts: int, long_frac: float, rules: list[str]
) -> dict[str, dict]:
    """{prefix rule: its counts}, every rule scored on the same sampled batches."""
    sampler = hydra.utils.instantiate(cfg.sampler)(
        tokenizer=tok, formatter=fmt, max_context=max_context(model)
    )
    reward = Reward(OmegaConf.to_container(cfg.reward.weights), cfg.reward.process, cfg.reward.wrong_final)
    # cfg is composed with pairing=gfpo
    every = {r: hydra.utils.instantiate(cfg.pairing, prefix_rule=r, max_pairs_per_group=None) for r in rules}
    capped = {r: hydra.utils.instantiate(cfg.pairing, prefix_rule=r) for r in rules}
    pool = random.Random(seed).sample(task.problems("train"), 2000)  # same prompts for every sampler
    torch.manual_seed(seed)
    counts = {rule: dict.fromkeys(("all", "kept", "long", "hits", "with_wrong"), 0) for rule in rules}
    tokens = batches = 0
    t0 = time.time()
    while tokens < budget:
        problems = pool[batches * prompts : (batches + 1) * prompts]
        r = sampler.sample(model, task, problems)
        w = reward(task, r)
        for rule, c in counts.items():
            pairs = annotate(r, every[rule].select(r, w, random.Random(seed)))
            c["all"] += pairs.m
            c["long"] += int((pairs.prefix_frac >= long_frac).sum())
            c["kept"] += len(capped[rule].select(r, w, random.Random(seed)))
            for step, worse in zip(pairs.diverge_step.tolist(), pairs.worse.tolist()):
                fw = first_wrong_step(w.step_scores[worse])
                c["with_wrong"] += fw >= 0
                c["hits"] += fw >= 0 and fw == step
        tokens += r.generated_tokens
        batches += 1
    groups = batches * prompts
    return {
        rule: {
            "tokens": tokens,
            "all": 1000 * c["all"] / tokens,
            "kept": 1000 * c["kept"] / tokens,
            "all_group": c["all"] / groups,
            "kept_group": c["kept"] / groups,
            "long": 1000 * c["long"] / tokens,
            "first_wrong": c["hits"] / max(1, c["with_wrong"]),
            "tok_per_path": tokens / (groups * sampler.gen.k),
            "sec": time.time() - t0,  # sampling plus every rule's scoring
        }
        for rule, c in counts.items()
    }


COLUMNS = [  # (header, result key, is a count per 1k tokens: gets an "x indep" ratio column)
    ("all/1k", "all", True),
    ("kept/1k", "kept", True),
    ("all/group", "all_group", False),
    ("kept/group", "kept_group", False),
    ("long/1k", "long", True),
    ("div=1st wrong", "first_wrong", False),
    ("tok/path", "tok_per_path", False),
    ("sec", "sec", False),
]


def table(results: dict[str, list[dict]], long_frac: float) -> str:
    """Medians over seeds; `x ind` = ratio to the independent sampler's median."""

    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    width = [max(10, len(h) + 2) for h, _, _ in COLUMNS]
    cols = "".join(
        f"{h:>{w}}" + (f"{'x ind':>7}" if ratio else "") for (h, _, ratio), w in zip(COLUMNS, width)
    )
    head = f"{'sampler':<20}{cols}   all/1k per seed"
    lines = [head, "-" * len(head)]
    for name in results:
        cells = []
        for (_, key, ratio), w in zip(COLUMNS, width):
            cells.append(f"{med(name, key):>{w}.2f}")
            if ratio:
                ref = med("independent", key) if "independent" in results else float("nan")
                cells.append(f"{med(name, key) / ref if ref else float('inf'):>7.1f}")
        lines.append(
            f"{name:<20}" + "".join(cells) + "   " + " ".join(f"{r['all']:.1f}" for r in results[name])
        )
    lines.append(
        f"all: every valid pair; kept: after max_pairs_per_group; /group: per prompt group; long: valid and sharing >= {long_frac:.0%} "
        "of the shorter completion; div=1st wrong: valid pairs diverging at the worse path's first wrong step"
    )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=20000, help="generated tokens per sampler and seed")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--prompts", type=int, default=8, help="prompts per batch (prompts_per_step)")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument(
        "--long-frac",
        type=float,
        default=0.5,
        help="the `long` column: valid pairs sharing at least this fraction of the shorter completion",
    )
    ap.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="extra overrides for the branch variants, e.g. sampler.roots=1",
    )
    ap.add_argument(
        "--prefix-rules",
        nargs="+",
        default=["lineage", "fraction"],
        choices=["lineage", "fraction"],
        help="gfpo's pairing.prefix_rule values to score (on the same samples)",
    )
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the tiny model runs best on 1)")
    ap.add_argument("--json", help="also write the per-seed results here (rule -> sampler -> seeds)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    base = composed([])
    task = hydra.utils.instantiate(base.task)
    task_key = json.dumps(OmegaConf.to_container(base.task, resolve=True), sort_keys=True)  # as train.py
    model, tok, fmt = build_model(base.model, task, task_key)
    model.eval()

    results: dict[str, dict[str, list[dict]]] = {rule: {} for rule in args.prefix_rules}  # rule -> variant
    for name in args.variants:
        cfg = composed(VARIANTS[name] + (args.set if name.startswith("branch") else []))
        per_seed = [
            measure(
                cfg, model, tok, fmt, task, s, args.budget, args.prompts, args.long_frac, args.prefix_rules
            )
            for s in args.seeds
        ]
        for rule in args.prefix_rules:
            results[rule][name] = [seed_result[rule] for seed_result in per_seed]

    p = base.pairing
    for rule in args.prefix_rules:
        knobs = (
            f"min_prefix_tokens={p.min_prefix_tokens}, min_prefix_frac={p.min_prefix_frac}"
            if rule == "fraction"
            else f"min_prefix_tokens={p.min_prefix_tokens} for paths of different lineages"
        )
        print(
            f"\nprefix_rule={rule}{' (the default)' if rule == p.prefix_rule else ''}: valid gfpo pairs per "
            f"1,000 generated tokens and per group ({knobs}, eps={p.eps}); budget {args.budget} tokens x seeds "
            f"{args.seeds}, k={base.sampler.k}, {args.prompts} prompts/batch, "
            f"branch: {' '.join(args.set) or 'conf defaults'}"
        )
        print(table(results[rule], args.long_frac))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
