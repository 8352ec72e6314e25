"""GRPO (gfpo_bench/grpo.py) against hand-computed values: advantages, each aggregation, the std-off
variant, the k3 KL, ratio clipping, and the zero gradient of a batch with no reward spread."""

from __future__ import annotations

import pytest
import torch
from helpers import comp, problem, rollouts

from gfpo_bench.errors import ConfigError
from gfpo_bench.grpo import GRPO, GRPOLoss, group_advantages

MASK = torch.tensor([[1, 1], [1, 0]], dtype=torch.bool)  # path 0: 2 completion tokens, path 1: 1
ADV = torch.tensor([1.0, -0.5])


def logp_leaf() -> torch.Tensor:
    return torch.tensor([[-1.0, -2.0], [-0.5, -3.0]], requires_grad=True)


def test_advantages_are_group_relative_with_the_unbiased_std():
    adv = group_advantages(torch.tensor([1.0, 0.0, 0.0, 0.0, 2.0, 2.0]), torch.tensor([0, 0, 0, 0, 1, 1]))
    # group 0: mean 0.25, unbiased std sqrt((0.75^2 + 3 * 0.25^2) / 3) = 0.5 -> 0.75 / 0.5001, -0.25 / 0.5001
    assert adv[:4].tolist() == pytest.approx([1.49970, -0.49990, -0.49990, -0.49990], abs=1e-5)
    assert adv[4:].tolist() == [0.0, 0.0]  # no spread: no advantage


def test_std_off_is_the_reward_minus_the_group_mean():
    adv = group_advantages(torch.tensor([1.0, 0.0, 0.0, 0.0]), torch.tensor([0, 0, 0, 0]), scale_std=False)
    assert adv.tolist() == pytest.approx([0.75, -0.25, -0.25, -0.25])


@pytest.mark.parametrize(
    ("aggregation", "loss", "grad"),
    [
        # per-token loss on-policy is -A: path 0 (-1, -1), path 1 (+0.5)
        # sequence: mean over paths of token means = ((-1 - 1) / 2 + 0.5 / 1) / 2 = -0.25;
        # d/dlogp: path 0 -A/|o|/P = -1/2/2 = -0.25 per token, path 1 +0.5/1/2 = +0.25
        ("sequence", -0.25, [[-0.25, -0.25], [0.25, 0.0]]),
        # token: one mean over 3 tokens = (-1 - 1 + 0.5) / 3 = -0.5; d/dlogp = -A / 3
        ("token", -0.5, [[-1 / 3, -1 / 3], [0.5 / 3, 0.0]]),
        # constant (Dr. GRPO): sum / (P * max_new_tokens) = -1.5 / (2 * 4) = -0.1875; d/dlogp = -A / 8
        ("constant", -0.1875, [[-0.125, -0.125], [0.0625, 0.0]]),
    ],
)
def test_each_aggregation_matches_hand_values(aggregation, loss, grad):
    logp = logp_leaf()
    out = GRPOLoss(aggregation=aggregation, max_new_tokens=4)(logp, None, MASK, ADV)
    out.loss.backward()
    assert out.loss.item() == pytest.approx(loss)
    assert torch.allclose(logp.grad, torch.tensor(grad))


def test_the_gradient_raises_the_better_paths_likelihood():
    logp = logp_leaf()
    GRPOLoss()(logp, None, MASK, ADV).loss.backward()
    assert (logp.grad[0] < 0).all()  # gradient descent raises logp where A > 0
    assert logp.grad[1, 0] > 0  # and lowers it where A < 0


def test_equal_rewards_give_no_signal_and_zero_gradient():
    adv = group_advantages(torch.tensor([0.7, 0.7]), torch.tensor([0, 0]))
    logp = logp_leaf()
    GRPOLoss()(logp, None, MASK, adv).loss.backward()
    assert adv.tolist() == [0.0, 0.0] and logp.grad.abs().sum() == 0


def test_the_k3_kl_term():
    logp = torch.tensor([[-1.0]], requires_grad=True)
    ref = logp.detach() + torch.log(torch.tensor(2.0))  # ref - logp = ln 2
    out = GRPOLoss(kl_coef=0.5)(logp, ref, torch.ones(1, 1, dtype=torch.bool), torch.zeros(1))
    # KL = exp(ln 2) - ln 2 - 1 = 0.306853; loss = 0.5 * KL (A = 0)
    assert out.kl.item() == pytest.approx(0.306853, abs=1e-6)
    assert out.loss.item() == pytest.approx(0.5 * 0.306853, abs=1e-6)
    with pytest.raises(ValueError, match="reference"):
        GRPOLoss(kl_coef=0.5)(logp, None, torch.ones(1, 1, dtype=torch.bool), torch.zeros(1))


def test_a_clipped_ratio_passes_no_gradient():
    logp = torch.tensor([[0.0, 0.0]], requires_grad=True)
    old = torch.tensor([[-0.4055, 0.0]])  # ratio exp(0.4055) = 1.5 > 1.2 on token 0, 1 on token 1
    out = GRPOLoss(aggregation="token")(
        logp, None, torch.ones(1, 2, dtype=torch.bool), torch.tensor([1.0]), old
    )
    out.loss.backward()
    # token 0: -min(1.5 * 1, 1.2 * 1) = -1.2 (clipped, constant); token 1: -1; mean = -1.1
    assert out.loss.item() == pytest.approx(-1.1, abs=1e-4)
    assert torch.allclose(logp.grad, torch.tensor([[0.0, -0.5]]))
    assert out.clip_frac.item() == pytest.approx(0.5)


def test_grpo_scores_every_path_of_the_batch():
    p = problem([3, 4, 2], ["+", "-"])
    batch, rewards = rollouts([(p, [comp("3+4=7", "7-2=5", answer="5"), comp("3+4=7", "7-2=4", answer="4")])])
    signal = GRPO()(batch, rewards, None)
    assert signal.paths().tolist() == [0, 1] and signal.has_signal
    assert signal.advantages[0] > 0 > signal.advantages[1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"aggregation": "mean"}, "pairing.aggregation='mean': must be one of sequence, token, constant"),
        ({"kl_coef": -0.1}, "pairing.kl_coef=-0.1: must be >= 0"),
        ({"clip_eps_low": 1.0}, "pairing.clip_eps_low=1.0: must be in (0, 1)"),
        ({"name": "srpo"}, "pairing name 'srpo' is the label of SRPOPairing"),
    ],
)
def test_bad_knobs_are_one_line_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        GRPO(**kwargs)


@pytest.mark.parametrize("value", [1.7, 1.2, 0.7, 0.2])
def test_a_group_of_eight_equal_rewards_has_exactly_zero_advantage(value):
    # a float32 mean of 8 equal values can be 1 ulp off; divided by std + 1e-4 (std ~ 1e-8) that
    # would be ~1e-3 on every path; a group without a spread gets exactly 0
    adv = group_advantages(torch.full((8,), value), torch.zeros(8, dtype=torch.long))
    assert adv.abs().max().item() == 0.0


def test_a_kl_term_is_a_signal_even_without_a_reward_spread():
    batch, rewards = rollouts([(problem([3, 4, 2], ["+", "-"]), [comp("3+4=7", "7-2=5", answer="5")] * 2)])
    assert not GRPO()(batch, rewards, None).has_signal  # equal rewards, no KL: the step is skipped
    assert GRPO(kl_coef=0.1)(batch, rewards, None).has_signal  # the KL term still has a gradient
