"""Prompts bounded in the model's own tokens (`data.max_prompt_tokens`, `data.too_long`).

A conversation over the bound loses its oldest turns; the system prompt, the last robot turn and what the
child said after it always stay, since those are what the fast response answers. One still over the bound
with only those left is skipped (counted) or, with too_long=refuse, stops the run naming the record.
Lengths are what the trainer will feed the model: the chat template with the generation prompt, tokenized.
The kept tail is found by galloping from the newest turn, so a 10,000-turn record costs a few
tokenizations of about the bound's size, never one of the whole conversation.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, Callable

Turns = list[dict]


class PromptTooLong(Exception):
    """Even the system prompt, the last robot turn and the child's reply exceed the bound."""

    def __init__(self, tokens: int):
        super().__init__(tokens)
        self.tokens = tokens


@dataclass
class PromptBound:
    tokenizer: Any
    max_tokens: int

    def length(self, prompt: list[dict]) -> int:
        ids = self.tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True,
                                                 return_dict=False)
        return len(ids)

    def fit(self, turns: Turns, render: Callable[[Turns], list[dict]]) -> tuple[Turns, int]:
        """(the newest turns whose rendered prompt fits, its length in tokens); PromptTooLong when even the
        kept tail does not fit. `render` turns a list of turns into the chat prompt (system included)."""
        last_robot = max((i for i, t in enumerate(turns) if t["role"] == "assistant"), default=len(turns) - 1)
        older, tail = turns[:last_robot], turns[last_robot:]

        def length_keeping(extra: int) -> int:  # the `extra` newest of the older turns, plus the tail
            return self.length(render(older[len(older) - extra:] + tail if extra else tail))

        if sum(len(t["content"]) for t in turns) <= 4 * self.max_tokens:  # the usual case: one measurement
            whole = length_keeping(len(older))
            if whole <= self.max_tokens:
                return turns, whole
        smallest = length_keeping(0)
        if smallest > self.max_tokens:
            raise PromptTooLong(smallest)
        fits, fits_len, step = 0, smallest, 1  # gallop: 1, 2, 4, ... older turns until one is over the bound
        over = None
        while over is None:
            trial = min(fits + step, len(older))
            if trial == fits:  # every turn fits
                return turns, fits_len
            n = length_keeping(trial)
            if n <= self.max_tokens:
                fits, fits_len, step = trial, n, step * 2
            else:
                over = trial
        while over - fits > 1:  # the largest count that fits lies in [fits, over)
            middle = (fits + over) // 2
            n = length_keeping(middle)
            if n <= self.max_tokens:
                fits, fits_len = middle, n
            else:
                over = middle
        return older[len(older) - fits:] + tail if fits else tail, fits_len


@dataclass
class BoundStats:
    """What bounding did to one data file: shown by `rl.data check` and logged by every run."""

    max_tokens: int
    trimmed: int = 0
    turns_dropped: int = 0
    skipped: int = 0
    lengths: list[int] = field(default_factory=list)

    def summary(self) -> dict:
        ordered = sorted(self.lengths)
        tokens = {}
        if ordered:
            tokens = {"min": ordered[0], "median": int(statistics.median(ordered)),
                      "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], "max": ordered[-1]}
        return {"max_prompt_tokens": self.max_tokens, "trimmed": self.trimmed, "turns_dropped": self.turns_dropped,
                "skipped": self.skipped, "prompt_tokens": tokens}

    def line(self) -> str:
        s = self.summary()
        t = s["prompt_tokens"]
        tokens = (f"prompt tokens min {t['min']} / median {t['median']} / p95 {t['p95']} / max {t['max']}"
                  if t else "no prompts")
        return (f"prompts bounded to {self.max_tokens} tokens: {self.trimmed} trimmed ({self.turns_dropped} oldest "
                f"turns dropped), {self.skipped} skipped as too long; {tokens}")


def context_length(name_or_path: str) -> int | None:
    """The model's context in tokens (max_position_embeddings of its config), None when it does not say."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(name_or_path))
    config = getattr(config, "text_config", None) or config
    return getattr(config, "max_position_embeddings", None)
