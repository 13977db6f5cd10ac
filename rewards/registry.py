"""Reward names, as written in the experiment config, -> reward functions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from common.errors import UserError


class RewardConfigError(UserError, ValueError):
    """A reward name or parameter in the config that cannot work; one line naming the key."""


def _english_only(params):
    from rewards.english import EnglishOnly

    return EnglishOnly(**params)


def _word_count(params):
    from rewards.length import WordCount

    return WordCount(**params)


def _no_say_tags(params):
    from rewards.tags import no_say_tags

    if params:
        raise RewardConfigError(f"rewards.no_say_tags takes no params, got {sorted(params)}")
    return no_say_tags


def _reference_fit(params):
    from rewards.fit import reference_fit

    if params:
        raise ValueError(f"rewards.reference_fit takes no params, got {sorted(params)}")
    return reference_fit


def _speakable(params):
    from rewards.speakable import speakable

    if params:
        raise ValueError(f"rewards.speakable takes no params, got {sorted(params)}")
    return speakable


def _judge_coherence(params, judge=None, group_size=None):
    # judge: the `judge:` config group as a plain dict; group_size: GRPO's num_generations (None offline).
    # params override judge keys for this reward (e.g. prompt_template); unknown ones are a ValueError.
    from rewards.judge import make_judge_reward

    return make_judge_reward(judge, group_size=group_size, **params)


# name -> factory(params, **outside_state) -> reward function. Factories import lazily so the score
# CLI and tests load only what they use.
REGISTRY: dict[str, Callable[..., Callable]] = {
    "english_only": _english_only,
    "word_count": _word_count,
    "no_say_tags": _no_say_tags,
    "reference_fit": _reference_fit,
    "speakable": _speakable,
    "judge_coherence": _judge_coherence,
}


def get_reward(name: str, params: dict[str, Any] | None = None, **outside_state) -> Callable:
    if name not in REGISTRY:
        raise RewardConfigError(f"rewards.{name}: unknown reward; known: {', '.join(sorted(REGISTRY))}")
    factory = REGISTRY[name]
    try:
        if name == "judge_coherence":
            return factory(dict(params or {}), **outside_state)
        return factory(dict(params or {}))
    except (TypeError, ValueError) as err:  # a factory's own check of its params
        if isinstance(err, RewardConfigError):
            raise
        raise RewardConfigError(f"rewards.{name}.params: {err}") from None
