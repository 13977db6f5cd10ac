"""Reward composition: config -> specs -> TRL reward funcs/weights, and the gate property."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewards.compose import Gated, build_raw_funcs, build_reward_funcs, combine, parse_specs, without_disabled_judge
from rewards.english import is_english
from rewards.tags import has_say_tag
from tests.composed import composed


def _exp_specs(name: str = "english_only") -> list:
    """The experiment's reward stack as training on the nano model sees it (Hydra-composed; no judge server)."""
    cfg = composed(f"+exp={name}", "model=nano")
    return without_disabled_judge(cfg.reward_specs(), cfg.judge)[0]


SPECS = _exp_specs()
FUNCS, WEIGHTS = build_reward_funcs(SPECS)


# ---------------------------------------------------------------- parse_specs / builders

def test_exp_config_names_its_rewards_with_gates():
    assert [(s.name, s.weight, s.gate) for s in SPECS] == [
        ("english_only", 1.0, True), ("no_say_tags", 1.0, True), ("speakable", 1.0, True), ("word_count", 1.0, False),
        ("reference_fit", 2.0, False)]
    assert SPECS[3].params["best_max_words"] == 3


@pytest.mark.parametrize("cfg, message", [
    ({}, "no reward functions"), (None, "no reward functions"),
    ({"word_count": {"weigth": 1.0}}, "unknown keys"), ({"word_count": {"weight": -1}}, "must be >= 0"),
    ({"word_count": {"weight": float("nan")}}, "must be >= 0"),
])
def test_parse_specs_rejects_bad_configs(cfg, message):
    with pytest.raises(ValueError, match=message):
        parse_specs(cfg)


def test_build_reward_funcs_gives_trl_named_funcs_and_weights():
    specs = parse_specs({"english_only": {"weight": 2.0, "gate": True}, "word_count": {"weight": 0.5}})
    funcs, weights = build_reward_funcs(specs)
    assert [f.__name__ for f in funcs] == ["english_only", "word_count"]
    assert weights == [2.0, 0.5]
    assert isinstance(funcs[1], Gated) and not isinstance(funcs[0], Gated)
    # The gated word_count is zeroed on a Vietnamese reply; the raw one is not.
    texts = ["Great job!", "Giỏi lắm!"]
    assert funcs[1](prompts=None, completions=texts) == [1.0, 0.0]
    assert build_raw_funcs(specs)["word_count"](prompts=None, completions=texts) == [1.0, 1.0]


def test_build_reward_funcs_without_gates_leaves_rewards_raw():
    funcs, weights = build_reward_funcs(parse_specs({"word_count": {}, "no_say_tags": {"weight": 0.3}}))
    assert [f.__name__ for f in funcs] == ["word_count", "no_say_tags"] and weights == [1.0, 0.3]
    assert not any(isinstance(f, Gated) for f in funcs)


def test_unknown_reward_name_in_config_fails_at_build():
    with pytest.raises(ValueError, match="unknown reward"):
        build_raw_funcs(parse_specs({"english_ony": {}}))


def test_combine_applies_gates_and_treats_none_as_zero():
    ok = {"english_only": 1.0, "no_say_tags": 1.0, "speakable": 1.0}
    assert combine({**ok, "word_count": 0.8}, SPECS) == pytest.approx(3.8)
    assert combine({**ok, "english_only": 0.0, "word_count": 1.0}, SPECS) == pytest.approx(2.0)
    assert combine({**ok, "speakable": 0.0, "word_count": 1.0}, SPECS) == pytest.approx(2.0)
    assert combine({**ok, "word_count": None}, SPECS) == pytest.approx(3.0)


# ---------------------------------------------------------------- the gate property

ENGLISH = ["Great", "job", "Yes", "cat", "Wow", "you", "did", "it", "well", "done", "Let's", "count", "5", "Tom",
           "apple", "so", "good", "Try", "again", "nice", "red", "big", "dog", "The", "is", "very", "fun"]
VIETNAMESE = ["Giỏi", "lắm", "đúng", "rồi", "gioi", "qua", "nhe", "khong", "tuyệt", "vời", "oi", "lam", "mèo"]
# Vietnamese words spelt like English ones ("cam" is orange, "con" child, "ban" friend): alone they are
# English too, so a reply is Vietnamese with at least one word of the list above beside them.
SHARED_SPELLINGS = ["con", "cam", "ban"]
DECOR = ["", "!", "!!", ",", "?", " 🎉", " 👍", "."]
TAGS = ["<say>", "</say>", "<SAY >", "&lt;say&gt;", "< /say>", "<say"]


def _reply(words, decor):
    return " ".join(w + d for w, d in zip(words, decor))


english_replies = st.builds(_reply, st.lists(st.sampled_from(ENGLISH), min_size=0, max_size=12),
                            st.lists(st.sampled_from(DECOR), min_size=12, max_size=12))
vietnamese_replies = st.builds(
    lambda en, vi, decor, at: _reply(en[:at] + vi + en[at:], decor),
    st.lists(st.sampled_from(ENGLISH), max_size=8),
    st.builds(lambda vi, shared, rng: rng.sample(vi + shared, len(vi + shared)),
              st.lists(st.sampled_from(VIETNAMESE), min_size=1, max_size=4),
              st.lists(st.sampled_from(SHARED_SPELLINGS), max_size=2), st.randoms(use_true_random=False)),
    st.lists(st.sampled_from(DECOR), min_size=12, max_size=12), st.integers(0, 8))
tagged_replies = st.builds(lambda text, tag, front: tag + text if front else text + tag,
                           english_replies, st.sampled_from(TAGS), st.booleans())


def _trl_total(completions: list) -> list[float]:
    """What TRL's GRPOTrainer sums: nansum over funcs of weight * reward (None -> NaN)."""
    per_func = np.array([[np.nan if r is None else r for r in f(prompts=[None] * len(completions),
                                                                    completions=completions)]
                         for f in FUNCS], dtype=float).T
    return list(np.nansum(per_func * np.array(WEIGHTS)[None, :], axis=1))


def _combined(text: str) -> float:
    raw = build_raw_funcs(SPECS)
    return combine({name: f(prompts=None, completions=[text])[0] for name, f in raw.items()}, SPECS)


@settings(max_examples=80, deadline=None)
@given(good=english_replies, bad=st.one_of(vietnamese_replies, tagged_replies))
def test_non_compliant_reply_never_outscores_a_compliant_one(good, bad):
    compliant = is_english(good) and not has_say_tag(good)
    failing = not is_english(bad) or has_say_tag(bad)
    trl_good, trl_bad = _trl_total([good, bad])
    if compliant and failing:
        assert _combined(bad) < _combined(good)
        assert trl_bad < trl_good
    # Training (TRL's sum) and scoring/evaluation (combine) give the same total.
    assert math.isclose(trl_good, _combined(good)) and math.isclose(trl_bad, _combined(bad))


@settings(max_examples=40, deadline=None)
@given(bad=vietnamese_replies)
def test_vietnamese_replies_fail_the_english_gate(bad):
    assert not is_english(bad)
