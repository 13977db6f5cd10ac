"""The nano build: data -> tokenizer -> pretrained base -> leaky SFT adapter -> held-out measurement.

Everything is written to a temporary directory next to the root and renamed at the end, so an
interrupted build never leaves a half model. Seeded and deterministic for a given torch build: built on
one thread, whatever the machine has (float sums depend on how work is split across threads).
When to build, and when a build can be reused, is `rl.nano.reuse`'s.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
import shutil
import time
from pathlib import Path

from rl.nano.leak import LEAK_KINDS, LONG_TAIL
from rl.nano.pretrain import BroadNoise, build_model, noisy_turns, pretrain_target
from rl.nano.recipe import (
    BUILD_FILE,
    DEFAULT_DATA,
    DEFAULT_ROOT,
    RECIPE_VERSION,
    NanoPaths,
    Recipe,
    Split,
    demo_split,
    fingerprint,
    history_formats,
)
from rl.nano.sft import train_sft
from rl.nano.steps import encode_pairs, train_steps
from rl.nano.tokenizer import EOS_TOKEN, save_tokenizer, tokenizer_corpus, train_tokenizer
from rl.prompt_bound import PromptBound, PromptTooLong

log = logging.getLogger("rl.nano")


def build_nano(root: Path = DEFAULT_ROOT, data: Path = DEFAULT_DATA, recipe: Recipe = Recipe(),
               split: Split | None = None) -> NanoPaths:
    """Build base/, sft/ and nano_build.json under `root` (replacing what is there), atomically."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _build(Path(root), Path(data), recipe, split or demo_split())
    finally:
        torch.set_num_threads(threads)


def _build(root: Path, data: Path, recipe: Recipe, split: Split) -> NanoPaths:
    import torch

    from rl.data import DataError, build_datasets, render_prompt
    from rl.generation import generate_replies
    from rl.metrics import fit_rates, reply_rates

    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    torch.manual_seed(recipe.seed)

    # ---- data: the split training will use ----
    t0 = time.perf_counter()
    if not data.exists() and data.resolve() == DEFAULT_DATA.resolve():
        from rl.demo_data import write_demo

        log.info("nano: writing the demo dataset %s", data)
        write_demo(data, seed=0)
    train_set, held_out = build_datasets(data, "messages", eval_size=split.eval_size, split_seed=split.split_seed)
    train_rows, held_rows = train_set.to_list(), held_out.to_list()
    timings["data_s"] = time.perf_counter() - t0
    log.info("nano: data %s: %d train / %d held-out prompts", data, len(train_rows), len(held_rows))

    # each training record in one of the prompt formats (chat turns, or the history format in one of the
    # renderings of conf/history/), the same for pretraining and SFT
    presets = history_formats()
    format_rng = random.Random(recipe.seed + 4)
    formats = [format_rng.choice(sorted(presets)) if format_rng.random() < recipe.history_share else "messages"
               for _ in train_rows]

    def prompt_of(row: dict, prompt_format: str, turns: list[dict] | None = None) -> list[dict]:
        """The row's prompt in "messages" or in the history format of preset `prompt_format`."""
        system = next((m["content"] for m in row["prompt"] if m["role"] == "system"), "")
        turns = turns or [m for m in row["prompt"] if m["role"] != "system"]
        if prompt_format == "messages":
            return render_prompt(system, turns)
        return render_prompt(system, turns, "history", presets[prompt_format])

    tmp = root.parent / f".{root.name}.building-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        # ---- tokenizer ----
        t0 = time.perf_counter()
        corpus = tokenizer_corpus([{**r, "prompt": prompt_of(r, f)} for r, f in zip(train_rows, formats)],
                                  recipe.tokenizer_words, extra_texts=(LONG_TAIL,))
        tokenizer = train_tokenizer(corpus, recipe.vocab_size)
        save_tokenizer(tokenizer, tmp / "base")
        timings["tokenizer_s"] = time.perf_counter() - t0
        eos_id = tokenizer.convert_tokens_to_ids(EOS_TOKEN)

        # ---- prompts bounded to the model's context (a 10,000-turn record would stall pretraining) ----
        bound = PromptBound(tokenizer, nano_prompt_tokens(recipe))
        train_rows, formats, trimmed, dropped = _bounded(train_rows, formats, bound, prompt_of)
        held_rows, _, held_trimmed, held_dropped = _bounded(held_rows, ["messages"] * len(held_rows), bound,
                                                             prompt_of, "served")
        if dropped or held_dropped:
            log.warning("nano: %d training and %d held-out records left out: over %d tokens even with their oldest "
                        "turns dropped", dropped, held_dropped, bound.max_tokens)
        if not train_rows:
            raise DataError(f"{data}: no training record fits the nano model's {bound.max_tokens} prompt tokens")

        # ---- pretrain the base model on clean targets (some with broad-vocabulary noise) ----
        t0 = time.perf_counter()
        noise = BroadNoise(recipe.noise_words, random.Random(recipe.seed + 5))
        script_rng = random.Random(recipe.seed)
        pretrain_prompts, pretrain_targets = [], []
        for row, prompt_format in zip(train_rows, formats):
            turns = [m for m in row["prompt"] if m["role"] != "system"]
            if noise.rng.random() < recipe.noise_share:
                turns = noisy_turns(turns, noise)
            pretrain_prompts.append(prompt_of(row, prompt_format, turns))
            pretrain_targets.append(pretrain_target(row, script_rng.random() < recipe.main_answer_share))
        pretrain_pairs = encode_pairs(tokenizer, pretrain_prompts, pretrain_targets)
        prompt_lens = sorted(len(p) for p, _ in pretrain_pairs)
        log.info("nano: tokenizer %d tokens, prompt length median %d max %d", len(tokenizer),
                 prompt_lens[len(prompt_lens) // 2], prompt_lens[-1])
        model = build_model(recipe, tokenizer)
        n_params = sum(p.numel() for p in model.parameters())
        # loss on the reply, or on the conversation and the reply, never on the system turn (ends at the first eos)
        pretrain_loss = train_steps(
            model, pretrain_pairs, recipe.pretrain_steps, recipe.pretrain_lr, recipe.batch_size, recipe.seed,
            loss_from=(lambda p: len(p) - 1) if recipe.pretrain_loss_on == "reply"
            else (lambda p: min(p.index(eos_id) + 1 if eos_id in p else 0, len(p) - 1)),
            desc="nano pretrain", reply_weight=recipe.pretrain_reply_weight,
        )
        model.save_pretrained(str(tmp / "base"))
        timings["pretrain_s"] = time.perf_counter() - t0
        log.info("nano: base model %d parameters, pretrain loss %.3f (%.0fs)", n_params, pretrain_loss,
                 timings["pretrain_s"])

        # ---- SFT LoRA on leaky targets ----
        t0 = time.perf_counter()
        sft_prompts = [prompt_of(r, f) for r, f in zip(train_rows, formats)]
        peft_model, sft_loss, kinds = train_sft(model, tokenizer, train_rows, sft_prompts, recipe)
        peft_model.save_pretrained(str(tmp / "sft"))
        _set_adapter_base(tmp / "sft", root / "base")
        timings["sft_s"] = time.perf_counter() - t0
        lora_params = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
        log.info("nano: SFT LoRA %d parameters, loss %.3f (%.0fs)", lora_params, sft_loss, timings["sft_s"])

        # ---- measure the SFT adapter (and the base) on held-out prompts ----
        t0 = time.perf_counter()
        held_prompts = [r["prompt"] for r in held_rows]

        def replies(prompts, sample=False):
            return generate_replies(peft_model, tokenizer, prompts, 64, recipe.max_new_tokens, sample, recipe.seed)

        greedy = replies(held_prompts)
        sampled = replies([p for p in held_prompts for _ in range(recipe.sample_n)], sample=True)
        history_greedy = replies([prompt_of(r, "served") for r in held_rows])
        with peft_model.disable_adapter():
            base_greedy = replies(held_prompts)
        timings["evaluate_s"] = time.perf_counter() - t0
        timings["total_s"] = time.perf_counter() - t_all

        refs, intents = [r["reference_fast_response"] for r in held_rows], [r["intent"] for r in held_rows]

        def rates(replies_: list[str]) -> dict:
            fit = fit_rates(replies_, refs, intents)
            return {**reply_rates(replies_), "fit_rate": fit["fit_rate"]}

        report = {
            "recipe_version": RECIPE_VERSION,
            "fingerprint": fingerprint(recipe, data, split),
            "seed": recipe.seed,
            "recipe": dataclasses.asdict(recipe),
            "data": str(data),
            "split": dataclasses.asdict(split),
            "train_prompts": len(train_rows),
            "held_out_prompts": len(held_rows),
            "vocab_size": len(tokenizer),
            "params": n_params,
            "lora_params": lora_params,
            "prompt_tokens": {"median": prompt_lens[len(prompt_lens) // 2], "max": prompt_lens[-1]},
            "prompt_bound": {"max_tokens": bound.max_tokens, "trimmed": trimmed + held_trimmed,
                             "left_out": dropped + held_dropped},
            "pretrain_loss": pretrain_loss,
            "sft_loss": sft_loss,
            "sft_leak_kinds": {k: kinds.count(k) for k in LEAK_KINDS},
            "torch_threads": torch.get_num_threads(),
            "timings": {k: round(v, 2) for k, v in timings.items()},
            "held_out": {
                "sft_greedy": rates(greedy),
                "sft_sampled_t1": reply_rates(sampled),
                "sft_greedy_history_served": rates(history_greedy),
                "base_greedy": rates(base_greedy),
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


def nano_prompt_tokens(recipe: Recipe) -> int:
    """The longest prompt the nano build trains or measures on: its context less room for the target
    (a fast response, or one with its main answer)."""
    return recipe.max_position_embeddings * 3 // 4


def _bounded(rows: list[dict], formats: list[str], bound: PromptBound, prompt_of,
             also: str | None = None) -> tuple[list[dict], list[str], int, int]:
    """(rows whose prompts fit `bound` in their format, oldest turns dropped first; their formats; how many
    were trimmed; how many could not fit). `also`: a second format the rows must fit in as well."""
    kept_rows, kept_formats, trimmed, dropped = [], [], 0, 0
    for row, prompt_format in zip(rows, formats):
        system = [m for m in row["prompt"] if m["role"] == "system"]
        turns = [m for m in row["prompt"] if m["role"] != "system"]
        try:
            for fmt in (prompt_format, also) if also else (prompt_format,):
                turns, _ = bound.fit(turns, lambda t, fmt=fmt: prompt_of(row, fmt, t))
        except PromptTooLong:
            dropped += 1
            continue
        trimmed += len(system) + len(turns) < len(row["prompt"])
        kept_rows.append({**row, "prompt": system + turns})
        kept_formats.append(prompt_format)
    return kept_rows, kept_formats, trimmed, dropped


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
