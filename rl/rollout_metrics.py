"""Per-step rollout metrics for W&B: English, tag, word_ok, empty and distinct rates and length of the samples.

These are what the trainer is for, so they are logged whatever rewards the experiment uses. They ride
on the first reward function's call because that is where TRL hands completions out, and TRL's
`log_metric` averages them per logging step (W&B keys `rollout/english_rate`, ...). The checks are the
experiment's (`rl.rules.ReplyRules`): `rollout/word_ok_rate` counts the words its `word_count` pays for.
"""

from __future__ import annotations

from rewards.fit import normalise
from rewards.length import count_words
from rewards.text import completion_text
from rl.rules import PIKA_RULES, ReplyRules


def rollout_metrics(completions: list, rules: ReplyRules = PIKA_RULES) -> dict[str, float]:
    texts = [completion_text(c) for c in completions]
    n = max(len(texts), 1)
    words = [count_words(t) for t in texts]
    return {
        "rollout/english_rate": sum(map(rules.english, texts)) / n,
        "rollout/tag_rate": sum(map(rules.tagged, texts)) / n,
        "rollout/word_ok_rate": sum(map(rules.count_ok, words)) / n,
        "rollout/mean_words": sum(words) / n,
        # collapse, as it happens: nothing said, and how many different things were said per batch
        "rollout/empty_rate": sum(not t.strip() for t in texts) / n,
        "rollout/distinct_rate": len({normalise(t) for t in texts}) / n,
    }


class WithRolloutMetrics:
    """Wraps a synchronous reward function: same name and scores, plus the rollout metrics by `rules`."""

    def __init__(self, inner, rules: ReplyRules = PIKA_RULES):
        self.inner = inner
        self.rules = rules
        self.__name__ = inner.__name__

    def __call__(self, prompts, completions, **kwargs):
        log_metric = kwargs.get("log_metric")
        if log_metric is not None:
            for name, value in rollout_metrics(completions, self.rules).items():
                log_metric(name, value)
        return self.inner(prompts=prompts, completions=completions, **kwargs)


def with_rollout_metrics(reward_funcs: list, rules: ReplyRules = PIKA_RULES) -> tuple[list, bool]:
    """(reward_funcs, logged): the first synchronous reward also logs the rollout metrics (TRL hands the
    completions out there); an experiment whose rewards are all asynchronous (the judge alone) has none
    to carry them, and trains without rollout/* (logged False)."""
    from rewards.compose import is_async

    funcs = list(reward_funcs)
    for i, func in enumerate(funcs):
        if not is_async(func):
            funcs[i] = WithRolloutMetrics(func, rules)
            return funcs, True
    return funcs, False
