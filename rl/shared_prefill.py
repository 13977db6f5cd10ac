"""Prompt-shared sampling for `rollout=hf`: one prefill per distinct prompt, its KV cache copied to the group.

TRL's transformers path calls `model.generate` on the whole batch, where each prompt appears `num_generations`
times, so the prefill (most of a rollout at Pika's 700-token prompts and <= 24-token replies) runs G times per
prompt. `shared_prefill(model)` wraps that one `generate` call: it prefills each distinct prompt once (all but
its last token, with the attention mask and the position ids `generate` itself would use: cumsum of the mask),
copies the cache rows to every completion of the group, and lets `generate` go on from there: its first step
feeds the prompts' last token, then it samples exactly as before (same logits processors, same random stream).

Where it does not apply (inputs other than ids + mask, a configured static/offloaded cache, a batch without
repeats) the call goes to the original `generate` unchanged.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch


@contextmanager
def shared_prefill(model):
    """Within the block, `model.generate(input_ids=..., attention_mask=...)` prefills each distinct prompt once."""
    original = model.generate
    had_own = "generate" in vars(model)

    def generate(*args, **kwargs):
        return generate_shared(model, original, *args, **kwargs)

    model.generate = generate
    try:
        yield
    finally:
        if had_own:
            model.generate = original
        else:
            del model.generate


def generate_shared(model, original, input_ids=None, attention_mask=None, generation_config=None, **kwargs):
    plain = {"input_ids": input_ids, "attention_mask": attention_mask, "generation_config": generation_config, **kwargs}
    if kwargs or input_ids is None or attention_mask is None or input_ids.size(1) < 2:
        return original(**plain)
    if generation_config is not None and getattr(generation_config, "cache_implementation", None):
        return original(**plain)
    group_of = prompt_groups(input_ids, attention_mask)
    groups = int(group_of.max()) + 1
    if groups == input_ids.size(0):
        return original(**plain)

    from transformers import DynamicCache

    first = torch.full((groups,), input_ids.size(0), dtype=torch.long, device=input_ids.device)
    first = first.scatter_reduce(0, group_of, torch.arange(input_ids.size(0), device=input_ids.device), "amin")
    ids, mask = input_ids[first], attention_mask[first]
    # the position ids generate computes for a left-padded batch
    positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
    cache = DynamicCache(config=_config(model))
    with torch.no_grad():
        model(input_ids=ids[:, :-1], attention_mask=mask[:, :-1], position_ids=positions[:, :-1],
              past_key_values=cache, use_cache=True, logits_to_keep=1)
    cache.reorder_cache(group_of)  # row i of the batch gets its prompt's keys and values
    return original(input_ids=input_ids, attention_mask=attention_mask, past_key_values=cache,
                    generation_config=generation_config)


def prompt_groups(prompt_ids: torch.Tensor, prompt_mask: torch.Tensor) -> torch.Tensor:
    """(B,) group index of each row: rows with the same prompt (its real tokens in the same columns) share one."""
    keys = torch.cat([prompt_ids * prompt_mask, prompt_mask], dim=1)  # pad ids zeroed: they are not the prompt
    return torch.unique(keys, dim=0, return_inverse=True)[1]


def _config(model):
    config = model.config
    return config.get_text_config() if hasattr(config, "get_text_config") else config
