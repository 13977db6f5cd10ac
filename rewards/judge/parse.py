"""The judge's answer (free text that should hold a JSON verdict) -> intent score 1-5, or None.

Judges wrap JSON in code fences, add prose around it, think aloud first (`<think>...</think>`), write
the score as "4", "4/5" or "4 out of 5", or run out of tokens mid-reasoning. All of that is read; what
cannot be read as a score in [1, 5] is None (no opinion), never a guess.

    >>> parse_intent_score('```json\\n{"intent_score": "4/5", "reasoning": "ok"}\\n```')
    4.0
    >>> reward_from_score(4.0)
    0.75
"""

from __future__ import annotations

import json
import math
import re

_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)
_SCORE_TEXT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:(?:/|out of)\s*5(?:\.0)?)?\s*$", re.IGNORECASE)
# A verdict cut off by max_tokens still names its score first: `{"intent_score": 4, "reasoning": "The re`
_SCORE_FIELD = re.compile(r'"?intent_score"?\s*[:=]\s*"?\s*(\d+(?:\.\d+)?(?:\s*(?:/|out of)\s*5)?)', re.IGNORECASE)


def reward_from_score(score: float | None) -> float | None:
    """Intent score 1-5 -> reward in [0, 1] (so 4 -> 0.75)."""
    return None if score is None else (score - 1.0) / 4.0


def parse_intent_score(text: str | None) -> float | None:
    if not isinstance(text, str):
        return None
    text = _THINK.sub("", text)
    for verdict in _json_objects(text):
        if "intent_score" in verdict:
            return _score(verdict["intent_score"])
    match = _SCORE_FIELD.search(text)
    return _score(match.group(1)) if match else None


def _json_objects(text: str):
    """Every JSON object in `text` (fences and prose around them ignored), keys lower-cased."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict):
            yield {str(k).strip().lower(): v for k, v in value.items()}
        start = text.find("{", end)


def _score(value) -> float | None:
    if isinstance(value, bool):  # JSON true is not a score
        return None
    if isinstance(value, str):
        match = _SCORE_TEXT.match(value)
        if not match:
            return None
        value = match.group(1)
    try:
        score = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return score if math.isfinite(score) and 1.0 <= score <= 5.0 else None
