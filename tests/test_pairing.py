"""Each pairing strategy picks exactly the pairs docs/design.md defines, on hand-built groups."""

from __future__ import annotations

import random

import pytest
import torch
from helpers import TASK, TOK, comp, problem, rollouts

from gfpo_bench.errors import ConfigError
from gfpo_bench.pairing import PAIRINGS, build_pairing
from gfpo_bench.registry import Registry

P = problem([3, 4, 2], ["+", "-"])  # 3+4=7, 7-2=5
RIGHT = comp("3+4=7", "7-2=5", answer="5")  # R = 1 + 0.5*1 + 0.2 = 1.7
WRONG_LAST = comp("3+4=7", "7-2=6", answer="6")  # R = 0 + 0.5*(1-1)/2 + 0.2 = 0.2
WRONG_FIRST = comp(
    "3+4=8", "8-2=6", answer="6"
)  # step 1 wrong, step 2 uses wrong acc: R = 0 - 0.5 + 0.2 = -0.3
NO_FORMAT = "<answer>5</answer>"  # right answer, no reasoning: R = 1 + 0 + 0 = 1.0


def pairs_of(name: str, texts: list[str], **kw):
    r, rew = rollouts([(P, texts)])
    pairs = build_pairing(name, **kw)(r, rew, random.Random(0))
    return r, rew, sorted(zip(pairs.better.tolist(), pairs.worse.tolist())), pairs


def test_rewards_of_the_fixture_are_as_commented():
    _, rew, _, _ = pairs_of("random", [RIGHT, WRONG_LAST, WRONG_FIRST, NO_FORMAT])
    assert [round(x, 4) for x in rew.total.tolist()] == [1.7, 0.2, -0.3, 1.0]


def test_srpo_pairs_every_right_path_with_every_wrong_path():
    _, _, pairs, _ = pairs_of("srpo", [RIGHT, WRONG_LAST, WRONG_FIRST, NO_FORMAT], max_pairs_per_group=None)
    assert pairs == [(0, 1), (0, 2), (3, 1), (3, 2)]


def test_vapo_pairs_the_extremes_only():
    _, _, pairs, _ = pairs_of("vapo", [RIGHT, WRONG_LAST, WRONG_FIRST, NO_FORMAT])
    assert pairs == [(0, 2)]


def test_top2_pairs_the_best_with_the_next_lower_reward():
    _, _, pairs, _ = pairs_of("top2", [RIGHT, WRONG_LAST, WRONG_FIRST, NO_FORMAT])
    assert pairs == [(0, 3)]
    _, _, none, _ = pairs_of("top2", [RIGHT, RIGHT])  # equal rewards: no preference
    assert none == []


def test_random_pairs_only_differently_rewarded_paths_and_respects_the_cap():
    _, _, pairs, _ = pairs_of("random", [RIGHT, RIGHT, WRONG_LAST], max_pairs_per_group=None)
    assert pairs == [(0, 2), (1, 2)]
    _, _, capped, _ = pairs_of("random", [RIGHT, WRONG_LAST, WRONG_FIRST, NO_FORMAT], max_pairs_per_group=2)
    assert len(capped) == 2


def test_dapo_takes_all_informative_pairs_drops_flat_groups_and_adds_sft_targets():
    _, _, pairs, p = pairs_of("dapo", [RIGHT, WRONG_LAST, WRONG_FIRST, NO_FORMAT])
    assert len(pairs) == 6  # all 4*3/2 pairs differ in reward
    # NLL only on paths with a correct final answer: WRONG_LAST wins pairs too, but is wrong
    assert sorted(p.sft_paths.tolist()) == [0, 3]
    strategy = build_pairing("dapo")
    assert strategy.dynamic_sampling
    assert strategy.keep_group([True, False]) and not strategy.keep_group([True, True])
    assert not strategy.keep_group([False, False])


def test_dynamic_sampling_and_the_nll_term_read_the_observed_verdict_under_reward_noise():
    """reward.noise reaches DAPO as it reaches srpo: its filter and its NLL targets read R_final > 0.5
    (the flipped label), never the hidden correctness; the NLL term still never imitates a path the
    reward judged wrong, whatever pair it won on the process or format reward."""
    from gfpo_bench.pairing.dapo import dynamic_sampling
    from gfpo_bench.rewards.reward import Reward

    texts = [RIGHT, WRONG_LAST, WRONG_FIRST, NO_FORMAT, WRONG_LAST, RIGHT]
    flipped_into_nll = 0
    for seed in range(20):  # noise=0.5 flips R_final of half the paths
        r, _ = rollouts([(P, texts), (P, texts[::-1])])
        rew = Reward(noise=0.5, seed=seed)(TASK, r)
        judged_right = rew.final > 0.5
        strategy = build_pairing("dapo", max_pairs_per_group=None)
        pairs = strategy(r, rew, random.Random(seed))
        if pairs.m:
            paired = set(r.group[pairs.better].tolist())
            expect = {i for i in range(r.n) if judged_right[i] and int(r.group[i]) in paired}
            assert set(pairs.sft_paths.tolist()) == expect  # the label srpo pairs by
            flipped_into_nll += int((~rew.correct[pairs.sft_paths]).sum())
        _, _, n_kept = dynamic_sampling(r, rew, strategy, 2, [], None, 0, random.Random(0), TOK.pad_token_id)
        mixed = [0 < int(judged_right[idx].sum()) < len(idx) for idx in r.group_indices()]
        assert n_kept == sum(mixed)  # kept: the groups judged both right and wrong
    assert flipped_into_nll > 0  # the noise reaches the NLL term: some flipped wrong answers are imitated


def test_dynamic_sampling_drops_a_group_whose_only_right_path_was_flipped():
    from gfpo_bench.pairing.dapo import dynamic_sampling

    r, rew = rollouts([(P, [RIGHT, WRONG_LAST])])  # truly mixed
    rew.final[0] = 0.0  # the noise flipped the right path: the trainer sees an all-wrong group
    kept, _, n_kept = dynamic_sampling(r, rew, build_pairing("dapo"), 1, [], None, 0, random.Random(0), 0)
    assert n_kept == 0 and kept.n == 0
    rew.final[:] = torch.tensor([0.0, 1.0])  # both flipped: still mixed as observed, kept
    _, _, n_kept = dynamic_sampling(r, rew, build_pairing("dapo"), 1, [], None, 0, random.Random(0), 0)
    assert n_kept == 1


def test_gfpo_fraction_rule_keeps_only_long_shared_prefixes():
    # RIGHT vs WRONG_LAST share "<think>\n3+4=7\n7-2=" (12 tokens); RIGHT vs WRONG_FIRST share 6.
    r, _, pairs, p = pairs_of(
        "gfpo",
        [RIGHT, WRONG_LAST, WRONG_FIRST],
        prefix_rule="fraction",
        min_prefix_tokens=8,
        min_prefix_frac=0.2,
    )
    assert pairs == [(0, 1)]
    assert int(p.diverge[0] - r.prompt_len[0]) == 12
    assert int(p.diverge_step[0]) == 1  # they split in the second step
    _, _, loose, _ = pairs_of(
        "gfpo",
        [RIGHT, WRONG_LAST, WRONG_FIRST],
        prefix_rule="fraction",
        min_prefix_tokens=4,
        min_prefix_frac=0.0,
    )
    assert (0, 2) in loose
    _, _, default_frac, _ = pairs_of("gfpo", [RIGHT, WRONG_LAST, WRONG_FIRST], prefix_rule="fraction")
    assert default_frac == [(0, 1)]  # 6/20 = 0.3 of a completion < 0.5: the first-step split fails


def test_gfpo_lineage_rule_on_independent_paths_passes_a_split_inside_the_first_step():
    # hand-checked: RIGHT/WRONG_LAST share 12 completion tokens (split in step 1), RIGHT/WRONG_FIRST
    # and WRONG_LAST/WRONG_FIRST share 6 ("<think>", "\n", "3+4="; step 0 opens at token 2 and splits
    # at its result), NO_FORMAT shares 0 with any (it splits before a step opens): not a gfpo pair
    _, _, pairs, p = pairs_of("gfpo", [RIGHT, WRONG_LAST, WRONG_FIRST, NO_FORMAT], max_pairs_per_group=None)
    assert pairs == [(0, 1), (0, 2), (1, 2)]
    assert p.diverge_step.tolist() == [1, 0, 0]  # longest shared prefix first, then the two step-0 splits
    _, _, short, _ = pairs_of("gfpo", [RIGHT, WRONG_FIRST], min_prefix_tokens=7)
    assert short == []  # 6 shared tokens < min_prefix_tokens


def test_gfpo_lineage_rule_on_the_golden_groups_by_hand():
    """The default rule on the golden fixture: group 0's four 12-token pairs (cap 4), and group 1's
    (7, 9) plus the two step-0 splits (7, 6), (9, 6) that `fraction` rejects (6/20 < 0.5)."""
    r, rew = rollouts(GOLDEN_GROUPS)
    pairs = build_pairing("gfpo")(r, rew, random.Random(7))
    chosen = list(zip(pairs.better.tolist(), pairs.worse.tolist()))
    assert set(chosen[:4]) == {(0, 1), (0, 5), (4, 1), (4, 5)}
    assert chosen[4] == (7, 9) and set(chosen[5:]) == {(7, 6), (9, 6)}


def branched(texts: list[str], parent: list[int], cut: list[int]):
    """One group of hand-built paths with sampler=branch bookkeeping: parent row (-1: a root) and the
    completion offset each sibling left its root at."""
    r, rew = rollouts([(P, texts)])
    r.parent = torch.tensor(parent)
    r.branch_pos = torch.tensor([int(r.prompt_len[i]) + c if c >= 0 else -1 for i, c in enumerate(cut)])
    return r, rew


def test_gfpo_lineage_rule_keeps_siblings_however_early_their_cut():
    # root 0 (RIGHT) with sibling 1 cut at its first token (NO_FORMAT shares nothing with it); root 2
    # (WRONG_FIRST) with sibling 3 (WRONG_LAST) cut at step 0's opening. Independent, 0/1 and 2/0 fail.
    r, rew = branched([RIGHT, NO_FORMAT, WRONG_FIRST, WRONG_LAST], parent=[-1, 0, -1, 2], cut=[-1, 0, -1, 2])
    every = build_pairing("gfpo", max_pairs_per_group=None)
    chosen = set(every.select(r, rew, random.Random(0)))
    # siblings: (0, 1) shares 0 tokens, (3, 2) 6; across lineages, by the independent rule: (0, 2),
    # (0, 3) (12 tokens), (1, 3) and (1, 2) fail (NO_FORMAT opens no step)
    assert chosen == {(0, 1), (3, 2), (0, 2), (0, 3)}
    fraction = build_pairing("gfpo", prefix_rule="fraction", max_pairs_per_group=None)
    assert set(fraction.select(r, rew, random.Random(0))) == {(0, 3)}  # 12/20; the rest < 0.5
    r.parent = None  # the same paths without lineage: the siblings' pairs fall back to the independent rule
    assert set(every.select(r, rew, random.Random(0))) == {(3, 2), (0, 2), (0, 3)}


def test_gfpo_lineage_rule_wants_the_split_at_or_after_the_cut():
    # bookkeeping that says sibling 1 left root 0 after step 0 (offset 8), but the two differ inside
    # step 0 (offset 6): not the pair the sampler built; judged as independent paths (6 tokens, step 0
    # opened: kept), and with min_prefix_tokens=7 refused
    r, rew = branched([RIGHT, WRONG_FIRST], parent=[-1, 0], cut=[-1, 8])
    assert build_pairing("gfpo").select(r, rew, random.Random(0)) == [(0, 1)]
    assert build_pairing("gfpo", min_prefix_tokens=7).select(r, rew, random.Random(0)) == []
    r.branch_pos[1] = int(r.prompt_len[1]) + 6  # the cut where they do split: siblings, kept
    assert build_pairing("gfpo", min_prefix_tokens=7).select(r, rew, random.Random(0)) == [(0, 1)]


def test_registry_rejects_duplicates_and_lists_valid_names():
    reg: Registry = Registry("thing")
    reg.register("a")(object)
    with pytest.raises(ConfigError, match="already registered"):
        reg.register("a")(object)
    with pytest.raises(
        ConfigError, match="unknown pairing strategy 'x'; valid: dapo, gfpo, grpo, random, srpo, top2, vapo"
    ):
        PAIRINGS.get("x")


# Recorded from the strategies before they were built from config (issue 11): the same rng must
# keep giving exactly these pairs, in this order, and leave the rng in the same state (next draw).
# gfpo/fraction is that recording's gfpo (the rule before prefix_rule); gfpo (prefix_rule=lineage, the
# default) was recorded when the rule came in, and is checked by hand in
# test_gfpo_lineage_rule_on_the_golden_groups_by_hand.
GOLDEN = {
    "dapo": (
        [(0, 1), (0, 2), (0, 3), (0, 5), (1, 2), (3, 1), (4, 1), (3, 2), (4, 2), (5, 2), (4, 3), (3, 5)]
        + [(4, 5), (7, 6), (8, 6), (9, 6), (7, 8), (7, 9), (8, 9)],
        0.32383276483316237,
    ),
    "gfpo": ([(0, 5), (4, 1), (4, 5), (0, 1), (7, 9), (9, 6), (7, 6)], 0.09071301334386506),
    "gfpo/fraction": ([(4, 1), (0, 1), (0, 5), (4, 5), (7, 9)], 0.36568891691258554),
    "random": ([(3, 1), (0, 3), (4, 1), (0, 1), (7, 6), (7, 9), (8, 9), (8, 6)], 0.5827880059033551),
    "srpo": ([(3, 5), (0, 5), (3, 1), (4, 5), (7, 6), (7, 9), (8, 6), (8, 9)], 0.04828642362681235),
    "top2": ([(0, 3), (7, 8)], 0.06985542357461894),
    "vapo": ([(4, 2), (7, 6)], 0.06985542357461894),
}
GOLDEN_GROUPS = [
    (P, [RIGHT, WRONG_LAST, WRONG_FIRST, NO_FORMAT, RIGHT, WRONG_LAST]),
    (P, [WRONG_FIRST, RIGHT, NO_FORMAT, WRONG_LAST]),
]


@pytest.mark.parametrize("name", sorted(GOLDEN))  # the pairing strategies (grpo makes no pairs)
def test_same_rng_gives_the_recorded_pairs(name):
    r, rew = rollouts(GOLDEN_GROUPS)
    rng = random.Random(7)
    strategy, _, rule = name.partition("/")
    pairs = build_pairing(strategy, **({"prefix_rule": rule} if rule else {}))(r, rew, rng)
    assert list(zip(pairs.better.tolist(), pairs.worse.tolist())) == GOLDEN[name][0]
    assert rng.random() == GOLDEN[name][1]


@pytest.mark.parametrize("name", PAIRINGS.names())
def test_every_pairing_config_builds_its_strategy_with_the_code_defaults(name):
    """conf/pairing/<name>.yaml instantiates the registered class, takes exactly its constructor's
    knobs (no field the strategy ignores) and holds the constructor's defaults."""
    import inspect

    import hydra
    from helpers import compose_cfg
    from omegaconf import OmegaConf

    cfg = compose_cfg([f"pairing={name}"]).pairing
    strategy = hydra.utils.instantiate(cfg)
    assert type(strategy) is PAIRINGS.get(name) and strategy.name == name
    knobs = {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k != "_target_"}
    params = inspect.signature(type(strategy).__init__).parameters
    assert set(knobs) == set(params) - {"self"}
    assert knobs == {k: p.default for k, p in params.items() if k != "self"}


def test_pairing_name_must_label_its_own_strategy():
    from gfpo_bench.pairing.srpo import SRPOPairing

    with pytest.raises(ConfigError, match="'vapo' is the label of VAPOPairing, not of SRPOPairing"):
        SRPOPairing(name="vapo")
    with pytest.raises(ConfigError, match="unknown pairing strategy 'nope'"):
        SRPOPairing(name="nope")
    cap = r"^pairing\.max_pairs_per_group=0: must be >= 1 \(null: every pair\)$"  # config_schema.py's words
    with pytest.raises(ConfigError, match=cap):
        SRPOPairing(max_pairs_per_group=0)


def test_dynamic_sampling_drops_groups_without_a_spread_and_refills_from_the_pool():
    from gfpo_bench.pairing.dapo import DAPOPairing, dynamic_sampling

    mixed = (P, [RIGHT, WRONG_LAST])
    all_right = (P, [RIGHT, RIGHT])
    batch, rewards = rollouts([mixed, all_right])
    calls = []

    def resample(problems):  # a fresh round: one mixed group per prompt asked for
        calls.append(len(problems))
        return rollouts([(p, [RIGHT, WRONG_FIRST]) for p in problems])

    rng = random.Random(0)
    out, out_rewards, kept = dynamic_sampling(
        batch,
        rewards,
        DAPOPairing(),
        want=2,
        pool=[P, P, P],
        resample=resample,
        max_rounds=3,
        rng=rng,
        pad_id=0,
    )
    assert calls == [1] and kept == 2  # the all-right group was dropped, one refill round replaced it
    assert out.group.tolist() == [0, 0, 1, 1] and out_rewards.total.numel() == 4
    _, _, none_kept = dynamic_sampling(
        *rollouts([all_right]),
        DAPOPairing(),
        want=1,
        pool=[],
        resample=resample,
        max_rounds=3,
        rng=rng,
        pad_id=0,
    )
    assert none_kept == 0 and calls == [1]  # no pool: no refill, an empty batch
