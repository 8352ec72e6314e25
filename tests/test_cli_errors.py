"""Bad input ends a run with one clear `error:` line and exit code 2, not a library traceback.

Every case goes through the real entry point (`python -m gfpo_bench.cli`) and must be rejected by
the config validator before a model is built, so each costs about one import of the CLI (and of
torch for the checks that build objects or read checkpoints). Each class of mistake the validator
handles has at least one case: ranges, legal-but-useless values, types, choices, rules across keys,
task knobs, data files, model paths, checkpoints / init_from, and hardware.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import compose_cfg, gfpo_bench

from gfpo_bench.validation import validate

CONF = Path(__file__).resolve().parents[1] / "gfpo_bench" / "conf"


# ---- files the file cases point at (each builder gets a fresh tmp dir, returns the overrides) ----
def gsm8k_dir(tmp: Path, train: str | None) -> Path:
    d = tmp / "gsm8k"
    d.mkdir()
    if train is not None:
        (d / "train.jsonl").write_text(train)
        (d / "test.jsonl").write_text(json.dumps({"question": "1+1?", "answer": "#### 2"}) + "\n")
    return d


def malformed_jsonl(tmp: Path) -> list[str]:
    good = json.dumps({"question": "1+1?", "answer": "#### 2"})
    d = gsm8k_dir(tmp, good + "\n" + good + "\n" + "{broken\n")
    return ["task=gsm8k", f"task.path={d}"]


def empty_data_file(tmp: Path) -> list[str]:
    d = gsm8k_dir(tmp, "")
    return ["task=gsm8k", f"task.path={d}"]


def empty_data_dir(tmp: Path) -> list[str]:
    return ["task=gsm8k", f"task.path={gsm8k_dir(tmp, None)}"]


def corrupt_ckpt(tmp: Path) -> list[str]:
    (tmp / "broken.ckpt").write_bytes(b"PK\x03\x04 this is not a checkpoint")
    return [f"init_from={tmp / 'broken.ckpt'}"]


def empty_init_dir(tmp: Path) -> list[str]:
    (tmp / "empty_run").mkdir()
    return [f"init_from={tmp / 'empty_run'}"]


def other_architecture(tmp: Path) -> list[str]:
    from safetensors.torch import save_file

    d = tmp / "other_model"
    d.mkdir()
    (d / "config.json").write_text(
        json.dumps({"model_type": "qwen2", "hidden_size": 64, "num_hidden_layers": 2})
    )
    save_file({"model.embed_tokens.weight": torch.zeros(4, 64)}, str(d / "model.safetensors"))
    return [f"init_from={d}"]


def corrupt_resume_checkpoint(tmp: Path) -> list[str]:
    ckpt = tmp / "run" / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"\x80\x02cut off mid-write")
    return []


CASES = [
    # (id, overrides or a builder of them, text the one error line must hold)
    ("k0", ["sampler.k=0"], "sampler.k=0: must be >= 1"),
    ("prompts0", ["prompts_per_step=0"], "prompts_per_step=0: must be >= 1"),
    ("lr-neg", ["optim.lr=-1"], "optim.lr=-1: must be > 0"),
    ("temp0", ["sampler.temperature=0"], "sampler.temperature=0: must be > 0"),
    ("top_p", ["sampler.top_p=1.5"], "sampler.top_p=1.5: must be in (0, 1]"),
    ("max_new0", ["sampler.max_new_tokens=0"], "sampler.max_new_tokens=0: must be >= 1"),
    ("steps0", ["trainer.max_steps=0"], "trainer.max_steps=0: must be >= 1"),
    ("eval-neg", ["callbacks.eval.every_n_steps=-1"], "callbacks.eval.every_n_steps=-1: must be >= 0"),
    ("noise", ["reward.noise=1.5"], "reward.noise=1.5: must be in [0, 1]"),
    ("n_train0", ["task.n_train=0"], "task.n_train=0: must be >= 1"),
    # legal but useless
    ("k1", ["sampler.k=1"], "no pair can ever form; use sampler.k>=2"),
    ("beta0", ["loss.beta=0"], "loss.beta=0: must be > 0 (at 0 the loss is a constant"),
    ("budget-neg", ["budget.max_tokens=-5"], "budget.max_tokens=-5: must be > 0"),
    (
        "weights0",
        ["reward.weights.final=0", "reward.weights.process=0", "reward.weights.format=0"],
        "no pair can form",
    ),
    ("init_opt", ["init_optimizer=true"], "init_optimizer=true needs init_from"),
    # types
    ("weight-str", ["reward.weights.final=abc"], "reward.weights.final='abc': must be a number"),
    ("k-float", ["sampler.k=2.5"], "sampler.k=2.5: must be a whole number"),
    ("bool", ["loss.use_reference=maybe"], "loss.use_reference='maybe': must be true or false"),
    # choices
    (
        "pairing",
        ["pairing.name=nope"],
        "unknown pairing strategy 'nope'; valid: dapo, gfpo, grpo, random, srpo, top2, vapo",
    ),
    ("process", ["reward.process=oracle"], "unknown process reward 'oracle'"),
    ("stage", ["stage=pretrain"], "stage='pretrain': must be one of rl, sft"),
    ("form", ["loss.form=median"], "loss.form='median': must be one of sum, mean"),
    # rules across keys
    ("dpo-positive", ["loss.use_reference=false"], "loss.positive_lambda needs loss.use_reference=true"),
    ("context", ["sampler.max_new_tokens=5000"], "exceeds the model's context"),
    (
        "schedule",
        ["schedule=srpo_to_gfpo", "schedule.second.start_tokens_frac=0.5"],
        "needs budget.max_tokens",
    ),
    # task knobs (the task's own constructor, reported before the model is built)
    ("operands", ["task.max_operands=1"], "need 2 <= min_operands <= max_operands"),
    ("slip", ["task.teacher_slip=2"], "task.teacher_slip=2: must be in [0, 1]"),
    # data files
    ("data-missing", ["task=gsm8k", "task.path=/no/such/gsm8k"], "data path not found: /no/such/gsm8k"),
    ("data-empty-dir", empty_data_dir, "holds no .jsonl or .json file"),
    ("data-empty-file", empty_data_file, "train.jsonl is empty"),
    ("data-malformed", malformed_jsonl, "train.jsonl:3: not valid JSON"),
    # model, checkpoints and warm starts
    ("model-path", ["model.name_or_path=/does/not/exist"], "model path not found: /does/not/exist"),
    ("init-missing", ["init_from=/no/such/run"], "init_from=/no/such/run: not found"),
    ("init-empty", empty_init_dir, "the directory is empty"),
    ("init-corrupt", corrupt_ckpt, "is not a readable checkpoint"),
    (
        "init-arch",
        other_architecture,
        "weights of another architecture: hidden_size 64 (this run's model: 128)",
    ),
    ("resume-corrupt", corrupt_resume_checkpoint, "last.ckpt is not a readable checkpoint"),
    # hardware
    ("gpu", ["trainer=gpu"], "no CUDA GPU is visible on this machine"),
    ("fsdp-cpu", ["trainer.devices=2", "trainer.strategy=fsdp"], "on CPU use trainer.strategy=ddp"),
]


@pytest.mark.parametrize("overrides, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gives_one_error_line(tmp_path, overrides, expected):
    args = overrides(tmp_path) if callable(overrides) else overrides
    if "trainer=gpu" in args and torch.cuda.is_available():
        pytest.skip("a GPU is visible here")
    proc = gfpo_bench(tmp_path, *args)
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "summary.json").exists(), "a rejected config runs nothing"


def test_debug_shows_the_traceback(tmp_path):
    for extra, env in (
        (["debug=true"], None),
        ([], {"GFPO_BENCH_DEBUG": "1"}),
        ([], {"HYDRA_FULL_ERROR": "1"}),
    ):
        proc = gfpo_bench(tmp_path, "sampler.k=0", *extra, env=env)
        assert proc.returncode == 2 and "Traceback" in proc.stderr, (extra, env, proc.stderr[-2000:])


def test_unknown_config_group_option_lists_choices(tmp_path):
    proc = gfpo_bench(tmp_path, "pairing=nope")
    assert proc.returncode != 0
    assert "Could not find 'pairing/nope'" in proc.stderr and "srpo" in proc.stderr


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize(
    "override",
    [
        f"{g}={o}"
        for g in ("task", "pairing", "sampler", "schedule", "experiment", "hparams_search")
        for o in _options(g)
    ]
    + ["model=hf", "trainer=cpu", ""],
)
def test_every_shipped_config_validates(override, tmp_path):
    extra = ["model.name_or_path=Qwen/Qwen2.5-0.5B-Instruct"] if override == "model=hf" else []
    # with a run dir, as the CLI has one (${hydra:runtime.output_dir} resolves without another test's)
    validate(compose_cfg([o for o in (override, *extra) if o], tmp_path / "run"))
