"""Character-level tokenizer for the embedded tiny model, built with the `tokenizers` library.

Every printable ASCII character (plus newline and tab) is one token; the four format markers
(<think>, </think>, <answer>, </answer>) are single tokens so the tiny model spends no capacity
spelling them. Wrapped as a transformers `PreTrainedTokenizerFast`, so it is saved and reloaded
with save_pretrained / from_pretrained exactly like a hub tokenizer.
"""

from __future__ import annotations

import string

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from gfpo_bench.tasks.format import MARKERS

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"
CHARS = sorted(set(string.printable) - set("\r\x0b\x0c"))  # 97 chars incl. space, \n, \t


def build_char_tokenizer() -> PreTrainedTokenizerFast:
    """A fresh character-level tokenizer (deterministic vocabulary).

    >>> tok = build_char_tokenizer()
    >>> ids = tok("<think>\\n1+2=3\\n</think>")["input_ids"]
    >>> len(ids), tok.decode(ids)
    (9, '<think>\\n1+2=3\\n</think>')
    """
    vocab_list = [PAD, EOS, UNK, *MARKERS, *CHARS]
    vocab = {tok: i for i, tok in enumerate(vocab_list)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens([AddedToken(t, special=True) for t in (PAD, EOS, UNK)])
    tok.add_tokens([AddedToken(m, normalized=False, special=False) for m in MARKERS])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token=UNK, padding_side="left"
    )
