"""Every built-in reward is linear in the reply's length (issue 11).

GRPO samples degenerate replies: a million spaces after "I say:", a tag repeated until max_tokens. A
reward that is quadratic in such a run stalls a whole training step (no_say_tags once took 1.8 s on
20,000 spaces and about an hour on 1,000,000). These tests feed each reward million-character floods
and long repeats. There is no timing assertion on purpose: a quadratic pattern makes this file run for
minutes (or hours), which is itself the failure; a linear one runs it in seconds.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewards import english_only, no_say_tags, speakable, word_count
from rewards.fit import reference_fit
from rewards.judge.context import Context, context_from_prompt, render
from rewards.judge.protocol import parse_intent_score
from rewards.judge.settings import load_template

SIZE = 1_000_000
REWARDS = [english_only, word_count, no_say_tags, speakable]
TEMPLATE = load_template(None)
# Units whose runs once triggered (or could trigger) backtracking: whitespace before/after "say", "<",
# "/", escapes, entities, digits and separators (numbers), combining marks, emoji with modifiers.
UNITS = [" ", "\n", "\t", "\u00a0", "<", "< ", "say", "say ", "say/", "/ ", "&lt;", "&amp;", "&#", "&#60",
         "\\", "\\u003c", "%3c", "<say", "</say", "<b>", "< /", "{", '{"', "[", "*", "(", "1", "1.", "1,",
         "'", "-", "a\u0301", "🎉", "👍🏽", "\u200b", "Great job! ", "gioi qua ", "http://", "Pika:", "ha"]
PREFIXES = ["", "I say:", "<", "say", "Great job! ", "<say>", "&lt;", "{\"intent_score\": 5", "*"]
SUFFIXES = ["", ">", "say", "x", "/>", "</say>", "}", "!"]


def flood(prefix: str, unit: str, suffix: str, size: int = SIZE) -> str:
    return prefix + unit * (size // len(unit)) + suffix


def _score_all(text: str) -> None:
    for reward in REWARDS:
        scores = reward(prompts=None, completions=[text])
        assert len(scores) == 1 and isinstance(scores[0], float) and 0.0 <= scores[0] <= 1.0, reward.__name__
    # reference_fit against a reference, and a flooded reference against a plain reply
    for reply, reference in ((text, "Great job!"), ("Great job!", text)):
        (fit,) = reference_fit(prompts=None, completions=[reply], reference_fast_response=[reference])
        assert (fit is None) if not reference.strip() else (isinstance(fit, float) and 0.0 <= fit <= 1.0)
    # the judge: context read from a flooded prompt, the prompt built from flooded fields, a flooded answer parsed
    context = context_from_prompt([{"role": "assistant", "content": text}, {"role": "user", "content": text}])
    assert len(render(TEMPLATE, Context(text, text, text), text)) < 60_000  # fields are cut: a bounded prompt
    assert context_from_prompt(text) is not None and isinstance(context, Context)
    assert parse_intent_score(text) is None or 1.0 <= parse_intent_score(text) <= 5.0


@pytest.mark.parametrize("text", [
    flood("I say:", " ", ""), flood("", "\n", ""), flood("", "<", ""), flood("", "say", ""),
    flood("", "< ", "say"), flood("<", " ", "/"), flood("say", " ", "/ "), flood("", "&lt;", "say"),
    flood("", "🎉", ""), flood("", "<say>", ""), flood("", "Great job! ", ""), flood("", "1", ".5"),
], ids=lambda t: f"{t[:8]!r}...{t[-4:]!r}")
def test_million_character_floods(text):
    _score_all(text)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.sampled_from(PREFIXES), st.lists(st.sampled_from(UNITS), min_size=1, max_size=3).map("".join),
       st.sampled_from(SUFFIXES))
def test_degenerate_repeats_of_any_unit(prefix, unit, suffix):
    _score_all(flood(prefix, unit, suffix))
