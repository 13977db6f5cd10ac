"""What decides a nano build: the recipe (sizes, steps, rates), the data file and its train/held-out split.

The split is the data config's (`conf/data/demo.yaml`: `eval_size`, `split_seed`), read from there rather
than repeated here, so the held-out prompts training evaluates on are exactly the ones the SFT adapter
never saw. A build is identified by `fingerprint(recipe, data, split)`: change any of them and
`ensure_nano` builds again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

DEFAULT_ROOT = Path("checkpoints/nano")
DEFAULT_DATA = Path("data/demo/pika_demo.jsonl")
BUILD_FILE = "nano_build.json"
# Bump when the recipe changes in a way that makes older builds stale (ensure_nano rebuilds them).
RECIPE_VERSION = 4

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
VLLM_CPU_HEAD_DIMS = (32, 64, 80, 96, 112, 128)


@dataclass(frozen=True)
class NanoPaths:
    base: Path
    sft: Path
    data: Path


@dataclass(frozen=True)
class Split:
    """The train / held-out split of the build's data: the data config's `eval_size` and `split_seed`."""

    eval_size: int = 128
    split_seed: int = 0

    @classmethod
    def from_data_config(cls, data) -> Split:
        """`data` (rl.config.DataConfig, or conf/data/demo.yaml's `data:` as a dict) -> the split."""
        eval_size, split_seed = (data.get("eval_size"), data.get("split_seed", 0)) if isinstance(data, dict) else (
            data.eval_size, data.split_seed)
        if eval_size == "all":
            raise ValueError("data.eval_size=all leaves nothing to build the nano model from; give a number")
        return cls(eval_size=int(eval_size), split_seed=int(split_seed))


def demo_data_config() -> dict:
    """`data:` of conf/data/demo.yaml, the config `model=nano` trains with."""
    from omegaconf import OmegaConf

    text = (resources.files("conf") / "data" / "demo.yaml").read_text(encoding="utf-8")
    return OmegaConf.to_container(OmegaConf.create(text), resolve=True)["data"]


def history_formats() -> dict[str, dict]:
    """name -> `data.history` of each preset in conf/history/ (default, served): the nano model learns
    every rendering a user can pick, so `history=NAME` works on it without a rebuild."""
    from omegaconf import OmegaConf

    presets = {}
    for entry in sorted(resources.files("conf").joinpath("history").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            presets[entry.name.removesuffix(".yaml")] = OmegaConf.to_container(
                OmegaConf.create(entry.read_text(encoding="utf-8")), resolve=True)
    return presets


def demo_split() -> Split:
    return Split.from_data_config(demo_data_config())


@dataclass(frozen=True)
class Recipe:
    """Everything about the build but the data. The defaults are the nano model; tests shrink the steps."""

    seed: int = 0
    # tokenizer: the training split plus this many of wordfreq's most common English and Vietnamese words
    vocab_size: int = 4096
    tokenizer_words: int = 2000
    # model (head_dim = hidden_size / num_heads must be one of VLLM_CPU_HEAD_DIMS)
    hidden_size: int = 128
    num_layers: int = 3
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int = 384
    max_position_embeddings: int = 1024
    # pretraining (clean targets)
    pretrain_steps: int = 800
    pretrain_lr: float = 4e-3
    pretrain_reply_weight: float = 2.0  # extra weight on the reply tokens, on top of the conversation's
    # "conversation": loss on the turns and the reply (a language model of the robot's and the child's
    # text, robust to new turns); "reply": on the reply only (cheaper: the lm head is most of a step)
    pretrain_loss_on: str = "conversation"
    main_answer_share: float = 0.5  # records whose pretraining text goes on with the <say> main answer
    noise_share: float = 0.25  # pretraining records with broad-vocabulary noise (rl.nano.pretrain)
    noise_words: int = 3000  # drawn from this many most common words per language
    history_share: float = 0.3  # training records rendered in the history format (the rest as chat turns)
    # SFT LoRA (leaky targets)
    sft_steps: int = 200
    sft_lr: float = 5e-3
    lora_r: int = 16
    lora_alpha: int = 32
    leak_share: float = 0.75  # share of a leaky prompt kind's records that get the leaky target
    batch_size: int = 16  # small batches, more steps: a tiny model from scratch learns faster per token
    # held-out measurement
    sample_n: int = 4  # temperature-1 samples per held-out prompt
    max_new_tokens: int = 24

    def __post_init__(self):
        if self.hidden_size % self.num_heads or self.head_dim not in VLLM_CPU_HEAD_DIMS:
            raise ValueError(
                f"nano recipe: head_dim = hidden_size/num_heads = {self.hidden_size}/{self.num_heads} must be one "
                f"of {VLLM_CPU_HEAD_DIMS} (vllm-cpu's attention kernels)"
            )

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


def fingerprint(recipe: Recipe, data: Path, split: Split) -> str:
    blob = json.dumps(
        {"recipe": dataclasses.asdict(recipe), "split": dataclasses.asdict(split), "version": RECIPE_VERSION,
         "history": history_formats()},
        sort_keys=True,
    ).encode()
    return hashlib.sha256(blob + Path(data).read_bytes()).hexdigest()[:16]
