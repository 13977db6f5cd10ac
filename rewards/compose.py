"""Turn the experiment's `rewards:` config into TRL's `reward_funcs` and `reward_weights`.

TRL sums `weight * reward` per completion (NaN, i.e. `None`, counts as 0). A plain weighted sum lets a
Vietnamese reply of the right length outscore a compliant one that is too long, so rewards marked
`gate: true` also multiply every non-gate reward:

    total = sum(w_g * g) + prod(g) * sum(w_r * r)

With gates scoring 0/1 and non-negative weights, a reply failing any gate scores at most
sum(w_g) - w_failed, and a reply passing all of them scores at least sum(w_g): it can never win.
The same `combine` gives the total for `rl.score` and the evaluation, so they match training.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rewards.registry import REGISTRY, RewardConfigError, get_reward

RewardFunc = Callable[..., list]


@dataclass(frozen=True)
class RewardSpec:
    name: str
    weight: float = 1.0
    gate: bool = False
    params: dict[str, Any] = field(default_factory=dict)


def parse_specs(rewards_cfg: Mapping[str, Any]) -> list[RewardSpec]:
    """Plain dict from the config (`name -> {weight, gate, params}`) -> validated specs."""
    specs = []
    for name, entry in (rewards_cfg or {}).items():
        if name not in REGISTRY:
            raise RewardConfigError(f"rewards.{name}: unknown reward; known: {', '.join(sorted(REGISTRY))}")
        entry = dict(entry or {})
        unknown = set(entry) - {"weight", "gate", "params"}
        if unknown:
            raise RewardConfigError(f"rewards.{name}: unknown keys {sorted(unknown)} (expected weight, gate, params)")
        weight = float(entry.get("weight", 1.0))
        if weight < 0 or math.isnan(weight):
            raise RewardConfigError(f"rewards.{name}.weight: must be >= 0, got {weight}")
        specs.append(RewardSpec(name, weight, bool(entry.get("gate", False)), dict(entry.get("params") or {})))
    if not specs:
        raise RewardConfigError("rewards: no reward functions configured (use an experiment, e.g. +exp=english_only)")
    return specs


def combine(scores: Mapping[str, float | None], specs: list[RewardSpec]) -> float:
    """The total reward of one completion from its raw component scores (None counts as 0, as in TRL)."""
    gate = 1.0
    for spec in specs:
        if spec.gate:
            gate *= _value(scores.get(spec.name))
    total = 0.0
    for spec in specs:
        value = _value(scores.get(spec.name))
        total += spec.weight * (value if spec.gate else gate * value)
    return total


def _value(score: float | None) -> float:
    return 0.0 if score is None or math.isnan(score) else float(score)


class Gated:
    """A non-gate reward multiplied by the product of the gate rewards, for TRL.

    Keeps the inner reward's `__name__`, so W&B shows `rewards/<name>/mean` (the gated value TRL sums);
    the raw mean is logged as `rewards_raw/<name>` through TRL's `log_metric`.
    """

    def __init__(self, inner: RewardFunc, gates: list[RewardFunc]):
        self.inner = inner
        self.gates = gates
        self.__name__ = inner.__name__

    def __call__(self, prompts, completions, **kwargs):
        raw = self.inner(prompts=prompts, completions=completions, **kwargs)
        return self._apply(raw, prompts, completions, kwargs)

    def _apply(self, raw: list, prompts, completions, kwargs: dict) -> list:
        gate = [1.0] * len(completions)
        for gate_func in self.gates:
            for i, g in enumerate(gate_func(prompts=prompts, completions=completions, **kwargs)):
                gate[i] *= _value(g)
        known = [r for r in raw if r is not None and not math.isnan(r)]
        if kwargs.get("log_metric") is not None and known:
            kwargs["log_metric"](f"rewards_raw/{self.__name__}", sum(known) / len(known))
        return [None if r is None or math.isnan(r) else r * g for r, g in zip(raw, gate)]


class GatedAsync(Gated):
    """`Gated` for an async reward (the judge): TRL awaits it alongside the other rewards."""

    async def __call__(self, prompts, completions, **kwargs):
        raw = await self.inner(prompts=prompts, completions=completions, **kwargs)
        return self._apply(raw, prompts, completions, kwargs)


def gated(inner: RewardFunc, gates: list[RewardFunc]) -> Gated:
    return GatedAsync(inner, gates) if is_async(inner) else Gated(inner, gates)


def is_async(func: RewardFunc) -> bool:
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(getattr(func, "__call__", None))


def without_disabled_judge(specs: list[RewardSpec], judge):
    """(specs, names dropped): `judge_coherence` needs a configured judge (`judge=none` turns it off).
    `judge`: the judge settings (JudgeSettings or a mapping), or None."""
    enabled = judge.get("enabled", False) if isinstance(judge, Mapping) else getattr(judge, "enabled", False)
    if enabled:
        return specs, []
    dropped = [s.name for s in specs if s.name == "judge_coherence"]
    return [s for s in specs if s.name not in dropped], dropped


def score_batch(funcs: Mapping[str, RewardFunc], prompts: list, completions: list, columns: Mapping[str, list]):
    """{name: raw scores} for one batch, async rewards awaited; NaN and None both become None."""
    scores = {}
    for name, func in funcs.items():
        result = func(prompts=prompts, completions=completions, **columns)
        if is_async(func):
            result = asyncio.run(result)
        scores[name] = [None if v is None or math.isnan(v) else float(v) for v in result]
    return scores


def build_reward_funcs(specs: list[RewardSpec], **factory_kwargs) -> tuple[list[RewardFunc], list[float]]:
    """Specs -> (reward_funcs, reward_weights) for GRPOTrainer / GRPOConfig.

    `factory_kwargs` go to rewards that need outside state (the judge's client settings)."""
    raw = build_raw_funcs(specs, **factory_kwargs)
    gates = [raw[s.name] for s in specs if s.gate]
    funcs = [raw[s.name] if s.gate or not gates else gated(raw[s.name], gates) for s in specs]
    return funcs, [s.weight for s in specs]


def build_raw_funcs(specs: list[RewardSpec], **factory_kwargs) -> dict[str, RewardFunc]:
    """Specs -> {name: ungated reward function}: what `rl.score` and the evaluation report."""
    return {s.name: get_reward(s.name, s.params, **factory_kwargs) for s in specs}
