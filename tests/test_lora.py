"""LoRA through peft, end to end on the embedded default: only adapters train, the reference is the
base model exactly, and checkpoints, final_model/, init_from and resume carry the adapter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import compose_cfg
from peft import PeftModel
from transformers import AutoModelForCausalLM

from gfpo_bench.errors import ConfigError
from gfpo_bench.models.logprobs import token_logprobs
from gfpo_bench.module import PairwiseRLModule
from gfpo_bench.train import run

LORA = [
    "logger=csv",
    "pairing=vapo",
    "trainer.max_steps=3",
    "prompts_per_step=4",
    "sampler.k=4",
    "callbacks.eval.every_n_steps=50",
    "callbacks.eval.max_problems=4",
    "model.lora.r=4",
]


def snapshot(module: PairwiseRLModule) -> dict:
    """Weights, and on the last sampled batch: policy, reference and plain-base log-probs."""
    rollouts = module.last_pairs[0]
    tokens, attn = rollouts.tokens, rollouts.attention_mask
    base_dir = module.model.peft_config["default"].base_model_name_or_path
    base = AutoModelForCausalLM.from_pretrained(base_dir).eval()  # the warm start, no adapters
    with torch.no_grad():
        return {
            "weights": {k: v.detach().clone() for k, v in module.model.state_dict().items()},
            "policy": token_logprobs(module.model.eval(), tokens, attn),
            "reference": module.reference_logprobs(tokens, attn),
            "base": token_logprobs(base, tokens, attn),
            "batch": (tokens, attn),
        }


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("lora") / "run"
    seen: dict = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            PairwiseRLModule,
            "on_train_start",
            lambda self: seen.setdefault("start", {k: v.clone() for k, v in self.model.state_dict().items()}),
        )
        mp.setattr(PairwiseRLModule, "on_train_end", lambda self: seen.setdefault("end", snapshot(self)))
        summary = run(compose_cfg(LORA, run_dir))
    return run_dir, summary, seen


def test_lora_trains_only_the_adapters(lora_run):
    _, summary, seen = lora_run
    assert summary["status"] == "completed" and summary["steps"] >= 1
    start, end = seen["start"], seen["end"]["weights"]
    adapters = [k for k in start if "lora_" in k]
    assert adapters and len(adapters) < len(start)
    for k in start:
        if "lora_" not in k:
            assert torch.equal(start[k], end[k]), f"base weight {k} changed"
    assert any(not torch.equal(start[k], end[k]) for k in adapters), "no adapter weight changed"


def test_lora_reference_is_the_base_model_exactly(lora_run):
    end = lora_run[2]["end"]
    assert torch.equal(end["reference"], end["base"])  # adapters off == the warm start, bit for bit
    assert not torch.equal(end["policy"], end["base"])  # and the trained adapters do change the policy


def test_lora_checkpoint_and_final_model_hold_the_adapter(lora_run):
    run_dir, _, seen = lora_run
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["state_dict"] and all("lora_" in k for k in ckpt["state_dict"])  # no frozen base copy

    final = run_dir / "final_model"
    assert (final / "adapter_config.json").is_file() and (final / "adapter_model.safetensors").is_file()
    assert not (final / "model.safetensors").exists()
    base_dir = json.loads((final / "adapter_config.json").read_text())["base_model_name_or_path"]
    loaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), str(final)).eval()
    tokens, attn = seen["end"]["batch"]
    with torch.no_grad():
        assert torch.allclose(token_logprobs(loaded, tokens, attn), seen["end"]["policy"], atol=1e-6)


def test_merge_lora_saves_a_plain_hf_model(tmp_path):
    seen = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(PairwiseRLModule, "on_train_end", lambda self: seen.setdefault("end", snapshot(self)))
        summary = run(compose_cfg([*LORA, "trainer.max_steps=2", "model.merge_lora=true"], tmp_path / "run"))
    final = Path(summary["final_model"])
    assert (final / "model.safetensors").is_file() and not (final / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(final).eval()  # plain transformers, no peft
    assert not any("lora" in k for k in merged.state_dict())
    tokens, attn = seen["end"]["batch"]
    with torch.no_grad():
        assert torch.allclose(token_logprobs(merged, tokens, attn), seen["end"]["policy"], atol=1e-5)


def test_init_from_a_lora_run_loads_its_adapter(lora_run, tmp_path):
    run_dir, _, seen = lora_run
    saved = {k: v for k, v in seen["end"]["weights"].items() if "lora_" in k}
    tokens, attn = seen["end"]["batch"]
    started = []  # (weights, log-probs on the LoRA run's last batch) as each run starts training

    def record(self):
        with torch.no_grad():
            logp = token_logprobs(self.model.eval(), tokens, attn)
        started.append(({k: v.clone() for k, v in self.model.state_dict().items()}, logp))

    one = [*LORA, "trainer.max_steps=1"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(PairwiseRLModule, "on_train_start", record)
        # a. its final_model/ (an adapter dir), on the branch sampler and the chunked log-prob path
        run(
            compose_cfg(
                [*one, "sampler=branch", "model.logits_budget=2000", f"init_from={run_dir}"], tmp_path / "a"
            )
        )
        # b. its Lightning checkpoint (adapter weights only)
        run(compose_cfg([*one, f"init_from={run_dir / 'checkpoints' / 'last.ckpt'}"], tmp_path / "b"))
        # c. a run without LoRA: the adapter is merged into its weights
        run(compose_cfg([*one, "model.lora.r=0", f"init_from={run_dir}"], tmp_path / "c"))
        # d. a LoRA run from full weights (run c's final_model): they become its frozen base
        run(compose_cfg([*one, f"init_from={tmp_path / 'c'}"], tmp_path / "d"))
    for weights, logp in started[:2]:
        for k, v in saved.items():
            assert torch.equal(weights[k], v), f"{k} does not come from the LoRA run"
        assert torch.allclose(logp, seen["end"]["policy"], atol=1e-5)
    assert not any("lora_" in k for k in started[2][0])
    assert torch.allclose(started[2][1], seen["end"]["policy"], atol=1e-5)  # merged == adapted
    c_final = AutoModelForCausalLM.from_pretrained(tmp_path / "c" / "final_model").state_dict()
    d_start = started[3][0]
    for k, v in c_final.items():
        k_peft = "base_model.model." + k
        k_peft = k_peft if k_peft in d_start else k_peft.replace(".weight", ".base_layer.weight")
        k_peft = k_peft if k_peft in d_start else k_peft.replace(".bias", ".base_layer.bias")
        assert torch.equal(d_start[k_peft], v), k
    assert all(not d_start[k].any() for k in d_start if "lora_B" in k)  # fresh adapters


def test_an_interrupted_lora_run_resumes_from_its_adapter_checkpoint(tmp_path):
    args = [*LORA, "trainer.max_steps=3", "callbacks.checkpoint.every_n_train_steps=1", "prompts_per_step=2"]
    real_step = PairwiseRLModule.training_step
    saved = {}

    def crash_at_step_2(self, batch, idx):
        if self.global_step == 2:
            saved.update({k: v.clone() for k, v in self.model.state_dict().items() if "lora_" in k})
            raise RuntimeError("node lost")
        return real_step(self, batch, idx)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(PairwiseRLModule, "training_step", crash_at_step_2)
        with pytest.raises(RuntimeError, match="node lost"):
            run(compose_cfg(args, tmp_path / "run"))
    resumed = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            PairwiseRLModule,
            "on_train_start",
            lambda self: resumed.update({k: v.clone() for k, v in self.model.state_dict().items()}),
        )
        summary = run(compose_cfg(args, tmp_path / "run"))
    assert summary["status"] == "completed" and summary["steps"] == 3
    for k, v in saved.items():  # the adapters as they were when the run died, not fresh ones
        assert torch.equal(resumed[k], v), k


def test_push_to_hub_fails_before_training_when_offline_or_logged_out(tmp_path, monkeypatch):
    import huggingface_hub

    from gfpo_bench import train

    monkeypatch.setattr(train, "build_model", lambda *a, **k: pytest.fail("training started"))
    cfg = compose_cfg([*LORA, "model.push_to_hub=someone/gfpo-test"], tmp_path / "run")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match="model.push_to_hub=someone/gfpo-test: HF_HUB_OFFLINE"):
        run(cfg)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(ConfigError, match="no Hugging Face token"):
        run(cfg)
