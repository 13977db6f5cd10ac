"""Replies of a policy to chat prompts: greedy (evaluation) or sampled (the nano build's measurements).

One implementation for the evaluation and the nano build: left padding for batched generation, the
tokenizer's padding side restored afterwards (the trainer pads on the right), special tokens stripped.
"""

from __future__ import annotations

import torch

from common.progress import progress_bar


@torch.no_grad()
def generate_replies(model, tokenizer, prompts: list[list[dict]], batch_size: int, max_new_tokens: int,
                     sample: bool = False, seed: int = 0, progress: str | None = None) -> list[str]:
    """Chat prompts -> replies in order: greedy, or sampled at temperature 1 (top-k/top-p off) from `seed`."""
    model.eval()
    padding_side, tokenizer.padding_side = tokenizer.padding_side, "left"
    if sample:
        torch.manual_seed(seed)
    decoding = {"do_sample": True, "temperature": 1.0, "top_k": 0, "top_p": 1.0} if sample else {"do_sample": False}
    replies: list[str] = []
    starts = range(0, len(prompts), batch_size)
    try:
        for start in progress_bar(starts, desc=progress, unit="batch", leave=False, disable=progress is None):
            texts = [
                tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True)
                for p in prompts[start : start + batch_size]
            ]
            batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
            out = model.generate(**batch, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                                 **decoding)
            replies.extend(tokenizer.batch_decode(out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True))
    finally:
        tokenizer.padding_side = padding_side
    return [r.strip() for r in replies]
