"""The SFT adapter as both model backends (rl.model, rl.model_unsloth) read it: its base check, its
tokenizer, the dtype setting, and the error type for a setting that cannot work."""

from __future__ import annotations

import json
from pathlib import Path

from common.errors import UserError


class ModelConfigError(UserError, ValueError):
    """A model/adapter setting that cannot work; the message is one line for the user."""


def load_tokenizer(model):
    """The `model:` config group (rl.config.ModelConfig) -> its tokenizer, with a pad token."""
    from transformers import AutoTokenizer

    # The SFT run may have saved the tokenizer it trained with (chat template included): prefer it.
    adapter = Path(model.adapter_path)
    source = adapter if (adapter / "tokenizer_config.json").exists() else model.name_or_path
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


def torch_dtype(name: str | None):
    """model.dtype -> what from_pretrained takes ("auto" or a torch.dtype); one line for an unknown name."""
    if name in (None, "auto"):
        return "auto"
    import torch

    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise ModelConfigError(f"model.dtype: unknown torch dtype {name!r}")
    return dtype
