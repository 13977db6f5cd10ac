"""The nano tokenizer: byte-level BPE with Qwen2's pre-tokenizer, special tokens and ChatML template.

Trained on the build's training split plus broader English and Vietnamese text (`wordfreq`'s word lists,
shipped inside its wheel: offline and the same bytes everywhere), so words the demo never uses are
still whole tokens or a few pieces, not raw bytes the model has never seen together.
"""

from __future__ import annotations

from pathlib import Path

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
PAD_TOKEN, EOS_TOKEN = "<|endoftext|>", "<|im_end|>"
# Qwen2's pre-tokenizer split (transformers/models/qwen2/tokenization_qwen2.py).
PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
# Qwen2.5-Instruct's chat template without the tool-calling branches.
CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if (message.role == 'user') or (message.role == 'system' and not loop.first) or (message.role == 'assistant') %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- endif %}"
)


WORD_LIST_REPEATS = 8


def broad_words(language: str, n: int) -> list[str]:
    """The `n` most frequent words of a language from wordfreq's bundled lists (no download)."""
    from wordfreq import top_n_list

    return top_n_list(language, n, wordlist="small")


def tokenizer_corpus(train_rows: list[dict], extra_words: int, extra_texts: tuple[str, ...] = ()) -> list[str]:
    """The training split's text (every turn, reply and main answer), the chat template's words,
    `extra_texts`, and the `extra_words` most frequent English and Vietnamese words, capitalised and not."""
    texts = ["system", "user", "assistant", "<say>", "</say>", *extra_texts]
    for row in train_rows:
        texts += [m["content"] for m in row["prompt"]]
        texts += [row["reference_fast_response"], row["main_answer"]]
    if extra_words:
        for language in ("en", "vi"):
            words = broad_words(language, extra_words)
            # repeated: BPE merges by frequency, and once each the demo's own text would take every merge
            texts += [" ".join(words), " ".join(w[:1].upper() + w[1:] for w in words)] * WORD_LIST_REPEATS
    return texts


def train_tokenizer(texts: list[str], vocab_size: int):
    """Byte-level BPE with Qwen2's pre-tokenizer and special tokens -> PreTrainedTokenizerFast."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, trainers
    from tokenizers.models import BPE
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),  # ids 0, 1, 2
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        unk_token=None,
        bos_token=None,
        chat_template=CHAT_TEMPLATE,
        model_max_length=1024,
    )


def save_tokenizer(tokenizer, out: Path) -> None:
    # save_jinja_files=False keeps the chat template inside tokenizer_config.json, where every reader
    # (vLLM, older transformers, the trainer) finds it.
    tokenizer.save_pretrained(str(out), save_jinja_files=False)
