"""GRPO (gfpo_bench/grpo.py) equals TRL's GRPOTrainer on one fixed batch of the shipped warm start:
rewards, advantages, loss and every parameter's gradient, for each TRL loss_type gfpo-bench implements
(grpo, dapo, bnpo, dr_grpo) with a KL term, on-policy and with clipped ratios. The comparison is
scripts/check_grpo_vs_trl.py's (its module docstring says how; the script runs more cases); skipped
without trl, which gfpo-bench does not depend on."""

from __future__ import annotations

import importlib.util
import sys

import pytest
from helpers import REPO

pytest.importorskip("trl")


def check_script():
    """scripts/check_grpo_vs_trl.py as a module: the cases, the comparison and its tolerances."""
    spec = importlib.util.spec_from_file_location(
        "check_grpo_vs_trl", REPO / "scripts" / "check_grpo_vs_trl.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


CHECK = check_script()
# A subset of the script's cases, to stay under 30 s: every loss_type with the KL term (beta = 0 only
# drops that term), and the clip on the two normalisers that differ most (per path, constant).
CASES = [CHECK.Case(t, 0.04) for t in CHECK.AGGREGATION] + [
    CHECK.Case("grpo", 0.04, off_policy=True),
    CHECK.Case("dr_grpo", 0.04, off_policy=True),
]


@pytest.fixture(scope="module")
def batch():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func is marked experimental
        yield CHECK.load_batch()


def test_the_batch_is_one_trl_pads_as_we_do_and_has_a_signal(batch):
    r = batch.rollouts
    assert len(set(r.prompt_len.tolist())) == 1  # equal prompts: TRL's left padding adds nothing
    total = batch.rewards.total.tolist()
    spread = [len({total[i] for i in idx}) > 1 for idx in r.group_indices()]
    assert spread.count(True) >= 2 and spread.count(False) >= 1  # signal, and a zero-std group


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_loss_and_gradients_equal_trls(batch, case):
    row = CHECK.compare(batch, case)
    assert CHECK.within_tolerance(row), CHECK.table([row])
    if case.off_policy:
        assert row["clip_ours"] > 0  # the clip acted, on the same tokens as TRL's (within_tolerance)


def test_trls_default_ratio_weighted_kl_is_another_gradient(batch):
    """TRL's default use_bias_correction_kl=True multiplies the k3 KL by pi/pi_old: the same loss
    on-policy (the ratio is 1) but another gradient (d ratio = ratio x d logp). gfpo-bench's KL is the
    GRPO paper's; the comparison must see the difference, which is why its parity cases turn it off."""
    row = CHECK.compare(batch, CHECK.Case("dapo", 0.04, ratio_kl=True))
    assert row["d_loss"] <= CHECK.LOSS_ATOL
    assert row["d_grad_rel"] > 10 * CHECK.GRAD_RTOL  # measured 0.025
