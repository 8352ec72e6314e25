"""Shared fixtures: the warm-start cache and W&B/hub settings of the session, and `run_cfg` (a composed
config with a temp run dir). Plain helpers live in helpers.py, which test modules import by name
(`from helpers import ...`; pyproject.toml puts tests/ on the path)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import FAST, compose_cfg
from omegaconf import DictConfig


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory) -> Path:
    """One SFT warm start per session (or the one CI / the developer already has)."""
    if "GFPO_BENCH_CACHE" not in os.environ:
        os.environ["GFPO_BENCH_CACHE"] = str(tmp_path_factory.mktemp("gfpo-cache"))
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return Path(os.environ["GFPO_BENCH_CACHE"])


@pytest.fixture
def run_cfg(tmp_path):
    def make(*overrides: str) -> DictConfig:
        return compose_cfg([*FAST, *overrides], tmp_path / "run")

    return make
