"""`model=hf` end to end on CPU: a hub-like model dir (tests/hf_fixture.py: byte-level BPE trained on
GSM8K, ChatML template, random-init Qwen2) trains for a few steps on GSM8K and is scored by
`gfpo-bench-eval`, with the chat template on every prompt, step spans on BPE tokens and math-verify
on the model's output."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import compose_cfg
from hf_fixture import GSM8K, SCRIPTS
from safetensors.torch import load_file
from transformers import AutoTokenizer

from gfpo_bench.eval.cli import run_eval
from gfpo_bench.models.factory import build_model
from gfpo_bench.models.prompting import SYSTEM_PROMPT, PromptFormatter
from gfpo_bench.rewards.reward import Reward
from gfpo_bench.sampling.steps import step_spans
from gfpo_bench.tasks import math_bench
from gfpo_bench.tasks.format import parse_completion
from gfpo_bench.tasks.math_bench import GSM8KTask
from gfpo_bench.train import run

pytest_plugins = ("hf_fixture",)  # the session-scoped `hub_model` fixture

HF = ["model=hf", "model.dtype=float32", "task=gsm8k", f"task.path={GSM8K}"]
SCRIPT_STEPS = parse_completion(SCRIPTS[0]).steps  # ['She sold 48 clips.', 'Then half as many']


def _spans_text(tok, ids: list[int], spans) -> list[str]:
    return [tok.decode(ids[a:b]).strip() for a, b in spans]


def test_chat_template_wraps_the_prompt(hub_model):
    cfg = compose_cfg([*HF, f"model.name_or_path={hub_model}"])
    task = GSM8KTask(path=str(GSM8K))
    _, tok, formatter = build_model(cfg.model, task)
    assert formatter.chat_template
    question = task.prompt(task.problems("train")[0])
    text = formatter(tok, question)
    assert text == (
        f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert ids[0] == tok.convert_tokens_to_ids("<|im_start|>") and tok.decode(ids) == text
    bare = compose_cfg([*HF, f"model.name_or_path={hub_model}", "model.chat_template=false"])
    assert build_model(bare.model, task)[2](tok, question) == question + "\n"


def test_a_template_without_a_system_role_gets_the_instructions_in_the_user_turn(hub_model):
    tok = AutoTokenizer.from_pretrained(hub_model)
    tok.chat_template = (  # Gemma's rule: a system message raises
        "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    text = PromptFormatter(chat_template=True)(tok, "What is 2+2?")
    assert text == f"<|im_start|>user\n{SYSTEM_PROMPT}\n\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"


def test_step_spans_on_bpe_tokens_of_a_reference_solution(hub_model):
    """A random model writes no steps, so the spans are checked on GSM8K's worked solutions."""
    tok = AutoTokenizer.from_pretrained(hub_model)
    for problem in GSM8KTask(path=str(GSM8K)).problems("train")[:20]:
        ids = tok(problem.solution, add_special_tokens=False)["input_ids"]
        assert len(ids) < len(problem.solution)  # BPE: fewer tokens than characters
        spans = step_spans(tok, ids)
        assert _spans_text(tok, ids, spans) == parse_completion(problem.solution).steps
        assert all(tok.decode(ids[a:b]).endswith("\n") for a, b in spans)  # a step owns its newline


def test_hf_model_trains_on_gsm8k(hub_model, tmp_path, monkeypatch):
    seen = {"prompts": [], "rollouts": [], "verified": []}
    fmt_call, reward_call, match = PromptFormatter.__call__, Reward.__call__, math_bench.answers_match

    def spy_fmt(self, tok, question):
        out = fmt_call(self, tok, question)
        seen["prompts"].append(out)
        return out

    def spy_reward(self, task, rollouts):
        seen["rollouts"].append(rollouts)
        return reward_call(self, task, rollouts)

    def spy_match(given, gold):
        seen["verified"].append(given)
        return match(given, gold)

    monkeypatch.setattr(PromptFormatter, "__call__", spy_fmt)
    monkeypatch.setattr(Reward, "__call__", spy_reward)
    monkeypatch.setattr(math_bench, "answers_match", spy_match)
    run_dir = tmp_path / "run"
    cfg = compose_cfg(
        [
            *HF,
            f"model.name_or_path={hub_model}",
            "++model.threads=1",
            "logger=csv",
            "trainer.max_steps=2",
            "prompts_per_step=2",
            "sampler.k=4",
            "sampler.max_new_tokens=24",
            "reward.noise=0.5",  # few GSM8K answers are 72 or 6: flipped final rewards make pairs
            "callbacks.eval.every_n_steps=2",
            "callbacks.eval.max_problems=3",
            "callbacks.eval.sampled_n=2",
        ],
        run_dir,
    )
    summary = run(cfg)

    assert summary["status"] == "completed" and summary["steps"] >= 1
    assert summary["pair_stats"]["pairs_per_step"] > 0  # the loss ran on BPE sequences
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
    assert seen["prompts"] and all(p.startswith("<|im_start|>system\n") for p in seen["prompts"])
    assert set(seen["verified"]) == {"72", "6"}  # math-verify saw the model's answers
    rollouts = seen["rollouts"][0]
    tok = AutoTokenizer.from_pretrained(hub_model)
    assert set(rollouts.texts) == set(SCRIPTS)  # generated by the model, decoded from BPE ids
    for i in range(rollouts.n):
        ids = rollouts.tokens[i].tolist()
        assert _spans_text(tok, ids, rollouts.step_spans[i]) == SCRIPT_STEPS
    assert 0.0 <= summary["metrics"]["val/math/accuracy"] <= 1.0
    start, end = (
        load_file(str(hub_model / "model.safetensors")),
        load_file(str(run_dir / "final_model" / "model.safetensors")),
    )
    assert any(not torch.equal(start[k], end[k]) for k in start), "parameters did not change"
    assert AutoTokenizer.from_pretrained(run_dir / "final_model").chat_template == tok.chat_template


@pytest.mark.parametrize("source", ["name_or_path", "checkpoint"])
def test_eval_cli_scores_the_hf_model(hub_model, tmp_path, source):
    model = (
        [f"model.name_or_path={hub_model}"]
        if source == "name_or_path"
        else [f"model.name_or_path={hub_model}", f"checkpoint={hub_model}"]
    )
    run_dir = tmp_path / "eval"
    out = run_eval(
        compose_cfg(
            [*HF, *model, "++model.threads=1", "limit=3", "max_new_tokens=24"], run_dir, config_name="eval"
        )
    )
    samples = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    assert out["problems"] == 3 and len(samples) == 3
    assert all(s["format_ok"] for s in samples)
    assert out["metrics"]["test/gsm8k/accuracy"] == sum(s["correct"] for s in samples) / 3
