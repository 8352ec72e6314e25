"""A small model directory that looks like a hub instruct model, built offline in a few seconds.

What a user brings with `model=hf model.name_or_path=...`, scaled down: a byte-level BPE tokenizer
(Qwen2's pre-tokenizer regex, trained with `tokenizers` on GSM8K text), ChatML special tokens with
`<|im_end|>` as eos and `<|endoftext|>` as pad, the four format markers as added tokens (as
Qwen3 ships <think>), a ChatML chat template in the tokenizer config, and a random-init Qwen2
(hidden 64, 2 layers, grouped-query attention) saved with save_pretrained. Nothing is downloaded.

A random model emits noise, which would leave the answer parser, math-verify and the step spans of
generated text unexercised (and teaching a model the format by SFT takes minutes). So two slices of
the random weights are set by hand: each token of two fixed, well-formed completions (`SCRIPTS`)
gets an input embedding along its own axis, and the untied output head maps that axis to the next
token of the script, with a logit margin that makes sampling at temperature 1 follow it. The last
token of the chat template's generation prompt starts the scripts. The model then answers every
prompt with two steps and `<answer>72</answer>` or `<answer>6</answer>`, through the ordinary
transformer forward pass, like an instruct model that has learnt the output format.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import SHARED_DATA
from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers
from tokenizers.models import BPE
from tokenizers.trainers import BpeTrainer
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

from gfpo_bench.models.prompting import PromptFormatter
from gfpo_bench.tasks.format import MARKERS

# Qwen2's pre-tokenizer split (transformers/models/qwen2/tokenization_qwen2.py): transformers
# rebuilds a qwen2 tokenizer around this regex, so the merges must be learnt with it.
QWEN2_SPLIT = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
# ChatML, as Qwen2.5-Instruct's template renders a system + user turn and the generation prompt
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
# what the model answers to every prompt, half the time each: two steps, then 72 (right for GSM8K's
# first training problem) or 6. No BPE token repeats within one, so the token alone says what comes
# next, and the two part at the answer, so a group's paths differ there.
SCRIPTS = (
    "<think>She sold 48 clips.\nThen half as many</think><answer>72</answer>",
    "<think>She sold 48 clips.\nThen half as many</think><answer>6</answer>",
)
MARGIN = 40.0  # logit of the scripted next token above every other
GSM8K = SHARED_DATA / "gsm8k"
BPE_VOCAB = 800  # 256 bytes + special/added tokens + ~530 merges


def gsm8k_texts(data_dir: Path, n: int = 1000) -> list[str]:
    rows = [json.loads(line) for line in (data_dir / "train.jsonl").read_text().splitlines()[:n]]
    return [r["question"] for r in rows] + [r["answer"] for r in rows]


def train_tokenizer(texts: list[str]) -> PreTrainedTokenizerFast:
    tok = Tokenizer(BPE(unk_token=None))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = BpeTrainer(
        vocab_size=BPE_VOCAB,
        special_tokens=[ENDOFTEXT, IM_START, IM_END],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    tok.add_tokens([AddedToken(m, normalized=False, special=False) for m in MARKERS])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        chat_template=CHAT_TEMPLATE,
        model_max_length=512,
    )


def random_qwen2(vocab_size: int, eos_id: int, pad_id: int, seed: int = 0) -> Qwen2ForCausalLM:
    torch.manual_seed(seed)
    cfg = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=False,  # as Qwen2.5-1.5B and up; script_completion needs it
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        bos_token_id=None,
    )
    return Qwen2ForCausalLM(cfg)


def script_completions(model, tok, start_id: int, texts=SCRIPTS, margin: float = MARGIN) -> None:
    """Make `start_id` -> one of `texts` -> eos the model's overwhelmingly likely continuations.

    Each distinct script token gets an input embedding along its own unit axis e_k, so after the
    final RMSNorm the hidden state is about sqrt(H)·e_k (the random layers add ~1% noise); the
    output-head row of every token that follows it in some script gets margin/sqrt(H) on axis k.
    A token followed by two different tokens (where the scripts part) samples them 50/50. Needs
    untied embeddings, fewer distinct tokens than H, and a token never repeated within a script.
    """
    follows: dict[int, set[int]] = {}
    for text in texts:
        chain = [start_id, *tok(text, add_special_tokens=False)["input_ids"], tok.eos_token_id]
        if len(set(chain)) != len(chain):
            raise ValueError(f"a script repeats a token: {tok.convert_ids_to_tokens(chain)}")
        for cur, nxt in zip(chain, chain[1:]):
            follows.setdefault(cur, set()).add(nxt)
    hidden = model.config.hidden_size
    if len(follows) > hidden:
        raise ValueError(f"{len(follows)} script tokens do not fit {hidden} axes")
    emb, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight  # [V, H]
    with torch.no_grad():
        for k, (cur, nexts) in enumerate(sorted(follows.items())):
            emb[cur] = 0.0
            emb[cur, k] = 1.0
            for nxt in nexts:
                head[nxt, k] = margin / hidden**0.5


def build_hub_like_model(out: Path, data_dir: Path) -> Path:
    """Write the model dir; returns `out`."""
    texts = gsm8k_texts(data_dir)
    tok = train_tokenizer(texts)
    model = random_qwen2(len(tok), tok.eos_token_id, tok.pad_token_id)
    prompt = PromptFormatter(chat_template=True)(tok, "?")
    script_completions(model, tok, start_id=tok(prompt, add_special_tokens=False)["input_ids"][-1])
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def hub_model(tmp_path_factory) -> Path:
    """The model dir, built once per session (about a second)."""
    if not (GSM8K / "train.jsonl").is_file():
        pytest.skip(f"GSM8K data not found at {GSM8K}")
    return build_hub_like_model(tmp_path_factory.mktemp("hub-model"), GSM8K)
