"""Every config file loads, and every option of every config group composes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hydra.errors import ConfigCompositionException

from tests.conftest import compose_cfg

CONF = Path(__file__).resolve().parents[1] / "gfpo_bench" / "conf"
GROUPS = ["task", "model", "pairing", "reward", "sampler", "loss", "optim", "trainer", "logger", "schedule"]


@pytest.mark.parametrize("path", sorted(CONF.rglob("*.yaml")), ids=lambda p: str(p.relative_to(CONF)))
def test_every_config_file_is_valid_yaml(path):
    assert isinstance(yaml.safe_load(path.read_text()), (dict, type(None)))


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_group_option_composes(group, option):
    extra = ["model.name_or_path=Qwen/Qwen2.5-0.5B-Instruct"] if (group, option) == ("model", "hf") else []
    cfg = compose_cfg([f"{group}={option}", *extra])
    assert cfg[group] is not None


def test_defaults_match_the_design():
    cfg = compose_cfg([])
    assert dict(cfg.reward.weights) == {"final": 1.0, "process": 0.5, "format": 0.2}
    assert cfg.model.kind == "tiny" and cfg.trainer.accelerator == "cpu"
    assert cfg.method == cfg.pairing.name


def test_schedule_sets_the_method_name():
    assert compose_cfg(["schedule=srpo_to_gfpo"]).method == "srpo_to_gfpo"


def test_unknown_group_option_fails_at_compose_time():
    with pytest.raises(ConfigCompositionException):
        compose_cfg(["pairing=nope"])
