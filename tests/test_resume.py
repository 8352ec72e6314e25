"""Exact resume: a run killed (SIGKILL) or preempted (SIGTERM) and run again with the same command
ends with the summary.json of a run that was never interrupted.

The runs are real `python -m gfpo_bench.cli` subprocesses. The config switches on every piece of
state a resume must carry: reward noise (its generator), a pairing schedule that switches in the
middle (its stage and switch events), the branch sampler (its cut RNG), dynamic sampling's refills
(the pairing RNG), periodic evaluation (its history), and the global RNG the sampler draws from.
"""

from __future__ import annotations

import csv
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch

from gfpo_bench.checkpoint_io import AtomicCheckpointIO
from gfpo_bench.datamodule import PromptDataModule, PromptOrder

REPO = Path(__file__).resolve().parents[1]
RUN = [
    "logger=csv",
    "trainer.max_steps=8",
    "prompts_per_step=4",
    "sampler=branch",
    "sampler.k=4",
    "reward.noise=0.2",
    "schedule=dapo_to_gfpo",
    "schedule.second.start_step=5",
    "callbacks.checkpoint.every_n_train_steps=2",
    "callbacks.eval.every_n_steps=4",
    "callbacks.eval.max_problems=8",
    "callbacks.eval.sampled_n=2",
]
SAME = [
    "tokens_generated",
    "metrics",
    "eval_history",
    "pair_stats",
    "schedule_switches",
    "steps",
    "skipped_batches",
    "nonfinite_steps",
    "reward_faults",
    "warm_start",
    "budget",
]


def start(run_dir: Path) -> subprocess.Popen:
    env = {
        **os.environ,  # GFPO_BENCH_CACHE from the session fixture: the warm start is built once
        "TQDM_DISABLE": "1",
        "WANDB_MODE": "offline",
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "gfpo_bench.cli", *RUN, f"hydra.run.dir={run_dir}"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(proc: subprocess.Popen, timeout: float = 240) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-3000:]
    return out


def after_saves(proc: subprocess.Popen, ckpt: Path, saves: int, timeout: float = 240) -> None:
    """Wait until last.ckpt has been (re)written `saves` times (each save replaces the file)."""
    seen: set[tuple[int, int]] = set()
    t0 = time.time()
    while len(seen) < saves:
        if proc.poll() is not None or time.time() - t0 > timeout:
            proc.kill()
            raise AssertionError(f"no {saves} checkpoint saves: {proc.communicate()[0][-3000:]}")
        try:
            st = ckpt.stat()
            seen.add((st.st_ino, st.st_mtime_ns))
        except FileNotFoundError:
            pass
        time.sleep(0.02)


def summary(run_dir: Path) -> dict:
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["status"] == "completed"
    return {k: s.get(k) for k in SAME}


def csv_rows(run_dir: Path) -> list[dict]:
    with (run_dir / "csv" / "metrics.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def assert_same_csv(resumed: Path, uninterrupted: Path) -> None:
    """Every row, every value. Cells empty after the resume may only be values Lightning repeats
    from an earlier step of the epoch (its logged results carry them over; a resumed trainer has none)."""
    got, want = csv_rows(resumed), csv_rows(uninterrupted)
    assert [r["step"] for r in got] == [r["step"] for r in want]
    for g, w in zip(got, want):
        assert {k: v for k, v in g.items() if v != ""} == {k: v for k, v in w.items() if g.get(k, "") != ""}
        carried = [k for k, v in w.items() if v != "" and g.get(k, "") == ""]
        assert all(k.startswith("train/") for k in carried), carried


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("resume") / "uninterrupted"
    finish(start(run_dir))
    s = summary(run_dir)
    assert s["steps"] == 8 and len(s["schedule_switches"]) == 1 and len(s["eval_history"]) == 3
    return run_dir


def test_a_run_killed_after_its_second_checkpoint_resumes_exactly(tmp_path, uninterrupted):
    run_dir = tmp_path / "killed"
    proc = start(run_dir)
    after_saves(proc, run_dir / "checkpoints" / "last.ckpt", saves=2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "summary.json").exists()
    out = finish(start(run_dir))
    assert "resuming interrupted run" in out
    assert summary(run_dir) == summary(uninterrupted)
    assert_same_csv(run_dir, uninterrupted)


def test_sigterm_saves_a_checkpoint_exits_and_the_rerun_resumes_exactly(tmp_path, uninterrupted):
    run_dir = tmp_path / "preempted"
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    proc = start(run_dir)
    after_saves(proc, ckpt, saves=1)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 143, out[-3000:]
    line = [ln for ln in out.splitlines() if ln.startswith("preempted:")]
    assert line and str(ckpt) in line[0], out[-3000:]
    step = torch.load(ckpt, map_location="cpu", weights_only=False)["global_step"]
    assert 0 < step < 8  # saved where it stopped, mid-training
    assert not (run_dir / "summary.json").exists()
    out = finish(start(run_dir))
    assert "resuming interrupted run" in out
    assert summary(run_dir) == summary(uninterrupted)
    assert_same_csv(run_dir, uninterrupted)


# --- the pieces ---------------------------------------------------------------------------------
class Numbers:  # a task whose training problems are 0..n-1
    def __init__(self, n: int) -> None:
        self.n = n

    def problems(self, split: str) -> list[int]:
        return list(range(self.n))


class Recorder(L.LightningModule):
    """Records the batches it trains on; the record is part of its checkpoint."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[list[int]] = []

    def training_step(self, batch, batch_idx):
        self.seen.append(list(batch))
        return (self.w**2).sum() + self.w.sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["seen"] = list(self.seen)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.seen = list(checkpoint["seen"])


class SaveAt(L.Callback):
    def __init__(self, step: int, path: Path) -> None:
        self.step, self.path = step, path

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.step:  # where ModelCheckpoint saves
            trainer.save_checkpoint(self.path)


def fit(steps: int, data, callbacks=(), ckpt: Path | None = None) -> list[list[int]]:
    module = Recorder()
    trainer = L.Trainer(
        max_steps=steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=list(callbacks),
    )
    if isinstance(data, L.LightningDataModule):
        trainer.fit(module, datamodule=data, ckpt_path=ckpt)
    else:
        trainer.fit(module, train_dataloaders=data, ckpt_path=ckpt)
    return module.seen


@pytest.mark.parametrize("n,batch", [(12, 4), (10, 4)])
def test_prompt_order_is_the_shuffled_dataloaders_and_resumes_anywhere(n, batch, tmp_path):
    """Under Lightning, across epochs (3 batches each): the order of DataLoader(shuffle=True,
    generator=manual_seed(seed)), and a run resumed from a checkpoint at any step, epoch ends
    included, continues with the next batch."""
    from torch.utils.data import DataLoader

    steps, gen = 8, torch.Generator().manual_seed(0)
    legacy = fit(steps, DataLoader(list(range(n)), batch, shuffle=True, generator=gen, collate_fn=list))
    assert fit(steps, PromptDataModule(Numbers(n), batch, seed=0)) == legacy
    for cut in range(1, steps):
        ckpt = tmp_path / f"step{cut}.ckpt"
        fit(steps, PromptDataModule(Numbers(n), batch, seed=0), [SaveAt(cut, ckpt)])
        assert fit(steps, PromptDataModule(Numbers(n), batch, seed=0), ckpt=ckpt) == legacy, cut


def test_prompt_order_state_survives_pickling_mid_epoch():
    order = PromptOrder(7, 3, seed=1)
    want = list(order)
    first = PromptOrder(7, 3, seed=1)
    it = iter(first)
    got = [next(it)]
    again = PromptOrder(7, 3, seed=1)
    again.load_state_dict(pickle.loads(pickle.dumps(first.state_dict())))
    assert got + list(again) == want


def test_the_datamodule_does_not_touch_the_global_rng():
    class Task:
        def problems(self, split):
            return list(range(9))

    data = PromptDataModule(Task(), 4, seed=0)
    before = torch.get_rng_state()
    assert sum(len(b) for b in data.train_dataloader()) == 9
    assert torch.equal(torch.get_rng_state(), before)


def test_a_kill_during_a_save_leaves_the_previous_checkpoint(tmp_path):
    """SIGKILL while torch.save is writing the new checkpoint: the old file is untouched."""
    target, marker = tmp_path / "last.ckpt", tmp_path / "writing"
    AtomicCheckpointIO().save_checkpoint({"step": 1, "w": torch.ones(3)}, target)
    child = subprocess.Popen(
        [sys.executable, "-c", SLOW_SAVE, str(target), str(marker)], cwd=REPO, env=dict(os.environ)
    )
    t0 = time.time()
    while not marker.exists():
        assert child.poll() is None and time.time() - t0 < 60
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    state = torch.load(target, weights_only=False)
    assert state["step"] == 1 and torch.equal(state["w"], torch.ones(3))


SLOW_SAVE = """
import sys, time, pathlib, torch
from gfpo_bench.checkpoint_io import AtomicCheckpointIO
marker = pathlib.Path(sys.argv[2])
class Slow:  # pickling it announces the write, then stalls half-way through the file
    def __reduce__(self):
        marker.touch(); time.sleep(60); return (int, ())
AtomicCheckpointIO().save_checkpoint({"step": 2, "w": torch.zeros(3), "slow": Slow()}, sys.argv[1])
"""
