"""Bad input ends a run with one clear `error:` line and exit code 2, not a library traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

BASE = ["logger=csv", "trainer.max_steps=1", "callbacks.eval.max_problems=4"]


def gfpo_bench(tmp_path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [sys.executable, "-m", "gfpo_bench.cli", *BASE, f"hydra.run.dir={tmp_path}/run", *overrides],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (
            ["pairing.name=nope"],
            "unknown pairing strategy 'nope'; valid: dapo, gfpo, random, srpo, top2, vapo",
        ),
        (["model.name_or_path=/does/not/exist"], "model path not found: /does/not/exist"),
        (["task.n_train=0"], "arith/train: no problems"),
        (["sampler.max_new_tokens=5000"], "exceeds the model's context"),
        (["reward.process=oracle"], "unknown process reward 'oracle'"),
        (["stage=pretrain"], "stage must be 'rl' or 'sft'"),
    ],
)
def test_bad_input_gives_one_error_line(tmp_path, overrides, expected):
    proc = gfpo_bench(tmp_path, *overrides)
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


def test_unknown_config_group_option_lists_choices(tmp_path):
    proc = gfpo_bench(tmp_path, "pairing=nope")
    assert proc.returncode != 0
    assert "Could not find 'pairing/nope'" in proc.stderr and "srpo" in proc.stderr
