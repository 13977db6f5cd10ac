"""The word limits, gates and rule checks of the rates come from the configured rewards (rl/rules.py).

An experiment that tightens `word_count` to 1-4 words must see its evaluation, its rollout metrics,
its closing console lines and its publish gate count 1-4 words too, not Pika's default 1-6.
"""

from __future__ import annotations

import pytest

from rewards.compose import build_raw_funcs, parse_specs, without_disabled_judge
from rl.rules import PIKA_RULES, ReplyRules, rules_from
from tests.composed import composed
from tests.test_publish import BASE, QWEN, evaluated, make_adapter

FOUR = ("+exp=english_only", "rewards.word_count.params.good_max_words=4", "judge=none")
# 1, 3, 4, 5, 6 and 7 words: under 1-4 the last three are too long, under 1-6 only the last
REPLIES = ["Yes!", "Great job, Minh!", "You did it, friend!", "You did it, well done!",
           "You did it, well done, friend!", "You did it, well done, my friend!"]


def specs_of(*overrides: str):
    return without_disabled_judge(composed(*overrides).reward_specs(), None)[0]


def examples(replies):
    return [{"prompt": [{"role": "user", "content": "Cat!"}], "reference_fast_response": "Yes, cat!",
             "intent": "positive", "last_robot_turn": "Con mèo tiếng Anh là gì?", "child_reply": "Cat!",
             "main_answer": ""} for _ in replies]


@pytest.mark.parametrize("params,limits", [
    ({}, (1, 6)),  # word_count's own defaults: Pika's guideline
    ({"good_max_words": 4}, (1, 4)),
    ({"best_max_words": 2, "good_max_words": 2}, (1, 2)),
    ({"good_max_words": 5, "good_score": 0.0}, (1, 3)),  # 4-5 words pay nothing: not ok
])  # fmt: skip
def test_word_limits_are_the_word_counts_the_reward_pays_for(params, limits):
    rules = rules_from(parse_specs({"word_count": {"params": params}}))
    assert rules.word_limits == limits
    reward = build_raw_funcs(parse_specs({"word_count": {"params": params}}))["word_count"]
    texts = [" ".join(["word"] * n) for n in range(0, 9)]
    assert [rules.word_ok(t) for t in texts] == [s > 0 for s in reward(prompts=None, completions=texts)]


def test_without_word_count_the_limits_are_pikas_and_gates_are_the_configured_ones():
    rules = rules_from(specs_of("+exp=english_only", "judge=none"))
    assert rules.word_limits == PIKA_RULES.word_limits == (1, 6) and rules.words == "1-6 words"
    assert rules.gates == ("english_only", "no_say_tags", "speakable")
    assert rules_from(parse_specs({"english_only": {}})).word_limits == (1, 6)


def test_eval_word_ok_rate_agrees_with_the_configured_reward(monkeypatch):
    from rl import evaluate

    specs = specs_of(*FOUR)
    monkeypatch.setattr(evaluate, "generate_greedy", lambda model, tok, prompts, *a: REPLIES[: len(prompts)])
    metrics, rows = evaluate.evaluate_policy(None, None, examples(REPLIES), specs, len(REPLIES), 8, 24)
    paid = [row["rewards"]["word_count"] > 0 for row in rows]
    assert paid == [True, True, True, False, False, False]  # a 5-word reply is not a 1-4 word reply
    assert metrics["word_ok_rate"] == pytest.approx(sum(paid) / len(paid)) == 0.5
    default, _ = evaluate.evaluate_policy(None, None, examples(REPLIES), specs_of("+exp=english_only", "judge=none"),
                                          len(REPLIES), 8, 24)
    assert default["word_ok_rate"] == pytest.approx(5 / 6)


def test_rollout_word_ok_rate_agrees_with_the_configured_reward():
    from rl.rollout_metrics import WithRolloutMetrics

    specs = specs_of(*FOUR)
    reward = build_raw_funcs(specs)["word_count"]
    logged = {}
    wrapped = WithRolloutMetrics(reward, rules_from(specs))
    scores = wrapped(prompts=[None] * len(REPLIES), completions=REPLIES, log_metric=logged.__setitem__)
    assert logged["rollout/word_ok_rate"] == pytest.approx(sum(s > 0 for s in scores) / len(scores)) == 0.5


def test_console_card_and_publish_gate_say_the_configured_limits(tmp_path):
    from rl.card import render_card
    from rl.console import summary_lines
    from rl.publish import GateRefused, gate_failures, publish_from_config

    config = composed(*FOUR, f"serving.dir={tmp_path / 'serving'}", f"serving.base_model={BASE}",
                      f"model.name_or_path={QWEN}")
    rules = rules_from(config.reward_specs())
    results = {"before": {"word_ok_rate": 0.5, "n": 128}, "after": {"word_ok_rate": 1.0, "n": 128}}
    assert "word_ok_rate (1-4 words) 0.500 -> 1.000" in summary_lines(tmp_path, results, None, rules=rules)[1]
    card = render_card(config, tmp_path, results, 5, None)
    assert "fast response (1-4 words of simple English" in card and "| replies of 1-4 words | 0.500 | 1.000 |" in card

    metrics = {"english_rate": 1.0, "tag_rate": 0.0, "word_ok_rate": 0.5, "n": 128}
    gate = {"word_ok_rate": {"min": 0.98}}
    assert gate_failures(metrics, gate, rules) == ["word_ok_rate (1-4 words) 0.5 < 0.98"]
    assert gate_failures(metrics, gate) == ["word_ok_rate 0.5 < 0.98"]  # no experiment: no limits claimed
    adapter = make_adapter(tmp_path / "adapter")
    with pytest.raises(GateRefused, match=r"word_ok_rate \(1-4 words\) 0.5 < 0.98"):
        publish_from_config(config, adapter, evaluated(adapter, metrics))


def test_reply_rules_checks():
    rules = ReplyRules(word_limits=(2, 3))
    assert [rules.count_ok(n) for n in range(5)] == [False, False, True, True, False]
    assert rules.tagged("<say>Hi</say>") and not rules.tagged("Say it!")
    assert rules.english("Great job!") and not rules.english("Giỏi lắm!")
    assert ReplyRules(word_limits=(1, 1)).words == "1 word"


def test_docstring_example_runs():
    import doctest

    import rl.rules

    result = doctest.testmod(rl.rules)
    assert result.attempted > 0 and result.failed == 0
