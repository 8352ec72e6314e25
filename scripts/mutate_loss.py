# python scripts/mutate_loss.py                          # every mutation against tests/test_loss.py
# python scripts/mutate_loss.py --only dpo_positive     # one mutation
# python scripts/mutate_loss.py -- tests/test_loss.py tests/test_divergence.py   # other test files
"""Mutation check of the shared loss: drop one term of gfpo_bench/loss.py at a time, run the tests.

Each mutation is one (old, new) string replacement in the source of gfpo_bench/loss.py as it is now.
The mutated source is written to a temp dir and, in a fresh Python process, registered as
`gfpo_bench.loss` before pytest imports anything; so the working-tree file is never edited (other
people may be reading or editing it). A mutation is `killed` when a test fails that passes on the
unmutated source, `survived` when none does. The unmutated source runs first; tests that already fail
there (someone's edit in progress elsewhere) are listed and do not count as kills.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOSS = REPO / "gfpo_bench" / "loss.py"

# name: (old, new), `old` must occur exactly once in loss.py
MUTATIONS: dict[str, tuple[str, str]] = {
    # the terms of the default loss
    "pairwise_term": ("LossOutput(pairwise + sft_coef * nll,", "LossOutput(sft_coef * nll,"),
    "logsigmoid": ("-F.logsigmoid(objective).mean()", "-objective.mean()"),
    "reference": ("logratio = logp - ref_logp if ref_logp is not None else logp", "logratio = logp"),
    "beta": ("return self.beta * total", "return total"),
    "divergence_mask": (
        "return completion_mask[index] & (pos[None, :] >= diverge[:, None])",
        "return completion_mask[index]",
    ),
    "dpo_positive": (
        "objective = margin - self.positive_lambda * torch.clamp(-a_pos, min=0.0)",
        "objective = margin",
    ),
    "sft_term": ("LossOutput(pairwise + sft_coef * nll,", "LossOutput(pairwise,"),
    "mean_normaliser": ("total = total / mask.sum(-1).clamp_min(1.0)", "total = total"),
    # subtler slips in the same terms
    "dpo_positive_sign": ("torch.clamp(-a_pos, min=0.0)", "torch.clamp(a_pos, min=0.0)"),
    "dpo_positive_without_beta": ("torch.clamp(-a_pos, min=0.0)", "torch.clamp(-a_pos / self.beta, min=0.0)"),
    "dpo_positive_on_worse": ("torch.clamp(-a_pos, min=0.0)", "torch.clamp(-a_neg, min=0.0)"),
    "dpo_positive_no_gradient": ("torch.clamp(-a_pos, min=0.0)", "torch.clamp(-a_pos.detach(), min=0.0)"),
    "dpo_positive_without_reference": (
        "if self.positive_lambda > 0 and ref_logp is not None:",
        "if self.positive_lambda > 0:",
    ),
    "divergence_mask_off_by_one": ("(pos[None, :] >= diverge[:, None])", "(pos[None, :] > diverge[:, None])"),
    "mean_over_whole_completion": ("total / mask.sum(-1)", "total / completion_mask[index].sum(-1)"),
    "sum_over_pairs": ("-F.logsigmoid(objective).mean()", "-F.logsigmoid(objective).sum()"),
    "accuracy_counts_ties": ("(margin > 0).float()", "(margin >= 0).float()"),
    "sft_ignores_coef_zero": ("if sft_coef > 0 and pairs.sft_paths.numel():", "if pairs.sft_paths.numel():"),
}

# Runs in the child: the mutated file becomes `gfpo_bench.loss`, then pytest runs in the same process.
CHILD = r"""
import importlib.util, json, sys
import pytest
import gfpo_bench
spec = importlib.util.spec_from_file_location("gfpo_bench.loss", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
sys.modules["gfpo_bench.loss"] = mod
spec.loader.exec_module(mod)
gfpo_bench.loss = mod
failed = []
class Collect:
    def pytest_runtest_logreport(self, report):
        if report.failed:
            failed.append(report.nodeid.split("::")[-1])
    def pytest_collectreport(self, report):
        if report.failed:
            failed.append("collection: " + report.nodeid)
code = pytest.main(["-q", "-p", "no:cacheprovider", *sys.argv[2:]], plugins=[Collect()])
# every module that imported PairwiseLoss must hold the mutated class, not a copy of the original
stale = [
    n for n, m in list(sys.modules.items())
    if getattr(m, "__dict__", {}).get("PairwiseLoss", mod.PairwiseLoss) is not mod.PairwiseLoss
]
print("MUTATE_LOSS_RESULT " + json.dumps({"code": int(code), "failed": failed, "stale": stale}))
"""


def run(source: str, tests: list[str], tmp: Path) -> dict:
    path = tmp / "loss.py"
    path.write_text(source)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), *tests], cwd=REPO, capture_output=True, text=True
    )
    for line in proc.stdout.splitlines():
        if line.startswith("MUTATE_LOSS_RESULT "):
            return json.loads(line.split(" ", 1)[1])
    raise RuntimeError(f"the test run printed no result:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(MUTATIONS), help="run only these mutations")
    parser.add_argument("tests", nargs="*", default=["tests/test_loss.py"], help="pytest arguments")
    args = parser.parse_args()
    original = LOSS.read_text()
    names = args.only or list(MUTATIONS)
    with tempfile.TemporaryDirectory() as tmp:
        base = run(original, args.tests, Path(tmp))
        if base["stale"] or base["code"] not in (0, 1):  # 1: some tests failed; anything else: no run
            sys.exit(f"the unmutated loss gives no usable run, no table: {base}")
        broken = set(base["failed"])
        if broken:
            print(f"already failing without a mutation (not counted): {', '.join(sorted(broken))}")
        print(f"{'mutation':32} {'result':9} tests that failed")
        survived = []
        for name in names:
            old, new = MUTATIONS[name]
            if original.count(old) != 1:
                print(f"{name:32} {'n/a':9} {old!r} occurs {original.count(old)} times in loss.py")
                continue
            res = run(original.replace(old, new), args.tests, Path(tmp))
            if res["stale"]:
                sys.exit(f"{name}: modules kept the unmutated PairwiseLoss: {res['stale']}")
            failed = [test for test in res["failed"] if test not in broken]
            killed = bool(failed) or res["code"] not in (0, 1)
            survived += [] if killed else [name]
            print(f"{name:32} {'killed' if killed else 'SURVIVED':9} {', '.join(failed)}", flush=True)
    if LOSS.read_text() != original:
        print("note: gfpo_bench/loss.py changed on disk during the run (someone else's edit)")
    sys.exit(1 if survived else 0)


if __name__ == "__main__":
    main()
