"""Does a fast response fit the conversation? Cheap, deterministic measures against the record's reference.

A rule reward (English, 1-6 words, no tags) is satisfied by one stock reply for everything ("Perfect!"
to a wrong answer, to silence, to Vietnamese). What tells a fitting reply from a stock one, without a
judge, is the reference fast response each record carries (`assistant_fast_response`): a person wrote it
for exactly this turn. Two measures are built on it:

- `similarity(reply, reference)`: cosine of the character-trigram profiles of the two normalised texts
  (words padded with spaces, so word starts and ends count). Cheap, deterministic, tolerant of
  punctuation, case and inflection ("Try again!" ~ "Let's try again"), and 0 for replies that share
  nothing. It rewards saying the same kind of thing as the reference, not the same string.
- `fits_intent(reply, intent, bank)`: where records carry Pika's intent (positive, negative, neutral,
  fallback, silence), a reply fits when the reference it is most like, among all references of the
  evaluated set (`ReferenceBank`), was written for the record's intent. This is what a stock reply
  fails: "Perfect!" is nearest to positive references, so it fits right answers and nothing else, while
  "Great job!" and "Well done!" both fit a right answer though they share no letter. Reference
  similarity alone would call "Well done!" unfit for the reference "Great job!"; intent agreement
  alone needs intents, which the users' own data may lack, hence both: intent agreement where the record
  has an intent, similarity >= FIT_SIMILARITY otherwise.

`reference_fit` is the reward form (TRL signature): the similarity to the record's reference, a dense
signal GRPO can climb that pulls replies toward what the conversation called for.

    >>> round(similarity("Nice try!", "Nice try! Let's try again!"), 2)
    0.71
    >>> similarity("Perfect!", "Nice try! Let's try again!")
    0.0
    >>> bank = ReferenceBank(["Great job!", "Yes, cat! Well done!", "Nice try!", "Take your time!"],
    ...                      ["positive", "positive", "negative", "silence"])
    >>> bank.nearest_intent("Well done, friend!"), bank.nearest_intent("Try again!")
    ('positive', 'negative')
    >>> fits("Perfect!", "Nice try!", "negative", bank), fits("Good try!", "Nice try!", "negative", bank)
    (False, True)
    >>> reference_fit(None, ["Nice try!", ""], reference_fast_response=["Nice try!", "Good job!"])
    [1.0, 0.0]
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from functools import lru_cache

from rewards.text import completion_text

# Below this similarity a reply shares too little with every reference to say which intent it answers
# (and, for records without an intent, too little with its own reference to count as fitting).
FIT_SIMILARITY = 0.35
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")


def normalise(text: str) -> str:
    """Lower-case words only: punctuation, case, spacing and apostrophe kinds do not change the fit."""
    text = unicodedata.normalize("NFC", str(text)).lower().replace("\u2019", "'")
    return " ".join(_WORD.findall(text))


@lru_cache(maxsize=65536)
def _profile(text: str) -> tuple[Counter, float]:
    padded = f" {normalise(text)} "
    grams = Counter(padded[i : i + 3] for i in range(len(padded) - 2)) if padded.strip() else Counter()
    return grams, math.sqrt(sum(v * v for v in grams.values()))


def similarity(a: str, b: str) -> float:
    """Cosine similarity of character-trigram profiles, in [0, 1]; 0 when either text has no word."""
    (pa, na), (pb, nb) = _profile(a), _profile(b)
    if not na or not nb:
        return 0.0
    if len(pa) > len(pb):
        pa, pb = pb, pa
    # rounded: the same float on every machine, and an identical reply scores exactly 1.0
    return round(min(1.0, sum(v * pb[g] for g, v in pa.items()) / (na * nb)), 6)


class ReferenceBank:
    """The references of a set of records, by intent: what each intent's fast responses look like."""

    def __init__(self, references: list[str], intents: list[str]):
        by_intent: dict[str, set[str]] = {}
        for ref, intent in zip(references, intents):
            if intent and normalise(ref):
                by_intent.setdefault(intent, set()).add(ref)
        # sorted: ties go to the same intent on every machine
        self.by_intent = {intent: sorted(refs) for intent, refs in sorted(by_intent.items())}

    def nearest_intent(self, reply: str) -> str | None:
        """The intent whose references hold the reply's nearest neighbour; None when nothing is near."""
        best, best_sim = None, FIT_SIMILARITY
        for intent, refs in self.by_intent.items():
            sim = max(similarity(reply, r) for r in refs)
            if sim >= best_sim and (best is None or sim > best_sim):
                best, best_sim = intent, sim
        return best


def fits(reply: str, reference: str, intent: str | None, bank: ReferenceBank | None) -> bool:
    """Intent agreement when the record has an intent the bank knows, else similarity to the reference."""
    if not normalise(reply):
        return False
    if intent and bank is not None and intent in bank.by_intent:
        return bank.nearest_intent(reply) == intent
    return similarity(reply, reference) >= FIT_SIMILARITY


def reference_fit(prompts=None, completions=None, reference_fast_response=None, **kwargs) -> list[float | None]:
    """Reward: similarity of each completion to its record's reference fast response (None without one)."""
    refs = reference_fast_response or [None] * len(completions)
    return [None if not ref or not str(ref).strip() else similarity(completion_text(c), ref)
            for c, ref in zip(completions, refs)]
