"""The text of one completion, whatever shape TRL hands it in (plain string or chat messages).

    >>> from rewards.text import completion_text
    >>> completion_text([{"role": "assistant", "content": "Great job!"}])
    'Great job!'
"""

from __future__ import annotations

from typing import Any


def completion_text(completion: Any) -> str:
    """str -> itself; chat messages -> the last assistant message's content (else the last message's);
    a message dict -> its "content"; None -> "". Never raises: anything else becomes str(x)."""
    if completion is None:
        return ""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return _content_text(completion.get("content"))
    if isinstance(completion, (list, tuple)):
        if not completion:
            return ""
        messages = [m for m in completion if isinstance(m, dict)]
        if not messages:
            return " ".join(completion_text(part) for part in completion)
        assistant = [m for m in messages if m.get("role") == "assistant"]
        return _content_text((assistant or messages)[-1].get("content"))
    try:
        return str(completion)
    except Exception:  # a broken __str__ must not crash a training step
        return ""


def _content_text(content: Any) -> str:
    # Multimodal-style content is a list of parts: [{"type": "text", "text": "..."}].
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text") or "" if isinstance(p, dict) else completion_text(p) for p in content)
    return completion_text(content)
