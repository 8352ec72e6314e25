"""Warm starts and resumes.

- `init_from=<run dir | .ckpt | HF model dir>` loads model weights from another run (its
  final_model/, else its checkpoints/last.ckpt) before training; so a schedule can also be two
  chained runs (e.g. srpo, then gfpo from its result). With `init_optimizer=true` the optimizer's
  moments come along from the run's checkpoints/last.ckpt (saved at the end of every run, so it
  matches final_model/); its hyperparameters (lr, ...) stay this run's.
- `resume=auto` continues an interrupted run in the same run dir from checkpoints/last.ckpt.

`check_init_source` and `check_checkpoint_file` are what the config validator runs before anything
is built: a missing path, an empty dir, a cut-off or corrupt file, or weights of another
architecture become one `ConfigError`. torch and transformers are imported only when needed, so
the CLI reports a bad value without paying for them.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from gfpo_bench.config_schema import require
from gfpo_bench.errors import ConfigError
from gfpo_bench.summary import RunSummary

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


def _resolve(path: Path) -> Path:
    if path.is_dir() and ((path / "config.json").exists() or (path / "adapter_config.json").exists()):
        return path  # a saved model, or a LoRA run's saved adapter
    if path.is_dir():
        for cand in (path / "final_model", path / "checkpoints" / "last.ckpt"):
            if cand.exists():
                return cand
        raise ConfigError(f"init_from={path}: no final_model/ or checkpoints/last.ckpt inside")
    if path.suffix == ".ckpt" and path.exists():
        return path
    raise ConfigError(f"init_from={path}: not found (give a run dir, a .ckpt file or a saved model dir)")


def load_init_weights(model: torch.nn.Module, init_from: str) -> Path:
    """Copy weights into `model` in place; the architecture must match exactly."""
    import torch
    from transformers import AutoModelForCausalLM

    from gfpo_bench.models.lora import is_peft, load_adapter_dir, load_into_peft

    src = _resolve(Path(init_from).expanduser())
    if (src / "adapter_config.json").is_file():  # a LoRA run's final_model/ (models/lora.py)
        load_adapter_dir(model, src)
        log.info("warm start: loaded the adapter in %s", src)
        return src
    if src.suffix == ".ckpt":
        state = torch.load(src, map_location="cpu", weights_only=False)["state_dict"]
        state = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
    else:
        state = AutoModelForCausalLM.from_pretrained(src, dtype=next(model.parameters()).dtype).state_dict()
    if is_peft(model):  # LoRA: adapters from a LoRA checkpoint, full weights into the frozen base
        load_into_peft(model, state, init_from)
        log.info("warm start: loaded weights from %s", src)
        return src
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("lm_head.weight")]  # tied to the embeddings
    if missing or unexpected:
        raise ConfigError(
            f"init_from={init_from}: weights do not fit this model "
            f"({len(missing)} missing, {len(unexpected)} unexpected keys, e.g. {(missing + unexpected)[:3]})"
        )
    if hasattr(model, "tie_weights"):
        model.tie_weights()
    log.info("warm start: loaded weights from %s", src)
    return src


def init_optimizer_state(init_from: str) -> dict:
    """The optimizer state in another run's Lightning checkpoint: a .ckpt, or a run dir's last.ckpt."""
    import torch

    path = Path(init_from).expanduser()
    ckpt = path if path.suffix == ".ckpt" else path / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        raise ConfigError(f"init_optimizer=true needs a Lightning checkpoint, and {ckpt} does not exist")
    states = torch.load(ckpt, map_location="cpu", weights_only=False).get("optimizer_states") or []
    if not states:
        raise ConfigError(f"init_optimizer=true: {ckpt} holds no optimizer state")
    return states[0]


ARCH_KEYS = ("hidden_size", "num_hidden_layers")  # what a checkpoint's weights alone reveal


def check_init_source(init_from: str, expected: dict | None = None) -> Path:
    """init_from names a loadable warm start; `expected`: architecture keys (config.json names) the
    weights must have. Returns the resolved file or dir; raises ConfigError saying what is wrong."""
    path = Path(str(init_from)).expanduser()
    if path.is_dir() and not any(path.iterdir()):
        raise ConfigError(
            f"init_from={init_from}: the directory is empty (give a run dir, a .ckpt or a saved model dir)"
        )
    src = _resolve(path)
    if src.suffix == ".ckpt":
        found = _ckpt_arch(check_checkpoint_file(src, f"init_from={init_from}"))
    elif (src / "adapter_config.json").is_file():  # a LoRA adapter: checked when it is loaded
        found = {}
    else:
        found = _hf_arch(src, init_from)
    wrong = {k: (found[k], v) for k, v in (expected or {}).items() if k in found and found[k] != v}
    if wrong:
        diff = ", ".join(f"{k} {have} (this run's model: {want})" for k, (have, want) in wrong.items())
        raise ConfigError(
            f"init_from={init_from}: weights of another architecture: {diff}; "
            "warm-start from a run with the same model settings"
        )
    return src


def check_checkpoint_file(path: Path, what: str) -> dict:
    """The checkpoint's contents (memory-mapped, so cheap); ConfigError if it cannot be read."""
    import torch

    if path.stat().st_size == 0:
        raise ConfigError(
            f"{what}: {path} is empty (cut off while being written?); delete it or pick another"
        )
    try:
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        except RuntimeError as e:
            if "mmap" not in str(e):
                raise
            ckpt = torch.load(path, map_location="cpu", weights_only=False)  # an old, non-zip file
    except Exception as e:  # noqa: BLE001  (pickle, zip and EOF errors all mean: not a checkpoint)
        first = (str(e).splitlines()[0] if str(e) else type(e).__name__)[:120]
        raise ConfigError(
            f"{what}: {path} is not a readable checkpoint ({first}); it may be cut off or corrupt: "
            "delete it or pick another"
        ) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise ConfigError(f"{what}: {path} is not a Lightning checkpoint (no state_dict)")
    return ckpt


def _ckpt_arch(ckpt: dict) -> dict:
    """hidden_size and num_hidden_layers of a checkpoint of a HF causal LM (module.model.*)."""
    out: dict = {}
    layers = set()
    for k, v in ckpt["state_dict"].items():
        if k.endswith("embed_tokens.weight") and getattr(v, "ndim", 0) == 2:
            out["hidden_size"] = int(v.shape[1])
        m = re.search(r"\.layers\.(\d+)\.", k)
        if m:
            layers.add(int(m.group(1)))
    if layers:
        out["num_hidden_layers"] = len(layers)
    return out


def _hf_arch(src: Path, init_from: str) -> dict:
    """Architecture keys of a saved model dir; ConfigError if its config or weights are unreadable."""
    try:
        config = json.loads((src / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"init_from={init_from}: unreadable {src / 'config.json'} ({e})") from None
    weights = [f for f in src.iterdir() if f.suffix in (".safetensors", ".bin")]
    if not weights:
        raise ConfigError(f"init_from={init_from}: {src} holds no model.safetensors or pytorch_model.bin")
    for f in weights:
        if f.suffix == ".safetensors":
            _check_safetensors(f, init_from)
    return {k: config[k] for k in ARCH_KEYS if k in config}


def _check_safetensors(file: Path, init_from: str) -> None:
    """The header parses and the file is as long as the header says (a cut-off copy is not)."""
    try:
        with file.open("rb") as f:
            n = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(n))
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
        ok = file.stat().st_size >= 8 + n + end
    except (OSError, ValueError, KeyError, TypeError, MemoryError):
        ok = False
    if not ok:
        raise ConfigError(f"init_from={init_from}: {file} is cut off or corrupt; save the model again")


def completed_summary(run_dir: Path) -> RunSummary | None:
    """The run dir's summary.json if it records a completed run, else None (also when it is missing
    or unreadable)."""
    try:
        summary = RunSummary.read(run_dir)
    except (OSError, ValueError):
        return None
    return summary if summary.completed else None


def resume_checkpoint(run_dir: Path, mode: str) -> str | None:
    """The checkpoint to resume from, or None to start fresh."""
    require("resume", mode)  # its choices: config_schema.py
    last = run_dir / "checkpoints" / "last.ckpt"
    if mode == "never" or not last.exists():
        return None
    if completed_summary(run_dir) is not None:
        raise ConfigError(
            f"{run_dir} already holds a completed run; change an override (e.g. seed) for a new run, "
            "or pass resume=never to train it again from scratch"
        )
    log.info("resuming interrupted run from %s", last)
    return str(last)
