"""Divergence bookkeeping on hand-built paths, and the loss's credit: zero gradient on the prefix."""

from __future__ import annotations

import math
import random

import pytest
import torch

from gfpo_bench.loss import PairwiseLoss
from gfpo_bench.models.prompting import PromptFormatter
from gfpo_bench.models.tokenizer import build_char_tokenizer
from gfpo_bench.pairing import annotate
from gfpo_bench.pairing.gfpo import GFPOPairing
from gfpo_bench.rewards.reward import Reward
from gfpo_bench.sampling.base import rollouts_from_texts
from gfpo_bench.tasks.arith import ArithTask
from gfpo_bench.types import Problem

# prompt "1+2+4=?\n" is 8 tokens (char-level); completion tokens: <think> \n 1+2=3\n 3+4=7\n </think> \n
# <answer> 7 </answer> <eos> = 1+1+6+6+1+1+1+1+1+1 = 20; step spans (absolute) [10,16) and [16,22)
GOOD = "<think>\n1+2=3\n3+4=7\n</think>\n<answer>7</answer>"
WRONG_STEP = "<think>\n1+2=3\n3+4=8\n</think>\n<answer>8</answer>"  # differs at the 13th completion token
WRONG_ANSWER = "<think>\n1+2=3\n3+4=7\n</think>\n<answer>9</answer>"  # differs after the last step
NO_STEPS_A, NO_STEPS_B = "<answer>7</answer>", "<answer>8</answer>"  # 4 tokens each with eos


@pytest.fixture(scope="module")
def rollouts():
    tok, task = build_char_tokenizer(), ArithTask()
    p = Problem("hand/0", "1+2+4=?", "7", GOOD, meta={"nums": [1, 2, 4], "ops": ["+", "+"]})
    texts = [GOOD, WRONG_STEP, WRONG_ANSWER, NO_STEPS_A, NO_STEPS_B, GOOD]
    return rollouts_from_texts(tok, PromptFormatter(), task, [p], [texts])


def test_hand_built_paths_are_what_the_comments_say(rollouts):
    assert rollouts.prompt_len.tolist() == [8] * 6
    assert rollouts.completion_mask.sum(-1).tolist() == [20, 20, 20, 4, 4, 20]
    assert rollouts.step_spans[0] == [(10, 16), (16, 22)]


def test_divergence_position_step_and_prefix_fraction(rollouts):
    pairs = annotate(rollouts, [(0, 1), (0, 2), (3, 4), (0, 3), (0, 5)])
    # (0, 5) are identical sequences: dropped, no signal
    assert pairs.better.tolist() == [0, 0, 3, 0] and pairs.worse.tolist() == [1, 2, 4, 3]
    # wrong step: 8 prompt + 12 shared completion tokens ("<think>", "\n", "1+2=3\n", "3+4=")
    # wrong answer: 8 + 17 ("... </think>", "\n", "<answer>"); no steps: 8 + 1 ("<answer>"); (0, 3): 8 + 0
    assert pairs.diverge.tolist() == [20, 25, 9, 8]
    # step 1 holds position 20; 25 is past both steps (= 2, the answer); no steps: -1; 8 is before step 0
    assert pairs.diverge_step.tolist() == [1, 2, -1, 0]
    # shared completion tokens / shorter completion: 12/20, 17/20, 1/4, 0/4
    assert pairs.prefix_frac.tolist() == pytest.approx([0.6, 0.85, 0.25, 0.0])


@pytest.mark.parametrize("prefix_rule", ["fraction", "lineage"])
def test_gfpo_keeps_only_long_shared_prefixes(rollouts, prefix_rule):
    rewards = Reward()(ArithTask(), rollouts)
    strategy = GFPOPairing(
        prefix_rule=prefix_rule, min_prefix_tokens=4, min_prefix_frac=0.2, max_pairs_per_group=None
    )
    chosen = strategy.select(rollouts, rewards, random.Random(0))
    # R: GOOD 1.7, WRONG_STEP 0.2 (process mean(1, -1) = 0), WRONG_ANSWER 0.7, NO_STEPS_A 1.0, B 0.0.
    # The no-step pair shares 1 token and GOOD vs NO_STEPS 0: not gfpo pairs under either rule (lineage:
    # no step opens); GOOD vs GOOD: no gap
    assert set(chosen) == {(0, 1), (0, 2), (5, 1), (5, 2), (2, 1)}
    assert chosen[:2] in ([(0, 2), (5, 2)], [(5, 2), (0, 2)])  # longest shared prefix (17) first


def test_gfpo_lineage_wants_the_first_step_opened_together():
    """Independent paths under prefix_rule=lineage: a split inside step 0 (its opening "1+2=" shared)
    passes; a split at step 0's first token does not, however many tokens came before it."""
    tok, task = build_char_tokenizer(), ArithTask()
    p = Problem("hand/0", "1+2+4=?", "7", GOOD, meta={"nums": [1, 2, 4], "ops": ["+", "+"]})
    result_wrong = "<think>\n1+2=4\n4+4=8\n</think>\n<answer>8</answer>"  # splits at completion token 6
    order_swapped = "<think>\n2+1=3\n3+4=8\n</think>\n<answer>8</answer>"  # splits at token 2, step 0's start
    r = rollouts_from_texts(tok, PromptFormatter(), task, [p], [[GOOD, result_wrong, order_swapped]])
    assert r.step_spans[0][0] == (10, 16)  # step 0 opens at completion token 2
    rewards = Reward()(task, r)
    lineage = GFPOPairing(min_prefix_tokens=0, max_pairs_per_group=None)
    # path 2 parts from both others at step 0's first token
    assert sorted(lineage.select(r, rewards, random.Random(0))) == [(0, 1)]
    fraction = GFPOPairing(prefix_rule="fraction", min_prefix_tokens=0, max_pairs_per_group=None)
    assert fraction.select(r, rewards, random.Random(0)) == []  # 6/20 and 2/20 of a completion < 0.5


def loss_and_grad(rollouts, form: str, pairs):
    n, width = rollouts.tokens.shape
    # better path -0.5 per token, worse path -1.0 per token, everywhere (a leaf, so .grad is exact)
    logp = torch.full((n, width), -1.0)
    logp[pairs.better] = -0.5
    logp.requires_grad_(True)
    out = PairwiseLoss(beta=0.1, form=form)(logp, None, rollouts.completion_mask, pairs)
    out.loss.backward()
    return out, logp.grad


@pytest.mark.parametrize("form", ["sum", "mean"])
def test_prefix_gets_exactly_zero_gradient(rollouts, form):
    pairs = annotate(rollouts, [(0, 1)])  # diverge at 20, completion ends at 28
    out, grad = loss_and_grad(rollouts, form, pairs)
    if form == "sum":
        # A+ = 0.1 * 8 * -0.5 = -0.4, A- = 0.1 * 8 * -1.0 = -0.8, margin 0.4
        # L = -log sigmoid(0.4) = log(1 + e^-0.4) = 0.51302; dL/dlogp = -/+ 0.1 * sigmoid(-0.4) = 0.0401312
        expect_loss, expect_g = 0.51302, 0.1 * (1 / (1 + math.exp(0.4)))
    else:
        # A+ = 0.1 * mean(-0.5) = -0.05, A- = -0.1, margin 0.05; L = log(1 + e^-0.05) = 0.66846
        # dL/dlogp = -/+ 0.1 * sigmoid(-0.05) / 8 = 0.0060938 per token from d
        expect_loss, expect_g = 0.66846, 0.1 * (1 / (1 + math.exp(0.05))) / 8
    assert out.loss.item() == pytest.approx(expect_loss, abs=1e-5)
    assert out.margin.tolist() == pytest.approx([0.4 if form == "sum" else 0.05], abs=1e-6)
    assert torch.all(grad[:, :20] == 0)  # prompt and shared prefix: exactly zero, both paths
    assert grad[0, 20:28] == pytest.approx(torch.full((8,), -expect_g), abs=1e-7)  # raise x+ from d on
    assert grad[1, 20:28] == pytest.approx(torch.full((8,), expect_g), abs=1e-7)  # lower x- from d on
    assert torch.all(grad[2:] == 0)  # paths in no pair


def test_without_the_mask_the_mean_form_would_credit_the_prefix(rollouts):
    """Why the mean form masks the prefix explicitly: counted from the completion start instead of
    from d, the shared tokens 10..19 of both paths get gradient."""
    unmasked = annotate(rollouts, [(0, 1)])
    unmasked.diverge = rollouts.prompt_len[unmasked.better]  # d -> first completion token
    _, grad = loss_and_grad(rollouts, "mean", unmasked)
    assert torch.all(grad[0, 8:20] != 0) and torch.all(grad[1, 8:20] != 0)
