"""LoRA adapters through peft (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models").

`model.lora.r > 0` wraps the causal LM in a peft `PeftModel`: the base weights are frozen and only
the adapters train (the optimizer takes parameters with requires_grad, i.e. the adapters only).
Like TRL's `peft_config` path, the reference of the pairwise loss is the same model with its
adapters disabled (`reference_mode`), so no second copy of the weights is kept. Checkpoints hold
the adapter weights only (the module drops the frozen base from its state), and `init_from`
accepts an adapter directory, a LoRA run's checkpoint, or full weights (loaded into the base).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from peft import LoraConfig, PeftModel, get_peft_model, set_peft_model_state_dict

from gfpo_bench.config_schema import require
from gfpo_bench.errors import ConfigError

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


def apply_lora(model, cfg: DictConfig | None):
    """`model` wrapped with LoRA adapters per `model.lora` (r, alpha, dropout, target_modules), or
    `model` itself when r is 0 / the block is absent."""
    if cfg is None or not cfg.get("r"):
        return model
    require("model.lora.r", cfg.r)  # its range: config_schema.py
    targets = cfg.get("target_modules", "all-linear")
    targets = OmegaConf.to_container(targets) if OmegaConf.is_config(targets) else targets
    peft_cfg = LoraConfig(
        r=int(cfg.r),
        lora_alpha=float(cfg.alpha),
        lora_dropout=float(cfg.get("dropout", 0.0)),
        target_modules=targets,
        task_type="CAUSAL_LM",
    )
    try:
        return get_peft_model(model, peft_cfg)
    except ValueError as e:  # e.g. a target module name this architecture does not have
        raise ConfigError(f"model.lora: {str(e).strip().splitlines()[0]}") from e


def is_peft(model) -> bool:
    return isinstance(model, PeftModel)


@contextmanager
def reference_mode(model):
    """The frozen reference: `model` with adapters disabled, in eval mode (as a frozen copy would be)."""
    was_training = model.training
    model.eval()
    try:
        with model.disable_adapter():
            yield model
    finally:
        model.train(was_training)


def trainable_keys(model, prefix: str = "") -> set[str]:
    """State-dict keys of the parameters that train (the adapters, for a peft model)."""
    return {prefix + n for n, p in model.named_parameters() if p.requires_grad}


def load_into_peft(model: PeftModel, state: dict[str, torch.Tensor], source: str) -> None:
    """Load a state dict into a LoRA-wrapped model, in place. Adapter keys (`lora_`) must cover every
    adapter parameter; other keys are full weights of the base model (with or without peft's
    `base_model.model.` prefix and `.base_layer` names)."""
    adapter = {k: v for k, v in state.items() if "lora_" in k}
    base = {k: v for k, v in state.items() if "lora_" not in k}
    if base:
        load_base_weights(model, base, source)
    if adapter:
        result = model.load_state_dict(adapter, strict=False)
        missing = trainable_keys(model) - set(adapter)
        if result.unexpected_keys or missing:
            bad = sorted(result.unexpected_keys) + sorted(missing)
            raise ConfigError(
                f"init_from={source}: the adapter does not fit this model.lora "
                f"({len(result.unexpected_keys)} unexpected, {len(missing)} missing keys, e.g. {bad[:2]})"
            )


def load_base_weights(model: PeftModel, state: dict[str, torch.Tensor], source: str) -> None:
    """Full (un-adapted) weights into the frozen base of a peft model."""
    inner = model.get_base_model()  # the HF model, with LoRA layers injected in place
    state = {k.removeprefix("base_model.model."): v for k, v in state.items()}
    own = [k for k in inner.state_dict() if "lora_" not in k]
    plain = {k: k.replace(".base_layer.", ".") for k in own}  # peft name -> name in a plain model
    missing = [k for k in own if plain[k] not in state and not plain[k].endswith("lm_head.weight")]
    unexpected = sorted(set(state) - set(plain.values()))
    if missing or unexpected:
        raise ConfigError(
            f"init_from={source}: weights do not fit this model "
            f"({len(missing)} missing, {len(unexpected)} unexpected keys, e.g. {(missing + unexpected)[:3]})"
        )
    inner.load_state_dict({k: state[plain[k]] for k in own if plain[k] in state}, strict=False)
    if hasattr(inner, "tie_weights"):
        inner.tie_weights()


def load_adapter_dir(model, path: Path) -> None:
    """A saved adapter (adapter_config.json + adapter_model.safetensors) into `model`: into its own
    adapters when it is LoRA-wrapped; else merged into its weights (the run trains every weight)."""
    from safetensors.torch import load_file

    if is_peft(model):
        state = load_file(str(path / ADAPTER_WEIGHTS))
        # peft saves adapter keys without the adapter name ("lora_A.weight"); set_peft_model_state_dict adds it
        result = set_peft_model_state_dict(model, state)
        missing = [k for k in result.missing_keys if "lora_" in k]
        if missing or result.unexpected_keys:
            raise ConfigError(
                f"init_from={path}: the adapter does not fit this model.lora "
                f"(e.g. {(missing + list(result.unexpected_keys))[:2]})"
            )
        return
    trains = {n: p.requires_grad for n, p in model.named_parameters()}  # from_pretrained freezes them all
    merged = PeftModel.from_pretrained(model, str(path)).merge_and_unload()  # merges into `model` in place
    if merged is not model:
        model.load_state_dict(merged.state_dict())
    for n, p in model.named_parameters():
        p.requires_grad_(trains.get(n, True))
