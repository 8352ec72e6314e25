"""Pairing schedules: which strategy is active at a given step.

`schedule=null` is one stage. `schedule=srpo_to_gfpo` / `dapo_to_gfpo` switch strategy at a step, or
at a fraction of the token budget (`at_tokens_frac`), inside one run. The stage index is logged as
`train/pairing_stage`, the switch as an event in the log and in summary.json (`schedule_switches`).
Which stage is active and the switches so far are the schedule's `state_dict`, kept in checkpoints.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from gfpo_bench.building import build
from gfpo_bench.config_schema import require, require_rule, token_fraction_needs_budget
from gfpo_bench.errors import ConfigError
from gfpo_bench.pairing.base import PairingStrategy

log = logging.getLogger(__name__)


@dataclass
class Stage:
    strategy: PairingStrategy
    name: str
    start_step: int = 0  # first optimizer step of this stage
    start_tokens_frac: float | None = None  # or: first step once this fraction of max_tokens is used
    key: str | None = None  # its key in the schedule config (e.g. "second"), for error messages


class PairingSchedule:
    """The strategies of a run in order, and when each takes over. `schedule=null` (the default):
    one stage, `PairingSchedule.single(<the pairing strategy>)`; conf/schedule/*.yaml build the
    rest through `from_stages`."""

    def __init__(self, stages: list[Stage], max_tokens: int | None = None) -> None:
        if not stages:
            raise ValueError("a pairing schedule needs at least one stage")
        for st in stages:  # the ranges and the rule across keys: config_schema.py STAGE_RULES
            key = st.key or st.name
            require(f"schedule.{key}.start_step", st.start_step)
            require(f"schedule.{key}.start_tokens_frac", st.start_tokens_frac)
            require_rule(token_fraction_needs_budget, key, st.start_tokens_frac, max_tokens)
        self.stages = stages
        self.current = 0
        self.switches: list[dict] = []  # one event per switch: step, tokens, from, to

    @classmethod
    def single(cls, strategy: PairingStrategy) -> PairingSchedule:
        return cls([Stage(strategy, strategy.name)])

    @classmethod
    def from_stages(
        cls, stage_order: list[str], max_tokens: int | None = None, name: str | None = None, **stages: dict
    ) -> PairingSchedule:
        """conf/schedule/*.yaml: `stages[key]` = {pairing: <strategy>, start_step, start_tokens_frac}
        for each key of `stage_order` (`name` is the method label, read from the config)."""
        missing = [k for k in stage_order if k not in stages]
        if missing:
            raise ConfigError(
                f"schedule.stage_order names {missing[0]!r}, which the schedule does not define"
            )
        built = [
            Stage(st["pairing"], st["pairing"].name, st.get("start_step", 0), st.get("start_tokens_frac"), k)
            for k, st in ((k, stages[k]) for k in stage_order)
        ]
        return cls(built, max_tokens)

    def needs_reference(self, pairwise_loss) -> bool:
        """Does any stage score paths under the frozen reference (the module then keeps a copy)?"""
        return any(st.strategy.needs_reference(pairwise_loss) for st in self.stages)

    @property
    def name(self) -> str:
        return "_to_".join(s.name for s in self.stages)

    def at(self, step: int, tokens: int, max_tokens: int | None) -> tuple[int, PairingStrategy]:
        """(stage index, strategy) for this step; stages only move forward."""
        for i in range(self.current + 1, len(self.stages)):
            st = self.stages[i]
            by_tokens = (
                st.start_tokens_frac is not None
                and max_tokens
                and tokens >= st.start_tokens_frac * max_tokens
            )
            if (st.start_tokens_frac is None and step >= st.start_step) or by_tokens:
                log.info(
                    "pairing schedule: switching %s -> %s at step %d (%d tokens)",
                    self.stages[self.current].name,
                    st.name,
                    step,
                    tokens,
                )
                self.switches.append(
                    {
                        "step": step,
                        "tokens": tokens,
                        "from": self.stages[self.current].name,
                        "to": st.name,
                        "stage": i,
                    }
                )
                self.current = i
        return self.current, self.stages[self.current].strategy

    def state_dict(self) -> dict:
        return {"current": self.current, "switches": [dict(s) for s in self.switches]}

    def load_state_dict(self, state: dict) -> None:
        self.current, self.switches = state["current"], [dict(s) for s in state["switches"]]


def build_schedule(cfg) -> PairingSchedule:
    """From the config: the `schedule` node (`_target_`), or one stage of `pairing`."""
    sched = cfg.get("schedule")
    return build(sched) if sched is not None else PairingSchedule.single(build(cfg.pairing))
