"""Build (model, tokenizer, prompt formatter) from the `model` config group, by `model.kind`.

- `tiny`: the embedded default, SFT-warm-started and cached (see tiny.py); loaded back through
  transformers' from_pretrained like any hub model.
- `hf`: any causal LM by hub name or local directory (`model.name_or_path`).
- `reference`, `reference_corrupted`: not models; `gfpo-bench-eval` only (see eval/cli.py).

Both trainable kinds take `model.gradient_checkpointing` (recompute each layer's activations in
backward) and `model.lora` (peft LoRA adapters, see lora.py) after loading.
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from gfpo_bench.errors import ConfigError, ModelLoadError
from gfpo_bench.models.loading import load_model_and_tokenizer
from gfpo_bench.models.lora import apply_lora
from gfpo_bench.models.prompting import PromptFormatter
from gfpo_bench.models.sft import SFTConfig
from gfpo_bench.models.tiny import ensure_tiny
from gfpo_bench.registry import Registry
from gfpo_bench.tasks.base import Task

MODEL_BUILDERS: Registry = Registry("model kind")


@MODEL_BUILDERS.register("tiny")
def build_tiny(cfg: DictConfig, task: Task, task_key: str):
    # Building the warm start (SFT) draws from torch's global RNG; forked, so a run that builds it
    # samples exactly like a run that finds it cached.
    with torch.random.fork_rng(devices=[]):
        path = cfg.get("name_or_path") or ensure_tiny(
            task,
            cache_dir=cfg.cache_dir,
            hidden=cfg.hidden,
            layers=cfg.layers,
            heads=cfg.heads,
            max_len=cfg.max_len,
            seed=cfg.seed,
            sft=SFTConfig(**cfg.sft),
            task_key=task_key,
            warm_start=cfg.get("warm_start", "shipped"),
        )
    model, tok = load_model_and_tokenizer(str(path), cfg.dtype)
    return adapt(model, cfg), tok, PromptFormatter(chat_template=False)


@MODEL_BUILDERS.register("hf")
def build_hf(cfg: DictConfig, task: Task, task_key: str):
    if not cfg.get("name_or_path"):
        raise ModelLoadError("model=hf needs model.name_or_path=<hub name or local dir>")
    model, tok = load_model_and_tokenizer(cfg.name_or_path, cfg.dtype, cfg.get("trust_remote_code", False))
    model = adapt(model, cfg)
    chat = cfg.get("chat_template", True) and getattr(tok, "chat_template", None) is not None
    return model, tok, PromptFormatter(chat_template=bool(chat))


@MODEL_BUILDERS.register("reference")
@MODEL_BUILDERS.register("reference_corrupted")
def build_reference(cfg: DictConfig, task: Task, task_key: str):
    # The reference policies (policies/reference.py) answer from the dataset: no weights to train.
    raise ConfigError(f"model={cfg.kind} is for gfpo-bench-eval only")


def adapt(model, cfg: DictConfig):
    """Gradient checkpointing and LoRA adapters, as `cfg` asks; the model to train."""
    if cfg.get("gradient_checkpointing"):
        # non-reentrant torch.utils.checkpoint per decoder layer; the loss forward passes use_cache=False
        enable = (
            getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
        )
        enable()
    return apply_lora(model, cfg.get("lora"))


def build_model(cfg: DictConfig, task: Task, task_key: str = ""):
    """(model, tokenizer, formatter) of `cfg.kind`; first sets torch's thread count if `cfg.threads`."""
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))  # tiny models: one thread beats contention
    return MODEL_BUILDERS.get(cfg.kind)(cfg, task, task_key)


def max_context(model, default: int = 2048) -> int:
    return int(getattr(model.config, "max_position_embeddings", default) or default)
