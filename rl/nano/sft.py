"""The nano SFT adapter: a PEFT LoRA trained on the leaky targets (`rl.nano.leak`), the real SFT model's
problem in miniature: prompts of some kinds get a Vietnamese, a `<say>`-tagged or a too long reply for
`leak_share` of their records."""

from __future__ import annotations

import random

from rl.nano.leak import leaky_target
from rl.nano.recipe import LORA_TARGETS, Recipe
from rl.nano.steps import encode_pairs, train_steps


def train_sft(model, tokenizer, rows: list[dict], prompts: list[list[dict]], recipe: Recipe):
    """(PEFT model, final loss, leak kind per record): a LoRA on `model` trained on the leaky targets of
    `rows` (whose prompts, as the build rendered them, are `prompts`)."""
    import torch
    from peft import LoraConfig, get_peft_model

    leak_rng = random.Random(recipe.seed + 1)
    leaky = [leaky_target(r, leak_rng, recipe.leak_share) for r in rows]
    pairs = encode_pairs(tokenizer, prompts, [t for t, _ in leaky])
    torch.manual_seed(recipe.seed + 2)
    lora = LoraConfig(
        r=recipe.lora_r, lora_alpha=recipe.lora_alpha, lora_dropout=0.0,
        target_modules=list(LORA_TARGETS), task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, lora)
    loss = train_steps(
        peft_model, pairs, recipe.sft_steps, recipe.sft_lr, recipe.batch_size, recipe.seed + 3,
        loss_from=lambda p: len(p) - 1, desc="nano sft",
    )
    return peft_model, loss, [kind for _, kind in leaky]
