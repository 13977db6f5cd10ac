"""What the configured rewards count as a fast response: word limits, gates and the per-reply checks.

The rule rates (`english_rate`, `tag_rate`, `word_ok_rate`) of the evaluation (rl/metrics.py), the
per-step rollout metrics (rl/rollout_metrics.py), the console's closing lines and the publish gate's
report all read one `ReplyRules`, derived here from the experiment's reward specs, so that changing
`rewards.word_count.params.good_max_words` moves every rate with the reward instead of leaving them at
Pika's 1-6:
- word limits: the word counts `word_count` pays for (1..good_max_words, or 1..best_max_words when
  good_score is 0), from the configured reward itself; an experiment without word_count gets that
  reward's own defaults, Pika's guideline;
- gates: the rewards marked `gate: true` (rewards/compose.py multiplies the others by them);
- per reply: `english` (the decision `english_only` scores), `tagged` (what `no_say_tags` scores 0),
  `word_ok` (within the word limits).

    >>> from rewards.compose import RewardSpec
    >>> rules = rules_from([RewardSpec("word_count", params={"good_max_words": 4})])
    >>> rules.words, rules.word_ok("one two three four five")
    ('1-4 words', False)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rewards.compose import RewardSpec
from rewards.english import is_english
from rewards.length import WordCount, count_words
from rewards.registry import get_reward
from rewards.tags import has_say_tag


@dataclass(frozen=True)
class ReplyRules:
    word_limits: tuple[int, int]  # (fewest, most) words a reply may have
    gates: tuple[str, ...] = ()  # names of the gate rewards, in config order

    @property
    def words(self) -> str:
        """The word limits as people read them: '1-6 words'."""
        low, high = self.word_limits
        return f"{low}-{high} words" if low != high else f"{low} word{'s' if low != 1 else ''}"

    def english(self, text: str) -> bool:
        return is_english(text)

    def tagged(self, text: str) -> bool:
        return has_say_tag(text)

    def word_ok(self, text: str) -> bool:
        return self.count_ok(count_words(text))

    def count_ok(self, words: int) -> bool:
        low, high = self.word_limits
        return low <= words <= high


def rules_from(specs: Iterable[RewardSpec]) -> ReplyRules:
    """The reward specs of an experiment (rl.config Config.reward_specs(), checked) -> its ReplyRules."""
    specs = list(specs)
    length = next((s for s in specs if s.name == "word_count"), None)
    counter = get_reward("word_count", length.params) if length is not None else WordCount()
    most = counter.good_max_words if counter.good_score > 0 else counter.best_max_words
    return ReplyRules(word_limits=(1, most), gates=tuple(s.name for s in specs if s.gate))


# Pika's guideline (word_count's defaults, no gates): for callers that have no experiment (the nano build)
PIKA_RULES = rules_from([])
