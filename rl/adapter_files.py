"""A LoRA adapter folder on disk: what a server needs from it, its content hash, and whether it is sound.

- `server_files`: the files a vLLM server reads (the config, the weights, tokenizer files if present);
  what a publish copies. Trainer state (optimizer.pt, rng_state.pth, ...) is not among them.
- `content_hash`: one sha256 over exactly those files, with `base_model_name_or_path` left out of the
  config (a publish rewrites it to the serving vLLM's `--model`): an evaluation records it, a publish
  looks for the evaluation with the same hash, so the gate judges exactly what it publishes.
- `check_adapter`: the config parses and is a LoRA; the weights parse and every tensor reads (and is
  finite); tensor names and shapes agree with the config's rank and target modules and, where the base
  model's config is on this machine, with the base model's modules (hidden size, layers); no symlinks.
  Every problem is one line naming the file and the tensor or field.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

CONFIG = "adapter_config.json"
WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")  # the first one present is used
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "vocab.json", "merges.txt", "tokenizer.model", "chat_template.jinja", "chat_template.json",
)  # fmt: skip
# PEFT's saved keys: <module path>.<lora part>[.weight|.bias] (the adapter name is stripped on save)
_LORA_KEY = re.compile(
    r"^(?P<module>.+)\.(?P<part>lora_A|lora_B|lora_embedding_A|lora_embedding_B|lora_magnitude_vector)"
    r"(?:\.(?P<param>weight|bias))?$"
)
_PEFT_PREFIX = "base_model.model."
EVAL_KEY = "adapter_sha256"  # the key under which an evaluation records the adapter it evaluated


class AdapterError(ValueError):
    """The adapter folder is not something a server can load; the message is one line naming the file."""


# ---------------------------------------------------------------- what a server reads, and its hash


def weights_file(adapter_dir: Path) -> Path | None:
    for name in WEIGHT_FILES:
        if (Path(adapter_dir) / name).is_file():
            return Path(adapter_dir) / name
    return None


def server_files(adapter_dir: Path) -> list[str]:
    """Names (top level) of the files a server needs: config, weights, tokenizer files if present."""
    adapter_dir = Path(adapter_dir)
    weights = weights_file(adapter_dir)
    names = [CONFIG, *([weights.name] if weights else []), *(n for n in TOKENIZER_FILES if (adapter_dir / n).is_file())]
    return [n for n in names if (adapter_dir / n).is_file()]


def content_hash(adapter_dir: Path) -> str:
    """sha256 over the server files; the config as canonical JSON without `base_model_name_or_path`."""
    adapter_dir = Path(adapter_dir)
    digest = hashlib.sha256()
    for name in server_files(adapter_dir):
        data = (adapter_dir / name).read_bytes()
        if name == CONFIG:
            try:
                config = json.loads(data)
            except ValueError:  # not JSON: hashed as it is (check_adapter refuses it anyway)
                config = None
            if isinstance(config, dict):
                config.pop("base_model_name_or_path", None)
                data = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
        digest.update(f"{name}\0{hashlib.sha256(data).hexdigest()}\n".encode())
    return digest.hexdigest()


def stamp(metrics: dict, adapter_dir: Path) -> dict:
    """An evaluation's metrics plus which adapter they are of (its content hash and path)."""
    return {**metrics, EVAL_KEY: content_hash(adapter_dir), "adapter_path": str(Path(adapter_dir).resolve())}


# ---------------------------------------------------------------- soundness


def read_config(adapter_dir: Path) -> dict:
    config_file = Path(adapter_dir) / CONFIG
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as err:
        raise AdapterError(f"{config_file}: cannot read the adapter config ({_one_line(err)})") from None
    if not isinstance(config, dict) or config.get("peft_type") != "LORA":
        got = config.get("peft_type") if isinstance(config, dict) else config
        raise AdapterError(f"{config_file}: field 'peft_type': expected 'LORA', got {got!r}")
    rank = config.get("r")
    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
        raise AdapterError(f"{config_file}: field 'r': expected a positive integer, got {rank!r}")
    targets = config.get("target_modules")
    if not (isinstance(targets, str) or (isinstance(targets, list) and targets and all(isinstance(t, str) for t in targets))):
        raise AdapterError(f"{config_file}: field 'target_modules': expected module names, got {targets!r}")
    return config


def refuse_symlinks(adapter_dir: Path) -> None:
    """A link inside the adapter would publish whatever it points to (outside the folder, or nothing)."""
    for root, dirs, files in os.walk(adapter_dir):
        for entry in sorted(dirs + files):
            path = Path(root) / entry
            if path.is_symlink():
                raise AdapterError(
                    f"{path}: a symlink (-> {os.readlink(path)}); publish copies plain files only, "
                    "put the file itself there"
                )


def load_tensors(path: Path) -> dict:
    """Every tensor of a weights file, read in full; one line naming the file when it does not parse."""
    import torch

    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as handle:
                return {key: handle.get_tensor(key) for key in handle.keys()}
        tensors = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # safetensors, torch and pickle each raise their own kinds
        raise AdapterError(f"{path}: not a readable weights file ({_one_line(err)})") from None
    if not isinstance(tensors, dict) or not all(isinstance(t, torch.Tensor) for t in tensors.values()):
        raise AdapterError(f"{path}: not a dict of tensors")
    return tensors


def check_adapter(adapter_dir: Path, base_model_dir: Path | None = None) -> dict:
    """Refuse (AdapterError, one line) an adapter a server cannot load or that does not fit its base
    model; returns its config. `base_model_dir`: a local folder with the base model's config.json, to
    check module names and shapes against (None: rank and target modules only)."""
    import torch

    adapter_dir = Path(adapter_dir)
    if not adapter_dir.is_dir():
        raise AdapterError(f"{adapter_dir}: adapter folder not found")
    refuse_symlinks(adapter_dir)
    config = read_config(adapter_dir)
    weights = weights_file(adapter_dir)
    if weights is None:
        raise AdapterError(f"{adapter_dir}: no adapter weights ({' or '.join(WEIGHT_FILES)})")
    tensors = load_tensors(weights)
    for key, tensor in tensors.items():
        if not tensor.is_floating_point():
            raise AdapterError(f"{weights}: tensor {key!r}: dtype {tensor.dtype} is not floating point")
        if not bool(torch.isfinite(tensor).all()):
            raise AdapterError(f"{weights}: tensor {key!r}: holds NaN or infinite values")
    modules = _lora_modules(weights, tensors, config)
    if base_model_dir is not None:
        _check_against_base(weights, modules, tensors, config, base_model_dir)
    return config


def _rank_for(module: str, config: dict) -> int:
    for pattern, rank in (config.get("rank_pattern") or {}).items():
        if re.search(rf"(^|\.){pattern}$", module):
            return rank
    return config["r"]


def _is_target(module: str, config: dict) -> bool:
    targets = config["target_modules"]
    path = module.removeprefix(_PEFT_PREFIX)
    if isinstance(targets, str):  # PEFT: a string is a regex over the whole module path
        return re.fullmatch(targets, path) is not None or targets == "all-linear"
    return path.split(".")[-1] in targets


def _lora_modules(weights: Path, tensors: dict, config: dict) -> dict[str, dict]:
    """{module path: {part: tensor key}}; refuses names that are not LoRA weights of a target module
    (or a module in modules_to_save) and A/B shapes that disagree with the rank."""
    saved_whole = set(config.get("modules_to_save") or [])
    modules: dict[str, dict] = {}
    for key, tensor in tensors.items():
        match = _LORA_KEY.match(key)
        if match is None:
            if saved_whole and any(f".{m}." in f".{key}" for m in saved_whole):
                continue
            raise AdapterError(f"{weights}: tensor {key!r}: not a LoRA weight (no lora_A/lora_B in its name)")
        module, part = match["module"], match["part"]
        if not _is_target(module, config):
            raise AdapterError(
                f"{weights}: tensor {key!r}: module {module.split('.')[-1]!r} is not in the config's "
                f"target_modules {config['target_modules']!r}"
            )
        if match["param"] == "bias":
            continue
        modules.setdefault(module, {})[part] = key
    if not modules:
        raise AdapterError(f"{weights}: no LoRA tensors in it")
    for module, parts in modules.items():
        rank = _rank_for(module, config)
        for a, b in (("lora_A", "lora_B"), ("lora_embedding_A", "lora_embedding_B")):
            if (a in parts) != (b in parts):
                have, missing = (a, b) if a in parts else (b, a)
                raise AdapterError(f"{weights}: module {module!r} has {have} but no {missing}")
            if a not in parts:
                continue
            shape_a, shape_b = tuple(tensors[parts[a]].shape), tuple(tensors[parts[b]].shape)
            # lora_A: (r, in) and lora_B: (out, r); the embedding forms: A (r, vocab), B (dim, r)
            if len(shape_a) != 2 or len(shape_b) != 2 or shape_a[0] != rank or shape_b[1] != rank:
                raise AdapterError(
                    f"{weights}: module {module!r}: {a} {list(shape_a)} and {b} {list(shape_b)} do not "
                    f"fit rank r={rank} (adapter_config.json)"
                )
        if "lora_A" not in parts and "lora_embedding_A" not in parts:
            raise AdapterError(f"{weights}: module {module!r} has no lora_A/lora_B weights")
    return modules


def _check_against_base(weights: Path, modules: dict, tensors: dict, config: dict, base_model_dir: Path) -> None:
    """Every adapted module exists in the base model with the in/out sizes the LoRA weights assume."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    base_config = AutoConfig.from_pretrained(str(base_model_dir))
    with torch.device("meta"):  # the shapes without the weights: no memory, no loading
        model = AutoModelForCausalLM.from_config(base_config)
    layers = getattr(base_config, "num_hidden_layers", None)
    for module, parts in modules.items():
        path = module.removeprefix(_PEFT_PREFIX)
        try:
            target = model.get_submodule(path)
        except AttributeError:
            raise AdapterError(
                f"{weights}: module {path!r} does not exist in the base model {base_model_dir} "
                f"({layers} layers, hidden size {getattr(base_config, 'hidden_size', '?')})"
            ) from None
        if "lora_A" in parts and isinstance(target, torch.nn.Linear):
            expected_in, expected_out = target.in_features, target.out_features
            got_in, got_out = tensors[parts["lora_A"]].shape[1], tensors[parts["lora_B"]].shape[0]
        elif "lora_embedding_A" in parts and isinstance(target, torch.nn.Embedding):
            expected_in, expected_out = target.num_embeddings, target.embedding_dim
            got_in, got_out = tensors[parts["lora_embedding_A"]].shape[1], tensors[parts["lora_embedding_B"]].shape[0]
        else:
            continue  # a module type whose LoRA shapes we do not know: rank checked above
        if (got_in, got_out) != (expected_in, expected_out):
            raise AdapterError(
                f"{weights}: module {path!r}: LoRA weights map {got_in} -> {got_out} features but the base "
                f"model's module maps {expected_in} -> {expected_out} ({base_model_dir}/config.json)"
            )


def local_model_config_dir(name_or_path: str) -> Path | None:
    """A local folder holding the base model's config.json: the path itself, or the Hugging Face cache's
    snapshot of a hub id. None when neither is on this machine (nothing is downloaded)."""
    if not name_or_path:
        return None
    local = Path(name_or_path)
    if (local / "config.json").is_file():
        return local
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(name_or_path, "config.json")
    except Exception:  # not a valid repo id, no cache: nothing to check against
        return None
    return Path(cached).parent if isinstance(cached, str) else None


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__
