"""Shared fixtures: compose the real Hydra config and run it in-process, on CPU, in a temp dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

import gfpo_bench.cli  # noqa: F401  (registers the run_id resolver)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# Small but real: a few optimizer steps of the embedded default, no W&B process.
FAST = [
    "logger=csv",
    "trainer.max_steps=3",
    "prompts_per_step=6",
    "sampler.k=6",
    "callbacks.eval.every_n_steps=2",
    "callbacks.eval.max_problems=12",
    "callbacks.checkpoint.every_n_train_steps=2",
]


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory) -> Path:
    """One SFT warm start per session (or the one CI / the developer already has)."""
    if "GFPO_BENCH_CACHE" not in os.environ:
        os.environ["GFPO_BENCH_CACHE"] = str(tmp_path_factory.mktemp("gfpo-cache"))
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return Path(os.environ["GFPO_BENCH_CACHE"])


def compose_cfg(overrides: list[str], run_dir: Path | None = None, config_name: str = "config") -> DictConfig:
    """The composed config exactly as `gfpo-bench <overrides>` would see it, run dir = run_dir."""
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="gfpo_bench.conf", version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    if run_dir is not None:
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(run_dir)
            cfg.hydra.job.num = 0
        HydraConfig.instance().set_config(cfg)
    return cfg


@pytest.fixture
def run_cfg(tmp_path):
    def make(*overrides: str) -> DictConfig:
        return compose_cfg([*FAST, *overrides], tmp_path / "run")

    return make
