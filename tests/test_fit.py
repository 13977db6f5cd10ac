"""Fit and collapse: rewards.fit (similarity, intent agreement, the reference_fit reward), rl.metrics
(empty/distinct/top-reply rates, fit and per-intent rates), and the evaluation report that shows them."""

from __future__ import annotations

import json
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewards.fit import FIT_SIMILARITY, ReferenceBank, fits, normalise, reference_fit, similarity
from rewards.registry import get_reward
from rl.metrics import collapse_rates, fit_rates, reply_rates
from rl.rules import ReplyRules

# A held-out set in miniature: (child, intent, reference), references as the demo and users write them.
RECORDS = [
    ("Cat!", "positive", "Yes, cat! Great job!"),
    ("Tiger.", "positive", "Well done!"),
    ("Chicken!", "negative", "Nice try! Let's try again!"),
    ("Màu nâu", "negative", "Almost! Say it in English!"),
    ("red", "negative", "Oops, not red! Try again!"),
    ("", "silence", "Take your time!"),
    ("", "silence", "That's okay, let's learn!"),
    ("blah blah", "fallback", "Hmm, let's keep learning!"),
    ("I'm hungry", "neutral", "Oh, I see!"),
]
REFS = [r for _, _, r in RECORDS]
INTENTS = [i for _, i, _ in RECORDS]


@pytest.mark.parametrize(
    "a, b, low, high",
    [
        ("Nice try!", "Nice try!", 1.0, 1.0),
        ("nice TRY", "Nice try!", 1.0, 1.0),  # case and punctuation do not matter
        ("Nice try!", "Nice try! Let's try again!", 0.6, 0.8),
        ("Try again!", "Oops, not red! Try again!", 0.4, 0.8),
        ("Perfect!", "Nice try! Let's try again!", 0.0, 0.0),
        ("", "Great job!", 0.0, 0.0),
        ("!!!", "Great job!", 0.0, 0.0),
        ("Không sao đâu bé!", "That's okay, let's learn!", 0.0, 0.1),
    ],
)
def test_similarity_table(a, b, low, high):
    assert low <= similarity(a, b) <= high


@pytest.mark.parametrize(
    "reply, record, fit",
    [
        ("Great job!", 1, True),  # a positive reply for a right answer, though not the reference's words
        ("Yes, tiger! Great job!", 1, True),
        ("Perfect!", 2, False),  # the stock reply to a wrong answer: the example
        ("Great job!", 2, False),
        ("Good try! Try again!", 2, True),
        ("Great job!", 3, False),  # praise for a Vietnamese answer
        ("Say it in English!", 3, True),
        ("Take your time, friend!", 6, True),  # silence: a gentle prompt fits
        ("Great job!", 5, False),  # silence: praise does not
        ("", 0, False),  # an empty reply fits nothing
        ("Con mèo là gì?", 0, False),
        ("Hmm, let's keep going!", 7, True),
    ],
)
def test_fit_is_intent_agreement_where_records_have_intents(reply, record, fit):
    bank = ReferenceBank(REFS, INTENTS)
    _, intent, reference = RECORDS[record]
    assert fits(reply, reference, intent, bank) is fit


def test_without_an_intent_fit_is_similarity_to_the_reference():
    assert fits("Nice try, again!", "Nice try! Let's try again!", "", None)
    assert not fits("Perfect!", "Nice try! Let's try again!", "", None)
    assert not fits("Great job!", "Well done!", None, ReferenceBank(REFS, INTENTS))  # no intent: words count


def test_bank_ties_and_order_are_deterministic():
    a = ReferenceBank(REFS, INTENTS)
    b = ReferenceBank(list(reversed(REFS)), list(reversed(INTENTS)))
    for reply in ["Okay!", "Great!", "Try again!", "Oh!", "Let's learn!"]:
        assert a.nearest_intent(reply) == b.nearest_intent(reply)


@given(st.text(max_size=40), st.text(max_size=40))
def test_similarity_is_symmetric_bounded_and_never_raises(a, b):
    s = similarity(a, b)
    assert 0.0 <= s <= 1.0 and s == similarity(b, a)
    if normalise(a):
        assert similarity(a, a) == 1.0


def test_reference_fit_reward_by_name_is_picklable_and_handles_chat_completions():
    reward = get_reward("reference_fit")
    assert reward.__name__ == "reference_fit"
    assert pickle.loads(pickle.dumps(reward))(completions=["Nice try!"], reference_fast_response=["Nice try!"]) == [1.0]
    chat = [[{"role": "assistant", "content": "Nice try!"}], [{"role": "assistant", "content": ""}]]
    assert reward(prompts=None, completions=chat, reference_fast_response=["Nice try!", "Good job!"]) == [1.0, 0.0]
    assert reward(completions=["Hi"]) == [None]  # no reference column: no opinion
    with pytest.raises(ValueError, match="reference_fit"):
        get_reward("reference_fit", {"weight": 2})


# ---------------------------------------------------------------- rl.metrics


def test_collapse_rates_of_a_stock_reply_and_of_varied_ones():
    stock = collapse_rates(["Perfect!"] * 7 + ["perfect", ""])
    assert stock == {"empty_rate": pytest.approx(1 / 9), "distinct_rate": pytest.approx(2 / 9),
                     "top_reply_rate": pytest.approx(8 / 9), "top_reply": "Perfect!"}
    varied = collapse_rates(REFS)
    assert varied["empty_rate"] == 0 and varied["distinct_rate"] == 1 and varied["top_reply_rate"] == pytest.approx(1 / 9)
    assert collapse_rates([])["distinct_rate"] is None


def test_reply_rates_are_shares_with_word_limits_from_the_caller():
    rates = reply_rates(["Great job!", "<say>Hi</say>", "Không sao đâu bé!", "", "one two three four five six seven"])
    assert rates["n"] == 5 and rates["empty_rate"] == 0.2 and rates["tag_rate"] == 0.2
    assert rates["word_ok_rate"] == pytest.approx(3 / 5)
    assert reply_rates(["one two three four five six seven"], ReplyRules(word_limits=(1, 8)))["word_ok_rate"] == 1.0
    assert all(0 <= v <= 1 for k, v in rates.items() if k.endswith("_rate"))


def test_fit_rates_catch_the_stock_reply_that_the_rule_rates_miss():
    stock = ["Perfect!"] * len(RECORDS)
    fitting = ["Great job!", "Well done!", "Good try!", "Say it in English!", "Try again!", "Take your time!",
               "It's okay!", "Let's keep learning!", "I see!"]
    assert reply_rates(stock)["english_rate"] == 1.0 and reply_rates(stock)["word_ok_rate"] == 1.0
    bad, good = fit_rates(stock, REFS, INTENTS), fit_rates(fitting, REFS, INTENTS)
    assert bad["fit_rate"] <= 2 / 9 and good["fit_rate"] >= 8 / 9
    assert good["reference_similarity"] > bad["reference_similarity"]
    per = bad["by_intent"]
    assert set(per) == {"positive", "negative", "silence", "fallback", "neutral"}
    assert per["negative"] == {"n": 3, "fit_rate": 0.0, "english_rate": 1.0, "empty_rate": 0.0,
                               "distinct_rate": pytest.approx(1 / 3), "top_reply_rate": 1.0, "top_reply": "Perfect!"}


# ---------------------------------------------------------------- the evaluation report


def test_report_shows_collapse_fit_and_the_worst_replies_by_fit(tmp_path):
    from rewards.compose import parse_specs
    from rl.evaluate import score_replies, summarize_replies
    from rl.report import write_report

    examples = [{"prompt": [{"role": "user", "content": child}], "reference_fast_response": ref, "intent": intent,
                 "last_robot_turn": "Con hổ tiếng Anh là gì?", "child_reply": child, "main_answer": ""}
                for child, intent, ref in RECORDS]
    specs = parse_specs({"english_only": {"weight": 1.0, "gate": True}, "word_count": {"weight": 1.0}})
    stock = ["Perfect!"] * len(RECORDS)
    fitting = ["Great job!", "Well done!", "Good try!", "Say it in English!", "Try again!", "Take your time!",
               "It's okay!", "Let's keep learning!", "I see!"]
    rows = {"before": score_replies(examples, fitting, specs), "after": score_replies(examples, stock, specs)}
    results = {name: summarize_replies(r) for name, r in rows.items()}
    write_report(tmp_path, results, rows)

    saved = json.loads((tmp_path / "eval.json").read_text())
    after = saved["after"]
    for key in ("empty_rate", "distinct_rate", "top_reply_rate", "fit_rate"):
        assert 0.0 <= after[key] <= 1.0, key
    assert after["top_reply_rate"] == 1.0 and after["fit_rate"] < saved["before"]["fit_rate"]
    assert after["reward_mean"] == pytest.approx(2.0)  # every stock reply scores the maximum...
    assert after["by_intent"]["negative"]["fit_rate"] == 0.0  # ...and fits no wrong answer
    md = (tmp_path / "eval.md").read_text()
    assert "| fit_rate |" in md and "## By intent" in md and "## Worst replies by fit (after)" in md
    worst_by_fit = md.split("## Worst replies by fit (after)")[1].split("##")[0]
    assert "| Chicken! | Nice try! Let's try again! | Perfect! | no (0.00) |" in worst_by_fit
    assert (tmp_path / "eval.png").stat().st_size > 10_000


def test_rollout_metrics_show_collapse_per_step():
    from rl.rollout_metrics import rollout_metrics

    varied = rollout_metrics(["Great job!", "Nice try!", "Take your time!", "Hello there!"])
    stock = rollout_metrics([[{"role": "assistant", "content": "Perfect!"}]] * 3 + [[{"role": "assistant", "content": ""}]])
    assert varied["rollout/distinct_rate"] == 1.0 and varied["rollout/empty_rate"] == 0.0
    assert stock["rollout/distinct_rate"] == 0.5 and stock["rollout/empty_rate"] == 0.25


def test_wandb_summary_has_every_evaluation_number_flat():
    from rl.tracking import summary_metrics

    values = {"english_rate": 1.0, "fit_rate": 0.5, "judge_mean": None, "top_reply": "Perfect!", "n": 9,
              "by_intent": {"negative": {"n": 3, "fit_rate": 0.0, "top_reply": "Perfect!"}}}
    assert summary_metrics("after", values) == {"eval/after/english_rate": 1.0, "eval/after/fit_rate": 0.5,
                                                "eval/after/n": 9, "eval/after/negative/n": 3,
                                                "eval/after/negative/fit_rate": 0.0}
