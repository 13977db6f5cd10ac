"""The history prompt format ("format 2"): a conversation rendered as one text, and read back.

Training renders a record's turns with `render_history`; the judge, given only a prompt (plain TRL use,
a hand-made batch), reads the last robot turn and the child's reply back with `parse_history`. Both go
through one `HistoryFormat`, so whatever the rendering looks like, the parser reads exactly it.

    >>> text = render_history([{"role": "assistant", "content": "Con mèo là gì?"}, {"role": "user", "content": ""}])
    >>> print(text)
    Conversation so far:
    Pika: Con mèo là gì?
    Child: (silent)
    <BLANKLINE>
    Write Pika's fast response to the child's last turn.
    >>> parse_history(text)
    [{'role': 'assistant', 'content': 'Con mèo là gì?'}, {'role': 'user', 'content': ''}]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

ROLES = ("assistant", "user")  # robot, child


@dataclass(frozen=True)
class HistoryFormat:
    header: str = "Conversation so far:"
    robot: str = "Pika:"  # what starts a robot turn (at the start of a line)
    child: str = "Child:"
    silent: str = "(silent)"  # stands for an empty child turn
    instruction: str = "Write Pika's fast response to the child's last turn."  # "" = none
    turn_break: str = " "  # between a speaker's marker and what they said
    turn_gap: str = "\n"  # between the header and the turns, and between turns

    def render(self, turns: list[dict]) -> str:
        """Turns ({"role": "assistant"|"user", "content"}) -> the text of one user message."""
        body = self.turn_gap.join(self._turn(t) for t in turns)
        text = f"{self.header}{self.turn_gap}{body}" if self.header else body
        return f"{text}\n\n{self.instruction}" if self.instruction else text

    def _turn(self, turn: dict) -> str:
        content = (turn.get("content") or "").strip()
        if turn["role"] == "assistant":
            return f"{self.robot}{self.turn_break}{content}"
        return f"{self.child}{self.turn_break}{content or self.silent}"

    @cached_property
    def _marker(self) -> re.Pattern:
        return re.compile(rf"^(?:{re.escape(self.robot)}|{re.escape(self.child)})", re.MULTILINE)

    def parse(self, text: str) -> list[dict] | None:
        """The turns of a rendered history, or None when `text` has no turn of this format."""
        if not isinstance(text, str):
            return None
        if self.instruction and text.rstrip().endswith(self.instruction):
            text = text.rstrip()[: -len(self.instruction)]
        marks = list(self._marker.finditer(text))
        turns = []
        for i, mark in enumerate(marks):
            end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
            content = text[mark.end() : end].strip()
            if mark.group() == self.robot:
                turns.append({"role": "assistant", "content": content})
            else:
                turns.append({"role": "user", "content": "" if content == self.silent else content})
        return turns or None


DEFAULT_FORMAT = HistoryFormat()


def render_history(turns: list[dict], fmt: HistoryFormat = DEFAULT_FORMAT) -> str:
    return fmt.render(turns)


def parse_history(text: str, fmt: HistoryFormat = DEFAULT_FORMAT) -> list[dict] | None:
    return fmt.parse(text)


def last_exchange(turns: list[dict]) -> tuple[str, str]:
    """(last robot turn, the child's reply to it); the reply is "" when the child stayed silent or the
    conversation ends on the robot."""
    robot = [t["content"] for t in turns if t["role"] == "assistant"]
    child = turns[-1]["content"] if turns and turns[-1]["role"] == "user" else ""
    return (robot[-1] if robot else ""), child
