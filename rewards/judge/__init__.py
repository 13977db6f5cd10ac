"""The coherence judge: an LLM-as-judge reward over an OpenAI-compatible endpoint (vLLM).

    from rewards.judge import make_judge_reward, preflight
    preflight(judge)                                    # raises JudgeUnavailable (one line) if unusable
    reward = make_judge_reward(judge, group_size=8)     # async TRL reward named "judge_coherence"

`judge` is the `judge:` config group as a plain dict (conf/judge/vllm.yaml; docs/judge.md says how to
serve a judge). Modules: settings (config), context (what the judge sees), protocol (fields in as
escaped JSON data, the verdict schema out), client (HTTP, retries, preflight), cache (verdicts across
runs), reward (the reward itself). A fake judge server for tests and benches lives in
tests/fake_judge.py (`python -m tests.fake_judge`).
"""

from rewards.judge.client import JudgeUnavailable, preflight
from rewards.judge.protocol import parse_intent_score, reward_from_score
from rewards.judge.reward import JudgeCoherence, make_judge_reward
from rewards.judge.settings import JudgeSettings, settings_from

__all__ = [
    "JudgeCoherence",
    "JudgeSettings",
    "JudgeUnavailable",
    "make_judge_reward",
    "parse_intent_score",
    "preflight",
    "reward_from_score",
    "settings_from",
]
