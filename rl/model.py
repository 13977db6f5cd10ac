"""Load the policy GRPO trains: the base model plus the user's SFT LoRA, trainable.

Two ways to start from the SFT adapter (`model.adapter_mode`):
- `continue` (default): the SFT adapter itself keeps training, so GRPO starts exactly at the SFT policy;
- `fresh`: the SFT adapter is merged into the base weights and a new LoRA (`model.lora`) is trained on top.

`model.backend=unsloth` hands the same job to Unsloth on the GPU box (imported only then).
"""

from __future__ import annotations

import logging
from pathlib import Path

from rl.adapter import ModelConfigError, check_adapter_base, load_tokenizer, same_base, torch_dtype
from rl.config import DataConfig, ModelConfig

log = logging.getLogger(__name__)
__all__ = ["ModelConfigError", "check_adapter_base", "ensure_built", "load_policy", "load_tokenizer", "same_base"]


def ensure_built(model: ModelConfig, data: DataConfig | None = None) -> None:
    """The nano model is built by the project itself (`model.build_if_missing`).

    Training passes its `data:` config: the model is built from `data.path` with that split (so the
    held-out prompts it evaluates on were never in the SFT data), and rebuilt when recipe, data or split
    changed. Evaluation passes none: an existing build is used as it is, whatever it was built from
    (rebuilding would change the base under the adapter being evaluated); a missing one is built from the
    demo data."""
    if not model.build_if_missing:
        return
    from rl.nano import Split, ensure_nano, is_complete

    root = Path(model.name_or_path).parent
    if data is None:
        if not is_complete(root):
            ensure_nano(root)
        return
    ensure_nano(root, data=Path(data.path), split=Split.from_data_config(data))


def load_policy(model: ModelConfig):
    """The `model:` config group -> (trainable PEFT model, tokenizer)."""
    if model.backend == "unsloth":
        from rl.model_unsloth import load_unsloth_policy

        return load_unsloth_policy(model)

    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    adapter = Path(model.adapter_path)
    check_adapter_base(adapter, model.name_or_path, model.base_aliases)
    tokenizer = load_tokenizer(model)
    base = AutoModelForCausalLM.from_pretrained(model.name_or_path, dtype=torch_dtype(model.dtype))

    mode = model.adapter_mode
    if mode == "continue":
        policy = PeftModel.from_pretrained(base, str(adapter), is_trainable=True)
    elif mode == "fresh":
        merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
        lora = model.lora
        policy = get_peft_model(
            merged,
            LoraConfig(
                r=lora.r,
                lora_alpha=lora.alpha,
                lora_dropout=lora.dropout,
                target_modules=list(lora.target_modules),
                task_type="CAUSAL_LM",
            ),
        )
    else:
        raise ModelConfigError(f"model.adapter_mode: expected 'continue' or 'fresh', got {mode!r}")
    trainable = sum(p.numel() for p in policy.parameters() if p.requires_grad)
    log.info("policy: %s + %s (%s), %d trainable parameters", model.name_or_path, adapter, mode, trainable)
    return policy, tokenizer
