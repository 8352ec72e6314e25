"""The shared pairwise loss: hand-computed values, the divergence mask, the SFT term, one forward.

Every term of the default loss (conf/loss/pairwise.yaml: beta 0.1, sum form, reference, DPO-Positive
lambda 50) has a test here that fails without it; scripts/mutate_loss.py checks that claim."""

from __future__ import annotations

import math
import random

import torch
from helpers import comp, problem, rollouts

from gfpo_bench.loss import PairwiseLoss, divergence_mask
from gfpo_bench.pairing import build_pairing
from gfpo_bench.types import Pairs


def _pairs(better, worse, diverge, sft=()):
    t = lambda x: torch.tensor(x, dtype=torch.long)  # noqa: E731
    return Pairs(
        t(better), t(worse), t(diverge), t([0] * len(better)), torch.zeros(len(better)), t(list(sft))
    )


def test_hand_computed_value_sum_form():
    # two sequences of 4 tokens, completion = positions 1..3, diverging at position 2
    logp = torch.tensor([[0.0, -1.0, -0.5, -0.25], [0.0, -1.0, -2.0, -1.0]])
    mask = torch.tensor([[0, 1, 1, 1], [0, 1, 1, 1]], dtype=torch.bool)
    out = PairwiseLoss(beta=0.5, form="sum")(logp, None, mask, _pairs([0], [1], [2]))
    # A+ = 0.5 * (-0.5 - 0.25) = -0.375; A- = 0.5 * (-2 - 1) = -1.5; margin = 1.125
    # loss = -log(sigmoid(1.125)) = log(1 + e^-1.125) = 0.28187...
    assert math.isclose(out.margin.item(), 1.125, rel_tol=1e-6)
    assert math.isclose(out.loss.item(), math.log1p(math.exp(-1.125)), rel_tol=1e-6)


def test_hand_computed_value_mean_form_with_reference():
    logp = torch.tensor([[0.0, -1.0, -0.5, -0.25], [0.0, -1.0, -2.0, -1.0]])
    ref = torch.full_like(logp, -0.5)
    mask = torch.ones_like(logp, dtype=torch.bool)
    out = PairwiseLoss(beta=1.0, form="mean")(logp, ref, mask, _pairs([0], [1], [2]))
    # A+ = mean(-0.5+0.5, -0.25+0.5) = 0.125; A- = mean(-2+0.5, -1+0.5) = -1.0; margin = 1.125
    assert math.isclose(out.margin.item(), 1.125, rel_tol=1e-6)


def test_sft_term_is_token_level_mean_over_better_paths():
    logp = torch.tensor([[0.0, -1.0, -3.0, 0.0], [0.0, -2.0, 0.0, 0.0]])
    mask = torch.tensor([[0, 1, 1, 0], [0, 1, 0, 0]], dtype=torch.bool)
    out = PairwiseLoss(beta=1.0)(logp, None, mask, _pairs([0], [1], [1], sft=[0, 1]), sft_coef=0.5)
    # NLL over all 3 completion tokens of paths 0 and 1 (not per sequence): (1 + 3 + 2) / 3 = 2.0
    assert math.isclose(out.nll.item(), 2.0, rel_tol=1e-6)
    assert math.isclose(out.loss.item(), out.pairwise.item() + 0.5 * 2.0, rel_tol=1e-6)


# DPO-Positive (Pal et al. 2024), on by default: one pair of 4-token sequences, completion = positions
# 1..3, diverging at 2; the reference gives every token log-prob -0.5, so position 1 (shared) has
# log-ratio 0 and the worse path's log-ratio from d is -2.5 - 2.5 = -5.
REF = torch.full((2, 4), -0.5)
MASK = torch.tensor([[0, 1, 1, 1], [0, 1, 1, 1]], dtype=torch.bool)
BELOW_REF = [[0.0, -0.5, -1.0, -1.0], [0.0, -0.5, -3.0, -3.0]]  # better path's log-ratio from d: -1
ABOVE_REF = [[0.0, -0.5, -0.25, -0.25], [0.0, -0.5, -3.0, -3.0]]  # better path's log-ratio from d: +0.5


def _default_loss(logp_rows, positive_lambda: float = 50.0):
    logp = torch.tensor(logp_rows, requires_grad=True)
    out = PairwiseLoss(positive_lambda=positive_lambda)(logp, REF, MASK, _pairs([0], [1], [2]))
    out.loss.backward()
    return out, logp.grad


def test_dpo_positive_penalises_a_better_path_below_the_reference():
    out, _ = _default_loss(BELOW_REF)
    # A+ = 0.1 * -1 = -0.1; A- = 0.1 * -5 = -0.5; margin = 0.4
    # penalty = beta * lambda * max(0, 1) = 0.1 * 50 * 1 = 5; objective = 0.4 - 5 = -4.6
    # loss = -log sigmoid(-4.6) = log(1 + e^4.6) = 4.610002
    assert math.isclose(out.loss.item(), math.log1p(math.exp(4.6)), rel_tol=1e-6)
    # the reported margin is A+ - A- without the penalty, and it counts as a correct pair
    assert math.isclose(out.margin.item(), 0.4, rel_tol=1e-6)  # 0.4
    assert out.accuracy.item() == 1.0  # 1 of 1 margins > 0


def test_dpo_positive_is_inactive_above_the_reference():
    out, _ = _default_loss(ABOVE_REF)
    # A+ = 0.1 * 0.5 = 0.05; A- = -0.5; margin = 0.55; penalty = 0.1 * 50 * max(0, -0.5) = 0
    # loss = log(1 + e^-0.55) = 0.455492, the plain loss
    assert math.isclose(out.loss.item(), math.log1p(math.exp(-0.55)), rel_tol=1e-6)
    assert math.isclose(out.margin.item(), 0.55, rel_tol=1e-6)  # 0.55


def test_dpo_positive_gradient_raises_the_better_path():
    _, grad = _default_loss(BELOW_REF)
    # objective = (1 + lambda) * A+ - A-  while A+ < 0, and d loss / d objective = -sigmoid(4.6) = -0.990048
    # better tokens from d: -0.990048 * (1 + 50) * 0.1 = -5.049246 (descent raises their log-probs)
    # worse tokens from d: +0.990048 * 0.1 = +0.0990048; tokens before d: 0
    s = 1 / (1 + math.exp(-4.6))
    assert torch.allclose(grad[0, 2:], torch.full((2,), -s * 51 * 0.1))  # -5.049246
    assert torch.allclose(grad[1, 2:], torch.full((2,), s * 0.1))  # +0.0990048
    assert torch.all(grad[:, :2] == 0)
    # without the penalty the better path gets only -sigmoid(-0.4) * 0.1 = -0.0401312
    _, plain = _default_loss(BELOW_REF, positive_lambda=0.0)
    assert torch.allclose(plain[0, 2:], torch.full((2,), -0.1 / (1 + math.exp(0.4))))  # -0.0401312
    # above the reference the penalty adds nothing: -sigmoid(-0.55) * 0.1 = -0.0365864
    _, above = _default_loss(ABOVE_REF)
    assert torch.allclose(above[0, 2:], torch.full((2,), -0.1 / (1 + math.exp(0.55))))  # -0.0365864


def test_mean_form_averages_over_the_tokens_from_d_and_penalises_the_mean():
    # path 0: 4 completion tokens (1..4); path 1: 3 (1..3) then a pad; diverging at 2
    logp = torch.tensor([[0.0, -1.0, -1.0, -2.0, -3.0], [0.0, -1.0, -3.0, -4.0, 0.0]])
    ref = torch.full_like(logp, -1.0)
    mask = torch.tensor([[0, 1, 1, 1, 1], [0, 1, 1, 1, 0]], dtype=torch.bool)
    out = PairwiseLoss(beta=0.5, form="mean", positive_lambda=1.0)(logp, ref, mask, _pairs([0], [1], [2]))
    # log-ratios from d: path 0 (0, -1, -2) -> mean -1 over 3 tokens; path 1 (-2, -3) -> mean -2.5 over 2
    # (the pad's log-ratio +1 and the shared token 1 are not counted)
    # A+ = 0.5 * -1 = -0.5; A- = 0.5 * -2.5 = -1.25; margin = 0.75
    # penalty = 1 * max(0, 0.5) = 0.5 on the mean; objective = 0.25; loss = log(1 + e^-0.25) = 0.575939
    assert math.isclose(out.margin.item(), 0.75, rel_tol=1e-6)
    assert math.isclose(out.loss.item(), math.log1p(math.exp(-0.25)), rel_tol=1e-6)


def test_divergence_mask_keeps_completion_tokens_from_d_per_pair():
    completion = torch.tensor([[0, 1, 1, 1, 1], [0, 0, 1, 1, 0]], dtype=torch.bool)
    got = divergence_mask(completion, torch.tensor([0, 1, 0]), torch.tensor([2, 1, 4]))
    expected = torch.tensor(
        [
            [0, 0, 1, 1, 1],  # path 0 from d=2
            [0, 0, 1, 1, 0],  # path 1 from d=1: d inside the prompt still leaves the prompt and pad out
            [0, 0, 0, 0, 1],  # path 0 again, from d=4 (a path in two pairs gets each pair's d)
        ],
        dtype=torch.bool,
    )
    assert torch.equal(got, expected)


def test_tokens_before_d_do_not_count_in_the_sum_form():
    logp = torch.tensor([[-9.0, -7.0, -1.0, -1.0], [-9.0, -1.0, -2.0, -2.0]])
    out = PairwiseLoss(beta=1.0, positive_lambda=0.0)(logp, None, MASK, _pairs([0], [1], [2]))
    # A+ = -1 - 1 = -2; A- = -2 - 2 = -4; margin = 2 (counting position 1 it would be -9 - -5 = -4)
    assert math.isclose(out.margin.item(), 2.0, rel_tol=1e-6)


def test_margin_and_accuracy_over_several_pairs():
    # four paths, completion = positions 1..2, every pair diverging at 1
    logp = torch.tensor(
        [[0.0, -0.5, -0.5], [0.0, -1.0, -1.0], [0.0, -1.5, -1.5], [0.0, -1.0, -1.0]], requires_grad=True
    )
    mask = torch.tensor([[0, 1, 1]] * 4, dtype=torch.bool)
    pairs = _pairs([0, 2, 1], [1, 1, 3], [1, 1, 1])
    out = PairwiseLoss(beta=1.0, positive_lambda=0.0)(logp, None, mask, pairs)
    # sums from d: -1, -2, -3, -2 -> margins (0,1) = 1, (2,1) = -1, (1,3) = 0
    assert torch.allclose(out.margin, torch.tensor([1.0, -1.0, 0.0]))
    assert not out.margin.requires_grad
    assert math.isclose(out.accuracy.item(), 1 / 3, rel_tol=1e-6)  # a tie is not a correct pair: 1/3
    # loss = mean over pairs of log(1 + e^-margin) = (0.313262 + 1.313262 + 0.693147) / 3 = 0.773224
    expected = (math.log1p(math.exp(-1)) + math.log1p(math.exp(1)) + math.log(2)) / 3
    assert math.isclose(out.loss.item(), expected, rel_tol=1e-6)


def test_sft_term_alone_and_switched_off():
    logp = torch.tensor([[0.0, -5.0, -5.0, -5.0], [0.0, -1.0, -2.0, -7.0]], requires_grad=True)
    mask = torch.tensor([[0, 1, 1, 1], [0, 1, 1, 0]], dtype=torch.bool)
    pairs = Pairs.empty()
    pairs.sft_paths = torch.tensor([1])
    out = PairwiseLoss()(logp, REF, mask, pairs, sft_coef=0.5)
    # no pairs: pairwise 0; NLL over path 1's two completion tokens = (1 + 2) / 2 = 1.5; loss = 0.5 * 1.5
    assert out.pairwise.item() == 0.0 and out.margin.numel() == 0 and out.accuracy.item() == 0.0
    assert math.isclose(out.nll.item(), 1.5, rel_tol=1e-6)  # 1.5
    assert math.isclose(out.loss.item(), 0.75, rel_tol=1e-6)  # 0.75
    out.loss.backward()
    # d loss / d logp = -0.5 / 2 = -0.25 on path 1's completion tokens; 0 on path 0, the prompt, the pad
    expected = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.0, -0.25, -0.25, 0.0]])
    assert torch.equal(logp.grad, expected)
    off = PairwiseLoss()(logp, REF, mask, pairs, sft_coef=0.0)
    assert off.nll.item() == 0.0 and off.loss.item() == 0.0  # sft_coef 0: no NLL term at all


def test_shared_prefix_gets_zero_gradient_through_the_real_pipeline():
    p = problem([3, 4, 2], ["+", "-"])
    r, rew = rollouts([(p, [comp("3+4=7", "7-2=5", answer="5"), comp("3+4=7", "7-2=6", answer="6")])])
    pairs = build_pairing("gfpo", min_prefix_tokens=4)(r, rew, random.Random(0))
    assert pairs.m == 1
    logp = torch.randn(r.tokens.shape, requires_grad=True)
    for form in ("sum", "mean"):
        logp.grad = None
        PairwiseLoss(beta=0.1, form=form)(logp, None, r.completion_mask, pairs).loss.backward()
        d = int(pairs.diverge[0])
        assert torch.all(logp.grad[:, :d] == 0), f"{form}: prefix got gradient"
        assert torch.all(logp.grad[0, d : int(r.attention_mask[0].sum())] != 0), (
            f"{form}: divergent step got none"
        )


def test_each_unique_sequence_is_scored_once_per_step(monkeypatch):
    """module.signal_loss runs one policy forward over the unique sequences, however many pairs."""
    from helpers import TOK

    from gfpo_bench.models.tiny import build_tiny_model
    from gfpo_bench.module import PairwiseRLModule
    from gfpo_bench.schedule import PairingSchedule

    p = problem([3, 4, 2], ["+", "-"])
    texts = [comp("3+4=7", "7-2=5", answer="5"), comp("3+4=7", "7-2=6", answer="6"), "<answer>1</answer>"]
    r, rew = rollouts([(p, texts)])
    dapo = build_pairing("dapo", sft_coef=0.1)
    pairs = dapo(r, rew, random.Random(0))
    assert pairs.m == 3
    model = build_tiny_model(len(TOK), 32, 1, 2, 128, 0)
    calls = []
    model.register_forward_hook(lambda m, args, kw_out: calls.append(1))
    module = PairwiseRLModule(
        model,
        TOK,
        None,
        None,
        None,
        PairingSchedule.single(build_pairing("dapo")),
        PairwiseLoss(use_reference=False, positive_lambda=0.0),
        None,
    )
    out = module.signal_loss(r, pairs, dapo)
    assert len(calls) == 1 and torch.isfinite(out.loss)
