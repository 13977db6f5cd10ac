"""One run setup for training, evaluation and the tests: `prepare(config) -> Run`.

In this order, so that what fails cheaply fails first: seed and threads; the machine can run the chosen
backends; the nano model is built on first use; rewards (a judge that is required but down stops here);
the data (prompts bounded in the model's own tokens); the model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

from common.errors import UserError
from rewards.compose import RewardSpec, without_disabled_judge
from rewards.judge.settings import JudgeSettings
from rl.config import Config
from rl.rules import ReplyRules, rules_from

log = logging.getLogger(__name__)


@dataclass
class Run:
    """What a job needs once the config is checked: rewards, data and (optionally) the policy."""

    config: Config
    specs: list[RewardSpec]
    judge: JudgeSettings | None  # the judge the rewards talk to; None: no judge this run
    judge_down: str | None = None  # judge.required=false and the preflight failed: why
    train_set: Any = None
    held_out: Any = None
    policy: Any = None
    tokenizer: Any = None
    max_prompt_tokens: int | None = None  # the prompt bound the data was cut to (None: not bounded)
    data_stats: dict = field(default_factory=dict)

    @property
    def rules(self) -> ReplyRules:
        """What these rewards count as a fast response (word limits, gates, the rate checks)."""
        return rules_from(self.specs)

    @property
    def reward_kwargs(self) -> dict:
        """What reward factories need from outside (rewards.compose.build_reward_funcs)."""
        return {"judge": self.judge} if self.judge is not None else {}


def prepare(config: Config, load_model: bool = True, adapter_path: str | None = None, train: bool = True) -> Run:
    """Set up a run from a checked config; UserError (one line) for anything the user can fix.

    load_model=False stops after the data (an evaluation loads each adapter itself);
    adapter_path replaces model.adapter_path (and continues it, as evaluating an adapter does);
    train=False: no rollouts, so the rollout backend need not run here."""
    set_up_process(config)
    check_machine(config, rollout=train)

    # ---- the nano model is built on first use ----
    from rl.model import ensure_built

    # training builds the nano model from its own data and split; an evaluation uses the build as it is
    ensure_built(config.model, config.data if train else None)

    # ---- rewards (the judge answers, or the run says why not) ----
    specs, judge, judge_down = reward_specs(config)
    if judge_down:
        log.warning("judge: %s; judge.required=false, so the run goes on and judge_coherence scores None while it "
                    "is down", judge_down)
    log.info("rewards: %s", ", ".join(f"{s.name} x{s.weight}{' (gate)' if s.gate else ''}" for s in specs))

    # ---- data ----
    from rl.data import build_datasets, prompt_bound
    from rl.model import load_tokenizer

    d = config.data
    # the tokenizer first: prompts are bounded in the model's own tokens before any weights load
    tokenizer = load_tokenizer(config.model)
    bound = prompt_bound(tokenizer, d.max_prompt_tokens, config.rollout.max_completion_length,
                         config.model.name_or_path)
    stats = []
    train_set, held_out = build_datasets(d.path, d.prompt_format, d.system_prompt, d.eval_size, d.split_seed,
                                         d.history or None, bound, d.too_long, stats)
    log.info("data: %d training prompts, %d held out (%s)", len(train_set), len(held_out), config.data.path)
    log.info("data: %s", stats[0].line())
    if stats[0].skipped:
        log.warning("data: %d records skipped: longer than data.max_prompt_tokens=%d even with their oldest turns "
                    "dropped (data.too_long=refuse stops instead)", stats[0].skipped, bound.max_tokens)
    run = Run(config, specs, judge, judge_down, train_set, held_out, tokenizer=tokenizer,
              max_prompt_tokens=bound.max_tokens, data_stats=stats[0].summary())

    # ---- model ----
    if load_model:
        from rl.model import load_policy

        model = config.model
        if adapter_path is not None:
            model = replace(model, adapter_path=str(adapter_path), adapter_mode="continue")
        run.policy, run.tokenizer = load_policy(model)
    return run


def set_up_process(config: Config) -> None:
    import torch
    from transformers import set_seed

    from rl.console import quiet_libraries

    set_seed(config.seed)
    quiet_libraries()
    if config.cpu_threads:
        torch.set_num_threads(config.cpu_threads)


def check_machine(config: Config, rollout: bool = True) -> None:
    """A GPU-only choice on a machine without it, or a WANDB_MODE typo, fails here, before minutes of loading."""
    from rl.rollout import check_available
    from rl.tracking import check_tracking

    check_tracking(config.logging)

    if rollout:
        check_available(config.rollout.backend)
    if config.model.backend == "unsloth":
        from rl.model_unsloth import check_available as check_unsloth

        check_unsloth()


def reward_specs(config: Config) -> tuple[list[RewardSpec], JudgeSettings | None, str | None]:
    """(specs, judge, why the judge is down): the experiment's rewards, minus the judge when none is
    configured; the judge, preflighted (a required one that is down is a UserError)."""
    specs, dropped = without_disabled_judge(config.reward_specs(), config.judge)
    if dropped:
        log.info("judge: none configured (judge=none), %s is off for this run", ", ".join(dropped))
    if not any(s.name == "judge_coherence" for s in specs):
        return specs, None, None
    from rewards.judge import JudgeUnavailable, preflight

    try:
        down = preflight(config.judge)
    except JudgeUnavailable as err:
        raise UserError(f"{err} (set judge.required=false to go on without it)") from None
    return specs, config.judge, down
