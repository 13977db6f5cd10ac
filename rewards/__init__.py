"""Pika's reward functions: plain functions with TRL's signature, scores in [0, 1].

    >>> from rewards import english_only, word_count, no_say_tags
    >>> english_only(prompts=None, completions=["Great job!", "Giỏi lắm!"])
    [1.0, 0.0]
"""

from rewards.english import english_only
from rewards.length import word_count
from rewards.speakable import speakable
from rewards.tags import no_say_tags

__all__ = ["english_only", "word_count", "no_say_tags", "speakable"]
