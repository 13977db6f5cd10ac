"""The value rules of the typed config (rl/config.py), checked right after composing, before any data,
model or server is touched: `check(config)` lists every failure, one line each (key, value, rule). Also
the walks over the schema that name a typo'd key's nearest real key (`unknown_keys`, `schema_keys`).
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

from rl.config import (
    ADAPTER_MODES,
    DTYPES,
    LOSS_TYPES,
    LR_SCHEDULERS,
    MODEL_BACKENDS,
    PROMPT_FORMATS,
    ROLLOUT_BACKENDS,
    SCALE_REWARDS,
    SERVER_COMMANDS,
    TOO_LONG,
    VLLM_COLOCATE_KEYS,
    VLLM_SERVER_KEYS,
    Config,
    ConfigError,
    EvaluateCli,
    LaunchCli,
    PublishCli,
    ScoreCli,
    did_you_mean,
)


def check(config: Config, require_paths: bool = True) -> None:
    """Every value rule; raises ConfigError listing each failure on its own line (key, value, rule)."""
    problems = list(_problems(config, require_paths))
    if problems:
        raise ConfigError("\n".join(problems))


def _problems(c: Config, require_paths: bool):
    def rule(key: str, value, ok: bool, why: str):
        return None if ok else f"{key}: {why}, got {value!r}"

    def choice(key: str, value, options):
        return rule(key, value, value in options, f"expected one of {', '.join(options)}")

    def positive(key: str, value):
        return rule(key, value, _finite(value) and value > 0, "must be > 0")

    def at_least(key: str, value, low):
        return rule(key, value, value is not None and value >= low, f"must be >= {low}")

    m, d, r, t, e = c.model, c.data, c.rollout, c.trainer, c.evaluate
    checks = [
        rule("cpu_threads", c.cpu_threads, c.cpu_threads is None or c.cpu_threads >= 1, "must be >= 1 or null"),
        # model
        choice("model.backend", m.backend, MODEL_BACKENDS),
        choice("model.adapter_mode", m.adapter_mode, ADAPTER_MODES),
        rule("model.dtype", m.dtype, m.dtype is None or m.dtype in DTYPES, f"expected one of {', '.join(DTYPES)}"),
        at_least("model.lora.r", m.lora.r, 1),
        positive("model.lora.alpha", m.lora.alpha),
        rule("model.lora.dropout", m.lora.dropout, 0 <= m.lora.dropout < 1, "must be in [0, 1)"),
        rule("model.lora.target_modules", m.lora.target_modules, bool(m.lora.target_modules), "must not be empty"),
        # data
        choice("data.prompt_format", d.prompt_format, PROMPT_FORMATS),
        _eval_size_problem(d.eval_size, e.enabled),
        _history_problem(d.history),
        at_least("data.split_seed", d.split_seed, 0),
        rule("data.max_prompt_tokens", d.max_prompt_tokens, d.max_prompt_tokens is None or d.max_prompt_tokens >= 1,
             "must be >= 1 or null"),
        choice("data.too_long", d.too_long, TOO_LONG),
        # rollout
        choice("rollout.backend", r.backend, ROLLOUT_BACKENDS),
        at_least("rollout.num_generations", r.num_generations, 2),
        at_least("rollout.max_completion_length", r.max_completion_length, 1),
        positive("rollout.temperature", r.temperature),
        rule("rollout.top_p", r.top_p, _finite(r.top_p) and 0 < r.top_p <= 1, "must be in (0, 1]"),
        at_least("rollout.top_k", r.top_k, 0),
        choice("rollout.server.command", r.server.command, SERVER_COMMANDS),
        # trainer
        at_least("trainer.max_steps", t.max_steps, 1),
        positive("trainer.learning_rate", t.learning_rate),
        choice("trainer.lr_scheduler_type", t.lr_scheduler_type, LR_SCHEDULERS),
        at_least("trainer.warmup_steps", t.warmup_steps, 0),
        at_least("trainer.per_device_train_batch_size", t.per_device_train_batch_size, 1),
        at_least("trainer.gradient_accumulation_steps", t.gradient_accumulation_steps, 1),
        at_least("trainer.num_iterations", t.num_iterations, 1),
        rule("trainer.beta", t.beta, _finite(t.beta) and t.beta >= 0, "must be >= 0"),
        positive("trainer.epsilon", t.epsilon),
        choice("trainer.loss_type", t.loss_type, LOSS_TYPES),
        choice("trainer.scale_rewards", t.scale_rewards, SCALE_REWARDS),
        positive("trainer.max_grad_norm", t.max_grad_norm),
        at_least("trainer.logging_steps", t.logging_steps, 1),
        at_least("trainer.save_steps", t.save_steps, 1),
        rule("trainer.save_total_limit", t.save_total_limit, t.save_total_limit is None or t.save_total_limit >= 1,
             "must be >= 1 or null"),
        # evaluation, logging
        at_least("evaluate.n", e.n, 1),
        at_least("evaluate.batch_size", e.batch_size, 1),
        at_least("evaluate.max_new_tokens", e.max_new_tokens, 1),
        choice("logging.backend", c.logging.backend, ("wandb", "none")),
    ]
    yield from (p for p in checks if p)

    # a GRPO step's completions must split into whole groups (TRL's generation batch, per process)
    completions = t.per_device_train_batch_size * t.gradient_accumulation_steps * _world_size()
    if r.num_generations >= 2 and t.per_device_train_batch_size >= 1 and completions % r.num_generations:
        yield (f"rollout.num_generations: {r.num_generations} does not divide the {completions} completions per "
               f"step (trainer.per_device_train_batch_size {t.per_device_train_batch_size} x "
               f"gradient_accumulation_steps {t.gradient_accumulation_steps} x {_world_size()} processes)")
    vllm_keys = {"vllm_colocate": VLLM_COLOCATE_KEYS, "vllm_server": VLLM_SERVER_KEYS}.get(r.backend, ())
    for key in VLLM_COLOCATE_KEYS + VLLM_SERVER_KEYS:
        value = getattr(r.vllm, key)
        if value is not None and key not in vllm_keys:
            yield f"rollout.vllm.{key}: does not apply to rollout.backend={r.backend}, got {value!r}"
    if r.backend == "vllm_lora" and not r.base_url:
        yield "rollout.base_url: required for rollout=vllm_lora (e.g. http://127.0.0.1:8000), got None"

    if type(c) in (Config, LaunchCli) and d.eval_size == "all":
        yield ("data.eval_size: 'all' holds out every record and leaves nothing to train on, got 'all' "
               "(use it with rl.evaluate: python -m rl.evaluate ... data.path=FILE data.eval_size=all)")
    if not isinstance(c, PublishCli):  # a publish reads serving.* only
        yield from _reward_problems(c)
    for name, bound in c.serving.gate.items():
        if bound.min is None and bound.max is None:
            yield f"serving.gate.{name}: expected {{min: X}} and/or {{max: Y}}, got {{}}"
    if c.judge.enabled:
        try:
            c.judge.checked()
        except ValueError as err:
            yield str(err)

    if not require_paths or (isinstance(c, LaunchCli) and c.launch.dry_run):  # a dry run reads no files
        return
    if isinstance(c, ScoreCli):
        if not Path(c.input).is_file():
            yield f"input: no such file, got {c.input!r}"
        elif Path(c.output).resolve() == Path(c.input).resolve():
            yield f"output: is the input file, got {c.output!r} (scoring writes a new file; the input stays as it is)"
    elif not isinstance(c, PublishCli):
        if not Path(d.path).is_file():
            yield f"data.path: no such file, got {d.path!r}"
        # the nano model's files are built on first use; the real job's adapter must be there
        if not m.build_if_missing and not Path(m.adapter_path).is_dir():
            yield f"model.adapter_path: no such folder, got {m.adapter_path!r}"
    if isinstance(c, EvaluateCli) and not Path(c.adapter).is_dir():
        yield f"adapter: no such folder, got {c.adapter!r}"


def _reward_problems(c: Config):
    from rewards.judge.settings import settings_from
    from rewards.registry import REGISTRY, get_reward

    if not c.rewards:
        yield "rewards: no reward functions configured, got {} (use an experiment, e.g. +exp=english_only)"
    for name, entry in c.rewards.items():
        if name not in REGISTRY:
            yield f"rewards.{name}: unknown reward{did_you_mean(name, REGISTRY)}; known: {', '.join(sorted(REGISTRY))}"
            continue
        if not (_finite(entry.weight) and entry.weight >= 0):
            yield f"rewards.{name}.weight: must be >= 0, got {entry.weight!r}"
        try:  # the reward's own check of its params (cheap: no model, no server)
            if name == "judge_coherence":
                if c.judge.enabled:
                    settings_from(c.judge, **entry.params)
            else:
                get_reward(name, entry.params)
        except ValueError as err:
            yield f"rewards.{name}.params: {err}" if not str(err).startswith("rewards.") else str(err)


def _eval_size_problem(eval_size, evaluating: bool) -> str | None:
    from rl.data import EVAL_ALL, parse_eval_size

    try:
        value = parse_eval_size(eval_size)
    except ValueError as err:
        return str(err)
    if evaluating and value != EVAL_ALL and value < 1:
        return f"data.eval_size: must be >= 1 (or 'all') while evaluate.enabled, got {eval_size!r}"
    return None


def _history_problem(history: dict) -> str | None:
    from rl.data import history_format

    try:
        history_format(history or None)
    except ValueError as err:
        return str(err)
    return None


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _world_size() -> int:
    # accelerate launch (rl.launch with several training GPUs) sets it for each process
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def unknown_keys(cfg, schema: type = Config) -> list[str]:
    """Full keys of a composed DictConfig that no dataclass has: what `+key=value` forced in."""
    from omegaconf import DictConfig

    found = []

    def walk(node, prefix: str):
        if not isinstance(node, DictConfig):
            return
        cls = node._metadata.object_type
        names = set(cls.__dataclass_fields__) if dataclasses.is_dataclass(cls) else None
        for key in node.keys():
            full = f"{prefix}{key}"
            if names is not None and key not in names:
                found.append(full)
            elif names is not None:
                walk(node._get_node(key), f"{full}.")

    walk(cfg, "")
    return found


def schema_keys(path: str, schema: type = Config) -> list[str] | None:
    """The keys the schema allows under `path` ("" for the top); None where names are free."""
    node: Any = schema
    parts = [p for p in path.split(".") if p]
    while parts:
        if not dataclasses.is_dataclass(node) or parts[0] not in node.__dataclass_fields__:
            return None
        entries = node.__dataclass_fields__[parts[0]].metadata.get("entries")
        node = _field_types(node)[parts.pop(0)]
        if entries is not None:  # rewards, serving.gate: a free name, then an entry
            if not parts:
                return None
            parts.pop(0)
            node = entries
    return list(node.__dataclass_fields__) if dataclasses.is_dataclass(node) else None


def _field_types(cls) -> dict[str, Any]:
    import typing

    return typing.get_type_hints(cls)
