"""What the judge sees for one completion: the last robot turn, the child's reply, the main answer.

They come from the dataset columns the trainer's prompt rows carry (`last_robot_turn`, `child_reply`,
`main_answer`); a caller without those columns (plain TRL use, a hand-made batch) gets them parsed from
the prompt instead: chat turns (robot = assistant, child = user) or the history format's rendered text
(common.conversation, the one module that renders and parses it).
"""

from __future__ import annotations

from string import Template
from typing import NamedTuple

from common.conversation import last_exchange, parse_history
from rewards.judge.protocol import FIELDS, fields_json, json_string


class Context(NamedTuple):
    last_robot_turn: str
    child_reply: str  # "" = the child stayed silent
    main_answer: str  # "" = none


def contexts_for(prompts, columns: dict, n: int) -> list[Context]:
    """One Context per completion: from the columns where present, else from the prompt."""
    names = Context._fields
    if all(isinstance(columns.get(name), (list, tuple)) and len(columns[name]) == n for name in names[:2]):
        mains = columns.get("main_answer")
        mains = mains if isinstance(mains, (list, tuple)) and len(mains) == n else [""] * n
        return [
            Context(_text(r), _text(c), _text(m))
            for r, c, m in zip(columns["last_robot_turn"], columns["child_reply"], mains)
        ]
    prompts = list(prompts) if prompts is not None else []
    if len(prompts) != n:
        return [Context("", "", "")] * n
    return [context_from_prompt(p) for p in prompts]


def context_from_prompt(prompt) -> Context:
    if isinstance(prompt, str):
        return _from_history(prompt) or Context("", prompt.strip(), "")
    if not isinstance(prompt, (list, tuple)):
        return Context("", "", "")
    turns = [m for m in prompt if isinstance(m, dict) and m.get("role") in ("assistant", "user")]
    if len(turns) == 1 and turns[0]["role"] == "user":  # history format: one rendered user turn
        rendered = _from_history(_text(turns[0].get("content")))
        if rendered:
            return rendered
    return Context(*last_exchange([{"role": t["role"], "content": _text(t.get("content"))} for t in turns]), "")


def _from_history(text: str) -> Context | None:
    turns = parse_history(text)
    return Context(*last_exchange(turns), "") if turns else None


def render(template: Template, context: Context, fast_response: str) -> str:
    """The judge prompt: `$fields` is the JSON object of all four fields (rewards/judge/protocol.py);
    the single-field placeholders of older templates get the same escaped JSON string literals."""
    values = (context.last_robot_turn, context.child_reply, context.main_answer, fast_response)
    main = f"Main answer (what Pika says right after): {json_string(context.main_answer)}" if context.main_answer else ""
    return template.substitute(
        fields=fields_json(values),
        **{name: json_string(value) for name, value in zip(FIELDS, values)},
        main_answer_line=main,
    )


def _text(value) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)
