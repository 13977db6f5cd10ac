"""Property tests: every reward takes any string and returns a float in [0, 1], never raising."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewards import english_only, no_say_tags, speakable, word_count
from rewards.length import WordCount

REWARDS = [english_only, word_count, no_say_tags, speakable, WordCount(best_max_words=1, good_max_words=2)]
PIECES = ["<say>", "</say>", "&lt;say&gt;", "< SAY", "say>", "Great job!", "Giỏi lắm", "gioi qua", "🎉", "👍🏽",
          "\u200f", "\u202e", "\u200b", "\ufeff", "\x00", "\x1b[31m", "\r\n", "\t", "مرحبا", "你好", "a\u0301",
          "e\u0323\u0302", "'", "-", "'s", "5", "   "]
texts = st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from(PIECES), max_size=60).map("".join),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=100),
)
SPECIAL = ["", " ", "\n\t\r", "x" * 100_000, "Great job! " * 10_000, "🎉" * 20_000, "<say>" * 20_000,
           "</say " * 20_000, "&lt;say&gt;" * 10_000, "\u200f\u202eGreat job!\u202c", "".join(map(chr, range(32))),
           "\x7f\x80\x9f", "\ud800 lone surrogate \U0010ffff", "a" + "\u0301" * 5000, "gioi qua " * 10_000]


def _check(text: str) -> None:
    for reward in REWARDS:
        scores = reward(prompts=None, completions=[text, [{"role": "assistant", "content": text}]])
        assert len(scores) == 2 and scores[0] == scores[1]
        assert all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in scores), (reward.__name__, text[:80])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_any_string_scores_a_float_in_unit_interval(text):
    _check(text)


@pytest.mark.parametrize("text", SPECIAL, ids=lambda t: f"{len(t)}chars:{t[:12]!r}")
def test_extreme_strings_never_raise(text):
    _check(text)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=30).map("".join))
def test_text_with_a_say_tag_always_scores_zero(text):
    tagged = "Great " + text + "<say>" + text
    assert no_say_tags(prompts=None, completions=[tagged]) == [0.0]


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.sampled_from(" \t\n\r\u00a0\u2003!?.,…🎉👍❤️-'\""), max_size=50))
def test_replies_without_words_never_score(text):
    assert english_only(prompts=None, completions=[text]) == [0.0]
    assert word_count(prompts=None, completions=[text]) == [0.0]
