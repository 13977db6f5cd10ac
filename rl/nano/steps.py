"""The nano build's training loop, shared by pretraining and SFT: AdamW over length-bucketed batches.

Written for a tiny model on one CPU thread: batches hold records of one system prompt and similar
length (little padding), the shared system turn is run once per batch, and logits are computed only
where there is a loss.
"""

from __future__ import annotations

import math
import random

from rl.nano.tokenizer import EOS_TOKEN


def encode_pairs(tokenizer, prompts: list[list[dict]], targets: list[str]) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, target ids) with the prompt rendered by the chat template and the target closed by eos."""
    pairs = []
    for prompt, target in zip(prompts, targets):
        text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        prompt_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        target_ids = tokenizer(target + EOS_TOKEN, add_special_tokens=False)["input_ids"]
        pairs.append((prompt_ids, target_ids))
    return pairs


def prefix_grouped_batches(pairs, steps: int, batch_size: int, rng: random.Random) -> list[list[int]]:
    """`steps` batches of indices, epoch after epoch in a seeded order; each batch holds prompts that share
    their first tokens (the same system turn) and are of similar length.

    Grouping by system turn lets a batch run it once; sorting neighbours by length halves the padding.
    """
    groups: dict[tuple, list[int]] = {}
    for i, (prompt, _) in enumerate(pairs):
        groups.setdefault(tuple(prompt[:SYSTEM_KEY_TOKENS]), []).append(i)
    keys = sorted(groups)
    batches: list[list[int]] = []
    while len(batches) < steps:
        epoch = []
        for key in keys:
            order = list(groups[key])
            rng.shuffle(order)
            window = batch_size * 16
            for start in range(0, len(order), window):
                chunk = sorted(order[start : start + window], key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
                epoch += [chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size)]
        rng.shuffle(epoch)
        batches += epoch
    return batches[:steps]


# Prompts whose first tokens agree this far share a system turn (as far as batching cares).
SYSTEM_KEY_TOKENS = 24


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
    """Tokens every prompt of `pairs` starts with (their system turn, when they share one)."""
    first = pairs[0][0]
    n = min(len(p) for p, _ in pairs) - 1  # keep at least one prompt token in each suffix
    for p, _ in pairs:
        n = next((i for i in range(n) if p[i] != first[i]), n)
    return n


def train_steps(model, pairs, steps: int, lr: float, batch_size: int, seed: int, loss_from, desc: str,
                reply_weight: float = 0.0) -> float:
    """AdamW, warmup + cosine decay, `steps` length-bucketed batches in a seeded order; returns the last loss.

    Loss: mean cross-entropy over the positions from `loss_from(prompt_ids)` on, plus `reply_weight` x the
    mean over the reply's positions. A batch's shared prefix (its system turn: batches are drawn from
    records of one system prompt) is run once per step and its keys/values broadcast to the batch: the
    same gradients as running it in every row, and a long guideline prompt costs one row, not sixteen.
    """
    import torch
    from transformers import DynamicCache

    from common.progress import progress_bar

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * s / max(1, steps))))
    )
    batches = prefix_grouped_batches(pairs, steps, batch_size, random.Random(seed))
    pad_id = model.config.pad_token_id
    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model  # PEFT or plain
    lm, head = causal_lm.model, causal_lm.lm_head
    model.train()
    loss_value = float("nan")
    bar = progress_bar(batches, desc=desc, unit="step", leave=False)
    for chosen in bar:
        batch_pairs = [pairs[i] for i in chosen]
        prefix_len = shared_prefix_len(batch_pairs)
        ids, mask, labels, reply = _batch(batch_pairs, pad_id, prefix_len, loss_from)
        cache = DynamicCache(config=causal_lm.config)
        if prefix_len:
            lm(input_ids=torch.tensor([batch_pairs[0][0][:prefix_len]]), past_key_values=cache, use_cache=True)
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
        bar.set_postfix(loss=f"{loss_value:.3f}", refresh=False)  # drawn at the bar's own interval
    model.eval()
    return loss_value
