"""Character-level tokenizer for the embedded tiny model: a Qwen2Tokenizer with a 104-token vocabulary.

Every printable ASCII character (plus newline and tab) is one token; the four format markers
(<think>, </think>, <answer>, </answer>) are single tokens so the tiny model spends no capacity
spelling them.

Why a Qwen2Tokenizer: the tiny model is a Qwen2 architecture, and transformers 5 loads the
tokenizer of a `model_type: qwen2` directory as a Qwen2Tokenizer whatever tokenizer_config.json
says (`MODELS_WITH_INCORRECT_HUB_TOKENIZER_CLASS` in transformers/models/auto/tokenization_auto.py).
That class keeps only the vocabulary, merges and added tokens of tokenizer.json and rebuilds
Qwen's byte-level pre-tokenizer and decoder around them. So the vocabulary is written in the
byte-level alphabet (space is "Ġ", newline "Ċ", tab "ĉ"; the other printable characters spell
themselves) with no merges: byte-level BPE without merges is exactly one token per character.
The object built here is the one `AutoTokenizer.from_pretrained` rebuilds, so a saved model is a
plain HF model (TRL, vLLM, lm-eval or a notebook tokenise exactly as gfpo-bench does), and the ids
are the ones of the earlier WordLevel version (the sorted character order is unchanged).

Departure from a WordLevel tokenizer: a character outside the vocabulary (anything non-ASCII) is
dropped, not mapped to <unk>, because Qwen2Tokenizer's BPE has no unknown token.
"""

from __future__ import annotations

import string

from tokenizers import AddedToken
from transformers import Qwen2Tokenizer
from transformers.convert_slow_tokenizer import bytes_to_unicode

from gfpo_bench.tasks.format import MARKERS

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"
CHARS = sorted(set(string.printable) - set("\r\x0b\x0c"))  # 97 chars incl. space, \n, \t


def build_char_tokenizer() -> Qwen2Tokenizer:
    """A fresh character-level tokenizer (deterministic vocabulary).

    >>> tok = build_char_tokenizer()
    >>> ids = tok("<think>\\n1+2=3\\n</think>")["input_ids"]
    >>> len(ids), tok.decode(ids)
    (9, '<think>\\n1+2=3\\n</think>')
    """
    spell = bytes_to_unicode()  # GPT-2's byte -> printable-unicode table, as ByteLevel uses it
    vocab_list = [PAD, EOS, UNK, *MARKERS, *(spell[ord(c)] for c in CHARS)]
    tok = Qwen2Tokenizer(
        vocab={t: i for i, t in enumerate(vocab_list)},
        merges=[],
        unk_token=UNK,
        eos_token=EOS,
        pad_token=PAD,
        padding_side="left",
    )
    tok.add_tokens([AddedToken(m, normalized=False, special=False) for m in MARKERS])
    return tok
