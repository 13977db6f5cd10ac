"""Prompt-shared GRPO vs TRL's per-completion scoring: one training step at Pika's shape, on the nano model.

    OMP_NUM_THREADS=1 python -m bench.shared_prompt [--repeats 7] [--prompt-tokens 700] [--completion-tokens 16]

Pika's shape: prompts of about 700 tokens (here 700 and 680, so one is left-padded, cut from real demo
conversations in the chat template), groups of 8 and 16 completions of at most 16 tokens (lengths 4-16: most
stop early), two prompts per step. One GRPOTrainer (dapo loss, num_iterations 1, beta 0: the real job's
settings), timed both ways on the same batch: TRL's own scoring (`share_prompt_off` set) and the packed one.

- step: the policy's forward and backward of the GRPO loss (`compute_loss` + `backward`), what a training
  step costs besides sampling. The headline speedup.
- rollout: `rollout=hf` sampling of the same groups (16 new tokens) with and without the shared prefill.
Runs alternate plain, shared, plain, shared, ... so drift on a shared machine hits both; medians of
`--repeats` each after one warm-up. Memory: the bytes autograd keeps for backward during the loss forward
(activations and logits, the part that grows with the batch), and on CUDA the peak allocated memory.
Accuracy: max |log-prob| difference and max relative difference of any LoRA gradient tensor, plain vs shared.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import torch


def build_trainer(group: int, prompts: int, completion_tokens: int, workdir: Path):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from rl.model import load_policy
    from rl.nano import ensure_nano
    from rl.shared_prompt import shared_prompt_trainer

    nano = ensure_nano()
    policy, tokenizer = load_policy({"name_or_path": str(nano.base), "adapter_path": str(nano.sft),
                                     "adapter_mode": "continue", "dtype": "float32"})
    args = GRPOConfig(output_dir=str(workdir), per_device_train_batch_size=group * prompts, num_generations=group,
                      max_completion_length=completion_tokens, loss_type="dapo", beta=0.0, bf16=False,
                      use_cpu=not torch.cuda.is_available(), report_to=[], logging_steps=1, temperature=1.0)
    trainer = shared_prompt_trainer(GRPOTrainer)(
        model=policy, reward_funcs=[lambda completions, **_: [0.0] * len(completions)], args=args,
        train_dataset=Dataset.from_dict({"prompt": ["x"] * 8}), processing_class=tokenizer)
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train() in a real run
    return trainer, tokenizer, nano


def pika_prompts(tokenizer, data: Path, lengths: list[int]) -> list[list[int]]:
    """Real demo conversations in the chat template, concatenated and cut to each length (ending in the
    assistant turn header, as a rendered prompt does)."""
    import json

    records = [json.loads(line) for line in data.read_text().splitlines() if line.strip()]
    stream: list[int] = []
    for record in records:
        stream += tokenizer.apply_chat_template(record["previous_conversation"], tokenize=True,
                                                add_generation_prompt=True, return_dict=False)
        if len(stream) > 4 * max(lengths):
            break
    tail = tokenizer.apply_chat_template(records[0]["previous_conversation"], tokenize=True,
                                         add_generation_prompt=True, return_dict=False)[-3:]
    return [stream[i * 997: i * 997 + n - len(tail)] + tail for i, n in enumerate(lengths)]


def batch_inputs(trainer, tokenizer, prompts: list[list[int]], group: int, completion_tokens: int, seed: int = 0):
    """TRL's training inputs for these prompts: left-padded prompts, right-padded completions, shuffled rows."""
    from trl.trainer.utils import pad

    gen = torch.Generator().manual_seed(seed)
    vocab = len(tokenizer)
    prompt_rows, completion_rows = [], []
    for ids in prompts:
        for _ in range(group):
            n = int(torch.randint(4, completion_tokens + 1, (1,), generator=gen))
            tokens = torch.randint(10, vocab, (n,), generator=gen)
            if n < completion_tokens:
                tokens[-1] = tokenizer.eos_token_id
            prompt_rows.append(torch.tensor(ids))
            completion_rows.append(tokens)
    order = torch.randperm(len(prompt_rows), generator=gen)
    prompt_rows = [prompt_rows[i] for i in order]
    completion_rows = [completion_rows[i] for i in order]
    pad_id = tokenizer.pad_token_id
    inputs = {
        "prompt_ids": pad(prompt_rows, padding_value=pad_id, padding_side="left"),
        "prompt_mask": pad([torch.ones_like(r) for r in prompt_rows], padding_value=0, padding_side="left"),
        "completion_ids": pad(completion_rows, padding_value=pad_id, padding_side="right"),
        "completion_mask": pad([torch.ones_like(r) for r in completion_rows], padding_value=0, padding_side="right"),
        "advantages": torch.randn(len(prompt_rows), generator=gen),
    }
    inputs["num_items_in_batch"] = inputs["completion_mask"].sum()
    device = trainer.accelerator.device
    return {k: v.to(device) for k, v in inputs.items()}


def set_sharing(trainer, on: bool) -> None:
    trainer.share_prompt_off = "" if on else "bench: TRL's own scoring"
    trainer.share_prefill = on


def train_step(trainer, inputs) -> float:
    trainer.model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    loss = trainer.compute_loss(trainer.model, inputs)
    loss.backward()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def rollout_step(trainer, prompts: list[list[int]], group: int) -> float:
    """TRL's sampling call for `group` completions of each prompt (transformers generate)."""
    repeated = [ids for ids in prompts for _ in range(group)]
    start = time.perf_counter()
    trainer._generate_single_turn(repeated, None, {}, group)
    return time.perf_counter() - start


def saved_bytes(trainer, inputs) -> tuple[int, int]:
    """(bytes autograd saves for backward in the loss forward, CUDA peak allocated or 0)."""
    seen: dict[int, int] = {}

    def pack(tensor):
        if tensor.data_ptr() not in seen:
            seen[tensor.data_ptr()] = tensor.numel() * tensor.element_size()
        return tensor

    trainer.model.zero_grad(set_to_none=True)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = trainer.compute_loss(trainer.model, inputs)
    loss.backward()
    peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0
    return sum(seen.values()), peak


def accuracy(trainer, inputs) -> tuple[float, float]:
    """(max |dlogp| over scored tokens, max relative difference of a LoRA gradient), plain vs shared."""
    ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
    mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)
    keep = inputs["completion_ids"].size(1)
    scored = inputs["completion_mask"].bool()
    params = [p for p in trainer.model.parameters() if p.requires_grad]
    out = {}
    for on in (False, True):
        set_sharing(trainer, on)
        logps, _, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, keep)
        weights = torch.linspace(-1, 1, logps.numel(), device=logps.device).view_as(logps)
        grads = torch.autograd.grad((logps * weights * scored).sum(), params)
        out[on] = (logps.detach(), grads)
    dlogp = (out[True][0] - out[False][0]).abs()[scored].max().item()
    rel = max(((a - b).norm() / b.norm().clamp(min=1e-30)).item() for a, b in zip(out[True][1], out[False][1]))
    return dlogp, rel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--prompt-tokens", type=int, default=700)
    parser.add_argument("--completion-tokens", type=int, default=16)
    parser.add_argument("--groups", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--prompts", type=int, default=2, help="prompts (groups) per step")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    rows, summary, accuracies = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for group in args.groups:
            trainer, tokenizer, nano = build_trainer(group, args.prompts, args.completion_tokens, Path(tmp))
            lengths = [args.prompt_tokens - 20 * i for i in range(args.prompts)]
            prompts = pika_prompts(tokenizer, nano.data, lengths)
            inputs = batch_inputs(trainer, tokenizer, prompts, group, args.completion_tokens)
            times = {("step", False): [], ("step", True): [], ("rollout", False): [], ("rollout", True): []}
            for repeat in range(args.repeats + 1):  # the first round warms up, not timed
                for on in (False, True):
                    set_sharing(trainer, on)
                    step = train_step(trainer, inputs)
                    rollout = rollout_step(trainer, prompts, group)
                    if repeat:
                        times[("step", on)].append(step)
                        times[("rollout", on)].append(rollout)
            memory = {}
            for on in (False, True):
                set_sharing(trainer, on)
                memory[on] = saved_bytes(trainer, inputs)
            accuracies.append(accuracy(trainer, inputs))
            tokens_plain = int(torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], 1).sum())
            tokens_shared = sum(lengths) + int(inputs["completion_mask"].sum())
            for what in ("step", "rollout"):
                plain, shared = (statistics.median(times[(what, on)]) for on in (False, True))
                rows.append((group, what, plain, shared, plain / shared,
                             memory[False] if what == "step" else None, memory[True] if what == "step" else None,
                             tokens_plain, tokens_shared))
                if what == "step":
                    summary.append((group, plain / shared))

    print(f"nano model, prompts {lengths} tokens, completions 4-{args.completion_tokens} tokens, "
          f"{args.prompts} prompts per step, medians of {args.repeats} interleaved runs, "
          f"torch threads {torch.get_num_threads()}")
    print("| G | what | plain s | shared s | speedup | saved for backward plain / shared MB | "
          "CUDA peak plain / shared MB | tokens plain / unique |")
    print("|---|---|---|---|---|---|---|---|")
    for group, what, plain, shared, speedup, mem_plain, mem_shared, tok_plain, tok_shared in rows:
        saved = f"{mem_plain[0] / 2**20:.1f} / {mem_shared[0] / 2**20:.1f}" if mem_plain else "-"
        cuda = f"{mem_plain[1] / 2**20:.0f} / {mem_shared[1] / 2**20:.0f}" if mem_plain and mem_plain[1] else "-"
        tokens = f"{tok_plain} / {tok_shared}" if what == "step" else "-"
        print(f"| {group} | {what} | {plain:.3f} | {shared:.3f} | {speedup:.2f}x | {saved} | {cuda} | {tokens} |")
    dlogp = max(a for a, _ in accuracies)
    grad = max(g for _, g in accuracies)
    parts = ", ".join(f"G={group} speedup {speedup:.1f}x" for group, speedup in summary)
    print(f"shared_prompt: {parts}, max |dlogp| {dlogp:.0e}, max grad rel diff {grad:.0e}")


if __name__ == "__main__":
    main()
