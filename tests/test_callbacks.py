"""Every callback of a run comes from config (conf/callbacks/default.yaml): composed from the real
config, `instantiate_callbacks` gives the list train.py used to build by hand, same types, same
order, same arguments; code defaults equal the YAML; extra eval tasks are composed by Hydra (the
old list syntax fails with one line that shows the new one); callbacks keep their own state."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch
from helpers import FAST, TASK, comp, compose_cfg, problem, rollouts
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
from omegaconf import OmegaConf

from gfpo_bench.callbacks import check_extra_tasks, instantiate_callbacks, summary_fields
from gfpo_bench.callbacks.evaluation import EvalCallback
from gfpo_bench.callbacks.pair_stats import PairStatsRecorder
from gfpo_bench.callbacks.pair_table import PairTableCallback
from gfpo_bench.callbacks.preemption import SaveOnSigterm
from gfpo_bench.csv_log import CSVResume
from gfpo_bench.errors import ConfigError
from gfpo_bench.tasks.arith import ArithTask
from gfpo_bench.tasks.code_synth import CodeSynthTask

YAML = Path(__file__).resolve().parents[1] / "conf" / "callbacks" / "default.yaml"


def hand_built(cfg, run_dir: Path) -> list:
    """The callbacks as train.py built them before they came from config (its `run`, verbatim but
    for `extra_tasks`, which was a list of task names then)."""
    ev = cfg.callbacks.eval
    return [
        EvalCallback(
            split=ev.split,
            every_n_steps=ev.every_n_steps,
            max_problems=ev.max_problems,
            at_start=ev.at_start,
            max_new_tokens=ev.get("max_new_tokens"),
            extra_tasks={},
            sampled_n=ev.get("sampled_n", 4),
        ),
        ModelCheckpoint(
            dirpath=run_dir / "checkpoints",
            save_last=True,
            save_top_k=0,
            every_n_train_steps=cfg.callbacks.checkpoint.every_n_train_steps,
        ),
        TQDMProgressBar(refresh_rate=1),
        PairStatsRecorder(),
        PairTableCallback(
            every_n_steps=cfg.callbacks.pair_table.every_n_steps, rows=cfg.callbacks.pair_table.rows
        ),
        SaveOnSigterm(run_dir / "checkpoints" / "last.ckpt"),
        CSVResume(),
    ]


def state(cb) -> dict:
    return {k: v for k, v in vars(cb).items() if k not in ("_last_time_checked",)}  # ModelCheckpoint's clock


@pytest.mark.parametrize(
    "overrides", [[], FAST, ["callbacks.eval.every_n_steps=7", "callbacks.pair_table.rows=3"]]
)
def test_the_config_gives_the_hand_built_callbacks(tmp_path, overrides):
    cfg = compose_cfg(overrides, tmp_path / "run")
    built, expected = instantiate_callbacks(cfg.callbacks), hand_built(cfg, tmp_path / "run")
    assert [type(c) for c in built] == [type(c) for c in expected]
    for got, want in zip(built, expected):
        assert state(got) == state(want), type(got).__name__
    assert built[1].dirpath == str((tmp_path / "run" / "checkpoints").resolve())


def test_code_defaults_equal_the_yaml():
    yaml = OmegaConf.to_container(OmegaConf.load(YAML))
    for name, conf in yaml.items():
        cls = instantiate_class(conf.pop("_target_"))
        params = inspect.signature(cls.__init__).parameters
        for key, value in conf.items():
            default = params[key].default
            if default is inspect.Parameter.empty:  # a value the code has no default for (paths)
                continue
            if cls.__module__.startswith("gfpo_bench"):
                assert default == value, f"callbacks.{name}.{key}: code {default!r} != yaml {value!r}"
        if cls is EvalCallback:  # every constructor argument is settable from config
            assert set(params) - {"self"} == set(conf)


def instantiate_class(target: str):
    import importlib

    module, _, name = target.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_extra_eval_tasks_are_composed_by_hydra(tmp_path):
    cfg = compose_cfg(
        ["+task@callbacks.eval.extra_tasks.code=code", "+task@callbacks.eval.extra_tasks.arith2=arith",
         "callbacks.eval.extra_tasks.arith2.digits=2"],
        tmp_path / "run",
    )  # fmt: skip
    (ev,) = [c for c in instantiate_callbacks(cfg.callbacks) if isinstance(c, EvalCallback)]
    assert list(ev.extra_tasks) == ["code", "arith2"]
    code, arith = ev.extra_tasks["code"], ev.extra_tasks["arith2"]
    assert isinstance(code, CodeSynthTask) and isinstance(arith, ArithTask) and arith.digits == 2
    assert ev.extra_tasks["code"].problems("val") == CodeSynthTask().problems("val")  # conf/task/code.yaml


def test_unknown_extra_task_lists_the_task_options(tmp_path):
    with pytest.raises(Exception, match=r"Could not find 'task/nope'") as err:
        compose_cfg(["+task@callbacks.eval.extra_tasks.nope=nope"], tmp_path / "run")
    assert "code" in str(err.value) and "gsm8k" in str(err.value)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["callbacks.eval.extra_tasks=[code,arith]"],
            "callbacks.eval.extra_tasks=[code,arith] is the old syntax; extra eval tasks are composed by "
            "Hydra now, one override per task: +task@callbacks.eval.extra_tasks.code=code "
            "+task@callbacks.eval.extra_tasks.arith=arith",
        ),
        (
            ["+callbacks.eval.extra_tasks.code=code"],
            "callbacks.eval.extra_tasks.code=code is a name, not a task config; compose it with "
            "+task@callbacks.eval.extra_tasks.code=code",
        ),
        (["callbacks.eval.extra_tasks=code"], "callbacks.eval.extra_tasks=code is not a dict of tasks"),
    ],
)
def test_old_extra_tasks_syntax_fails_with_the_new_one(tmp_path, overrides, message):
    cfg = compose_cfg(overrides, tmp_path / "run")
    with pytest.raises(ConfigError) as err:
        instantiate_callbacks(cfg.callbacks)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
    with pytest.raises(ConfigError):
        check_extra_tasks(cfg.callbacks.eval.extra_tasks)  # what validation can call, before any build


def test_a_bad_constructor_argument_is_a_config_error_not_a_hydra_wrapper(tmp_path):
    cfg = compose_cfg(["callbacks.eval.sampled_n=-1"], tmp_path / "run")
    with pytest.raises(ConfigError, match=r"^callbacks\.eval\.sampled_n=-1: must be >= 0$"):
        instantiate_callbacks(cfg.callbacks)


def test_a_callback_can_be_turned_off_and_the_order_is_the_yaml_order(tmp_path):
    cfg = compose_cfg(["~callbacks.pair_table"], tmp_path / "run")
    names = [type(c).__name__ for c in instantiate_callbacks(cfg.callbacks)]
    assert names == [
        "EvalCallback", "ModelCheckpoint", "TQDMProgressBar", "PairStatsRecorder", "SaveOnSigterm", "CSVResume"
    ]  # fmt: skip


def test_callbacks_keep_their_state_and_report_it_to_the_summary():
    ev, rec = EvalCallback(), PairStatsRecorder()
    ev.record(0, {"val/math/accuracy": 0.5, "val/tokens_generated": 0.0})
    ev.record(10, {"val/math/accuracy": 0.75, "val/tokens_generated": 10.0})

    class Trainer:
        callback_metrics = {"train/pairs": torch.tensor(4.0), "train/reward_gap": torch.tensor(1.0)}

    rec.on_train_batch_end(Trainer(), None, None, None, 0)
    Trainer.callback_metrics = {"train/pairs": torch.tensor(2.0)}  # reward_gap not logged: carried
    rec.on_train_batch_end(Trainer(), None, None, None, 1)
    ev.start_weights = "5e1f"  # set at train start: the hash of the weights step 0 evaluates
    fields = summary_fields([ev, TQDMProgressBar(), rec])
    assert fields == {
        "metrics": {"val/math/accuracy": 0.75, "val/tokens_generated": 10.0},
        "eval_history": [
            {"step": 0, "val/math/accuracy": 0.5, "val/tokens_generated": 0.0},
            {"step": 10, "val/math/accuracy": 0.75, "val/tokens_generated": 10.0},
        ],
        "warm_start_weights": "5e1f",
        "pair_stats": {"pairs_per_step": 3.0, "reward_gap": 1.0},
    }
    ev2, rec2 = EvalCallback(), PairStatsRecorder()  # a resumed run's callbacks
    ev2.load_state_dict(ev.state_dict())
    rec2.load_state_dict(rec.state_dict())
    assert summary_fields([ev2, rec2]) == fields and ev2.last_step == 10


def test_reward_components_of_evaluated_samples_are_the_rewards_of_training():
    from gfpo_bench.rewards.reward import Reward

    p = problem([3, 4, 2], ["+", "-"])
    paths = [p.solution, comp("3+4=8", "8-2=6", answer="6"), comp("3+4=7", answer="9"), "<answer>5</answer>"]
    r, _ = rollouts([(p, paths), (TASK.problems("test")[0], [TASK.problems("test")[0].solution, "x"])])
    for reward in (Reward(), Reward({"final": 1.0, "process": 0.3, "format": 0.1}, wrong_final=-1.0)):
        out = reward(TASK, r)
        mine = reward.components(r, out.correct, out.step_scores)
        for k in ("final", "process", "format", "total"):
            assert torch.equal(getattr(out, k), getattr(mine, k)), k  # bit-identical: combined the same way
        assert out.total.unique().numel() > 2  # the paths differ in every component


def test_the_cli_reports_the_old_extra_tasks_syntax_in_one_line(tmp_path):
    from helpers import gfpo_bench

    proc = gfpo_bench(tmp_path, "callbacks.eval.extra_tasks=[code]")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: callbacks.eval.extra_tasks=[code] is the old syntax; extra eval tasks are composed by "
        "Hydra now, one override per task: +task@callbacks.eval.extra_tasks.code=code"
    )
    assert "Traceback" not in proc.stderr


def test_sampled_accuracy_samples_even_with_one_sample_per_problem():
    """callbacks.eval.sampled_n=1 must sample at the sampler's temperature, not decode greedily."""
    from types import SimpleNamespace

    from gfpo_bench.models.prompting import PromptFormatter
    from gfpo_bench.models.tiny import build_tiny_model
    from gfpo_bench.models.tokenizer import build_char_tokenizer

    tok = build_char_tokenizer()
    torch.manual_seed(0)
    model = build_tiny_model(len(tok), 32, 1, 2, 256, 0)  # random weights: spread-out next tokens
    gen = SimpleNamespace(temperature=1.0, top_p=1.0, max_new_tokens=12)
    module = SimpleNamespace(
        model=model, tok=tok, sampler=SimpleNamespace(formatter=PromptFormatter(), gen=gen)
    )
    problems = TASK.problems("val")[:4]
    ev = EvalCallback(sampled_n=1)
    outs = {}
    for sampled in (False, True):
        policy = ev.policy(module, TASK, sampled=sampled)
        outs[sampled] = []
        for seed in (0, 1):
            torch.manual_seed(seed)
            outs[sampled].append(policy.complete(problems))
    assert outs[False][0] == outs[False][1]  # greedy: the same whatever the seed
    assert outs[True][0] != outs[True][1]  # sampled: the seed matters


def test_checkpoints_from_before_the_callbacks_kept_their_results_still_resume():
    """Older checkpoints: EvalCallback state without latest_metrics, the pair history on the module."""
    history = [
        {"step": 0, "val/math/accuracy": 0.6, "val/arith/format": 1.0},
        {"step": 2, "val/math/accuracy": 0.7},
    ]
    pairs = [{"train/pairs": 4.0}, {"train/pairs": 6.0}]
    ev, rec = EvalCallback(), PairStatsRecorder()
    ev.load_state_dict({"history": history, "last_step": 2})
    rec.on_load_checkpoint(None, None, {"gfpo_state": {"pair_history": pairs, "final_metrics": {}}})
    assert ev.latest_metrics == {"val/math/accuracy": 0.7, "val/arith/format": 1.0}  # what final_metrics was
    assert rec.history == pairs and rec.summary_fields()["pair_stats"] == {"pairs_per_step": 5.0}
    rec.load_state_dict({"history": pairs[:1]})  # a new checkpoint's own state wins
    assert rec.history == pairs[:1]
