"""A full disk at checkpoint time: the previous checkpoint survives and the run ends with one line.

The fault is injected where it would hit: `torch.save` inside the CheckpointIO writes part of the
file and then fails as it does on a full disk (measured on a 16 MiB tmpfs): the write raises
OSError(ENOSPC), and torch's zip writer turns it into `RuntimeError: [enforce fail at
inline_container.cc:672] . unexpected pos ...`. Both forms are tested.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
import torch

from gfpo_bench import checkpoint_io
from gfpo_bench.checkpoint_io import AtomicCheckpointIO
from gfpo_bench.errors import CheckpointWriteError


def disk_fills_up(after_calls: int, as_torch_does: bool = True):
    """A torch.save that works `after_calls` times, then writes a few bytes and hits a full disk."""
    real, calls = torch.save, {"n": 0}

    def save(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] <= after_calls:
            return real(obj, f, *args, **kwargs)
        f.write(b"PK\x03\x04 half a checkpoint")
        full = OSError(errno.ENOSPC, "No space left on device")
        if not as_torch_does:
            raise full
        try:
            raise full
        except OSError:
            raise RuntimeError(  # noqa: B904  (torch chains the OSError implicitly, like this)
                "[enforce fail at inline_container.cc:672] . unexpected pos 6250240 vs 6250132"
            )

    return save


@pytest.mark.parametrize("as_torch_does", [True, False])
def test_a_failed_write_leaves_the_previous_checkpoint_and_no_temp_file(tmp_path, monkeypatch, as_torch_does):
    io, path = AtomicCheckpointIO(), tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "global_step": 2}, path)
    monkeypatch.setattr(
        checkpoint_io.torch, "save", disk_fills_up(after_calls=0, as_torch_does=as_torch_does)
    )
    with pytest.raises(CheckpointWriteError, match="No space left on device.*previous last.ckpt is intact"):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "global_step": 4}, path)
    kept = torch.load(path, weights_only=False)
    assert kept["global_step"] == 2 and kept["state_dict"]["w"].tolist() == [1.0, 1.0, 1.0]
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]


def test_a_run_that_fills_the_disk_fails_with_one_line_and_keeps_its_checkpoint(run_cfg, monkeypatch, capsys):
    from gfpo_bench.cli import report_failure
    from gfpo_bench.train import run

    # FAST: 3 steps, a checkpoint every 2; the 1st save (step 2) works, the 2nd (the final one) fails
    monkeypatch.setattr(checkpoint_io.torch, "save", disk_fills_up(after_calls=1))
    cfg = run_cfg("callbacks.eval.at_start=false")
    run_dir = Path(cfg.hydra.runtime.output_dir)
    with pytest.raises(CheckpointWriteError) as failure:
        run(cfg)
    last = run_dir / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["global_step"] == 2  # the step-2 checkpoint, whole

    capsys.readouterr()  # the run's own output (progress bars) is not the failure report
    with pytest.raises(SystemExit) as exit_:
        report_failure(failure.value, cfg, run_dir, multirun=False, validated=True, t0=0.0)
    assert exit_.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: could not write checkpoint"), err
    assert f"traceback: {run_dir / 'error.log'}" in err[0] and "previous last.ckpt is intact" in err[0]
    assert "CheckpointWriteError" in (run_dir / "error.log").read_text()
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "failed"
