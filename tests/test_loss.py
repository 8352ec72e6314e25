"""The shared pairwise loss: hand-computed values, the divergence mask, the SFT term, one forward."""

from __future__ import annotations

import math
import random

import torch
from helpers import comp, problem, rollouts

from gfpo_bench.loss import PairwiseLoss
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
    """module.pair_loss runs one policy forward over the unique sequences, however many pairs."""
    from helpers import TOK

    from gfpo_bench.models.tiny import build_tiny_model
    from gfpo_bench.module import PairwiseRLModule
    from gfpo_bench.schedule import PairingSchedule

    p = problem([3, 4, 2], ["+", "-"])
    texts = [comp("3+4=7", "7-2=5", answer="5"), comp("3+4=7", "7-2=6", answer="6"), "<answer>1</answer>"]
    r, rew = rollouts([(p, texts)])
    pairs = build_pairing("dapo")(r, rew, random.Random(0))
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
    out = module.pair_loss(r, pairs, sft_coef=0.1)
    assert len(calls) == 1 and torch.isfinite(out.loss)
