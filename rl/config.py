"""The typed config: one dataclass per config group, the schema Hydra composes the YAML files into.
Long because: the schema is the config's one view, every group and default with its reason, read top to
bottom (as open-r1's configs.py); split by group, that view would scatter across files.

conf/config.yaml starts its defaults list with `schema: train` (the `Config` dataclass below, stored in
Hydra's ConfigStore), so a value of the wrong type or a key no dataclass has fails while composing; the
value rules (rl/config_rules.py: `check`) run right after composing, before any data, model or server is
touched. Each entry point turns the composed DictConfig into these objects once (`rl.entry`); everything
below it takes them.

Adding a key is one change: a field with its default (and a comment saying why) in the dataclass of its
group. Put it in the group's YAML too when users should see it there.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore

from common.errors import UserError
from rewards.judge.settings import JudgeSettings


class ConfigError(UserError):
    """A config value that breaks a rule; one line per failure: key, value, rule."""


# ---------------------------------------------------------------- how a config problem is worded


def value_problem(text: str) -> str:
    """OmegaConf's "could not be converted" message -> `expected float, got 'abc'`."""
    import re

    converted = re.search(r"Value '(.*)' of type '\w+' could not be converted to (\w+)", text)
    if converted:
        return f"expected {converted.group(2).lower()}, got {converted.group(1)!r}"
    boolean = re.search(r"Value '(.*)' is not a valid bool", text)
    if boolean:
        return f"expected true or false, got {boolean.group(1)!r}"
    invalid = re.search(r"Invalid type assigned: (\w+) is not a subclass of (\w+)", text)
    if invalid:
        return f"expected {invalid.group(2)}, got a {invalid.group(1)}"
    return next((line.strip() for line in text.splitlines() if line.strip()), "invalid value")


def did_you_mean(name: str, known) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# ---------------------------------------------------------------- model


@dataclass
class LoraConfig:
    """The new LoRA of `adapter_mode=fresh` (a continued SFT adapter keeps its own shape)."""

    r: int = 16
    alpha: float = 32
    dropout: float = 0.05
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )


@dataclass
class UnslothConfig:
    """`model.backend=unsloth` settings, sized for Qwen2.5-1.5B on a 24 GB card (docs/gpu.md)."""

    max_seq_length: int = 1024  # prompt + completion
    load_in_4bit: bool = False  # 1.5B in bf16 is 3.1 GB: no need to quantize on a 3090
    fast_inference: bool = False  # Unsloth's in-process vLLM for rollouts
    max_lora_rank: int = 64  # vLLM's LoRA slot size with fast_inference; >= the SFT adapter's r
    gpu_memory_utilization: float = 0.35  # vLLM's share of the card with fast_inference
    use_gradient_checkpointing: str = "unsloth"
    random_state: int = 3407


@dataclass
class ModelConfig:
    name_or_path: str = "Qwen/Qwen2.5-1.5B-Instruct"
    adapter_path: str = "checkpoints/sft"
    adapter_mode: str = "continue"  # continue | fresh
    backend: str = "transformers"  # transformers | unsloth
    dtype: str | None = "bfloat16"  # a torch dtype name, or auto
    base_aliases: list[str] = field(default_factory=list)
    serving_base_model: str | None = None
    build_if_missing: bool = False  # the nano model: built by the project on first use
    lora: LoraConfig = field(default_factory=LoraConfig)
    unsloth: UnslothConfig = field(default_factory=UnslothConfig)


MODEL_BACKENDS = ("transformers", "unsloth")
ADAPTER_MODES = ("continue", "fresh")
DTYPES = ("auto", "float32", "bfloat16", "float16")

# ---------------------------------------------------------------- data


@dataclass
class DataConfig:
    path: str = "data/pika_sft.json"
    prompt_format: str = "messages"  # messages | history
    system_prompt: str | None = None  # replaces the conversation's system turn when set
    eval_size: Any = 128  # held-out prompts (a whole number), or "all": the whole file (nothing to train on)
    split_seed: int = 0
    # The history format's rendering (conf/history/*.yaml, the `history` group): header, robot, child, silent,
    # instruction, turn_break, turn_gap (common.conversation.HistoryFormat)
    history: dict[str, Any] = field(default_factory=dict)
    # Prompt length bound in the model's own tokens; null: the model's context minus the completion length.
    # Longer conversations lose their oldest turns (system prompt, last robot turn and child reply stay).
    max_prompt_tokens: int | None = None
    too_long: str = "skip"  # a prompt still too long after trimming: skip (counted) | refuse (the run stops)


PROMPT_FORMATS = ("messages", "history")
TOO_LONG = ("skip", "refuse")

# ---------------------------------------------------------------- rollout


@dataclass
class VllmConfig:
    """`rollout.vllm.*` -> GRPOConfig `vllm_*` (TRL 1.15/1.16); null: not passed (TRL's default)."""

    # colocate
    gpu_memory_utilization: float | None = None
    max_model_length: int | None = None  # null: data.max_prompt_tokens + max_completion_length (or the model's)
    enable_sleep_mode: bool | None = None
    tensor_parallel_size: int | None = None
    # server
    server_host: str | None = None
    server_port: int | None = None
    server_base_url: str | None = None
    server_timeout: float | None = None
    group_port: int | None = None
    # both
    model_impl: str | None = None
    importance_sampling_correction: bool | None = None
    importance_sampling_mode: str | None = None


VLLM_COLOCATE_KEYS = ("gpu_memory_utilization", "max_model_length", "enable_sleep_mode", "tensor_parallel_size")
VLLM_SERVER_KEYS = ("server_host", "server_port", "server_base_url", "server_timeout", "group_port")


@dataclass
class VllmLoraConfig:
    """rollout=vllm_lora: a plain vLLM server serving the policy's LoRA by name (rl/rollout_vllm_lora.py)."""

    adapter_name: str = "policy"  # the name completions are requested by
    staging_dir: str = "vllm_lora_staging"  # adapters as the trainer writes them (relative: inside the run dir)
    server_staging_dir: str | None = None  # the same dir as the server sees it, on another machine
    timeout_s: float = 120.0  # one HTTP call
    retries: int = 3  # extra attempts per call, with backoff
    backoff_s: float = 1.0
    keep_versions: int = 2  # versions kept in the staging dir (the server may still read the previous one)
    api_key_env: str | None = None  # env var with the server's API key, if it has one


@dataclass
class ServerConfig:
    """The vLLM server `rl.launch` starts (and stops) for rollout=vllm_server / vllm_lora."""

    command: str = "vllm_openai"  # trl_vllm_serve | vllm_openai
    gpus: str = "0"  # CUDA_VISIBLE_DEVICES of the server
    train_gpus: str = "1"  # CUDA_VISIBLE_DEVICES of training (one process per GPU)
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.85
    max_model_len: int | None = None  # null: data.max_prompt_tokens + max_completion_length (or the model's)
    dtype: str = "bfloat16"
    enforce_eager: bool = False
    max_lora_rank: int = 64  # vllm_openai: >= the adapter's r
    max_loras: int = 2  # vllm_openai: above the adapters in use
    python: str | None = None  # python that has vLLM; null: this one
    health_timeout_s: float = 900


@dataclass
class RolloutConfig:
    backend: str = "hf"  # hf | vllm_colocate | vllm_server | vllm_lora
    num_generations: int = 8  # GRPO group size
    max_completion_length: int = 24  # a fast response is 1-6 words; 24 tokens leaves room to learn to stop
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0: off
    base_url: str | None = None  # rollout=vllm_lora: the server, http://HOST:PORT
    vllm: VllmConfig = field(default_factory=VllmConfig)
    vllm_lora: VllmLoraConfig = field(default_factory=VllmLoraConfig)
    server: ServerConfig = field(default_factory=ServerConfig)


ROLLOUT_BACKENDS = ("hf", "vllm_colocate", "vllm_server", "vllm_lora")
SERVER_COMMANDS = ("trl_vllm_serve", "vllm_openai")

# ---------------------------------------------------------------- trainer


def _ours(default):
    """A trainer key this project reads itself: not passed to TRL's GRPOConfig."""
    return field(default=default, metadata={"grpo": False})


@dataclass
class TrainerConfig:
    """GRPO settings; every field not marked `_ours` goes to TRL's GRPOConfig under the same name."""

    max_steps: int = 300
    learning_rate: float = 5.0e-6
    lr_scheduler_type: str = "constant_with_warmup"
    warmup_steps: int = 10
    per_device_train_batch_size: int = 16  # completions per device per step; a multiple of num_generations
    gradient_accumulation_steps: int = 1
    num_iterations: int = 1  # PPO epochs per generation batch
    beta: float = 0.0  # no reference model: LoRA stays near the SFT start on its own
    epsilon: float = 0.2
    loss_type: str = "dapo"  # token-level normalisation, no length bias
    scale_rewards: str = "group"
    max_grad_norm: float = 1.0
    logging_steps: int = 1
    save_steps: int = 25  # a crash or Ctrl-C loses at most this many steps
    save_total_limit: int | None = 3
    gradient_checkpointing: bool = False
    # score each group's prompt once (rl/shared_prompt.py): same log-probs and gradients as TRL's copies
    share_prompt: bool = _ours(True)
    log_completions: bool = True  # TRL's completions table in W&B
    num_completions_to_print: int = 0

    def grpo_args(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.metadata.get("grpo", True)}


LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo")
SCALE_REWARDS = ("group", "batch", "none")
LR_SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
                 "inverse_sqrt", "reduce_lr_on_plateau", "cosine_with_min_lr", "cosine_warmup_with_min_lr",
                 "warmup_stable_decay")  # fmt: skip

# ---------------------------------------------------------------- rewards, evaluation, logging, publishing


@dataclass
class RewardEntry:
    """One entry of `rewards:` (name -> entry). Gates multiply every non-gate reward (rewards/compose.py)."""

    weight: float = 1.0
    gate: bool = False
    params: dict[str, Any] = field(default_factory=dict)


def _entries(raw: dict, cls: type, key: str) -> dict:
    """A dict of free names -> `cls` entries. Typed as dict[str, Any] in the schema so that an override can
    add a name (`+rewards.judge_coherence.weight=1`); each entry is checked against `cls` here."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    out = {}
    for name, entry in (raw or {}).items():
        if isinstance(entry, cls):
            out[name] = entry
            continue
        if not isinstance(entry, dict):
            raise ConfigError(f"{key}.{name}: expected a mapping of {', '.join(cls.__dataclass_fields__)}, got {entry!r}")
        unknown = [k for k in entry if k not in cls.__dataclass_fields__]
        if unknown:
            raise ConfigError(f"{key}.{name}.{unknown[0]}: unknown key{did_you_mean(unknown[0], cls.__dataclass_fields__)}"
                              f"; an entry has: {', '.join(cls.__dataclass_fields__)}")
        try:
            out[name] = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(cls), entry))
        except OmegaConfBaseException as err:
            raise ConfigError(f"{key}.{name}.{getattr(err, 'full_key', '') or '?'}: {value_problem(str(err))}") from None
    return out


@dataclass
class EvaluateConfig:
    enabled: bool = True
    n: int = 128  # held-out prompts scored before and after training (greedy)
    batch_size: int = 32
    max_new_tokens: int = 24  # conf/config.yaml: ${rollout.max_completion_length}


@dataclass
class LoggingConfig:
    backend: str = "wandb"  # wandb | none; online when WANDB_API_KEY is set, offline otherwise
    project: str | None = "pika-fastresponse-grpo"
    entity: str | None = None
    group: str | None = None
    run_name: str | None = None
    tags: list[str] = field(default_factory=list)
    init_timeout_s: float = 30  # seconds an online start may take before the run falls back to offline W&B


@dataclass
class PublishConfig:
    enabled: bool = False  # rl.train publishes at the end of a run (gated on the evaluation)


@dataclass
class Bound:
    min: float | None = None
    max: float | None = None


@dataclass
class JudgeServerConfig:
    """Where the judge's own vLLM server runs when it is on this box (conf/judge/vllm.yaml): rl.doctor counts
    its memory on that GPU until the judge answers, and prints the command that starts it."""

    gpus: str | None = None  # CUDA_VISIBLE_DEVICES of the judge's server; null: elsewhere, or not planned
    gpu_memory_utilization: float = 0.90
    quantization: str | None = "awq_marlin"
    dtype: str = "float16"
    max_model_len: int = 4096
    max_num_seqs: int = 64


@dataclass
class ServingConfig:
    dir: str = "serving"  # = VLLM_LORA_RESOLVER_CACHE_DIR of the serving vLLM
    name: str = "fastresponse"
    base_model: str | None = None  # exactly the serving vLLM's --model argument
    reload_url: str | None = None
    server_dir: str | None = None
    force: bool = False
    # where rl.evaluate writes its reports: a publish looks there for the evaluation of exactly this adapter
    evaluations: list[str] = field(default_factory=lambda: ["checkpoints/eval"])
    # Pika's bar for a fast-response adapter, checked on eval.json's "after" metrics (conf/publish/default.yaml);
    # metric -> Bound
    gate: dict[str, Any] = field(default_factory=dict, metadata={"entries": Bound})

    def __post_init__(self):
        self.gate = _entries(self.gate, Bound, "serving.gate")


# ---------------------------------------------------------------- the whole config, and each CLI's


@dataclass
class Config:
    """What `python -m rl.train` composes (conf/config.yaml)."""

    exp_name: str = "default"
    seed: int = 42
    cpu_threads: int | None = None  # torch threads; null: torch's default
    resume: bool = False
    rewards: dict[str, Any] = field(default_factory=dict, metadata={"entries": RewardEntry})  # name -> RewardEntry
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    judge: JudgeSettings = field(default_factory=JudgeSettings)
    judge_server: JudgeServerConfig = field(default_factory=JudgeServerConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)
    serving: ServingConfig = field(default_factory=ServingConfig)

    def __post_init__(self):
        self.rewards = _entries(self.rewards, RewardEntry, "rewards")

    def reward_specs(self) -> list:
        """The configured rewards as rewards.compose.RewardSpec (judge_coherence included even when off)."""
        from rewards.compose import parse_specs

        return parse_specs({name: dataclasses.asdict(entry) for name, entry in self.rewards.items()})


@dataclass
class EvaluateCli(Config):
    """`python -m rl.evaluate` (conf/evaluate_cli.yaml)."""

    adapter: str = "???"  # a run's adapter/, a checkpoint-N/, or a published entry such as serving/fastresponse
    compare_sft: bool = True  # also evaluate the SFT adapter (model.adapter_path): a before/after report


@dataclass
class PublishCli(Config):
    """`python -m rl.publish` (conf/publish_cli.yaml)."""

    adapter: str | None = None  # the adapter folder; required to publish, unused by rollback
    eval: str | None = None  # eval.json to gate on; default: the one in the adapter folder or its parent


@dataclass
class LaunchSettings:
    dry_run: bool = False  # print the server and training commands, start nothing
    host: str = "127.0.0.1"  # interface the server listens on


@dataclass
class LaunchCli(Config):
    """`python -m rl.launch` (conf/launch.yaml)."""

    launch: LaunchSettings = field(default_factory=LaunchSettings)


@dataclass
class ScoreCli(Config):
    """`python -m rewards.score` (conf/score.yaml)."""

    input: str = "???"
    output: str = "???"
    field: str | None = None  # the text to score; null: `completion` when the row has it, else the target
    batch_size: int = 256  # rows per reward call


SCHEMAS = {"train": Config, "evaluate": EvaluateCli, "publish": PublishCli, "launch": LaunchCli, "score": ScoreCli}


def register() -> None:
    """Store the schemas as the `schema` group (conf/config.yaml: `- schema: train`)."""
    store = ConfigStore.instance()
    for name, node in SCHEMAS.items():
        store.store(group="schema", name=name, node=node, package="_global_")


register()
