"""W&B logging works with no account: offline mode, chosen automatically when no key exists."""

from __future__ import annotations

from pathlib import Path

from gfpo_bench.loggers import resolve_wandb_mode
from gfpo_bench.train import run


def test_auto_mode_is_offline_without_credentials(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_wandb_mode("auto") == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_wandb_mode("auto") == "online"


def test_a_run_logs_to_an_offline_wandb_run(run_cfg, monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = run_cfg("logger=default", "trainer.max_steps=1", "pairing=vapo")
    summary = run(cfg)
    run_dir = Path(cfg.hydra.runtime.output_dir)
    offline = list((run_dir / "wandb").glob("offline-run-*"))
    assert summary["status"] == "completed" and offline, "no offline W&B run was written"
    assert any(offline[0].glob("*.wandb")), "the offline run holds no data"
