"""Save a run's final model (<run dir>/final_model) and, optionally, upload it to the Hugging Face Hub.

- plain model: `save_pretrained` of model and tokenizer, loadable by `init_from`, `gfpo-bench-eval`
  and transformers' `AutoModelForCausalLM`.
- LoRA (peft) model: the adapter (adapter_config.json + adapter_model.safetensors, peft's format,
  loadable by `AutoPeftModelForCausalLM` or `PeftModel.from_pretrained(base, dir)`), plus the tokenizer.
  With `model.merge_lora=true` the adapters are merged into the base weights first, so final_model/
  is a plain HF model (the merge happens in place: call it after training).
- `model.push_to_hub=<repo>` uploads final_model/ as saved. `check_push_to_hub` runs before
  training, so an offline or logged-out machine fails at once, not after hours of training.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from gfpo_bench.errors import ConfigError
from gfpo_bench.models.lora import is_peft

log = logging.getLogger(__name__)


def save_final_model(
    model, tok, run_dir: Path, merge_lora: bool = False, push_to_hub: str | None = None
) -> Path:
    """<run dir>/final_model: a save_pretrained directory (see the module docstring)."""
    final_dir = run_dir / "final_model"
    if is_peft(model) and merge_lora:
        model = model.merge_and_unload()
    model.save_pretrained(final_dir)
    tok.save_pretrained(final_dir)
    if push_to_hub:
        upload(final_dir, push_to_hub)
    return final_dir


def check_push_to_hub(repo: str | None) -> None:
    """One-line ConfigError now if `model.push_to_hub` is set but cannot work on this machine."""
    if not repo:
        return
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise ConfigError(f"model.push_to_hub={repo}: HF_HUB_OFFLINE is set, so nothing can be uploaded")
    from huggingface_hub import get_token

    if not get_token():
        raise ConfigError(
            f"model.push_to_hub={repo}: no Hugging Face token (run `hf auth login` or set HF_TOKEN)"
        )


def upload(final_dir: Path, repo: str) -> None:
    """The saved directory as it is on disk (model or adapter, and tokenizer) to `repo`."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo, exist_ok=True)
    api.upload_folder(repo_id=repo, folder_path=str(final_dir), commit_message="gfpo-bench final model")
    log.info("pushed %s to https://huggingface.co/%s", final_dir, repo)
