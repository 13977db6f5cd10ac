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
