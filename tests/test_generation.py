"""Replies of a policy (rl.generation) and the reward list the trainer gets (rl.rollout_metrics)."""

from __future__ import annotations

import asyncio

from rl.rollout_metrics import WithRolloutMetrics, with_rollout_metrics


def test_generation_leaves_the_tokenizer_padding_as_it_found_it(nano):
    """Batched generation pads on the left; the trainer pads on the right: the side must come back."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rl.generation import generate_replies

    tokenizer = AutoTokenizer.from_pretrained(nano.base)
    model = AutoModelForCausalLM.from_pretrained(nano.base)
    tokenizer.padding_side = "right"
    prompts = [[{"role": "user", "content": "Hello!"}], [{"role": "user", "content": "Con chào cô, hôm nay con vui lắm!"}]]
    replies = generate_replies(model, tokenizer, prompts, batch_size=2, max_new_tokens=4)
    assert len(replies) == 2 and all(isinstance(r, str) for r in replies)
    assert tokenizer.padding_side == "right"


def sync_reward(prompts=None, completions=None, **kwargs):
    return [1.0 for _ in completions]


async def async_reward(prompts=None, completions=None, **kwargs):
    await asyncio.sleep(0)
    return [0.5 for _ in completions]


def test_rollout_metrics_ride_on_the_first_synchronous_reward():
    funcs, logged = with_rollout_metrics([async_reward, sync_reward, sync_reward])
    assert logged and funcs[0] is async_reward and isinstance(funcs[1], WithRolloutMetrics) and funcs[2] is sync_reward
    seen = {}
    assert funcs[1](prompts=None, completions=["Great job!", ""], log_metric=seen.__setitem__) == [1.0, 1.0]
    assert seen["rollout/empty_rate"] == 0.5


def test_an_experiment_of_asynchronous_rewards_only_trains_without_rollout_metrics():
    """The judge alone: no synchronous reward to carry the metrics (this raised StopIteration once)."""
    funcs, logged = with_rollout_metrics([async_reward])
    assert funcs == [async_reward] and not logged
