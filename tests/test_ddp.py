"""DDP on CPU (gloo): two processes train as one.

A real `python -m gfpo_bench.cli trainer.devices=2 trainer.strategy=ddp` run (Lightning's launcher
re-runs the command for rank 1, in the same run dir) must end with the same weights on both ranks
(each rank hashes its own, summary.json's `ddp` entry gathers them, and rank 0's hash must be that
of the weights in last.ckpt), a global token count equal to the sum of the ranks' own counts, and
one summary.json. The prompt sharding is checked without processes: the ranks' shares of a step are
the single process's batch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from gfpo_bench.datamodule import PromptOrder
from gfpo_bench.distributed import reduce_metrics, weights_sha256

REPO = Path(__file__).resolve().parents[1]
DDP = [
    "trainer.devices=2",
    "trainer.strategy=ddp",
    "logger=csv",
    "trainer.max_steps=3",
    "prompts_per_step=4",
    "sampler.k=4",
    "callbacks.eval.every_n_steps=0",
    "callbacks.eval.max_problems=4",
    "callbacks.checkpoint.every_n_train_steps=100",
    "model.threads=1",
]


def test_ranks_share_each_step_and_resume_alike():
    single = list(PromptOrder(10, 4, seed=3))
    ranks = []
    for r in range(2):
        order = PromptOrder(10, 4, seed=3)
        order.shard(r, 2)
        ranks.append(list(order))
    for b, r0, r1 in zip(single, *ranks):
        assert sorted(r0 + r1) == sorted(b) and not set(r0) & set(r1)
    one = PromptOrder(10, 3, seed=0)  # batches of 3, 3, 3, 1: the last one's rank 1 reuses its prompt
    one.shard(1, 2)
    assert [len(b) for b in one] == [1, 1, 1, 1]


def test_reduce_metrics_sums_counts_and_weights_rates():
    got = reduce_metrics([({"train/pairs": 2.0, "train/loss": 1.0}, 1.0), ({"train/pairs": 0.0}, 0.0)])
    assert got == {"train/pairs": 2.0, "train/loss": 1.0}


def test_two_processes_train_as_one(tmp_path):
    run_dir = tmp_path / "ddp"
    env = {
        **os.environ,
        "TQDM_DISABLE": "1",
        "WANDB_MODE": "offline",
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "gfpo_bench.cli", *DDP, f"hydra.run.dir={run_dir}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert [p.relative_to(run_dir) for p in run_dir.rglob("summary.json")] == [Path("summary.json")]
    assert proc.stdout.count("summary:") == 1  # one rank reports
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["status"] == "completed" and s["steps"] == 3
    ddp = s["ddp"]
    assert ddp["world_size"] == 2
    per_rank = ddp["tokens_generated_per_rank"]
    assert len(per_rank) == 2 and min(per_rank) > 0
    assert s["tokens_generated"] == sum(per_rank)
    assert s["metrics"]["val/tokens_generated"] == sum(per_rank)
    w0, w1 = ddp["weights_sha256_per_rank"]
    assert w0 == w1
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    saved = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()}
    assert weights_sha256(saved) == w0
    assert ckpt["gfpo_counters"]["tokens_generated"] == sum(per_rank)
