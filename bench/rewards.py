"""Completions per second of the built-in rewards on one core.

Two realistic batches of 4096 completions: the labeled short replies (English, Vietnamese, mixed,
other languages) plus tagged, long and empty ones, either all distinct ("distinct") or in GRPO groups
of 8 where about 40% of a group repeats an earlier sample ("grpo groups", as sampling does). Each reward
is called once on the whole batch, as TRL does per step; "combined" runs all three. english_only's
decision cache is cleared before every repeat, so only repeats within a batch hit it. Median of repeats.

Run:  OMP_NUM_THREADS=1 taskset -c 0 python -m bench.rewards [--repeats 7] [--batch 4096]
"""

from __future__ import annotations

from pathlib import Path

import argparse
import os
import random
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from rewards.english import clear_cache, english_only
from rewards.length import word_count
from rewards.tags import no_say_tags

REPLIES = Path(__file__).resolve().parents[1] / "tests" / "data" / "short_replies.tsv"
EXTRA = ["<say>Great job!</say>", "&lt;say&gt;Wow!", "< SAY >Yes", "", "   ", "Super! 🎉🎉",
         "That's right, the cat is very big and it can run really fast in the park!",
         "Đúng rồi, con mèo là cat! Bây giờ con thử nói dog nhé, con chó là dog."]


def texts() -> list[str]:
    lines = REPLIES.read_text(encoding="utf-8").splitlines()[1:]
    return [line.split("\t")[0] for line in lines] + EXTRA


def distinct_batch(size: int, seed: int = 0) -> list[str]:
    """`size` different completions: real replies, made distinct by an appended name or emoji."""
    rng = random.Random(seed)
    base, out, seen = texts(), [], set()
    tails = ["", "!", " 😊", " Tom!", " Minh!", " 🎉", " Yes!", " Lan."]
    while len(out) < size:
        text = rng.choice(base) + rng.choice(tails) + (" " * rng.randrange(3))
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def grpo_batch(size: int, group: int = 8, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    pool, out = distinct_batch(size, seed), []
    while len(out) < size:
        samples = []
        for _ in range(group):
            repeat = samples and rng.random() < 0.4
            samples.append(rng.choice(samples) if repeat else pool[len(out) + len(samples)])
        out.extend(samples)
    return out[:size]


def rate(func, completions, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        clear_cache()
        start = time.perf_counter()
        func(completions)
        times.append(time.perf_counter() - start)
    return len(completions) / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=4096)
    args = parser.parse_args()
    batches = {"distinct": distinct_batch(args.batch), "grpo groups": grpo_batch(args.batch)}
    english_only(prompts=None, completions=["warm up: load the fastText model"])
    funcs = {
        "english_only": lambda c: english_only(prompts=None, completions=c),
        "word_count": lambda c: word_count(prompts=None, completions=c),
        "no_say_tags": lambda c: no_say_tags(prompts=None, completions=c),
    }
    parts = list(funcs.values())
    funcs["combined"] = lambda c: [f(c) for f in parts]
    print(f"batch {args.batch} completions, median of {args.repeats} repeats, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, cpus={sorted(os.sched_getaffinity(0))}")
    print("| reward | " + " | ".join(f"{name} (completions/s)" for name in batches) + " |")
    print("| --- | " + " | ".join("---:" for _ in batches) + " |")
    for name, func in funcs.items():
        print(f"| {name} | " + " | ".join(f"{rate(func, b, args.repeats):,.0f}" for b in batches.values()) + " |")


if __name__ == "__main__":
    main()
