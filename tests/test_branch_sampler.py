"""sampler=branch on the real tiny model: shared prefixes, prefix encoded once, bookkeeping, rules."""

from __future__ import annotations

import json
import random

import hydra
import pytest
import torch
from helpers import compose_cfg
from hydra.utils import instantiate
from omegaconf import OmegaConf

from gfpo_bench.errors import ConfigError
from gfpo_bench.loss import PairwiseLoss
from gfpo_bench.models.factory import build_model, max_context
from gfpo_bench.models.logprobs import token_logprobs
from gfpo_bench.pairing import PAIRINGS, build_pairing
from gfpo_bench.rewards.reward import Reward
from gfpo_bench.sampling.base import SAMPLERS
from gfpo_bench.sampling.branch import BRANCH_RULES, BranchSampler, RootView, continue_from
from gfpo_bench.tasks.format import parse_completion

K, P = 8, 4


@pytest.fixture(scope="module")
def env():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model: one thread is fastest, and the box is shared
    cfg = compose_cfg(["sampler=branch", f"sampler.k={K}"])
    task = hydra.utils.instantiate(cfg.task)
    key = json.dumps(OmegaConf.to_container(cfg.task, resolve=True), sort_keys=True)  # as train.py
    model, tok, fmt = build_model(cfg.model, task, key)
    model.eval()
    yield cfg, task, model, tok, fmt
    torch.set_num_threads(threads)


def sampler(env, **kw) -> BranchSampler:
    cfg, task, model, tok, fmt = env
    k = kw.pop("k", K)
    return BranchSampler(tok, fmt, max_context(model), k=k, max_new_tokens=cfg.sampler.max_new_tokens, **kw)


class ForwardLog:
    """Records input_ids.shape of every forward call of the model."""

    def __init__(self, model):
        self.shapes: list[tuple[int, int]] = []
        self.handle = model.register_forward_pre_hook(self.hook, with_kwargs=True)

    def hook(self, module, args, kwargs):
        self.shapes.append(tuple(kwargs["input_ids"].shape))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


@pytest.fixture(scope="module")
def batch(env):
    """One batch from the configured sampler (conf/sampler/branch.yaml), with its forward calls."""
    cfg, task, model, tok, fmt = env
    s = instantiate(cfg.sampler)(tokenizer=tok, formatter=fmt, max_context=max_context(model))
    torch.manual_seed(0)
    # problems whose chain needs a carry: the warm start's habit (it drops carries ~60% of the time
    # when sampling) makes those groups mixed, so every strategy has pairs to choose from
    problems = [p for p in task.problems("train") if needs_carry(p)][:P]
    with ForwardLog(model) as log:
        r = s.sample(model, task, problems)
    return s, r, log.shapes


def needs_carry(problem) -> bool:
    nums, ops, acc = problem.meta["nums"], problem.meta["ops"], problem.meta["nums"][0]
    for op, x in zip(ops, nums[1:]):
        res = acc + x if op == "+" else acc - x
        if min(acc, res) >= 0 and acc // 10 != res // 10:
            return True
        acc = res
    return False


def test_config_builds_a_full_group(batch):
    s, r, _ = batch
    assert isinstance(s, BranchSampler) and "branch" in SAMPLERS
    assert s.group_size == K  # roots=2, branches=1, siblings=null -> 2 roots + 2 x 3 siblings
    assert [len(g) for g in r.group_indices()] == [K] * P
    assert int((r.parent == -1).sum()) == P * s.roots


def test_siblings_share_the_prefix_token_for_token(batch, env):
    _, r, _ = batch
    tok = env[3]
    n_siblings = 0
    for i in range(r.n):
        par, pos = int(r.parent[i]), int(r.branch_pos[i])
        if par < 0:
            assert pos == -1
            continue
        n_siblings += 1
        assert int(r.parent[par]) == -1 and int(r.group[par]) == int(r.group[i])
        assert int(r.prompt_len[i]) <= pos < int(r.attention_mask[par].sum())
        assert torch.equal(r.tokens[i, :pos], r.tokens[par, :pos])  # prompt + prefix, token for token
        spans = r.step_spans[par]
        if spans:  # cut at a step start of the root
            assert pos in [a for a, _ in spans]
        assert r.completion_mask[i, int(r.prompt_len[i]) : pos].all()  # the prefix is part of the completion
    assert n_siblings == P * (K - 2)
    assert r.texts[0] == tok.decode(
        [t for t in r.tokens[0][r.completion_mask[0]].tolist() if t != tok.eos_token_id]
    )


def test_generated_tokens_count_each_prefix_once(batch):
    _, r, _ = batch
    completion = r.completion_mask.sum(-1)  # [N]
    copied = torch.where(
        r.parent >= 0, r.branch_pos - r.prompt_len, 0
    )  # [N] prefix tokens copied from the root
    assert r.generated_tokens == int((completion - copied).sum())
    assert r.generated_tokens < int(completion.sum())  # some prefix was shared, not regenerated


def test_prompt_and_prefix_are_encoded_once(batch):
    """Only two forward calls see more than one token per row: the prompt pass (one row per prompt,
    not per root) and the prefix pass (one row per distinct branch point, not per sibling)."""
    s, r, shapes = batch
    points = {(int(r.parent[i]), int(r.branch_pos[i])) for i in range(r.n) if r.parent[i] >= 0}
    wide = [shape for shape in shapes if shape[1] > 1]
    assert len(wide) == 2
    assert wide[0][0] == P  # prompts, encoded once for their 2 roots
    assert wide[1][0] == len(points) < P * (K - 2)  # prefixes, encoded once for their 3 siblings
    longest = max(int(r.branch_pos[i]) for i in range(r.n) if r.parent[i] >= 0)
    assert wide[1][1] == longest - 1  # all but the last context token (generate feeds that one)
    decode_rows = {shape[0] for shape in shapes if shape[1] == 1}
    assert decode_rows == {P * s.roots, P * (K - 2)}  # then one token per row per step


def test_cached_prefix_gives_the_same_continuation_as_encoding_it_again(env):
    """Greedy continuations from the shared KV cache equal those of a fresh encoding of each
    context (different lengths, so left padding and position ids are exercised too)."""
    cfg, task, model, tok, fmt = env
    contexts = []
    for n, p in zip([3, 9, 16], task.problems("val")[:3]):
        prompt = tok(fmt(tok, task.prompt(p)), add_special_tokens=False)["input_ids"]
        contexts.append(prompt + tok(p.solution, add_special_tokens=False)["input_ids"][:n])
    greedy = dict(do_sample=False)
    with torch.no_grad(), ForwardLog(model) as log:
        shared, _ = continue_from(model, tok, contexts, [2, 1, 2], [20] * 5, greedy, reuse_prefix=True)
    with torch.no_grad(), ForwardLog(model) as log_again:
        again, _ = continue_from(model, tok, contexts, [2, 1, 2], [20] * 5, greedy, reuse_prefix=False)
    assert shared == again and len(shared) == 5
    width = max(map(len, contexts))
    assert log.shapes[:2] == [(3, width - 1), (5, 1)]  # contexts once, then only new tokens
    assert log_again.shapes[0] == (5, width)  # without reuse: every context once per continuation


def test_entropy_matches_a_forward_pass_over_the_root(env):
    """The entropies the `entropy` rule ranks steps by are those of the model's next-token
    distribution at each completion position."""
    cfg, task, model, tok, fmt = env
    prompt = tok(fmt(tok, task.prompt(task.problems("val")[0])), add_special_tokens=False)["input_ids"]
    torch.manual_seed(1)
    with torch.no_grad():
        (comp,), ent = continue_from(
            model, tok, [prompt], [1], [24], dict(do_sample=True, temperature=1.0, top_k=0), want_entropy=True
        )
        logits = model(input_ids=torch.tensor([prompt + comp])).logits[0, len(prompt) - 1 : -1]  # [T, V]
    logp = logits.log_softmax(-1)
    expected = -(logp.exp() * logp).sum(-1)  # [T]
    assert torch.allclose(torch.tensor(ent[0][: len(comp)]), expected, atol=1e-4)


def test_first_wrong_branches_at_the_roots_first_wrong_step(env):
    cfg, task, model, tok, fmt = env
    s = sampler(env, branch_at="first_wrong")
    torch.manual_seed(0)
    problems = task.problems("train")[:P]
    r = s.sample(model, task, problems)
    checked = 0
    for root in (i for i in range(r.n) if r.parent[i] < 0):
        steps = parse_completion(r.texts[root]).steps
        scores = task.verify_steps(r.problems[int(r.group[root])], steps)
        spans = r.step_spans[root]
        wrong = next((t for t, v in enumerate(scores) if v < 0), -1)
        if 0 <= wrong < len(spans):
            cuts = {int(r.branch_pos[i]) for i in range(r.n) if r.parent[i] == root}
            assert cuts == {spans[wrong][0]}
            checked += 1
    assert checked >= 1, "no root had a wrong step: the test did not test anything"


def test_branch_rules_on_hand_built_roots():
    steps = [(2, 8), (8, 14), (14, 20)]  # three steps of six tokens
    rng = random.Random(0)
    first_wrong = BRANCH_RULES.get("first_wrong")()
    assert first_wrong(RootView(steps, scores=[1, -1, -1]), 1, rng) == [1]
    two = first_wrong(RootView(steps, scores=[1, -1, -1]), 2, rng)
    assert two[0] == 1 and two[1] in (0, 2)
    assert {first_wrong(RootView(steps, scores=[1, 1, 0]), 1, random.Random(s))[0] for s in range(20)} == {
        0,
        1,
        2,
    }

    entropy = BRANCH_RULES.get("entropy")()
    ent = [0.0] * 20
    ent[16], ent[9] = 2.0, 1.0  # peak in step 2, then step 1
    assert entropy(RootView(steps, entropy=ent), 2, rng) == [2, 1]

    uniform = BRANCH_RULES.get("uniform")()
    assert sorted(uniform(RootView(steps), 3, rng)) == [0, 1, 2]  # distinct while steps last
    four = uniform(RootView(steps), 4, rng)
    assert set(four) == {0, 1, 2} and four[3] == four[0]  # then repeats, in the same order


def test_bad_config_is_one_clear_error(env):
    with pytest.raises(ConfigError, match="valid: entropy, first_wrong, uniform"):
        sampler(env, branch_at="middle")
    with pytest.raises(ConfigError, match="no room"):
        sampler(env, k=2, roots=2)
    s = sampler(env, roots=2, branches=2, siblings=None, k=8)
    assert s.sibling_counts() == [[2, 1], [2, 1]] and s.group_size == 8
    assert sampler(env, roots=1, branches=2, siblings=3).group_size == 7  # explicit siblings: k unused


@pytest.mark.parametrize("branch_at", ["uniform", "entropy"])
def test_rules_cut_at_step_starts(env, branch_at):
    cfg, task, model, tok, fmt = env
    torch.manual_seed(0)
    r = sampler(env, branch_at=branch_at, roots=2, branches=2).sample(model, task, task.problems("train")[:2])
    for i in range(r.n):
        par = int(r.parent[i])
        if par >= 0 and r.step_spans[par]:
            assert int(r.branch_pos[i]) in [a for a, _ in r.step_spans[par]]


@pytest.mark.parametrize("strategy", PAIRINGS.names())
def test_every_pairing_strategy_takes_branch_rollouts(batch, env, strategy):
    cfg, task, model, tok, fmt = env
    _, r, _ = batch
    rewards = Reward()(task, r)
    method = build_pairing(strategy)
    pairs = method(r, rewards, random.Random(0))
    logp = token_logprobs(model, r.tokens, r.attention_mask)
    if method.objective is not None:  # grpo: advantages on every path, its own loss
        assert torch.equal(pairs.paths(), torch.arange(r.n))
        assert torch.isfinite(method.objective(logp, None, r.completion_mask, pairs.advantages).loss)
        return
    assert torch.equal(r.group[pairs.better], r.group[pairs.worse])
    if strategy == "gfpo":
        assert pairs.m > 0 and (pairs.prefix_frac > 0).all()
    out = PairwiseLoss()(logp, None, r.completion_mask, pairs, sft_coef=0.1)
    assert torch.isfinite(out.loss)


def test_gfpo_lineage_rule_on_sampled_siblings(batch, env):
    """On real branched rollouts: every sibling pair of one root that differs in reward is a candidate
    under prefix_rule=lineage (the sampler built it to split at or after the cut), and split there;
    lineage finds every pair `fraction` finds, and more (the early cuts)."""
    from gfpo_bench.pairing.base import divergence, informative
    from gfpo_bench.pairing.gfpo import lineage_cut

    _, r, _ = batch
    task = env[1]
    rewards = Reward()(task, r)
    lineage = build_pairing("gfpo", max_pairs_per_group=None)
    fraction = build_pairing("gfpo", prefix_rule="fraction", max_pairs_per_group=None)
    by_lineage = set(lineage.select(r, rewards, random.Random(0)))
    by_fraction = set(fraction.select(r, rewards, random.Random(0)))
    assert by_fraction <= by_lineage and len(by_lineage) > len(by_fraction)
    total = rewards.total.tolist()
    siblings = 0
    for idx in r.group_indices():
        for better, worse in informative(idx, total, lineage.eps):
            cut = lineage_cut(r, better, worse)
            if cut is not None:
                siblings += 1
                assert divergence(r, better, worse) >= cut
                assert (better, worse) in by_lineage
    assert siblings > 0
