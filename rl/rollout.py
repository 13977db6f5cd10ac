"""How completions are sampled: the `rollout:` config group -> GRPOConfig and GRPOTrainer arguments.

`rollout=hf` samples with transformers' generate inside the trainer (CPU, or the simplest GPU setup).
"""

from __future__ import annotations

from pathlib import Path

# Keys every rollout backend shares, mapped 1:1 onto GRPOConfig fields.
_SAMPLING_KEYS = ("num_generations", "max_completion_length", "temperature", "top_p", "top_k")


def grpo_args(rollout: dict) -> dict:
    """`rollout:` config -> GRPOConfig keyword arguments."""
    backend = rollout.get("backend", "hf")
    args = {key: rollout[key] for key in _SAMPLING_KEYS if key in rollout}
    if backend == "hf":
        args["use_vllm"] = False
        return args
    raise ValueError(f"rollout.backend: unknown backend {backend!r}")


def trainer_hooks(rollout: dict, run_dir: Path, model_cfg: dict) -> dict:
    """Extra GRPOTrainer keyword arguments the backend needs (a rollout_func, callbacks)."""
    return {}
