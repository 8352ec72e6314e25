"""Each pairing strategy picks exactly the pairs docs/design.md defines, on hand-built groups."""

from __future__ import annotations

import random

import pytest
from helpers import TASK, comp, problem, rollouts

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


def test_sft_term_never_trains_on_a_wrong_answer_even_under_reward_noise():
    from gfpo_bench.rewards.reward import Reward

    texts = [RIGHT, WRONG_LAST, WRONG_FIRST, NO_FORMAT, WRONG_LAST, RIGHT]
    for seed in range(20):  # noise=0.5 flips R_final of half the paths: wrong paths often "win"
        r, _ = rollouts([(P, texts), (P, texts[::-1])])
        rew = Reward(noise=0.5, seed=seed)(TASK, r)
        pairs = build_pairing("dapo", max_pairs_per_group=None)(r, rew, random.Random(seed))
        assert pairs.m > 0
        assert rew.correct[pairs.sft_paths].all(), "a wrong-answer path got into the NLL term"
        assert set(pairs.sft_paths.tolist()) == {i for i in range(r.n) if rew.correct[i]}


def test_gfpo_keeps_only_long_shared_prefixes():
    # RIGHT vs WRONG_LAST share "<think>\n3+4=7\n7-2=" (12 tokens); RIGHT vs WRONG_FIRST share 6.
    r, _, pairs, p = pairs_of(
        "gfpo", [RIGHT, WRONG_LAST, WRONG_FIRST], min_prefix_tokens=8, min_prefix_frac=0.2
    )
    assert pairs == [(0, 1)]
    assert int(p.diverge[0] - r.prompt_len[0]) == 12
    assert int(p.diverge_step[0]) == 1  # they split in the second step
    _, _, loose, _ = pairs_of(
        "gfpo", [RIGHT, WRONG_LAST, WRONG_FIRST], min_prefix_tokens=4, min_prefix_frac=0.0
    )
    assert (0, 2) in loose


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
GOLDEN = {
    "dapo": (
        [(0, 1), (0, 2), (0, 3), (0, 5), (1, 2), (3, 1), (4, 1), (3, 2), (4, 2), (5, 2), (4, 3), (3, 5)]
        + [(4, 5), (7, 6), (8, 6), (9, 6), (7, 8), (7, 9), (8, 9)],
        0.32383276483316237,
    ),
    "gfpo": ([(4, 1), (0, 1), (0, 5), (4, 5), (7, 9)], 0.36568891691258554),
    "random": ([(3, 1), (0, 3), (4, 1), (0, 1), (7, 6), (7, 9), (8, 9), (8, 6)], 0.5827880059033551),
    "srpo": ([(3, 5), (0, 5), (3, 1), (4, 5), (7, 6), (7, 9), (8, 6), (8, 9)], 0.04828642362681235),
    "top2": ([(0, 3), (7, 8)], 0.06985542357461894),
    "vapo": ([(4, 2), (7, 6)], 0.06985542357461894),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))  # the pairing strategies (grpo makes no pairs)
def test_same_rng_gives_the_recorded_pairs(name):
    r, rew = rollouts(
        [
            (P, [RIGHT, WRONG_LAST, WRONG_FIRST, NO_FORMAT, RIGHT, WRONG_LAST]),
            (P, [WRONG_FIRST, RIGHT, NO_FORMAT, WRONG_LAST]),
        ]
    )
    rng = random.Random(7)
    pairs = build_pairing(name)(r, rew, rng)
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
