"""Load the policy GRPO trains: the base model plus the user's SFT LoRA, trainable.

Two ways to start from the SFT adapter (`model.adapter_mode`):
- `continue` (default): the SFT adapter itself keeps training, so GRPO starts exactly at the SFT policy;
- `fresh`: the SFT adapter is merged into the base weights and a new LoRA (`model.lora`) is trained on top.

`model.backend=unsloth` hands the same job to Unsloth on the GPU box (imported only then).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

log = logging.getLogger(__name__)


class ModelConfigError(ValueError):
    """A model/adapter setting that cannot work; the message is one line for the user."""


def ensure_built(model: dict) -> None:
    """The nano model is built by the project itself: on first use, and again when its recipe or data changed
    (`model.build_if_missing`; the check is one hash of the data file)."""
    if model.get("build_if_missing"):
        from rl.nano import ensure_nano

        ensure_nano(Path(model["name_or_path"]).parent)


def load_policy(model: dict):
    """`model:` config group as a plain dict -> (trainable PEFT model, tokenizer)."""
    backend = model.get("backend", "transformers")
    if backend == "unsloth":
        from rl.model_unsloth import load_unsloth_policy

        return load_unsloth_policy(model)
    if backend != "transformers":
        raise ModelConfigError(f"model.backend: expected 'transformers' or 'unsloth', got {backend!r}")

    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    adapter = Path(model["adapter_path"])
    check_adapter_base(adapter, model["name_or_path"], model.get("base_aliases") or [])
    tokenizer = load_tokenizer(model)
    base = AutoModelForCausalLM.from_pretrained(model["name_or_path"], dtype=_dtype(model.get("dtype")))

    mode = model.get("adapter_mode", "continue")
    if mode == "continue":
        policy = PeftModel.from_pretrained(base, str(adapter), is_trainable=True)
    elif mode == "fresh":
        merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
        lora = model["lora"]
        policy = get_peft_model(
            merged,
            LoraConfig(
                r=lora["r"],
                lora_alpha=lora["alpha"],
                lora_dropout=lora["dropout"],
                target_modules=list(lora["target_modules"]),
                task_type="CAUSAL_LM",
            ),
        )
    else:
        raise ModelConfigError(f"model.adapter_mode: expected 'continue' or 'fresh', got {mode!r}")
    trainable = sum(p.numel() for p in policy.parameters() if p.requires_grad)
    log.info("policy: %s + %s (%s), %d trainable parameters", model["name_or_path"], adapter, mode, trainable)
    return policy, tokenizer


def load_tokenizer(model: dict):
    from transformers import AutoTokenizer

    # The SFT run may have saved the tokenizer it trained with (chat template included): prefer it.
    adapter = Path(model["adapter_path"])
    source = adapter if (adapter / "tokenizer_config.json").exists() else model["name_or_path"]
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def check_adapter_base(adapter_dir: Path, expected: str, aliases: list[str] = ()) -> None:
    """Refuse an adapter trained on another base model: its LoRA deltas would be meaningless there."""
    config_file = Path(adapter_dir) / "adapter_config.json"
    if not config_file.exists():
        raise ModelConfigError(f"model.adapter_path: {adapter_dir} has no adapter_config.json (not a PEFT adapter)")
    try:
        adapter_base = json.loads(config_file.read_text())["base_model_name_or_path"]
    except (json.JSONDecodeError, KeyError) as err:
        raise ModelConfigError(f"{config_file}: field 'base_model_name_or_path': unreadable ({err})") from None
    if not same_base(adapter_base, expected, aliases):
        raise ModelConfigError(
            f"{config_file}: field 'base_model_name_or_path' is {adapter_base!r} but model.name_or_path is "
            f"{expected!r}; train against the adapter's base or add it to model.base_aliases"
        )


def same_base(adapter_base: str, expected: str, aliases: list[str] = ()) -> bool:
    if adapter_base in (expected, *aliases):
        return True
    # Local paths may be written relative or absolute; compare where both exist.
    a, b = Path(adapter_base), Path(expected)
    return a.exists() and b.exists() and a.resolve() == b.resolve()


def _dtype(name: str | None):
    if name in (None, "auto"):
        return "auto"
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise ModelConfigError(f"model.dtype: unknown torch dtype {name!r}")
    return dtype
