"""Judge speed: requests/s against max_concurrency, and the cache hit rate on real GRPO batches.

Runs the real `judge_coherence` reward against a fake OpenAI-compatible server on 127.0.0.1
(`python -m tests.fake_judge`, its own process like a real judge) that answers after `--latency`
seconds, like a busy vLLM judge:
1. throughput: 64 distinct completions per call, fresh reward (no cache), max_concurrency 1/4/16/64;
2. the target: 64 distinct completions at 0.3 s latency with the default settings (conf/judge/vllm.yaml);
3. cache: GRPO batches (8 prompts x 8 samples) sampled from the nano SFT model at temperature 1, as
   training samples them, and (`demo`) drawn from the demo data's fast responses with repeats (60% the
   reference reply, else any demo reply: a policy that has converged on short stock replies), for
   `--steps` steps and two epochs over the same prompts, with the cache file kept between steps.

Run:  python -m bench.judge [--latency 0.3] [--repeats 3] [--samples nano demo] [--steps 4]
Record the printed medians in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from rewards.judge import make_judge_reward
from rl.data import load_records, to_example

GROUP = 8  # rollout.num_generations
MODEL = "fake-judge"


@contextlib.contextmanager
def fake_judge(latency: float):
    """A fake judge in its own process (in-process, its threads would share our GIL) -> judge dict."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "tests.fake_judge", "--port", str(port), "--latency", str(latency)]
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(100):
            with contextlib.suppress(httpx.TransportError):
                httpx.get(f"{base_url}/models", timeout=1)
                break
            time.sleep(0.1)
        yield {"base_url": base_url, "model": MODEL, "cache_path": None}
    finally:
        process.terminate()
        process.wait(10)


def columns_for(examples: list[dict], completions: list[str]) -> dict:
    """TRL's reward kwargs for a batch where each example is repeated GROUP times."""
    rows = [ex for ex in examples for _ in range(GROUP)]
    return {
        "prompts": [ex["prompt"] for ex in rows],
        "completions": completions,
        **{key: [ex[key] for ex in rows] for key in ("last_robot_turn", "child_reply", "main_answer")},
    }


def timed_call(reward, kwargs: dict) -> float:
    start = time.perf_counter()
    out = asyncio.run(reward(**kwargs))
    elapsed = time.perf_counter() - start
    if None in out:
        sys.exit(f"bench: the fake judge failed {out.count(None)} of {len(out)} requests")
    return elapsed


def throughput(examples: list[dict], latency: float, repeats: int) -> None:
    distinct = [f"Reply number {i}" for i in range(GROUP)]
    kwargs = columns_for(examples[:8], distinct * 8)
    print(f"\n## Throughput: 64 distinct completions per call, server latency {latency:g} s")
    print("| max_concurrency | wall s (median) | requests/s | x vs 1 |\n|---|---|---|---|")
    base = None
    with fake_judge(latency) as judge:
        for concurrency in (1, 4, 16, 64):
            runs = 1 if concurrency == 1 else repeats  # serial: 64 x latency, once is enough
            reward = make_judge_reward(dict(judge, max_concurrency=concurrency))
            walls = [timed_call(reward, kwargs) for _ in range(runs)]
            wall = statistics.median(walls)
            base = base or wall
            print(f"| {concurrency} | {wall:.2f} | {64 / wall:.0f} | {base / wall:.1f} |")


def target(examples: list[dict], repeats: int) -> None:
    kwargs = columns_for(examples[:8], [f"Reply number {i}" for i in range(GROUP)] * 8)
    with fake_judge(0.3) as judge:
        walls = [timed_call(make_judge_reward(judge, group_size=GROUP), kwargs) for _ in range(repeats)]
        reward = make_judge_reward(judge)
    print(
        f"\n## Target: 64 distinct completions at 0.3 s latency, defaults (max_concurrency="
        f"{reward.settings.max_concurrency}): median {statistics.median(walls):.2f} s, max {max(walls):.2f} s"
        f" (target < 2 s; serial would be {64 * 0.3:.1f} s)"
    )


def nano_sampler():
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rl.generation import generate_replies
    from rl.nano import ensure_nano

    torch.set_num_threads(1)
    paths = ensure_nano()
    tokenizer = AutoTokenizer.from_pretrained(paths.base)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(paths.base), paths.sft).eval()

    def sample(examples: list[dict], seed: int) -> list[str]:
        prompts = [ex["prompt"] for ex in examples for _ in range(GROUP)]
        return [r.strip() for r in generate_replies(model, tokenizer, prompts, 64, 24, sample=True, seed=seed)]

    return sample


def demo_sampler(examples_all: list[dict]):
    pool = [ex["reference_fast_response"] for ex in examples_all]

    def sample(examples: list[dict], seed: int) -> list[str]:
        rng = random.Random(seed)
        out = []
        for ex in examples:  # a policy near its SFT start: mostly the reference, sometimes another reply
            out += [ex["reference_fast_response"] if rng.random() < 0.6 else rng.choice(pool) for _ in range(GROUP)]
        return out

    return sample


def cache_rates(examples: list[dict], samples: str, steps: int) -> None:
    sample = nano_sampler() if samples == "nano" else demo_sampler(examples)
    batches = [examples[8 * s : 8 * s + 8] for s in range(steps)]
    print(f"\n## Cache hit rate: GRPO batches of 8 prompts x {GROUP} samples ({samples} samples), cache kept")
    print("| epoch | step | distinct pairs | requests | hit rate |\n|---|---|---|---|---|")
    rates = {1: [], 2: []}
    with fake_judge(0.01) as judge, tempfile.TemporaryDirectory() as tmp:
        reward = make_judge_reward(dict(judge, cache_path=str(Path(tmp) / "judge.sqlite")), group_size=GROUP)
        for epoch in (1, 2):
            for step, batch in enumerate(batches):
                kwargs = columns_for(batch, sample(batch, seed=1000 * epoch + step))
                metrics = {}
                asyncio.run(reward(**kwargs, log_metric=metrics.__setitem__))
                distinct = len(set(zip(kwargs["last_robot_turn"], kwargs["child_reply"], kwargs["completions"])))
                rate = metrics["judge/cache_hit_rate"]
                rates[epoch].append(rate)
                print(f"| {epoch} | {step} | {distinct} | {metrics['judge/requests']:.0f} | {rate:.0%} |")
    for epoch, values in rates.items():
        print(f"epoch {epoch}: mean hit rate {statistics.mean(values):.0%}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", choices=("nano", "demo"), nargs="+", default=["nano", "demo"])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--data", default="data/demo/pika_demo.jsonl")
    args = parser.parse_args(argv)
    rng = random.Random(0)
    records = load_records(args.data)
    examples = [to_example(r) for r in rng.sample(records, min(len(records), 8 * max(args.steps, 1)))]
    throughput(examples, args.latency, args.repeats)
    target(examples, args.repeats)
    for samples in args.samples:
        cache_rates(examples, samples, args.steps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
