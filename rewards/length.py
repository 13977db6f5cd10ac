"""`word_count`: Pika's length rule for fast responses.

1-3 words score 1.0 (the guidelines' 10 points), 4-6 words 0.8 (8 points), 0 words or more than 6
score 0.0, so an empty reply can never be a way to score. A word is a run of letters or digits, joined
by apostrophes or hyphens ("let's", "high-five" are one word each; "3.5" is one number); emoji and
punctuation are not words.
"""

from __future__ import annotations

import re
import unicodedata

from rewards.text import completion_text

# Letters/digits (any script, no underscore), joined by apostrophes or hyphens; numbers keep . and ,
_WORD = re.compile(r"\d+(?:[.,]\d+)+|[^\W_]+(?:['’\-][^\W_]+)*")


def count_words(text: str) -> int:
    """Number of words in `text`.

        >>> count_words("Let's go! 🎉")
        2
    """
    if not text:
        return 0
    # NFC first: decomposed tone marks (combining characters) would split a Vietnamese word in two.
    return len(_WORD.findall(unicodedata.normalize("NFC", text)))


class WordCount:
    """1..best_max_words words -> best_score, ..good_max_words -> good_score, else 0.0.

        >>> from rewards.length import WordCount
        >>> WordCount()(prompts=None, completions=["Great job!", "You did it, well done!", "", "🎉"])
        [1.0, 0.8, 0.0, 0.0]
        >>> WordCount(best_max_words=1)(prompts=None, completions=["Yes!", "Yes, cat!"])
        [1.0, 0.8]
    """

    __name__ = "word_count"

    def __init__(self, best_max_words: int = 3, good_max_words: int = 6, best_score: float = 1.0,
                 good_score: float = 0.8):
        if not 1 <= int(best_max_words) <= int(good_max_words):
            raise ValueError(f"need 1 <= best_max_words <= good_max_words, got {best_max_words}, {good_max_words}")
        for name, score in (("best_score", best_score), ("good_score", good_score)):
            if not 0.0 <= float(score) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {score}")
        self.best_max_words = int(best_max_words)
        self.good_max_words = int(good_max_words)
        self.best_score = float(best_score)
        self.good_score = float(good_score)

    def score(self, text: str) -> float:
        n = count_words(text)
        if n == 0 or n > self.good_max_words:
            return 0.0
        return self.best_score if n <= self.best_max_words else self.good_score

    def __call__(self, prompts=None, completions=None, **kwargs) -> list[float]:
        return [self.score(completion_text(c)) for c in completions or []]

    def __repr__(self) -> str:
        return (f"WordCount(best_max_words={self.best_max_words}, good_max_words={self.good_max_words}, "
                f"best_score={self.best_score}, good_score={self.good_score})")


word_count = WordCount()
