"""Every method of the `pairing` group (the pairing strategies and GRPO) trains the embedded default
end to end for a few steps, from the shipped warm start."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gfpo_bench.models.shipped import ASSET_DIR
from gfpo_bench.pairing import PAIRINGS
from gfpo_bench.train import run


def _weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(model_dir / "model.safetensors"))


def _csv_rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "csv" / "metrics.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("strategy", PAIRINGS.names())
def test_every_strategy_trains(strategy, run_cfg):
    cfg = run_cfg(f"pairing={strategy}")
    summary = run(cfg)
    run_dir = Path(cfg.hydra.runtime.output_dir)

    assert summary["status"] == "completed"
    assert summary["method"] == strategy
    assert summary["steps"] >= 1, "no optimizer step was taken"
    start = _weights(ASSET_DIR)
    end = _weights(run_dir / "final_model")
    changed = [k for k in start if not torch.equal(start[k], end[k])]
    assert changed, "parameters did not change"

    rows = _csv_rows(run_dir)
    losses = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
    assert losses and all(torch.isfinite(torch.tensor(losses)))
    signal = ("train/advantage_abs",) if strategy == "grpo" else ("train/pairable_groups", "train/prefix_frac")
    for key in (
        *signal,
        "train/groups_with_spread",
        "train/groups_right_and_wrong",
        "train/pairs",
        "train/tokens_generated",
        "train/reward/final",
        "train/reward/process",
        "train/reward/format",
        "train/reward/total",
        "val/math/accuracy",
        "val/math/sampled_accuracy",
    ):
        assert any(r.get(key) for r in rows), f"{key} never logged"
    tokens = [float(r["train/tokens_generated"]) for r in rows if r.get("train/tokens_generated")]
    assert tokens == sorted(tokens) and tokens[-1] == summary["tokens_generated"] > 0  # cumulative

    on_disk = json.loads((run_dir / "summary.json").read_text())
    assert on_disk["metrics"]["val/math/accuracy"] == summary["metrics"]["val/math/accuracy"]
    assert on_disk["config"]["pairing"]["name"] == strategy
    warm = on_disk["warm_start"]  # the step-0 evaluation, beside the final one
    assert warm["sft_steps"] == cfg.model.sft.steps
    assert warm["val/math/accuracy"] == on_disk["eval_history"][0]["val/math/accuracy"]
    assert 0.0 <= warm["val/math/sampled_accuracy"] <= 1.0
    assert (run_dir / "checkpoints" / "last.ckpt").exists()


def test_nonfinite_loss_is_skipped_and_counted(run_cfg, monkeypatch):
    from gfpo_bench import loss as loss_mod

    real = loss_mod.PairwiseLoss.__call__

    def poisoned(self, *a, **k):
        out = real(self, *a, **k)
        out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(loss_mod.PairwiseLoss, "__call__", poisoned)
    summary = run(run_cfg("pairing=vapo"))
    assert summary["status"] == "completed"
    assert summary["nonfinite_steps"] >= 1


def test_sft_stage_writes_a_model_usable_by_init_from(run_cfg, tmp_path):
    sft = run(run_cfg("stage=sft", "trainer.max_steps=5"))
    assert sft["status"] == "completed" and Path(sft["final_model"], "config.json").exists()
    assert "val/math/accuracy" in sft["metrics"]
