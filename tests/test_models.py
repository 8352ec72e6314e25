"""The embedded model and tokenizer go through the same transformers save/load path as hub models."""

from __future__ import annotations

import pytest
import torch

from gfpo_bench.errors import ConfigError, ModelLoadError
from gfpo_bench.models.loading import load_model_and_tokenizer
from gfpo_bench.models.tiny import build_tiny_model
from gfpo_bench.models.tokenizer import build_char_tokenizer
from gfpo_bench.sampling.steps import step_spans


def test_tokenizer_and_model_round_trip_through_from_pretrained(tmp_path):
    tok = build_char_tokenizer()
    model = build_tiny_model(len(tok), 32, 2, 2, 64, seed=0).eval()
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    model2, tok2 = load_model_and_tokenizer(str(tmp_path))
    text = "12+3=?\n<think>\n12+3=15\n</think>\n<answer>15</answer>"
    ids = tok2(text, add_special_tokens=False)["input_ids"]
    assert ids == tok(text, add_special_tokens=False)["input_ids"]
    assert tok2.decode(ids) == text
    x = torch.tensor([ids])
    with torch.no_grad():
        assert torch.allclose(model(x).logits, model2.eval()(x).logits, atol=1e-6)
    assert tok2.padding_side == "left" and tok2.pad_token_id is not None


def test_step_spans_cover_each_reasoning_line():
    tok = build_char_tokenizer()
    ids = tok("<think>\n3+4=7\n7-2=5\n</think>\n<answer>5</answer>", add_special_tokens=False)["input_ids"]
    spans = step_spans(tok, ids)
    assert [tok.decode(ids[a:b]) for a, b in spans] == ["3+4=7\n", "7-2=5\n"]


def test_missing_model_path_is_one_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="model path not found"):
        load_model_and_tokenizer(str(tmp_path / "nope"))
    dtype = r"^model\.dtype='float8': must be one of float32, bfloat16, float16$"  # config_schema.py's words
    with pytest.raises(ConfigError, match=dtype):
        load_model_and_tokenizer(str(tmp_path), dtype="float8")


def test_sft_warm_start_is_cached_and_reloadable(model_cache):
    from gfpo_bench.models.sft import SFTConfig
    from gfpo_bench.models.tiny import ensure_tiny
    from gfpo_bench.tasks.arith import ArithTask

    task = ArithTask()
    a = ensure_tiny(
        task, str(model_cache), hidden=32, layers=1, heads=2, sft=SFTConfig(steps=3), task_key="t"
    )
    mtime = (a / "model.safetensors").stat().st_mtime
    b = ensure_tiny(
        task, str(model_cache), hidden=32, layers=1, heads=2, sft=SFTConfig(steps=3), task_key="t"
    )
    assert a == b and (b / "model.safetensors").stat().st_mtime == mtime  # second call: no retraining
    load_model_and_tokenizer(str(b))


def _build_in_subprocess(cache: str, queue) -> None:
    from gfpo_bench.models.sft import SFTConfig
    from gfpo_bench.models.tiny import ensure_tiny
    from gfpo_bench.tasks.arith import ArithTask

    path = ensure_tiny(
        ArithTask(), cache, hidden=32, layers=1, heads=2, sft=SFTConfig(steps=40), task_key="race"
    )
    queue.put((str(path), (path / "model.safetensors").stat().st_mtime_ns))


def test_two_processes_building_the_same_warm_start_do_not_race(tmp_path):
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_build_in_subprocess, args=(str(tmp_path), queue)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0, 0]
    a, b = queue.get(timeout=5), queue.get(timeout=5)
    assert a == b  # same directory, written once: the second process waited and loaded it
    assert not list(tmp_path.glob("*.tmp"))


def test_warm_start_build_is_deterministic():
    """Two SFT builds in one process give bit-identical weights (the warm start is part of the
    experiment, so it must not depend on anything but its config)."""
    import torch

    from gfpo_bench.models.sft import SFTConfig, supervised_finetune
    from gfpo_bench.models.tiny import build_tiny_model
    from gfpo_bench.models.tokenizer import build_char_tokenizer
    from gfpo_bench.tasks.arith import ArithTask

    def build():
        tok = build_char_tokenizer()
        model = build_tiny_model(len(tok), 32, 1, 2, 256, seed=0)
        supervised_finetune(
            model, tok, ArithTask(teacher_slip=0.6), SFTConfig(steps=15, batch_size=8), seed=0
        )
        return model.state_dict()

    a, b = build(), build()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_warm_start_cache_key_covers_the_task_generator_code():
    from gfpo_bench.models.tiny import code_fingerprint
    from gfpo_bench.tasks.arith import ArithTask
    from gfpo_bench.tasks.code_synth import CodeSynthTask

    assert code_fingerprint(ArithTask()) != code_fingerprint(CodeSynthTask(n_train=2, n_val=1, n_test=1))


def test_warm_start_cache_key_covers_the_task_base_classes():
    """The split-and-generate loop lives in tasks/synthetic.py: editing it must build a new warm start."""
    from gfpo_bench.models.tiny import fingerprint_files
    from gfpo_bench.tasks.arith import ArithTask
    from gfpo_bench.tasks.code_synth import CodeSynthTask

    names = {f.split("gfpo_bench/")[-1] for f in fingerprint_files(ArithTask())}
    assert {"tasks/arith.py", "tasks/synthetic.py", "tasks/base.py", "models/sft.py"} <= names
    assert "tasks/code_base.py" not in names
    code = {
        f.split("gfpo_bench/")[-1] for f in fingerprint_files(CodeSynthTask(n_train=2, n_val=1, n_test=1))
    }
    assert {"tasks/code_synth.py", "tasks/synthetic.py", "tasks/code_base.py", "tasks/base.py"} <= code


def test_building_the_warm_start_does_not_shift_the_runs_sampling(run_cfg, tmp_path, monkeypatch):
    """A run that builds its warm start (SFT draws from torch's RNG) samples exactly like the same run
    finding it cached; otherwise the first job of a sweep on a fresh machine would differ."""
    from gfpo_bench.train import run

    monkeypatch.setenv("GFPO_BENCH_CACHE", str(tmp_path / "fresh-cache"))
    small = ["model.sft.steps=3", "model.hidden=32", "model.layers=1", "model.heads=2", "trainer.max_steps=1"]
    small += ["callbacks.eval.at_start=false", "callbacks.eval.max_problems=2"]
    built = run(run_cfg(*small))  # builds the warm start in this process
    cached = run(run_cfg(*small, "resume=never"))  # finds it
    assert built["tokens_generated"] == cached["tokens_generated"]
    assert built["pair_stats"] == cached["pair_stats"]
