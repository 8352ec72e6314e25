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


def test_unreachable_wandb_falls_back_to_offline_with_a_warning(monkeypatch, tmp_path, caplog):
    import wandb
    from helpers import compose_cfg
    from lightning.pytorch.loggers import WandbLogger

    from gfpo_bench.loggers import build_loggers, finish_wandb

    real_init, attempts = wandb.init, []

    def init(*args, **kwargs):  # the fault: the W&B server cannot be reached in online mode
        # As measured with an unreachable server: after the first wandb.init the session has started,
        # and only an explicit mode= argument (not WANDB_MODE) makes a later init offline.
        attempts.append(kwargs.get("mode"))
        if kwargs.get("mode") != "offline":
            raise wandb.errors.CommError("Failed to get resume status for run x: context deadline exceeded")
        return real_init(*args, **kwargs)

    monkeypatch.setattr(wandb, "init", init)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_MODE")  # so that logger.wandb.mode=online decides (restored afterwards)
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    cfg = compose_cfg(["logger=default", "logger.wandb.mode=online"], tmp_path / "run")
    with caplog.at_level("WARNING"):
        loggers = build_loggers(cfg, tmp_path)
    wb = [lg for lg in loggers if isinstance(lg, WandbLogger)]
    assert len(wb) == 1 and "W&B is unreachable" in caplog.text and "offline" in caplog.text
    wb[0].log_metrics({"train/loss": 1.0}, step=0)  # the run goes on, logging offline
    finish_wandb()
    assert attempts == [None, "offline"]
    assert list((tmp_path / "wandb").glob("offline-run-*")), "no offline W&B run was written"


def test_the_wandb_run_summary_is_the_summary_flattened(tmp_path):
    from lightning.pytorch.loggers import CSVLogger, WandbLogger

    from gfpo_bench.loggers import publish_summary
    from gfpo_bench.summary import Budget, RunSummary

    class Recorded(WandbLogger):  # a WandbLogger whose run is a plain object (no wandb process)
        def __init__(self) -> None:
            self.run = type("Run", (), {"summary": {}})()

        @property
        def experiment(self):
            return self.run

    wb = Recorded()
    summary = RunSummary(
        method="srpo", seed=0, task="arith", stage="rl", status="completed", budget=Budget(20, None, 5, 2),
        metrics={"val/math/accuracy": 0.5}, pair_stats={"pairs_per_step": 3.0}, tokens_generated=5,
        wall_time_s=1.0, steps=2, eval_history=[{"step": 0}], config={"seed": 0},
    )  # fmt: skip
    publish_summary([CSVLogger(str(tmp_path)), wb], summary)
    assert wb.run.summary == summary.flat()
    assert wb.run.summary["val/math/accuracy"] == 0.5 and wb.run.summary["pair_stats/pairs_per_step"] == 3.0
    assert wb.run.summary["budget"]["max_steps"] == 20 and "eval_history" not in wb.run.summary
