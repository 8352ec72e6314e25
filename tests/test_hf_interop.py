"""A saved gfpo-bench model is a plain HF model: `AutoTokenizer` / `AutoModelForCausalLM` load the
cached warm start and a run's final_model with no gfpo-bench code, tokenise exactly as the project
does, and give the same logits."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
import torch
from tokenizers import AddedToken, Regex, Tokenizer, decoders, pre_tokenizers
from tokenizers import models as tok_models
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

from gfpo_bench.errors import ModelLoadError
from gfpo_bench.models.loading import load_model_and_tokenizer
from gfpo_bench.models.saving import save_final_model
from gfpo_bench.models.sft import SFTConfig
from gfpo_bench.models.tiny import ensure_tiny
from gfpo_bench.models.tokenizer import CHARS, EOS, PAD, UNK, build_char_tokenizer
from gfpo_bench.tasks.arith import ArithTask
from gfpo_bench.tasks.format import MARKERS
from gfpo_bench.train import run

PRINTABLE = "".join(sorted(set(string.printable) - set("\r\x0b\x0c")))
TEXTS = [
    "\n",
    "a\nb\n\n\nc\n",
    "12+3=?\n<think>\n12+3=15\n15-4=11\n</think>\n<answer>11</answer>",
    "".join(MARKERS),
    "\n".join(MARKERS) + "\n",
    " <think> x </think>\t<answer> 7 </answer> ",
    PRINTABLE,
    PRINTABLE[::-1],
    " ".join(PRINTABLE),
    "\n".join(PRINTABLE),
]
SMALL = dict(hidden=32, layers=1, heads=2, max_len=128, sft=SFTConfig(steps=3))


def _ids(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


def _assert_plain_hf_matches_project(model_dir: Path, reference_model=None) -> None:
    """Plain transformers loads `model_dir`; ids, text and logits agree with the project's objects."""
    project_tok = build_char_tokenizer()
    plain_tok = AutoTokenizer.from_pretrained(model_dir)  # no gfpo-bench code involved
    plain_model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    for text in TEXTS:
        ids = _ids(plain_tok, text)
        assert ids == _ids(project_tok, text), repr(text)
        assert plain_tok.decode(ids) == text, repr(text)
    assert _ids(plain_tok, PRINTABLE) == list(range(7, 7 + len(CHARS)))  # one token per character
    assert [_ids(plain_tok, m) for m in MARKERS] == [[3], [4], [5], [6]]
    assert (plain_tok.pad_token, plain_tok.eos_token) == (PAD, EOS)
    assert plain_tok.eos_token_id == plain_model.config.eos_token_id

    if reference_model is None:  # the project's own loader
        reference_model, _ = load_model_and_tokenizer(str(model_dir))
    x = torch.tensor([_ids(plain_tok, TEXTS[2])])
    with torch.no_grad():
        assert torch.equal(plain_model(x).logits, reference_model.eval()(x).logits)


def test_plain_hf_loads_the_cached_warm_start(model_cache):
    path = ensure_tiny(ArithTask(), str(model_cache), task_key="interop", **SMALL)
    _assert_plain_hf_matches_project(path)


def test_save_final_model_is_lossless_through_plain_hf(model_cache, tmp_path):
    path = ensure_tiny(ArithTask(), str(model_cache), task_key="interop", **SMALL)
    model, tok = load_model_and_tokenizer(str(path))
    with torch.no_grad():  # make sure the saved weights are not the warm start's
        next(model.parameters()).add_(0.01)
    final = save_final_model(model, tok, tmp_path)
    _assert_plain_hf_matches_project(final, reference_model=model)


def test_plain_hf_loads_a_runs_final_model(run_cfg):
    cfg = run_cfg(
        "model.hidden=32",
        "model.layers=1",
        "model.heads=2",
        "model.sft.steps=3",
        "trainer.max_steps=1",
        "prompts_per_step=2",
        "sampler.k=2",
        "sampler.max_new_tokens=16",
        "callbacks.eval.max_problems=2",
    )
    summary = run(cfg)
    assert summary["status"] == "completed"
    _assert_plain_hf_matches_project(Path(cfg.hydra.runtime.output_dir) / "final_model")


def _legacy_char_tokenizer() -> PreTrainedTokenizerFast:
    """The WordLevel tokenizer that gfpo-bench saved before it became a Qwen2Tokenizer."""
    vocab = {t: i for i, t in enumerate([PAD, EOS, UNK, *MARKERS, *CHARS])}
    tok = Tokenizer(tok_models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens([AddedToken(t, special=True) for t in (PAD, EOS, UNK)])
    tok.add_tokens([AddedToken(m, normalized=False, special=False) for m in MARKERS])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token=UNK)


def test_a_model_saved_with_the_legacy_tokenizer_is_refused_not_mis_tokenised(tmp_path):
    from gfpo_bench.models.tiny import build_tiny_model

    legacy = _legacy_char_tokenizer()
    build_tiny_model(len(legacy), 32, 1, 2, 64, seed=0).save_pretrained(tmp_path)
    legacy.save_pretrained(tmp_path)
    # what every outside tool gets: transformers 5 rebuilds it as a Qwen2Tokenizer without newlines
    assert _ids(AutoTokenizer.from_pretrained(tmp_path), "a\nb") == _ids(legacy, "ab")
    with pytest.raises(ModelLoadError, match="does not round-trip"):
        load_model_and_tokenizer(str(tmp_path))
    build_char_tokenizer().save_pretrained(tmp_path)  # the fix the error message names
    for text in TEXTS:
        assert _ids(AutoTokenizer.from_pretrained(tmp_path), text) == _ids(legacy, text)
    load_model_and_tokenizer(str(tmp_path))
