"""`model.backend=unsloth`: the policy through Unsloth's FastLanguageModel on the GPU box (imported only here).

    python -m rl.train +exp=english_only_1gpu                # Qwen2.5-1.5B + SFT LoRA, Unsloth, one 3090

Loads the base with `FastLanguageModel.from_pretrained` (optionally with Unsloth's in-process vLLM:
`model.unsloth.fast_inference`, `max_lora_rank`, `gpu_memory_utilization`), gives it a LoRA of the SFT
adapter's shape with `get_peft_model` (Unsloth's fast LoRA kernels and, with fast inference, the adapter
slot vLLM samples with) and copies the SFT weights into it, so GRPO starts exactly at the SFT policy
and feeds the same GRPOTrainer as `model.backend=transformers`.

Importing unsloth patches TRL's trainers (`trl.GRPOTrainer` becomes Unsloth's subclass, which samples with
the in-process vLLM when `fast_inference` is on, whatever `rollout` says): look trl's classes up after
`load_policy`. Unsloth needs a CUDA GPU and the GPU extra; without them this is one clear error.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)

def check_available() -> None:
    """One clear error when Unsloth cannot run here (no package, or no CUDA GPU)."""
    from rl.adapter import ModelConfigError

    if importlib.util.find_spec("unsloth") is None:
        raise ModelConfigError(
            "model.backend=unsloth needs the unsloth package and a CUDA GPU: pip install -e '.[gpu]' on the "
            "GPU box, or use model.backend=transformers"
        )
    import torch

    if not torch.cuda.is_available():
        raise ModelConfigError("model.backend=unsloth needs a CUDA GPU (none visible); use model.backend=transformers")


def load_unsloth_policy(model):
    """The `model:` config group (rl.config.ModelConfig) -> (trainable PEFT model, tokenizer), like
    rl.model.load_policy; its `unsloth:` settings are model.unsloth."""
    from rl.adapter import ModelConfigError, check_adapter_base, load_tokenizer, torch_dtype

    check_available()
    opts = vars(model.unsloth)
    if model.adapter_mode != "continue":
        raise ModelConfigError("model.adapter_mode=fresh is not supported with model.backend=unsloth; use continue")
    adapter = Path(model.adapter_path)
    check_adapter_base(adapter, model.name_or_path, model.base_aliases)
    sft = json.loads((adapter / "adapter_config.json").read_text())
    if int(sft["r"]) > int(opts["max_lora_rank"]):
        raise ModelConfigError(
            f"{adapter / 'adapter_config.json'}: field 'r' is {sft['r']} but model.unsloth.max_lora_rank is "
            f"{opts['max_lora_rank']}; raise max_lora_rank"
        )

    from unsloth import FastLanguageModel  # patches trl: keep it the first heavy import of the run when possible

    policy, tokenizer = FastLanguageModel.from_pretrained(
        model_name=model.name_or_path,
        max_seq_length=opts["max_seq_length"],
        dtype=torch_dtype(model.dtype) if model.dtype not in (None, "auto") else None,
        load_in_4bit=opts["load_in_4bit"],
        fast_inference=opts["fast_inference"],
        max_lora_rank=opts["max_lora_rank"],
        gpu_memory_utilization=opts["gpu_memory_utilization"],
    )
    policy = FastLanguageModel.get_peft_model(
        policy,
        r=int(sft["r"]),
        lora_alpha=sft.get("lora_alpha", sft["r"]),
        lora_dropout=sft.get("lora_dropout") or 0.0,
        target_modules=sft["target_modules"],
        bias="none",
        use_gradient_checkpointing=opts["use_gradient_checkpointing"],
        random_state=opts["random_state"],
    )
    load_sft_weights(policy, adapter)
    if (adapter / "tokenizer_config.json").exists():
        tokenizer = load_tokenizer(model)  # the SFT run's tokenizer (chat template) wins, as with transformers
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    log.info("policy (unsloth): %s + %s, fast_inference=%s", model.name_or_path, adapter, opts["fast_inference"])
    return policy, tokenizer


def load_sft_weights(policy, adapter: Path) -> None:
    """Copy the SFT adapter's LoRA weights into the freshly made LoRA of the same shape; refuse a mismatch."""
    from peft import set_peft_model_state_dict

    from rl.adapter import ModelConfigError

    weights = adapter / "adapter_model.safetensors"
    if weights.exists():
        from safetensors.torch import load_file

        state = load_file(str(weights))
    elif (adapter / "adapter_model.bin").exists():
        import torch

        state = torch.load(adapter / "adapter_model.bin", map_location="cpu", weights_only=True)
    else:
        raise ModelConfigError(f"model.adapter_path: {adapter} has no adapter_model.safetensors")
    result = set_peft_model_state_dict(policy, state)
    unexpected = list(getattr(result, "unexpected_keys", []) or [])
    if unexpected:
        raise ModelConfigError(f"{weights}: {len(unexpected)} weights do not fit the model (first: {unexpected[0]})")
