"""SFT + RL mixed (gfpo_bench/sft_mix.py): the supervised term on reference solutions is added to every
step's loss, with the same data for every method, and is off by default."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from helpers import TASK, TOK

from gfpo_bench.errors import ConfigError
from gfpo_bench.models.logprobs import completion_nll, token_logprobs
from gfpo_bench.models.prompting import PromptFormatter, encode_prompt
from gfpo_bench.models.sft import encode_examples
from gfpo_bench.models.tiny import build_tiny_model
from gfpo_bench.sft_mix import MixedOutput, SupervisedMix
from gfpo_bench.tasks.format import parse_completion
from gfpo_bench.train import run


class _Module:  # what SupervisedMix reads from the LightningModule
    def __init__(self, model):
        self.model, self.tok, self.task, self.device, self.logits_budget = model, TOK, TASK, "cpu", None
        self.sampler = type("S", (), {"formatter": PromptFormatter()})()


def test_arith_references_are_the_clean_worked_solutions():
    problems = TASK.problems("train")[:200]
    refs = [TASK.reference_solution(p) for p in problems]
    assert any(r != p.solution for r, p in zip(refs, problems))  # the teacher slipped on some
    for p, ref in zip(problems, refs):
        parsed = parse_completion(ref)
        assert parsed.answer == p.answer and set(TASK.verify_steps(p, parsed.steps)) == {1}


def test_the_term_is_the_nll_of_the_references_and_adds_to_the_methods_loss():
    torch.manual_seed(0)
    model = build_tiny_model(len(TOK), hidden=32, layers=1, heads=2, max_len=128, seed=0)
    problems = TASK.problems("train")[:3]
    mix = SupervisedMix(coef=0.5)
    prompts = [encode_prompt(TOK, PromptFormatter(), TASK, p) for p in problems]
    tokens, attn, comp = encode_examples(TOK, prompts, [TASK.reference_solution(p) for p in problems])
    want = completion_nll(token_logprobs(model, tokens, attn), comp)
    inner = type("Out", (), {"loss": torch.tensor(2.0), "metrics": lambda self: {"train/loss": 2.0}})()
    out = mix.mix(_Module(model), problems, inner)
    assert isinstance(out, MixedOutput)
    assert torch.allclose(out.nll, want) and torch.allclose(out.loss, 2.0 + 0.5 * want)
    assert out.metrics()["train/sft_mix_nll"] == pytest.approx(want.item())
    alone = mix.mix(_Module(model), problems, None)  # a step without pairs still takes the term
    assert torch.allclose(alone.loss, 0.5 * want)
    alone.loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_off_by_default_and_a_negative_coef_is_a_clear_error():
    inner = object()
    assert SupervisedMix().mix(None, [], inner) is inner
    with pytest.raises(ConfigError, match="module.sft_mix.coef"):
        SupervisedMix(coef=-1)


@pytest.mark.parametrize("pairing", ["gfpo", "grpo"])
def test_a_mixed_run_logs_the_term_every_step(pairing, run_cfg):
    cfg = run_cfg(f"pairing={pairing}", "module.sft_mix.coef=0.1")
    summary = run(cfg)
    assert summary["status"] == "completed"
    with open(Path(cfg.hydra.runtime.output_dir) / "csv" / "metrics.csv") as f:
        nll = [float(r["train/sft_mix_nll"]) for r in csv.DictReader(f) if r.get("train/sft_mix_nll")]
    assert len(nll) == summary["steps"] and all(x > 0 for x in nll)
    assert summary["skipped_batches"] == 0  # the supervised term is a signal of its own
