"""The embedded default model: a ~1M-parameter Qwen2-architecture causal LM, char-level.

Built from a transformers config (no weights downloaded), warm-started by supervised fine-tuning
on the task's training solutions, saved with save_pretrained and reloaded through the same
`from_pretrained` path as any hub model (a plain `AutoTokenizer` / `AutoModelForCausalLM` load
needs no gfpo-bench code; tokenizer.py says why). The warm start imitates the task's (fallible)
teacher to convergence, so its mistakes are habits at specific steps, which is what RL then has to
fix. The result is cached under a key that hashes everything it depends on, so the second run
starts in a second: the model and SFT settings, the task config, the torch and transformers
versions, and the source code of the task generator (with its base classes), the output format, the
tokenizer, the prompt formatter, the model builder and the SFT loop with its log-probs (editing any
of them builds a new warm start instead of silently reusing a stale one). Two processes that need
the same warm start at once (parallel sweep jobs) serialise on a file lock: the first builds it,
the others wait and then load it.

The build is deterministic: a fixed seed, one CPU thread and a fixed data order give identical
weights every time on the same torch build (tests/test_models.py checks two builds in one process).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import shutil
from pathlib import Path

import torch
import transformers
from filelock import FileLock
from transformers import Qwen2Config, Qwen2ForCausalLM

from gfpo_bench.models import logprobs as logprobs_module
from gfpo_bench.models import prompting as prompting_module
from gfpo_bench.models import sft as sft_module
from gfpo_bench.models import tokenizer as tokenizer_module
from gfpo_bench.models.sft import SFTConfig, supervised_finetune
from gfpo_bench.models.shipped import shipped_warm_start
from gfpo_bench.models.tokenizer import build_char_tokenizer
from gfpo_bench.tasks import format as format_module
from gfpo_bench.tasks.base import Task

log = logging.getLogger(__name__)


def build_tiny_model(vocab_size: int, hidden: int, layers: int, heads: int, max_len: int, seed: int):
    torch.manual_seed(seed)
    cfg = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=hidden * 3,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_len,
        tie_word_embeddings=True,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=1,
    )
    return Qwen2ForCausalLM(cfg)


def ensure_tiny(
    task: Task,
    cache_dir: str,
    hidden: int = 128,
    layers: int = 4,
    heads: int = 4,
    max_len: int = 256,
    seed: int = 0,
    sft: SFTConfig | None = None,
    task_key: str = "",
    warm_start: str = "shipped",
) -> Path:
    """Path of a saved, SFT-warm-started tiny model for `task`: the one shipped in the package when
    these settings are its settings (and `warm_start="shipped"`), else a cached build, trained now
    if not cached."""
    sft = sft or SFTConfig()
    settings = warm_start_settings(hidden, layers, heads, max_len, seed, sft, task_key)
    if warm_start == "shipped" and (shipped := shipped_warm_start(settings)) is not None:
        log.info("tiny model: the shipped reference warm start %s", shipped)
        return shipped
    spec = dict(
        **settings,
        code=code_fingerprint(task),
        torch=torch.__version__,
        transformers=transformers.__version__,  # the Qwen2 init and the tokenizer class come from it
    )
    key = hashlib.sha1(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:12]
    out = Path(cache_dir).expanduser() / f"tiny-{task.name}-{key}"
    if (out / "config.json").exists():
        log.info("tiny model: using cached warm start %s", out)
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out.parent / f".{out.name}.lock")):
        if (out / "config.json").exists():  # another process built it while this one waited
            log.info("tiny model: using the warm start another process just built: %s", out)
            return out
        return _build(task, out, spec, hidden, layers, heads, max_len, seed, sft)


def warm_start_settings(
    hidden: int, layers: int, heads: int, max_len: int, seed: int, sft: SFTConfig, task_key: str
) -> dict:
    """The config that selects a warm start (the shipped one is built with one such dict)."""
    return dict(
        hidden=hidden, layers=layers, heads=heads, max_len=max_len, seed=seed, sft=vars(sft), task=task_key
    )


def code_fingerprint(task: Task) -> str:
    """Hash of `fingerprint_files(task)`: a new warm start whenever one of them is edited."""
    h = hashlib.sha1()
    for f in fingerprint_files(task):
        h.update(Path(f).read_bytes())
    return h.hexdigest()[:12]


def fingerprint_files(task: Task) -> list[str]:
    """The source files a warm start depends on, sorted: the task class's module and every gfpo_bench
    module that defines a class of its MRO (the bases hold the shared split-and-generate loop), the
    output format it renders, the tokenizer, the prompt formatter, this builder, the SFT loop and
    its log-probs."""
    modules = (sft_module, logprobs_module, prompting_module, tokenizer_module, format_module)
    mro = [c for c in type(task).__mro__ if c.__module__.split(".")[0] == "gfpo_bench"]
    task_files = {inspect.getsourcefile(type(task)), *(inspect.getsourcefile(c) for c in mro)}
    return sorted(str(f) for f in {*task_files, __file__, *(m.__file__ for m in modules)} if f)


def _build(task, out: Path, spec: dict, hidden, layers, heads, max_len, seed, sft: SFTConfig) -> Path:
    tok = build_char_tokenizer()
    model = build_tiny_model(len(tok), hidden, layers, heads, max_len, seed)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("tiny model: %.2fM params; SFT warm start for %d steps -> %s", n_params / 1e6, sft.steps, out)
    supervised_finetune(model, tok, task, sft, seed=seed)
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():  # left by a build that was killed (we hold the lock, so nobody is writing it)
        shutil.rmtree(tmp)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / "warm_start.json").write_text(json.dumps(spec, indent=2, default=str))
    tmp.rename(out)  # atomic: a half-written cache is never mistaken for a finished one
    return out
