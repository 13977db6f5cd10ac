"""`no_say_tags`: the fast response is spoken text, so any `<say>` markup leaking into it scores 0.

Caught: `<say>`, `</say>` in any case, with spaces inside the brackets (`< / SAY >`), with attributes,
HTML-escaped (`&lt;say&gt;`, `&#60;say&#62;`, double-escaped too), JSON-escaped (`\\u003csay`),
full-width brackets, and unclosed (`<say` at the end, a dangling `say>`).

    >>> from rewards.tags import no_say_tags
    >>> no_say_tags(prompts=None, completions=["Great job!", "<say>Great job!</say>", "&lt;SAY&gt;Hi"])
    [1.0, 0.0, 0.0]
"""

from __future__ import annotations

import html
import re
import unicodedata

from rewards.text import completion_text

# Possessive quantifiers (`*+`) never give back what they matched: a run of spaces is scanned once, so
# a reply of "<" or "say" followed by a million spaces costs linear time, not quadratic.
# "<" [spaces] ["/"] [spaces] "say" not followed by a letter: opening, closing and unclosed tags.
_OPEN = re.compile(r"<\s*+/?\s*+say(?![a-z])", re.IGNORECASE)
# A tag whose "<" got lost: "say>", "say/>", "/say>" (but not words ending in "say", like "essay>").
# Anchored on "say" itself (a leading `\s*` would rescan every run of spaces from each of its positions).
_CLOSE = re.compile(r"(?<![a-z])say\s*+/?\s*+>", re.IGNORECASE)
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_ESCAPES = (("\\u003c", "<"), ("\\u003e", ">"), ("\\x3c", "<"), ("\\x3e", ">"), ("%3c", "<"), ("%3e", ">"))


def has_say_tag(text: str) -> bool:
    """True if `text` holds a <say> or </say> tag in any spelling listed in the module docstring.

        >>> has_say_tag("< /Say >"), has_say_tag("Say it!")
        (True, False)
    """
    if not text:
        return False
    text = text.lower()
    if not text.isascii():  # full-width letters, zero-width characters hidden inside the tag
        text = unicodedata.normalize("NFKC", text).translate(_ZERO_WIDTH)
    if "say" not in text and "&#" not in text:
        return False  # the fast path: most replies never mention "say"
    for _ in range(3):  # undo up to three layers of escaping (&amp;lt;say&amp;gt;)
        lowered = text.lower()
        for escaped, char in _ESCAPES:
            lowered = lowered.replace(escaped, char)
        text = html.unescape(lowered)
        if _OPEN.search(text) or _CLOSE.search(text):
            return True
        if "&" not in text and "\\" not in text and "%" not in text:
            return False
    return False


def no_say_tags(prompts=None, completions=None, **kwargs) -> list[float]:
    """1.0 for a reply without say tags, 0.0 for one with (TRL reward signature)."""
    return [0.0 if has_say_tag(completion_text(c)) else 1.0 for c in completions or []]
