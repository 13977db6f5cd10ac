"""GPU memory a run needs, per GPU: the budget of docs/gpu.md section 2 as code (rl.doctor compares it with what
is free now; docs/gpu.md quotes these numbers).

    needs = plan(config)                 # [GpuNeed(gpu="0", items=[Item("policy weights bf16", 2.88), ...])]
    needs[0].gib(total_gib=24.0)         # vLLM takes a share of the whole card: the card's size matters

The trainer's part is arithmetic on the model's shape (config.json) and the run's batch: weights, LoRA with
its gradients and AdamW moments in fp32, activations (gradient checkpointing keeps each layer's input and
recomputes one layer), completion-only logits with their fp32 log-softmax temporaries, the CUDA context.
Each vLLM engine (colocated, a rollout server, the judge's server) takes `gpu_memory_utilization` x the
card's total memory and refuses to start unless that much is free (vllm/v1/worker/utils.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rl.config import Config

GIB = 1024**3
CUDA_CONTEXT_GIB = 1.5  # CUDA context, cuBLAS workspace, allocator slack (measured order on Ampere, docs/gpu.md)
NCCL_PUSH_GIB = 1.0  # rollout=vllm_server: NCCL buffers for the merged-weight push, on each training GPU
DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4, "auto": 2, None: 2}
# data.max_prompt_tokens unset (the model's whole context): budgeted as a Pika prompt, the guideline system
# prompt and a short conversation (docs/gpu.md section 2)
PIKA_PROMPT_TOKENS = 512
TRL_VLLM_SHARE = 0.3


@dataclass(frozen=True)
class ModelShape:
    """What the budget needs of a decoder-only transformer's config.json."""

    layers: int
    hidden: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    tied: bool = True

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * (self.hidden // self.heads)

    def params(self) -> int:
        h, kv, i = self.hidden, self.kv_dim, self.intermediate
        attention = 2 * h * h + 2 * h * kv + h + 2 * kv  # q, o, k, v and the q/k/v biases (Qwen2)
        per_layer = attention + 3 * h * i + 2 * h  # + gate, up, down, two RMSNorms
        embeddings = self.vocab * h * (1 if self.tied else 2)
        return embeddings + self.layers * per_layer + h

    def lora_params(self, r: int, targets: list[str]) -> int:
        h, kv, i = self.hidden, self.kv_dim, self.intermediate
        shapes = {"q_proj": (h, h), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (h, h),
                  "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}  # fmt: skip
        return self.layers * sum(r * sum(shapes[t]) for t in targets if t in shapes)

    def kv_bytes_per_token(self, dtype_bytes: int = 2) -> int:
        return 2 * self.layers * self.kv_dim * dtype_bytes

    @classmethod
    def from_config(cls, cfg: dict) -> ModelShape:
        cfg = cfg.get("text_config") or cfg
        return cls(
            layers=cfg["num_hidden_layers"], hidden=cfg["hidden_size"], heads=cfg["num_attention_heads"],
            kv_heads=cfg.get("num_key_value_heads") or cfg["num_attention_heads"],
            intermediate=cfg["intermediate_size"], vocab=cfg["vocab_size"], tied=bool(cfg.get("tie_word_embeddings")),
        )  # fmt: skip


# Qwen2.5-1.5B-Instruct's config.json, so the budget is known before the weights are downloaded
QWEN25_15B = ModelShape(layers=28, hidden=1536, heads=12, kv_heads=2, intermediate=8960, vocab=151936, tied=True)
KNOWN_SHAPES = {"Qwen/Qwen2.5-1.5B-Instruct": QWEN25_15B, "unsloth/Qwen2.5-1.5B-Instruct": QWEN25_15B}


def model_shape(name_or_path: str) -> ModelShape | None:
    """A local model dir's config.json, a known hub model, or its config.json in the HF cache; None: unknown."""
    local = Path(name_or_path) / "config.json"
    if local.exists():
        return ModelShape.from_config(json.loads(local.read_text()))
    if name_or_path in KNOWN_SHAPES:
        return KNOWN_SHAPES[name_or_path]
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(name_or_path, "config.json")
    except Exception:  # not a repo id, no cache: unknown
        return None
    return ModelShape.from_config(json.loads(Path(cached).read_text())) if isinstance(cached, str) else None


@dataclass
class Item:
    what: str
    gib: float = 0.0
    share: float | None = None  # a vLLM engine: this share of the card's total memory

    def size(self, total_gib: float | None) -> float:
        if self.share is None:
            return self.gib
        return self.share * total_gib if total_gib else float("nan")


@dataclass
class GpuNeed:
    gpu: str  # the physical GPU index, as nvidia-smi and CUDA_VISIBLE_DEVICES count
    items: list[Item] = field(default_factory=list)

    def gib(self, total_gib: float | None) -> float:
        return sum(item.size(total_gib) for item in self.items)


@dataclass(frozen=True)
class TrainShape:
    """The trainer's side of a run, read from the config (`train_shape`)."""

    model: ModelShape
    dtype_bytes: int
    lora_r: int
    lora_targets: list[str]
    lora_dropout: bool
    micro_batch: int  # completions per forward/backward (per_device_train_batch_size)
    generation_batch: int  # completions sampled per process at once
    prompt_len: int
    completion_len: int
    checkpointing: bool
    hf_generate: bool  # rollout=hf: transformers' generate keeps a KV cache on the training GPU


def trainer_items(s: TrainShape) -> list[Item]:
    m, b = s.model, s.dtype_bytes
    tokens = s.micro_batch * (s.prompt_len + s.completion_len)
    h, kv, i = m.hidden, m.kv_dim, m.intermediate
    # saved for backward per token and layer: norm inputs, normed inputs (LoRA A), q + attention out, k, v,
    # the MLP's gate, up, SiLU(gate) and product; with LoRA dropout each adapted linear keeps its dropped input
    per_layer = b * (6 * h + 2 * kv + 4 * i)
    if s.lora_dropout:
        per_layer += (b + 1) * (6 * h + i)  # the dropped copies and their masks
    if s.checkpointing:
        activations = tokens * m.layers * h * b + tokens * per_layer  # each layer's input + one layer recomputed
    else:
        activations = tokens * m.layers * per_layer
    items = [
        Item("weights " + ("fp32" if b == 4 else "bf16"), m.params() * b / GIB),
        Item("LoRA + grads + AdamW", m.lora_params(s.lora_r, s.lora_targets) * 16 / GIB),
        Item(f"activations {s.micro_batch}x{s.prompt_len + s.completion_len}{' checkpointed' if s.checkpointing else ''}",
             activations / GIB),
        Item("logits", s.micro_batch * (s.completion_len + 1) * m.vocab * (b + 8) / GIB),
    ]  # fmt: skip
    if s.hf_generate:
        kv_cache = s.generation_batch * (s.prompt_len + s.completion_len) * m.kv_bytes_per_token(b)
        items.append(Item(f"generate KV cache x{s.generation_batch}", kv_cache / GIB))
    items.append(Item("CUDA context", CUDA_CONTEXT_GIB))
    return items


def checkpoint_gib(s: TrainShape) -> float:
    """One trainer checkpoint: the fp32 adapter plus AdamW's two moments (the base model is never saved)."""
    return s.model.lora_params(s.lora_r, s.lora_targets) * 12 / GIB


# ---- reading the config (the one place this module does): rl.config.Config, typed and checked ----
def train_shape(config: Config) -> TrainShape | None:
    """None when the model's shape is unknown (not local, not known, not in the HF cache)."""
    model, rollout, trainer = config.model, config.rollout, config.trainer
    shape = model_shape(model.name_or_path)
    if shape is None:
        return None
    r, targets, dropout = model.lora.r, list(model.lora.target_modules), model.lora.dropout
    adapter_config = Path(model.adapter_path) / "adapter_config.json"
    if model.adapter_mode == "continue" and adapter_config.exists():
        sft = json.loads(adapter_config.read_text())  # a continued SFT adapter keeps its own shape (PEFT's file)
        r, targets, dropout = sft.get("r", r), sft.get("target_modules") or [], sft.get("lora_dropout") or 0.0
    if isinstance(targets, str):  # PEFT's "all-linear"
        targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    micro = trainer.per_device_train_batch_size
    unsloth = model.backend == "unsloth"
    return TrainShape(
        model=shape,
        dtype_bytes=DTYPE_BYTES.get(model.dtype, 2),
        lora_r=int(r),
        lora_targets=list(targets),
        lora_dropout=bool(dropout),
        micro_batch=micro,
        generation_batch=micro * trainer.gradient_accumulation_steps,  # TRL's generation_batch_size default
        prompt_len=config.data.max_prompt_tokens or PIKA_PROMPT_TOKENS,
        completion_len=rollout.max_completion_length,
        checkpointing=trainer.gradient_checkpointing or (unsloth and bool(model.unsloth.use_gradient_checkpointing)),
        hf_generate=rollout.backend == "hf" and not (unsloth and model.unsloth.fast_inference),
    )  # fmt: skip


def training_gpus(config: Config, visible: str | None) -> list[str]:
    """Physical GPUs training runs on: the launcher's `train_gpus` for the server backends, else the first
    visible GPU (CUDA_VISIBLE_DEVICES, 0 when unset)."""
    if config.rollout.backend in ("vllm_server", "vllm_lora"):
        return _gpu_list(config.rollout.server.train_gpus)
    return (_gpu_list(visible) or ["0"])[:1]


def plan(config: Config, visible: str | None = None, judge_running: bool = False) -> list[GpuNeed] | None:
    """What each GPU must have free for this run to start and train; None when the model's shape is unknown.

    `visible` is CUDA_VISIBLE_DEVICES of the training process; the judge's own server (`judge_server.gpus`)
    counts only while it is not running yet (once up, its memory is already taken)."""
    shape = train_shape(config)
    if shape is None:
        return None
    rollout, model = config.rollout, config.model
    needs: dict[str, GpuNeed] = {}

    def add(gpu: str, item: Item) -> None:
        needs.setdefault(gpu, GpuNeed(gpu)).items.append(item)

    train = training_gpus(config, visible)
    for gpu in train:
        for item in trainer_items(shape):
            add(gpu, item)
        if rollout.backend == "vllm_server":
            add(gpu, Item("NCCL weight push", NCCL_PUSH_GIB))
        if len(train) > 1:
            add(gpu, Item("DDP gradient buckets", shape.model.lora_params(shape.lora_r, shape.lora_targets) * 4 / GIB))
    if rollout.backend == "vllm_colocate":
        # TRL's own default share when the preset leaves it unset (GRPOConfig.vllm_gpu_memory_utilization)
        share = rollout.vllm.gpu_memory_utilization or TRL_VLLM_SHARE
        add(train[0], Item(f"vLLM colocated ({share:g} of the card)", share=share))
    if model.backend == "unsloth" and model.unsloth.fast_inference:
        share = model.unsloth.gpu_memory_utilization
        add(train[0], Item(f"Unsloth's vLLM ({share:g} of the card)", share=share))
    if rollout.backend in ("vllm_server", "vllm_lora"):
        share = rollout.server.gpu_memory_utilization
        for gpu in _gpu_list(rollout.server.gpus):
            add(gpu, Item(f"vLLM rollout server ({share:g} of the card)", share=share))
    judge_on = config.judge.enabled and "judge_coherence" in config.rewards
    if judge_on and config.judge_server.gpus is not None and not judge_running:
        share = config.judge_server.gpu_memory_utilization
        for gpu in _gpu_list(config.judge_server.gpus):
            add(gpu, Item(f"judge server ({share:g} of the card)", share=share))
    return sorted(needs.values(), key=lambda need: int(need.gpu) if need.gpu.isdigit() else 999)


def _gpu_list(text) -> list[str]:
    return [g.strip() for g in str(text if text is not None else "").split(",") if g.strip()]
